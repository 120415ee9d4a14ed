//! Boards (with their lists), iteration cadences, iterations and the projects count of a group tree,
//! migrated live through the real binary and compared field by field through both simulators' APIs.

use crate::bundle_common;
use crate::common;

use bundle_common::{export_cmd, replay_cmd};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Output};

fn migrate_cmd(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    json: bool,
) -> Command {
    let mut cmd = appliance();
    cmd.arg("migrate");
    if json {
        cmd.arg("--json");
    }
    cmd.args(["--group", "acme", "--to", "imported"])
        .args(["--source-url", &src.url, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    cmd
}

/// The relations this file is about.
const MINE: &[&str] = &["boards", "iterations_cadences", "iterations", "projects"];

/// Asserts the run ended (exit 0, or 2 when another relation had failures) with no failure in `MINE`.
fn assert_no_failure_of_mine(out: &Output) -> Value {
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "the run did not finish: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let r = report(out);
    assert_eq!(r["status"], "finished", "{r:#}");
    for e in r["entities"].as_array().unwrap() {
        for f in e["failures"].as_array().unwrap() {
            let rel = f["relation"].as_str().unwrap_or("");
            assert!(!MINE.contains(&rel), "a failure of {rel}: {f:#}");
        }
    }
    r
}

const CADENCES: &str = "query($fullPath: ID!, $first: Int, $after: String) { group(fullPath: $fullPath) {
  iterationCadences(first: $first, after: $after) {
    nodes { title description automatic startDate durationInWeeks iterationsInAdvance active rollOver }
    pageInfo { hasNextPage endCursor } } } }";

const ITERATIONS: &str =
    "query($fullPath: ID!, $first: Int, $after: String) { group(fullPath: $fullPath) {
  iterations(includeAncestors: false, first: $first, after: $after) {
    nodes { title description startDate dueDate iterationCadence { title } }
    pageInfo { hasNextPage endCursor } } } }";

/// Per group (by its path below the root): boards with their lists in position order, cadences,
/// iterations with their title, dates and cadence's title, and how many projects the group itself has.
async fn relations(base: &str, token: &str, root: &str) -> BTreeMap<String, Value> {
    let top = get(base, token, &format!("groups/{}", enc(root)))
        .await
        .unwrap_or_else(|| panic!("group {root} exists on {base}"));
    let id = top["id"].as_u64().expect("group id");
    let mut groups = vec![top];
    groups.extend(get_all(base, token, &format!("groups/{id}/descendant_groups")).await);
    let mut out = BTreeMap::new();
    for g in groups {
        let gid = g["id"].as_u64().expect("group id");
        let full = g["full_path"].as_str().expect("full_path");
        let rel = full
            .strip_prefix(root)
            .unwrap_or(full)
            .trim_start_matches('/')
            .to_string();

        let mut boards: Vec<Value> = Vec::new();
        for b in get_all(base, token, &format!("groups/{gid}/boards")).await {
            let mut lists: Vec<&Value> = b["lists"].as_array().expect("lists").iter().collect();
            lists.sort_by_key(|l| l["position"].as_u64());
            let lists: Vec<Value> = lists
                .iter()
                .map(|l| {
                    json!({
                        "list_type": l["list_type"],
                        "label": l["label"]["name"],
                        "label_color": l["label"]["color"],
                        "milestone": l["milestone"]["title"],
                        "iteration": l["iteration"]["start_date"],
                    })
                })
                .collect();
            boards.push(json!({
                "name": b["name"],
                "hide_backlog_list": b["hide_backlog_list"],
                "hide_closed_list": b["hide_closed_list"],
                "lists": lists,
            }));
        }
        boards.sort_by_key(|b| b.to_string());

        // GitLab serves cadences only through GraphQL; iterations are read there too, with their cadence.
        let mut cadences: Vec<Value> = graphql_all(
            base,
            token,
            CADENCES,
            json!({ "fullPath": full }),
            &["group", "iterationCadences"],
        )
        .await
        .iter()
        .map(|c| {
            json!({
                "title": c["title"], "description": c["description"], "automatic": c["automatic"],
                "start_date": c["startDate"], "duration_in_weeks": c["durationInWeeks"],
                "iterations_in_advance": c["iterationsInAdvance"], "active": c["active"],
                "roll_over": c["rollOver"],
            })
        })
        .collect();
        cadences.sort_by_key(|c| c.to_string());

        let mut iterations: Vec<Value> = graphql_all(
            base,
            token,
            ITERATIONS,
            json!({ "fullPath": full }),
            &["group", "iterations"],
        )
        .await
        .iter()
        .map(|i| {
            json!({
                "title": i["title"], "description": i["description"],
                "start_date": i["startDate"], "due_date": i["dueDate"],
                "cadence": i["iterationCadence"]["title"],
            })
        })
        .collect();
        iterations.sort_by_key(|i| i.to_string());

        let projects = get_all(
            base,
            token,
            &format!("groups/{gid}/projects?include_subgroups=false"),
        )
        .await
        .len();
        out.insert(
            rel,
            json!({
                "boards": boards, "iterations_cadences": cadences, "iterations": iterations,
                "projects": projects,
            }),
        );
    }
    out
}

/// Asserts the destination has exactly the source's boards, cadences and iterations, group by group.
fn assert_same(want: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the destination has a different group tree"
    );
    for (path, w) in want {
        for rel in ["boards", "iterations_cadences", "iterations"] {
            let (ws, gs) = (
                w[rel].as_array().unwrap(),
                got[path][rel].as_array().unwrap(),
            );
            assert_eq!(
                ws.len(),
                gs.len(),
                "group `{path}`: {rel} count: want {ws:?}, got {gs:?}"
            );
            for (a, b) in ws.iter().zip(gs) {
                for (field, v) in a.as_object().unwrap() {
                    assert_eq!(
                        v, &b[field],
                        "group `{path}`: {rel} `{field}` differs: want {a}, got {b}"
                    );
                }
            }
        }
    }
}

fn count(t: &BTreeMap<String, Value>, path: &str, rel: &str) -> u64 {
    match &t[path][rel] {
        Value::Array(a) => a.len() as u64,
        n => n.as_u64().unwrap(),
    }
}

/// The state GitLab derives for an iteration from its dates: 1 upcoming, 2 current, 3 closed.
fn derived_state(start: &str, due: &str) -> u64 {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    if start > today.as_str() {
        1
    } else if due >= today.as_str() {
        2
    } else {
        3
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn boards_iterations_and_project_counts_migrate_exactly_with_no_failure() {
    let (src, dst) = (source().await, destination().await);
    // One board hides its closed list, which GitLab sets by an update after the create.
    let boards = get_all(&src.url, &src.owner_token, "groups/acme/boards").await;
    let resp = http()
        .put(format!(
            "{}/api/v4/groups/acme/boards/{}",
            src.url, boards[0]["id"]
        ))
        .header("PRIVATE-TOKEN", &src.owner_token)
        .json(&json!({ "hide_closed_list": true }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "PUT board: {}", resp.status());
    let data = tempfile::tempdir().unwrap();
    let out = run(migrate_cmd(&src, &dst, data.path(), true)).await;
    let r = assert_no_failure_of_mine(&out);

    let want = relations(&src.url, &src.owner_token, "acme").await;
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    let total =
        |t: &BTreeMap<String, Value>, rel: &str| t.keys().map(|p| count(t, p, rel)).sum::<u64>();
    let lists: usize = want
        .values()
        .flat_map(|g| g["boards"].as_array().unwrap())
        .map(|b| b["lists"].as_array().unwrap().len())
        .sum();
    assert!(
        total(&want, "boards") >= 2
            && lists >= 4
            && total(&want, "iterations_cadences") >= 2
            && total(&want, "iterations") >= 4
            && total(&want, "projects") >= 1,
        "the sample source has boards, lists, cadences, iterations and projects: {want:#?}"
    );
    let milestone_lists = want
        .values()
        .flat_map(|g| g["boards"].as_array().unwrap())
        .flat_map(|b| b["lists"].as_array().unwrap())
        .filter(|l| l["list_type"] == "milestone")
        .count();
    assert!(
        milestone_lists >= 1,
        "a milestone list is part of the sample"
    );
    assert!(
        want[""]["boards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["hide_closed_list"] == true),
        "{want:#?}"
    );
    assert_same(&want, &got);
    for (path, w) in &want {
        assert_eq!(
            got[path]["projects"], w["projects"],
            "group `{path}`: every project of the group arrived"
        );
    }

    // GitLab derives an iteration's state from its dates; the destination's iterations carry it.
    let dest_group = get(&dst.url, &dst.owner_token, "groups/imported%2Facme")
        .await
        .unwrap();
    let dest_iterations = get_all(
        &dst.url,
        &dst.owner_token,
        &format!(
            "groups/{}/iterations?include_ancestors=false",
            dest_group["id"]
        ),
    )
    .await;
    assert!(!dest_iterations.is_empty());
    for i in &dest_iterations {
        let (start, due) = (
            i["start_date"].as_str().unwrap(),
            i["due_date"].as_str().unwrap(),
        );
        assert_eq!(i["state"], derived_state(start, due), "{i}");
    }

    for e in r["entities"].as_array().unwrap() {
        if e["entity_type"] == "project" {
            continue; // tests/it/project_migration.rs checks projects
        }
        let full = e["source_full_path"].as_str().unwrap();
        let path = full.strip_prefix("acme").unwrap().trim_start_matches('/');
        let stat = |rel: &str| -> &Value {
            e["stats"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["relation"] == rel)
                .unwrap_or_else(|| panic!("{full} has no `{rel}` stats: {e:#}"))
        };
        for rel in ["boards", "iterations_cadences", "iterations"] {
            let n = count(&want, path, rel);
            let s = stat(rel);
            for k in ["source", "fetched", "imported"] {
                assert_eq!(s[k], n, "{full} {rel}.{k}: {s}");
            }
            assert_eq!(s["status"], "finished", "{full} {rel}");
            assert!(s.get("note").is_none(), "{full} {rel} has no note");
        }
        let projects = stat("projects");
        let n = count(&want, path, "projects");
        assert_eq!(projects["source"], n, "{full} projects.source");
        assert_eq!(projects["fetched"], n, "{full} projects.fetched");
        // Each project of the group became an entity of its own.
        assert_eq!(projects["imported"], n, "{full} projects.imported");
        assert_eq!(projects["status"], "finished");
        assert_eq!(projects["extracted_via"], "rest");
    }
    // The whole sample migrates with no failure at all (checked last, so that a failure of another
    // relation does not hide what the checks above say about these ones).
    assert_eq!(r["has_failures"], false, "{r:#}");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_on_a_flaky_destination_create_no_duplicate_board_list_or_iteration() {
    let (src, dst) = (source().await, destination().await);
    // A reset happens after the handler ran: the record exists but the appliance never hears of it,
    // so it must find it (board by name, list by label or milestone, iteration by cadence and start).
    set_faults(&dst, json!({ "fault_rate": 0.1, "reset_rate": 0.15, "burst_429": 2, "burst_retry_after_secs": 1 })).await;
    let data = tempfile::tempdir().unwrap();
    // A forge still failing after the retries pauses the run (exit 3); the same command resumes it.
    let mut out = run(migrate_cmd(&src, &dst, data.path(), true)).await;
    for _ in 0..4 {
        if out.status.code() != Some(3) {
            break;
        }
        out = run(migrate_cmd(&src, &dst, data.path(), true)).await;
    }
    let injected: Value = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    set_faults(&dst, json!({})).await;
    assert!(
        injected["injected"]["resets"].as_u64().unwrap_or(0) > 0,
        "{injected}"
    );
    assert_no_failure_of_mine(&out);
    let want = relations(&src.url, &src.owner_token, "acme").await;
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_mutation_answers_and_a_retry_create_no_duplicate_cadence_or_iteration() {
    let (src, dst) = (source().await, destination().await);
    let want = relations(&src.url, &src.owner_token, "acme").await;
    let lose = |mutation: &str, times: u32| {
        json!({ "method": "POST", "path_contains": "/api/graphql", "body_contains": mutation,
                "lose_answer": true, "times": times })
    };
    // The first cadence and the first two iterations are created but their answers are lost, so the
    // appliance must find them (cadence by title, iteration by cadence and start date) instead of
    // sending the mutation again: GitLab allows two cadences with one title. One subgroup's cadence
    // is refused outright, so its iterations cannot be created in this run.
    set_faults(
        &dst,
        json!({ "reject": [
            lose("iterationCadenceCreate", 1),
            lose("iterationCreate(", 2),
            { "method": "POST", "path_contains": "/api/graphql", "body_contains": "Backend cadence",
              "status": 400, "message": "Refused by the test" }
        ]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let first = run(migrate_cmd(&src, &dst, data.path(), true)).await;
    assert_eq!(first.status.code(), Some(2), "{}", explain(&first));
    let failures: Vec<Value> = report(&first)["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["failures"].as_array().unwrap().clone())
        .collect();
    let cadence_failures: Vec<&Value> = failures
        .iter()
        .filter(|f| f["relation"] == "iterations_cadences")
        .collect();
    assert_eq!(cadence_failures.len(), 1, "{failures:#?}");
    assert_eq!(cadence_failures[0]["source_title"], "Backend cadence");
    assert_eq!(
        cadence_failures[0]["exception_message"],
        "Refused by the test"
    );
    assert!(
        failures
            .iter()
            .filter(|f| f["relation"] == "iterations")
            .all(|f| f["exception_message"]
                .as_str()
                .unwrap()
                .contains("was not migrated")),
        "{failures:#?}"
    );
    let injected: Value = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(injected["injected"]["resets"], 3, "{injected}");

    set_faults(&dst, json!({})).await;
    let mut retry = migrate_cmd(&src, &dst, data.path(), true);
    retry.arg("--retry");
    let retry = run(retry).await;
    let r = assert_no_failure_of_mine(&retry);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_killed_before_its_boards_resumes_without_duplicates_and_says_why_projects_wait()
 {
    let (src, dst) = (source().await, destination().await);
    set_faults(&dst, json!({ "latency_ms": 120 })).await;
    let data = tempfile::tempdir().unwrap();
    let mut cmd = migrate_cmd(&src, &dst, data.path(), true);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Kill it once the top group's iterations are arriving: its boards and every subgroup are still to come.
    kill_when(&mut child, "the migration", async || {
        match get(&dst.url, &dst.owner_token, "groups/imported%2Facme").await {
            Some(g) => {
                let path = format!("groups/{}/iterations?include_ancestors=false", g["id"]);
                !get_all(&dst.url, &dst.owner_token, &path).await.is_empty()
            }
            None => false,
        }
    })
    .await;
    let want = relations(&src.url, &src.owner_token, "acme").await;
    let partial = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_ne!(
        partial
            .keys()
            .map(|p| count(&partial, p, "boards"))
            .sum::<u64>(),
        want.keys().map(|p| count(&want, p, "boards")).sum::<u64>(),
        "the kill landed after every board had arrived"
    );

    set_faults(&dst, json!({})).await;
    let out = run(migrate_cmd(&src, &dst, data.path(), false)).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "{stderr}\n{stdout}"
    );
    assert!(stderr.contains("Resuming migration"), "{stderr}");
    for rel in MINE {
        assert!(!stdout.contains(&format!("FAILED {rel} ")), "{stdout}");
    }
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boards_iterations_and_project_counts_travel_through_a_bundle() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    let mut cmd = export_cmd(&src, &bundle, &dir.path().join("export-data"));
    cmd.arg("--json");
    let exported = run(cmd).await;
    assert_no_failure_of_mine(&exported);
    let mut cmd = replay_cmd(&dst, &bundle, &dir.path().join("replay-data"));
    cmd.arg("--json");
    let out = run(cmd).await;
    let r = assert_no_failure_of_mine(&out);
    let want = relations(&src.url, &src.owner_token, "acme").await;
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same(&want, &got);

    let groups = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] == "group");
    for e in groups {
        let full = e["source_full_path"].as_str().unwrap();
        let path = full.strip_prefix("acme").unwrap().trim_start_matches('/');
        // A bundle carries a group's projects: each listed one becomes an entity of the replay.
        for &rel in MINE {
            let s = e["stats"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["relation"] == rel)
                .unwrap_or_else(|| panic!("{full} has no `{rel}` stats: {e:#}"));
            let n = count(&want, path, rel);
            assert_eq!(s["extracted_via"], "bundle", "{full} {rel}");
            assert_eq!(s["source"], n, "{full} {rel}.source: {s}");
            assert_eq!(s["fetched"], n, "{full} {rel}.fetched: {s}");
            assert_eq!(s["imported"], n, "{full} {rel}.imported: {s}");
        }
    }
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_adds_a_missing_iteration_to_a_cadence_already_switched_to_automatic() {
    let (src, dst) = (source().await, destination().await);
    let want = relations(&src.url, &src.owner_token, "acme").await;
    // The top group's automatic cadence, and one of its iterations that is not its first.
    let top = &want[""];
    let cadence = top["iterations_cadences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["automatic"] == true)
        .expect("the sample's top group has an automatic cadence")
        .clone();
    let mut starts: Vec<&str> = top["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["cadence"] == cadence["title"])
        .map(|i| i["start_date"].as_str().unwrap())
        .collect();
    starts.sort_unstable();
    assert!(starts.len() >= 2, "{top:#}");
    let refused_start = starts[1].to_string();
    set_faults(
        &dst,
        json!({ "reject": [{
            "method": "POST", "path_contains": "/api/graphql",
            "body_contains": format!("\"startDate\":\"{refused_start}\""),
            "status": 400, "message": "Refused by the test"
        }]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let first = run(migrate_cmd(&src, &dst, data.path(), true)).await;
    assert_eq!(first.status.code(), Some(2), "{}", explain(&first));
    // The cadence was switched to automatic all the same, without that iteration.
    let partial = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    let partial_top = &partial[""];
    assert_eq!(partial_top["iterations_cadences"][0]["automatic"], true);
    assert_eq!(
        partial_top["iterations"].as_array().unwrap().len(),
        top["iterations"].as_array().unwrap().len() - 1
    );

    // GitLab refuses iterations added by hand to an automatic cadence: the retry must still add it.
    set_faults(&dst, json!({})).await;
    let mut retry = migrate_cmd(&src, &dst, data.path(), true);
    retry.arg("--retry");
    let retry = run(retry).await;
    let r = assert_no_failure_of_mine(&retry);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let got = relations(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

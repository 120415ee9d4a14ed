//! A project migrates live through the destination's own project import: checked through both
//! simulators' REST APIs and `git ls-remote`, field by field, as a user would compare them.

use crate::bundle_common;
use crate::common;

use bundle_common::{export, replay_cmd, text, verify};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PROJECT: &str = "acme/backend/api";

fn migrate_project_cmd(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    token: &str,
) -> std::process::Command {
    migrate_one_project(src, dst, PROJECT, data, token)
}

async fn migrate_project(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    token: &str,
) -> std::process::Output {
    run(migrate_project_cmd(src, dst, data, token)).await
}

/// Every ref of a simulated project's repository and the commit it points at.
fn refs(sim: &forge_sim::RunningSim, full_path: &str) -> BTreeMap<String, String> {
    sim.sim
        .git
        .refs(full_path)
        .expect("read the project's refs")
}

/// The fields of an issue or merge request a user compares, with its notes in order.
async fn items(base: &str, token: &str, project: &str, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for item in get_all(base, token, &format!("projects/{}/{kind}", enc(project))).await {
        let iid = item["iid"].as_u64().unwrap();
        let notes = get_all(
            base,
            token,
            &format!(
                "projects/{}/{kind}/{iid}/notes?sort=asc&order_by=created_at",
                enc(project)
            ),
        )
        .await;
        let mut fields = serde_json::Map::new();
        for k in [
            "iid",
            "title",
            "description",
            "state",
            "created_at",
            "closed_at",
            "merged_at",
            "confidential",
            "due_date",
            "source_branch",
            "target_branch",
            "merge_commit_sha",
            "draft",
        ] {
            if let Some(v) = item.get(k) {
                fields.insert(k.into(), v.clone());
            }
        }
        let mut labels: Vec<String> = item["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect();
        labels.sort();
        fields.insert("labels".into(), labels.into());
        fields.insert("milestone".into(), item["milestone"]["title"].clone());
        fields.insert("author".into(), item["author"]["username"].clone());
        fields.insert("author_name".into(), item["author"]["name"].clone());
        fields.insert(
            "notes".into(),
            notes
                .iter()
                .filter(|n| n["system"] != true)
                .map(|n| {
                    serde_json::json!({
                        "body": n["body"], "created_at": n["created_at"],
                        "author": n["author"]["username"], "author_name": n["author"]["name"],
                        "type": n["type"],
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        );
        out.push(Value::Object(fields));
    }
    out.sort_by_key(|v| v["iid"].as_u64());
    out
}

/// Who GitLab's import can attribute a contribution to: the source project's members, inherited ones
/// included (the export carries them), by username.
async fn members(src: &forge_sim::RunningSim, project: &str) -> Vec<String> {
    get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/members/all", enc(project)),
    )
    .await
    .iter()
    .map(|m| m["username"].as_str().unwrap().to_string())
    .collect()
}

/// What GitLab's import makes of a contribution by `author` (username) of `text`: a member's stays
/// theirs; anyone else's becomes the importer's, naming them at the end (checked on the destination
/// side by `unname`).
fn expected(items: &[Value], members: &[String], importer: &str) -> Vec<Value> {
    let keep = |author: &Value| members.iter().any(|m| author == m);
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if !keep(&item["author"]) {
                item["author"] = importer.into();
            }
            for note in item["notes"].as_array_mut().unwrap() {
                if !keep(&note["author"]) {
                    note["author"] = importer.into();
                }
                note.as_object_mut().unwrap().remove("author_name");
            }
            item.as_object_mut().unwrap().remove("author_name");
            item
        })
        .collect()
}

/// The destination's items with GitLab's "*By NAME on DATE (imported from GitLab)*" line taken off the
/// text it ends (after checking it names the source author), for comparison with `expected`.
fn unname(got: &[Value], want: &[Value]) -> Vec<Value> {
    let strip = |text: &mut Value, source_name: &Value| {
        if let Some(t) = text.as_str()
            && let Some(at) = t.rfind("\n\n*By ")
            && t.ends_with("(imported from GitLab)*")
        {
            let line = &t[at..];
            let name = source_name.as_str().unwrap();
            assert!(
                line.starts_with(&format!("\n\n*By {name} on ")),
                "names the author: {t}"
            );
            *text = t[..at].to_string().into();
        }
    };
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            let mut g = g.clone();
            strip(&mut g["description"], &w["author_name"]);
            let notes = g["notes"].as_array_mut().unwrap();
            for (n, wn) in notes.iter_mut().zip(w["notes"].as_array().unwrap()) {
                strip(&mut n["body"], &wn["author_name"]);
                n.as_object_mut().unwrap().remove("author_name");
            }
            g.as_object_mut().unwrap().remove("author_name");
            g
        })
        .collect()
}

/// Source and destination issues or merge requests, equal field by field after GitLab's mapping.
async fn assert_same_items(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    dest_path: &str,
    kind: &str,
) -> usize {
    let n = assert_same_items_of(src, dst, PROJECT, dest_path, kind).await;
    assert!(n > 0, "the sample project has {kind}");
    n
}

/// Like `assert_same_items`, for any project (which may have none of `kind`).
async fn assert_same_items_of(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    src_path: &str,
    dest_path: &str,
    kind: &str,
) -> usize {
    let source = items(&src.url, &src.owner_token, src_path, kind).await;
    let got = items(&dst.url, &dst.admin_token, dest_path, kind).await;
    assert_eq!(
        got.len(),
        source.len(),
        "{kind} of {src_path}: nothing twice, nothing missing"
    );
    let want = expected(&source, &members(src, src_path).await, "root");
    let got = unname(&got, &source);
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w, "{kind} field by field");
    }
    source.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_migrates_with_its_repository_issues_and_merge_requests() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let out = migrate_project(&src, &dst, data.path(), &dst.admin_token).await;
    assert!(out.status.success(), "migrate failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");
    let entity = &r["entities"][0];
    assert_eq!(entity["entity_type"], "project", "{entity:#}");

    let dest_path = "imported/api";
    let dest = get(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}", enc(dest_path)),
    )
    .await
    .expect("the project exists at the destination");
    let source = get(
        &src.url,
        &src.owner_token,
        &format!("projects/{}", enc(PROJECT)),
    )
    .await
    .unwrap();
    for k in ["name", "description", "default_branch"] {
        assert_eq!(dest[k], source[k], "project {k}");
    }

    // The repository: every branch and tag, at the same commits.
    let want_refs = refs(&src, PROJECT);
    assert!(
        want_refs.len() >= 2,
        "the sample project has branches and tags: {want_refs:?}"
    );
    let got_refs: BTreeMap<String, String> = refs(&dst, dest_path)
        .into_iter()
        .filter(|(r, _)| !r.starts_with("refs/merge-requests/"))
        .collect();
    let want_heads: BTreeMap<String, String> = want_refs
        .into_iter()
        .filter(|(r, _)| !r.starts_with("refs/merge-requests/"))
        .collect();
    assert_eq!(got_refs, want_heads, "refs and commit ids");

    for kind in ["issues", "merge_requests"] {
        let n = assert_same_items(&src, &dst, dest_path, kind).await;
        // Stats are exact and counted at the destination.
        let stat = entity["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["relation"] == kind)
            .unwrap_or_else(|| panic!("no {kind} stats: {entity:#}"));
        for k in ["source", "fetched", "imported"] {
            assert_eq!(stat[k], n as u64, "{kind}.{k}: {stat}");
        }
    }
    let merged = items(&dst.url, &dst.admin_token, dest_path, "merge_requests")
        .await
        .into_iter()
        .filter(|m| m["state"] == "merged")
        .count();
    assert!(merged >= 1, "a merged merge request arrives merged");
    // Each of them is one page at the source, so they all travelled in the archive that created the
    // project: one import, and no relation import with its polls.
    let requests = sim_requests(&dst).await;
    assert_eq!(
        requests["by_request"]["POST /api/v4/projects/import"], 1,
        "{requests:#}"
    );
    assert!(
        requests["by_request"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("import-relation") && !k.contains("relation-imports")),
        "{requests:#}"
    );
    let milestones = entity["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "milestones")
        .unwrap();
    let want = get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/milestones", enc(PROJECT)),
    )
    .await
    .len();
    let got = get_all(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}/milestones", enc(dest_path)),
    )
    .await
    .len();
    assert!(want > 0);
    assert_eq!(got, want, "milestones");
    assert_eq!(milestones["imported"], want as u64, "{milestones}");

    let label_titles = |v: Vec<Value>| {
        let mut t: Vec<String> = v
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    let want_labels = label_titles(
        get_all(
            &src.url,
            &src.owner_token,
            &format!(
                "projects/{}/labels?include_ancestor_groups=false",
                enc(PROJECT)
            ),
        )
        .await,
    );
    let got_labels = label_titles(
        get_all(
            &dst.url,
            &dst.admin_token,
            &format!(
                "projects/{}/labels?include_ancestor_groups=false",
                enc(dest_path)
            ),
        )
        .await,
    );
    for l in &want_labels {
        assert!(got_labels.contains(l), "label {l} arrived: {got_labels:?}");
    }
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&src.owner_token),
        "the source token was printed"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_path_taken_at_the_destination_is_refused_before_anything_is_written() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let first = migrate_project(&src, &dst, data.path(), &dst.admin_token).await;
    assert!(first.status.success(), "{}", explain(&first));
    let other = tempfile::tempdir().unwrap();
    let again = migrate_project(&src, &dst, other.path(), &dst.admin_token).await;
    assert!(
        !again.status.success(),
        "a second migration into the same path is refused"
    );
    assert!(
        explain(&again).contains("imported/api"),
        "the refusal names the path: {}",
        explain(&again)
    );
    let issues = get_all(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}/issues", enc("imported/api")),
    )
    .await;
    let want = get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/issues", enc(PROJECT)),
    )
    .await;
    assert_eq!(issues.len(), want.len(), "nothing was written twice");
    src.shutdown().await;
    dst.shutdown().await;
}

/// Runs the project migration with `fault` set on the destination, kills it once the destination
/// holds a request (the write before it reached the destination), clears the fault and runs the same
/// command again; the resumed run's output.
async fn kill_and_resume(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    fault: Value,
    what: &str,
) -> std::process::Output {
    set_faults(dst, fault).await;
    let data = tempfile::tempdir().unwrap();
    let mut child = migrate_project_cmd(src, dst, data.path(), &dst.admin_token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start appliance");
    kill_when(&mut child, what, async || {
        sim_requests(dst).await["injected"]["held"].as_u64() >= Some(1)
    })
    .await;
    set_faults(dst, json!({})).await;
    let out = migrate_project(src, dst, data.path(), &dst.admin_token).await;
    assert!(out.status.success(), "the resumed run: {}", explain(&out));
    out
}

/// The source exports collections in batches of `n` records (GitLab's `relation_export_batch_size`).
async fn set_batch_size(src: &forge_sim::RunningSim, n: u32) {
    let resp = http()
        .put(format!("{}/api/v4/application/settings", src.url))
        .header("PRIVATE-TOKEN", &src.admin_token)
        .form(&[("relation_export_batch_size", n.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// The stats row of `relation` of the report's first entity.
fn first_stat(r: &Value, relation: &str) -> Value {
    stat(&r["entities"][0], relation)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_in_a_merge_request_batch_resumes_with_nothing_twice_and_nothing_missing() {
    let (src, dst) = (source().await, destination().await);
    // Batches of two, so the project's merge requests are several pages, each loaded through
    // GitLab's relation import (one page alone would travel in the archive that creates the project).
    set_batch_size(&src, 2).await;
    // The merge request batch reached the destination; the appliance is killed while it reads the
    // batch back, before the page is committed.
    let fault = json!({"hold": {
        "when": {"method": "POST", "path": "/api/v4/projects/import-relation",
                 "body_contains": "merge_requests"},
        "after": 1,
        "hold": {"method": "GET", "path": "/api/v4/projects/*/merge_requests"},
    }});
    let out = kill_and_resume(&src, &dst, fault, "the merge request batch").await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Resuming migration"),
        "{}",
        explain(&out)
    );
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    for kind in ["issues", "merge_requests"] {
        let n = assert_same_items(&src, &dst, "imported/api", kind).await;
        let stat = first_stat(&r, kind);
        assert_eq!(stat["imported"], n as u64, "{kind}: {stat}");
    }
    src.shutdown().await;
    dst.shutdown().await;
}

/// A kill after the project (with its design repository) was created and before its first issue
/// batch went: the resumed run still sends the issues with their designs (what the design
/// repository holds is kept with the designs row), and every design arrives once.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_before_the_issue_batches_resumes_with_every_design() {
    let (src, dst) = (source().await, destination().await);
    set_batch_size(&src, 2).await;
    let fault = json!({"hold": {
        "when": {"method": "POST", "path": "/api/v4/projects/import"},
        "after": 1,
        "hold": {"method": "POST", "path": "/api/v4/projects/import-relation",
                 "body_contains": "name=\"relation\"\r\n\r\nissues"},
    }});
    let out = kill_and_resume(&src, &dst, fault, "the first issue batch").await;
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    assert!(
        report_rows(&r, "skipped")
            .iter()
            .all(|s| s["relation"] != "issues"),
        "no issue went without its designs: {r:#}"
    );
    let n = assert_same_items(&src, &dst, "imported/api", "issues").await;
    assert_eq!(first_stat(&r, "issues")["imported"], n as u64);
    let designs = first_stat(&r, "designs");
    for k in ["source", "fetched", "imported"] {
        assert_eq!(designs[k], 2, "designs.{k}: {designs}");
    }
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_projects_creates_no_project_and_reports_each_one() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let out = migrate_group(
        &src,
        &dst,
        data.path(),
        "acme",
        "imported",
        &["--skip-projects"],
    )
    .await;
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&out);
    let entities = r["entities"].as_array().unwrap();
    assert!(
        entities.iter().all(|e| e["entity_type"] == "group"),
        "no project entity: {r:#}"
    );
    let skipped: Vec<&Value> = entities
        .iter()
        .flat_map(|e| e["skipped"].as_array().unwrap())
        .filter(|s| s["relation"] == "projects")
        .collect();
    let source_projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(
        skipped.len(),
        source_projects.len(),
        "each project is reported: {skipped:#?}"
    );
    for s in &skipped {
        assert!(
            s["exception_message"]
                .as_str()
                .is_some_and(|m| m.contains("migrate_projects is false")),
            "{s}"
        );
    }
    let dest_projects = get_all(
        &dst.url,
        &dst.admin_token,
        "groups/imported/projects?include_subgroups=true",
    )
    .await;
    assert!(
        dest_projects.is_empty(),
        "no project was created: {dest_projects:#?}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_while_the_destination_imports_the_project_resumes_without_a_second_import() {
    let (src, dst) = (source().await, destination().await);
    // The project import reached the destination; the appliance is killed while it follows it.
    let fault = json!({"hold": {
        "when": {"method": "POST", "path": "/api/v4/projects/import"},
        "after": 1,
        "hold": {"method": "GET", "path": "/api/v4/projects/*/import"},
    }});
    let out = kill_and_resume(&src, &dst, fault, "the project import").await;
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let imports = sim_requests(&dst).await["by_request"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("POST /api/v4/projects/import"))
        .filter(|(k, _)| !k.contains("import-relation"))
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(imports, 1, "the project was imported once");
    let projects = get_all(
        &dst.url,
        &dst.admin_token,
        "groups/imported/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(projects.len(), 1, "one project: {projects:#?}");
    for kind in ["issues", "merge_requests"] {
        let n = assert_same_items(&src, &dst, "imported/api", kind).await;
        let stat = first_stat(&r, kind);
        assert_eq!(stat["imported"], n as u64, "{kind}: {stat}");
    }
    // What travelled in the archive is counted once.
    let labels = first_stat(&r, "labels");
    assert_eq!(labels["imported"], labels["source"], "{labels}");
    src.shutdown().await;
    dst.shutdown().await;
}

/// A project at the destination equals its source: attributes, refs and commit ids, labels (its own
/// when it came with its group), and every issue and merge request field by field. Returns (issues, merge requests).
async fn assert_same_project(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    src_path: &str,
    dest_path: &str,
    with_group: bool,
) -> (usize, usize) {
    let source = get(
        &src.url,
        &src.owner_token,
        &format!("projects/{}", enc(src_path)),
    )
    .await
    .unwrap();
    let dest = get(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}", enc(dest_path)),
    )
    .await
    .unwrap_or_else(|| panic!("{src_path} arrived at {dest_path}"));
    for k in ["name", "description", "default_branch"] {
        assert_eq!(dest[k], source[k], "{src_path}: {k}");
    }
    let heads = |r: BTreeMap<String, String>| -> BTreeMap<String, String> {
        r.into_iter()
            .filter(|(r, _)| !r.starts_with("refs/merge-requests/"))
            .collect()
    };
    assert_eq!(
        heads(refs(dst, dest_path)),
        heads(refs(src, src_path)),
        "{src_path}: refs and commit ids"
    );
    let titles = async |sim: &forge_sim::RunningSim, token: &str, path: &str, ancestors: bool| {
        let mut t: Vec<String> = get_all(
            &sim.url,
            token,
            &format!(
                "projects/{}/labels?include_ancestor_groups={ancestors}",
                enc(path)
            ),
        )
        .await
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
        t.sort();
        t
    };
    let got = titles(dst, &dst.admin_token, dest_path, false).await;
    let own = titles(src, &src.owner_token, src_path, false).await;
    if with_group {
        assert_eq!(got, own, "{src_path}: labels");
    } else {
        // Without its group, GitLab's import gives the project a label of its own for each group
        // label its items carry: its own labels, and only labels it could see at the source.
        let visible = titles(src, &src.owner_token, src_path, true).await;
        assert!(
            own.iter().all(|l| got.contains(l)) && got.iter().all(|l| visible.contains(l)),
            "{src_path}: labels {got:?}, own {own:?}, visible {visible:?}"
        );
    }
    (
        assert_same_items_of(src, dst, src_path, dest_path, "issues").await,
        assert_same_items_of(src, dst, src_path, dest_path, "merge_requests").await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_with_its_projects_migrates_through_a_bundle() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    export(&src, &bundle, &dir.path().join("export-data"), &[]).await;
    let v = verify(&[&bundle], &[]).await;
    assert!(v.status.success(), "{}", text(&v));

    // The bundle says which projects it holds and how large their repositories are.
    let mut cmd = appliance();
    cmd.arg("inspect").arg(&bundle).arg("--json");
    let info: Value = serde_json::from_slice(&run(cmd).await.stdout).expect("inspect --json");
    let source_projects: Vec<String> = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await
    .iter()
    .map(|p| p["path_with_namespace"].as_str().unwrap().to_string())
    .collect();
    assert!(!source_projects.is_empty());
    let carried: Vec<&Value> = info["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "project")
        .collect();
    assert_eq!(carried.len(), source_projects.len(), "{info:#}");
    for e in &carried {
        assert_eq!(e["status"], "finished", "{e}");
        let size = e["relations"]["repository"]["size"].as_u64().unwrap_or(0);
        assert!(
            size > 0,
            "{} carries its repository: {e}",
            e["source_full_path"]
        );
    }
    // Version 3: a project's design repository is in it.
    assert_eq!(info["format_version"], 3);

    // The replay reads nothing from the source: it is gone.
    let mut cmd = replay_cmd(&dst, &bundle, &dir.path().join("replay-data"));
    cmd.arg("--json")
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "replay failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let projects: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] == "project")
        .collect();
    assert_eq!(projects.len(), source_projects.len(), "{r:#}");
    let (mut issues, mut mrs) = (0, 0);
    for p in projects {
        assert_eq!(p["status"], "finished", "{p:#}");
        let src_path = p["source_full_path"].as_str().unwrap();
        let dest_path = p["destination_full_path"].as_str().unwrap();
        let (i, m) = assert_same_project(&src, &dst, src_path, dest_path, true).await;
        for (kind, n) in [("issues", i), ("merge_requests", m)] {
            let stat = p["stats"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["relation"] == kind)
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                stat["imported"].as_u64().unwrap_or(0),
                n as u64,
                "{src_path} {kind}: {stat}"
            );
        }
        issues += i;
        mrs += m;
    }
    assert!(
        issues > 0 && mrs > 0,
        "the projects had issues and merge requests"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// `export --project` (repeatable): projects on their own travel in one bundle, each a top-level
/// entity, and a replay creates each under `--to`, equal to its source.
#[tokio::test(flavor = "multi_thread")]
async fn projects_on_their_own_travel_through_a_bundle() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("projects.bundle");
    let wanted = ["acme/backend/api", "acme/docs"];
    let mut cmd = appliance();
    cmd.args(["export", "--source-url", &src.url])
        .args(["--project", wanted[0], "--project", wanted[1]])
        .arg("--out")
        .arg(&bundle)
        .arg("--data")
        .arg(dir.path().join("export-data"))
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "export failed: {}", explain(&out));
    let v = verify(&[&bundle], &[]).await;
    assert!(v.status.success(), "{}", text(&v));

    let mut cmd = appliance();
    cmd.arg("inspect").arg(&bundle).arg("--json");
    let info: Value = serde_json::from_slice(&run(cmd).await.stdout).expect("inspect --json");
    let mut roots: Vec<(String, String)> = info["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["parent"].is_null())
        .map(|e| {
            (
                e["source_full_path"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    roots.sort();
    assert_eq!(
        roots,
        wanted
            .iter()
            .map(|p| (p.to_string(), "project".to_string()))
            .collect::<Vec<_>>(),
        "{info:#}"
    );

    let mut cmd = replay_cmd(&dst, &bundle, &dir.path().join("replay-data"));
    cmd.arg("--json")
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "replay failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let entities = r["entities"].as_array().unwrap();
    assert_eq!(entities.len(), wanted.len(), "{r:#}");
    let (mut issues, mut mrs) = (0, 0);
    for project in wanted {
        let e = entities
            .iter()
            .find(|e| e["source_full_path"] == project)
            .unwrap_or_else(|| panic!("{project} was replayed: {r:#}"));
        assert_eq!(e["entity_type"], "project", "{e:#}");
        assert_eq!(e["status"], "finished", "{e:#}");
        let name = project.rsplit('/').next().unwrap();
        let dest_path = format!("imported/{name}");
        assert_eq!(e["destination_full_path"], dest_path.as_str(), "{e:#}");
        let (i, m) = assert_same_project(&src, &dst, project, &dest_path, false).await;
        issues += i;
        mrs += m;
    }
    assert!(
        issues > 0 && mrs > 0,
        "the projects had issues and merge requests"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_user_map_gives_a_members_contributions_to_the_mapped_user() {
    let (src, dst) = (source().await, destination().await);
    let members = members(&src, PROJECT).await;
    let issues = items(&src.url, &src.owner_token, PROJECT, "issues").await;
    let wrote = |user: &str, item: &Value| {
        item["author"] == user
            || item["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["author"] == user)
    };
    // A member who wrote something, mapped to a destination user who is not a member of the project.
    let author = members
        .iter()
        .find(|m| *m != "root" && issues.iter().any(|i| wrote(m, i)))
        .expect("a member wrote an issue or a note")
        .clone();
    let target = ["farah", "dmitri", "chen", "bjorn", "ada"]
        .into_iter()
        .find(|u| !members.iter().any(|m| m == u))
        .expect("a destination user who is not a member");
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("users.csv");
    std::fs::write(&map, format!("{author},{target}\n")).unwrap();
    let mut cmd = migrate_project_cmd(&src, &dst, &dir.path().join("data"), &dst.admin_token);
    cmd.arg("--user-map").arg(&map);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", explain(&out));
    assert_eq!(report(&out)["has_failures"], false, "{}", explain(&out));

    // What GitLab's import makes of the source's issues, then the mapped member's part given to the
    // destination user the map names.
    let want: Vec<Value> = expected(&issues, &members, "root")
        .into_iter()
        .map(|mut i| {
            if i["author"] == author.as_str() {
                i["author"] = target.into();
            }
            for n in i["notes"].as_array_mut().unwrap() {
                if n["author"] == author.as_str() {
                    n["author"] = target.into();
                }
            }
            i
        })
        .collect();
    let got = unname(
        &items(&dst.url, &dst.admin_token, "imported/api", "issues").await,
        &issues,
    );
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{author}'s contributions are {target}'s");
    }
    assert!(
        got.iter().any(|i| wrote(target, i)),
        "the mapped user has contributions"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_that_refuses_gitlab_exports_is_said_before_anything_is_written() {
    let (src, dst) = (source().await, destination().await);
    let resp = http()
        .put(format!("{}/api/v4/application/settings", dst.url))
        .header("PRIVATE-TOKEN", &dst.admin_token)
        .json(&json!({"import_sources": ["github", "bitbucket"]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let data = tempfile::tempdir().unwrap();
    let out = migrate_project(&src, &dst, data.path(), &dst.admin_token).await;
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("does not accept GitLab export imports")
            && said.contains("import_sources[]=gitlab_project")
            && said.contains("--skip-projects"),
        "says what to change: {said}"
    );
    let requests = sim_requests(&dst).await;
    let writes: u64 = requests["by_request"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("GET ") && !k.contains("/application/settings"))
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(writes, 0, "nothing was written: {requests:#}");
    // Groups still migrate without their projects.
    let out = migrate_group(
        &src,
        &dst,
        data.path(),
        "acme",
        "imported",
        &["--skip-projects"],
    )
    .await;
    assert!(out.status.success(), "{}", explain(&out));
    src.shutdown().await;
    dst.shutdown().await;
}

/// A group's projects have their exports started at the source when the group lists them, as GitLab's
/// direct transfer starts each entity's export when it creates the entity: each project's export is
/// asked for before the project's own migration reads anything of it, and only once.
#[tokio::test(flavor = "multi_thread")]
async fn each_projects_export_is_started_when_its_group_lists_it_and_only_once() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let out = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    assert!(out.status.success(), "{}", explain(&out));
    assert_eq!(report(&out)["has_failures"], false);
    let requests = sim_requests(&src).await;
    let projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(projects.len(), 4, "{projects:#?}");
    for p in &projects {
        let path = p["path_with_namespace"].as_str().unwrap();
        let start = format!("POST /api/v4/projects/{}/export_relations", p["id"]);
        // Stage 0 of the project's own migration reads its attributes first, by path.
        let own = format!("GET /api/v4/projects/{}", enc(path));
        assert_eq!(requests["by_request"][&start], 1, "{path}: started once");
        let (started, read) = (
            requests["first_seen"][&start].as_u64(),
            requests["first_seen"][&own].as_u64(),
        );
        assert!(
            started.is_some() && read.is_some() && started < read,
            "{path}: its export was asked for (request {started:?}) before its migration began \
             (request {read:?})"
        );
    }
    src.shutdown().await;
    dst.shutdown().await;
}

/// GitLab builds an export in a background job, and until the job runs, the export's status
/// shows the previous export as it ended: finished, its files old. A second migration of a
/// project whose source changed since the first carries the change, not the previous export.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_migration_reads_the_export_it_asked_for_not_the_previous_one() {
    let src = source().await;
    set_faults(&src, json!({"export_worker_delay_ms": 1500})).await;
    let first = destination().await;
    let data = tempfile::tempdir().unwrap();
    let out = migrate_project(&src, &first, data.path(), &first.admin_token).await;
    assert!(out.status.success(), "first migrate: {}", explain(&out));

    // The source changes after its first export: an issue is renamed.
    let renamed = "Renamed after the first migration";
    {
        let mut store = src.sim.write();
        let pid = store.resolve_project(PROJECT).unwrap();
        let id = store
            .issues
            .children(forge_sim::model::Parent::Project(pid))
            .map(|i| i.id)
            .min()
            .expect("the sample project has issues");
        store.issues.get_mut(id).unwrap().title = renamed.into();
    }
    // A while later (an export that ended within a second of the request could be its own).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    let second = destination().await;
    let data = tempfile::tempdir().unwrap();
    let out = migrate_project(&src, &second, data.path(), &second.admin_token).await;
    assert!(out.status.success(), "second migrate: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let titles: Vec<Value> = get_all(
        &second.url,
        &second.admin_token,
        &format!("projects/{}/issues?state=all", enc("imported/api")),
    )
    .await
    .iter()
    .map(|i| i["title"].clone())
    .collect();
    assert!(
        titles.contains(&json!(renamed)),
        "the issue as the source has it now: {titles:?}"
    );
    // Everything else too, field by field.
    assert_same_items(&src, &second, "imported/api", "issues").await;
}

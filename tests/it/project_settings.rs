//! A project's CI/CD and repository settings migrate live with it (they travel in the archive that
//! creates the project): protected tags, pipelines, pipeline schedules, the container expiration
//! policy, Auto DevOps, the push rule, Service Desk, external pull requests and commit notes, each
//! compared source to destination field by field through the REST API GitLab has for it, and each
//! counted exactly in the report.

use crate::common;

use common::*;
use forge_sim::model::Parent;
use serde_json::{Value, json};

const PROJECT: &str = "acme/backend/api";
const DEST: &str = "imported/api";

async fn migrate(src: &forge_sim::RunningSim, dst: &forge_sim::RunningSim) -> Value {
    let data = tempfile::tempdir().unwrap();
    let cmd = migrate_one_project(src, dst, PROJECT, data.path(), &dst.admin_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "migrate failed: {}", explain(&out));
    report(&out)
}

/// `record` with only `keys`.
fn pick(record: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), record[*k].clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_and_repository_settings_migrate_with_their_project() {
    let (src, dst) = (source().await, destination().await);
    let r = migrate(&src, &dst).await;
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");
    let (s, d) = (
        |path: &str| format!("projects/{}/{path}", enc(PROJECT)),
        |path: &str| format!("projects/{}/{path}", enc(DEST)),
    );
    let (su, st, du, dt) = (&src.url, &src.owner_token, &dst.url, &dst.admin_token);

    // Protected tags: name and who may create, exactly (access level ids are the destination's).
    let tags = |v: Vec<Value>| {
        v.iter()
            .map(|t| {
                let levels: Vec<Value> = t["create_access_levels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| pick(l, &["access_level", "access_level_description"]))
                    .collect();
                json!({"name": t["name"], "create_access_levels": levels})
            })
            .collect::<Vec<_>>()
    };
    let want_tags = tags(get_all(su, st, &s("protected_tags")).await);
    assert_eq!(want_tags.len(), 2, "{want_tags:?}");
    assert_eq!(tags(get_all(du, dt, &d("protected_tags")).await), want_tags);

    // Pipelines keep iid, commit, ref, status, source and dates (ids are the destination's).
    let keys = [
        "iid",
        "sha",
        "ref",
        "status",
        "source",
        "created_at",
        "updated_at",
    ];
    let pipelines = |v: Vec<Value>| v.iter().map(|p| pick(p, &keys)).collect::<Vec<_>>();
    let want_pipelines = pipelines(get_all(su, st, &s("pipelines")).await);
    assert_eq!(want_pipelines.len(), 4);
    assert_eq!(
        pipelines(get_all(du, dt, &d("pipelines")).await),
        want_pipelines
    );

    // Pipeline schedules: the same, owned by the same users, but inactive (GitLab's import turns
    // every schedule off, so an imported project starts no pipeline by itself).
    let keys = [
        "description",
        "ref",
        "cron",
        "cron_timezone",
        "next_run_at",
        "created_at",
    ];
    let schedules = |v: &[Value]| {
        v.iter()
            .map(|x| {
                let mut p = pick(x, &keys);
                p["owner"] = x["owner"]["username"].clone();
                p
            })
            .collect::<Vec<_>>()
    };
    let want_schedules = get_all(su, st, &s("pipeline_schedules")).await;
    let got_schedules = get_all(du, dt, &d("pipeline_schedules")).await;
    assert_eq!(want_schedules.len(), 2);
    assert!(want_schedules.iter().any(|x| x["active"] == true));
    assert!(
        got_schedules.iter().all(|x| x["active"] == false),
        "{got_schedules:?}"
    );
    assert_eq!(schedules(&got_schedules), schedules(&want_schedules));

    // The push rule, every rule of it.
    let rule = |mut v: Value| {
        let o = v.as_object_mut().expect("a push rule");
        for k in ["id", "project_id", "created_at"] {
            o.remove(k);
        }
        v
    };
    let want_rule = rule(get(su, st, &s("push_rule")).await.unwrap());
    assert_eq!(want_rule["deny_delete_tag"], true);
    assert_eq!(rule(get(du, dt, &d("push_rule")).await.unwrap()), want_rule);

    // The container expiration policy, Auto DevOps and Service Desk, as the project shows them.
    let (sp, dp) = (
        get(su, st, &format!("projects/{}", enc(PROJECT)))
            .await
            .unwrap(),
        get(du, dt, &format!("projects/{}", enc(DEST)))
            .await
            .unwrap(),
    );
    for k in [
        "container_expiration_policy",
        "auto_devops_enabled",
        "auto_devops_deploy_strategy",
        "service_desk_enabled",
    ] {
        assert_eq!(dp[k], sp[k], "{k}");
    }
    assert_eq!(sp["container_expiration_policy"]["keep_n"], 25);
    assert_eq!(sp["auto_devops_deploy_strategy"], "timed_incremental");
    assert_eq!(sp["service_desk_enabled"], true);

    // Commit notes, commit by commit: the same text, date and author, except eve's, who is no
    // member of the project: GitLab's import gives hers to the importer and names her.
    let commits = src.sim.git.commits_at_head(PROJECT).unwrap();
    let mut notes = 0;
    for sha in &commits {
        let path = format!("repository/commits/{sha}/comments");
        let want = get_all(su, st, &s(&path)).await;
        let got = get_all(du, dt, &d(&path)).await;
        assert_eq!(got.len(), want.len(), "comments on {sha}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["created_at"], w["created_at"]);
            let (gn, wn) = (g["note"].as_str().unwrap(), w["note"].as_str().unwrap());
            if w["author"]["username"] == "eve" {
                assert_eq!(g["author"]["username"], "root");
                assert!(
                    gn.starts_with(wn) && gn.contains("*By Eve Quiet on "),
                    "{gn}"
                );
            } else {
                assert_eq!(gn, wn);
                assert_eq!(g["author"]["username"], w["author"]["username"]);
            }
        }
        notes += want.len();
    }
    assert_eq!(notes, 3);

    // GitLab's REST API reads neither external pull requests nor Service Desk's settings: compared
    // in the simulators' stores, field by field (ids excepted).
    let dest_id = dp["id"].as_u64().unwrap();
    let source_id = sp["id"].as_u64().unwrap();
    {
        let (ss, ds) = (src.sim.read(), dst.sim.read());
        let prs = |store: &forge_sim::state::Store, id: u64| {
            store
                .external_pull_requests
                .children(Parent::Project(id))
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap();
                    let o = v.as_object_mut().unwrap();
                    o.remove("id");
                    o.remove("project_id");
                    v
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(prs(&ss, source_id).len(), 1);
        assert_eq!(prs(&ds, dest_id), prs(&ss, source_id));
        let desk = |store: &forge_sim::state::Store, id: u64| {
            serde_json::to_value(store.service_desk_settings.get(&id)).unwrap()
        };
        assert_eq!(desk(&ds, dest_id), desk(&ss, source_id));
        assert_eq!(desk(&ss, source_id)["project_key"], "api-support");
    }

    // The report counts each exactly: what the source has, and what arrived.
    for (relation, n) in [
        ("protected_tags", 2),
        ("ci_pipelines", 4),
        ("pipeline_schedules", 2),
        ("container_expiration_policy", 1),
        ("auto_devops", 1),
        ("push_rule", 1),
        ("service_desk_setting", 1),
        ("external_pull_requests", 1),
        ("commit_notes", 3),
    ] {
        let stat = r["entities"][0]["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["relation"] == relation)
            .unwrap_or_else(|| panic!("no {relation} stats: {r:#}"))
            .clone();
        assert_eq!(stat["source"], n, "{relation}: {stat}");
        assert_eq!(stat["imported"], n, "{relation}: {stat}");
    }
    src.shutdown().await;
    dst.shutdown().await;
}

/// The first record of a project's REST list at the source.
async fn first(src: &forge_sim::RunningSim, list: &str) -> Value {
    get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/{list}", enc(PROJECT)),
    )
    .await
    .into_iter()
    .next()
    .unwrap_or_else(|| panic!("{PROJECT} has {list}"))
}

/// The failure rows of the report's first entity for `relation`.
fn failures_of(r: &Value, relation: &str) -> Vec<Value> {
    r["entities"][0]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["relation"] == relation)
        .cloned()
        .collect()
}

/// The stats row of `relation` of the report's first entity.
fn first_stat(r: &Value, relation: &str) -> Value {
    stat(&r["entities"][0], relation)
}

/// GitLab's project import drops a record it cannot restore and names only its relation: each
/// dropped label, release, protected tag and pipeline schedule is created through the REST API
/// (the same fields as the source), and a dropped pipeline, which REST cannot create, is a failure
/// row of its own with its title and URL.
#[tokio::test(flavor = "multi_thread")]
async fn records_the_import_drops_are_created_through_rest_and_the_rest_are_named() {
    let (src, dst) = (source().await, destination().await);
    let label = first(&src, "labels?include_ancestor_groups=false").await;
    let release = first(&src, "releases").await;
    let tag = first(&src, "protected_tags").await;
    let schedule = first(&src, "pipeline_schedules").await;
    let pipeline = first(&src, "pipelines").await;
    let refuse =
        |relation: &str, contains: String| json!({"relation": relation, "contains": contains});
    set_faults(
        &dst,
        json!({"import_refusals": [
            refuse("labels", format!("\"title\":\"{}\"", label["name"].as_str().unwrap())),
            refuse("releases", format!("\"tag\":\"{}\"", release["tag_name"].as_str().unwrap())),
            refuse("protected_tags", format!("\"name\":\"{}\"", tag["name"].as_str().unwrap())),
            refuse("pipeline_schedules", format!("\"description\":\"{}\"", schedule["description"].as_str().unwrap())),
            refuse("ci_pipelines", format!("\"sha\":\"{}\"", pipeline["sha"].as_str().unwrap())),
        ]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let out = run(migrate_one_project(
        &src,
        &dst,
        PROJECT,
        data.path(),
        &dst.admin_token,
    ))
    .await;
    let r = report(&out);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));

    // Each relation the import dropped from is complete at the destination, counted there.
    for relation in ["labels", "releases", "protected_tags", "pipeline_schedules"] {
        let row = first_stat(&r, relation);
        assert_eq!(row["imported"], row["source"], "{relation}: {row}");
        assert!(failures_of(&r, relation).is_empty(), "{r:#}");
    }
    let (s, d) = (
        |path: &str| format!("projects/{}/{path}", enc(PROJECT)),
        |path: &str| format!("projects/{}/{path}", enc(DEST)),
    );
    let (su, st, du, dt) = (&src.url, &src.owner_token, &dst.url, &dst.admin_token);
    let keys = ["name", "color", "description", "priority"];
    let labels = |v: Vec<Value>| {
        let mut v: Vec<Value> = v.iter().map(|l| pick(l, &keys)).collect();
        v.sort_by_key(|l| l["name"].to_string());
        v
    };
    // The project's own labels (the destination also has the group labels its issues use, which
    // GitLab's import creates in the project when the destination has no such group).
    let want = labels(get_all(su, st, &s("labels?include_ancestor_groups=false")).await);
    let got: Vec<Value> = labels(get_all(du, dt, &d("labels")).await)
        .into_iter()
        .filter(|l| want.iter().any(|w| w["name"] == l["name"]))
        .collect();
    assert_eq!(got, want);
    let keys = ["tag_name", "name", "description", "released_at"];
    let releases = |v: Vec<Value>| {
        let mut v: Vec<Value> = v
            .iter()
            .map(|x| {
                let mut p = pick(x, &keys);
                p["links"] = x["assets"]["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| pick(l, &["name", "url", "link_type"]))
                    .collect();
                p["milestones"] = x["milestones"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| m["title"].clone())
                    .collect();
                p
            })
            .collect();
        v.sort_by_key(|x| x["tag_name"].to_string());
        v
    };
    assert_eq!(
        releases(get_all(du, dt, &d("releases")).await),
        releases(get_all(su, st, &s("releases")).await)
    );
    let tags = |v: Vec<Value>| {
        let mut v: Vec<Value> = v
            .iter()
            .map(|t| json!([t["name"], t["create_access_levels"][0]["access_level"]]))
            .collect();
        v.sort_by_key(|t| t.to_string());
        v
    };
    assert_eq!(
        tags(get_all(du, dt, &d("protected_tags")).await),
        tags(get_all(su, st, &s("protected_tags")).await)
    );
    let keys = ["description", "ref", "cron", "cron_timezone"];
    let schedules = |v: Vec<Value>| {
        let mut v: Vec<Value> = v.iter().map(|x| pick(x, &keys)).collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    let got = get_all(du, dt, &d("pipeline_schedules")).await;
    assert!(got.iter().all(|x| x["active"] == false), "{got:?}");
    assert_eq!(
        schedules(got),
        schedules(get_all(su, st, &s("pipeline_schedules")).await)
    );

    // Each was dropped by the import and created by one REST request.
    let requests = sim_requests(&dst).await;
    let project_id = get(du, dt, &format!("projects/{}", enc(DEST)))
        .await
        .unwrap()["id"]
        .clone();
    for list in ["labels", "releases", "protected_tags", "pipeline_schedules"] {
        let key = format!("POST /api/v4/projects/{project_id}/{list}");
        assert_eq!(requests["by_request"][&key], 1, "{key}: {requests:#}");
    }

    // The pipeline cannot be created through REST: one failure row, naming it.
    let row = first_stat(&r, "ci_pipelines");
    assert_eq!(
        row["imported"].as_u64().unwrap() + 1,
        row["source"].as_u64().unwrap(),
        "{row}"
    );
    let failures = failures_of(&r, "ci_pipelines");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = &failures[0];
    assert_eq!(
        f["source_title"],
        format!(
            "Pipeline #{} ({}, {})",
            pipeline["iid"],
            pipeline["ref"].as_str().unwrap(),
            pipeline["sha"].as_str().unwrap()
        ),
        "{f}"
    );
    assert_eq!(
        f["source_url"],
        format!("{}/{PROJECT}/-/pipelines/{}", src.url, pipeline["id"]),
        "{f}"
    );
    let message = f["exception_message"].as_str().unwrap();
    assert!(
        message.contains("did not arrive with the project's import")
            && message.contains("forge-sim import_refusals")
            && message.contains("cannot create a pipeline"),
        "{message}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// A record the import dropped and the REST API refused too is a failure row with its title and
/// URL; a retry, which finds the project already there, reads the relation again and adds what
/// is missing, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_adds_the_records_the_first_import_dropped() {
    let (src, dst) = (source().await, destination().await);
    let label = first(&src, "labels?include_ancestor_groups=false").await;
    let release = first(&src, "releases").await;
    let (label, tag_name) = (
        label["name"].as_str().unwrap().to_string(),
        release["tag_name"].as_str().unwrap().to_string(),
    );
    set_faults(
        &dst,
        json!({
            "import_refusals": [
                {"relation": "labels", "contains": format!("\"title\":\"{label}\"")},
                {"relation": "releases", "contains": format!("\"tag\":\"{tag_name}\"")},
            ],
            "reject": [
                {"method": "POST", "path_contains": "/labels", "status": 422, "message": "Label is invalid"},
                {"method": "POST", "path_contains": "/releases", "status": 422, "message": "Release is invalid"},
            ]
        }),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let cmd = || migrate_one_project(&src, &dst, PROJECT, data.path(), &dst.admin_token);
    let out = run(cmd()).await;
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let r = report(&out);
    for (relation, title, url) in [
        (
            "labels",
            label.clone(),
            format!("{}/{PROJECT}/-/labels", src.url),
        ),
        (
            "releases",
            release["name"].as_str().unwrap().to_string(),
            format!("{}/{PROJECT}/-/releases/{tag_name}", src.url),
        ),
    ] {
        let failures = failures_of(&r, relation);
        assert_eq!(failures.len(), 1, "{relation}: {failures:#?}");
        let f = &failures[0];
        assert_eq!(
            (&f["source_title"], &f["source_url"]),
            (&json!(title), &json!(url))
        );
        let message = f["exception_message"].as_str().unwrap();
        assert!(
            message.contains("creating it through the REST API failed")
                && message.contains("is invalid"),
            "{message}"
        );
        let row = first_stat(&r, relation);
        assert_eq!(
            row["imported"].as_u64().unwrap() + 1,
            row["source"].as_u64().unwrap(),
            "{row}"
        );
    }

    set_faults(&dst, json!({})).await;
    let mut retry = cmd();
    retry.arg("--retry");
    let out = run(retry).await;
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    for relation in ["labels", "releases"] {
        let row = first_stat(&r, relation);
        assert_eq!(row["imported"], row["source"], "{relation}: {row}");
        assert!(row["source"].as_u64().unwrap() > 0, "{row}");
    }
    let named = |v: Vec<Value>, key: &str, want: &str| v.iter().filter(|x| x[key] == want).count();
    let d = |path: &str| format!("projects/{}/{path}", enc(DEST));
    let (du, dt) = (&dst.url, &dst.admin_token);
    assert_eq!(
        named(get_all(du, dt, &d("labels")).await, "name", &label),
        1
    );
    assert_eq!(
        named(get_all(du, dt, &d("releases")).await, "tag_name", &tag_name),
        1
    );
    let issues = |v: Vec<Value>| v.len();
    assert_eq!(
        issues(get_all(du, dt, &d("issues")).await),
        issues(
            get_all(
                &src.url,
                &src.owner_token,
                &format!("projects/{}/issues", enc(PROJECT))
            )
            .await
        ),
        "no issue twice"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// A kill right after the first record the import dropped was created through REST, while the next
/// is on its way: the same command again creates each dropped record once, and imports the project
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_while_dropped_records_are_created_resumes_with_each_once() {
    let (src, dst) = (source().await, destination().await);
    let labels: Vec<String> = get_all(
        &src.url,
        &src.owner_token,
        &format!(
            "projects/{}/labels?include_ancestor_groups=false",
            enc(PROJECT)
        ),
    )
    .await
    .iter()
    .map(|l| l["name"].as_str().unwrap().to_string())
    .collect();
    assert!(labels.len() >= 2, "{labels:?}");
    let refusals: Vec<Value> = labels
        .iter()
        .map(|l| json!({"relation": "labels", "contains": format!("\"title\":\"{l}\"")}))
        .collect();
    set_faults(
        &dst,
        json!({
            "import_refusals": refusals,
            "hold": {
                "when": {"method": "POST", "path": "/api/v4/projects/*/labels"},
                "after": 1,
                "hold": {"method": "write"},
            }
        }),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let cmd = || migrate_one_project(&src, &dst, PROJECT, data.path(), &dst.admin_token);
    let mut child = cmd()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start appliance");
    kill_when(&mut child, "the second label's create", async || {
        sim_requests(&dst).await["injected"]["held"].as_u64() >= Some(1)
    })
    .await;
    set_faults(&dst, json!({})).await;
    let out = run(cmd()).await;
    assert!(out.status.success(), "the resumed run: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let row = first_stat(&r, "labels");
    assert_eq!(row["imported"], row["source"], "{row}");
    let got = get_all(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}/labels", enc(DEST)),
    )
    .await;
    for label in &labels {
        assert_eq!(
            got.iter().filter(|l| l["name"] == label.as_str()).count(),
            1,
            "{label}: {got:#?}"
        );
    }
    let requests = sim_requests(&dst).await;
    assert_eq!(
        requests["by_request"]["POST /api/v4/projects/import"], 1,
        "{requests:#}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

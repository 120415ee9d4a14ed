//! A project's CI/CD and repository settings through GitLab's project import, as a client sees
//! them: protected tags, pipelines, pipeline schedules, the container expiration policy, Auto
//! DevOps, the push rule, Service Desk, external pull requests and commit notes. Each is imported
//! from the real GitLab export fixture, or from the export of a seeded project, and read back
//! through the REST API (or, for what GitLab's REST API does not list, the imported project's own
//! export).

use std::collections::BTreeMap;
use std::time::Duration;

use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::{Value, json};

use crate::support;
use support::*;

/// `POST /projects/import` into `imported/<path>`, followed to its end without a failed relation;
/// the project's id.
async fn import(api: &Api, path: &str, files: &BTreeMap<String, Vec<u8>>) -> u64 {
    let (status, created) = api
        .post_form(
            "projects/import",
            &[("path", path), ("namespace", "imported")],
            Some(tar_gz(files)),
        )
        .await;
    assert_eq!(status, 201, "POST projects/import");
    let status = api.wait_import(&created["id"]).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    assert_eq!(status["failed_relations"], json!([]), "{status}");
    created["id"].as_u64().expect("id")
}

/// `record` with only `keys`.
fn pick(record: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), record[*k].clone()))
            .collect(),
    )
}

/// The archive a GitLab export of `project` on `sim` would be: its relation export as
/// `tree/project/<relation>.ndjson` and its repository as `project.bundle`.
async fn archive_of(sim: &RunningSim, api: &Api, project: &str) -> BTreeMap<String, Vec<u8>> {
    let relations = api.export(&project.replace('/', "%2F")).await;
    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4\n".to_vec());
    files.insert(
        "tree/project.json".to_owned(),
        serde_json::to_vec(&relations["self"][0]).unwrap(),
    );
    for (relation, records) in relations.iter().filter(|(r, _)| *r != "self") {
        let lines: Vec<String> = records.iter().map(Value::to_string).collect();
        files.insert(
            format!("tree/project/{relation}.ndjson"),
            lines.join("\n").into_bytes(),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("project.bundle");
    let out = std::process::Command::new("git")
        .args(["bundle", "create"])
        .arg(&bundle)
        .arg("--all")
        .env("GIT_DIR", sim.sim.git.repo_path(project).expect("repo"))
        .output()
        .expect("git bundle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files.insert("project.bundle".to_owned(), std::fs::read(&bundle).unwrap());
    files
}

#[tokio::test]
async fn the_gitlab_fixture_brings_its_ci_settings_tags_and_commit_notes() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 3))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token).in_pages_of(2);
    let id = import(&api, "fixture", &fixture_files()).await;

    let tags = api.list(&format!("projects/{id}/protected_tags")).await;
    assert_eq!(
        tags,
        vec![json!({"name": "v*", "create_access_levels": [{
            "id": tags[0]["create_access_levels"][0]["id"], "access_level": 40,
            "access_level_description": "Maintainers", "deploy_key_id": null,
            "user_id": null, "group_id": null
        }]})]
    );

    // Every pipeline, with its sha, ref, status and times; those without an iid get the next ones.
    let fixture = fixture_records("ci_pipelines");
    let mut pipelines = api.list(&format!("projects/{id}/pipelines?sort=asc")).await;
    assert_eq!(pipelines.len(), fixture.len());
    pipelines.sort_by_key(|p| p["created_at"].as_str().unwrap().to_owned());
    let mut want: Vec<&Value> = fixture.iter().collect();
    want.sort_by_key(|p| p["created_at"].as_str().unwrap().to_owned());
    for (got, want) in pipelines.iter().zip(&want) {
        assert_eq!(got["sha"], want["sha"], "{got}");
        assert_eq!(got["status"], want["status"], "{got}");
        assert_eq!(got["created_at"], want["created_at"], "{got}");
        assert_eq!(got["ref"], want["ref"].as_str().unwrap_or(""), "{got}");
        let source = want["source"].as_str().unwrap_or("unknown");
        assert_eq!(got["source"], source, "{got}");
    }
    let mut iids: Vec<u64> = pipelines
        .iter()
        .map(|p| p["iid"].as_u64().unwrap())
        .collect();
    iids.sort_unstable();
    iids.dedup();
    assert_eq!(iids.len(), fixture.len(), "iids are unique: {iids:?}");

    // Schedules arrive inactive, owned by the importer when their owner does not map.
    let schedules = api.list(&format!("projects/{id}/pipeline_schedules")).await;
    assert_eq!(schedules.len(), 1);
    let s = &schedules[0];
    assert_eq!(
        pick(
            s,
            &[
                "description",
                "ref",
                "cron",
                "cron_timezone",
                "active",
                "created_at"
            ]
        ),
        json!({"description": "Schedule Description", "ref": "master", "cron": "0 4 * * 0",
               "cron_timezone": "UTC", "active": false, "created_at": "2019-12-26T10:14:57.778Z"})
    );
    assert_eq!(s["owner"]["username"], "root");

    let project = api.json(&format!("projects/{id}")).await;
    assert_eq!(
        project["container_expiration_policy"],
        json!({"cadence": "3month", "enabled": false, "keep_n": 100, "older_than": null,
               "name_regex": null, "name_regex_keep": null, "next_run_at": null})
    );
    // `enabled: null` follows the instance, whose Auto DevOps is off here.
    assert_eq!(project["auto_devops_enabled"], false);
    assert_eq!(project["auto_devops_deploy_strategy"], "continuous");
    // The fixture has no push rule.
    assert_eq!(
        api.json(&format!("projects/{id}/push_rule")).await,
        Value::Null
    );

    // GitLab's REST API lists neither external pull requests nor a project's commit notes (only
    // a commit's, and the fixture's commit is not in a repository): the export says what arrived.
    let exported = api.export(&id.to_string()).await;
    let epr_keys = [
        "pull_request_iid",
        "source_branch",
        "target_branch",
        "source_repository",
        "target_repository",
        "source_sha",
        "target_sha",
        "status",
        "created_at",
        "updated_at",
    ];
    let picked = |v: &[Value], keys: &[&str]| v.iter().map(|r| pick(r, keys)).collect::<Vec<_>>();
    assert_eq!(
        picked(&exported["external_pull_requests"], &epr_keys),
        picked(&fixture_records("external_pull_requests"), &epr_keys)
    );
    let notes = &exported["commit_notes"];
    assert_eq!(notes.len(), 2);
    for (got, want) in notes.iter().zip(fixture_records("commit_notes")) {
        assert_eq!(got["commit_id"], "sha-notes");
        assert_eq!(got["noteable_type"], "Commit");
        assert_eq!(got["created_at"], want["created_at"]);
        // The fixture's author is not a member it maps: the note is the importer's, naming them.
        let body = got["note"].as_str().unwrap();
        assert!(
            body.starts_with(want["note"].as_str().unwrap())
                && body.contains("*By Administrator on ")
                && body.ends_with("(imported from GitLab)*"),
            "{body}"
        );
    }
    let commit_comments = api
        .get(&format!(
            "projects/{id}/repository/commits/sha-notes/comments"
        ))
        .await;
    assert_eq!(
        commit_comments.status(),
        404,
        "no such commit in the repository"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_seeded_projects_settings_round_trip_through_its_export() {
    let (source, dest) = (
        RunningSim::start(SimConfig::new(Dataset::Small, 5))
            .await
            .expect("source"),
        RunningSim::start(SimConfig::new(Dataset::Empty, 5))
            .await
            .expect("dest"),
    );
    let src = Api::new(&source, &source.owner_token).in_pages_of(2);
    let enc = PROJECT_API.replace('/', "%2F");
    let files = archive_of(
        &source,
        &Api::new(&source, &source.admin_token),
        PROJECT_API,
    )
    .await;
    let dst = Api::new(&dest, &dest.admin_token).in_pages_of(2);
    let id = import(&dst, "api", &files).await;
    let dest_path = "imported%2Fapi";

    // Protected tags, exactly.
    let strip_ids = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|mut t| {
                for l in t["create_access_levels"].as_array_mut().unwrap() {
                    l["id"] = Value::Null;
                }
                t
            })
            .collect()
    };
    let want = strip_ids(src.list(&format!("projects/{enc}/protected_tags")).await);
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(want[1]["create_access_levels"][0]["access_level"], 30);
    assert_eq!(
        strip_ids(
            dst.list(&format!("projects/{dest_path}/protected_tags"))
                .await
        ),
        want
    );

    // Pipelines keep iid, sha (real commits of the repository), ref, status, source and dates.
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
    let want = pipelines(src.list(&format!("projects/{enc}/pipelines")).await);
    assert_eq!(want.len(), 4);
    let commits = source.sim.git.commits_at_head(PROJECT_API).unwrap();
    for p in &want {
        assert!(
            commits.iter().any(|c| p["sha"] == *c),
            "{p} names a commit of main"
        );
    }
    assert_eq!(
        pipelines(dst.list(&format!("projects/{dest_path}/pipelines")).await),
        want
    );
    let tagged = dst
        .list(&format!("projects/{dest_path}/pipelines?ref=v1.0.0"))
        .await;
    assert_eq!(tagged.len(), 1);

    // Schedules: the same, but inactive (GitLab's import turns them off).
    let keys = [
        "description",
        "ref",
        "cron",
        "cron_timezone",
        "next_run_at",
        "created_at",
    ];
    let schedules = |v: Vec<Value>| {
        v.iter()
            .map(|s| {
                let mut p = pick(s, &keys);
                p["owner"] = s["owner"]["username"].clone();
                p
            })
            .collect::<Vec<_>>()
    };
    let source_schedules = src
        .list(&format!("projects/{enc}/pipeline_schedules"))
        .await;
    assert_eq!(
        source_schedules
            .iter()
            .filter(|s| s["active"] == true)
            .count(),
        1
    );
    let got = dst
        .list(&format!("projects/{dest_path}/pipeline_schedules"))
        .await;
    assert!(got.iter().all(|s| s["active"] == false), "{got:?}");
    assert_eq!(schedules(got), schedules(source_schedules));

    // The push rule, the project's CI/CD settings and Service Desk.
    let rule = |mut v: Value| {
        for k in ["id", "project_id", "created_at"] {
            v.as_object_mut().expect("a push rule").remove(k);
        }
        v
    };
    let want = rule(src.json(&format!("projects/{enc}/push_rule")).await);
    assert_eq!(want["commit_message_regex"], "^(feat|fix|docs|chore): .+");
    assert_eq!(want["max_file_size"], 50);
    assert_eq!(
        rule(dst.json(&format!("projects/{dest_path}/push_rule")).await),
        want
    );
    let (sp, dp) = (
        src.json(&format!("projects/{enc}")).await,
        dst.json(&format!("projects/{id}")).await,
    );
    for k in [
        "container_expiration_policy",
        "auto_devops_enabled",
        "auto_devops_deploy_strategy",
        "service_desk_enabled",
    ] {
        assert_eq!(dp[k], sp[k], "{k}");
    }
    assert_eq!(sp["container_expiration_policy"]["cadence"], "7d");
    assert_eq!(sp["auto_devops_enabled"], true);
    assert_eq!(sp["service_desk_enabled"], true);

    // Commit comments, commit by commit; the destination maps no author of an owner's import.
    let mut commented = 0;
    for sha in &commits {
        let path = |p: &str| format!("projects/{p}/repository/commits/{sha}/comments");
        let want = src.list(&path(&enc)).await;
        let got = dst.list(&path(dest_path)).await;
        assert_eq!(got.len(), want.len(), "{sha}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["created_at"], w["created_at"]);
            assert!(
                g["note"]
                    .as_str()
                    .unwrap()
                    .starts_with(w["note"].as_str().unwrap())
            );
        }
        commented += want.len();
    }
    assert_eq!(commented, 3);

    // External pull requests and the Service Desk settings: what the imported project exports.
    let (src_export, dst_export) = (
        Api::new(&source, &source.admin_token).export(&enc).await,
        dst.export(&id.to_string()).await,
    );
    for relation in ["external_pull_requests", "service_desk_setting"] {
        let clean = |v: &[Value]| {
            v.iter()
                .map(|r| {
                    let mut r = r.clone();
                    let o = r.as_object_mut().unwrap();
                    o.remove("id");
                    o.remove("project_id");
                    r
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(src_export[relation].len(), 1, "{relation}");
        assert_eq!(
            clean(&dst_export[relation]),
            clean(&src_export[relation]),
            "{relation}"
        );
    }
    source.shutdown().await;
    dest.shutdown().await;
}

/// `POST /projects/import-relation` takes `ci_pipelines`, as GitLab does; a batch sent twice
/// creates each pipeline once.
#[tokio::test]
async fn pipelines_arrive_through_a_relation_import_once() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 3))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token).in_pages_of(2);
    let resp = api
        .http
        .post(format!("{}/projects", api.url))
        .header("PRIVATE-TOKEN", &api.token)
        .json(&json!({"path": "target", "namespace_id": "imported"}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 201);
    // Pipelines with iids, as a current GitLab exports them.
    let mut files = fixture_files();
    let records: Vec<String> = fixture_records("ci_pipelines")
        .into_iter()
        .enumerate()
        .map(|(n, mut p)| {
            p["iid"] = json!(n + 1);
            p.to_string()
        })
        .collect();
    files.insert(
        "tree/project/ci_pipelines.ndjson".into(),
        records.join("\n").into_bytes(),
    );
    let archive = tar_gz(&files);
    for _ in 0..2 {
        let (status, body) = api
            .post_form(
                "projects/import-relation",
                &[("path", "imported/target"), ("relation", "ci_pipelines")],
                Some(archive.clone()),
            )
            .await;
        assert_eq!(status, 201, "POST projects/import-relation");
        assert_eq!(body["relation"], "ci_pipelines");
        for _ in 0..500 {
            let trackers = api
                .json("projects/imported%2Ftarget/relation-imports")
                .await;
            let trackers = trackers.as_array().unwrap();
            if trackers.iter().all(|t| t["status"] == "finished") {
                break;
            }
            assert!(
                trackers.iter().all(|t| t["status"] != "failed"),
                "{trackers:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let got = api
        .list("projects/imported%2Ftarget/pipelines?sort=asc")
        .await;
    let iids: Vec<u64> = got.iter().map(|p| p["iid"].as_u64().unwrap()).collect();
    assert_eq!(iids, (1..=records.len() as u64).collect::<Vec<_>>());
    // Nothing else of the archive came with it.
    assert!(
        api.list("projects/imported%2Ftarget/protected_tags")
            .await
            .is_empty()
    );
    sim.shutdown().await;
}

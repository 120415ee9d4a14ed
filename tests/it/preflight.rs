//! `appliance check`: what a migration would move and every blocker, with nothing written anywhere.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn check_cmd(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    to: &str,
) -> std::process::Command {
    let mut cmd = appliance();
    cmd.args(["check", "--json", "--group", "acme", "--to", to])
        .args(["--source-url", &src.url, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    cmd
}

/// Requests that could have changed something at a simulator.
async fn writes(sim: &forge_sim::RunningSim) -> Vec<String> {
    sim_requests(sim).await["by_request"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with("GET ") && !k.starts_with("HEAD "))
        .cloned()
        .collect()
}

/// The blockers a check found.
fn blockers(found: &Value) -> Vec<&str> {
    found["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_says_what_would_move_and_writes_nothing() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("unmapped.csv");
    let mut cmd = check_cmd(&src, &dst, &data, "imported");
    cmd.arg("--unmapped-csv").arg(&csv);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        found["blockers"].as_array().unwrap().is_empty(),
        "{found:#}"
    );
    assert_eq!(found["destination_admin"], true);
    assert_eq!(found["destination_import"]["accepts_gitlab_exports"], true);

    // The counts are the source's.
    let acme = &found["entities"][0];
    let projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(acme["counts"]["projects"], projects.len());
    let mut issues = 0;
    for p in &projects {
        let path = format!("projects/{}/issues", p["id"]);
        issues += get_all(&src.url, &src.owner_token, &path).await.len();
    }
    assert_eq!(acme["counts"]["issues"], issues);
    let labels = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/labels?include_ancestor_groups=false",
    )
    .await;
    assert_eq!(acme["counts"]["labels"], labels.len());
    for p in acme["projects"].as_array().unwrap() {
        assert!(p["repository_size"].as_u64() > Some(0), "{p}");
        // The LFS objects the forge holds for the project, as its statistics give them.
        let stats = get(
            &src.url,
            &src.owner_token,
            &format!(
                "projects/{}?statistics=true",
                p["source_full_path"].as_str().unwrap().replace('/', "%2F")
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            p["lfs_objects_size"], stats["statistics"]["lfs_objects_size"],
            "{p}"
        );
    }
    let lfs: u64 = acme["projects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["lfs_objects_size"].as_u64())
        .sum();
    assert!(lfs > 0, "the sample's LFS files are counted: {acme:#}");
    // Every user maps (the sample destination has them all): the CSV is there, empty.
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "");

    assert!(
        writes(&src).await.is_empty(),
        "nothing written at the source"
    );
    assert!(
        writes(&dst).await.is_empty(),
        "nothing written at the destination"
    );
    assert!(!data.exists(), "no data directory was created");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_lists_every_blocker_at_once_with_what_to_change() {
    let (src, dst) = (source().await, destination().await);
    let resp = http()
        .put(format!("{}/api/v4/application/settings", dst.url))
        .header("PRIVATE-TOKEN", &dst.admin_token)
        .json(&json!({"import_sources": ["github"]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = check_cmd(&src, &dst, &dir.path().join("data"), "no-such-group");
    cmd.args(["--project", "acme/no-such-project"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blockers = blockers(&found);
    for want in [
        "acme/no-such-project",
        "'no-such-group' is invalid",
        "does not accept GitLab export imports",
    ] {
        assert!(
            blockers.iter().any(|b| b.contains(want)),
            "a blocker says {want:?}: {blockers:#?}"
        );
    }
    assert!(
        writes(&dst)
            .await
            .iter()
            .all(|w| w.contains("application/settings"))
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_stalls_while_measured_is_a_blocker_not_a_hang() {
    let (src, dst) = (source().await, destination().await);
    // The group answers (the check that it exists passes); its project list never does.
    set_faults(
        &src,
        json!({"hold": {"when": {"method": "GET", "path": "/api/v4/groups/acme/projects"},
                        "after": 0}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = run(check_cmd(&src, &dst, &dir.path().join("data"), "imported")).await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        found["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b.as_str().unwrap().contains("did not answer within 30 s")),
        "{found:#}"
    );
    assert!(took < std::time::Duration::from_secs(90), "{took:?}");
    set_faults(&src, json!({})).await;
    src.shutdown().await;
    dst.shutdown().await;
}

/// A source token that may read a project but not export it (a Developer) would leave its issues,
/// merge requests and uploads behind: the check says so for each project, with the role it has,
/// before anything is written; an owner's token has no such blocker (the first test).
#[tokio::test(flavor = "multi_thread")]
async fn a_source_token_that_cannot_export_a_project_is_a_blocker() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let chen = src.token_for("chen").expect("chen's token");
    let mut cmd = check_cmd(&src, &dst, &dir.path().join("data"), "imported");
    cmd.env("APPLIANCE_SOURCE_TOKEN", &chen);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blockers = blockers(&found);
    let projects = found["entities"][0]["projects"].as_array().unwrap();
    assert!(!projects.is_empty());
    for p in projects {
        let path = p["source_full_path"].as_str().unwrap();
        assert_eq!(p["source_access_level"], 30, "{p}");
        let want = format!("the source token is a Developer of project {path}: GitLab exports");
        assert!(
            blockers.iter().any(|b| b.starts_with(&want)),
            "{want:?} in {blockers:#?}"
        );
    }
    assert!(!explain(&out).contains(&chen), "the token was printed");
    src.shutdown().await;
    dst.shutdown().await;
}

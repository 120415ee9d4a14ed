//! A live group migration through the real binary, checked through the simulators' own APIs.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::process::Output;

async fn migrate(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
) -> Output {
    migrate_group(src, dst, data, "acme", "imported", &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_tree_migrates_complete_with_exact_stats() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, data.path()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "migrate failed: {stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains(&src.owner_token),
        "the source token was printed"
    );

    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    let (labels, milestones, badges, groups) = counts(&want);
    assert!(
        groups >= 4 && labels > 0 && milestones > 0 && badges > 0,
        "the sample source is not empty: {want:?}"
    );
    assert_has_group_files(&want);
    assert_same_tree(&want, &got);

    let r = report(&out);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["has_failures"], false);
    let entities = r["entities"].as_array().unwrap();
    let projects = entities
        .iter()
        .filter(|e| e["entity_type"] == "project")
        .count();
    assert!(projects >= 1, "the sample tree has projects");
    assert_eq!(
        entities.len(),
        groups + projects,
        "one entity per group and per project of the tree"
    );
    // Stats are exact: per relation, what the source has, what was fetched and what was imported.
    let total = |rel: &str, k: &str| -> u64 {
        entities
            .iter()
            .filter(|e| e["entity_type"] == "group")
            .flat_map(|e| e["stats"].as_array().unwrap())
            .filter(|s| s["relation"] == rel)
            .map(|s| s[k].as_u64().unwrap())
            .sum()
    };
    for (rel, n) in [
        ("labels", labels),
        ("milestones", milestones),
        ("badges", badges),
    ] {
        for k in ["source", "fetched", "imported"] {
            assert_eq!(total(rel, k), n as u64, "{rel}.{k}");
        }
    }
    assert_eq!(total("subgroups", "imported"), groups as u64 - 1);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_destination_rejects_becomes_a_failure_and_the_rest_arrives() {
    let (src, dst) = (source().await, destination().await);
    let labels = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/labels?include_ancestor_groups=false",
    )
    .await;
    // A label no epic names: GitLab creates the labels an epic names, which would hide the rejection.
    let epics = get_all(&src.url, &src.owner_token, "groups/acme/epics?state=all").await;
    let named: Vec<&str> = epics
        .iter()
        .flat_map(|e| e["labels"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    let victim = labels
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .find(|n| !named.contains(&n.as_str()))
        .expect("a label no epic uses");
    let rule = json!({"reject": [{
        "method": "POST", "path_contains": "/labels", "body_contains": victim,
        "status": 400, "message": "{\"title\":[\"is invalid\"]}"
    }]});
    set_faults(&dst, rule).await;

    let data = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, data.path()).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a migration with failures exits 2"
    );
    let r = report(&out);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["has_failures"], true);
    let failures: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["failures"].as_array().unwrap())
        .collect();
    // The label's own failure, plus any record that needed it (a board list) saying so.
    let f = *failures
        .iter()
        .find(|f| f["relation"] == "labels")
        .expect("the label's failure");
    assert_eq!(
        failures
            .iter()
            .filter(|f| f["relation"] == "labels")
            .count(),
        1,
        "{failures:?}"
    );
    for other in failures.iter().filter(|f| f["relation"] != "labels") {
        let msg = other["exception_message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("`{victim}`")),
            "an unrelated failure: {other}"
        );
    }
    assert_eq!(f["relation"], "labels");
    assert_eq!(f["step"], "loader");
    assert_eq!(f["source_title"], victim.as_str());
    assert_eq!(f["exception_message"], "title is invalid");

    let arrived = get_all(
        &dst.url,
        &dst.owner_token,
        "groups/imported%2Facme/labels?include_ancestor_groups=false",
    )
    .await;
    assert_eq!(arrived.len(), labels.len() - 1, "every other label arrived");
    assert!(arrived.iter().all(|l| l["name"] != victim.as_str()));
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_killed_midway_resumes_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    // Slow the destination down so the kill lands in the middle of the run.
    let slow = json!({"latency_ms": 150});
    set_faults(&dst, slow.clone()).await;

    let data = tempfile::tempdir().unwrap();
    let mut child = appliance()
        .args(["migrate", "--json", "--group", "acme", "--to", "imported"])
        .args(["--source-url", &src.url, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some labels of the top group have arrived.
    kill_when(&mut child, "the migration", async || {
        match get(&dst.url, &dst.owner_token, "groups/imported%2Facme").await {
            Some(g) => !get_all(
                &dst.url,
                &dst.owner_token,
                &format!("groups/{}/labels?include_ancestor_groups=false", g["id"]),
            )
            .await
            .is_empty(),
            None => false,
        }
    })
    .await;
    let partial = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    assert_ne!(
        counts(&partial),
        counts(&want),
        "the kill landed after the migration was complete"
    );

    set_faults(&dst, json!({})).await;
    let out = migrate(&src, &dst, data.path()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Resuming migration"));
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    // Same tree and same lists: a duplicate label, milestone, badge or group would make them differ.
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_with_a_clear_message_and_nothing_is_written() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let attempt = |group: &str, to: &str, dest_url: &str| {
        let mut cmd = appliance();
        cmd.args(["migrate", "--group", group, "--to", to])
            .args(["--source-url", &src.url, "--destination-url", dest_url])
            .arg("--data")
            .arg(data.path())
            .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
            .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
        run(cmd)
    };
    let missing_ns = attempt("acme", "no-such-group", &dst.url).await;
    assert!(!missing_ns.status.success());
    let err = String::from_utf8_lossy(&missing_ns.stderr);
    assert!(
        err.contains("Destination 'no-such-group' is invalid"),
        "{err}"
    );

    let missing_src = attempt("no-such-source", "imported", &dst.url).await;
    assert!(String::from_utf8_lossy(&missing_src.stderr).contains("no-such-source"));

    let plain = attempt("acme", "imported", "http://gitlab.example.com").await;
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(err.contains("--allow-http"), "{err}");

    assert!(
        get(&dst.url, &dst.owner_token, "groups/imported%2Facme")
            .await
            .is_none()
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flaky_forges_still_give_a_complete_migration_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    // Resets on the destination happen after the handler ran: the write is applied but its answer is
    // lost, so the appliance must find the record instead of creating it again.
    let flaky = json!({
        "fault_rate": 0.15, "reset_rate": 0.1, "truncate_rate": 0.05,
        "burst_429": 3, "burst_retry_after_secs": 1
    });
    for sim in [&src, &dst] {
        set_faults(sim, flaky.clone()).await;
    }
    let data = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, data.path()).await;
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let injected: Value = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for sim in [&src, &dst] {
        set_faults(sim, json!({})).await;
    }
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r}");
    // The faults really happened, including writes whose answer was lost.
    let n = |k: &str| injected["injected"][k].as_u64().unwrap_or(0);
    assert!(
        n("resets") > 0 && n("server_errors") > 0 && n("burst_429") > 0,
        "{injected}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_the_destination_refuses_ends_failed_with_its_reason() {
    let (src, dst) = (source().await, destination().await);
    let rule = json!({"reject": [{
        "method": "POST", "path_contains": "/groups", "body_contains": "\"path\":\"acme\"",
        "status": 403, "message": "403 Forbidden"
    }]});
    set_faults(&dst, rule.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, data.path()).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(
        r["status"], "failed",
        "every entity failed, so the migration failed"
    );
    let top = &r["entities"][0];
    assert_eq!(top["status"], "failed");
    assert_eq!(top["failures"][0]["relation"], "group");
    assert_eq!(top["failures"][0]["exception_message"], "403 Forbidden");
    assert_eq!(
        r["entities"].as_array().unwrap().len(),
        1,
        "no subgroup is attempted under a missing group"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// How each relation of each entity was read, from a JSON report: (entity, relation) -> via.
fn read_via(r: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    // Projects are read only from the relation export (tests/it/project_migration.rs).
    for e in r["entities"].as_array().unwrap() {
        if e["entity_type"] != "group" {
            continue;
        }
        for s in e["stats"].as_array().unwrap() {
            if let Some(via) = s["extracted_via"].as_str() {
                out.push((
                    e["source_full_path"].as_str().unwrap().to_string(),
                    s["relation"].as_str().unwrap().to_string(),
                    via.to_string(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relation_export_is_preferred_and_rest_is_the_fallback() {
    let (src, dst) = (source().await, destination().await);
    let exported = ["labels", "milestones", "badges", "members"];
    // GitLab serves these only through GraphQL, whatever the token may export.
    let graphql = ["iterations_cadences", "iterations", "cadence_schedules"];
    let expected = |relation: &str, otherwise: &'static str| {
        if graphql.contains(&relation) {
            "graphql"
        } else {
            otherwise
        }
    };

    // An owner may export the group: those relations come from GitLab's relation export.
    let data = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, data.path()).await;
    assert!(out.status.success(), "{}", explain(&out));
    let via = read_via(&report(&out));
    for (entity, relation, how) in &via {
        let want = if exported.contains(&relation.as_str()) {
            "relation_export"
        } else {
            expected(relation, "rest")
        };
        assert_eq!(how, want, "{entity} {relation}");
    }
    assert!(via.iter().any(|(_, _, how)| how == "relation_export"));
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme").await,
    );

    // A maintainer may not (GitLab answers 403): everything else comes through REST, with the same
    // result.
    let bjorn = src.token_for("bjorn").expect("bjorn's token");
    let data = tempfile::tempdir().unwrap();
    let mut cmd = appliance();
    cmd.args([
        "migrate",
        "--json",
        "--group",
        "acme/backend",
        "--to",
        "imported",
        "--slug",
        "backend-rest",
    ])
    .args(["--source-url", &src.url, "--destination-url", &dst.url])
    .arg("--data")
    .arg(data.path())
    .env("APPLIANCE_SOURCE_TOKEN", &bjorn)
    .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", explain(&out));
    let via = read_via(&report(&out));
    assert!(
        !via.is_empty()
            && via
                .iter()
                .all(|(_, relation, how)| how == expected(relation, "rest")),
        "{via:?}"
    );
    assert!(via.iter().any(|(_, _, how)| how == "graphql"), "{via:?}");
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme/backend").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/backend-rest").await,
    );
    src.shutdown().await;
    dst.shutdown().await;
}

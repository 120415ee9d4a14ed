//! Retrying a partial migration writes only what is missing; an explicit user map maps users that
//! have no public email.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Titles of every epic of a group tree, and the number of notes of each, sorted.
async fn epics_and_notes(base: &str, token: &str, root: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let root_group = get(base, token, &format!("groups/{}", enc(root)))
        .await
        .unwrap();
    let mut groups = vec![root_group.clone()];
    groups.extend(
        get_all(
            base,
            token,
            &format!("groups/{}/descendant_groups", root_group["id"]),
        )
        .await,
    );
    for g in groups {
        let gid = g["id"].as_u64().unwrap();
        let rel = g["full_path"]
            .as_str()
            .unwrap()
            .strip_prefix(root)
            .unwrap_or("")
            .to_string();
        for e in get_all(
            base,
            token,
            &format!("groups/{gid}/epics?include_descendant_groups=false&state=all"),
        )
        .await
        {
            let notes = get_all(
                base,
                token,
                &format!("groups/{gid}/epics/{}/notes", e["id"]),
            )
            .await
            .iter()
            .filter(|n| n["system"] != true)
            .count();
            out.push((rel.clone(), e["title"].as_str().unwrap().to_string(), notes));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_injected_failures_completes_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    let labels = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/labels?include_ancestor_groups=false",
    )
    .await;
    let victim_label = labels[0]["name"].as_str().unwrap().to_string();
    let epics = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/epics?include_descendant_groups=false",
    )
    .await;
    let victim_epic = epics[0]["title"].as_str().unwrap().to_string();
    set_faults(
        &dst,
        json!({"reject": [
            {"method": "POST", "path_contains": "/labels", "body_contains": victim_label, "status": 422, "message": "Label is invalid"},
            {"method": "POST", "path_contains": "/epics", "body_contains": victim_epic, "status": 400, "message": "{\"title\":[\"is invalid\"]}"}
        ]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let first = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    assert_eq!(first.status.code(), Some(2));
    assert_eq!(report(&first)["has_failures"], true);

    set_faults(&dst, json!({})).await;
    let refused = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--retry"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let retry = migrate_group(&src, &dst, data.path(), "acme", "imported", &["--retry"]).await;
    assert!(retry.status.success(), "{}", explain(&retry));
    let r = report(&retry);
    assert_eq!(r["has_failures"], false, "{r}");

    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme").await,
    );
    let want = epics_and_notes(&src.url, &src.owner_token, "acme").await;
    let got = epics_and_notes(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_eq!(
        want, got,
        "every epic exactly once, with its notes exactly once"
    );
    for g in ["acme", "acme/backend", "acme/frontend"] {
        let s = get_all(
            &src.url,
            &src.owner_token,
            &format!("groups/{}/boards", enc(g)),
        )
        .await;
        let d = get_all(
            &dst.url,
            &dst.owner_token,
            &format!("groups/imported%2F{}/boards", enc(g)),
        )
        .await;
        assert_eq!(s.len(), d.len(), "boards of {g} exactly once");
    }
    src.shutdown().await;
    dst.shutdown().await;
}

/// Every epic of a group tree with its history, keyed by (group below the root, title): its state
/// events and label events as (what changed, by whom).
async fn epic_histories(
    base: &str,
    token: &str,
    root: &str,
) -> BTreeMap<(String, String), [Vec<(String, String)>; 2]> {
    let mut out = BTreeMap::new();
    for g in ["", "/backend", "/frontend", "/backend/services"] {
        let group = format!("{root}{g}");
        let path = format!(
            "groups/{}/epics?include_descendant_groups=false&state=all",
            enc(&group)
        );
        for e in get_all(base, token, &path).await {
            let id = e["id"].as_u64().unwrap();
            let by = |events: Vec<(String, Value)>| -> Vec<(String, String)> {
                let username = |u: &Value| u["username"].as_str().unwrap_or("").to_string();
                events.into_iter().map(|(w, u)| (w, username(&u))).collect()
            };
            let [states, labels] = epic_events(base, token, &group, id).await;
            let title = e["title"].as_str().unwrap().to_string();
            out.insert((g.to_string(), title), [by(states), by(labels)]);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_replays_only_the_epic_events_that_are_missing() {
    let (src, dst) = (source().await, destination().await);
    // The first run stops one epic in the middle of its history (GitLab refuses its reopening), and
    // every epic after its whole history (GitLab refuses its award emoji): the retry finds them in
    // doubt, with part or all of their events already there.
    set_faults(
        &dst,
        json!({"reject": [
            {"method": "PUT", "path_contains": "/epics/", "body_contains": "reopen", "status": 422, "message": "Epic is invalid"},
            {"method": "POST", "path_contains": "/award_emoji", "status": 422, "message": "Award emoji is invalid"}
        ]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let first = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    assert_eq!(first.status.code(), Some(2), "{}", explain(&first));
    let failed: Vec<String> = report(&first)["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["failures"].as_array().unwrap())
        .filter(|f| f["relation"] == "epics")
        .map(|f| f["source_title"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        failed.contains(&"Billing rewrite".to_string()) && failed.contains(&"API v2".to_string()),
        "the epics with a history failed the first time: {failed:?}"
    );
    let want = epic_histories(&src.url, &src.owner_token, "acme").await;
    let partial = epic_histories(&dst.url, &dst.owner_token, "imported/acme").await;
    let billing = ("".to_string(), "Billing rewrite".to_string());
    assert_eq!(
        partial[&billing][0].len(),
        1,
        "the first run stopped after the first close: {:?}",
        partial[&billing]
    );

    set_faults(&dst, json!({})).await;
    let retry = migrate_group(&src, &dst, data.path(), "acme", "imported", &["--retry"]).await;
    assert!(retry.status.success(), "{}", explain(&retry));
    assert_eq!(report(&retry)["has_failures"], false);
    // The owner token cannot act for others: every change is the importer's (ada), each exactly once
    // and in the source's order.
    let got = epic_histories(&dst.url, &dst.owner_token, "imported/acme").await;
    let as_importer = |h: &[Vec<(String, String)>; 2]| {
        h.clone().map(|kind| {
            kind.into_iter()
                .map(|(w, _)| (w, "ada".to_string()))
                .collect::<Vec<_>>()
        })
    };
    let expected: BTreeMap<_, _> = want
        .iter()
        .map(|(k, h)| (k.clone(), as_importer(h)))
        .collect();
    assert_eq!(expected, got, "every event exactly once, in order");
    let api_v2 = &want[&("/backend".to_string(), "API v2".to_string())];
    assert_eq!(
        api_v2[1].len(),
        3,
        "the sample adds and removes a label: {api_v2:?}"
    );
    assert_eq!(
        want[&billing][0].len(),
        3,
        "the sample closes, reopens, closes"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_subgroup_can_be_retried() {
    let (src, dst) = (source().await, destination().await);
    let labels = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme%2Ffrontend/labels?include_ancestor_groups=false",
    )
    .await;
    let victim = labels[0]["name"].as_str().unwrap().to_string();
    set_faults(
        &dst,
        json!({"reject": [{"method": "POST", "path_contains": "/labels", "body_contains": victim, "status": 422, "message": "Label is invalid"}]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    assert_eq!(
        migrate_group(&src, &dst, data.path(), "acme", "imported", &[])
            .await
            .status
            .code(),
        Some(2)
    );
    set_faults(&dst, json!({})).await;

    let retry = migrate_group(
        &src,
        &dst,
        data.path(),
        "acme/frontend",
        "imported/acme",
        &["--retry"],
    )
    .await;
    assert!(retry.status.success(), "{}", explain(&retry));
    let r = report(&retry);
    let groups: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] == "group")
        .collect();
    assert_eq!(groups.len(), 1, "only the subgroup was retried");
    // Its project was migrated the first time: the retry finds it and writes nothing again.
    assert_eq!(r["has_failures"], false, "{r:#}");
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme").await,
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_user_map_maps_users_without_a_public_email() {
    let (src, dst) = (source().await, destination().await);
    let frontend = get_all(&src.url, &src.owner_token, "groups/acme%2Ffrontend/members").await;
    let hidden = frontend
        .iter()
        .find(|m| m["public_email"].as_str().unwrap_or("").is_empty())
        .expect("the sample has a member without a public email");
    let username = hidden["username"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("users.csv");
    std::fs::write(&map, format!("source,destination\n{username},{username}\n")).unwrap();

    let out = migrate_group(
        &src,
        &dst,
        dir.path(),
        "acme",
        "imported",
        &["--user-map", map.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&out);
    let skipped_members: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["skipped"].as_array().unwrap())
        .filter(|k| k["relation"] == "members")
        .collect();
    assert!(skipped_members.is_empty(), "{skipped_members:?}");
    let dest = get_all(
        &dst.url,
        &dst.owner_token,
        "groups/imported%2Facme%2Ffrontend/members",
    )
    .await;
    let m = dest
        .iter()
        .find(|d| d["username"] == username)
        .expect("the mapped member arrived");
    assert_eq!(m["access_level"], hidden["access_level"]);

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "only-one-column\n").unwrap();
    let out = migrate_group(
        &src,
        &dst,
        dir.path(),
        "acme",
        "imported",
        &["--user-map", bad.to_str().unwrap()],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
    src.shutdown().await;
    dst.shutdown().await;
}

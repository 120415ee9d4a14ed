//! Epics (with parents, labels, notes, award emoji, and their history of state and label events) and
//! members (mapped by public email) arrive as a user would check them, compared through both
//! simulators' APIs after a live migration and after an export and replay.

use crate::common;

use appliance::relations::uploads::{links, masked};
use appliance::user_map::attribution;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

async fn migrate(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
) -> Value {
    let out = migrate_group(src, dst, data, "acme", "imported", &[]).await;
    assert!(out.status.success(), "{}", explain(&out));
    report(&out)
}

/// The raw bytes behind an API path (an uploaded file).
async fn bytes(base: &str, token: &str, path: &str) -> Vec<u8> {
    let resp = http()
        .get(format!("{base}/api/v4/{path}"))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.bytes().await.unwrap().to_vec()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Epics of a group by title: what a user compares, with the parent named by title.
async fn epics(base: &str, token: &str, group: &str) -> BTreeMap<String, Value> {
    let all = get_all(
        base,
        token,
        &format!(
            "groups/{}/epics?include_descendant_groups=false&state=all",
            enc(group)
        ),
    )
    .await;
    let mut by_id = BTreeMap::new();
    for e in &all {
        by_id.insert(e["id"].as_u64().unwrap(), s(e, "title").to_string());
    }
    let mut out = BTreeMap::new();
    for e in &all {
        let iid = e["iid"].as_u64().unwrap();
        let notes: Vec<Value> = get_all(
            base,
            token,
            &format!("groups/{}/epics/{}/notes?sort=asc", enc(group), e["id"]),
        )
        .await
        .into_iter()
        .filter(|n| n["system"] != true)
        .collect();
        let emoji: Vec<String> = get_all(
            base,
            token,
            &format!("groups/{}/epics/{iid}/award_emoji", enc(group)),
        )
        .await
        .iter()
        .map(|a| s(a, "name").to_string())
        .collect();
        // Children in the order GitLab lists them (their relative position), by title.
        let children: Vec<Value> = get_all(
            base,
            token,
            &format!("groups/{}/epics/{iid}/epics", enc(group)),
        )
        .await
        .iter()
        .map(|c| c["title"].clone())
        .collect();
        let [states, labels] = epic_events(base, token, group, e["id"].as_u64().unwrap()).await;
        let history = |events: Vec<(String, Value)>| -> Vec<Value> {
            events
                .into_iter()
                .map(|(what, user)| serde_json::json!({ "what": what, "user": user }))
                .collect()
        };
        let parent = match e["parent_id"].as_u64() {
            Some(pid) => match by_id.get(&pid) {
                Some(t) => Value::String(t.clone()),
                // A parent in another group: name it by its own lookup.
                None => Value::String(format!("id:{pid}")),
            },
            None => Value::Null,
        };
        out.insert(
            s(e, "title").to_string(),
            serde_json::json!({
                "description": e["description"], "state": e["state"], "confidential": e["confidential"],
                "start_date_fixed": e["start_date_fixed"], "due_date_fixed": e["due_date_fixed"],
                "labels": e["labels"], "parent": parent, "author": e["author"],
                "created_at": e["created_at"], "notes": notes, "emoji": emoji,
                "children": children,
                "state_events": history(states), "label_events": history(labels),
            }),
        );
    }
    out
}

/// The epic's state events and label events arrived in the source's order, each made by
/// `actor(source user)`: what a user reads in the epic's history, but for the times. Returns how
/// many events were compared.
fn assert_same_history(
    g: &str,
    title: &str,
    want: &Value,
    got: &Value,
    actor: &dyn Fn(&Value) -> String,
) -> usize {
    let mut compared = 0;
    for kind in ["state_events", "label_events"] {
        let w = want[kind].as_array().unwrap();
        let expected: Vec<(&str, String)> = w
            .iter()
            .map(|e| (s(e, "what"), actor(&e["user"])))
            .collect();
        let arrived: Vec<(&str, String)> = got[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (s(e, "what"), s(&e["user"], "username").to_string()))
            .collect();
        assert_eq!(
            expected, arrived,
            "{g} epic `{title}`: {kind} in order, each by its mapped user"
        );
        compared += w.len();
    }
    compared
}

#[tokio::test(flavor = "multi_thread")]
async fn epics_arrive_with_fields_labels_parents_and_notes() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let report = migrate(&src, &dst, data.path()).await;
    assert_eq!(report["has_failures"], false, "{report}");
    assert_epics_arrived(&src, &dst, "imported/acme").await;
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_map_by_public_email_and_the_unmapped_are_reported() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let report = migrate(&src, &dst, data.path()).await;
    assert_eq!(report["has_failures"], false);
    assert_members_arrived(&src, &dst, &report, "imported/acme").await;
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_admin_token_epics_notes_and_emoji_keep_their_mapped_authors() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let mut cmd = appliance();
    cmd.args(["migrate", "--json", "--group", "acme", "--to", "imported"])
        .args(["--source-url", &src.url, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", explain(&out));
    let mapped = |u: &Value| !s(u, "public_email").is_empty();
    let mut checked = 0;
    let mut emoji_kept = 0;
    let (mut events_kept, mut events_by_importer) = (0, 0);
    for g in ["acme", "acme/backend", "acme/frontend"] {
        let want = epics(&src.url, &src.owner_token, g).await;
        let got = epics(&dst.url, &dst.admin_token, &format!("imported/{g}")).await;
        // Who may change an epic there (reporter or more, inherited too): a mapped user among them
        // makes their own changes through Sudo; GitLab refuses anyone else, and the importer does it.
        let writers: Vec<String> = get_all(
            &dst.url,
            &dst.admin_token,
            &format!("groups/imported%2F{}/members/all", enc(g)),
        )
        .await
        .iter()
        .filter(|m| m["access_level"].as_u64() >= Some(20))
        .map(|m| s(m, "username").to_string())
        .collect();
        let actor = |u: &Value| {
            let username = s(u, "username").to_string();
            if mapped(u) && writers.contains(&username) {
                username
            } else {
                "root".to_string()
            }
        };
        for (title, w) in &want {
            let d = &got[title];
            assert_same_history(g, title, w, d, &actor);
            for kind in ["state_events", "label_events"] {
                for e in w[kind].as_array().unwrap() {
                    if actor(&e["user"]) == "root" {
                        events_by_importer += 1;
                    } else {
                        events_kept += 1;
                    }
                }
            }
            let author = &w["author"];
            // A mapped author who can see the group at the destination writes it; anyone else's text
            // is written by the importer (root here), naming the author.
            if mapped(author) && s(&d["author"], "username") == s(author, "username") {
                assert_eq!(
                    masked(s(d, "description")),
                    masked(s(w, "description")),
                    "{g} `{title}`: text unchanged"
                );
                checked += 1;
            } else {
                assert_eq!(
                    s(&d["author"], "username"),
                    "root",
                    "{g} `{title}`: the importer writes it"
                );
                assert!(
                    s(d, "description").contains("(imported from GitLab)"),
                    "{g} `{title}`: and names the author"
                );
            }
            for (a, b) in w["notes"]
                .as_array()
                .unwrap()
                .iter()
                .zip(d["notes"].as_array().unwrap())
            {
                let kept = mapped(&a["author"])
                    && s(&b["author"], "username") == s(&a["author"], "username");
                let named = s(&b["author"], "username") == "root"
                    && s(b, "body").contains("(imported from GitLab)");
                assert!(
                    kept || named,
                    "{g} `{title}`: a note keeps its mapped author or names it"
                );
            }
        }
        // Emoji by mapped users keep their user.
        for title in want.keys() {
            let src_epics = get_all(
                &src.url,
                &src.owner_token,
                &format!(
                    "groups/{}/epics?include_descendant_groups=false&state=all",
                    enc(g)
                ),
            )
            .await;
            let dst_epics = get_all(
                &dst.url,
                &dst.admin_token,
                &format!(
                    "groups/imported%2F{}/epics?include_descendant_groups=false&state=all",
                    enc(g)
                ),
            )
            .await;
            let iid = |list: &[Value]| {
                list.iter().find(|e| s(e, "title") == title).unwrap()["iid"]
                    .as_u64()
                    .unwrap()
            };
            let pairs = |list: Vec<Value>| {
                let mut v: Vec<(String, String)> = list
                    .iter()
                    .filter(|e| mapped(&e["user"]) || e["user"]["username"] == "root")
                    .map(|e| {
                        (
                            s(e, "name").to_string(),
                            s(&e["user"], "username").to_string(),
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            let se = get_all(
                &src.url,
                &src.owner_token,
                &format!("groups/{}/epics/{}/award_emoji", enc(g), iid(&src_epics)),
            )
            .await;
            let de = get_all(
                &dst.url,
                &dst.admin_token,
                &format!(
                    "groups/imported%2F{}/epics/{}/award_emoji",
                    enc(g),
                    iid(&dst_epics)
                ),
            )
            .await;
            let want_pairs: Vec<_> = pairs(se).into_iter().filter(|(_, u)| u != "root").collect();
            let got_pairs = pairs(de);
            for (name, user) in &want_pairs {
                let kept = got_pairs.contains(&(name.clone(), user.clone()));
                assert!(
                    kept || got_pairs.contains(&(name.clone(), "root".to_string())),
                    "{g} `{title}`: `{name}` by {user} arrived, by {user} or by the importer"
                );
                emoji_kept += usize::from(kept);
            }
        }
    }
    assert!(checked >= 2, "epics keep their mapped authors ({checked})");
    assert!(
        events_kept >= 3 && events_by_importer >= 1,
        "events keep their mapped users ({events_kept}), or are made by the importer when GitLab \
         refuses them ({events_by_importer})"
    );
    assert!(
        emoji_kept >= 1,
        "award emoji keep their mapped users ({emoji_kept})"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// The destination path of a sample group when `acme` arrived as `dest_root`.
fn dest_path(dest_root: &str, group: &str) -> String {
    format!("{dest_root}{}", group.strip_prefix("acme").unwrap_or(group))
}

/// Every epic of the sample tree arrived under `dest_root` with its fields, labels, parent, author,
/// notes, award emoji, linked files and its history of state and label events (all made by the
/// importing user, as the destination token cannot act for others).
async fn assert_epics_arrived(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    dest_root: &str,
) {
    let dest = |g: &str| dest_path(dest_root, g);
    let importer = get(&dst.url, &dst.owner_token, "user").await.unwrap();
    let importer = s(&importer, "username").to_string();

    let groups = [
        "acme",
        "acme/backend",
        "acme/frontend",
        "acme/backend/services",
    ];
    let mut total = 0;
    let mut uploads = 0;
    let mut ordered = 0;
    let mut events = 0;
    let mut seen = Vec::new();
    let by_importer = |_: &Value| importer.clone();
    for g in groups {
        let want = epics(&src.url, &src.owner_token, g).await;
        let got = epics(&dst.url, &dst.owner_token, &dest(g)).await;
        total += want.len();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "epics of {g}"
        );
        for (title, w) in &want {
            let d = &got[title];
            for field in [
                "state",
                "confidential",
                "start_date_fixed",
                "due_date_fixed",
                "labels",
                "children",
            ] {
                assert_eq!(w[field], d[field], "{g} epic `{title}`: {field}");
            }
            if w["children"].as_array().is_some_and(|c| c.len() > 1) {
                ordered += 1;
            }
            // Parents in the same group compare by title; a parent in an ancestor group by its title there.
            if let Some(p) = w["parent"].as_str().filter(|p| !p.starts_with("id:")) {
                assert_eq!(d["parent"].as_str(), Some(p), "{g} epic `{title}`: parent");
            } else {
                assert_eq!(
                    w["parent"].is_null(),
                    d["parent"].is_null(),
                    "{g} epic `{title}`: has a parent"
                );
            }
            let author = &w["author"];
            let expected = if s(author, "username") == importer {
                s(w, "description").to_string()
            } else {
                attribution(s(w, "description"), s(author, "name"), s(w, "created_at"))
            };
            // Files it links to were uploaded again: same text, new secrets, same bytes.
            for (from, to) in links(s(w, "description"))
                .iter()
                .zip(links(s(d, "description")))
            {
                assert_ne!(
                    from, &to,
                    "{g} epic `{title}`: the link points at the destination's copy"
                );
                let want = bytes(
                    &src.url,
                    &src.owner_token,
                    &format!("groups/{}{from}", enc(g)),
                )
                .await;
                let got = bytes(
                    &dst.url,
                    &dst.owner_token,
                    &format!("groups/{}{to}", enc(&dest(g))),
                )
                .await;
                assert_eq!(want, got, "{g} epic `{title}`: {from} arrived intact");
                uploads += 1;
            }
            assert_eq!(
                masked(s(d, "description")),
                masked(&expected),
                "{g} epic `{title}`: description and author"
            );
            let wn = w["notes"].as_array().unwrap();
            let dn = d["notes"].as_array().unwrap();
            assert_eq!(wn.len(), dn.len(), "{g} epic `{title}`: notes");
            for (a, b) in wn.iter().zip(dn) {
                assert!(
                    s(b, "body").starts_with(s(a, "body")),
                    "{g} epic `{title}`: note order and text"
                );
            }
            let mut we: Vec<&str> = w["emoji"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            we.sort_unstable();
            we.dedup();
            let mut de: Vec<&str> = d["emoji"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            de.sort_unstable();
            assert_eq!(we, de, "{g} epic `{title}`: award emoji names");
            events += assert_same_history(g, title, w, d, &by_importer);
            for kind in ["state_events", "label_events"] {
                let whats = w[kind].as_array().unwrap().iter();
                seen.extend(whats.map(|e| s(e, "what").to_string()));
            }
        }
    }
    assert!(total >= 5, "the sample has epics to compare ({total})");
    // The sample's histories are there to compare: closed, reopened and closed again; a label
    // added and later removed.
    assert!(
        events >= 10,
        "the sample's epics have histories ({events} events)"
    );
    for what in ["closed", "reopened", "add tech debt", "remove tech debt"] {
        assert!(
            seen.iter().any(|w| w == what),
            "the sample has a `{what}` event: {seen:?}"
        );
    }
    assert!(uploads >= 1, "the sample links a file from an epic");
    assert!(
        ordered >= 1,
        "the sample has an epic whose children are ordered"
    );
}

/// Every member of the sample tree with a public email arrived under `dest_root` with at least its
/// access; every one without is absent and reported as skipped in `report`.
async fn assert_members_arrived(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    report: &Value,
    dest_root: &str,
) {
    let mut skipped_users = Vec::new();
    for e in report["entities"].as_array().unwrap() {
        for k in e["skipped"].as_array().unwrap() {
            if k["relation"] == "members" {
                skipped_users.push(s(k, "source_title").to_string());
                assert!(!s(k, "exception_message").is_empty());
            }
        }
    }
    for g in [
        "acme",
        "acme/backend",
        "acme/frontend",
        "acme/backend/services",
    ] {
        let src_members = get_all(
            &src.url,
            &src.owner_token,
            &format!("groups/{}/members", enc(g)),
        )
        .await;
        let dest_all = get_all(
            &dst.url,
            &dst.owner_token,
            &format!("groups/{}/members/all", enc(&dest_path(dest_root, g))),
        )
        .await;
        for m in &src_members {
            let username = s(m, "username");
            let got = dest_all.iter().find(|d| s(d, "username") == username);
            if s(m, "public_email").is_empty() {
                assert!(
                    got.is_none(),
                    "{g}: `{username}` has no public email, so is not mapped"
                );
                assert!(
                    skipped_users.iter().any(|u| u == username),
                    "{g}: `{username}` is reported as skipped"
                );
            } else {
                let got = got.unwrap_or_else(|| panic!("{g}: member `{username}` arrived"));
                assert!(
                    got["access_level"].as_u64() >= m["access_level"].as_u64(),
                    "{g}: `{username}` has at least the source's access"
                );
            }
        }
    }
    assert!(
        !skipped_users.is_empty(),
        "the sample has a member without a public email"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn epics_and_members_arrive_the_same_through_a_bundle() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    let mut export = appliance();
    export
        .args(["export", "--group", "acme", "--source-url", &src.url])
        .arg("--out")
        .arg(&bundle)
        .arg("--data")
        .arg(dir.path().join("export"))
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    let out = run(export).await;
    assert!(out.status.success(), "{}", explain(&out));
    let mut replay = appliance();
    replay
        .arg("replay")
        .arg(&bundle)
        .args([
            "--json",
            "--to",
            "imported",
            "--slug",
            "acme-offline",
            "--destination-url",
            &dst.url,
        ])
        .arg("--data")
        .arg(dir.path().join("replay"))
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    let out = run(replay).await;
    assert!(out.status.success(), "{}", explain(&out));
    let replayed = report(&out);
    assert_eq!(replayed["has_failures"], false, "{replayed}");
    assert_epics_arrived(&src, &dst, "imported/acme-offline").await;
    assert_members_arrived(&src, &dst, &replayed, "imported/acme-offline").await;
    src.shutdown().await;
    dst.shutdown().await;
}

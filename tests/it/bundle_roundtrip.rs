//! Offline transfer end to end through the real binary: export the sample group, verify and inspect
//! the bundle, replay it, and compare the destination with a live migration of the same data.

use crate::bundle_common;
use crate::common;

use bundle_common::*;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_bundle_gives_the_same_destination_as_a_live_migration() {
    let src = source().await;
    let (offline, live) = (destination().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");

    let out = export(&src, &bundle, &dir.path().join("export-data"), &[]).await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let digest_line = printed
        .lines()
        .find(|l| l.starts_with("Root digest: sha256:"))
        .unwrap_or_else(|| panic!("the export prints the root digest: {}", text(&out)));
    // The root digest is the sha256 of manifest.json, the tar's first member.
    let bytes = std::fs::read(&bundle).unwrap();
    let parts = members(&bytes);
    assert_eq!(parts[0].path, "manifest.json");
    assert_eq!(
        digest_line.trim_start_matches("Root digest: sha256:"),
        sha256_hex(&parts[0].data)
    );
    assert!(
        dir.path()
            .join("export-data/exports")
            .read_dir()
            .unwrap()
            .next()
            .is_none(),
        "the staging directory is removed after a finished export"
    );

    let v = verify(&[&bundle], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("OK"));

    let mut cmd = replay_cmd(&offline, &bundle, &dir.path().join("replay-data"));
    cmd.arg("--json");
    let replayed = run(cmd).await;
    assert!(
        replayed.status.success(),
        "replay failed: {}",
        text(&replayed)
    );

    let mut cmd = appliance();
    cmd.args(["migrate", "--json", "--group", "acme", "--to", "imported"])
        .args(["--source-url", &src.url, "--destination-url", &live.url])
        .arg("--data")
        .arg(dir.path().join("live-data"))
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &live.owner_token);
    let migrated = run(cmd).await;
    assert!(
        migrated.status.success(),
        "migrate failed: {}",
        text(&migrated)
    );

    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let via_bundle = snapshot(&offline.url, &offline.owner_token, "imported/acme").await;
    let via_live = snapshot(&live.url, &live.owner_token, "imported/acme").await;
    let (labels, milestones, badges, groups) = counts(&want);
    assert!(groups >= 4 && labels > 0 && milestones > 0 && badges > 0);
    assert_has_group_files(&want);
    assert_same_tree(&via_live, &via_bundle);
    assert_same_tree(&want, &via_bundle);

    // The same stats as a live migration, per entity and relation, and no failures.
    let stats = |out: &std::process::Output| -> Vec<(String, String, u64, u64, u64)> {
        let r: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(r["status"], "finished", "{r}");
        assert_eq!(r["has_failures"], false, "{r}");
        let mut rows: Vec<_> = r["entities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| {
                let path = e["source_full_path"].as_str().unwrap_or("").to_string();
                e["stats"].as_array().unwrap().iter().map(move |s| {
                    (
                        path.clone(),
                        s["relation"].as_str().unwrap().to_string(),
                        s["source"].as_u64().unwrap(),
                        s["fetched"].as_u64().unwrap(),
                        s["imported"].as_u64().unwrap(),
                    )
                })
            })
            .collect();
        rows.sort();
        rows
    };
    // Projects included: the same entities, relations and counts through the bundle as live.
    assert_eq!(stats(&replayed), stats(&migrated));

    src.shutdown().await;
    offline.shutdown().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_exports_of_the_same_data_are_byte_identical_and_hold_no_token() {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.bundle"), dir.path().join("b.bundle"));
    export(&src, &a, &dir.path().join("data-a"), &[]).await;
    export(&src, &b, &dir.path().join("data-b"), &[]).await;
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(a_bytes == b_bytes, "two exports of the same source differ");
    // Several bundles in one call: each gets its verdict.
    let v = verify(&[&a, &b], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).matches(": OK:").count(),
        2,
        "{}",
        text(&v)
    );

    // Split into volumes: the same stream, cut into pieces; verify and inspect find the rest.
    let vol = dir.path().join("v.bundle");
    export(
        &src,
        &vol,
        &dir.path().join("data-v"),
        &["--volume-size", "4KiB"],
    )
    .await;
    let mut joined = Vec::new();
    let mut n = 1;
    while let Ok(part) = std::fs::read(dir.path().join(format!("v.bundle.{n:03}"))) {
        assert!(part.len() <= 4096);
        joined.extend(part);
        n += 1;
    }
    assert!(n > 2, "the sample bundle spans several 4 KiB volumes");
    assert!(joined == a_bytes, "volumes are the bundle's bytes, split");
    let first = dir.path().join("v.bundle.001");
    let v = verify(&[&first], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    // A bundle in volumes replays from its first volume, here under another slug.
    let dst = destination().await;
    let mut cmd = replay_cmd(&dst, &first, &dir.path().join("replay-data"));
    cmd.args(["--slug", "acme-offline"]);
    let r = run(cmd).await;
    assert!(r.status.success(), "{}", text(&r));
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme-offline").await;
    assert_same_tree(&want, &got);
    dst.shutdown().await;

    // What inspect shows: the source, every group of the tree, and the record counts.
    let mut cmd = appliance();
    cmd.arg("inspect").arg(&first).arg("--json");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let info: Value = serde_json::from_slice(&out.stdout).expect("inspect --json");
    assert_eq!(info["source_url"], src.url.as_str());
    let paths: Vec<&str> = info["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source_full_path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"acme") && paths.contains(&"acme/backend"),
        "{paths:?}"
    );
    let (labels, _, _, _) = counts(&want);
    let exported_labels: u64 = info["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "group")
        .filter_map(|e| e["relations"]["labels"]["records"].as_u64())
        .sum();
    assert_eq!(exported_labels, labels as u64);

    // No token in the bundle: neither in the raw bytes nor in any decompressed member.
    for token in [&src.owner_token, &src.admin_token] {
        let needle = token.as_bytes();
        assert!(!a_bytes.windows(needle.len()).any(|w| w == needle));
        for m in members(&a_bytes) {
            let plain = if m.path.ends_with(".zst") {
                zstd::decode_all(m.data.as_slice()).unwrap()
            } else {
                m.data.clone()
            };
            assert!(
                !plain.windows(needle.len()).any(|w| w == needle),
                "a token is in member {}",
                m.path
            );
        }
    }
    src.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subgroup_exports_and_replays_as_a_tree_of_its_own() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("backend.bundle");
    let mut cmd = appliance();
    cmd.args([
        "export",
        "--group",
        "acme/backend",
        "--source-url",
        &src.url,
    ])
    .arg("--out")
    .arg(&bundle)
    .arg("--data")
    .arg(dir.path().join("export-data"))
    .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));

    let r = run(replay_cmd(&dst, &bundle, &dir.path().join("replay-data"))).await;
    assert!(r.status.success(), "{}", text(&r));
    let want = snapshot(&src.url, &src.owner_token, "acme/backend").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/backend").await;
    assert!(want.contains_key("services"), "{want:?}");
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_from_before_epic_events_replays_as_it_did() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    export(&src, &bundle, &dir.path().join("export-data"), &[]).await;
    // Take the epics' `events` out, as an appliance that did not migrate them exported them.
    let mut parts = members(&std::fs::read(&bundle).unwrap());
    let mut rewritten = Vec::new();
    let mut had_events = 0;
    for part in parts.iter_mut().filter(|p| p.path.contains("/epics/")) {
        let plain = zstd::decode_all(part.data.as_slice()).unwrap();
        let mut out = Vec::new();
        for line in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut record: Value = serde_json::from_slice(line).unwrap();
            let events = record.as_object_mut().unwrap().remove("events");
            had_events += events.and_then(|e| e.as_array().map(Vec::len)).unwrap_or(0);
            out.extend(serde_json::to_vec(&record).unwrap());
            out.push(b'\n');
        }
        part.data = zstd::encode_all(out.as_slice(), 3).unwrap();
        rewritten.push((part.path.clone(), out.len(), part.data.clone()));
    }
    assert!(had_events > 0, "the export carried events to take out");
    with_manifest(&mut parts, |m| {
        for member in m["members"].as_array_mut().unwrap() {
            if let Some((_, size, data)) = rewritten.iter().find(|(p, ..)| member["path"] == *p) {
                member["size"] = (*size).into();
                member["compressed_size"] = data.len().into();
                member["sha256"] = sha256_hex(data).into();
            }
        }
    });
    let old = dir.path().join("old.bundle");
    std::fs::write(&old, pack(&parts)).unwrap();

    let out = run(replay_cmd(&dst, &old, &dir.path().join("replay-data"))).await;
    assert!(out.status.success(), "{}", text(&out));
    // As before: each epic created with its labels (events by its creator, the importer here) and
    // closed afterwards when it is closed; its final labels and state are the source's.
    let importer = get(&dst.url, &dst.owner_token, "user").await.unwrap()["username"].clone();
    let mut compared = 0;
    for g in ["acme", "acme/backend", "acme/frontend"] {
        let list = |base: &str, token: &str, group: String| {
            let path = format!(
                "groups/{}/epics?include_descendant_groups=false&state=all",
                enc(&group)
            );
            let (base, token) = (base.to_string(), token.to_string());
            async move { get_all(&base, &token, &path).await }
        };
        let want = list(&src.url, &src.owner_token, g.to_string()).await;
        let got = list(&dst.url, &dst.owner_token, format!("imported/{g}")).await;
        for w in &want {
            let d = got.iter().find(|d| d["title"] == w["title"]).unwrap();
            assert_eq!((&w["labels"], &w["state"]), (&d["labels"], &d["state"]));
            let group = format!("imported/{g}");
            let [states, labels] = epic_events(
                &dst.url,
                &dst.owner_token,
                &group,
                d["id"].as_u64().unwrap(),
            )
            .await;
            let closed: Vec<String> = match w["state"].as_str() {
                Some("closed") => vec!["closed".into()],
                _ => Vec::new(),
            };
            let added: Vec<String> = w["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| format!("add {}", l.as_str().unwrap()))
                .collect();
            let what = |events: &[(String, Value)]| -> Vec<String> {
                assert!(events.iter().all(|(_, u)| u["username"] == importer));
                events.iter().map(|(w, _)| w.clone()).collect()
            };
            assert_eq!(what(&states), closed, "{g} `{}`", w["title"]);
            assert_eq!(what(&labels), added, "{g} `{}`", w["title"]);
            compared += 1;
        }
    }
    assert!(compared >= 5, "{compared} epics compared");
    src.shutdown().await;
    dst.shutdown().await;
}

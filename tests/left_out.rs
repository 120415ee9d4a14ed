//! What a record cannot take with it is taken out before it loads and named, never sent broken: an
//! issue's designs (GitLab's import would restore them without the design repository that holds
//! their files). A bundle whose issue carries designs replays with the issue and every other record,
//! and the report names the issue, with its URL and title, and what it went without.

mod bundle_common;
mod common;

use bundle_common::*;
use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn an_issue_with_designs_migrates_without_them_and_says_so() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("acme.bundle");
    export(&src, &plain, &dir.path().join("export"), &[]).await;

    // Designs on the first issue of acme/backend/api, as a GitLab export has them.
    let mut parts = members(&std::fs::read(&plain).unwrap());
    let path = "projects/acme/backend/api/issues/000000.ndjson.zst";
    let ndjson = zstd::decode_all(parts[index(&parts, path)].data.as_slice()).unwrap();
    let mut issues: Vec<Value> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    issues[0]["designs"] = json!([
        {"iid": 1, "filename": "logo.png", "relative_position": 512, "notes": []},
        {"iid": 2, "filename": "icon.svg", "relative_position": 1024, "notes": []},
    ]);
    issues[0]["design_versions"] = json!([
        {"sha": "8e1a27b3b6f7c2f0e61d5c2ad6d8f1a2b3c4d5e6", "created_at": "2024-03-01T10:00:00.000Z",
         "author_id": 1, "actions": [{"event": 0, "design": {"iid": 1, "filename": "logo.png"}}]},
    ]);
    let (title, iid) = (
        issues[0]["title"].as_str().unwrap().to_string(),
        issues[0]["iid"].as_u64().unwrap(),
    );
    let mut lines = Vec::new();
    for issue in &issues {
        serde_json::to_writer(&mut lines, issue).unwrap();
        lines.push(b'\n');
    }
    restuff(&mut parts, path, &lines);
    let crafted = dir.path().join("designs.bundle");
    std::fs::write(&crafted, pack(&parts)).unwrap();
    let v = verify(&[&crafted], &[]).await;
    assert!(v.status.success(), "{}", text(&v));

    let mut cmd = replay_cmd(&dst, &crafted, &dir.path().join("replay"));
    cmd.arg("--json");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let skipped: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["skipped"].as_array().unwrap())
        .filter(|s| s["relation"] == "issues")
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    let s = skipped[0];
    assert_eq!(s["source_title"], title.as_str(), "{s}");
    assert!(
        s["source_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/acme/backend/api/-/issues/{iid}"))),
        "{s}"
    );
    let said = s["exception_message"].as_str().unwrap();
    assert!(said.contains("2 designs (1 version)"), "{said}");

    // The issue arrived with everything else; every issue of the project did.
    let want = get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/issues", enc("acme/backend/api")),
    )
    .await;
    let got = get_all(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}/issues", enc("imported/acme/backend/api")),
    )
    .await;
    assert_eq!(got.len(), want.len());
    let arrived = got
        .iter()
        .find(|i| i["iid"] == iid)
        .expect("the issue with designs arrived");
    assert_eq!(arrived["title"], title.as_str());
    src.shutdown().await;
    dst.shutdown().await;
}

//! What a record cannot take with it, or what does not arrive, is named record by record. An issue's
//! designs are taken out before it loads when they would arrive broken (GitLab's import would
//! restore them without the files their design repository holds): a bundle whose issues carry such
//! designs replays with the issues and every other record, and the report names each issue, with
//! its URL and title, and what it went without. An issue the destination refuses is a failure row with its URL
//! and the destination's words; the others arrive.

use crate::bundle_common;
use crate::common;

use bundle_common::*;
use common::*;
use serde_json::{Value, json};

/// Designs crafted into an issue of `project`'s bundle member: (its iid, its title).
fn craft_designs(parts: &mut [RawMember], project: &str, index: usize) -> (u64, String) {
    let path = format!("projects/{project}/issues/000000.ndjson.zst");
    let (mut title, mut iid) = (String::new(), 0);
    rewrite_records(parts, &path, |issues| {
        issues[index]["designs"] = json!([
            {"iid": 91, "filename": "logo.png", "relative_position": 512, "notes": []},
            {"iid": 92, "filename": "icon.svg", "relative_position": 1024, "notes": []},
        ]);
        issues[index]["design_versions"] = json!([
            {"sha": "8e1a27b3b6f7c2f0e61d5c2ad6d8f1a2b3c4d5e6",
             "created_at": "2024-03-01T10:00:00.000Z", "author_id": 1,
             "actions": [{"event": 0, "design": {"iid": 91, "filename": "logo.png"}}]},
        ]);
        title = issues[index]["title"].as_str().unwrap().to_string();
        iid = issues[index]["iid"].as_u64().unwrap();
    });
    (iid, title)
}

/// Designs that would arrive without their files are taken out, and their issue still migrates:
/// in a project whose design repository does not travel (acme/docs has none), and in one whose
/// repository does not hold the issue's design version (acme/backend/api's holds only its own
/// issue #2's). The real designs of acme/backend/api still arrive.
#[tokio::test(flavor = "multi_thread")]
async fn an_issue_with_designs_migrates_without_them_and_says_so() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("acme.bundle");
    export(&src, &plain, &dir.path().join("export"), &[]).await;

    let mut parts = members(&std::fs::read(&plain).unwrap());
    let crafted_in = [("acme/docs", 0), ("acme/backend/api", 0)];
    let crafted: Vec<(u64, String)> = crafted_in
        .iter()
        .map(|(project, index)| craft_designs(&mut parts, project, *index))
        .collect();
    assert_ne!(crafted[1].0, 2, "not the issue whose designs are real");
    let bundle = dir.path().join("designs.bundle");
    std::fs::write(&bundle, pack(&parts)).unwrap();
    let v = verify(&[&bundle], &[]).await;
    assert!(v.status.success(), "{}", text(&v));

    let mut cmd = replay_cmd(&dst, &bundle, &dir.path().join("replay"));
    cmd.arg("--json");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let skipped: Vec<&Value> = report_rows(&r, "skipped")
        .into_iter()
        .filter(|s| s["relation"] == "issues")
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    let reasons = [
        "no design repository",
        "1 of its design versions are not commits",
    ];
    for (((project, _), (iid, title)), reason) in crafted_in.iter().zip(&crafted).zip(reasons) {
        let s = skipped
            .iter()
            .find(|s| s["source_title"] == title.as_str())
            .unwrap_or_else(|| panic!("{project}: a row for {title}: {skipped:#?}"));
        assert!(
            s["source_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/{project}/-/issues/{iid}"))),
            "{s}"
        );
        let said = s["exception_message"].as_str().unwrap();
        assert!(
            said.contains("2 designs (1 version)") && said.contains(reason),
            "{project}: {said}"
        );

        // The issue arrived with everything else; every issue of the project did.
        let want = get_all(
            &src.url,
            &src.owner_token,
            &format!("projects/{}/issues", enc(project)),
        )
        .await;
        let got = get_all(
            &dst.url,
            &dst.admin_token,
            &format!("projects/{}/issues", enc(&format!("imported/{project}"))),
        )
        .await;
        assert_eq!(got.len(), want.len(), "{project}");
        let arrived = got
            .iter()
            .find(|i| i["iid"] == *iid)
            .expect("the issue with designs arrived");
        assert_eq!(arrived["title"], title.as_str());
    }
    // The project's real designs arrived, all of them, and only they.
    let api = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source_full_path"] == "acme/backend/api")
        .unwrap();
    let designs = api["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "designs")
        .unwrap();
    assert_eq!(designs["imported"], 2, "{designs}");
    assert_eq!(designs["source"], 2, "{designs}");
    src.shutdown().await;
    dst.shutdown().await;
}

/// An issue the destination's import does not create is a failure row with its URL, and the
/// destination's own words, while the project's other issues arrive (here the issues travel in the
/// archive that creates the project: they are one page).
#[tokio::test(flavor = "multi_thread")]
async fn an_issue_the_destination_refuses_is_a_failure_with_its_url_and_the_others_arrive() {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("acme.bundle");
    export(&src, &plain, &dir.path().join("export"), &[]).await;
    let want = get_all(
        &src.url,
        &src.owner_token,
        &format!("projects/{}/issues", enc("acme/backend/api")),
    )
    .await;
    src.shutdown().await;

    // A blank title: GitLab's import refuses the record ("Title can't be blank").
    let mut parts = members(&std::fs::read(&plain).unwrap());
    let mut iid = 0;
    rewrite_records(
        &mut parts,
        "projects/acme/backend/api/issues/000000.ndjson.zst",
        |issues| {
            // Not issue #2, whose designs would then not arrive either.
            let refused = issues.iter_mut().find(|i| i["iid"] != 2).unwrap();
            refused["title"] = json!("");
            iid = refused["iid"].as_u64().unwrap();
        },
    );
    let crafted = dir.path().join("refused.bundle");
    std::fs::write(&crafted, pack(&parts)).unwrap();

    let dst = destination().await;
    let mut cmd = replay_cmd(&dst, &crafted, &dir.path().join("replay"));
    cmd.arg("--json");
    let out = run(cmd).await;
    let r = report(&out);
    assert_eq!(r["has_failures"], true, "{}", text(&out));
    // The project's issues are one page: they travelled in the archive that created the project.
    let relation_imports = sim_requests(&dst).await["by_request"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("import-relation"))
        .count();
    assert_eq!(relation_imports, 0);
    let failures = report_rows(&r, "failures");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = failures[0];
    assert_eq!(f["relation"], "issues", "{f}");
    assert!(
        f["source_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/acme/backend/api/-/issues/{iid}"))),
        "{f}"
    );
    let said = f["exception_message"].as_str().unwrap();
    assert!(
        said.contains("did not create it") && said.contains("Title can't be blank"),
        "{said}"
    );
    let got = get_all(
        &dst.url,
        &dst.admin_token,
        &format!("projects/{}/issues", enc("imported/acme/backend/api")),
    )
    .await;
    assert_eq!(got.len(), want.len() - 1, "every other issue arrived");
    assert!(got.iter().all(|i| i["iid"] != iid));
    let stats = &r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source_full_path"] == "acme/backend/api")
        .unwrap()["stats"];
    let issues = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "issues")
        .unwrap();
    assert_eq!(issues["source"], want.len() as u64, "{issues}");
    assert_eq!(issues["imported"], want.len() as u64 - 1, "{issues}");
    dst.shutdown().await;
}

//! Crashes during offline transfer: an export or a replay killed in the middle, run again, completes
//! with the same result as an uninterrupted run and nothing twice.

use crate::bundle_common;
use crate::common;

use bundle_common::*;
use common::*;
use forge_sim::RunningSim;
use serde_json::json;
use std::path::Path;
use std::process::Stdio;

async fn set_latency(sim: &RunningSim, ms: u64) {
    let faults = if ms == 0 {
        json!({})
    } else {
        json!({ "latency_ms": ms })
    };
    let resp = http()
        .put(format!("{}/-/sim/faults", sim.url))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
}

/// How many staged files under an export's data directory match `file`.
fn staged(data: &Path, file: &dyn Fn(&Path) -> bool) -> usize {
    fn count(dir: &Path, file: &dyn Fn(&Path) -> bool) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() {
                            count(&p, file)
                        } else {
                            usize::from(file(&p))
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&data.join("exports"), file)
}

/// Pages staged (each has its description beside it).
fn staged_batches(data: &Path) -> usize {
    staged(data, &|p| p.extension().is_some_and(|x| x == "json"))
}

/// Project repositories staged (projects are exported after their group).
fn staged_repositories(data: &Path) -> usize {
    staged(data, &|p| p.file_name().is_some_and(|n| n == "repository"))
}

/// An export killed once `staged(data)` holds, then run again, writes exactly the bundle an
/// uninterrupted export writes.
async fn kill_export_and_resume(what: &str, staged: impl Fn(&Path) -> bool) {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.bundle");
    export(&src, &reference, &dir.path().join("data-ref"), &[]).await;

    set_latency(&src, 150).await;
    let (out, data) = (dir.path().join("resumed.bundle"), dir.path().join("data"));
    let mut child = export_cmd(&src, &out, &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(&mut child, what, async || staged(&data)).await;
    assert!(!out.exists(), "a killed export left a bundle behind");
    assert!(staged(&data), "{what}: staged before the kill");

    set_latency(&src, 0).await;
    let o = export(&src, &out, &data, &[]).await;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Resuming export"),
        "{}",
        text(&o)
    );
    let (a, b) = (
        std::fs::read(&reference).unwrap(),
        std::fs::read(&out).unwrap(),
    );
    assert!(
        a == b,
        "the resumed export differs from an uninterrupted one"
    );
    src.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_killed_midway_resumes_and_writes_the_same_bundle() {
    kill_export_and_resume("the export", |data| staged_batches(data) >= 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_killed_among_its_projects_resumes_and_writes_the_same_bundle() {
    kill_export_and_resume("the export of the projects", |data| {
        staged_repositories(data) >= 1
    })
    .await;
}

/// `appliance gc`: an export killed midway keeps its staged pages (running it again resumes from
/// them) while what a killed process left in the data directory goes; once the export is canceled
/// (as the API or the web page cancel it), its pages go too. `--dry-run` removes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_what_no_run_can_use_and_keeps_what_resumes() {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    set_latency(&src, 150).await;
    let (out, data) = (dir.path().join("x.bundle"), dir.path().join("data"));
    let mut child = export_cmd(&src, &out, &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(&mut child, "the export", async || {
        staged_batches(&data) >= 2
    })
    .await;
    let leftover = data.join(".tmpAbC123");
    std::fs::create_dir_all(leftover.join("source-project.git")).unwrap();
    std::fs::write(leftover.join("project_members.ndjson"), b"{}\n").unwrap();
    let staging: Vec<std::path::PathBuf> = std::fs::read_dir(data.join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [staging] = staging.as_slice() else {
        panic!("one export is staged: {staging:?}")
    };
    let id: u64 = staging
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let gc = |extra: &[&str]| {
        let mut cmd = appliance();
        cmd.arg("gc")
            .arg("--data")
            .arg(&data)
            .arg("--json")
            .args(extra);
        cmd
    };
    let paths = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    let o = run(gc(&[])).await;
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // (The killed export may have left a temporary directory of its own.)
    let removed = paths(&v, "removed");
    assert!(
        removed.contains(&leftover.display().to_string())
            && removed
                .iter()
                .all(|p| p.starts_with(&data.join(".tmp").display().to_string())),
        "{v:#}"
    );
    assert_eq!(
        paths(&v, "kept"),
        vec![staging.display().to_string()],
        "{v:#}"
    );
    assert!(
        v["kept"][0]["why"].as_str().unwrap().contains("resumes"),
        "{v:#}"
    );
    assert!(!leftover.exists());
    let batches = staged_batches(&data);
    assert!(batches >= 2, "the resumable export's pages stay");

    {
        let store = appliance::store::Store::open(&data).unwrap();
        store
            .set_bulk_import_status(
                id,
                appliance::model::Status::Canceled,
                appliance::model::now_millis(),
            )
            .unwrap();
    }
    let o = run(gc(&["--dry-run"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        paths(&v, "removed"),
        vec![staging.display().to_string()],
        "{v:#}"
    );
    assert_eq!(v["removed"][0]["removed"], false, "{v:#}");
    assert!(v["removed"][0]["size"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(staged_batches(&data), batches, "a dry run removes nothing");

    let o = run(gc(&[])).await;
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["removed"][0]["why"]
            .as_str()
            .unwrap()
            .contains("canceled"),
        "{v:#}"
    );
    assert_eq!(v["freed"], v["removed"][0]["size"], "{v:#}");
    assert!(!staging.exists());
    assert_eq!(staged_batches(&data), 0);
    // The store is untouched: the history still lists the export.
    let mut cmd = appliance();
    cmd.arg("list").arg("--data").arg(&data);
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("canceled"),
        "{}",
        text(&o)
    );

    // A data directory in use by another process is left alone.
    let store = appliance::store::Store::open(&data).unwrap();
    let o = run(gc(&[])).await;
    assert!(!o.status.success(), "{}", text(&o));
    drop(store);
    src.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_killed_midway_resumes_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    export(&src, &bundle, &dir.path().join("export-data"), &[]).await;

    set_latency(&dst, 150).await;
    let data = dir.path().join("replay-data");
    let mut child = replay_cmd(&dst, &bundle, &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(&mut child, "the replay", async || {
        let Some(g) = get(&dst.url, &dst.owner_token, "groups/imported%2Facme").await else {
            return false;
        };
        let id = g["id"].as_u64().unwrap();
        let path = format!("groups/{id}/labels?include_ancestor_groups=false");
        !get_all(&dst.url, &dst.owner_token, &path).await.is_empty()
    })
    .await;
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let partial = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_ne!(
        counts(&partial),
        counts(&want),
        "the kill landed after the replay was complete"
    );

    set_latency(&dst, 0).await;
    let r = run(replay_cmd(&dst, &bundle, &data)).await;
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("Resuming replay"),
        "{}",
        text(&r)
    );
    // Same tree and same lists: a duplicate label, milestone, badge or group would make them differ.
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_that_ended_with_failures_is_continued_with_retry() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    export(
        &src,
        &bundle,
        &dir.path().join("export-data"),
        &["--skip-projects"],
    )
    .await;
    refuse_a_label(&src, &dst, "acme").await;
    let data = dir.path().join("replay-data");
    let first = run(replay_cmd(&dst, &bundle, &data)).await;
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    set_faults(&dst, json!({})).await;

    // The same replay again is refused, saying how to continue it ...
    let again = run(replay_cmd(&dst, &bundle, &data)).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("add --retry"),
        "{}",
        text(&again)
    );
    // ... and with --retry, only what is missing is written.
    let mut cmd = replay_cmd(&dst, &bundle, &data);
    cmd.arg("--retry");
    let retried = run(cmd).await;
    assert!(retried.status.success(), "{}", text(&retried));
    // Each report says what its own run wrote: the retry, the one label the first run could not.
    let this_run = |out: &std::process::Output| -> String {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.trim_start().starts_with("This run:"))
            .unwrap_or_else(|| panic!("the report says what this run wrote: {}", text(out)))
            .trim()
            .to_string()
    };
    let first_run = this_run(&first);
    assert!(
        first_run.starts_with("This run: wrote ") && first_run.ends_with("; 1 new failures"),
        "{first_run}"
    );
    assert_eq!(
        this_run(&retried),
        "This run: wrote 1 records (labels 1); 0 new failures"
    );
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

//! A migration killed right after the first write of any stage reached the destination, then run
//! again with the same command, leaves the destination exactly as a clean run does: every record once,
//! none missing, the same stats, no failure. For every stage of a group migration, with an
//! administrator's destination token (`root`: texts written as their authors through `Sudo`, or named
//! by the importer when GitLab refuses the author) and an owner's (`ada`), live (`appliance migrate`)
//! and offline (`appliance replay` of one bundle); plus `appliance serve` stopped with SIGTERM during
//! epics and started again. The group's projects are left out (`--skip-projects`): every kill point
//! here is a group stage; the project stages have kill tests of their own (`tests/it/project_migration.rs`,
//! `tests/it/project_files.rs`).
//!
//! The kill lands deterministically: the destination simulator holds the next write once the stage's
//! first one succeeded (forge-sim's `hold` fault), and the process is killed while it waits for it.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Cases running at once across this file's tests (each is two runs of the binary).
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Where to kill: once `after` requests matching `when` succeeded, the next write is held, and the
/// process is killed (SIGKILL; with `by_signal`, Ctrl-C's SIGINT for a live run and SIGTERM for a
/// replay, as a user stops it).
struct KillPoint {
    name: &'static str,
    when: Value,
    after: u32,
    by_signal: bool,
}

fn at(name: &'static str, method: &str, path: &str, body: Option<&str>) -> KillPoint {
    KillPoint {
        name,
        when: json!({ "method": method, "path": path, "body_contains": body }),
        after: 1,
        by_signal: false,
    }
}

/// One kill point per stage of `src/engine/stages.rs`, right after its first write; and, within epics,
/// right after the first epic and the first note the importing user wrote naming the author (with an
/// administrator's token: those whose author GitLab refused), and the first award emoji.
/// `KILL_RESUME_ONLY=<part of a name>` runs only the matching kill points (to debug one).
fn kill_points() -> Vec<KillPoint> {
    let only = std::env::var("KILL_RESUME_ONLY").unwrap_or_default();
    let mut points = all_kill_points();
    points.retain(|p| p.name.contains(only.as_str()));
    points
}

fn all_kill_points() -> Vec<KillPoint> {
    let groups = "/api/v4/groups";
    let graphql = "/api/graphql";
    let in_group = |what: &str| format!("/api/v4/groups/*/{what}");
    vec![
        at("group", "POST", groups, None),
        at("group_files", "PUT", "/api/v4/groups/*", Some("avatar")),
        at("labels", "POST", &in_group("labels"), None),
        at("milestones", "POST", &in_group("milestones"), None),
        at("badges", "POST", &in_group("badges"), None),
        at(
            "iterations_cadences",
            "POST",
            graphql,
            Some("iterationCadenceCreate"),
        ),
        at("members", "POST", &in_group("members"), None),
        at("iterations", "POST", graphql, Some("iterationCreate")),
        at("epics", "POST", &in_group("epics"), None),
        // The first epic whose author could not write it: the importer wrote it naming the author.
        KillPoint {
            by_signal: true,
            ..at(
                "epics (the first one named by the importer)",
                "POST",
                &in_group("epics"),
                Some("(imported from GitLab)"),
            )
        },
        // Within an epic: its first note the importer wrote naming the author, its first award emoji.
        at(
            "epics (a note named by the importer)",
            "POST",
            &in_group("epics/*/notes"),
            Some("(imported from GitLab)"),
        ),
        at(
            "epics (an award emoji)",
            "POST",
            &in_group("epics/*/award_emoji"),
            None,
        ),
        at("boards", "POST", &in_group("boards"), None),
        at("epic_links", "PUT", &in_group("epics/*"), Some("parent_id")),
        at(
            "cadence_schedules",
            "POST",
            graphql,
            Some("iterationCadenceUpdate"),
        ),
        at("epic_order", "PUT", &in_group("epics/*/epics/*"), None),
        // The first subgroup is the second group created.
        KillPoint {
            after: 2,
            ..at("subgroups", "POST", groups, None)
        },
    ]
}

impl KillPoint {
    fn fault(&self) -> Value {
        json!({ "hold": {
            "when": self.when, "after": self.after, "hold": { "method": "write" },
        }})
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Live,
    Replay,
}

#[derive(Clone, Copy, Debug)]
enum Token {
    Admin,
    Owner,
}

impl Token {
    fn of(self, sim: &forge_sim::RunningSim) -> String {
        match self {
            Token::Admin => sim.admin_token.clone(),
            Token::Owner => sim.owner_token.clone(),
        }
    }
}

/// The source the bundle is exported from, shared by the whole file: (url, owner token). It runs on a
/// thread of its own, so it outlives each test's runtime. Live runs read a source of their own: GitLab
/// (and the simulator) start a group's relation export again when another client asks, so migrations
/// of one source group at the same time would see each other's batches vanish.
fn shared_source() -> &'static (String, String) {
    static SOURCE: OnceLock<(String, String)> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("a runtime");
            rt.block_on(async {
                let sim = source().await;
                tx.send((sim.url.clone(), sim.owner_token.clone()))
                    .expect("send");
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the source simulator started")
    })
}

/// The bundle of the shared source's `acme`, exported once for the whole file.
fn shared_bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let (url, token) = shared_source();
        let dir = tempfile::tempdir().expect("a temp dir").keep();
        let out = dir.join("acme.bundle");
        let o = appliance()
            .args([
                "export",
                "--group",
                "acme",
                "--skip-projects",
                "--source-url",
                url,
            ])
            .arg("--out")
            .arg(&out)
            .arg("--data")
            .arg(dir.join("data"))
            .env("APPLIANCE_SOURCE_TOKEN", token)
            .output()
            .expect("run export");
        assert!(o.status.success(), "export: {}", explain(&o));
        out
    })
}

/// Where a run reads from: a source simulator for a live run, none for a replay.
async fn source_for(mode: Mode) -> Option<forge_sim::RunningSim> {
    match mode {
        Mode::Live => Some(source().await),
        Mode::Replay => None,
    }
}

/// The command of one run: `migrate` (from `src`) or `replay` of `acme` into `imported` at `dst`.
fn command(
    mode: Mode,
    token: Token,
    src: Option<&forge_sim::RunningSim>,
    dst: &forge_sim::RunningSim,
    data: &Path,
) -> Command {
    let mut cmd = appliance();
    match mode {
        Mode::Live => {
            let src = src.expect("a live run has a source");
            cmd.args([
                "migrate",
                "--group",
                "acme",
                "--to",
                "imported",
                "--skip-projects",
            ])
            .args(["--source-url", &src.url])
            .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
        }
        Mode::Replay => {
            cmd.arg("replay")
                .arg(shared_bundle())
                .args(["--to", "imported"]);
        }
    }
    cmd.args(["--json", "--destination-url", &dst.url])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_DESTINATION_TOKEN", token.of(dst));
    cmd
}

/// What a clean run gives: the destination's dump and the report's stats.
struct Clean {
    dump: TreeSnapshot,
    stats: std::collections::BTreeMap<String, Value>,
}

/// The report of a finished run, asserted free of failures.
fn finished(what: &str, out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{what}: {}", explain(out));
    let r = report(out);
    assert_eq!(r["status"], "finished", "{what}: {r:#}");
    assert_eq!(r["has_failures"], false, "{what}: {r:#}");
    for e in r["entities"].as_array().unwrap() {
        assert_eq!(e["failures"], json!([]), "{what}: {e:#}");
    }
    r
}

async fn clean_run(mode: Mode, token: Token) -> Clean {
    let (src, dst) = (source_for(mode).await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let what = format!("a clean {mode:?} run with the {token:?} token");
    let r = finished(
        &what,
        &run(command(mode, token, src.as_ref(), &dst, data.path())).await,
    );
    let dump = destination_dump(&dst.url, &dst.admin_token, "imported/acme").await;
    dst.shutdown().await;
    if let Some(src) = src {
        src.shutdown().await;
    }
    Clean {
        dump,
        stats: report_stats(&r),
    }
}

/// Waits until the destination holds a request (the stage's first write reached it).
async fn holding(dst: &forge_sim::RunningSim) -> bool {
    let counts = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .expect("GET /-/sim/requests")
        .json::<Value>()
        .await
        .expect("JSON");
    counts["injected"]["held"].as_u64() >= Some(1)
}

/// Kills a run at `point`, runs the same command again, and compares with `clean`.
async fn kill_and_resume(mode: Mode, token: Token, point: &KillPoint, clean: &Clean) {
    let _slot = SLOTS.acquire().await.expect("the semaphore");
    let what = format!("{mode:?}, {token:?} token, killed in {}", point.name);
    let (src, dst) = (source_for(mode).await, destination().await);
    set_faults(&dst, point.fault()).await;
    let data = tempfile::tempdir().unwrap();
    let mut child = command(mode, token, src.as_ref(), &dst, data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start appliance");
    let signal = match (point.by_signal, mode) {
        (false, _) => "KILL",
        (true, Mode::Live) => "INT",
        (true, Mode::Replay) => "TERM",
    };
    stop_when(&mut child, &what, signal, async || holding(&dst).await).await;
    set_faults(&dst, json!({})).await;

    let out = run(command(mode, token, src.as_ref(), &dst, data.path())).await;
    // What was written first (a record twice or missing), then how the run ended and counted.
    let got = destination_dump(&dst.url, &dst.admin_token, "imported/acme").await;
    assert_same_dump(&what, &clean.dump, &got);
    let r = finished(&format!("{what}, then resumed"), &out);
    assert_eq!(
        report_stats(&r),
        clean.stats,
        "{what}: the stats differ from a clean run's"
    );
    dst.shutdown().await;
    if let Some(src) = src {
        src.shutdown().await;
    }
}

/// Every kill point, a few at a time; fails naming every case that failed.
async fn matrix(mode: Mode, token: Token) {
    use futures_util::FutureExt;
    let clean = clean_run(mode, token).await;
    let points = kill_points();
    let cases = points.iter().map(|point| {
        std::panic::AssertUnwindSafe(kill_and_resume(mode, token, point, &clean)).catch_unwind()
    });
    let results = futures_util::future::join_all(cases).await;
    let mut failed = Vec::new();
    for p in results.into_iter().filter_map(Result::err) {
        let message = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        failed.push(message);
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failed.len(),
        points.len(),
        failed.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_with_an_admin_token_killed_in_every_stage_resumes_exactly() {
    matrix(Mode::Live, Token::Admin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn live_with_an_owner_token_killed_in_every_stage_resumes_exactly() {
    matrix(Mode::Live, Token::Owner).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_with_an_admin_token_killed_in_every_stage_resumes_exactly() {
    matrix(Mode::Replay, Token::Admin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_with_an_owner_token_killed_in_every_stage_resumes_exactly() {
    matrix(Mode::Replay, Token::Owner).await;
}

/// `appliance serve` with an administrator's token, stopped with SIGTERM while it writes epics, then
/// started again: it resumes the migration at start and ends as a clean run does.
#[tokio::test(flavor = "multi_thread")]
async fn serve_stopped_with_sigterm_during_epics_resumes_exactly() {
    const API_TOKEN: &str = "kill-resume-api-token-0123456789";
    let clean = clean_run(Mode::Live, Token::Admin).await;
    let _slot = SLOTS.acquire().await.expect("the semaphore");
    let (src, dst) = (source().await, destination().await);
    let (src_url, src_token) = (&src.url, &src.owner_token);
    let data = tempfile::tempdir().unwrap();
    let serve = || {
        let mut child = appliance()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--destination-url", &dst.url])
            .arg("--data")
            .arg(data.path())
            .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token)
            .env("APPLIANCE_API_TOKEN", API_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start appliance serve");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        (child, url)
    };
    let api = |url: &str, method: reqwest::Method, path: &str| {
        http()
            .request(method, format!("{url}/api/v4/{path}"))
            .header("PRIVATE-TOKEN", API_TOKEN)
    };

    // Right after the first epic GitLab refused from its author, written by the importer naming them.
    let point = at(
        "epics",
        "POST",
        "/api/v4/groups/*/epics",
        Some("(imported from GitLab)"),
    );
    set_faults(&dst, point.fault()).await;
    let (mut child, url) = serve();
    let form = [
        ("configuration[url]", src_url.as_str()),
        ("configuration[access_token]", src_token.as_str()),
        ("entities[][source_type]", "group_entity"),
        ("entities[][source_full_path]", "acme"),
        ("entities[][destination_slug]", "acme"),
        ("entities[][destination_namespace]", "imported"),
        ("entities[][migrate_projects]", "false"),
    ];
    let resp = api(&url, reqwest::Method::POST, "bulk_imports")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    // It stops although a write is still unanswered (the next start writes it).
    stop_when(&mut child, "serve", "TERM", async || holding(&dst).await).await;
    set_faults(&dst, json!({})).await;

    let (mut child, url) = serve();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let done = loop {
        let b: Value = api(&url, reqwest::Method::GET, &format!("bulk_imports/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if b["status"] == "finished" {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted server did not finish the migration: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["has_failures"], false, "{done}");
    let entities: Vec<Value> = api(
        &url,
        reqwest::Method::GET,
        &format!("bulk_imports/{id}/entities?per_page=100"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    // The API's stats are GitLab's: per relation, source / fetched / imported.
    let mut stats = std::collections::BTreeMap::new();
    for e in &entities {
        assert_eq!(e["failures"], json!([]), "{e:#}");
        let path = e["source_full_path"].as_str().unwrap();
        for (relation, s) in e["stats"].as_object().unwrap() {
            stats.insert(
                format!("{path} {relation}"),
                json!([s["source"], s["fetched"], s["imported"]]),
            );
        }
    }
    let want: std::collections::BTreeMap<String, Value> = clean
        .stats
        .iter()
        .map(|(k, v)| (k.clone(), json!([v[1], v[2], v[3]])))
        .collect();
    assert_eq!(stats, want, "the stats differ from a clean run's");
    let got = destination_dump(&dst.url, &dst.admin_token, "imported/acme").await;
    assert_same_dump("serve stopped with SIGTERM", &clean.dump, &got);
    dst.shutdown().await;
    src.shutdown().await;
}

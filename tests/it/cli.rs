//! The command line as a user meets it: exit statuses (one meaning each, the same table in `--help`
//! and the README), Ctrl-C and SIGTERM, a closed output pipe, mistakes in paths and directories.

use crate::common;

use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn usage_errors_exit_64_and_help_shows_the_exit_status_table() {
    let bad = appliance().arg("no-such-command").output().unwrap();
    assert_eq!(code(&bad), Some(64), "{}", explain(&bad));
    let missing = appliance()
        .args(["migrate", "--group", "acme"])
        .output()
        .unwrap();
    assert_eq!(code(&missing), Some(64), "{}", explain(&missing));

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["replay", "--help"],
    ] {
        let help = appliance().args(&args).output().unwrap();
        assert_eq!(code(&help), Some(0), "{args:?}: {}", explain(&help));
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("APPLIANCE_LOG"), "{args:?}: {text}");
        for status in ["0", "1", "2", "3", "64", "130"] {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{status} ")))
                .unwrap_or_else(|| panic!("{args:?}: no line for exit status {status}: {text}"));
            // The README's table names every status too, with the same meaning.
            let meaning = line.trim_start()[status.len()..].trim();
            let first_words: String = meaning
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                readme.contains(&format!("| {status} |"))
                    && readme.lines().any(
                        |l| l.starts_with(&format!("| {status} |")) && l.contains(&first_words)
                    ),
                "the README's exit status table says what {status} means ({first_words})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_output_pipe_ends_the_command_quietly() {
    let mut child = appliance()
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line, as `| head -1` would, then go away.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Source:"), "{first}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn inspect_and_verify_into_a_closed_pipe_end_quietly() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/bundles/samples/acme.bundle");
    for command in ["inspect", "verify"] {
        let mut child = appliance()
            .args([command, sample])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{command}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_into_a_missing_directory_is_refused_before_the_source_is_read() {
    let src = source().await;
    let data = tempfile::tempdir().unwrap();
    let before = sim_requests(&src).await["total"].clone();
    let out = appliance()
        .args(["export", "--group", "acme", "--source-url", &src.url])
        .arg("--out")
        .arg(data.path().join("no/such/dir/acme.bundle"))
        .arg("--data")
        .arg(data.path().join("state"))
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .output()
        .unwrap();
    let said = explain(&out);
    assert_eq!(code(&out), Some(1), "{said}");
    assert!(said.contains("does not exist"), "{said}");
    assert!(!said.contains("internal error"), "{said}");
    assert_eq!(
        sim_requests(&src).await["total"].clone(),
        before,
        "nothing was read from the source"
    );
    src.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_never_overwrites_a_bundle_without_force() {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("acme.bundle");
    let export = |data: &str, force: bool| {
        let mut cmd = appliance();
        cmd.args(["export", "--group", "acme", "--source-url", &src.url])
            .arg("--out")
            .arg(&out)
            .arg("--data")
            .arg(dir.path().join(data))
            .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
        if force {
            cmd.arg("--force");
        }
        cmd
    };
    let first = run(export("first", false)).await;
    assert!(first.status.success(), "{}", explain(&first));
    let bundle = std::fs::read(&out).unwrap();

    let before = sim_requests(&src).await["total"].clone();
    let again = run(export("second", false)).await;
    let said = explain(&again);
    assert_eq!(code(&again), Some(1), "{said}");
    assert!(said.contains("pass --force to replace it"), "{said}");
    assert_eq!(
        sim_requests(&src).await["total"],
        before,
        "nothing was read"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        bundle,
        "the bundle is untouched"
    );

    let forced = run(export("third", true)).await;
    assert!(forced.status.success(), "{}", explain(&forced));
    src.shutdown().await;
}

#[test]
fn a_data_directory_that_cannot_be_made_is_said_once_and_is_no_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = appliance()
        .args(["migrate", "--group", "acme", "--to", "imported"])
        .args([
            "--source-url",
            "http://127.0.0.1:9",
            "--destination-url",
            "http://127.0.0.1:9",
        ])
        .arg("--data")
        .arg(file.join("data"))
        .env("APPLIANCE_SOURCE_TOKEN", "a")
        .env("APPLIANCE_DESTINATION_TOKEN", "b")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(code(&out), Some(1), "{said}");
    assert!(!said.contains("internal error"), "{said}");
    let cause = std::io::Error::from_raw_os_error(20).to_string(); // ENOTDIR
    assert_eq!(
        said.matches(&cause).count(),
        1,
        "the cause is said once: {said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_in_use_says_so() {
    let data = tempfile::tempdir().unwrap();
    let mut serve = appliance()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--destination-url", "http://127.0.0.1:9"])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_DESTINATION_TOKEN", "b")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    let out = appliance()
        .args(["migrate", "--group", "acme", "--to", "imported"])
        .args([
            "--source-url",
            "http://127.0.0.1:9",
            "--destination-url",
            "http://127.0.0.1:9",
        ])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_SOURCE_TOKEN", "a")
        .env("APPLIANCE_DESTINATION_TOKEN", "b")
        .output()
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), Some(1), "{said}");
    assert!(
        said.contains("in use by another appliance process"),
        "{said}"
    );
}

/// Ctrl-C (SIGINT) and SIGTERM stop a migration at its next record, say how to go on, and exit 130;
/// the same command then finishes it with nothing twice and nothing missing.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_migration_says_so_and_the_same_command_finishes_it() {
    for signal in ["INT", "TERM"] {
        let (src, dst) = (source().await, destination().await);
        set_faults(&dst, json!({"latency_ms": 100})).await;
        let data = tempfile::tempdir().unwrap();
        let mut child = appliance()
            .args(["migrate", "--json", "--group", "acme", "--to", "imported"])
            .args(["--source-url", &src.url, "--destination-url", &dst.url])
            .arg("--data")
            .arg(data.path())
            .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
            .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        while get(&dst.url, &dst.owner_token, "groups/imported%2Facme")
            .await
            .is_none()
        {
            assert!(Instant::now() < deadline, "the migration never started");
            assert!(
                child.try_wait().unwrap().is_none(),
                "ended before the signal"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = Instant::now();
        let kill = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stopped_in = sent.elapsed();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "SIG{signal}: {said}");
        assert!(
            said.contains("interrupted: run the same command again to resume"),
            "SIG{signal}: {said}"
        );
        // It stops at the next record, not after the whole migration (generous: a loaded machine).
        assert!(
            stopped_in < Duration::from_secs(15),
            "SIG{signal}: took {stopped_in:?}"
        );
        let partial = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
        let want = snapshot(&src.url, &src.owner_token, "acme").await;
        assert_ne!(
            counts(&partial),
            counts(&want),
            "SIG{signal} landed after the end"
        );

        set_faults(&dst, json!({})).await;
        let again = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
        assert!(again.status.success(), "SIG{signal}: {}", explain(&again));
        assert!(String::from_utf8_lossy(&again.stderr).contains("Resuming migration"));
        let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
        assert_same_tree(&want, &got);
        src.shutdown().await;
        dst.shutdown().await;
    }
}

/// Standard error that is not a terminal gets plain progress lines (no control characters): entities,
/// records imported of those counted, what is moving; and none with --quiet.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_not_on_a_terminal_writes_plain_progress_lines() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&dst, json!({"latency_ms": 60})).await;
    let migrate = |data: &std::path::Path, slug: &str, quiet: bool| {
        let mut cmd = appliance();
        cmd.args(["migrate", "--json", "--skip-projects", "--group", "acme"])
            .args(["--to", "imported", "--slug", slug])
            .args(["--source-url", &src.url, "--destination-url", &dst.url])
            .arg("--data")
            .arg(data)
            .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
            .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
            .env("APPLIANCE_PROGRESS_SECONDS", "1");
        if quiet {
            cmd.arg("--quiet");
        }
        cmd
    };
    let data = tempfile::tempdir().unwrap();
    let out = run(migrate(data.path(), "acme", false)).await;
    assert!(out.status.success(), "{}", explain(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(!lines.is_empty(), "no progress line: {said}");
    for l in &lines {
        assert!(
            l.contains(" entities · ") && l.contains(" records imported · "),
            "{l}"
        );
        assert!(!l.contains('\u{1b}') && !l.contains('\r'), "{l:?}");
    }
    assert!(
        lines.iter().any(|l| l.contains(" · now acme")),
        "what is moving is named: {lines:#?}"
    );
    // The JSON report on standard output is untouched.
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("a JSON report");

    let data = tempfile::tempdir().unwrap();
    let out = run(migrate(data.path(), "acme-quiet", true)).await;
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("progress: "),
        "{}",
        explain(&out)
    );
    src.shutdown().await;
    dst.shutdown().await;
}

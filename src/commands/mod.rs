//! One file per subcommand. Each parses nothing itself (clap does) and only wires the library together
//! and prints; the work is in the engine.

pub mod args;
pub mod check;
#[cfg(feature = "demo")]
pub mod demo;
pub mod export;
pub mod gc;
pub mod help;
pub mod history;
pub mod inspect;
pub mod migrate;
pub mod output;
pub mod progress;
pub mod replay;
pub mod serve;
pub mod verify;

use crate::engine::{Engine, EngineError};
use crate::model::Status;
use crate::report::Report;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Reads `--user-map FILE` (CSV: source username or email, destination username).
pub fn read_user_map(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Vec<crate::user_map::UserMapping>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--user-map {}: {e}", path.display()))?;
    crate::user_map::UserMap::parse_csv(&text)
        .map_err(|e| anyhow::anyhow!("--user-map {}: {e}", path.display()))
}

/// Exit status of a foreground migration: 0 only when it finished without failures.
pub fn exit_code(report: &Report) -> ExitCode {
    if report.status == Status::Finished.as_str() && !report.has_failures {
        ExitCode::from(output::exit::FINISHED)
    } else {
        ExitCode::from(output::exit::FAILURES)
    }
}

/// The exit status of a migration that paused because a forge was unreachable: run it again to resume.
pub const EXIT_PAUSED: u8 = output::exit::PAUSED;

/// Runs a recorded bulk import in the foreground, prints its report (text or JSON) and turns the outcome
/// into the exit status: 0 finished cleanly, 2 with failures, 3 paused (run the same command again).
/// `what` names the run in messages ("Migration", "Replay").
pub async fn run_and_report(
    engine: &Arc<Engine>,
    id: u64,
    json: bool,
    what: &str,
) -> anyhow::Result<ExitCode> {
    match run_with_progress(engine, id, progress::Mode::for_stderr()).await {
        Ok(report) => {
            if json {
                crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                crate::out!("{}", report.to_text())?;
            }
            Ok(exit_code(&report))
        }
        Err(EngineError::Unreachable(why)) => {
            eprintln!("{what} {id} paused: {why}\nRun the same command again to resume it.");
            Ok(ExitCode::from(EXIT_PAUSED))
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs a recorded bulk import in the foreground, showing its progress as `mode` says (a spinner on
/// a terminal, a plain line every few seconds otherwise), and returns its report.
pub async fn run_with_progress(
    engine: &Arc<Engine>,
    id: u64,
    mode: progress::Mode,
) -> Result<Report, EngineError> {
    let bar = if mode == progress::Mode::Bar {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let watcher = {
        let (bar, store, engine) = (bar.clone(), engine.store().clone(), engine.clone());
        tokio::spawn(async move {
            let mut rate = progress::Rate::default();
            let mut last_line = std::time::Instant::now();
            // The report is read from the store only as often as something shows it: twice a
            // second for a spinner, and for plain lines often enough to measure a rate by the next.
            let tick = match mode {
                progress::Mode::Hidden => return,
                progress::Mode::Bar => Duration::from_millis(500),
                progress::Mode::Lines(every) => {
                    every.clamp(Duration::from_millis(500), Duration::from_secs(5))
                }
            };
            loop {
                tokio::time::sleep(tick).await;
                let store = store.clone();
                let report = tokio::task::spawn_blocking(move || Report::build(&store, id)).await;
                let Ok(Ok(r)) = report else { continue };
                let now = std::time::Instant::now();
                let imported = r.totals().iter().map(|(_, s)| s.imported).sum();
                let speed = rate.observe(now, imported);
                // A forge that asked to wait, or is preparing an export: say so, and for how long,
                // instead of looking stuck.
                let mut waits: Vec<String> = engine
                    .rate_limit_waits()
                    .iter()
                    .map(|w| w.to_string())
                    .collect();
                waits.extend(crate::source::export::preparing());
                let text = progress::line(&r, speed, &waits);
                match mode {
                    progress::Mode::Bar => bar.set_message(text),
                    progress::Mode::Lines(every) if now.duration_since(last_line) >= every => {
                        last_line = now;
                        eprintln!("progress: {text}");
                    }
                    _ => {}
                }
            }
        })
    };
    let build = |store: crate::store::Store| async move {
        tokio::task::spawn_blocking(move || Report::build(&store, id))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(EngineError::from)
    };
    let before = build(engine.store().clone()).await;
    let result = engine.run(id).await;
    watcher.abort();
    bar.finish_and_clear();
    result?;
    let mut report = build(engine.store().clone()).await?;
    let failures_before = before.map(|b| b.failure_count()).unwrap_or(0);
    report.this_run = Some(crate::report::ThisRun::new(
        crate::engine::written(id),
        report.failure_count().saturating_sub(failures_before),
    ));
    Ok(report)
}

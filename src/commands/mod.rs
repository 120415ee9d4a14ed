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
    let show_progress = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match run_with_progress(engine, id, show_progress).await {
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

/// Runs a recorded bulk import in the foreground with a progress bar, and returns its report.
pub async fn run_with_progress(
    engine: &Arc<Engine>,
    id: u64,
    show_progress: bool,
) -> Result<Report, EngineError> {
    let bar = if show_progress && !output::quiet() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let watcher = {
        let (bar, store, engine) = (bar.clone(), engine.store().clone(), engine.clone());
        tokio::spawn(async move {
            loop {
                let store = store.clone();
                let report = tokio::task::spawn_blocking(move || Report::build(&store, id)).await;
                if let Ok(Ok(r)) = report {
                    let (fetched, imported) = r
                        .totals()
                        .iter()
                        .fold((0, 0), |(f, i), (_, s)| (f + s.fetched, i + s.imported));
                    let done = r
                        .entities
                        .iter()
                        .filter(|e| e.status != "created" && e.status != "started")
                        .count();
                    // A forge that asked to wait: say so, and until when, instead of looking stuck.
                    let waits: String = engine
                        .rate_limit_waits()
                        .iter()
                        .map(|w| format!("; {w}"))
                        .collect();
                    bar.set_message(format!(
                        "{done}/{} entities, {fetched} records fetched, {imported} imported, {} failures{waits}",
                        r.entities.len(),
                        r.failure_count()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let result = engine.run(id).await;
    watcher.abort();
    bar.finish_and_clear();
    result?;
    let store = engine.store().clone();
    tokio::task::spawn_blocking(move || Report::build(&store, id))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(EngineError::from)
}

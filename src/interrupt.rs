//! Ctrl-C and SIGTERM for a command running in the foreground: the first signal asks every running
//! migration to stop at its next record (what is committed stays committed, and the migration stays
//! resumable); a second signal, or a stop that takes longer than [`GRACE`], ends the process at once.
//! A kill at any point is safe too (pages are committed atomically): this only makes the stop prompt,
//! quiet and explained.

use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a stop may take before the process ends without waiting for it.
pub const GRACE: Duration = Duration::from_secs(20);

static TOKEN: OnceLock<CancellationToken> = OnceLock::new();

/// The process-wide stop request: cancelled by the first Ctrl-C or SIGTERM once [`listen`] runs.
/// Engines derive their runs' tokens from it.
pub fn token() -> &'static CancellationToken {
    TOKEN.get_or_init(CancellationToken::new)
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    token().is_cancelled()
}

/// Listens for Ctrl-C and SIGTERM (call once, inside the runtime). The first cancels [`token`]; a
/// second one, or [`GRACE`] after the first, prints `farewell` and exits with `code`.
pub fn listen(farewell: &'static str, code: u8) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: finishing the current record");
        token().cancel();
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = tokio::time::sleep(GRACE) => {}
        }
        eprintln!("{farewell}");
        std::process::exit(i32::from(code));
    });
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

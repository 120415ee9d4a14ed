//! What a command prints on standard output, and the exit statuses every command shares.
//!
//! Output goes through [`outln!`](crate::outln) and [`out!`](crate::out) instead of `println!`: when the
//! reader goes away (`appliance inspect x | head`), they return [`StdoutClosed`] and the command stops
//! quietly instead of panicking on the broken pipe.

use std::fmt;
use std::io::Write;

/// Exit statuses, one meaning each (the same table is in the README and in `--help`).
pub mod exit {
    /// Finished: the work was done without failures (a bundle verified, a migration without failures).
    pub const FINISHED: u8 = 0;
    /// Refused before starting: a bad argument value, an unreachable or refusing forge, a bundle that
    /// does not verify, a data directory in use. Nothing was written.
    pub const REFUSED: u8 = 1;
    /// Finished with failures: the report lists every record that did not arrive.
    pub const FAILURES: u8 = 2;
    /// Paused: a forge stayed unreachable; run the same command again to resume.
    pub const PAUSED: u8 = 3;
    /// Usage error: the command line itself is wrong (unknown flag, missing argument).
    pub const USAGE: u8 = 64;
    /// Interrupted by Ctrl-C or SIGTERM after committing what was done; run the same command again.
    pub const INTERRUPTED: u8 = 130;
}

/// The footer of every `--help`: logging, and the exit status table (kept equal to the README's by a
/// test).
pub const EXIT_STATUS_HELP: &str = "\
Logging: APPLIANCE_LOG sets what is logged to standard error, as a tracing filter such as `info` or
`appliance=debug` (default `warn`); `--log-format json` writes one JSON object per line. Colour only on
a terminal. Tokens are never logged. Progress: a line redrawn in place on a terminal; otherwise a plain
`progress:` line every 10 s (APPLIANCE_PROGRESS_SECONDS sets how often, 0 turns it off; --quiet too).

Exit status:
  0    finished without failures
  1    refused before starting (bad setting, forge refused or unreachable, bundle does not verify)
  2    finished with failures (the report lists each one)
  3    paused: a forge stayed unreachable; run the same command again to resume
  64   usage error in the command line
  130  interrupted (Ctrl-C or SIGTERM): what was done is kept; run the same command again to resume";

/// Standard output was closed by its reader (a pipe into `head`): not an error, the command stops.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes to standard output; a closed pipe is [`StdoutClosed`], any other failure an I/O error.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--quiet`: long commands show no progress.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn write_stdout(args: fmt::Arguments<'_>, newline: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// `println!` that returns [`StdoutClosed`] instead of panicking when the reader is gone.
#[macro_export]
macro_rules! outln {
    () => { $crate::commands::output::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::commands::output::write_stdout(format_args!($($arg)*), true) };
}

/// `print!` that returns [`StdoutClosed`] instead of panicking when the reader is gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::output::write_stdout(format_args!($($arg)*), false) };
}

/// An error for people: the chain of causes joined with ": ", leaving out a cause whose words the
/// message already holds (so "Permission denied" is said once, not three times).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        // An I/O cause often repeats the previous one behind a generic prefix ("I/O error: ...").
        let stripped = part
            .strip_prefix("I/O error: ")
            .or_else(|| part.strip_prefix("io error: "))
            .unwrap_or(&part);
        if text.contains(stripped) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the store at /data: {source}")]
    struct Open {
        source: Wrapped,
    }
    #[derive(Debug, thiserror::Error)]
    #[error("I/O error: {0}")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn a_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let io_text = io.to_string();
        let e = anyhow::Error::new(Open {
            source: Wrapped(io),
        });
        // anyhow's own `{:#}` repeats the cause once per level.
        assert!(format!("{e:#}").matches(&io_text).count() > 1);
        let said = describe(&e);
        assert_eq!(said.matches(&io_text).count(), 1, "{said}");
        assert!(said.starts_with("cannot open the store at /data"), "{said}");
    }

    #[test]
    fn distinct_causes_are_all_said() {
        let e = anyhow::anyhow!("connection refused").context("--source-url https://a.example");
        assert_eq!(
            describe(&e),
            "--source-url https://a.example: connection refused"
        );
    }
}

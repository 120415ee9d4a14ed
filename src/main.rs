//! The `appliance` binary: parses the command line, sets up logging and hands over to a command.

use appliance::commands;
use appliance::commands::output::{EXIT_STATUS_HELP, StdoutClosed, describe, exit};
use appliance::engine::EngineError;
use appliance::interrupt;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "appliance",
    version,
    about = "Migrate GitLab groups into a GitLab instance, live or through offline bundles",
    after_help = EXIT_STATUS_HELP,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on standard error are written: `human` (plain text, coloured only on a
    /// terminal) or `json` (one object per line). APPLIANCE_LOG chooses which lines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Human,
        env = "APPLIANCE_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Human,
    Json,
}

/// Logs to standard error, filtered by `APPLIANCE_LOG`. Colour only when standard error is a terminal
/// (and `NO_COLOR` is not set), so files and journals get plain text. A line written inside an API
/// request carries its `request_id` (the `request` span): in `json`, under `span`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("APPLIANCE_LOG")
        .unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve GitLab's bulk_imports API; migrations started through it write into the destination.
    #[command(after_help = EXIT_STATUS_HELP)]
    Serve(commands::serve::ServeArgs),
    /// Run one live migration in the foreground and print its report.
    #[command(after_help = EXIT_STATUS_HELP)]
    Migrate(commands::migrate::MigrateArgs),
    /// Export a source group into a bundle file for offline transfer, and print its root digest.
    #[command(after_help = EXIT_STATUS_HELP)]
    Export(commands::export::ExportArgs),
    /// Check every byte of a bundle against its manifest (and its signature against a trusted key).
    #[command(after_help = EXIT_STATUS_HELP)]
    Verify(commands::verify::VerifyArgs),
    /// Show what a bundle holds: source, entities, relations, record counts and sizes.
    #[command(after_help = EXIT_STATUS_HELP)]
    Inspect(commands::inspect::InspectArgs),
    /// Verify a bundle, then load it into a destination GitLab like a live migration.
    #[command(after_help = EXIT_STATUS_HELP)]
    Replay(commands::replay::ReplayArgs),
    /// Migrate the built-in sample source into the built-in sample destination and print the report.
    #[cfg(feature = "demo")]
    #[command(after_help = EXIT_STATUS_HELP)]
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are answers, not errors; anything else is a usage error.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_format);
    appliance::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // A foreground run stops at its next record on Ctrl-C or SIGTERM and says how to resume;
        // `serve` stops taking work and checkpoints its migrations the same way.
        match &cli.command {
            Command::Serve(_) => interrupt::listen(
                "stopped before every migration reached a safe point; they resume at the next start",
                exit::INTERRUPTED,
            ),
            Command::Verify(_) | Command::Inspect(_) => {}
            _ => interrupt::listen(INTERRUPTED, exit::INTERRUPTED),
        }
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Migrate(args) => commands::migrate::run(args).await,
            Command::Export(args) => commands::export::run(args).await,
            Command::Verify(args) => commands::verify::run(args).await,
            Command::Inspect(args) => commands::inspect::run(args).await,
            Command::Replay(args) => commands::replay::run(args).await,
            #[cfg(feature = "demo")]
            Command::Demo(args) => commands::demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        // The reader of standard output went away (`| head`): it has what it wanted.
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => ExitCode::SUCCESS,
        Err(e)
            if e.chain()
                .any(|c| matches!(c.downcast_ref(), Some(EngineError::Interrupted))) =>
        {
            eprintln!("{INTERRUPTED}");
            ExitCode::from(exit::INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(exit::REFUSED)
        }
    }
}

const INTERRUPTED: &str = "interrupted: run the same command again to resume";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_line_is_well_formed() {
        // clap checks names, ids and conflicts of every subcommand only when it is built.
        Cli::command().debug_assert();
    }

    #[test]
    fn printing_parsed_arguments_never_shows_a_token() {
        let cli = Cli::try_parse_from([
            "appliance",
            "migrate",
            "--source-url",
            "https://src.example",
            "--source-token",
            "glpat-source-secret",
            "--destination-url",
            "https://dst.example",
            "--destination-token",
            "glpat-destination-secret",
            "--group",
            "acme",
            "--to",
            "imported",
        ])
        .expect("a valid command line");
        let printed = format!("{cli:?}");
        assert!(printed.contains("https://src.example"), "{printed}");
        assert!(!printed.contains("glpat-"), "{printed}");
    }
}

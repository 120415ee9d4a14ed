//! The `appliance` binary: parses the command line, sets up logging and hands over to a command.

use appliance::commands;
use appliance::commands::help::after_help;
use appliance::commands::output::{StdoutClosed, describe, exit};
use appliance::config::{LogFormat, ServeSettings};
use appliance::engine::EngineError;
use appliance::interrupt;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "appliance",
    version,
    about = "Migrate GitLab groups into a GitLab instance, live or through offline bundles",
    after_help = after_help("appliance"),
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on standard error are written: `text` (plain, coloured only on a terminal;
    /// `human` says the same) or `json` (one object per line). APPLIANCE_LOG chooses which lines;
    /// `serve` also takes `log_format` and `log` from its config file.
    #[arg(long, global = true, value_enum, env = "APPLIANCE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Print only errors and the result: no progress, no warnings (over APPLIANCE_LOG).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More log lines: -v for what each step does, -vv for debugging (over APPLIANCE_LOG).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Logs to standard error, filtered by `APPLIANCE_LOG`. Colour only when standard error is a terminal
/// (and `NO_COLOR` is not set), so files and journals get plain text. A line written inside an API
/// request carries its `request_id` (the `request` span): in `json`, under `span`.
fn init_logging(filter: tracing_subscriber::EnvFilter, format: LogFormat) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
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
    #[command(after_help = after_help("serve"))]
    Serve(commands::serve::ServeArgs),
    /// Run one live migration in the foreground and print its report.
    #[command(after_help = after_help("migrate"))]
    Migrate(commands::migrate::MigrateArgs),
    /// Export source groups and projects into a bundle file for offline transfer, and print its root
    /// digest.
    #[command(after_help = after_help("export"))]
    Export(commands::export::ExportArgs),
    /// Check every byte of a bundle against its manifest (and its signature against a trusted key).
    #[command(after_help = after_help("verify"))]
    Verify(commands::verify::VerifyArgs),
    /// Show what a bundle holds: source, entities, relations, record counts and sizes.
    #[command(after_help = after_help("inspect"))]
    Inspect(commands::inspect::InspectArgs),
    /// Verify a bundle, then load it into a destination GitLab like a live migration.
    #[command(after_help = after_help("replay"))]
    Replay(commands::replay::ReplayArgs),
    /// Pre-flight: what a migration would move and everything that would block it, writing nothing.
    #[command(after_help = after_help("check"))]
    Check(commands::check::CheckArgs),
    /// List the migrations, exports and replays that ran in a data directory.
    #[command(after_help = after_help("list"))]
    List(commands::history::ListArgs),
    /// Print the report of one migration from the store, as its run printed it.
    #[command(after_help = after_help("status"))]
    Status(commands::history::StatusArgs),
    /// Write the report of one migration to a file, as JSON, CSV or Markdown.
    #[command(after_help = after_help("report"))]
    Report(commands::history::ReportArgs),
    /// Remove from a data directory what no run can use any more: the staged pages of canceled or
    /// failed exports, and temporary directories of stopped processes.
    #[command(after_help = after_help("gc"))]
    Gc(commands::gc::GcArgs),
    /// Migrate the built-in sample source into the built-in sample destination and print the report.
    #[cfg(feature = "demo")]
    #[command(after_help = after_help("demo"))]
    Demo(commands::demo::DemoArgs),
    /// Write the man pages and shell completions (bash, zsh, fish) of this command line into a
    /// directory, as the Debian package ships them.
    #[command(hide = true)]
    GenerateAssets {
        /// Directory to write `man/*.1` and `completions/*` into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The man pages (`appliance.1` and one `appliance-<command>.1` per visible command) and the shell
/// completions, from the same clap definition that parses the command line.
fn generate_assets(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    let cmd = Cli::command();
    let mut pages = vec![("appliance".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("appliance-{}", sub.get_name());
        // clap names a command with a `&'static str`; this runs once, in a short-lived process.
        let page_name: &'static str = Box::leak(name.clone().into_boxed_str());
        // The page is named appliance-serve(1); its synopsis says how it is typed: `appliance serve`.
        let sub = sub
            .clone()
            .name(page_name)
            .bin_name(format!("appliance {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        pages.push((name, sub));
    }
    for (name, page) in pages {
        let path = man.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        std::fs::write(&path, buf)?;
        written.push(path);
    }
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "appliance"),
        (clap_complete::Shell::Zsh, "_appliance"),
        (clap_complete::Shell::Fish, "appliance.fish"),
    ] {
        let path = completions.join(file);
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "appliance", &mut buf);
        std::fs::write(&path, buf)?;
        written.push(path);
    }
    Ok(written)
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
    if let Command::GenerateAssets { out } = &cli.command {
        return match generate_assets(out) {
            Ok(paths) => {
                for p in paths {
                    println!("{}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write into {}: {e}", out.display());
                ExitCode::from(exit::REFUSED)
            }
        };
    }
    // serve's settings (config file, environment, flags) are read before anything starts: a wrong
    // one stops here, naming the setting, and they say how to log.
    let mut serve_settings: Option<ServeSettings> = None;
    if let Command::Serve(args) = &cli.command {
        match args.settings() {
            Ok(settings) => serve_settings = Some(settings),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::REFUSED);
            }
        }
    }
    let (filter, format) = match &serve_settings {
        Some(s) => (
            tracing_subscriber::EnvFilter::new(&s.log),
            cli.log_format.unwrap_or(s.log_format),
        ),
        None => (
            // A flag on the command line wins over APPLIANCE_LOG, as flags win over the environment.
            match (cli.quiet, cli.verbose) {
                (true, _) => "error".into(),
                (false, 1) => "info".into(),
                (false, 2..) => "debug".into(),
                (false, 0) => tracing_subscriber::EnvFilter::try_from_env("APPLIANCE_LOG")
                    .unwrap_or_else(|_| "warn".into()),
            },
            cli.log_format.unwrap_or_default(),
        ),
    };
    commands::output::set_quiet(cli.quiet);
    init_logging(filter, format);
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
            Command::Verify(_)
            | Command::Inspect(_)
            | Command::Check(_)
            | Command::List(_)
            | Command::Status(_)
            | Command::Report(_)
            | Command::Gc(_) => {}
            _ => interrupt::listen(INTERRUPTED, exit::INTERRUPTED),
        }
        match cli.command {
            Command::Serve(_) => match serve_settings {
                Some(settings) => commands::serve::run(settings).await,
                None => unreachable!("serve's settings are resolved before the runtime starts"),
            },
            Command::Migrate(args) => commands::migrate::run(args).await,
            Command::Export(args) => commands::export::run(args).await,
            Command::Verify(args) => commands::verify::run(args).await,
            Command::Inspect(args) => commands::inspect::run(args).await,
            Command::Replay(args) => commands::replay::run(args).await,
            Command::Check(args) => commands::check::run(args).await,
            Command::List(args) => commands::history::list(args).await,
            Command::Status(args) => commands::history::status(args).await,
            Command::Report(args) => commands::history::write_report(args).await,
            Command::Gc(args) => commands::gc::run(args).await,
            #[cfg(feature = "demo")]
            Command::Demo(args) => commands::demo::run(args).await,
            Command::GenerateAssets { .. } => unreachable!("handled before the runtime starts"),
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

    #[test]
    fn every_command_line_is_well_formed() {
        // clap checks names, ids and conflicts of every subcommand only when it is built.
        Cli::command().debug_assert();
    }

    /// Every command's `--help` has examples, and every example parses as the command line it shows
    /// (the tokens come from the environment, as the examples say).
    #[test]
    fn every_help_has_examples_that_parse() {
        // SAFETY: no other test of this binary reads the environment.
        unsafe {
            std::env::set_var("APPLIANCE_SOURCE_TOKEN", "glpat-example");
            std::env::set_var("APPLIANCE_DESTINATION_TOKEN", "glpat-example");
        }
        let cli = Cli::command();
        let mut names = vec!["appliance".to_string()];
        names.extend(
            cli.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string()),
        );
        let mut parsed = 0;
        for name in &names {
            let help = if name == "appliance" {
                cli.get_after_help()
            } else {
                cli.find_subcommand(name).unwrap().get_after_help()
            }
            .map(|h| h.to_string())
            .unwrap_or_default();
            assert!(help.contains("Examples:\n"), "{name}: {help}");
            let examples: Vec<&str> = help
                .lines()
                .filter_map(|l| l.strip_prefix("  appliance "))
                .collect();
            assert!(!examples.is_empty(), "{name} has an example: {help}");
            for example in examples {
                let args = std::iter::once("appliance").chain(example.split_whitespace());
                match Cli::try_parse_from(args) {
                    Ok(_) => {}
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(e) => panic!("{name}: `appliance {example}` does not parse: {e}"),
                }
                assert!(!example.contains("glpat"), "{example}");
                parsed += 1;
            }
        }
        assert!(parsed >= names.len());
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

    #[test]
    fn the_man_pages_and_completions_follow_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate_assets(dir.path()).unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        // One page per visible command, none for the hidden one.
        for sub in Cli::command().get_subcommands() {
            let page = dir
                .path()
                .join(format!("man/appliance-{}.1", sub.get_name()));
            assert_eq!(page.exists(), !sub.is_hide_set(), "{}", page.display());
        }
        let serve = read("man/appliance-serve.1");
        for flag in [
            "config",
            "destination\\-token\\-file",
            "api\\-token\\-file",
            "log\\-format",
        ] {
            assert!(serve.contains(flag), "{flag} missing from the serve page");
        }
        assert!(serve.contains("APPLIANCE_CONFIG"));
        assert!(
            serve.contains("\\fBappliance serve\\fR"),
            "the synopsis is how it is typed"
        );
        assert!(read("man/appliance.1").contains("appliance\\-serve(1)"));
        let bash = read("completions/appliance");
        assert!(bash.contains("--destination-token-file") && bash.contains("replay"));
        assert!(read("completions/_appliance").contains("#compdef appliance"));
        assert!(read("completions/appliance.fish").contains("complete -c appliance"));
        assert_eq!(
            written.len(),
            dir.path().join("man").read_dir().unwrap().count() + 3
        );
    }
}

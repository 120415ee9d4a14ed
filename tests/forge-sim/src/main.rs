//! The `forge-sim` binary: parses the command line, starts a [`forge_sim::RunningSim`], prints
//! one line of JSON (`url`, `admin_token`, `owner_token`) once it accepts connections, and
//! serves until SIGTERM or SIGINT. It must print nothing else on stdout.

use std::net::SocketAddr;

use clap::Parser;
use forge_sim::faults::FaultConfig;
use forge_sim::{Dataset, RunningSim, SimConfig};

#[derive(Debug, Parser)]
#[command(
    name = "forge-sim",
    about = "A GitLab REST API v4 (and GraphQL) simulator for tests"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// empty | small | medium
    #[arg(long, default_value = "small")]
    dataset: Dataset,
    /// Seed for data, timestamps and tokens.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests allowed per minute before 429s.
    #[arg(long)]
    rate_limit_per_minute: Option<u32>,
    /// Share of requests answered with an injected fault (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// MiB of incompressible blobs added to the first project's repository at start (benchmarks of
    /// large repositories; the repository lives in a temporary directory until the simulator stops).
    #[arg(long, default_value_t = 0)]
    large_repository_mib: u64,
    /// MiB of incompressible Git LFS objects (64 MiB each) committed to the first project's
    /// repository as pointers at start, their bytes served by the LFS API (benchmarks of LFS).
    #[arg(long, default_value_t = 0)]
    large_lfs_mib: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORGE_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!(
            "--fault-rate must be between 0.0 and 1.0, got {}",
            args.fault_rate
        );
    }
    let mut config = SimConfig::new(args.dataset, args.seed);
    config.listen = args.listen;
    config.large_repository_mib = args.large_repository_mib;
    config.large_lfs_mib = args.large_lfs_mib;
    config.faults = FaultConfig {
        latency_ms: args.latency_ms,
        rate_limit_per_minute: args.rate_limit_per_minute,
        fault_rate: args.fault_rate,
        ..FaultConfig::default()
    };
    let sim = RunningSim::start(config).await?;
    let line = serde_json::json!({
        "url": sim.url,
        "admin_token": sim.admin_token,
        "owner_token": sim.owner_token,
    });
    println!("{line}");
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

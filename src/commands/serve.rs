//! `appliance serve`: GitLab's bulk_imports API on a local port. Migrations started through it write into
//! the configured destination; unfinished ones resume at start. Stops cleanly on SIGTERM or Ctrl-C.

use super::args::DestinationArgs;
use crate::api::{self, ApiState, TokenOrigin, load_or_create_token};
use crate::engine::{Destination, Engine, EngineConfig};
use crate::forge::parse_forge_url;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "APPLIANCE_LISTEN")]
    pub listen: SocketAddr,
    /// Where migration state and the API token are kept (created if missing).
    #[arg(long, default_value = "appliance-data", env = "APPLIANCE_DATA")]
    pub data: PathBuf,
    /// The destination GitLab instance migrations write into.
    #[command(flatten)]
    pub destination: DestinationArgs,
    /// Where bundles named by API requests are written (`export_bundle`) and read
    /// (`configuration[bundle]`); defaults to `<data>/bundles`.
    #[arg(long, env = "APPLIANCE_BUNDLE_DIR")]
    pub bundle_dir: Option<PathBuf>,
    /// Retries of one request to a forge before its migration pauses (5xx and network errors; a 429
    /// is a wait the forge asks for, and does not count).
    #[arg(long, default_value_t = 8)]
    pub http_retries: usize,
    /// Seconds before a paused migration (a forge stayed unreachable) is tried again; doubles on
    /// each pause, up to 16 times this.
    #[arg(long, default_value_t = 30)]
    pub resume_after: u64,
    /// Allow plain http to forges that are not on this machine.
    #[arg(long)]
    pub allow_http: bool,
    /// Serve Prometheus metrics at `/metrics` on this address, a listener of its own without the
    /// token (off when not given). A port alone (`9090` or `:9090`) listens on 127.0.0.1.
    #[arg(long, value_name = "ADDR", env = "APPLIANCE_METRICS_LISTEN", value_parser = metrics_addr)]
    pub metrics_listen: Option<SocketAddr>,
}

/// `--metrics-listen`: an address, or a port alone on loopback.
fn metrics_addr(value: &str) -> Result<SocketAddr, String> {
    let port = value.strip_prefix(':').unwrap_or(value);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value
        .parse()
        .map_err(|_| format!("`{value}` is neither an address (127.0.0.1:9090) nor a port (9090)"))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let destination = Destination {
        url: parse_forge_url(&args.destination.url, args.allow_http)
            .context("--destination-url")?,
        token: args.destination.token,
    };
    let mut config = EngineConfig::new(args.data.clone(), Some(destination));
    config.allow_http = args.allow_http;
    config.retry.max_times = args.http_retries;
    config.resume_after = std::time::Duration::from_secs(args.resume_after.max(1));
    if let Some(dir) = &args.bundle_dir {
        config.bundle_dir = dir.clone();
    }
    let engine = Engine::open(config)?;
    let (token, origin) = load_or_create_token(&args.data).with_context(|| {
        format!(
            "reading or creating the API token in {}",
            args.data.display()
        )
    })?;
    match origin {
        TokenOrigin::Environment => eprintln!("API token: from APPLIANCE_API_TOKEN"),
        TokenOrigin::File(p) => eprintln!("API token: in {}", p.display()),
        TokenOrigin::Generated(p) => {
            eprintln!("API token: generated into {} (mode 0600)", p.display())
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = match args.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?,
        ),
        None => None,
    };
    let resumed = engine.resume_unfinished()?;
    if resumed > 0 {
        eprintln!("Resuming {resumed} unfinished migration(s)");
    }
    if let Some(listener) = metrics {
        let at = listener.local_addr()?;
        // Before the API's line, which stays the last one: whoever reads it may close the pipe.
        crate::outln!("metrics on http://{at}/metrics")?;
        let engine = engine.clone();
        tokio::spawn(async move {
            let stop = crate::interrupt::token().clone().cancelled_owned();
            if let Err(e) = crate::metrics::serve(listener, engine, stop).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    // One line on stdout, for scripts and tests that start the server on port 0.
    crate::outln!("listening on http://{addr}")?;
    let state = ApiState {
        engine: engine.clone(),
        token,
    };
    // SIGTERM or Ctrl-C: stop taking requests, let running migrations reach their next record (each
    // commits what it did and stays resumable), then exit; the next start resumes them.
    api::serve(listener, state, crate::interrupt::token().cancelled()).await?;
    if !engine.wait_idle(crate::interrupt::GRACE).await {
        tracing::warn!("a migration did not stop in time; it resumes at the next start");
    }
    eprintln!("Stopped; unfinished migrations resume at the next start.");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_takes_an_address_or_a_port_on_loopback() {
        assert_eq!(
            metrics_addr("9090").unwrap(),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            metrics_addr(":9090").unwrap(),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            metrics_addr("0.0.0.0:9100").unwrap(),
            "0.0.0.0:9100".parse().unwrap()
        );
        assert_eq!(
            metrics_addr("[::1]:9100").unwrap(),
            "[::1]:9100".parse().unwrap()
        );
        let err = metrics_addr("localhost:9090").unwrap_err();
        assert!(err.contains("localhost:9090"), "{err}");
        assert!(metrics_addr("70000").is_err());
    }
}

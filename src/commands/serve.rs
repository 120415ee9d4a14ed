//! `appliance serve`: GitLab's bulk_imports API on a local port. Migrations started through it write into
//! the configured destination; unfinished ones resume at start. Stops cleanly on SIGTERM or Ctrl-C.
//! Its settings come from the config file, the environment and these flags (`crate::config`).

use crate::api::{self, ApiState, TokenOrigin, load_or_create_token};
use crate::config::{self, Layer, ServeSettings};
use crate::engine::{Destination, Engine, EngineConfig};
use crate::forge::parse_forge_url;
use anyhow::Context;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// What `serve --help` says after the flags: where else each setting can be given.
pub const SETTINGS_HELP: &str = "\
Settings: each flag can also be set in the config file (/etc/appliance/appliance.toml, or the file
--config or APPLIANCE_CONFIG names) as `name = value` with underscores (resume_after = 30), or in
the environment as APPLIANCE_NAME (APPLIANCE_RESUME_AFTER=30); flags win over the environment, which
wins over the file. Secrets: destination_token and api_token, or destination_token_file and
api_token_file naming a file that holds the token (APPLIANCE_DESTINATION_TOKEN_FILE,
--destination-token-file, ...). Without an API token, one is generated into <data>/api-token.
A wrong setting stops the start with a message naming it (exit status 1).";

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The config file [default: /etc/appliance/appliance.toml, if it exists; env: APPLIANCE_CONFIG].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; env: APPLIANCE_LISTEN]. Without TLS (of its own,
    /// --tls-cert-file and --tls-key-file, or a proxy's in front), keep it on loopback: a non-loopback
    /// address without TLS is warned about.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where migration state and the API token are kept, created if missing [default:
    /// appliance-data; env: APPLIANCE_DATA].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Base URL of the destination GitLab instance migrations write into [env:
    /// APPLIANCE_DESTINATION_URL].
    #[arg(long, value_name = "URL")]
    pub destination_url: Option<String>,
    /// Access token on the destination (prefer --destination-token-file or the environment:
    /// arguments are visible to `ps`) [env: APPLIANCE_DESTINATION_TOKEN].
    #[arg(long, value_name = "TOKEN", value_parser = secret)]
    pub destination_token: Option<SecretString>,
    /// A file holding the destination's access token [env: APPLIANCE_DESTINATION_TOKEN_FILE].
    #[arg(long, value_name = "PATH")]
    pub destination_token_file: Option<PathBuf>,
    /// A file holding the token API clients must present [env: APPLIANCE_API_TOKEN_FILE; the token
    /// itself: APPLIANCE_API_TOKEN; default: generated into <data>/api-token].
    #[arg(long, value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,
    /// Where bundles named by API requests are written (`export_bundle`) and read
    /// (`configuration[bundle]`) [default: <data>/bundles; env: APPLIANCE_BUNDLE_DIR].
    #[arg(long, value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,
    /// Retries of one request to a forge before its migration pauses (5xx and network errors; a 429
    /// is a wait the forge asks for, and does not count) [default: 8; env: APPLIANCE_HTTP_RETRIES].
    #[arg(long, value_name = "N")]
    pub http_retries: Option<usize>,
    /// Seconds before a paused migration (a forge stayed unreachable) is tried again; doubles on
    /// each pause, up to 16 times this [default: 30; env: APPLIANCE_RESUME_AFTER].
    #[arg(long, value_name = "SECONDS")]
    pub resume_after: Option<u64>,
    /// Allow plain http to forges that are not on this machine [env: APPLIANCE_ALLOW_HTTP=true].
    #[arg(long)]
    pub allow_http: bool,
    /// Serve Prometheus metrics at `/metrics` on this address, a listener of its own without the
    /// token (off when not given), over HTTPS when --tls-cert-file is given. A port alone (`9090`
    /// or `:9090`) listens on 127.0.0.1 [env: APPLIANCE_METRICS_LISTEN].
    #[arg(long, value_name = "ADDR", value_parser = metrics_addr)]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs
    /// --tls-key-file [env: APPLIANCE_TLS_CERT_FILE].
    #[arg(long, value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of --tls-cert-file's certificate [env: APPLIANCE_TLS_KEY_FILE].
    #[arg(long, value_name = "PATH")]
    pub tls_key_file: Option<PathBuf>,
    /// A PEM bundle of CA certificates forges' certificates may chain to (an internal PKI), trusted
    /// as well as the system's, by the HTTP client and git [env: APPLIANCE_CA_FILE].
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Reach forges through this proxy (http://[user:password@]host:port), the HTTP client and git
    /// alike; NO_PROXY still applies. Without it, HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured
    /// [env: APPLIANCE_PROXY; prefer it or the config file when the URL holds a password].
    #[arg(long, value_name = "URL", value_parser = secret)]
    pub proxy: Option<SecretString>,
}

impl ServeArgs {
    /// Reads the config file and the environment, and applies these flags over them.
    pub fn settings(&self) -> Result<ServeSettings, config::ConfigError> {
        let flags = Layer {
            listen: self.listen,
            data: self.data.clone(),
            destination_url: self.destination_url.clone(),
            destination_token: self.destination_token.clone(),
            destination_token_file: self.destination_token_file.clone(),
            api_token: None,
            api_token_file: self.api_token_file.clone(),
            bundle_dir: self.bundle_dir.clone(),
            http_retries: self.http_retries,
            resume_after: self.resume_after,
            allow_http: self.allow_http.then_some(true),
            log: None,
            // `--log-format` is the binary's global flag; main applies it over these settings.
            log_format: None,
            metrics_listen: self.metrics_listen,
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            ca_file: self.ca_file.clone(),
            proxy: self.proxy.clone(),
        };
        config::resolve(
            self.config.as_deref(),
            &|name| std::env::var(name).ok(),
            flags,
        )
    }
}

pub async fn run(args: ServeSettings) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.config_file {
        tracing::info!(config = %path.display(), "settings read");
    }
    crate::forge::network::install(args.network).map_err(anyhow::Error::msg)?;
    let (url, url_origin) = &args.destination_url;
    let destination = Destination {
        url: parse_forge_url(url, args.allow_http).with_context(|| url_origin.to_string())?,
        token: args.destination_token.value,
    };
    let mut config = EngineConfig::new(args.data.clone(), Some(destination));
    config.allow_http = args.allow_http;
    config.retry.max_times = args.http_retries;
    config.resume_after = std::time::Duration::from_secs(args.resume_after.max(1));
    if let Some(dir) = &args.bundle_dir {
        config.bundle_dir = dir.clone();
    }
    let engine = Engine::open(config)?;
    let configured = args.api_token.map(|s| (s.value, s.origin.to_string()));
    let (token, origin) = load_or_create_token(configured, &args.data).with_context(|| {
        format!(
            "reading or creating the API token in {}",
            args.data.display()
        )
    })?;
    match origin {
        TokenOrigin::Configured(from) => eprintln!("API token: from {from}"),
        TokenOrigin::File(p) => eprintln!("API token: in {}", p.display()),
        TokenOrigin::Generated(p) => {
            eprintln!("API token: generated into {} (mode 0600)", p.display())
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (listen)", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = match args.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?,
        ),
        None => None,
    };
    if args.tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "listening on a non-loopback address without TLS: API tokens and the page's sign-in \
             cross the network in clear; set tls_cert_file and tls_key_file (--tls-cert-file, \
             --tls-key-file) to serve HTTPS, put a TLS-terminating proxy in front, or listen on \
             127.0.0.1"
        );
    }
    let resumed = engine.resume_unfinished()?;
    if resumed > 0 {
        eprintln!("Resuming {resumed} unfinished migration(s)");
    }
    let scheme = if args.tls.is_some() { "https" } else { "http" };
    if let Some(listener) = metrics {
        let at = listener.local_addr()?;
        // Before the API's line, which stays the last one: whoever reads it may close the pipe.
        crate::outln!("metrics on {scheme}://{at}/metrics")?;
        let engine = engine.clone();
        let stop = crate::interrupt::token().clone().cancelled_owned();
        // With TLS configured the metrics listener speaks it too: a scrape is not a way around it.
        let serving = match &args.tls {
            Some(tls) => {
                let listener = crate::tls::TlsListener::new(listener, tls)?;
                tokio::spawn(crate::metrics::serve(listener, engine, stop))
            }
            None => tokio::spawn(crate::metrics::serve(listener, engine, stop)),
        };
        tokio::spawn(async move {
            if let Ok(Err(e)) = serving.await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    if let Some(tls) = &args.tls {
        tracing::info!(
            cert = %tls.cert_file.display(),
            key = %tls.key_file.display(),
            "serving HTTPS"
        );
    }
    // One line on stdout, for scripts and tests that start the server on port 0.
    crate::outln!("listening on {scheme}://{addr}")?;
    let state = ApiState {
        engine: engine.clone(),
        token,
    };
    // SIGTERM or Ctrl-C: stop taking requests, let running migrations reach their next record (each
    // commits what it did and stays resumable), then exit; the next start resumes them.
    // systemd (`Type=notify`): the listener is bound and the engine takes work.
    crate::notify::notify_or_warn("READY=1");
    let stop = async {
        crate::interrupt::token().cancelled().await;
        crate::notify::notify_or_warn("STOPPING=1");
    };
    match &args.tls {
        Some(tls) => {
            api::serve_tls(crate::tls::TlsListener::new(listener, tls)?, state, stop).await?
        }
        None => api::serve(listener, state, stop).await?,
    }
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

//! How forge clients and git reach forges: certificate authorities added to the system's (`ca_file`,
//! for an internal PKI) and a proxy (`proxy`). One setting per process, installed by the command before
//! it builds a client ([`install`]); every [`ForgeClient`](super::ForgeClient) (source and
//! destination; live migrations, exports, replays, serve) and every git run against a forge uses it.
//!
//! - Forge clients: the CAs are merged into the roots reqwest's rustls verifier takes from the
//!   system (`rustls-platform-verifier`: the OS trust store), not put in their place. Without
//!   `proxy`, reqwest honours `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (and their
//!   lowercase forms) from the environment, as it does by default; with it, `proxy` is used for
//!   http and https and `NO_PROXY` still applies.
//! - git: `GIT_SSL_CAINFO` replaces git's (curl's) CA bundle rather than adding to it, so git is given a
//!   bundle written at [`install`]: the system's bundle followed by `ca_file`. The proxy goes in
//!   `http_proxy` and `https_proxy` of git's environment. Neither is on git's command line or in a git
//!   config.
//!
//! A proxy URL may hold credentials (`http://user:password@proxy:3128`): it is kept as a secret, and
//! shown (`Debug`, `Display`, logs, errors) with them replaced by `***`.

use reqwest::ClientBuilder;
use rustls_pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use url::Url;

/// Where distributions keep the system's CA bundle (the first that exists is used); `SSL_CERT_FILE`
/// comes first when it is set.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// What forge clients and git add to the defaults; the default adds nothing.
#[derive(Debug, Default)]
pub struct Network {
    pub ca: Option<CaBundle>,
    pub proxy: Option<ProxyUrl>,
}

/// The certificate authorities of `ca_file`.
pub struct CaBundle {
    pub path: PathBuf,
    pub certs: Vec<CertificateDer<'static>>,
    /// The bundle git is given (`GIT_SSL_CAINFO`): written by [`install`], removed at exit.
    git_bundle: OnceLock<tempfile::TempPath>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

/// A proxy URL, whose credentials are never shown.
#[derive(Clone)]
pub struct ProxyUrl {
    url: SecretString,
    shown: String,
}

impl ProxyUrl {
    /// `value` as given by `setting` (named in the error, which never quotes the value: it may hold a
    /// password).
    pub fn parse(value: &str, setting: &str) -> Result<ProxyUrl, String> {
        let expected = "expected a proxy URL such as http://proxy.internal:3128";
        let url = Url::parse(value.trim())
            .map_err(|e| format!("{setting}: not a URL ({e}); {expected}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{setting}: a proxy is reached over http or https and names a host; {expected}"
            ));
        }
        let mut shown = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = shown.set_username("***");
            let _ = shown.set_password(None);
        }
        Ok(ProxyUrl {
            url: SecretString::from(url.to_string()),
            shown: shown.to_string(),
        })
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", self.shown)
    }
}

impl Network {
    /// Reads `ca_file` and checks `proxy`; each comes with the name of the setting that gave it.
    pub fn new(
        ca_file: Option<(&Path, &str)>,
        proxy: Option<(&SecretString, &str)>,
    ) -> Result<Network, String> {
        let ca = match ca_file {
            Some((path, setting)) => Some(CaBundle {
                path: path.to_path_buf(),
                certs: crate::tls::ca_bundle(path, &setting)?,
                git_bundle: OnceLock::new(),
            }),
            None => None,
        };
        let proxy = match proxy {
            Some((url, setting)) => Some(ProxyUrl::parse(url.expose_secret(), setting)?),
            None => None,
        };
        Ok(Network { ca, proxy })
    }

    /// `builder` with the CAs merged into the system's roots and the proxy, if any.
    pub fn apply(&self, mut builder: ClientBuilder) -> Result<ClientBuilder, String> {
        if let Some(ca) = &self.ca {
            let certs = ca
                .certs
                .iter()
                .map(|c| reqwest::Certificate::from_der(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", ca.path.display()))?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(proxy) = &self.proxy {
            // The error would not say more than the URL check did; it is not quoted (credentials).
            let p = reqwest::Proxy::all(proxy.url.expose_secret())
                .map_err(|_| format!("cannot use the proxy {proxy}"))?
                .no_proxy(reqwest::NoProxy::from_env());
            builder = builder.proxy(p);
        }
        Ok(builder)
    }

    /// Writes the bundle git is given: the system's, then `ca_file`. Without a system bundle git is
    /// given `ca_file` alone, and trusts nothing else (a warning says so).
    fn write_git_bundle(&self) -> Result<(), String> {
        let Some(ca) = &self.ca else { return Ok(()) };
        if ca.git_bundle.get().is_some() {
            return Ok(());
        }
        let system = std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .into_iter()
            .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
            .find_map(|p| std::fs::read(&p).ok().map(|b| (p, b)));
        let mut file = tempfile::Builder::new()
            .prefix("appliance-ca-")
            .suffix(".pem")
            .tempfile()
            .map_err(|e| format!("cannot write the CA bundle for git: {e}"))?;
        match &system {
            Some((path, bytes)) => {
                tracing::debug!(system = %path.display(), "git's CA bundle: the system's and ca_file");
                file.write_all(bytes)
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(|e| format!("cannot write the CA bundle for git: {e}"))?;
            }
            None => tracing::warn!(
                "no system CA bundle found (/etc/ssl/certs/ca-certificates.crt, ...): git trusts \
                 only the certificates of ca_file"
            ),
        }
        let pem = std::fs::read(&ca.path)
            .map_err(|e| format!("cannot read {}: {e}", ca.path.display()))?;
        file.write_all(&pem)
            .map_err(|e| format!("cannot write the CA bundle for git: {e}"))?;
        let _ = ca.git_bundle.set(file.into_temp_path());
        Ok(())
    }

    /// The variables git runs with to reach forges as the HTTP client does.
    pub fn git_env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = Vec::new();
        if let Some(bundle) = self.ca.as_ref().and_then(|ca| ca.git_bundle.get()) {
            env.push(("GIT_SSL_CAINFO", bundle.as_os_str().to_owned()));
        }
        if let Some(proxy) = &self.proxy {
            let url = OsString::from(proxy.url.expose_secret());
            env.push(("http_proxy", url.clone()));
            env.push(("https_proxy", url));
        }
        env
    }
}

static INSTALLED: OnceLock<Network> = OnceLock::new();

/// Makes `network` the process's, for every forge client and git run from now on; writes git's CA
/// bundle. Call it before the first client is built. Once settings are in place, installing others
/// is refused (`demo` runs `export` and `replay` in one process, which install nothing).
pub fn install(network: Network) -> Result<(), String> {
    if network.ca.is_none() && network.proxy.is_none() {
        return Ok(());
    }
    network.write_git_bundle()?;
    if let Some(ca) = &network.ca {
        tracing::info!(ca_file = %ca.path.display(), certificates = ca.certs.len(), "trusting the CAs of ca_file as well as the system's");
    }
    if let Some(proxy) = &network.proxy {
        tracing::info!(%proxy, "reaching forges through a proxy");
    }
    INSTALLED
        .set(network)
        .map_err(|_| "the network settings were installed twice".to_string())
}

/// The process's network settings; nothing added when none were installed.
pub fn installed() -> &'static Network {
    INSTALLED.get_or_init(Network::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn a_proxy_url_never_shows_its_credentials() {
        let p = ProxyUrl::parse("http://alice:s3cret-pw@proxy.internal:3128", "--proxy").unwrap();
        for shown in [format!("{p}"), format!("{p:?}")] {
            assert!(
                !shown.contains("s3cret-pw") && !shown.contains("alice"),
                "{shown}"
            );
            assert!(shown.contains("proxy.internal:3128"), "{shown}");
        }
        let net = Network::new(
            None,
            Some((
                &SecretString::from("http://alice:s3cret-pw@proxy.internal:3128"),
                "--proxy",
            )),
        )
        .unwrap();
        assert!(!format!("{net:?}").contains("s3cret-pw"));
        // Refusals do not quote the value either.
        let err = ProxyUrl::parse("alice:s3cret-pw@proxy", "APPLIANCE_PROXY").unwrap_err();
        assert!(err.starts_with("APPLIANCE_PROXY: "), "{err}");
        assert!(!err.contains("s3cret-pw"), "{err}");
        let err = ProxyUrl::parse("ftp://alice:s3cret-pw@proxy", "--proxy").unwrap_err();
        assert!(!err.contains("s3cret-pw"), "{err}");
    }

    /// The client sends its requests to the proxy, with the proxy's credentials in
    /// `Proxy-Authorization`.
    #[tokio::test]
    async fn the_client_goes_through_the_proxy_with_its_credentials() {
        crate::install_crypto_provider();
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = proxy.local_addr().unwrap().port();
        let seen = std::thread::spawn(move || {
            let (mut conn, _) = proxy.accept().unwrap();
            let mut head = Vec::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            head
        });
        let net = Network::new(
            None,
            Some((
                &SecretString::from(format!("http://alice:s3cret-pw@127.0.0.1:{port}")),
                "proxy",
            )),
        )
        .unwrap();
        let client = net
            .apply(reqwest::Client::builder())
            .unwrap()
            .build()
            .unwrap();
        let resp = client
            .get("http://gitlab.example.invalid/api/v4/version")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
        let head = seen.join().unwrap();
        assert_eq!(
            head[0],
            "GET http://gitlab.example.invalid/api/v4/version HTTP/1.1"
        );
        // base64("alice:s3cret-pw")
        assert!(
            head.iter()
                .any(|h| h.eq_ignore_ascii_case("proxy-authorization: Basic YWxpY2U6czNjcmV0LXB3")),
            "{head:?}"
        );
        assert!(!format!("{client:?}").contains("s3cret-pw"));
    }

    #[test]
    fn git_gets_the_proxy_and_a_bundle_of_the_system_cas_and_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["gitlab.internal".into()]).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.cert.pem()).unwrap();
        let net = Network::new(
            Some((&ca_file, "--ca-file")),
            Some((&SecretString::from("http://proxy.internal:3128"), "--proxy")),
        )
        .unwrap();
        net.write_git_bundle().unwrap();
        let env = net.git_env();
        let cainfo = &env.iter().find(|(k, _)| *k == "GIT_SSL_CAINFO").unwrap().1;
        let bundle = std::fs::read_to_string(cainfo).unwrap();
        assert!(bundle.ends_with(&cert.cert.pem()), "ca_file comes last");
        assert!(env.contains(&("https_proxy", "http://proxy.internal:3128/".into())));
        assert!(env.contains(&("http_proxy", "http://proxy.internal:3128/".into())));
    }
}

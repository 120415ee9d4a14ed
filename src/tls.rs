//! TLS that the appliance does itself: `serve` terminating it (`tls_cert_file`, `tls_key_file`), and
//! the extra certificate authorities forge clients trust (`ca_file`). rustls with the ring provider
//! only, as the HTTP client.
//!
//! Every error names the file, the setting that named it and what is wrong with it; none of them
//! quotes a key.

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// serve's TLS, read and checked at start: the certificate chain and key, and where they came from.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, setting: &dyn fmt::Display) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "{setting}: cannot read {}: {e}; fix the path, or make the file readable by the user the appliance runs as",
            path.display()
        )
    })
}

/// Every certificate of a PEM file; an error when there is none, or one is not valid PEM.
fn certificates(
    bytes: &[u8],
    path: &Path,
    setting: &dyn fmt::Display,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| {
            format!(
                "{setting}: {} is not a valid PEM file ({e}); it must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{setting}: {} holds no certificate; it must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads serve's certificate chain (the server's certificate first) and its private key, both PEM,
/// and checks that the key is the certificate's. `cert_setting` and `key_setting` name the settings
/// as they were given (`tls_cert_file in /etc/appliance/appliance.toml`, `--tls-key-file`).
pub fn server(
    cert_file: &Path,
    cert_setting: &dyn fmt::Display,
    key_file: &Path,
    key_setting: &dyn fmt::Display,
) -> Result<ServerTls, String> {
    let chain = certificates(&read(cert_file, cert_setting)?, cert_file, cert_setting)?;
    let key_bytes = read(key_file, key_setting)?;
    // The error of a key file never quotes it.
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => "holds no private key".to_string(),
            other => format!("is not a valid PEM private key ({other})"),
        };
        format!(
            "{key_setting}: {} {why}; it must hold the certificate's private key in PEM (-----BEGIN PRIVATE KEY-----, RSA or EC)",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key is not the certificate's".to_string()
                }
                other => other.to_string(),
            };
            format!(
                "{cert_setting} ({}) and {key_setting} ({}) do not make a TLS identity: {why}; give the certificate and the key it was issued for",
                cert_file.display(),
                key_file.display()
            )
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
    })
}

/// The certificate authorities of a PEM bundle (`ca_file`), for forge clients and git.
pub fn ca_bundle(
    path: &Path,
    setting: &dyn fmt::Display,
) -> Result<Vec<CertificateDer<'static>>, String> {
    certificates(&read(path, setting)?, path, setting)
}

/// A listener that hands axum connections once their TLS handshake is done. Handshakes run in tasks
/// of their own, so a slow or silent client does not hold up the others; one that does not finish
/// within [`HANDSHAKE_TIMEOUT`], or speaks plain HTTP, is dropped.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(mut tcp: TcpListener, tls: &ServerTls) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                // axum's accept for a TcpListener: retries on errors such as too many open files.
                let (stream, peer) = axum::serve::Listener::accept(&mut tcp).await;
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task holds the sender until the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    #[test]
    fn a_certificate_and_its_key_make_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let tls = server(&cert, &"--tls-cert-file", &key, &"--tls-key-file").unwrap();
        assert_eq!(tls.cert_file, cert);
        assert!(!format!("{tls:?}").contains("BEGIN"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        let err = server(&cert, &"--tls-cert-file", &other_key, &"--tls-key-file").unwrap_err();
        assert!(
            err.contains("the private key is not the certificate's"),
            "{err}"
        );
        assert!(err.contains("a.crt") && err.contains("b.key"), "{err}");
    }

    #[test]
    fn unreadable_or_invalid_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let missing = dir.path().join("missing.pem");
        let err = server(&missing, &"--tls-cert-file", &key, &"--tls-key-file").unwrap_err();
        assert!(err.starts_with("--tls-cert-file: cannot read "), "{err}");
        assert!(err.contains("missing.pem"), "{err}");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = server(&junk, &"--tls-cert-file", &key, &"--tls-key-file").unwrap_err();
        assert!(err.contains("junk.pem holds no certificate"), "{err}");
        // A certificate given as the key.
        let err = server(&cert, &"--tls-cert-file", &cert, &"--tls-key-file").unwrap_err();
        assert!(
            err.starts_with("--tls-key-file: ") && err.contains("holds no private key"),
            "{err}"
        );
    }

    #[test]
    fn a_ca_bundle_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "ca");
        assert_eq!(ca_bundle(&cert, &"--ca-file").unwrap().len(), 1);
        let err = ca_bundle(&key, &"--ca-file").unwrap_err();
        assert!(err.contains("ca.key holds no certificate"), "{err}");
    }
}

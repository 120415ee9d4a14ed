//! `appliance serve` terminating TLS itself (`--tls-cert-file`, `--tls-key-file`): https with a
//! certificate made here, plain http refused on that port, the page's cookie `Secure`, no warning on a
//! non-loopback address, `/metrics` over https too; and a half or mismatched TLS setting, or a bad `--ca-file`, stopping the
//! start with a message naming it.

use crate::common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

struct Pair {
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn self_signed(dir: &Path, name: &str) -> Pair {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    Pair {
        cert,
        key,
        pem: c.cert.pem(),
    }
}

fn serve(dir: &Path, listen: &str, tls: Option<&Pair>) -> std::process::Command {
    let mut cmd = appliance();
    cmd.args(["serve", "--config", "/dev/null", "--listen", listen])
        .args(["--destination-url", "http://127.0.0.1:9"])
        .arg("--data")
        .arg(dir.join("data"))
        .env("APPLIANCE_DESTINATION_TOKEN", "t")
        .env("APPLIANCE_API_TOKEN", "tls-api-token")
        .env("APPLIANCE_LOG", "info");
    if let Some(pair) = tls {
        cmd.arg("--tls-cert-file")
            .arg(&pair.cert)
            .arg("--tls-key-file")
            .arg(&pair.key);
    }
    cmd
}

/// Starts `cmd` and returns the URL of its "listening on" line.
fn start(cmd: std::process::Command) -> (Child, String) {
    let (child, url, _) = start_with_metrics(cmd);
    (child, url)
}

/// Starts `cmd`; returns the URL of its "listening on" line and of its "metrics on" line, if any.
fn start_with_metrics(mut cmd: std::process::Command) -> (Child, String, Option<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut metrics = None;
    loop {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if let Some(at) = line.trim().strip_prefix("metrics on ") {
            metrics = Some(at.to_string());
            continue;
        }
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_string();
        return (child, url, metrics);
    }
}

fn stop(child: Child) -> String {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

#[tokio::test]
async fn serve_answers_https_with_its_certificate_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let pair = self_signed(dir.path(), "server");
    let mut cmd = serve(dir.path(), "127.0.0.1:0", Some(&pair));
    cmd.args(["--metrics-listen", "127.0.0.1:0"]);
    let (child, url, metrics) = start_with_metrics(cmd);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let metrics = metrics.expect("a metrics line");
    assert!(metrics.starts_with("https://127.0.0.1:"), "{metrics}");

    appliance::install_crypto_provider();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pair.pem.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health = trusting
        .get(format!("{url}/-/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

    // The page's cookie is Secure: the browser reached serve over https.
    let signed_in = trusting
        .post(format!("{url}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=tls-api-token")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");

    // A client that does not trust the certificate does not get through.
    assert!(http().get(format!("{url}/-/health")).send().await.is_err());
    // Plain http to the TLS port gets no answer.
    let plain = url.replacen("https://", "http://", 1);
    assert!(
        http()
            .get(format!("{plain}/-/health"))
            .send()
            .await
            .is_err()
    );
    // The metrics listener speaks TLS with the same certificate, and only TLS.
    let scrape = trusting.get(&metrics).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    assert!(text.contains("appliance_bulk_imports"), "{text}");
    let plain_metrics = metrics.replacen("https://", "http://", 1);
    assert!(http().get(plain_metrics).send().await.is_err());
    // Still serving after both.
    let again = trusting
        .get(format!("{url}/-/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    let stderr = tokio::task::spawn_blocking(move || stop(child))
        .await
        .unwrap();
    assert!(stderr.contains("serving HTTPS"), "{stderr}");
    assert!(stderr.contains("Stopped;"), "{stderr}");
}

#[test]
fn with_tls_a_non_loopback_address_is_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let pair = self_signed(dir.path(), "server");
    let (child, url) = start(serve(dir.path(), "0.0.0.0:0", Some(&pair)));
    assert!(url.starts_with("https://0.0.0.0:"), "{url}");
    let stderr = stop(child);
    assert!(!stderr.contains("without TLS"), "{stderr}");
}

fn refused(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    stderr
}

#[test]
fn half_a_tls_setting_or_a_key_of_another_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a");
    let b = self_signed(dir.path(), "b");

    let stderr = refused(
        serve(dir.path(), "127.0.0.1:0", None)
            .arg("--tls-cert-file")
            .arg(&a.cert),
    );
    assert!(
        stderr.contains("--tls-cert-file is set but tls_key_file is not")
            && stderr.contains("both tls_cert_file and tls_key_file")
            && stderr.contains("APPLIANCE_TLS_KEY_FILE"),
        "{stderr}"
    );
    let stderr =
        refused(serve(dir.path(), "127.0.0.1:0", None).env("APPLIANCE_TLS_KEY_FILE", &a.key));
    assert!(
        stderr.contains("APPLIANCE_TLS_KEY_FILE is set but tls_cert_file is not"),
        "{stderr}"
    );

    let mismatched = Pair {
        cert: a.cert.clone(),
        key: b.key.clone(),
        pem: String::new(),
    };
    let stderr = refused(&mut serve(dir.path(), "127.0.0.1:0", Some(&mismatched)));
    assert!(
        stderr.contains("the private key is not the certificate's")
            && stderr.contains("a.crt")
            && stderr.contains("b.key"),
        "{stderr}"
    );

    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "not PEM\n").unwrap();
    let bad = Pair {
        cert: garbage,
        key: a.key.clone(),
        pem: String::new(),
    };
    let stderr = refused(&mut serve(dir.path(), "127.0.0.1:0", Some(&bad)));
    assert!(
        stderr.contains("--tls-cert-file: ") && stderr.contains("garbage.crt holds no certificate"),
        "{stderr}"
    );
    // Nothing started.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("internal-ca.der");
    std::fs::write(&not_pem, [0x30u8, 0x82, 0x01, 0x0a, 0x02]).unwrap();
    let stderr = refused(
        serve(dir.path(), "127.0.0.1:0", None)
            .arg("--ca-file")
            .arg(&not_pem),
    );
    assert!(
        stderr.contains("--ca-file: ") && stderr.contains("internal-ca.der holds no certificate"),
        "{stderr}"
    );
    // The same for migrate, whose settings are all flags and environment.
    let out = appliance()
        .args(["migrate", "--source-url", "https://127.0.0.1:9"])
        .args(["--destination-url", "https://127.0.0.1:9", "--to", "x"])
        .args(["--group", "g"])
        .env("APPLIANCE_SOURCE_TOKEN", "s")
        .env("APPLIANCE_DESTINATION_TOKEN", "d")
        .env("APPLIANCE_CA_FILE", &not_pem)
        .arg("--data")
        .arg(dir.path().join("migrate-data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("APPLIANCE_CA_FILE")
            && stderr.contains("internal-ca.der holds no certificate"),
        "{stderr}"
    );
}

//! `appliance serve` as systemd runs it: settings from a config file with tokens in files, readiness
//! told to `$NOTIFY_SOCKET` once it listens, `STOPPING=1` and a clean exit on SIGTERM; and a wrong
//! setting stopping the start with a message that names it.

use crate::common;

use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

fn received(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification within 30 s");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[tokio::test]
async fn serve_from_a_config_file_tells_systemd_it_is_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let api_token = dir.path().join("api-token");
    std::fs::write(&api_token, "service-api-token\n").unwrap();
    let destination_token = dir.path().join("destination-token");
    std::fs::write(&destination_token, "service-destination-token\n").unwrap();
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = \"{}\"\ndestination_url = \"http://127.0.0.1:9\"\n\
             destination_token_file = \"{}\"\napi_token_file = \"{}\"\nlog_format = \"json\"\n",
            dir.path().join("data").display(),
            destination_token.display(),
            api_token.display()
        ),
    )
    .unwrap();
    let socket_path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&socket_path).unwrap();

    let mut child = appliance()
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("APPLIANCE_LOG", "info")
        .env_remove("APPLIANCE_API_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert_eq!(received(&systemd), "READY=1");

    let client = http();
    let health = client.get(format!("{url}/-/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);
    let ready = client
        .get(format!("{url}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // The API token is the one in api_token_file.
    let api = client
        .get(format!("{url}/api/v4/bulk_imports"))
        .header("PRIVATE-TOKEN", "service-api-token")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(received(&systemd), "STOPPING=1");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Stopped;"), "{stderr}");
    // log_format = "json" from the file: log lines are JSON objects.
    let logs: Vec<&str> = stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!logs.is_empty(), "no JSON log line in {stderr}");
    for l in logs {
        serde_json::from_str::<serde_json::Value>(l).expect("a JSON log line");
    }
    assert!(
        stderr.contains("API token: from api_token_file in "),
        "{stderr}"
    );
    assert!(!stderr.contains("service-api-token"), "{stderr}");
    assert!(!stderr.contains("service-destination-token"), "{stderr}");
}

#[test]
fn a_wrong_setting_stops_the_start_naming_it_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        "destination_url = \"http://127.0.0.1:9\"\ndestination_token = \"t\"\nresume_afer = 30\n",
    )
    .unwrap();
    let out = appliance()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 3: unknown field `resume_afer`"),
        "{stderr}"
    );
    assert!(!stderr.contains("internal error"), "{stderr}");
    // Nothing started: not even the data directory was made.
    assert!(!dir.path().join("data").exists());

    // An explicit config file that is not there is an error too (the default one may be missing).
    let out = appliance()
        .args(["serve", "--config"])
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the config file"), "{stderr}");

    // A bad value in the environment names the variable and what it takes.
    std::fs::write(
        &config,
        "destination_url = \"http://127.0.0.1:9\"\ndestination_token = \"t\"\n",
    )
    .unwrap();
    let out = appliance()
        .args(["serve", "--config"])
        .arg(&config)
        .env("APPLIANCE_RESUME_AFTER", "soon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("APPLIANCE_RESUME_AFTER=\"soon\"")
            && stderr.contains("a whole number of seconds"),
        "{stderr}"
    );
}

#[test]
fn listening_beyond_loopback_without_tls_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let start = |listen: &str| {
        let mut child = appliance()
            .args(["serve", "--config", "/dev/null", "--listen", listen])
            .args(["--destination-url", "http://127.0.0.1:9"])
            .arg("--data")
            .arg(dir.path().join(listen.replace([':', '.'], "-")))
            .env("APPLIANCE_DESTINATION_TOKEN", "t")
            .env("APPLIANCE_API_TOKEN", "a")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on"), "{line}");
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warned = start("0.0.0.0:0");
    assert!(
        warned.contains("WARN") && warned.contains("non-loopback address without TLS"),
        "{warned}"
    );
    let quiet = start("127.0.0.1:0");
    assert!(!quiet.contains("without TLS"), "{quiet}");
}

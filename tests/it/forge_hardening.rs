//! The forge client against forges that misbehave on purpose: redirects that would carry the token to
//! another origin, sources that accept a connection and never answer (or trickle a byte a second), and
//! rate limits (429 with `Retry-After`) that must be waited out rather than counted as failures.

use crate::common;

use appliance::api::{ApiState, router};
use appliance::engine::{Destination, Engine, EngineConfig};
use appliance::forge::ForgeClient;
use appliance::forge::client::RetryPolicy;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use common::*;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const API_TOKEN: &str = "forge-hardening-api-token";
const SECRET: &str = "glpat-must-stay-home-0123456789";

async fn serve_router(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A forge on another origin that notes every request it gets (whether it carried `PRIVATE-TOKEN`,
/// how large its body was) and answers like a GitLab that has everything.
async fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!(
                    "{method} {uri} private-token: {} body: {} bytes",
                    headers.contains_key("private-token"),
                    body.len()
                ));
                axum::Json(json!({"version": "17.6.0", "id": 1, "full_path": "acme"}))
            }
        },
    );
    (serve_router(app).await, seen)
}

/// A forge that answers every request with `status` and a `Location` to the same path on `target`.
async fn redirector(status: u16, target: String) -> String {
    let app = Router::new().fallback(move |uri: Uri| {
        let target = target.clone();
        async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            (
                StatusCode::from_u16(status).unwrap(),
                [(header::LOCATION, format!("{target}{path}"))],
                "",
            )
        }
    });
    format!("http://127.0.0.1:{}", serve_router(app).await)
}

/// A source that accepts connections and never says a word.
async fn silent_source() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A source that reads the request, then answers one byte a second, forever.
async fn trickling_source() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 24\r\n\r\n{\"version\":\"17.6.0\"}    ";
                for byte in answer.iter().cycle() {
                    if socket.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_times: 2,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

/// The bulk_imports API of an in-process engine writing into `destination`.
fn api(destination: &str, config: impl FnOnce(&mut EngineConfig)) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(
        dir.path().to_path_buf(),
        Some(Destination {
            url: destination.parse().unwrap(),
            token: SecretString::from("destination-token".to_string()),
        }),
    );
    config(&mut cfg);
    let engine = Engine::open(cfg).unwrap();
    let app = router(ApiState {
        engine,
        token: SecretString::from(API_TOKEN.to_string()),
    });
    (dir, app)
}

fn submission(source_url: &str, token: &str) -> String {
    json!({
        "configuration": {"url": source_url, "access_token": token},
        "entities": [{"source_type": "group_entity", "source_full_path": "acme",
                      "destination_slug": "acme", "destination_namespace": "imported"}]
    })
    .to_string()
}

/// `POST /api/v4/bulk_imports` through the router: status and body.
async fn post_bulk_import(app: &Router, body: String) -> (StatusCode, Value) {
    let req = Request::post("/api/v4/bulk_imports")
        .header("host", "appliance.test")
        .header("private-token", API_TOKEN)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_refused_and_the_token_never_follows() {
    let (port, seen) = recorder().await;
    for status in [301, 302, 303, 307, 308] {
        for host in ["127.0.0.1", "localhost"] {
            let target = format!("http://{host}:{port}");
            let from = redirector(status, target.clone()).await;
            let client = ForgeClient::with_role(
                "destination",
                from.parse().unwrap(),
                SecretString::from(SECRET.to_string()),
                2,
                quick_retries(),
            )
            .unwrap();
            let read = client.get("groups/acme", &[]).await.unwrap_err();
            let write = client
                .post(
                    "groups/acme/labels",
                    &json!({"name": "bug", "color": "#ff0000"}),
                )
                .await
                .unwrap_err();
            for (err, method) in [(read, "GET"), (write, "POST")] {
                let text = err.to_string();
                let wanted = [
                    format!("The destination {from} redirected {method} /api/v4/groups/"),
                    format!("to {target}/api/v4/groups/"),
                    format!("set the destination URL to the one GitLab answers on ({target}, if"),
                ];
                for w in &wanted {
                    assert!(text.contains(w), "{status}: {w:?} not in {text:?}");
                }
                assert!(!text.contains(SECRET));
                assert!(!err.is_unreachable(), "a redirect is not a pause: {text}");
            }
        }
    }
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "the other origin was reached"
    );
}

/// GitLab answers a download it keeps in object storage with a redirect to a pre-signed URL: the
/// download follows it, and the token stays home (the other origin sees none); an API call that
/// redirects the same way is still refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_follows_a_redirect_to_object_storage_without_the_token() {
    let (port, seen) = recorder().await;
    let from = redirector(302, format!("http://localhost:{port}")).await;
    let client = ForgeClient::with_role(
        "source",
        from.parse().unwrap(),
        SecretString::from(SECRET.to_string()),
        2,
        quick_retries(),
    )
    .unwrap();
    let bytes = client
        .get_bytes(
            "groups/1/export_relations/download?relation=labels",
            1 << 20,
        )
        .await
        .expect("the download follows the redirect");
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap()["version"],
        "17.6.0"
    );
    assert!(client.get("groups/acme", &[]).await.is_err());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("/export_relations/download") && seen[0].contains("private-token: false"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn post_bulk_imports_refuses_a_source_that_redirects_and_keeps_its_token() {
    let (port, seen) = recorder().await;
    let (dir, app) = api("http://127.0.0.1:9", |c| c.retry = quick_retries());
    for (status, host) in [(302, "localhost"), (307, "127.0.0.1")] {
        let target = format!("http://{host}:{port}");
        let from = redirector(status, target.clone()).await;
        let (got, body) = post_bulk_import(&app, submission(&from, SECRET)).await;
        assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Invalid source URL.")
                && message.contains(&format!(
                    "The source {from} redirected GET /api/v4/version to {target}/api/v4/version"
                )),
            "{message}"
        );
        assert!(!message.contains(SECRET));
    }
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_stops_at_a_source_that_redirects_and_the_token_stays_home() {
    let (port, seen) = recorder().await;
    let target = format!("http://localhost:{port}");
    let from = redirector(302, target.clone()).await;
    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let mut cmd = appliance();
    cmd.args(["migrate", "--json", "--group", "acme", "--to", "imported"])
        .args(["--source-url", &from, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_SOURCE_TOKEN", SECRET)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    assert!(
        stderr.contains(&format!(
            "The source {from} redirected GET /api/v4/version to {target}/api/v4/version: set the source URL"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_bulk_imports_answers_within_its_deadline_when_the_source_stalls() {
    let (dir, app) = api("http://127.0.0.1:9", |c| {
        c.check_deadline = Duration::from_secs(2);
    });
    for source in [silent_source().await, trickling_source().await] {
        let started = Instant::now();
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(60),
            post_bulk_import(&app, submission(&source, SECRET)),
        )
        .await
        .expect("POST /bulk_imports answers");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(30), "{source}: {took:?}");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{source}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Unable to connect to the source instance")
                && message.contains("no answer within 2 s"),
            "{source}: {message}"
        );
    }
    drop(dir);
}

/// A running `appliance serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dst: &forge_sim::RunningSim, data: &std::path::Path) -> Server {
    let mut child = appliance()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--destination-url",
            &dst.url,
        ])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .env("APPLIANCE_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start appliance serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Server { child, url }
}

#[tokio::test(flavor = "multi_thread")]
async fn appliance_serve_answers_post_bulk_imports_within_seconds_when_the_source_never_answers() {
    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let source = silent_source().await;
    let started = Instant::now();
    let resp = http()
        .post(format!("{}/api/v4/bulk_imports", server.url))
        .header("PRIVATE-TOKEN", API_TOKEN)
        .header("content-type", "application/json")
        .body(submission(&source, SECRET))
        .timeout(Duration::from_secs(90))
        .send()
        .await
        .expect("POST /bulk_imports answers");
    let took = started.elapsed();
    // The default deadline of the checks is 15 s; the bound leaves room for a loaded machine.
    assert!(took < Duration::from_secs(40), "{took:?}");
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Unable to connect to the source instance"),
        "{message}"
    );
    drop(server);
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_429s_and_some_5xx_still_give_a_complete_migration() {
    let (src, dst) = (source().await, destination().await);
    let faults = json!({"burst_429": 10, "burst_retry_after_secs": 1, "fault_rate": 0.05});
    for sim in [&src, &dst] {
        set_faults(sim, faults.clone()).await;
    }
    let data = tempfile::tempdir().unwrap();
    let out = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Unable to connect"),
        "429s are waited out: {stderr}"
    );
    // The wait is said once per wait, with the host and when it ends.
    let host = src.url.trim_start_matches("http://");
    assert!(
        stderr.contains(&format!("rate limited by {host} until ")),
        "{stderr}"
    );
    for sim in [&src, &dst] {
        set_faults(sim, json!({})).await;
    }
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    assert_eq!(report(&out)["has_failures"], false);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_429s_cost_their_seven_seconds_not_half_a_minute() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&src, json!({"burst_429": 7, "burst_retry_after_secs": 1})).await;
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = migrate_group(&src, &dst, data.path(), "acme", "imported", &[]).await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    // A hang-style bound: the seven waits are 7 s; a backoff stretched by each 429 took 36 s.
    assert!(took < Duration::from_secs(20), "{took:?}");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_rate_limiting_before_the_start_is_waited_for_and_the_wait_is_shown() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(
        dir.path().to_path_buf(),
        Some(Destination {
            url: dst.url.parse().unwrap(),
            token: SecretString::from(dst.owner_token.clone()),
        }),
    );
    // Room for the nine waits below on a loaded machine.
    config.check_deadline = Duration::from_secs(40);
    let engine = Engine::open(config).unwrap();
    let app = router(ApiState {
        engine: engine.clone(),
        token: SecretString::from(API_TOKEN.to_string()),
    });
    // More 429s than the retries meant for errors (8): they are waits, not failures. The latency
    // keeps the migration running long enough to be rate limited again below.
    let slow = json!({"burst_429": 9, "burst_retry_after_secs": 1, "latency_ms": 100});
    set_faults(&src, slow).await;
    let (status, body) = post_bulk_import(&app, submission(&src.url, &src.owner_token)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // While it runs, a wait the source asks for is visible from the engine.
    let again = json!({"burst_429": 3, "burst_retry_after_secs": 3, "latency_ms": 100});
    set_faults(&src, again).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let waits = loop {
        let waits = engine.rate_limit_waits();
        if !waits.is_empty() {
            break waits;
        }
        assert!(Instant::now() < deadline, "no rate-limit wait was shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let host = src.url.trim_start_matches("http://");
    assert_eq!(waits[0].host, host);
    assert!(
        waits[0]
            .to_string()
            .starts_with(&format!("rate limited by {host} until ")),
        "{}",
        waits[0]
    );
    let id = body["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = engine.store().bulk_import(id).unwrap();
        if b.status.is_terminal() {
            assert_eq!(b.status.as_str(), "finished");
            break;
        }
        assert!(Instant::now() < deadline, "the migration never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(engine.rate_limit_waits().is_empty());
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_longer_than_the_checks_may_take_says_when_to_try_again() {
    let src = source().await;
    set_faults(&src, json!({"burst_429": 5, "burst_retry_after_secs": 60})).await;
    let (dir, app) = api("http://127.0.0.1:9", |c| {
        c.check_deadline = Duration::from_secs(2);
    });
    let started = Instant::now();
    let (status, body) = post_bulk_import(&app, submission(&src.url, &src.owner_token)).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    let host = src.url.trim_start_matches("http://");
    assert!(
        message.starts_with(&format!(
            "Unable to connect to the source instance {}/: rate limited by {host} until ",
            src.url
        )) && message.ends_with("UTC, past the 2 s the checks may take; try again then"),
        "{message}"
    );
    drop(dir);
    src.shutdown().await;
}

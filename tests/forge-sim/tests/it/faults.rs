//! Fault injection and rate limiting as a client sees them: headers, statuses, dropped
//! connections and cut bodies, observed with reqwest against a real listener. Most tests put the
//! middleware in front of a tiny router so each fault is isolated; the last ones check that a
//! running simulator wires it in and that the admin routes change it while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use forge_sim::faults::{
    self, FaultConfig, FaultState, HoldRule, RejectRule, RequestCounts, RequestMatch,
};
use serde_json::{Value, json};

struct Served {
    url: String,
    /// How often the inner handler really ran.
    handled: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The fault middleware in front of `GET|POST /api/v4/items` (a 4 KiB JSON array), plus the admin routes.
async fn serve(cfg: FaultConfig, seed: u64) -> Served {
    let state = FaultState::new(cfg, seed);
    let handled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&handled);
    let items = move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let rows: Vec<Value> = (0..64)
                .map(|i| json!({"id": i, "title": format!("item number {i:04} with padding")}))
                .collect();
            axum::Json(Value::Array(rows))
        }
    };
    let api = Router::new()
        .route("/api/v4/items", get(items.clone()).post(items))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            faults::middleware,
        ));
    let app = Router::new().merge(faults::admin_routes(state)).merge(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Served {
        url,
        handled,
        server,
    }
}

fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("response lacks header {name}: {:?}", resp.headers()))
        .to_str()
        .expect("ascii header")
}

async fn put_faults(url: &str, cfg: &FaultConfig) {
    let resp = client()
        .put(format!("{url}/-/sim/faults"))
        .json(cfg)
        .send()
        .await
        .expect("PUT /-/sim/faults");
    assert_eq!(resp.status(), 200);
}

async fn counts(url: &str) -> RequestCounts {
    client()
        .get(format!("{url}/-/sim/requests"))
        .send()
        .await
        .expect("GET /-/sim/requests")
        .json()
        .await
        .expect("counts json")
}

#[tokio::test]
async fn rate_limit_sends_gitlab_headers_then_429_with_retry_after() {
    let s = serve(
        FaultConfig {
            rate_limit_per_minute: Some(3),
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for remaining in ["2", "1", "0"] {
        let resp = c
            .get(format!("{}/api/v4/items", s.url))
            .header("PRIVATE-TOKEN", "alpha")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "RateLimit-Limit"), "3");
        assert_eq!(header(&resp, "RateLimit-Remaining"), remaining);
        let reset: u64 = header(&resp, "RateLimit-Reset").parse().expect("epoch");
        assert!(
            (now + 59..=now + 62).contains(&reset),
            "reset {reset} vs now {now}"
        );
    }
    let resp = c
        .get(format!("{}/api/v4/items", s.url))
        .header("PRIVATE-TOKEN", "alpha")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "RateLimit-Remaining"), "0");
    assert_eq!(header(&resp, "RateLimit-Observed"), "4");
    let retry: u64 = header(&resp, "Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, json!({"message": "Retry later"}));
    assert_eq!(
        s.handled.load(Ordering::SeqCst),
        3,
        "a throttled request must not run"
    );

    // Budgets are per token: another token still has its own.
    let other = c
        .get(format!("{}/api/v4/items", s.url))
        .header("Authorization", "Bearer beta")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 200);
    assert_eq!(header(&other, "RateLimit-Remaining"), "2");
    assert_eq!(counts(&s.url).await.injected.rate_limited, 1);
}

#[tokio::test]
async fn burst_of_429_then_normal_service() {
    let s = serve(
        FaultConfig {
            burst_429: 2,
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = c
            .get(format!("{}/api/v4/items", s.url))
            .send()
            .await
            .expect("request");
        if resp.status() == 429 {
            assert_eq!(header(&resp, "Retry-After"), "1");
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [429, 429, 200]);
}

#[tokio::test]
async fn server_errors_at_the_configured_rate_and_deterministic_per_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let s = serve(
            FaultConfig {
                fault_rate: 0.3,
                ..FaultConfig::default()
            },
            seed,
        )
        .await;
        let c = client();
        let mut statuses = Vec::new();
        for _ in 0..200 {
            let resp = c
                .get(format!("{}/api/v4/items", s.url))
                .send()
                .await
                .expect("request");
            statuses.push(resp.status().as_u16());
        }
        let failed = statuses.iter().filter(|&&st| st != 200).count() as u64;
        assert_eq!(counts(&s.url).await.injected.server_errors, failed);
        assert_eq!(s.handled.load(Ordering::SeqCst), 200 - failed);
        statuses
    }
    let first = run(11).await;
    let failed = first.iter().filter(|&&s| s != 200).count();
    assert!(
        (30..=90).contains(&failed),
        "{failed} of 200 failed at rate 0.3"
    );
    assert!(first.iter().all(|s| [200, 500, 502, 503].contains(s)));
    assert!(first.contains(&500) && first.contains(&502) && first.contains(&503));
    assert_eq!(first, run(11).await, "the same seed gives the same faults");
}

#[tokio::test]
async fn connection_reset_is_an_error_for_the_client_after_the_write_happened() {
    let s = serve(
        FaultConfig {
            reset_rate: 1.0,
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let result = async {
        let resp = client()
            .post(format!("{}/api/v4/items", s.url))
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    let err = result.expect_err("a reset connection must not look like a response");
    assert!(
        err.is_request() || err.is_body() || err.is_decode(),
        "unexpected error kind: {err:?}"
    );
    assert_eq!(s.handled.load(Ordering::SeqCst), 1, "the handler ran");
    assert_eq!(counts(&s.url).await.injected.resets, 1);
}

#[tokio::test]
async fn truncated_body_announces_full_length_and_fails_midway() {
    let s = serve(
        FaultConfig {
            truncate_rate: 1.0,
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let resp = client()
        .get(format!("{}/api/v4/items", s.url))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(resp.status(), 200);
    let announced = resp.content_length().expect("Content-Length");
    assert!(announced > 1000, "full body announced, got {announced}");
    let err = resp.bytes().await.expect_err("the body is cut");
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
}

#[tokio::test]
async fn latency_delays_every_request() {
    let s = serve(
        FaultConfig {
            latency_ms: 120,
            jitter_ms: 30,
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let started = Instant::now();
    for _ in 0..2 {
        let resp = c
            .get(format!("{}/api/v4/items", s.url))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // The admin routes are never delayed.
    let started = Instant::now();
    counts(&s.url).await;
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_hold_rule_holds_the_write_after_the_first_success_until_the_config_changes() {
    let posts = RequestMatch {
        method: "POST".into(),
        path: "/api/v4/items".into(),
        body_contains: None,
    };
    let s = serve(
        FaultConfig {
            hold: Some(HoldRule {
                when: posts,
                after: 1,
                hold: None,
            }),
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let post = || {
        c.post(format!("{}/api/v4/items", s.url))
            .json(&json!({}))
            .send()
    };
    let get = c.get(format!("{}/api/v4/items", s.url)).send().await;
    assert_eq!(get.expect("request").status(), 200, "reads pass");
    assert_eq!(
        post().await.expect("request").status(),
        200,
        "the first write passes"
    );
    let (c2, url) = (c.clone(), format!("{}/api/v4/items", s.url));
    let held = tokio::spawn(async move { c2.post(url).json(&json!({})).send().await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts(&s.url).await.injected.held == 0 {
        assert!(Instant::now() < deadline, "the second write is held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!held.is_finished(), "a held write gets no answer");
    put_faults(&s.url, &FaultConfig::default()).await;
    let resp = held.await.expect("join").expect("request");
    assert_eq!(resp.status(), 503, "released with a 503");
    assert_eq!(s.handled.load(Ordering::SeqCst), 2, "and never handled");
}

#[tokio::test]
async fn reject_rule_refuses_one_record_like_gitlab() {
    let s = serve(
        FaultConfig {
            reject: vec![RejectRule {
                method: "post".into(),
                path_contains: "/items".into(),
                body_contains: Some("\"title\":\"bug\"".into()),
                status: 400,
                message: r#"{"title":["has already been taken"]}"#.into(),
                times: Some(1),
                ..RejectRule::default()
            }],
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let post = |title: &str| {
        c.post(format!("{}/api/v4/items", s.url))
            .json(&json!({"title": title}))
            .send()
    };
    let resp = post("feature").await.expect("request");
    assert_eq!(resp.status(), 200, "other records pass");
    let resp = post("bug").await.expect("request");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"message": {"title": ["has already been taken"]}})
    );
    let resp = post("bug").await.expect("request");
    assert_eq!(resp.status(), 200, "times: 1 fires once");
    assert_eq!(s.handled.load(Ordering::SeqCst), 2);
    // A plain text message is sent as a string.
    put_faults(
        &s.url,
        &FaultConfig {
            reject: vec![RejectRule {
                method: "*".into(),
                path_contains: "items".into(),
                status: 422,
                message: "Failed to save".into(),
                ..RejectRule::default()
            }],
            ..FaultConfig::default()
        },
    )
    .await;
    let resp = c
        .get(format!("{}/api/v4/items", s.url))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, json!({"message": "Failed to save"}));
}

#[tokio::test]
async fn a_lost_answer_rule_lets_the_write_happen_and_resets_the_connection() {
    let s = serve(
        FaultConfig {
            reject: vec![RejectRule {
                method: "POST".into(),
                path_contains: "/items".into(),
                body_contains: Some("bug".into()),
                lose_answer: true,
                times: Some(1),
                ..RejectRule::default()
            }],
            ..FaultConfig::default()
        },
        1,
    )
    .await;
    let c = client();
    let post = |title: &str| {
        c.post(format!("{}/api/v4/items", s.url))
            .json(&json!({"title": title}))
            .send()
    };
    assert!(post("bug").await.is_err(), "the answer is lost");
    assert_eq!(
        s.handled.load(Ordering::SeqCst),
        1,
        "but the write happened"
    );
    assert_eq!(
        post("bug").await.expect("request").status(),
        200,
        "times: 1"
    );
    assert_eq!(post("feature").await.expect("request").status(), 200);
    let c = counts(&s.url).await;
    assert_eq!((c.injected.resets, c.injected.rejected), (1, 0));
}

#[tokio::test]
async fn admin_routes_change_behaviour_while_running_and_are_never_faulted() {
    let s = serve(FaultConfig::default(), 1).await;
    let c = client();
    let items = format!("{}/api/v4/items", s.url);
    assert_eq!(c.get(&items).send().await.expect("req").status(), 200);

    let broken = FaultConfig {
        fault_rate: 1.0,
        rate_limit_per_minute: Some(1),
        ..FaultConfig::default()
    };
    put_faults(&s.url, &broken).await;
    let shown: FaultConfig = c
        .get(format!("{}/-/sim/faults", s.url))
        .send()
        .await
        .expect("GET /-/sim/faults")
        .json()
        .await
        .expect("config json");
    assert_eq!(shown, broken);
    let status = c.get(&items).send().await.expect("req").status();
    assert!(status.is_server_error(), "{status}");
    assert_eq!(c.get(&items).send().await.expect("req").status(), 429);
    // Still reachable although every request would fail and the budget is spent.
    for _ in 0..3 {
        counts(&s.url).await;
    }

    put_faults(&s.url, &FaultConfig::default()).await;
    assert_eq!(c.get(&items).send().await.expect("req").status(), 200);
    let counted = counts(&s.url).await;
    assert_eq!(counted.by_request.get("GET /api/v4/items"), Some(&4));
    assert_eq!(counted.total, 4, "admin requests are not counted");

    let resp = c
        .delete(format!("{}/-/sim/requests", s.url))
        .send()
        .await
        .expect("DELETE /-/sim/requests");
    assert_eq!(resp.status(), 204);
    assert_eq!(counts(&s.url).await.total, 0);
}

#[tokio::test]
async fn running_simulator_applies_faults_from_its_config_and_admin_routes() {
    let mut cfg = forge_sim::SimConfig::new(forge_sim::Dataset::Empty, 7);
    cfg.faults.rate_limit_per_minute = Some(100);
    let sim = forge_sim::RunningSim::start(cfg).await.expect("sim starts");
    let c = client();
    let resp = c
        .get(format!("{}/api/v4/groups", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "RateLimit-Limit"), "100");
    assert_eq!(header(&resp, "RateLimit-Remaining"), "99");
    put_faults(
        &sim.url,
        &FaultConfig {
            burst_429: 1,
            ..FaultConfig::default()
        },
    )
    .await;
    let resp = c
        .get(format!("{}/api/v4/groups", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    assert_eq!(
        counts(&sim.url).await.by_request.get("GET /api/v4/groups"),
        Some(&2)
    );
    sim.shutdown().await;
}

/// In a workspace build reqwest's TLS comes without a crypto provider (the appliance picks ring):
/// install it before the first client is built.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

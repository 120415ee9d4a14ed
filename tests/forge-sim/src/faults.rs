//! Fault injection and GitLab-like rate limiting, as one axum middleware plus the admin routes that
//! change it while the simulator runs (`/-/sim/faults`, `/-/sim/requests`).
//!
//! It owns: the live [`FaultConfig`], the per-client rate-limit windows, the seeded random source that
//! decides which request fails, and the request counters tests read. It never looks at the simulated
//! GitLab data and never changes it: a fault is decided from the request alone, and the admin routes
//! (`/-/sim/...`) are never faulted, rate limited or counted.
//!
//! Order of decisions for one request: count it, wait (latency + jitter), rate limit (429), burst of
//! 429, reject rules, random 5xx (the handler does not run), then the handler runs and its response may
//! be lost (connection reset) or cut in the middle (truncated). Resets happen *after* the handler, so a
//! write took effect although the client never heard of it, which is what a migration must survive.
//! Before all of these, a [`HoldRule`] may hold a request unanswered (a test then kills its client at a
//! point it chose: right after a given write reached the simulator).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Paths under this prefix belong to the simulator's own controls and are never faulted.
pub const ADMIN_PREFIX: &str = "/-/sim/";

/// The length of one rate-limit window, as GitLab's `rack-attack` throttles use.
const WINDOW_SECS: u64 = 60;

/// Largest request body buffered to evaluate a [`RejectRule::body_contains`].
const MAX_INSPECTED_BODY: usize = 64 * 1024 * 1024;

/// What the simulator does wrong, on purpose. Every share is a probability in `0.0..=1.0`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Added to every request before it is handled.
    pub latency_ms: u64,
    /// A uniformly drawn extra delay in `0..=jitter_ms`, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Requests per minute per token (or per client address when anonymous); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// Share of requests answered 500, 502 or 503 without running the handler.
    pub fault_rate: f64,
    /// Share of requests whose connection is dropped without a response (after the handler ran).
    pub reset_rate: f64,
    /// Share of responses cut in the middle while announcing the full `Content-Length`.
    pub truncate_rate: f64,
    /// The next N requests are answered 429 with `Retry-After`; counts down, and restarts at each PUT.
    pub burst_429: u32,
    /// `Retry-After` seconds sent with the burst 429s; `None` = 1.
    pub burst_retry_after_secs: Option<u64>,
    /// Requests answered exactly the way GitLab rejects a record, first matching rule wins.
    pub reject: Vec<RejectRule>,
    /// Requests held unanswered once earlier ones succeeded (see [`HoldRule`]).
    pub hold: Option<HoldRule>,
    /// Relations (`issues`, `uploads`, ...) whose relation export ends failed (status -1, with
    /// GitLab's error text), as when GitLab cannot serialize a record or read an upload from its
    /// object storage; the rest of the export finishes.
    pub failed_exports: Vec<String>,
    /// How long after `POST .../export_relations` the export's job starts, as Sidekiq's queue
    /// delays it; until then the status and downloads are the previous export's, as it ended.
    pub export_worker_delay_ms: u64,
    /// Records GitLab's project import refuses as invalid: each is left out of the project and its
    /// relation named in `failed_relations` (GitLab never says which record), as when a record
    /// fails its model's validation at the destination.
    pub import_refusals: Vec<ImportRefusal>,
}

/// A record of a project import archive that GitLab's import refuses: one of `relation`
/// (`labels`, `releases`, ...) whose JSON contains `contains`, refused with `message`
/// (default: GitLab's "Validation failed: ..." for an invalid record).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportRefusal {
    pub relation: String,
    pub contains: String,
    pub message: Option<String>,
}

/// The import refusals of the fault configuration, as the middleware hands them to the handlers
/// (a request extension).
#[derive(Clone, Debug, Default)]
pub struct ImportRefusals(pub Vec<ImportRefusal>);

impl ImportRefusals {
    /// GitLab's words for a refused record of `relation` whose JSON is `json`, if it is refused.
    pub fn refuses(&self, relation: &str, json: &str) -> Option<String> {
        self.0
            .iter()
            .find(|r| r.relation == relation && json.contains(&r.contains))
            .map(|r| {
                r.message.clone().unwrap_or_else(|| {
                    "Validation failed: the record is invalid (forge-sim import_refusals)".into()
                })
            })
    }
}

/// Once `after` requests matching `when` were handled with a success (2xx), every request matching
/// `hold` (default: `when` again) is held: not handled, and not answered until the fault configuration
/// is replaced, when it is answered 503 (still not handled). `injected.held` counts them, so a test can
/// wait for one and kill its client right after the `after`-th write reached the simulator, while the
/// next one is in flight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldRule {
    pub when: RequestMatch,
    pub after: u32,
    pub hold: Option<RequestMatch>,
}

/// Which requests a [`HoldRule`] means.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestMatch {
    /// HTTP method, case-insensitive; empty or `*` matches every method, `write` every method but GET
    /// and HEAD.
    pub method: String,
    /// The request path (without the query string), compared segment by segment, where a `*`
    /// segment matches any one segment (`/api/v4/groups/*/epics`); empty matches every path.
    pub path: String,
    /// Substring of the raw request body (JSON, form or multipart); `None` ignores the body.
    pub body_contains: Option<String>,
}

impl RequestMatch {
    fn matches_head(&self, method: &str, path: &str) -> bool {
        let method_ok = match self.method.to_ascii_lowercase().as_str() {
            "" | "*" => true,
            "write" => !matches!(method, "GET" | "HEAD"),
            m => m.eq_ignore_ascii_case(method),
        };
        let path_ok = self.path.is_empty() || {
            let (want, got): (Vec<&str>, Vec<&str>) =
                (self.path.split('/').collect(), path.split('/').collect());
            want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
        };
        method_ok && path_ok
    }

    fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        self.matches_head(method, path)
            && self
                .body_contains
                .as_ref()
                .is_none_or(|needle| contains(body, needle.as_bytes()))
    }
}

/// Answer requests that match with `status` and `{"message": message}`, as GitLab does for a record it
/// refuses (e.g. 400 `{"message":"..."}`, 409, 422); or, with `lose_answer`, handle them and lose the
/// answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RejectRule {
    /// HTTP method, case-insensitive; empty or `*` matches every method.
    pub method: String,
    /// Substring of the request path (without the query string); empty matches every path.
    pub path_contains: String,
    /// Substring of the raw request body (JSON or form); `None` ignores the body.
    pub body_contains: Option<String>,
    pub status: u16,
    /// Sent as `{"message": message}`; when it is itself a JSON object or array (GitLab's validation
    /// errors look like `{"message":{"title":["has already been taken"]}}`), it is embedded as JSON.
    pub message: String,
    /// How many times the rule fires before it stops matching; `None` = every time.
    pub times: Option<u32>,
    /// Instead of answering, let the request be handled and then reset its connection: the write
    /// happens but the client never hears of it (`status` and `message` are not used).
    pub lose_answer: bool,
}

impl RejectRule {
    fn matches_head(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method.is_empty()
            || self.method == "*"
            || self.method.eq_ignore_ascii_case(method);
        method_ok && path.contains(self.path_contains.as_str())
    }
}

/// How many faults of each kind were injected since start (or the last counter reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedCounts {
    pub rate_limited: u64,
    pub burst_429: u64,
    pub rejected: u64,
    pub server_errors: u64,
    pub resets: u64,
    pub truncated: u64,
    /// Requests a [`HoldRule`] held.
    pub held: u64,
}

/// The body of `GET /-/sim/requests`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub total: u64,
    /// Keyed by `"<METHOD> <path>"`, the path without its query string.
    pub by_request: BTreeMap<String, u64>,
    /// The same keys: the request's number (1 for the first request the simulator counted) when
    /// that key first reached it, so a test can tell which of two requests came first.
    #[serde(default)]
    pub first_seen: BTreeMap<String, u64>,
    pub injected: InjectedCounts,
}

#[derive(Debug)]
struct Window {
    started: u64,
    used: u32,
}

#[derive(Debug)]
struct Live {
    config: FaultConfig,
    /// Burst 429s still to send.
    burst_left: u32,
    /// Remaining firings of each reject rule that has `times`, by rule index.
    reject_left: Vec<Option<u32>>,
    windows: HashMap<String, Window>,
    /// Successes of the hold rule's `when` so far.
    hold_seen: u32,
}

impl Live {
    fn new(config: FaultConfig) -> Self {
        Live {
            burst_left: config.burst_429,
            reject_left: config.reject.iter().map(|r| r.times).collect(),
            config,
            windows: HashMap::new(),
            hold_seen: 0,
        }
    }
}

/// The live fault configuration and its counters, shared by the middleware and the admin routes.
#[derive(Debug)]
pub struct FaultState {
    live: RwLock<Live>,
    rng: Mutex<ChaCha8Rng>,
    counts: Mutex<RequestCounts>,
    /// Bumped at every configuration change: releases held requests.
    generation: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The draws for one request, taken together so a seed gives the same sequence of decisions.
struct Draws {
    jitter_ms: u64,
    fault: f64,
    fault_kind: u8,
    reset: f64,
    truncate: f64,
}

/// What a matching reject rule does.
enum Rejection {
    Answer(Response),
    LoseAnswer,
}

/// What the hold rule decided for one request.
enum Hold {
    /// Not answered until this future ends (the configuration changed).
    Held(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
    /// Handled as usual; its success counts towards the rule's `after`.
    Watch,
    Pass,
}

/// What the middleware decided before running the handler.
enum Verdict {
    Answer(Response),
    Run { reset: bool, truncate: bool },
}

impl FaultState {
    pub fn new(cfg: FaultConfig, seed: u64) -> Arc<FaultState> {
        Arc::new(FaultState {
            live: RwLock::new(Live::new(cfg)),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            counts: Mutex::new(RequestCounts::default()),
            generation: tokio::sync::watch::Sender::new(0),
        })
    }

    pub fn config(&self) -> FaultConfig {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .config
            .clone()
    }

    /// Replace the configuration; burst and `times` counters restart and rate-limit windows are
    /// forgotten, so a test that changes the limit starts from a full budget.
    pub fn set_config(&self, cfg: FaultConfig) {
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Live::new(cfg);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn request_counts(&self) -> RequestCounts {
        lock(&self.counts).clone()
    }

    /// How often `method path` (path without query string) reached the simulator.
    pub fn request_count(&self, method: &str, path: &str) -> u64 {
        let key = format!("{} {}", method.to_ascii_uppercase(), path);
        lock(&self.counts)
            .by_request
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    pub fn reset_request_counts(&self) {
        *lock(&self.counts) = RequestCounts::default();
    }

    fn count(&self, method: &str, path: &str) {
        let mut c = lock(&self.counts);
        c.total += 1;
        let (key, number) = (format!("{method} {path}"), c.total);
        c.first_seen.entry(key.clone()).or_insert(number);
        *c.by_request.entry(key).or_insert(0) += 1;
    }

    fn injected(&self, f: impl FnOnce(&mut InjectedCounts)) {
        f(&mut lock(&self.counts).injected);
    }

    fn draw(&self, jitter_ms: u64) -> Draws {
        let mut rng = lock(&self.rng);
        Draws {
            jitter_ms: if jitter_ms == 0 {
                0
            } else {
                rng.random_range(0..=jitter_ms)
            },
            fault: rng.random(),
            fault_kind: rng.random_range(0..3),
            reset: rng.random(),
            truncate: rng.random(),
        }
    }

    /// Charge one request to `client`'s window and return the rate-limit headers, plus the seconds to
    /// wait when the budget is spent.
    fn charge(&self, client: &str, limit: u32, now: u64) -> (HeaderMap, Option<u64>) {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        let window = live.windows.entry(client.to_owned()).or_insert(Window {
            started: now,
            used: 0,
        });
        // The window starts at the client's first request rather than on the minute, so a test's few
        // requests never straddle a window boundary by chance.
        if now >= window.started + WINDOW_SECS {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let over = window.used >= limit;
        if !over {
            window.used += 1;
        }
        let reset_at = window.started + WINDOW_SECS;
        let observed = if over { window.used + 1 } else { window.used };
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", HeaderValue::from(limit));
        h.insert("ratelimit-observed", HeaderValue::from(observed));
        h.insert(
            "ratelimit-remaining",
            HeaderValue::from(limit.saturating_sub(window.used)),
        );
        h.insert("ratelimit-reset", HeaderValue::from(reset_at));
        h.insert(
            "ratelimit-name",
            HeaderValue::from_static(if client.starts_with("ip:") {
                "throttle_unauthenticated_api"
            } else {
                "throttle_authenticated_api"
            }),
        );
        if let Some(value) = http_date(reset_at).and_then(|d| HeaderValue::try_from(d).ok()) {
            h.insert("ratelimit-resettime", value);
        }
        let retry_after = reset_at.saturating_sub(now).max(1);
        (h, over.then_some(retry_after))
    }

    /// What the hold rule does with `req`: hold it (the future ends when the configuration changes),
    /// watch it (a success counts towards `after`), or nothing.
    async fn hold(&self, req: Request) -> (Request, Hold) {
        let Some(rule) = self.config().hold else {
            return (req, Hold::Pass);
        };
        let hold = rule.hold.as_ref().unwrap_or(&rule.when);
        let (method, path) = (
            req.method().as_str().to_owned(),
            req.uri().path().to_owned(),
        );
        if !rule.when.matches_head(&method, &path) && !hold.matches_head(&method, &path) {
            return (req, Hold::Pass);
        }
        let (req, body) = if rule.when.body_contains.is_some() || hold.body_contains.is_some() {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_INSPECTED_BODY)
                .await
                .unwrap_or_default();
            (Request::from_parts(parts, Body::from(bytes.clone())), bytes)
        } else {
            (req, Bytes::new())
        };
        let mut released = self.generation.subscribe();
        let reached = {
            let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
            live.hold_seen >= rule.after
        };
        if reached && hold.matches(&method, &path, &body) {
            self.injected(|c| c.held += 1);
            let wait = async move {
                let _ = released.changed().await;
            };
            return (req, Hold::Held(Box::pin(wait)));
        }
        let watch = rule.when.matches(&method, &path, &body);
        (req, if watch { Hold::Watch } else { Hold::Pass })
    }

    fn hold_success(&self) {
        self.live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .hold_seen += 1;
    }

    async fn decide(&self, req: Request) -> (Request, Verdict, HeaderMap) {
        let config = self.config();
        let draws = self.draw(config.jitter_ms);
        let delay = config.latency_ms + draws.jitter_ms;
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }

        let mut rate_headers = HeaderMap::new();
        if let Some(limit) = config.rate_limit_per_minute {
            let (h, over) = self.charge(&client_key(&req), limit, epoch_secs());
            rate_headers = h;
            if let Some(retry_after) = over {
                self.injected(|c| c.rate_limited += 1);
                return (req, Verdict::Answer(too_many(retry_after)), rate_headers);
            }
        }

        let burst = {
            let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
            let fire = live.burst_left > 0;
            live.burst_left = live.burst_left.saturating_sub(1);
            fire
        };
        if burst {
            self.injected(|c| c.burst_429 += 1);
            let secs = config.burst_retry_after_secs.unwrap_or(1);
            return (req, Verdict::Answer(too_many(secs)), rate_headers);
        }

        let (req, rejection) = self.reject(req, &config.reject).await;
        match rejection {
            Some(Rejection::Answer(resp)) => {
                self.injected(|c| c.rejected += 1);
                return (req, Verdict::Answer(resp), rate_headers);
            }
            Some(Rejection::LoseAnswer) => {
                let verdict = Verdict::Run {
                    reset: true,
                    truncate: false,
                };
                return (req, verdict, rate_headers);
            }
            None => {}
        }

        if draws.fault < config.fault_rate {
            self.injected(|c| c.server_errors += 1);
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][usize::from(draws.fault_kind)];
            return (req, Verdict::Answer(server_error(status)), rate_headers);
        }

        let verdict = Verdict::Run {
            reset: draws.reset < config.reset_rate,
            truncate: draws.truncate < config.truncate_rate,
        };
        (req, verdict, rate_headers)
    }

    /// Find the first reject rule that matches; buffers the body only when a matching rule needs it.
    async fn reject(&self, req: Request, rules: &[RejectRule]) -> (Request, Option<Rejection>) {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let candidates: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].matches_head(&method, &path))
            .collect();
        if candidates.is_empty() {
            return (req, None);
        }
        let mut req = req;
        let mut body_bytes: Option<Bytes> = None;
        if candidates.iter().any(|&i| rules[i].body_contains.is_some()) {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_INSPECTED_BODY)
                .await
                .unwrap_or_default();
            req = Request::from_parts(parts, Body::from(bytes.clone()));
            body_bytes = Some(bytes);
        }
        for i in candidates {
            let rule = &rules[i];
            if let Some(needle) = &rule.body_contains {
                let body = body_bytes.as_deref().unwrap_or_default();
                if !contains(body, needle.as_bytes()) {
                    continue;
                }
            }
            if !self.take_reject_firing(i) {
                continue;
            }
            if rule.lose_answer {
                return (req, Some(Rejection::LoseAnswer));
            }
            let status = StatusCode::from_u16(rule.status).unwrap_or(StatusCode::BAD_REQUEST);
            let message = match serde_json::from_str::<serde_json::Value>(&rule.message) {
                Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => v,
                _ => serde_json::Value::String(rule.message.clone()),
            };
            let resp = (status, Json(serde_json::json!({ "message": message }))).into_response();
            return (req, Some(Rejection::Answer(resp)));
        }
        (req, None)
    }

    fn take_reject_firing(&self, index: usize) -> bool {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        match live.reject_left.get_mut(index) {
            Some(Some(0)) => false,
            Some(Some(n)) => {
                *n -= 1;
                true
            }
            _ => true,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `Tue, 05 Jan 2021 11:00:00 GMT`, as GitLab's `RateLimit-ResetTime`.
fn http_date(epoch: u64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(epoch).ok()?).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.format(&format).ok()
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Who a request is charged to: its token (any of GitLab's ways to send one), else its address.
fn client_key(req: &Request) -> String {
    let h = req.headers();
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(t) = text("private-token").or_else(|| text("job-token")) {
        return format!("token:{t}");
    }
    if let Some(auth) = text("authorization") {
        return format!("auth:{auth}");
    }
    // REQUEST (edges helper -> core helper): serve with
    // `app.into_make_service_with_connect_info::<SocketAddr>()` so anonymous clients get a budget
    // per address; without it they share one ("ip:unknown").
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return format!("ip:{}", info.0.ip());
    }
    match text("x-forwarded-for") {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

fn too_many(retry_after: u64) -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(serde_json::json!({"message": "Retry later"})),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

fn server_error(status: StatusCode) -> Response {
    let message = match status {
        StatusCode::INTERNAL_SERVER_ERROR => "500 Internal Server Error",
        StatusCode::BAD_GATEWAY => "502 Bad Gateway",
        _ => "503 Service Unavailable",
    };
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

fn stream_error(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, what)
}

/// A response whose body fails before its first byte: hyper then aborts the connection, so the
/// client sees the connection closed with no (complete) response.
fn connection_reset() -> Response {
    let stream = futures_util::stream::iter([Err::<Bytes, _>(stream_error(
        "forge-sim: injected connection reset",
    ))]);
    let mut resp = Response::new(Body::from_stream(stream));
    // A length the body never delivers, so the client cannot mistake the abort for a complete body.
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1u64));
    resp
}

/// The first half of the body, then an error; `Content-Length` still announces the whole body.
async fn truncate(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(full) = axum::body::to_bytes(body, usize::MAX).await else {
        return connection_reset();
    };
    let half = full.slice(..full.len() / 2);
    // hyper writes the head and the first half only once the body stops being ready, so the
    // error comes after a short pause; without it the client would see no response at all.
    let stream = futures_util::stream::unfold(Some(half), |half| async move {
        match half {
            Some(half) => Some((Ok(half), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((
                    Err(stream_error("forge-sim: injected truncated body")),
                    None,
                ))
            }
        }
    })
    .take(2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len() as u64));
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The axum middleware: `axum::middleware::from_fn_with_state(faults, faults::middleware)`.
pub async fn middleware(
    State(state): State<Arc<FaultState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with(ADMIN_PREFIX) {
        return next.run(req).await;
    }
    state.count(req.method().as_str(), &path);

    let (req, hold) = state.hold(req).await;
    let counts_for_hold = match hold {
        Hold::Held(released) => {
            released.await;
            return server_error(StatusCode::SERVICE_UNAVAILABLE);
        }
        Hold::Watch => true,
        Hold::Pass => false,
    };
    let (req, verdict, rate_headers) = state.decide(req).await;
    let mut resp = match verdict {
        Verdict::Answer(resp) => resp,
        Verdict::Run {
            reset,
            truncate: cut,
        } => {
            let mut req = req;
            let refusals = state.config().import_refusals;
            if !refusals.is_empty() {
                req.extensions_mut().insert(ImportRefusals(refusals));
            }
            let resp = next.run(req).await;
            if counts_for_hold && resp.status().is_success() {
                state.hold_success();
            }
            if reset {
                state.injected(|c| c.resets += 1);
                return connection_reset();
            }
            if cut {
                state.injected(|c| c.truncated += 1);
                truncate(resp).await
            } else {
                resp
            }
        }
    };
    resp.headers_mut().extend(rate_headers);
    resp
}

async fn get_faults(State(state): State<Arc<FaultState>>) -> Json<FaultConfig> {
    Json(state.config())
}

async fn put_faults(
    State(state): State<Arc<FaultState>>,
    Json(cfg): Json<FaultConfig>,
) -> Json<FaultConfig> {
    state.set_config(cfg);
    Json(state.config())
}

async fn get_requests(State(state): State<Arc<FaultState>>) -> Json<RequestCounts> {
    Json(state.request_counts())
}

async fn delete_requests(State(state): State<Arc<FaultState>>) -> StatusCode {
    state.reset_request_counts();
    StatusCode::NO_CONTENT
}

/// `GET|PUT /-/sim/faults` and `GET|DELETE /-/sim/requests`; merge into the simulator's router.
pub fn admin_routes(state: Arc<FaultState>) -> Router {
    Router::new()
        .route("/-/sim/faults", get(get_faults).put(put_faults))
        .route("/-/sim/requests", get(get_requests).delete(delete_requests))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_window_counts_down_then_refuses() {
        let state = FaultState::new(FaultConfig::default(), 1);
        let (h, over) = state.charge("token:a", 2, 1_000);
        assert_eq!(h["ratelimit-remaining"], "1");
        assert_eq!(h["ratelimit-reset"], "1060");
        assert_eq!(h["ratelimit-resettime"], "Thu, 01 Jan 1970 00:17:40 GMT");
        assert_eq!(h["ratelimit-name"], "throttle_authenticated_api");
        assert!(over.is_none());
        assert!(state.charge("token:a", 2, 1_001).1.is_none());
        assert_eq!(state.charge("token:a", 2, 1_010).1, Some(50));
        // Another client has its own budget.
        assert!(state.charge("token:b", 2, 1_010).1.is_none());
        // A new window restores the budget.
        assert!(state.charge("token:a", 2, 1_060).1.is_none());
    }

    #[test]
    fn same_seed_same_decisions() {
        let a = FaultState::new(FaultConfig::default(), 42);
        let b = FaultState::new(FaultConfig::default(), 42);
        for _ in 0..10 {
            let (x, y) = (a.draw(100), b.draw(100));
            assert_eq!((x.jitter_ms, x.fault_kind), (y.jitter_ms, y.fault_kind));
            assert_eq!(x.fault.to_bits(), y.fault.to_bits());
        }
    }

    #[test]
    fn reject_rule_with_times_stops_firing() {
        let state = FaultState::new(
            FaultConfig {
                reject: vec![RejectRule {
                    times: Some(1),
                    ..RejectRule::default()
                }],
                ..FaultConfig::default()
            },
            1,
        );
        assert!(state.take_reject_firing(0));
        assert!(!state.take_reject_firing(0));
    }

    #[test]
    fn a_request_match_compares_paths_segment_by_segment() {
        let m = |method: &str, path: &str| RequestMatch {
            method: method.into(),
            path: path.into(),
            body_contains: None,
        };
        let epics = m("POST", "/api/v4/groups/*/epics");
        assert!(epics.matches_head("POST", "/api/v4/groups/12/epics"));
        assert!(!epics.matches_head("POST", "/api/v4/groups/12/epics/3/notes"));
        assert!(!epics.matches_head("GET", "/api/v4/groups/12/epics"));
        let writes = m("write", "");
        assert!(writes.matches_head("PUT", "/anything"));
        assert!(!writes.matches_head("GET", "/anything"));
        let mutation = RequestMatch {
            body_contains: Some("iterationCreate".into()),
            ..m("POST", "/api/graphql")
        };
        assert!(mutation.matches(
            "POST",
            "/api/graphql",
            b"{\"query\":\"mutation { iterationCreate"
        ));
        assert!(!mutation.matches("POST", "/api/graphql", b"{\"query\":\"{ group"));
    }

    #[test]
    fn config_json_accepts_partial_documents() {
        let cfg: FaultConfig =
            serde_json::from_str(r#"{"fault_rate":0.5,"reject":[{"status":400,"message":"x"}]}"#)
                .expect("partial config parses");
        assert_eq!(cfg.fault_rate, 0.5);
        assert_eq!(cfg.reject[0].method, "");
        assert_eq!(cfg.latency_ms, 0);
    }
}

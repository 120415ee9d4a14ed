//! The HTTP client of one forge instance: token, concurrency bound, deadlines, retries, rate limits
//! and pagination.
//!
//! The token only ever goes to the configured origin: every request URL is checked against it, and a
//! redirect is never followed (a 3xx answer is [`ForgeError::Redirected`]), since reqwest would re-send
//! `PRIVATE-TOKEN` (and a 307's body) to wherever it points.
//!
//! Errors and rate limits are counted apart: a 5xx or a lost connection spends one of
//! [`RetryPolicy::max_times`] retries, while a 429 (or `RateLimit-Remaining: 0`) is the forge asking to
//! wait, so every request of the client waits as told, within [`RetryPolicy::rate_limit_waits`] waits
//! and [`RetryPolicy::rate_limit_budget`] per request.

use super::ForgeError;
use crate::metrics::{self, Direction};
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

/// How long one download (a file streamed to disk, or a hop of a download's redirect) may take
/// in all; a transfer that stalls ends much sooner, by the read deadline.
pub const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(6 * 60 * 60);

/// How hard the client tries before it gives up on a request, and how long it waits for a forge.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after an error (5xx, a lost connection, a timeout); rate limiting does not count.
    pub max_times: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A request waits out a rate limit (429) at most this many times...
    pub rate_limit_waits: u32,
    /// ...and at most this long in all, before the forge counts as unreachable.
    pub rate_limit_budget: Duration,
    /// The wait after a 429 that says neither `Retry-After` nor `RateLimit-Reset`.
    pub rate_limit_default_wait: Duration,
    /// Deadline to open a connection.
    pub connect_timeout: Duration,
    /// Deadline for each read: the answer's head, then each piece of its body.
    pub read_timeout: Duration,
    /// Deadline for one attempt, from connecting to the last byte of the body.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_times: 8,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            // GitLab's own direct transfer waits up to 5 minutes, up to 10 times.
            rate_limit_waits: 10,
            rate_limit_budget: Duration::from_secs(300),
            rate_limit_default_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

/// How far an upload streamed from disk has got: bytes handed to the connection, and when the
/// last of them was.
#[derive(Default)]
struct UploadProgress {
    bytes: std::sync::atomic::AtomicU64,
    /// Milliseconds since `since` at the last chunk.
    last_ms: std::sync::atomic::AtomicU64,
    since: std::sync::OnceLock<Instant>,
}

impl UploadProgress {
    fn start(&self) -> Instant {
        *self.since.get_or_init(Instant::now)
    }

    fn advance(&self, n: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let since = self.start();
        self.bytes.fetch_add(n as u64, Relaxed);
        self.last_ms
            .store(since.elapsed().as_millis() as u64, Relaxed);
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves once `stall` passed without a chunk taken: the upload stalled, or, after its last
    /// chunk, the answer did not come (the read deadline of any other request). Pending otherwise.
    async fn stalled(&self, stall: Duration) {
        let since = self.start();
        loop {
            tokio::time::sleep((stall / 4).max(Duration::from_millis(50))).await;
            let last =
                Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
            if since.elapsed().saturating_sub(last) > stall {
                return;
            }
        }
    }
}

/// A forge that asked to wait: no request of its client leaves before `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// `host` or `host:port` of the forge.
    pub host: String,
    pub until: SystemTime,
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = time::OffsetDateTime::from(self.until);
        let clock = at
            .format(time::macros::format_description!(
                "[hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        write!(f, "rate limited by {} until {clock} UTC", self.host)
    }
}

/// One page of a list endpoint.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// Where the next page is (an absolute URL on the same instance), None on the last page.
    pub next: Option<String>,
    /// `X-Total`, when the forge reported it.
    pub total: Option<u64>,
}

#[derive(Clone)]
pub struct ForgeClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// For archive uploads: no read deadline (see `with_role`).
    upload_http: reqwest::Client,
    base: Url,
    /// What this forge is to the migration (`source`, `destination`), for messages.
    role: &'static str,
    token: SecretString,
    permits: Semaphore,
    retry: RetryPolicy,
    /// Set when the forge asked to wait (a 429, or its rate-limit budget spent): no request leaves
    /// before then. The wall-clock time is what users are shown.
    paused_until: Mutex<Option<(Instant, SystemTime)>>,
}

impl ForgeClient {
    pub fn new(
        base: Url,
        token: SecretString,
        concurrency: usize,
        retry: RetryPolicy,
    ) -> Result<ForgeClient, ForgeError> {
        ForgeClient::with_role("forge", base, token, concurrency, retry)
    }

    /// A client for the forge that is the migration's `role` (`source`, `destination`), named so in
    /// the messages users see.
    pub fn with_role(
        role: &'static str,
        base: Url,
        token: SecretString,
        concurrency: usize,
        retry: RetryPolicy,
    ) -> Result<ForgeClient, ForgeError> {
        crate::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("appliance/", env!("CARGO_PKG_VERSION")))
                // Never follow: reqwest would send PRIVATE-TOKEN (and a 307's body) to the new origin.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(retry.connect_timeout)
        };
        // The process's extra CAs and proxy (`ca_file`, `proxy`).
        let build = |builder: reqwest::ClientBuilder| {
            super::network::installed()
                .apply(builder)
                .map_err(ForgeError::Url)?
                .build()
                .map_err(|e| ForgeError::Url(format!("cannot build an HTTP client: {e}")))
        };
        let http = build(
            builder()
                .read_timeout(retry.read_timeout)
                .timeout(retry.attempt_timeout),
        )?;
        // reqwest's read deadline runs from the request's start to the answer's head, so an upload
        // longer than it would fail however well it moves: uploads have a client of their own,
        // their stalls caught by `UploadProgress` instead.
        let upload_http = build(builder().timeout(DOWNLOAD_DEADLINE))?;
        Ok(ForgeClient {
            inner: Arc::new(Inner {
                http,
                upload_http,
                base,
                role,
                token,
                permits: Semaphore::new(concurrency.max(1)),
                retry,
                paused_until: Mutex::new(None),
            }),
        })
    }

    /// The forge's `host` or `host:port`, as users name it.
    pub fn host(&self) -> String {
        let base = &self.inner.base;
        let host = base.host_str().unwrap_or_default();
        match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// The wait the forge asked for, while it lasts: every request to it is held until then.
    pub fn rate_limited_until(&self) -> Option<RateLimited> {
        let (until, wall) = (*self.paused_lock())?;
        (until > Instant::now()).then(|| RateLimited {
            host: self.host(),
            until: wall,
        })
    }

    fn paused_lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, SystemTime)>> {
        self.inner
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds every request of this client for `wait` (unless a longer hold is already set), and says
    /// so once per wait in the log.
    fn pause_for(&self, wait: Duration) {
        let now = Instant::now();
        let until = now + wait;
        let announce = {
            let mut paused = self.paused_lock();
            let current = paused.map(|(i, _)| i).filter(|i| *i > now);
            if current.is_some_and(|c| c >= until) {
                return;
            }
            *paused = Some((until, SystemTime::now() + wait));
            // Concurrent 429s extend the same wait by a moment: one line for all of them.
            current.is_none_or(|c| c + Duration::from_secs(1) <= until)
        };
        if announce {
            metrics::forge_rate_limit_wait(&self.host());
        }
        if announce && let Some(limited) = self.rate_limited_until() {
            tracing::warn!(host = %limited.host, wait_s = wait.as_secs_f64(), "{limited}");
        }
    }

    /// Waits while the forge asked to wait (the hold may be extended meanwhile).
    async fn wait_out_pause(&self) {
        loop {
            let until = self.paused_lock().map(|(i, _)| i);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// The token, for the `git` commands that move this forge's repositories (`forge::git` puts it
    /// in their environment only).
    /// The HTTP client (no redirects, the deadlines of this forge) for requests this client does not
    /// make itself (Git LFS); whoever uses it adds credentials only for the forge's own origin.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn token(&self) -> &SecretString {
        &self.inner.token
    }

    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// The URL of an API v4 path such as `groups/12/labels`.
    pub fn api_url(&self, path: &str) -> String {
        format!(
            "{}/api/v4/{}",
            self.inner.base.as_str().trim_end_matches('/'),
            path
        )
    }

    /// The instance's GraphQL endpoint.
    pub fn graphql_url(&self) -> String {
        format!(
            "{}/api/graphql",
            self.inner.base.as_str().trim_end_matches('/')
        )
    }

    /// A web URL on the instance, such as a group's page, for failure rows.
    pub fn web_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.inner.base.as_str().trim_end_matches('/'),
            path
        )
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        let (_, body) = self
            .send(Method::GET, &url, query, None, true, None)
            .await?;
        Ok(body)
    }

    /// One page of a list endpoint: the first when `cursor` is None, else the page the cursor names.
    pub async fn list_page(
        &self,
        path: &str,
        query: &[(&str, String)],
        cursor: Option<&str>,
    ) -> Result<ListPage, ForgeError> {
        let (headers, body) = match cursor {
            Some(next) => {
                self.same_origin(next)?;
                self.send(Method::GET, next, &[], None, true, None).await?
            }
            None => {
                let mut q: Vec<(&str, String)> = query.to_vec();
                if !q.iter().any(|(k, _)| *k == "per_page") {
                    q.push(("per_page", "100".into()));
                }
                let url = self.api_url(path);
                self.send(Method::GET, &url, &q, None, true, None).await?
            }
        };
        let items = match body {
            Value::Array(items) => items,
            other => {
                return Err(ForgeError::Decode {
                    url: self.api_url(path),
                    message: format!("expected a JSON array, got {}", kind(&other)),
                });
            }
        };
        let total = header_u64(&headers, "x-total");
        let next = next_link(&headers).filter(|n| self.same_origin(n).is_ok());
        Ok(ListPage { items, next, total })
    }

    /// `POST` as another user (`Sudo`, which GitLab allows an administrator's token); None: as the
    /// token's own user.
    pub async fn post_as(
        &self,
        path: &str,
        body: &Value,
        sudo: Option<&str>,
    ) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        Ok(self
            .send(Method::POST, &url, &[], Some(body), false, sudo)
            .await?
            .1)
    }

    /// `POST` of a request that may be repeated safely (starting an export restarts it), so it is
    /// retried on every transient error like a read.
    pub async fn post_repeatable(&self, path: &str, body: &Value) -> Result<Value, ForgeError> {
        Ok(self.post_repeatable_dated(path, body).await?.0)
    }

    /// [`Self::post_repeatable`], with the time the forge answered by its own clock (its `Date`
    /// header, to the second): what its records' `updated_at` can be compared with.
    pub async fn post_repeatable_dated(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(Value, Option<time::OffsetDateTime>), ForgeError> {
        let url = self.api_url(path);
        let (headers, body) = self
            .send(Method::POST, &url, &[], Some(body), true, None)
            .await?;
        Ok((
            body,
            header_str(&headers, "date").as_deref().and_then(http_date),
        ))
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        Ok(self
            .send(Method::POST, &url, &[], Some(body), false, None)
            .await?
            .1)
    }

    /// Sends a GraphQL document (`POST /api/graphql` with `{query, variables}`) and returns its `data`,
    /// with the same token, retries and rate limits as REST. A `query` reads, so it is retried like a
    /// GET; a mutation like a POST (only when it cannot have been applied). An answer with `errors` is
    /// [`ForgeError::GraphQl`].
    pub async fn graphql(
        &self,
        document: &str,
        variables: &Value,
        query: bool,
    ) -> Result<Value, ForgeError> {
        let url = self.graphql_url();
        let body = serde_json::json!({ "query": document, "variables": variables });
        let (_, answer) = self
            .send(Method::POST, &url, &[], Some(&body), query, None)
            .await
            .map_err(|mut e| {
                if let ForgeError::Status { read, .. } = &mut e {
                    *read = query;
                }
                e
            })?;
        graphql_data(&url, answer)
    }

    /// The raw bytes of an API path (an uploaded file), refused past `limit` bytes.
    pub async fn get_bytes(&self, path: &str, limit: usize) -> Result<Vec<u8>, ForgeError> {
        let url = self.api_url(path);
        let attempt = || async {
            let _permit = self.permit(&url).await?;
            let resp = self
                .request(Method::GET, &url)?
                .send()
                .await
                .map_err(|e| network("GET", &url, &e, true))?;
            self.observe(resp.status(), resp.headers());
            let resp = self.follow_download(&url, resp).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            if !status.is_success() {
                let body = resp.bytes().await.unwrap_or_default();
                return Err(status_error("GET", &url, status, &headers, &body));
            }
            let mut out = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                let chunk = chunk.map_err(|e| network("GET", &url, &e, true))?;
                if out.len() + chunk.len() > limit {
                    return Err(ForgeError::Decode {
                        url: url.clone(),
                        message: format!(
                            "larger than the {limit} bytes the appliance carries for one file"
                        ),
                    });
                }
                out.extend_from_slice(&chunk);
            }
            metrics::forge_bytes(&self.host(), Direction::Received, out.len());
            Ok(out)
        };
        self.retrying(true, attempt).await
    }

    /// Streams the body of an API path (an export file, which may be gigabytes) into a new file at
    /// `out`, and returns its size; never holds it in memory. A stalled transfer ends by the read
    /// deadline; the whole one may take up to [`DOWNLOAD_DEADLINE`]. A failed attempt is retried
    /// from the start, `out` truncated.
    pub async fn download_to(&self, path: &str, out: &std::path::Path) -> Result<u64, ForgeError> {
        use tokio::io::AsyncWriteExt;
        let url = self.api_url(path);
        let disk = |e: std::io::Error| ForgeError::Decode {
            url: url.clone(),
            message: format!("cannot write {}: {e}", out.display()),
        };
        let attempt = || async {
            let _permit = self.permit(&url).await?;
            let resp = self
                .request(Method::GET, &url)?
                .timeout(DOWNLOAD_DEADLINE)
                .send()
                .await
                .map_err(|e| network("GET", &url, &e, true))?;
            self.observe(resp.status(), resp.headers());
            let resp = self.follow_download(&url, resp).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            if !status.is_success() {
                let body = resp.bytes().await.unwrap_or_default();
                return Err(status_error("GET", &url, status, &headers, &body));
            }
            let mut file = tokio::fs::File::create(out).await.map_err(disk)?;
            let mut written = 0u64;
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                let chunk = chunk.map_err(|e| network("GET", &url, &e, true))?;
                file.write_all(&chunk).await.map_err(disk)?;
                written += chunk.len() as u64;
            }
            file.flush().await.map_err(disk)?;
            file.sync_all().await.map_err(disk)?;
            metrics::forge_bytes(&self.host(), Direction::Received, written as usize);
            Ok(written)
        };
        self.retrying(true, attempt).await
    }

    /// `POST` of one file as `multipart/form-data` field `file` (GitLab's uploads API). Retried even when
    /// the first attempt may have been applied: a markdown upload sent twice only leaves an unused copy,
    /// and the caller links the copy whose answer it got.
    pub async fn post_file(
        &self,
        path: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, ForgeError> {
        self.send_file(Method::POST, path, "file", filename, bytes)
            .await
    }

    /// `PUT` of one file as `multipart/form-data` field `field` (a group's `avatar`). Setting a file
    /// twice gives the same result, so it is retried like any PUT.
    pub async fn put_file(
        &self,
        path: &str,
        field: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, ForgeError> {
        self.send_file(Method::PUT, path, field, filename, bytes)
            .await
    }

    async fn send_file(
        &self,
        method: Method,
        path: &str,
        field: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        let verb = method.as_str().to_string();
        let attempt = || async {
            let _permit = self.permit(&url).await?;
            metrics::forge_bytes(&self.host(), Direction::Sent, bytes.len());
            let part =
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(filename.to_string());
            let form = reqwest::multipart::Form::new().part(field.to_string(), part);
            let resp = self
                .request(method.clone(), &url)?
                .multipart(form)
                .send()
                .await
                .map_err(|e| network(&verb, &url, &e, !e.is_connect()))?;
            self.json_answer(&verb, &url, resp).await
        };
        self.retrying(true, attempt).await
    }

    /// `POST` of a file on disk as `multipart/form-data` field `file`, with text `fields` (GitLab's
    /// project import and relation import take an export archive this way). The file is streamed from
    /// disk on every attempt, never held in memory. `idempotent` says whether sending it again after
    /// an unknown outcome is harmless (a relation import skips what it already imported); when it is
    /// not, the caller looks for what the first attempt made instead.
    pub async fn post_archive(
        &self,
        path: &str,
        fields: &[(&str, String)],
        file: &std::path::Path,
        idempotent: bool,
    ) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        let attempt = || async {
            let opened = tokio::fs::File::open(file).await;
            let len = match &opened {
                Ok(f) => f.metadata().await.map(|m| m.len()),
                Err(_) => Ok(0),
            };
            let (opened, len) = match (opened, len) {
                (Ok(f), Ok(len)) => (f, len),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(ForgeError::Url(format!(
                        "cannot read the archive {}: {e}",
                        file.display()
                    )));
                }
            };
            let _permit = self.permit(&url).await?;
            // An archive of gigabytes takes longer than one request's deadline: it may take the
            // deadline of a download, and ends sooner when the destination stops taking its bytes
            // for a read deadline (a stalled upload), as a stalled download does.
            let sent = Arc::new(UploadProgress::default());
            let stream = {
                let sent = Arc::clone(&sent);
                futures_util::StreamExt::inspect(
                    tokio_util::io::ReaderStream::new(opened),
                    move |chunk| {
                        if let Ok(chunk) = chunk {
                            sent.advance(chunk.len());
                        }
                    },
                )
            };
            let body = reqwest::Body::wrap_stream(stream);
            let part = reqwest::multipart::Part::stream_with_length(body, len)
                .file_name("export.tar.gz")
                .mime_str("application/gzip")
                .map_err(|e| ForgeError::Url(e.to_string()))?;
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in fields {
                form = form.text(name.to_string(), value.clone());
            }
            let send = self
                .request_on(&self.inner.upload_http, Method::POST, &url)?
                .multipart(form.part("file", part))
                .send();
            let stall = self.inner.retry.read_timeout;
            let resp = tokio::select! {
                resp = send => resp.map_err(|e| network("POST", &url, &e, !e.is_connect()))?,
                () = sent.stalled(stall) => {
                    let done = sent.bytes() >= len;
                    return Err(ForgeError::Network {
                        method: "POST".into(),
                        url: url.clone(),
                        message: if done {
                            format!("the archive was sent and no answer came within {}s", stall.as_secs())
                        } else {
                            format!(
                                "the upload stalled: no byte of the archive was taken for {}s ({} of {len} bytes sent)",
                                stall.as_secs(),
                                sent.bytes()
                            )
                        },
                        // Every byte sent: the destination may have started the import.
                        maybe_applied: done,
                    });
                }
            };
            self.json_answer("POST", &url, resp).await
        };
        self.retrying(idempotent, attempt).await
    }

    /// The JSON body of an answer, or the error its status says (redirects refused, rate limits noted).
    async fn json_answer(
        &self,
        verb: &str,
        url: &str,
        resp: reqwest::Response,
    ) -> Result<Value, ForgeError> {
        let status = resp.status();
        let headers = resp.headers().clone();
        self.observe(status, &headers);
        self.refuse_redirect(verb, url, &resp)?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| network(verb, url, &e, true))?;
        metrics::forge_bytes(&self.host(), Direction::Received, body.len());
        if !status.is_success() {
            return Err(status_error(verb, url, status, &headers, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ForgeError::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// A permit to send, once the forge no longer asks to wait.
    async fn permit(&self, url: &str) -> Result<tokio::sync::SemaphorePermit<'_>, ForgeError> {
        loop {
            self.wait_out_pause().await;
            let permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(|_| ForgeError::Network {
                    method: "ANY".into(),
                    url: url.to_string(),
                    message: "client is shutting down".into(),
                    maybe_applied: false,
                })?;
            // A wait may have begun while this request queued for its permit.
            if self.rate_limited_until().is_none() {
                return Ok(permit);
            }
        }
    }

    /// A request to `url` carrying the token. Only the configured origin ever gets the token: its
    /// base URL passed the transport policy (https, or http to loopback or when allowed), and every
    /// URL the client is sent to (pagination links included) must be on that same origin.
    fn request(&self, method: Method, url: &str) -> Result<reqwest::RequestBuilder, ForgeError> {
        self.request_on(&self.inner.http, method, url)
    }

    fn request_on(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, ForgeError> {
        let target = Url::parse(url).map_err(|e| ForgeError::Url(format!("bad URL {url}: {e}")))?;
        if target.origin() != self.inner.base.origin() {
            return Err(ForgeError::Url(format!(
                "{} is not on the {} {}; refusing to send the token there",
                target,
                self.inner.role,
                super::base_string(&self.inner.base)
            )));
        }
        Ok(http
            .request(method, target)
            .header("PRIVATE-TOKEN", self.inner.token.expose_secret()))
    }

    /// A download GitLab keeps in object storage is answered with a redirect to a pre-signed URL (its
    /// own authorization is in the URL). Such a redirect is followed for downloads only, a few hops at
    /// most, without the token when it leaves the forge's origin, and under the same transport rule as
    /// the forge's URL (https, or plain http only to loopback or when the forge itself is plain http).
    async fn follow_download(
        &self,
        url: &str,
        mut resp: reqwest::Response,
    ) -> Result<reqwest::Response, ForgeError> {
        const MAX_HOPS: usize = 5;
        let mut from =
            Url::parse(url).map_err(|e| ForgeError::Url(format!("bad URL {url}: {e}")))?;
        for _ in 0..MAX_HOPS {
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let Some(location) = header_str(resp.headers(), "location") else {
                return Ok(resp);
            };
            let to = from.join(location.trim()).map_err(|e| {
                ForgeError::Url(format!("{url} redirected to `{location}`, not a URL: {e}"))
            })?;
            let to = super::parse_forge_url(to.as_str(), self.inner.base.scheme() == "http")
                .map_err(|e| {
                    ForgeError::Url(format!("a download from {url} was redirected: {e}"))
                })?;
            let request = if to.origin() == self.inner.base.origin() {
                self.request(Method::GET, to.as_str())?
            } else {
                self.inner.http.get(to.clone())
            };
            resp = request
                .timeout(DOWNLOAD_DEADLINE)
                .send()
                .await
                .map_err(|e| network("GET", to.as_str(), &e, true))?;
            from = to;
        }
        self.refuse_redirect("GET", url, &resp)?;
        Ok(resp)
    }

    /// A redirect answer is an error that names both URLs. It is never followed (to another origin,
    /// the token would go with it), so the user configures the URL the forge really answers on.
    fn refuse_redirect(
        &self,
        method: &str,
        url: &str,
        resp: &reqwest::Response,
    ) -> Result<(), ForgeError> {
        if !resp.status().is_redirection() {
            return Ok(());
        }
        let Some(location) = header_str(resp.headers(), "location") else {
            return Ok(());
        };
        let from = Url::parse(url).map_err(|e| ForgeError::Url(format!("bad URL {url}: {e}")))?;
        let to = from
            .join(location.trim())
            .map(|u| u.to_string())
            .unwrap_or(location);
        let base = super::base_string(&self.inner.base);
        let path = url.strip_prefix(&base).unwrap_or(url);
        Err(ForgeError::Redirected {
            role: self.inner.role,
            base: base.clone(),
            request: format!("{method} {path}"),
            hint: suggested_base(&to, path)
                .map(|b| format!(" ({b}, if that is the same GitLab)"))
                .unwrap_or_default(),
            location: to,
        })
    }

    /// Runs `attempt` until it succeeds, or fails in a way `retryable` says is final, or the client's
    /// retry policy is spent: as many tries, as spaced out, as a request of this client gets. For
    /// work the client does not send itself: a `git clone` (several requests git cannot retry one
    /// by one), an LFS request to object storage. `what` names the work in the log line of each
    /// retry, which never holds a token (`E`'s Display must not either).
    pub async fn retry_work<T, E, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut delays = self.policy().build();
        let mut tries = 1;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Some(delay) = delays.next().filter(|_| retryable(&e)) else {
                        return Err(e);
                    };
                    tracing::warn!(error = %e, tries, "{what} failed; trying again");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
            }
        }
    }

    fn policy(&self) -> ExponentialBuilder {
        let p = &self.inner.retry;
        ExponentialBuilder::default()
            .with_min_delay(p.min_delay)
            .with_max_delay(p.max_delay)
            .with_max_times(p.max_times)
            .with_jitter()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ForgeError> {
        self.put_as(path, body, None).await
    }

    /// `PUT` as another user (`Sudo`, see [`ForgeClient::post_as`]); None: as the token's own user.
    pub async fn put_as(
        &self,
        path: &str,
        body: &Value,
        sudo: Option<&str>,
    ) -> Result<Value, ForgeError> {
        let url = self.api_url(path);
        // PUT sets a state; repeating it gives the same state.
        Ok(self
            .send(Method::PUT, &url, &[], Some(body), true, sudo)
            .await?
            .1)
    }

    fn same_origin(&self, url: &str) -> Result<(), ForgeError> {
        let u = Url::parse(url)
            .map_err(|e| ForgeError::Url(format!("bad pagination link {url}: {e}")))?;
        if u.origin() == self.inner.base.origin() {
            Ok(())
        } else {
            Err(ForgeError::Url(format!(
                "pagination link {url} leaves {}; refusing to send the token there",
                self.inner.base
            )))
        }
    }

    /// Sends a request with retries. Reads and idempotent writes are retried on every transient error;
    /// a POST only when it cannot have been applied (refused connection, 429, 502/503).
    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotent: bool,
        sudo: Option<&str>,
    ) -> Result<(HeaderMap, Value), ForgeError> {
        self.retrying(idempotent, || {
            self.send_once(method.clone(), url, query, body, sudo)
        })
        .await
    }

    /// Runs `attempt` until it succeeds or must stop. A 429 is the forge asking to wait: every request
    /// of the client waits as told (`Retry-After`, else `RateLimit-Reset`, else a default), within the
    /// rate-limit budget and without spending a retry. Errors are retried with exponential backoff and
    /// jitter, only when safe to repeat, at most `max_times`. A forge still refusing or failing past
    /// either limit ends as "unreachable": a paused, resumable migration.
    async fn retrying<T, F, Fut>(&self, idempotent: bool, mut attempt: F) -> Result<T, ForgeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ForgeError>>,
    {
        let policy = &self.inner.retry;
        let mut backoff = self.policy().build();
        let (mut waits, mut waited) = (0u32, Duration::ZERO);
        loop {
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if let ForgeError::Network { .. } = err {
                metrics::forge_unanswered(&self.host());
            }
            if let ForgeError::Status {
                status: 429,
                retry_after,
                ..
            } = &err
            {
                let wait = retry_after.unwrap_or(policy.rate_limit_default_wait);
                if waits >= policy.rate_limit_waits || waited + wait > policy.rate_limit_budget {
                    tracing::warn!(
                        host = %self.host(),
                        waits,
                        waited_s = waited.as_secs(),
                        "still rate limited after the waits allowed; giving up on this request"
                    );
                    return Err(err);
                }
                waits += 1;
                waited += wait;
                self.pause_for(wait);
                continue;
            }
            if !retryable(&err, idempotent) {
                return Err(err);
            }
            let Some(mut delay) = backoff.next() else {
                return Err(err);
            };
            if let ForgeError::Status {
                retry_after: Some(asked),
                ..
            } = &err
            {
                // A 503 may say when to come back; never wait longer than the backoff's ceiling.
                delay = delay.max((*asked).min(policy.max_delay));
            }
            tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "retrying");
            metrics::forge_retry(&self.host());
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        sudo: Option<&str>,
    ) -> Result<(HeaderMap, Value), ForgeError> {
        let _permit = self.permit(url).await?;
        let mut req = self.request(method.clone(), url)?;
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            // Serialized here rather than by `.json()` so that the bytes sent are counted.
            let bytes = serde_json::to_vec(b).map_err(|e| ForgeError::Decode {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            metrics::forge_bytes(&self.host(), Direction::Sent, bytes.len());
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        if let Some(user) = sudo {
            req = req.header("Sudo", user);
        }
        let resp = req.send().await.map_err(|e| {
            let applied = !(e.is_connect() || e.is_builder());
            network(method.as_str(), url, &e, applied)
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.observe(status, &headers);
        self.refuse_redirect(method.as_str(), url, &resp)?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| network(method.as_str(), url, &e, true))?;
        metrics::forge_bytes(&self.host(), Direction::Received, bytes.len());
        if status.is_success() {
            if bytes.is_empty() || status == StatusCode::NO_CONTENT {
                return Ok((headers, Value::Null));
            }
            let value = serde_json::from_slice(&bytes).map_err(|e| ForgeError::Decode {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            return Ok((headers, value));
        }
        Err(status_error(method.as_str(), url, status, &headers, &bytes))
    }

    /// Every answer of the forge passes here: it is counted (`/metrics`), and its rate-limit headers
    /// read. GitLab announces its budget with `RateLimit-Remaining` and `RateLimit-Reset` (epoch
    /// seconds): when nothing remains, every request of this client waits for the reset instead of
    /// being refused.
    fn observe(&self, status: StatusCode, headers: &HeaderMap) {
        metrics::forge_answered(&self.host(), status.as_u16());
        if header_u64(headers, "ratelimit-remaining") != Some(0) {
            return;
        }
        if let Some(wait) = until_reset(headers) {
            self.pause_for(wait.min(self.inner.retry.rate_limit_budget));
        }
    }
}

/// The time to `RateLimit-Reset` (epoch seconds), when the header is there.
fn until_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset = header_u64(headers, "ratelimit-reset")?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// How long the forge asked to wait: `Retry-After` in seconds or as an HTTP date, else (for a 429)
/// until `RateLimit-Reset`.
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if let Some(value) = header_str(headers, "retry-after") {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        if let Ok(at) = time::PrimitiveDateTime::parse(value, &format) {
            let at = SystemTime::from(at.assume_utc());
            return Some(
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return until_reset(headers);
    }
    None
}

/// The base URL a redirect points to, when it keeps the request's own path under a new prefix
/// (`https://b/api/v4/version` for `/api/v4/version` gives `https://b`).
fn suggested_base(location: &str, path: &str) -> Option<String> {
    let location = location.split(['?', '#']).next()?;
    let path = path.split('?').next()?;
    let base = location.strip_suffix(path)?.trim_end_matches('/');
    Url::parse(base).ok().map(|u| super::base_string(&u))
}

fn network(method: &str, url: &str, e: &reqwest::Error, maybe_applied: bool) -> ForgeError {
    ForgeError::Network {
        method: method.to_string(),
        url: url.to_string(),
        message: error_chain(e),
        maybe_applied,
    }
}

fn status_error(
    method: &str,
    url: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ForgeError {
    ForgeError::Status {
        method: method.to_string(),
        url: url.to_string(),
        status: status.as_u16(),
        message: gitlab_message(body, status),
        correlation_id: header_str(headers, "x-request-id"),
        retry_after: retry_after(status, headers),
        read: method == "GET",
    }
}

/// The `data` of a GraphQL answer; its `errors`, when it has any, as one error.
fn graphql_data(url: &str, answer: Value) -> Result<Value, ForgeError> {
    if let Some(errors) = answer
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        return Err(ForgeError::GraphQl {
            url: url.to_string(),
            message: graphql_messages(errors),
        });
    }
    match answer.get("data") {
        Some(data @ Value::Object(_)) => Ok(data.clone()),
        _ => Err(ForgeError::Decode {
            url: url.to_string(),
            message: format!("a GraphQL answer without data: {}", kind(&answer)),
        }),
    }
}

/// GraphQL `errors` for people: each message, with the path of the field it is about.
fn graphql_messages(errors: &[Value]) -> String {
    errors
        .iter()
        .map(|e| {
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("an error without a message");
            let path: Vec<String> = e
                .get("path")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if path.is_empty() {
                message.to_string()
            } else {
                format!("{message} (at {})", path.join("."))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn retryable(e: &ForgeError, idempotent: bool) -> bool {
    match e {
        ForgeError::Status { status, .. } => match status {
            429 | 502 | 503 => true,
            500 | 504 => idempotent,
            _ => false,
        },
        ForgeError::Network { maybe_applied, .. } => idempotent || !maybe_applied,
        _ => false,
    }
}

/// GitLab puts its reason in `message` (a string, or an object of field -> reasons) or in `error`;
/// its GraphQL endpoint in `errors` (`[{"message": ...}]`).
pub fn gitlab_message(body: &[u8], status: StatusCode) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = parsed.as_ref().and_then(|v| {
        if let Some(errors) = v.get("errors").and_then(Value::as_array)
            && v.get("message").is_none()
        {
            return Some(graphql_messages(errors));
        }
        let m = v.get("message").or_else(|| v.get("error"))?;
        Some(match m {
            Value::String(s) => s.clone(),
            Value::Object(fields) => fields
                .iter()
                .map(|(k, v)| match v {
                    Value::Array(reasons) => format!(
                        "{k} {}",
                        reasons
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    other => format!("{k} {other}"),
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        })
    });
    text.unwrap_or_else(|| {
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
        format!(
            "{} {}",
            status.as_u16(),
            if snippet.is_empty() {
                status.canonical_reason().unwrap_or("")
            } else {
                &snippet
            }
        )
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_string)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, the only form a server may send).
fn http_date(s: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    header_str(h, name).and_then(|s| s.trim().parse().ok())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(h: &HeaderMap) -> Option<String> {
    let link = header_str(h, "link")?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_date_is_read_to_the_second_in_utc() {
        let t = http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("an IMF-fixdate");
        assert_eq!(t, time::macros::datetime!(1994-11-06 08:49:37 UTC));
        // What hyper sends, and what else a server might: only the first is an HTTP date.
        assert!(http_date("Fri, 04 Dec 2026 22:09:15 GMT").is_some());
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("1994-11-06T08:49:37Z"), None);
        assert_eq!(http_date(""), None);
    }

    #[test]
    fn link_header_next_is_found() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                "<https://g.example/api/v4/groups?page=1&per_page=2>; rel=\"first\", <https://g.example/api/v4/groups?page=3&per_page=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://g.example/api/v4/groups?page=3&per_page=2")
        );
    }

    #[test]
    fn gitlab_messages_are_rendered_for_people() {
        let m = gitlab_message(
            br#"{"message":{"name":["can't be blank","is too short"]}}"#,
            StatusCode::BAD_REQUEST,
        );
        assert_eq!(m, "name can't be blank, is too short");
        let m = gitlab_message(
            br#"{"message":"Label already exists"}"#,
            StatusCode::CONFLICT,
        );
        assert_eq!(m, "Label already exists");
        let m = gitlab_message(b"", StatusCode::BAD_GATEWAY);
        assert_eq!(m, "502 Bad Gateway");
        // GitLab's GraphQL endpoint answers its refusals in GraphQL's shape.
        let m = gitlab_message(
            br#"{"errors":[{"message":"Invalid token"}]}"#,
            StatusCode::UNAUTHORIZED,
        );
        assert_eq!(m, "Invalid token");
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use crate::forge::base_string;
    use axum::{Router, http::StatusCode as S, routing::get};
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn serve(router: Router) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Url::parse(&format!("http://{addr}")).unwrap()
    }

    fn client(url: Url, max_times: usize) -> ForgeClient {
        let retry = RetryPolicy {
            max_times,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        ForgeClient::new(url, SecretString::from("t".to_string()), 2, retry).unwrap()
    }

    fn client_with(url: Url, retry: RetryPolicy) -> ForgeClient {
        ForgeClient::new(url, SecretString::from("t".to_string()), 2, retry).unwrap()
    }

    fn fast(max_times: usize) -> RetryPolicy {
        RetryPolicy {
            max_times,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        }
    }

    /// `/api/v4/version` answers each status of `script` in turn (429s with `Retry-After: 1`), then 200.
    fn scripted(script: Vec<u16>, hits: Arc<AtomicU32>) -> Router {
        Router::new().route(
            "/api/v4/version",
            get(move || {
                let (h, script) = (hits.clone(), script.clone());
                async move {
                    let n = h.fetch_add(1, Ordering::SeqCst) as usize;
                    match script.get(n).copied() {
                        Some(429) => (
                            S::TOO_MANY_REQUESTS,
                            [("retry-after", "1")],
                            r#"{"message":"Retry later"}"#,
                        )
                            .into_response(),
                        Some(code) => (S::from_u16(code).unwrap(), "").into_response(),
                        None => {
                            axum::Json(serde_json::json!({"version": "17.6.0"})).into_response()
                        }
                    }
                }
            }),
        )
    }

    #[tokio::test]
    async fn rate_limits_are_waited_out_without_spending_the_retries_meant_for_errors() {
        let hits = Arc::new(AtomicU32::new(0));
        let url = serve(scripted(vec![429, 429, 429, 502, 502], hits.clone())).await;
        // Two error retries: the three 429s must not use them up.
        let c = client_with(url, fast(2));
        let started = Instant::now();
        assert_eq!(c.get("version", &[]).await.unwrap()["version"], "17.6.0");
        assert_eq!(hits.load(Ordering::SeqCst), 6);
        let took = started.elapsed();
        // Each 429 said one second: the waits are the forge's, not a growing backoff.
        assert!(took >= Duration::from_millis(2900), "{took:?}");
        assert!(took < Duration::from_secs(20), "{took:?}");
    }

    #[tokio::test]
    async fn a_rate_limit_wait_is_shown_while_it_lasts_and_shared_by_every_request() {
        let hits = Arc::new(AtomicU32::new(0));
        let url = serve(scripted(vec![429], hits.clone())).await;
        let c = client_with(url.clone(), fast(0));
        assert_eq!(c.rate_limited_until(), None);
        let first = tokio::spawn({
            let c = c.clone();
            async move { c.get("version", &[]).await }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let limited = loop {
            if let Some(l) = c.rate_limited_until() {
                break l;
            }
            assert!(Instant::now() < deadline, "the wait is never shown");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(limited.host, format!("127.0.0.1:{}", url.port().unwrap()));
        assert!(limited.until > SystemTime::now());
        let shown = limited.to_string();
        assert!(
            shown.starts_with(&format!("rate limited by {} until ", limited.host))
                && shown.ends_with(" UTC"),
            "{shown}"
        );
        // Another request of the same client waits too, instead of hitting the forge meanwhile.
        c.get("version", &[]).await.unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert_eq!(c.rate_limited_until(), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_as_a_date_or_from_the_reset() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(7))
        );
        let later = SystemTime::now() + Duration::from_secs(100);
        let date = time::OffsetDateTime::from(later)
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap();
        h.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(StatusCode::TOO_MANY_REQUESTS, &h).unwrap();
        assert!(
            wait > Duration::from_secs(95) && wait <= Duration::from_secs(100),
            "{wait:?}"
        );
        let mut h = HeaderMap::new();
        let reset = later
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert("ratelimit-reset", HeaderValue::from(reset));
        let wait = retry_after(StatusCode::TOO_MANY_REQUESTS, &h).unwrap();
        assert!(
            wait > Duration::from_secs(95) && wait <= Duration::from_secs(100),
            "{wait:?}"
        );
        assert_eq!(retry_after(StatusCode::BAD_GATEWAY, &h), None);
    }

    #[tokio::test]
    async fn a_forge_that_accepts_and_never_answers_fails_within_the_read_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let retry = RetryPolicy {
            read_timeout: Duration::from_millis(500),
            ..fast(0)
        };
        let c = client_with(Url::parse(&format!("http://{addr}")).unwrap(), retry);
        let started = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(30), c.get("version", &[]))
            .await
            .expect("the client gives up by itself")
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    }

    /// A forge reading an upload at most `bytes_per_read` bytes every `pause`, answering `{}` once
    /// the request's body ends (its size from `content-length`); `stop_after` bytes, it stops reading.
    async fn slow_reader(bytes_per_read: usize, pause: Duration, stop_after: usize) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; bytes_per_read];
                    let mut want = None;
                    loop {
                        if got.len() >= stop_after {
                            // Holds the connection without reading (a stalled upload).
                            tokio::time::sleep(Duration::from_secs(600)).await;
                            return;
                        }
                        let n = match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        got.extend_from_slice(&buf[..n]);
                        if want.is_none()
                            && let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
                        {
                            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            want = Some(end + 4 + len);
                        }
                        if want.is_some_and(|w| got.len() >= w) {
                            let _ = socket
                                .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}")
                                .await;
                            return;
                        }
                        tokio::time::sleep(pause).await;
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}")).unwrap()
    }

    #[tokio::test]
    async fn an_archive_upload_may_outlast_the_attempt_deadline_while_it_moves() {
        let file = tempfile::NamedTempFile::new().unwrap();
        // Far more than the sockets' buffers hold, so the file is read as fast as the forge takes it.
        std::fs::write(file.path(), vec![7u8; 64 << 20]).unwrap();
        // At most 25 MiB/s: over 2.5 s, against an attempt deadline of 1 s and a read deadline of 2 s.
        let url = slow_reader(1 << 20, Duration::from_millis(40), usize::MAX).await;
        let retry = RetryPolicy {
            read_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(1),
            ..fast(0)
        };
        let c = client_with(url, retry);
        let started = Instant::now();
        let answer = c
            .post_archive(
                "projects/import",
                &[("path", "p".into())],
                file.path(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({}));
        assert!(
            started.elapsed() > Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn an_archive_upload_the_forge_stops_taking_fails_at_the_read_deadline() {
        let file = tempfile::NamedTempFile::new().unwrap();
        // Larger than what the sockets' buffers take on their own.
        std::fs::write(file.path(), vec![7u8; 64 << 20]).unwrap();
        let url = slow_reader(64 * 1024, Duration::from_millis(100), 256 * 1024).await;
        let retry = RetryPolicy {
            read_timeout: Duration::from_millis(800),
            ..fast(0)
        };
        let c = client_with(url, retry);
        let started = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(60),
            c.post_archive("projects/import", &[], file.path(), false),
        )
        .await
        .expect("the client gives up by itself")
        .unwrap_err();
        assert!(err.to_string().contains("the upload stalled"), "{err}");
        assert!(err.is_unreachable(), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_forge_that_trickles_its_answer_fails_within_the_attempt_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
                        .iter()
                        .cycle()
                    {
                        if socket.write_all(&[*byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
        });
        let retry = RetryPolicy {
            read_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(2),
            ..fast(0)
        };
        let c = client_with(Url::parse(&format!("http://{addr}")).unwrap(), retry);
        let started = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(30), c.get("version", &[]))
            .await
            .expect("the client gives up by itself")
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_names_both_urls() {
        let router = Router::new().route(
            "/api/v4/version",
            get(|| async {
                (
                    S::FOUND,
                    [("location", "https://gitlab.example.com/api/v4/version")],
                    "",
                )
            }),
        );
        let base = serve(router).await;
        let c = client(base.clone(), 3);
        let err = c.get("version", &[]).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&base_string(&base))
                && text.contains("GET /api/v4/version")
                && text.contains("https://gitlab.example.com/api/v4/version")
                && text.contains("(https://gitlab.example.com, if that is the same GitLab)"),
            "{text}"
        );
        assert!(
            !err.is_unreachable(),
            "a redirect is the user's to fix, not a pause"
        );
    }

    #[tokio::test]
    async fn a_url_on_another_origin_never_gets_the_token() {
        let c = client(Url::parse("http://127.0.0.1:9").unwrap(), 0);
        let err = c
            .list_page(
                "groups",
                &[],
                Some("http://localhost:9/api/v4/groups?page=2"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Url(_)), "{err}");
        assert!(
            c.request(Method::GET, "http://localhost:9/api/v4/x")
                .is_err()
        );
        assert!(
            c.request(Method::GET, "http://127.0.0.1:9/api/v4/x")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn retry_after_is_honoured_and_a_forge_that_never_stops_refusing_ends_the_retries() {
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let router = Router::new().route(
            "/api/v4/version",
            get(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    (
                        S::TOO_MANY_REQUESTS,
                        [("retry-after", "0")],
                        r#"{"message":"Retry later"}"#,
                    )
                }
            }),
        );
        // The rate-limit budget, not the error retries, bounds the waits.
        let retry = RetryPolicy {
            rate_limit_waits: 3,
            ..fast(0)
        };
        let c = client_with(serve(router).await, retry);
        let err = c.get("version", &[]).await.unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert!(
            err.is_unreachable(),
            "a forge that keeps refusing pauses the migration"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "one try and three waits, then it stops"
        );
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_and_a_refusal_is_not() {
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let router = Router::new()
            .route(
                "/api/v4/version",
                get(move || {
                    let h = h.clone();
                    async move {
                        if h.fetch_add(1, Ordering::SeqCst) < 2 {
                            (S::BAD_GATEWAY, "").into_response()
                        } else {
                            axum::Json(serde_json::json!({"version": "17.6.0"})).into_response()
                        }
                    }
                }),
            )
            .route(
                "/api/v4/user",
                get(|| async { (S::UNAUTHORIZED, r#"{"message":"401 Unauthorized"}"#) }),
            );
        let c = client(serve(router).await, 5);
        assert_eq!(c.get("version", &[]).await.unwrap()["version"], "17.6.0");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let err = c.get("user", &[]).await.unwrap_err();
        assert_eq!(
            (err.status(), err.message().as_str()),
            (Some(401), "401 Unauthorized")
        );
    }

    use axum::response::IntoResponse;
}

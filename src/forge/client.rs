//! The HTTP client of one forge instance: token, concurrency bound, retries and pagination.

use super::ForgeError;
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use url::Url;

/// How hard the client tries before it gives up on a request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_times: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_times: 8,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
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
    base: Url,
    token: SecretString,
    permits: Semaphore,
    retry: RetryPolicy,
    /// Set when the forge said its rate-limit budget is spent: no request leaves before then.
    paused_until: Mutex<Option<Instant>>,
}

impl ForgeClient {
    pub fn new(
        base: Url,
        token: SecretString,
        concurrency: usize,
        retry: RetryPolicy,
    ) -> Result<ForgeClient, ForgeError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("appliance/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ForgeError::Url(format!("cannot build an HTTP client: {e}")))?;
        Ok(ForgeClient {
            inner: Arc::new(Inner {
                http,
                base,
                token,
                permits: Semaphore::new(concurrency.max(1)),
                retry,
                paused_until: Mutex::new(None),
            }),
        })
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
        let url = self.api_url(path);
        Ok(self
            .send(Method::POST, &url, &[], Some(body), true, None)
            .await?
            .1)
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
                .inner
                .http
                .get(&url)
                .header("PRIVATE-TOKEN", self.inner.token.expose_secret())
                .send()
                .await
                .map_err(|e| network("GET", &url, &e, true))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            self.observe_rate_limit(&headers).await;
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
            Ok(out)
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
            let part =
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(filename.to_string());
            let form = reqwest::multipart::Form::new().part(field.to_string(), part);
            let resp = self
                .inner
                .http
                .request(method.clone(), &url)
                .header("PRIVATE-TOKEN", self.inner.token.expose_secret())
                .multipart(form)
                .send()
                .await
                .map_err(|e| network(&verb, &url, &e, !e.is_connect()))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            self.observe_rate_limit(&headers).await;
            let body = resp
                .bytes()
                .await
                .map_err(|e| network(&verb, &url, &e, true))?;
            if !status.is_success() {
                return Err(status_error(&verb, &url, status, &headers, &body));
            }
            serde_json::from_slice(&body).map_err(|e| ForgeError::Decode {
                url: url.clone(),
                message: e.to_string(),
            })
        };
        self.retrying(true, attempt).await
    }

    async fn permit(&self, url: &str) -> Result<tokio::sync::SemaphorePermit<'_>, ForgeError> {
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
        let pause = *self.inner.paused_until.lock().await;
        if let Some(until) = pause {
            tokio::time::sleep_until(until).await;
        }
        Ok(permit)
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

    /// Runs `attempt` with the client's retry policy: exponential backoff with jitter, the forge's
    /// `Retry-After` honoured while retries remain (a forge that keeps answering 429 ends as
    /// "unreachable": a paused, resumable migration), and only what is safe to repeat repeated.
    async fn retrying<T, F, Fut>(&self, idempotent: bool, attempt: F) -> Result<T, ForgeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ForgeError>>,
    {
        attempt
            .retry(self.policy())
            .sleep(tokio::time::sleep)
            .when(|e: &ForgeError| retryable(e, idempotent))
            .adjust(|e: &ForgeError, planned| match e {
                ForgeError::Status {
                    retry_after: Some(wait),
                    ..
                } => planned.map(|p| p.max((*wait).min(Duration::from_secs(600)))),
                _ => planned,
            })
            .notify(|e: &ForgeError, wait| {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "retrying");
            })
            .await
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
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .header("PRIVATE-TOKEN", self.inner.token.expose_secret());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
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
        self.observe_rate_limit(&headers).await;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| network(method.as_str(), url, &e, true))?;
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

    /// GitLab announces its budget with `RateLimit-Remaining` and `RateLimit-Reset` (epoch seconds):
    /// when nothing remains, every request of this client waits for the reset instead of being refused.
    async fn observe_rate_limit(&self, headers: &HeaderMap) {
        let remaining = header_u64(headers, "ratelimit-remaining");
        let reset = header_u64(headers, "ratelimit-reset");
        if let (Some(0), Some(reset)) = (remaining, reset) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let wait = Duration::from_secs(reset.saturating_sub(now).min(600));
            *self.inner.paused_until.lock().await = Some(Instant::now() + wait);
        }
    }
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
        retry_after: header_u64(headers, "retry-after").map(Duration::from_secs),
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
        };
        ForgeClient::new(url, SecretString::from("t".to_string()), 2, retry).unwrap()
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
        let c = client(serve(router).await, 3);
        let err = c.get("version", &[]).await.unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert!(
            err.is_unreachable(),
            "a forge that keeps refusing pauses the migration"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "one try and three retries, then it stops"
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

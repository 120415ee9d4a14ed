//! GitLab's error bodies, status by status. GitLab answers a failed parameter validation (Grape) with
//! `{"error": "..."}` and everything else with `{"message": "..."}`, and clients such as python-gitlab
//! read whichever is there, so the shape matters as much as the code. Messages never carry a token:
//! the handlers that see one scrub it before an error is built.

use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Secrets shorter than this are redacted only where they stand alone as a word.
const WHOLE_WORD_BELOW: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a parameter is missing or invalid, in Grape's words (`configuration is missing, ...`).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or not the appliance's token.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// 404 for a bulk import or entity id that does not exist (GitLab's `RecordNotFound` rescue).
    #[error("404 Not found")]
    RecordNotFound,
    /// 404 from GitLab's `not_found!` helper, which the cancel endpoint uses (note the capital F).
    #[error("404 Not Found")]
    NotFound,
    /// 404 for a path no endpoint serves (GitLab's catch-all route answers with `error`).
    #[error("404 Not Found")]
    NoRoute,
    /// 405 for a known path with the wrong method.
    #[error("405 Not Allowed")]
    MethodNotAllowed,
    /// 415: a body that is neither JSON nor a form.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well formed but cannot be carried out (GitLab's `BulkImports::Error`).
    #[error("{0}")]
    Unprocessable(String),
    /// 503: the appliance cannot read or write its store, or cannot reach the destination instance.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RecordNotFound | ApiError::NotFound | ApiError::NoRoute => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Replaces every occurrence of `secret` in the message, so that a forge which echoes the token it
    /// was given cannot make the appliance repeat it. A secret shorter than `WHOLE_WORD_BELOW` is
    /// replaced only where it stands alone (not inside a longer run of letters, digits, `-`, `_`, `.`):
    /// a one-letter "token" must not turn every word that contains the letter into `[REDACTED]`.
    pub fn redact(self, secret: &str) -> ApiError {
        if secret.is_empty() {
            return self;
        }
        let scrub = |m: String| {
            if secret.len() >= WHOLE_WORD_BELOW {
                return m.replace(secret, "[REDACTED]");
            }
            let word = |c: Option<char>| {
                c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            let mut out = String::with_capacity(m.len());
            let mut from = 0;
            for (at, _) in m.match_indices(secret) {
                let end = at + secret.len();
                if word(m[..at].chars().next_back()) || word(m[end..].chars().next()) {
                    continue;
                }
                out.push_str(&m[from..at]);
                out.push_str("[REDACTED]");
                from = end;
            }
            out.push_str(&m[from..]);
            out
        };
        match self {
            ApiError::BadRequest(m) => ApiError::BadRequest(scrub(m)),
            ApiError::Unprocessable(m) => ApiError::Unprocessable(scrub(m)),
            ApiError::Unavailable(m) => ApiError::Unavailable(scrub(m)),
            other => other,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::RecordNotFound,
            other => {
                tracing::error!(error = %other, "the API cannot use the store");
                ApiError::Unavailable(format!("503 Service Unavailable: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::BadRequest(_)
            | ApiError::NoRoute
            | ApiError::MethodNotAllowed
            | ApiError::UnsupportedMediaType(_) => {
                json!({ "error": self.to_string() })
            }
            _ => json!({ "message": self.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

/// Gives every error answer GitLab's JSON shape. What the handlers refuse already is (`ApiError`);
/// this catches what the framework refuses before a handler runs (a body over the limit, a path that
/// is not UTF-8, any future extractor's plain-text rejection) and answers `{"message": "<code>
/// <reason>"}`, as GitLab's own middleware and error pages do, with the same status code.
pub async fn gitlab_shaped(resp: Response) -> Response {
    let status = resp.status();
    let json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let reason = match status {
        // Rack's (and GitLab's) reason phrase; the `http` crate says "Payload Too Large".
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        other => other.canonical_reason().unwrap_or("Error"),
    };
    let mut shaped = (
        status,
        Json(json!({ "message": format!("{} {reason}", status.as_u16()) })),
    )
        .into_response();
    // Headers such as `Allow` or `Retry-After` still say what to do next.
    for (name, value) in resp.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            shaped.headers_mut().append(name, value.clone());
        }
    }
    shaped
}

/// The fallback of the router: GitLab's catch-all route.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn validation_errors_use_the_error_key_and_others_the_message_key() {
        let (s, b) = body_of(ApiError::BadRequest("configuration is missing".into())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b, json!({"error": "configuration is missing"}));
        let (s, b) = body_of(ApiError::Unauthorized).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(b, json!({"message": "401 Unauthorized"}));
        let (s, b) = body_of(ApiError::RecordNotFound).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b, json!({"message": "404 Not found"}));
        let (_, b) = body_of(ApiError::NoRoute).await;
        assert_eq!(b, json!({"error": "404 Not Found"}));
    }

    #[test]
    fn a_store_not_found_is_a_404_and_other_store_errors_a_503() {
        assert!(matches!(
            ApiError::from(StoreError::NotFound("bulk import 7".into())),
            ApiError::RecordNotFound
        ));
        let e = ApiError::from(StoreError::Task("panicked".into()));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.to_string().contains("panicked"), "{e}");
    }

    #[test]
    fn redact_removes_every_occurrence_of_the_secret() {
        let e = ApiError::Unprocessable("token glpat-x refused; glpat-x again".into())
            .redact("glpat-x");
        assert_eq!(e.to_string(), "token [REDACTED] refused; [REDACTED] again");
        let e = ApiError::Unprocessable("nothing".into()).redact("");
        assert_eq!(e.to_string(), "nothing");
    }

    #[test]
    fn a_short_secret_is_redacted_only_where_it_stands_alone() {
        let e = ApiError::Unprocessable("Import failed: the token t was refused (t)".into())
            .redact("t");
        assert_eq!(
            e.to_string(),
            "Import failed: the token [REDACTED] was refused ([REDACTED])"
        );
        let e = ApiError::Unprocessable("abc=abc; xabc".into()).redact("abc");
        assert_eq!(e.to_string(), "[REDACTED]=[REDACTED]; xabc");
    }
}

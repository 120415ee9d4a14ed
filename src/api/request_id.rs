//! A request id on every API request: the client's `X-Request-Id` when it sends a sensible one (what a
//! proxy in front of the appliance set), else a new one. It is answered in `X-Request-Id`, and every log
//! line of the request carries it, since the request runs inside a `request` span holding it; one line
//! at INFO says how the request ended. Only the method and the path are logged, never the query, a
//! header or the body (a token could be in any of them).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use std::time::Instant;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
const MAX_LEN: usize = 128;

/// A client's id is kept when it is 1 to 128 letters, digits, `-`, `_`, `.` or `:` (uuids, hex, a
/// proxy's ids); anything else could forge log lines, and is replaced.
fn acceptable(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 32 random hex digits.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The id of a request: the client's when acceptable, else a new one.
pub fn of(req: &Request) -> String {
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(generate, str::to_string)
}

/// Middleware (the outermost layer): runs the request in a span with its id, and answers the id.
pub async fn tag(req: Request, next: Next) -> Response {
    let id = of(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: Option<&str>) -> Request {
        let mut b = Request::builder().uri("/api/v4/bulk_imports");
        if let Some(id) = id {
            b = b.header("x-request-id", id);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_sensible_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(of(&request(Some("req-42.a_b:c"))), "req-42.a_b:c");
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(of(&request(Some(uuid))), uuid);
        for bad in ["", "two words", "a\"b", "x".repeat(129).as_str(), "é"] {
            let got = of(&request(Some(bad)));
            assert_ne!(got, bad);
            assert_eq!(got.len(), 32, "{got}");
            assert!(got.bytes().all(|b| b.is_ascii_hexdigit()), "{got}");
        }
        let (a, b) = (of(&request(None)), of(&request(None)));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}

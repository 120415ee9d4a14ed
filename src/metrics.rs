//! Prometheus metrics, served by `appliance serve --metrics-listen ADDR` at `/metrics` on a listener of
//! their own (OpenMetrics text format, no token: nothing in it is a secret).
//!
//! Two kinds of figures:
//! - counters of this process, kept here and counted by `src/forge/client.rs` where each answer of a
//!   forge arrives: requests by forge host and status class, retries, rate-limit waits, bytes moved;
//! - totals read from the store at each scrape (`Store::totals`): records by relation and outcome
//!   (imported, failed, skipped) and bulk imports by status, the same numbers the reports and the API
//!   show, so they survive restarts and never disagree with a report.
//!
//! Labels are forge hosts (`host` or `host:port`, never a URL with credentials), relation names,
//! status classes and statuses: never a token, a path or anything a request carried.

use crate::engine::Engine;
use crate::store::StoreError;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, LazyLock};

type Labels = Vec<(&'static str, String)>;

/// The counters of this process (every forge client of every migration counts into them).
struct ForgeCounters {
    requests: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    rate_limit_waits: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
}

static FORGE: LazyLock<ForgeCounters> = LazyLock::new(|| ForgeCounters {
    requests: Family::default(),
    retries: Family::default(),
    rate_limit_waits: Family::default(),
    bytes: Family::default(),
});

/// The class of an HTTP status as the `status` label says it: `2xx`, `3xx`, `4xx`, `5xx`.
fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// A forge answered a request with `status`.
pub fn forge_answered(host: &str, status: u16) {
    FORGE
        .requests
        .get_or_create(&vec![
            ("host", host.to_string()),
            ("status", status_class(status)),
        ])
        .inc();
}

/// A request to a forge got no answer (refused connection, timeout, lost connection), or lost its
/// answer's body (then its status was counted too).
pub fn forge_unanswered(host: &str) {
    FORGE
        .requests
        .get_or_create(&vec![("host", host.to_string()), ("status", "none".into())])
        .inc();
}

/// A request to a forge is sent again after an error.
pub fn forge_retry(host: &str) {
    FORGE
        .retries
        .get_or_create(&vec![("host", host.to_string())])
        .inc();
}

/// A forge asked to wait (a 429, or its rate-limit budget spent) and every request to it now waits.
pub fn forge_rate_limit_wait(host: &str) {
    FORGE
        .rate_limit_waits
        .get_or_create(&vec![("host", host.to_string())])
        .inc();
}

/// Which way bytes moved between the appliance and a forge.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    /// Request bodies (records written, files uploaded).
    Sent,
    /// Response bodies (records read, files and export batches downloaded).
    Received,
}

/// `n` bytes of bodies moved to or from a forge.
pub fn forge_bytes(host: &str, direction: Direction, n: usize) {
    if n == 0 {
        return;
    }
    let direction = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    FORGE
        .bytes
        .get_or_create(&vec![
            ("host", host.to_string()),
            ("direction", direction.into()),
        ])
        .inc_by(n as u64);
}

/// The whole exposition: the process's counters, and the store's totals read now.
pub fn render(engine: &Engine) -> Result<String, StoreError> {
    let totals = engine.store().totals()?;
    let mut registry = Registry::default();
    registry.register(
        "appliance_forge_requests",
        "Requests to forges by host and status class (`none`: no answer, or its body was lost)",
        FORGE.requests.clone(),
    );
    registry.register(
        "appliance_forge_retries",
        "Requests to forges sent again after an error",
        FORGE.retries.clone(),
    );
    registry.register(
        "appliance_forge_rate_limit_waits",
        "Times a forge asked to wait (429 or RateLimit-Remaining: 0)",
        FORGE.rate_limit_waits.clone(),
    );
    registry.register_with_unit(
        "appliance_forge",
        "Bytes of request and response bodies moved to and from forges",
        Unit::Bytes,
        FORGE.bytes.clone(),
    );

    let limited = Family::<Labels, Gauge>::default();
    for wait in engine.rate_limit_waits() {
        limited.get_or_create(&vec![("host", wait.host)]).set(1);
    }
    registry.register(
        "appliance_forge_rate_limited",
        "1 for each forge every request to which waits right now",
        limited,
    );

    let records = Family::<Labels, Counter>::default();
    for (outcome, by_relation) in [
        ("imported", &totals.imported),
        ("failed", &totals.failed),
        ("skipped", &totals.skipped),
    ] {
        for (relation, n) in by_relation {
            records
                .get_or_create(&vec![
                    ("relation", relation.clone()),
                    ("outcome", outcome.into()),
                ])
                .inc_by(*n);
        }
    }
    registry.register(
        "appliance_records",
        "Records of every migration in the store by relation and outcome (imported, failed, skipped)",
        records,
    );

    let bulk_imports = Family::<Labels, Gauge>::default();
    for (status, n) in &totals.bulk_imports {
        bulk_imports
            .get_or_create(&vec![("status", status.to_string())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register(
        "appliance_bulk_imports",
        "Bulk imports in the store by status",
        bulk_imports,
    );

    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    Ok(out)
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let scrape = move || {
        let engine = engine.clone();
        async move {
            match crate::engine::blocking(move || render(&engine)).await {
                Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the store for /metrics");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cannot read the store: {e}\n"),
                    )
                        .into_response()
                }
            }
        }
    };
    let router = axum::Router::new().route("/metrics", axum::routing::get(scrape));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(201), "2xx");
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}

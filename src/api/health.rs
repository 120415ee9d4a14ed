//! `/-/health` and `/-/readiness`, where GitLab serves its own: probes for a load balancer, systemd or
//! a monitoring system. Neither needs the API token (GitLab's are token-free too) and neither says
//! anything a caller could use against the appliance: no paths, no versions, no URLs.

use super::ApiState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The process answers HTTP: 200 `{"status":"ok"}`, whatever the state of the store or destination.
pub async fn health() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

/// 200 `{"status":"ok"}` when the store answers and the engine accepts new migrations; otherwise 503
/// `{"status":"failed","message":...}` with the reason (the reason is logged at WARN too).
pub async fn readiness(State(state): State<ApiState>) -> Response {
    match state.engine.readiness() {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "failed", "message": reason })),
            )
                .into_response()
        }
    }
}

//! The HTTP face of the appliance: GitLab's own bulk_imports REST API under `/api/v4`, so that
//! existing scripts and python-gitlab drive the appliance as they would drive GitLab. This module
//! owns routing, authentication, GitLab's pagination and error bodies; the engine does the work.
//! It never talks to a forge itself, and never puts a source access token in a response or a log.

pub mod auth;
mod bulk_imports;
pub mod error;
mod form;
mod health;
pub mod pagination;
mod params;
pub mod render;

use crate::engine::Engine;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use secrecy::SecretString;
use std::future::Future;
use std::sync::Arc;

pub use auth::{TokenOrigin, load_or_create_token};
pub use bulk_imports::parse_create_request;
pub use params::CreateParams;

/// The largest request body accepted (axum's default, stated here): a larger one answers GitLab's
/// `413 Request Entity Too Large`. A bulk import request with a user map of tens of thousands of
/// lines fits.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What every handler needs: the engine, and the token clients must present.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Arc<Engine>,
    pub token: SecretString,
}

/// Every endpoint of the bulk_imports API; the token is checked before anything else, as GitLab's
/// `authenticate!` runs before parameter validation. Every answer, the framework's refusals included,
/// is GitLab's JSON shape (`error::gitlab_shaped`). `/-/health` and `/-/readiness` are outside the
/// token check, as GitLab's are.
pub fn router(state: ApiState) -> Router {
    let probes = Router::new()
        .route("/-/health", get(health::health))
        .route("/-/readiness", get(health::readiness));
    Router::new()
        .route(
            "/api/v4/bulk_imports",
            get(bulk_imports::list).post(bulk_imports::create),
        )
        .route(
            "/api/v4/bulk_imports/entities",
            get(bulk_imports::list_all_entities),
        )
        .route("/api/v4/bulk_imports/{import_id}", get(bulk_imports::show))
        .route(
            "/api/v4/bulk_imports/{import_id}/entities",
            get(bulk_imports::list_entities),
        )
        .route(
            "/api/v4/bulk_imports/{import_id}/entities/{entity_id}",
            get(bulk_imports::show_entity),
        )
        .route(
            "/api/v4/bulk_imports/{import_id}/entities/{entity_id}/failures",
            get(bulk_imports::entity_failures),
        )
        .route(
            "/api/v4/bulk_imports/{import_id}/cancel",
            post(bulk_imports::cancel),
        )
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .merge(probes)
        .fallback(error::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(error::gitlab_shaped))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets requests in flight finish.
/// Tests bind `127.0.0.1:0` and pass a oneshot receiver as `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the bulk_imports API");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

//! The HTTP face of the appliance: GitLab's own bulk_imports REST API under `/api/v4`, so that
//! existing scripts and python-gitlab drive the appliance as they would drive GitLab. This module
//! owns routing, authentication, GitLab's pagination and error bodies; the engine does the work.
//! It never talks to a forge itself, and never puts a source access token in a response or a log.

pub mod auth;
pub(crate) mod bulk_imports;
pub mod error;
mod form;
mod health;
pub mod openapi;
pub mod pagination;
mod params;
pub mod render;
pub mod request_id;

use crate::engine::Engine;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use secrecy::SecretString;
use std::future::Future;
use std::sync::Arc;

pub use auth::{TokenOrigin, load_or_create_token};
pub use bulk_imports::parse_create_request;
pub(crate) use bulk_imports::start as start_bulk_import;
pub use params::CreateParams;
pub(crate) use params::create_params;

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

/// One route of the API: its method, its path (axum's syntax, which is OpenAPI's: `{import_id}`), and
/// whether it asks for the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub token: bool,
}

/// The routes being put together, and their list: the router and the list come from the same calls,
/// so the list (which the OpenAPI drift test compares with `openapi.json`) cannot miss a route.
#[derive(Default)]
struct Routes {
    with_token: Router<ApiState>,
    public: Router<ApiState>,
    list: Vec<Route>,
}

impl Routes {
    fn add(mut self, method: Method, path: &'static str, to: MethodRouter<ApiState>) -> Self {
        self.with_token = self.with_token.route(path, to);
        self.list.push(Route {
            method,
            path,
            token: true,
        });
        self
    }

    fn get<H: Handler<T, ApiState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, get(handler))
    }

    fn post<H: Handler<T, ApiState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, post(handler))
    }

    /// A route anyone may `GET`, without the token (the API's description).
    fn public_get<H: Handler<T, ApiState>, T: 'static>(
        mut self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.public = self.public.route(path, get(handler));
        self.list.push(Route {
            method: Method::GET,
            path,
            token: false,
        });
        self
    }
}

/// Every route the API serves.
fn routes() -> Routes {
    Routes::default()
        .get("/api/v4/bulk_imports", bulk_imports::list)
        .post("/api/v4/bulk_imports", bulk_imports::create)
        .get(
            "/api/v4/bulk_imports/entities",
            bulk_imports::list_all_entities,
        )
        .get("/api/v4/bulk_imports/{import_id}", bulk_imports::show)
        .get(
            "/api/v4/bulk_imports/{import_id}/entities",
            bulk_imports::list_entities,
        )
        .get(
            "/api/v4/bulk_imports/{import_id}/entities/{entity_id}",
            bulk_imports::show_entity,
        )
        .get(
            "/api/v4/bulk_imports/{import_id}/entities/{entity_id}/failures",
            bulk_imports::entity_failures,
        )
        .get(
            "/api/v4/bulk_imports/{import_id}/unmapped_users",
            bulk_imports::unmapped_users,
        )
        .post(
            "/api/v4/bulk_imports/{import_id}/cancel",
            bulk_imports::cancel,
        )
        .public_get(openapi::PATH, openapi::document)
}

/// The method and path of every route the router serves (for the OpenAPI drift test).
pub fn route_list() -> Vec<Route> {
    routes().list
}

/// Every endpoint of the bulk_imports API, and the web page at `/`; the token is checked before anything else, as GitLab's
/// `authenticate!` runs before parameter validation (`openapi.json` alone is public). Every answer,
/// the framework's refusals included, is GitLab's JSON shape (`error::gitlab_shaped`), and carries
/// the request's id (`request_id`).
pub fn router(state: ApiState) -> Router {
    // `/-/health` and `/-/readiness` are outside the token check, as GitLab's are, and outside the
    // API's description.
    let probes = Router::new()
        .route("/-/health", get(health::health))
        .route("/-/readiness", get(health::readiness));
    let routes = routes();
    let api = routes
        .with_token
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .merge(
            routes
                .public
                .method_not_allowed_fallback(error::method_not_allowed),
        )
        .merge(probes)
        .fallback(error::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(error::gitlab_shaped));
    // The web page (`crate::ui`) is merged after the API's layers, so its HTML answers are not
    // turned into GitLab's JSON errors; it is outside `/api/v4` and outside the API's description.
    api.merge(crate::ui::router(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(request_id::tag))
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

/// [`serve`] over TLS that `serve` terminates itself: every request came in over https, which the
/// page's cookie (`Secure`) and sign-in page go by (`crate::ui::session::over_tls`).
pub async fn serve_tls(
    listener: crate::tls::TlsListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
        tracing::info!(%addr, "serving the bulk_imports API over TLS");
    }
    let app = router(state).layer(axum::middleware::map_request(
        crate::ui::session::mark_direct_tls,
    ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

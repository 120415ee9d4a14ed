//! The web page `appliance serve` answers at `/`: GitLab's import history (source and destination
//! paths, start date, status with "Partially completed", "Show errors", "View details" with each
//! relation's counts and what was not migrated and why), kept current while a migration runs; the
//! bundles in the bundle directory with their verify status; forms that start a migration or a replay.
//!
//! Server-rendered HTML (`views`, escaped by `html`), one stylesheet and one small script served from
//! the binary (no build step, nothing fetched from elsewhere: it works air-gapped). Sign-in and form
//! protection are in `session`. The data comes from the store through the API's own bodies
//! (`api::render`), and migrations start through the API's own path (`api::start_bulk_import`), so
//! the page and `POST /api/v4/bulk_imports` validate, refuse and record alike. Outside `/api/v4`, so
//! not in the OpenAPI document.

pub mod bundles;
pub mod html;
pub mod session;
pub mod views;

use crate::api::error::ApiError;
use crate::api::{ApiState, create_params, render, start_bulk_import};
use crate::engine::blocking;
use crate::store::{ListQuery, SortOrder, Store, StoreError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bundles::{Verdict, Verdicts};
use html::{Frame, esc, notice, page};
use serde_json::{Value, json};
use session::{CsrfKey, Sessions};
use std::collections::HashMap;
use views::{EntityView, Migration, StartForm};

/// Migrations on one page of the history.
const PER_PAGE: u64 = 20;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// The page's own policy: its script and stylesheet, from here only; no frames, no other site.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Clone)]
struct UiState {
    api: ApiState,
    csrf: CsrfKey,
    sessions: Sessions,
    verdicts: Verdicts,
}

/// The page's routes, for `api::router` to serve beside the API.
pub fn router<S>(api: ApiState) -> Router<S> {
    let state = UiState {
        api,
        csrf: CsrfKey::random(),
        sessions: Sessions::default(),
        verdicts: Verdicts::default(),
    };
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/imports/{id}", get(details))
        .route("/imports/{id}/unmapped-users.csv", get(unmapped_users))
        .route("/imports/{id}/cancel", post(cancel_migration))
        .route("/fragments/history", get(history_fragment))
        .route("/fragments/imports/{id}", get(details_fragment))
        .route("/migrations", post(start_migration))
        .route("/replays", post(start_replay))
        .route("/bundles/verify", post(verify_bundle))
        .route("/assets/ui.css", get(|| async { asset("text/css", CSS) }))
        .route(
            "/assets/ui.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("max-age=300")),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with
    // the page's own form posts, which the cross-site check must refuse.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn html_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

impl UiState {
    fn signed_in(&self, headers: &HeaderMap) -> bool {
        self.session(headers).is_some()
    }

    /// The open session the request's cookie names.
    fn session(&self, headers: &HeaderMap) -> Option<String> {
        session::signed_in(headers, &self.api.token, &self.sessions)
    }

    fn form_token(&self) -> String {
        self.csrf.form_token(&self.api.token)
    }

    fn destination(&self) -> Option<String> {
        self.api.engine.destination_url().map(|u| u.to_string())
    }

    /// A whole page for a signed-in user.
    fn page(&self, status: StatusCode, title: &str, main: &str, refresh: bool) -> Response {
        let csrf = self.form_token();
        let dest = self.destination();
        html_response(
            status,
            page(
                &Frame {
                    title,
                    csrf: Some(&csrf),
                    destination: dest.as_deref(),
                    refresh_without_script: refresh,
                },
                main,
            ),
        )
    }

    /// A page that only says what went wrong and where to go on.
    fn message(&self, status: StatusCode, title: &str, text: &str, signed_in: bool) -> Response {
        let main = format!(
            "<h1>{}</h1>\n{}<p><a href=\"/\">Back to the import history</a></p>\n",
            esc(title),
            notice(true, text)
        );
        if signed_in {
            self.page(status, title, &main, false)
        } else {
            html_response(
                status,
                page(
                    &Frame {
                        title,
                        csrf: None,
                        destination: None,
                        refresh_without_script: false,
                    },
                    &main,
                ),
            )
        }
    }

    fn store_error(&self, e: ApiError) -> Response {
        tracing::error!(error = %e, "the page could not read the store");
        self.message(
            e.status(),
            "Cannot read the migrations",
            &format!("The appliance could not read its store: {e}. Try again; if it persists, see the service's log."),
            true,
        )
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded`); the last of a repeated name wins.
fn fields(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn query_fields(uri: &Uri) -> HashMap<String, String> {
    fields(uri.query().unwrap_or("").as_bytes())
}

fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> &'a str {
    f.get(name).map(|s| s.trim()).unwrap_or("")
}

/// Checks a form that changes something: from this page (not another site), signed in, with the
/// session's form token. Some is the answer to send instead.
fn guard(state: &UiState, headers: &HeaderMap, f: &HashMap<String, String>) -> Option<Response> {
    if let Some(why) = session::cross_site(headers) {
        tracing::warn!("a form post was refused: {why}");
        return Some(state.message(
            StatusCode::FORBIDDEN,
            "Refused",
            &format!("Refused: {why}. Use the appliance's own page."),
            false,
        ));
    }
    if !state.signed_in(headers) {
        return Some(see_other("/login"));
    }
    if !session::form_token_ok(
        &state.csrf,
        &state.api.token,
        f.get("csrf").map(String::as_str),
    ) {
        return Some(state.message(
            StatusCode::FORBIDDEN,
            "Form out of date",
            "This form is out of date (the appliance restarted since the page was loaded). Reload the page and send it again.",
            true,
        ));
    }
    None
}

/// A request from a signed-in browser; any other is refused as `R` says.
struct SignedIn<R: Refusal = Page>(std::marker::PhantomData<R>);

/// A request for a fragment the page's script fetches (`SignedIn<Fragment>`).
type SignedInFragment = SignedIn<Fragment>;

/// How a request from a browser that is not signed in is answered.
trait Refusal {
    fn refusal() -> Response;
}

/// A page: to the sign-in page.
struct Page;

impl Refusal for Page {
    fn refusal() -> Response {
        see_other("/login")
    }
}

/// A fragment: 401, which the page's script answers by reloading (and so reaching the sign-in
/// page).
struct Fragment;

impl Refusal for Fragment {
    fn refusal() -> Response {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

impl<R: Refusal> axum::extract::FromRequestParts<UiState> for SignedIn<R> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &UiState,
    ) -> Result<Self, Response> {
        if state.signed_in(&parts.headers) {
            Ok(SignedIn(std::marker::PhantomData))
        } else {
            Err(R::refusal())
        }
    }
}

/// The migration id of a page's path; anything but a number names no migration.
struct MigrationId(u64);

impl axum::extract::FromRequestParts<UiState> for MigrationId {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &UiState,
    ) -> Result<Self, Response> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        id.parse().map(MigrationId).map_err(|_| {
            state.message(
                StatusCode::NOT_FOUND,
                "No such migration",
                &format!("There is no migration {id}."),
                true,
            )
        })
    }
}

/// One migration with its entities, their counts, errors and records left out.
fn load_migration(store: &Store, bulk: crate::model::BulkImport) -> Result<Migration, StoreError> {
    let mut entities = Vec::new();
    for e in store.entities_of(bulk.id)? {
        entities.push(EntityView {
            body: render::entity(&e, &store.trackers(e.id)?, &store.failures(e.id)?),
            skipped: store.skipped(e.id)?.iter().map(render::failure).collect(),
        });
    }
    Ok(Migration {
        body: render::bulk_import(&bulk),
        bulk,
        entities,
    })
}

/// The live region of the history: a page of migrations and the bundles.
async fn live(state: &UiState, page: u64) -> Result<(String, bool), ApiError> {
    let store = state.api.engine.store().clone();
    let (migrations, total) = blocking(move || {
        let listed = store.list_bulk_imports(&ListQuery {
            status: None,
            sort: SortOrder::Desc,
            page,
            per_page: PER_PAGE,
        })?;
        let mut out = Vec::with_capacity(listed.items.len());
        for bulk in listed.items {
            out.push(load_migration(&store, bulk)?);
        }
        Ok::<_, ApiError>((out, listed.total))
    })
    .await?;
    let dir = state.api.engine.bundle_dir().to_path_buf();
    let listed = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || bundles::list(&dir))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    };
    let on_disk = match listed {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list the bundle directory");
            Vec::new()
        }
    };
    let with_verdicts: Vec<(bundles::OnDisk, Option<Verdict>)> = on_disk
        .into_iter()
        .map(|b| {
            let v = state.verdicts.get(&b);
            (b, v)
        })
        .collect();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let html = views::live(
        &migrations,
        page.min(pages),
        pages,
        &with_verdicts,
        &dir.display().to_string(),
        &state.form_token(),
    );
    let active = html.contains("data-active=\"true\"");
    Ok((html, active))
}

fn page_number(uri: &Uri) -> u64 {
    query_fields(uri)
        .get("page")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// The history page, with an optional notice and the start form's values.
async fn history_page(
    state: &UiState,
    page: u64,
    status: StatusCode,
    note: Option<(bool, String)>,
    form: &StartForm,
) -> Response {
    let (live, active) = match live(state, page).await {
        Ok(l) => l,
        Err(e) => return state.store_error(e),
    };
    let mut main = String::from("<h1 class=\"sr-only\">Migrations</h1>\n");
    if let Some((error, text)) = note {
        main.push_str(&notice(error, &text));
    }
    main.push_str(&live);
    main.push_str(&views::start_form(form, &state.form_token()));
    state.page(status, "Import history", &main, active)
}

async fn index(_: SignedIn, State(state): State<UiState>, uri: Uri) -> Response {
    let q = query_fields(&uri);
    let note = q
        .get("started")
        .and_then(|id| id.parse::<u64>().ok())
        .map(|id| (false, format!("Migration {id} started.")))
        .or_else(|| {
            q.get("verifying")
                .map(|name| (false, format!("Verifying {name}: its status is below.")))
        });
    history_page(
        &state,
        page_number(&uri),
        StatusCode::OK,
        note,
        &StartForm::default(),
    )
    .await
}

async fn history_fragment(_: SignedInFragment, State(state): State<UiState>, uri: Uri) -> Response {
    match live(&state, page_number(&uri)).await {
        Ok((html, _)) => html_response(StatusCode::OK, html),
        Err(e) => e.status().into_response(),
    }
}

async fn load_details(state: &UiState, id: u64) -> Result<Migration, ApiError> {
    let store = state.api.engine.store().clone();
    blocking(move || {
        let bulk = store.bulk_import(id)?;
        Ok::<_, ApiError>(load_migration(&store, bulk)?)
    })
    .await
}

async fn details(
    _: SignedIn,
    State(state): State<UiState>,
    MigrationId(id): MigrationId,
) -> Response {
    match load_details(&state, id).await {
        Ok(m) => {
            let title = format!("Migration {}", m.bulk.id);
            let main = views::details(&m, &state.form_token());
            state.page(StatusCode::OK, &title, &main, m.active())
        }
        Err(ApiError::RecordNotFound) => state.message(
            StatusCode::NOT_FOUND,
            "No such migration",
            &format!("There is no migration {id}."),
            true,
        ),
        Err(e) => state.store_error(e),
    }
}

/// The unmapped users of a migration as a user map to complete, for the signed-in browser.
async fn unmapped_users(
    _: SignedIn,
    State(state): State<UiState>,
    MigrationId(id): MigrationId,
) -> Response {
    let csv = crate::api::bulk_imports::unmapped_users_csv(&state.api, id).await;
    match csv.and_then(|csv| {
        crate::api::bulk_imports::csv_response(csv, &format!("unmapped-users-{id}.csv"))
    }) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The details page's cancel button: the API's cancel, then back to the details, which say
/// "Canceled" (or the status it ended with first: an ended migration keeps it).
async fn cancel_migration(
    State(state): State<UiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    // Before the id is read: one who is not signed in learns nothing about it.
    if let Some(refused) = guard(&state, &headers, &f) {
        return refused;
    }
    let no_such = |state: &UiState| {
        state.message(
            StatusCode::NOT_FOUND,
            "No such migration",
            &format!("There is no migration {id}."),
            true,
        )
    };
    let Ok(id) = id.parse::<u64>() else {
        return no_such(&state);
    };
    match state.api.engine.cancel(id).await {
        Ok(bulk) => {
            tracing::info!(
                bulk_import = id,
                status = bulk.status.as_str(),
                "cancel requested from the page"
            );
            see_other(&format!("/imports/{id}"))
        }
        Err(crate::engine::EngineError::Store(StoreError::NotFound(_))) => no_such(&state),
        Err(e) => {
            tracing::error!(bulk_import = id, error = %e, "cancel from the page failed");
            state.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not canceled",
                &format!("Migration {id} could not be canceled: {e}. Try again; if it persists, see the service's log."),
                true,
            )
        }
    }
}

async fn details_fragment(
    _: SignedInFragment,
    State(state): State<UiState>,
    MigrationId(id): MigrationId,
) -> Response {
    match load_details(&state, id).await {
        Ok(m) => html_response(StatusCode::OK, views::details(&m, &state.form_token())),
        Err(e) => e.status().into_response(),
    }
}

/// Whether the browser reaches us unencrypted from another machine (the sign-in page says so).
fn clear_text_remote(headers: &HeaderMap) -> bool {
    if session::over_tls(headers) {
        return false;
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    !(name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

fn login_response(status: StatusCode, message: Option<&str>, headers: &HeaderMap) -> Response {
    html_response(
        status,
        page(
            &Frame {
                title: "Sign in",
                csrf: None,
                destination: None,
                refresh_without_script: false,
            },
            &views::login(message, clear_text_remote(headers)),
        ),
    )
}

async fn login_page(State(state): State<UiState>, headers: HeaderMap) -> Response {
    if state.signed_in(&headers) {
        return see_other("/");
    }
    login_response(StatusCode::OK, None, &headers)
}

async fn login(State(state): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(why) = session::cross_site(&headers) {
        return login_response(
            StatusCode::FORBIDDEN,
            Some(&format!("Refused: {why}.")),
            &headers,
        );
    }
    let f = fields(&body);
    let token = field(&f, "token");
    if token.is_empty() {
        return login_response(
            StatusCode::BAD_REQUEST,
            Some("Enter the API token."),
            &headers,
        );
    }
    if !crate::api::auth::tokens_match(token, &state.api.token) {
        tracing::info!("sign-in to the page refused: not the API token");
        return login_response(
            StatusCode::UNAUTHORIZED,
            Some(
                "That is not this appliance's API token. Check where it comes from (below) and try again.",
            ),
            &headers,
        );
    }
    tracing::info!("signed in to the page");
    let id = state.sessions.open();
    let mut resp = see_other("/");
    resp.headers_mut().insert(
        SET_COOKIE,
        session::sign_in_cookie(
            &id,
            token,
            state.sessions.lifetime(),
            session::over_tls(&headers),
        ),
    );
    resp
}

async fn logout(State(state): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&body);
    if let Some(refused) = guard(&state, &headers, &f) {
        return refused;
    }
    // Closed here, so a copy of the cookie signs in no more.
    if let Some(id) = state.session(&headers) {
        state.sessions.close(&id);
    }
    tracing::info!("signed out of the page");
    let mut resp = see_other("/login");
    resp.headers_mut().insert(
        SET_COOKIE,
        session::sign_out_cookie(session::over_tls(&headers)),
    );
    resp
}

/// What the start form asks for, as the API's request body, so that the API's validation applies.
fn start_request(v: &StartForm, token: &str) -> Result<Value, String> {
    let mut missing = Vec::new();
    if v.source_url.is_empty() {
        missing.push("the source GitLab URL");
    }
    if token.is_empty() {
        missing.push("the source access token");
    }
    if v.source_full_path.is_empty() {
        missing.push("the full path on the source");
    }
    if v.entity_type == "project" && v.destination_namespace.is_empty() {
        missing.push("the destination group");
    }
    if !missing.is_empty() {
        return Err(format!("Enter {}.", missing.join(", ")));
    }
    let slug = if v.destination_slug.is_empty() {
        v.source_full_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        v.destination_slug.clone()
    };
    Ok(json!({
        "configuration": {"url": v.source_url, "access_token": token},
        "entities": [{
            "source_type": if v.entity_type == "project" { "project_entity" } else { "group_entity" },
            "source_full_path": v.source_full_path,
            "destination_slug": slug,
            "destination_namespace": v.destination_namespace,
            "migrate_projects": v.migrate_projects,
        }],
    }))
}

async fn start_migration(
    State(state): State<UiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    if let Some(refused) = guard(&state, &headers, &f) {
        return refused;
    }
    let form = StartForm {
        source_url: field(&f, "source_url").to_string(),
        entity_type: if field(&f, "entity_type") == "project" {
            "project".into()
        } else {
            "group".into()
        },
        source_full_path: field(&f, "source_full_path").trim_matches('/').to_string(),
        destination_namespace: field(&f, "destination_namespace")
            .trim_matches('/')
            .to_string(),
        destination_slug: field(&f, "destination_slug").to_string(),
        migrate_projects: field(&f, "migrate_projects") == "true",
    };
    let token = field(&f, "source_token");
    let request = match start_request(&form, token) {
        Ok(r) => r,
        Err(text) => return refused(&state, StatusCode::BAD_REQUEST, text, &form).await,
    };
    let params = match create_params(&request) {
        Ok(p) => p,
        Err(e) => {
            let e = e.redact(token);
            return refused(&state, e.status(), e.to_string(), &form).await;
        }
    };
    match start_bulk_import(&state.api, params, "the web page").await {
        Ok(bulk) => see_other(&format!("/?started={}#import-{}", bulk.id, bulk.id)),
        Err(e) => refused(&state, e.status(), e.to_string(), &form).await,
    }
}

/// The history page again, saying why a form was refused (the form keeps its values, not the token).
async fn refused(state: &UiState, status: StatusCode, text: String, form: &StartForm) -> Response {
    history_page(state, 1, status, Some((true, text)), form).await
}

/// The bundle on disk a form names, if it is there.
async fn named_bundle(state: &UiState, name: &str) -> Option<bundles::OnDisk> {
    let dir = state.api.engine.bundle_dir().to_path_buf();
    let list = tokio::task::spawn_blocking(move || bundles::list(&dir))
        .await
        .ok()?
        .ok()?;
    list.into_iter().find(|b| b.name == name)
}

async fn verify_bundle(State(state): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&body);
    if let Some(refused) = guard(&state, &headers, &f) {
        return refused;
    }
    let name = field(&f, "bundle");
    let Some(b) = named_bundle(&state, name).await else {
        return history_page(
            &state,
            1,
            StatusCode::NOT_FOUND,
            Some((
                true,
                format!("There is no bundle {name} in the bundle directory any more."),
            )),
            &StartForm::default(),
        )
        .await;
    };
    state
        .verdicts
        .start(state.api.engine.bundle_dir(), b.clone());
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("verifying", &b.label)
        .finish();
    see_other(&format!("/?{q}#bundles"))
}

async fn start_replay(State(state): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&body);
    if let Some(refused) = guard(&state, &headers, &f) {
        return refused;
    }
    let name = field(&f, "bundle");
    let namespace = field(&f, "destination_namespace").trim_matches('/');
    let slug = field(&f, "destination_slug");
    let form = StartForm::default();
    let roots = match named_bundle(&state, name).await {
        None => {
            return refused(
                &state,
                StatusCode::NOT_FOUND,
                format!("There is no bundle {name} in the bundle directory any more."),
                &form,
            )
            .await;
        }
        Some(b) => match state.verdicts.get(&b) {
            Some(Verdict::Intact { roots, .. }) => roots,
            _ => {
                return refused(
                    &state,
                    StatusCode::CONFLICT,
                    format!(
                        "Verify {} first: it changed or was never verified.",
                        b.label
                    ),
                    &form,
                )
                .await;
            }
        },
    };
    if namespace.is_empty() {
        return refused(
            &state,
            StatusCode::BAD_REQUEST,
            "Enter the destination group to replay into.".into(),
            &form,
        )
        .await;
    }
    let entities: Vec<Value> = roots
        .iter()
        .map(|root| {
            json!({
                "source_type": if root.project { "project_entity" } else { "group_entity" },
                "source_full_path": root.full_path,
                "destination_slug": if slug.is_empty() || roots.len() > 1 { root.path.as_str() } else { slug },
                "destination_namespace": namespace,
            })
        })
        .collect();
    let request = json!({"configuration": {"bundle": name}, "entities": entities});
    let params = match create_params(&request) {
        Ok(p) => p,
        Err(e) => return refused(&state, e.status(), e.to_string(), &form).await,
    };
    match start_bulk_import(&state.api, params, "the web page").await {
        Ok(bulk) => see_other(&format!("/?started={}#import-{}", bulk.id, bulk.id)),
        Err(e) => refused(&state, e.status(), e.to_string(), &form).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_form_becomes_the_apis_request() {
        let v = StartForm {
            source_url: "https://src".into(),
            source_full_path: "acme/sub".into(),
            destination_namespace: "imported".into(),
            ..StartForm::default()
        };
        let r = start_request(&v, "tok").unwrap();
        assert_eq!(r["entities"][0]["destination_slug"], "sub");
        assert_eq!(r["entities"][0]["source_type"], "group_entity");
        let p = create_params(&r).unwrap();
        assert_eq!(p.entities[0].source_full_path, "acme/sub");
        let err = start_request(&StartForm::default(), "").unwrap_err();
        assert_eq!(
            err,
            "Enter the source GitLab URL, the source access token, the full path on the source."
        );
    }

    #[test]
    fn only_loopback_on_plain_http_is_not_warned_about() {
        let h = |host: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(HOST, HeaderValue::from_static(host));
            m
        };
        assert!(!clear_text_remote(&h("127.0.0.1:8080")));
        assert!(!clear_text_remote(&h("localhost:8080")));
        assert!(!clear_text_remote(&h("[::1]:8080")));
        assert!(clear_text_remote(&h("10.0.0.5:8080")));
        let mut proxied = h("appliance.example");
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!clear_text_remote(&proxied));
    }
}

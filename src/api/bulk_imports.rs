//! The handlers of GitLab's bulk_imports API (`/api/v4/bulk_imports...`): start, list, show, list
//! entities, show an entity, list its failures, cancel. They validate parameters, call the engine
//! or read the store (off the runtime), and render GitLab's bodies. They never talk to a forge
//! themselves, and the source access token of a request never reaches a response or a log line.

use super::ApiState;
use super::error::ApiError;
use super::form;
use super::pagination::{self, PageInfo, Query, parse_query, request_base};
use super::params::{self, check, list_params, path_id};
use super::render::{self, BulkImportBody, EntityBody, FailureBody};
use crate::engine::{EngineError, SubmitError, SubmitRequest, blocking};
use crate::model::BulkImport;
use crate::store::{EntityFilter, StoreError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::Value;

/// Turns the body of `POST /bulk_imports` and its `Content-Type` (None when absent) into the validated
/// request, or GitLab's 400 / 415 with Grape's words. Never panics, whatever the bytes; the messages
/// never repeat a value (a value may be a token). Public so that the fuzz target `api_request` drives
/// exactly what the endpoint runs.
pub fn parse_create_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<params::CreateParams, ApiError> {
    params::create_params(&body_tree(content_type.unwrap_or(""), body)?)
}

/// Reads a request body as GitLab does: JSON, or a form with bracket keys (what `curl -d` sends).
fn body_tree(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let blank = body.iter().all(u8::is_ascii_whitespace);
    match content_type.as_str() {
        "application/json" if blank => Ok(Value::Object(Default::default())),
        // serde_json's syntax errors name a position, never the text, so no value can leak through.
        "application/json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("message body does not match declared format: {e}"))
        }),
        "" | "application/x-www-form-urlencoded" => {
            form::parse(body).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "The provided content-type '{other}' is not supported."
        ))),
    }
}

/// The name of what is already at `<bundle dir>/<name>` (a file, a directory) or at its first volume
/// `<name>.001`.
fn existing_bundle(bundle_dir: &std::path::Path, name: &str) -> Option<String> {
    [name.to_string(), format!("{name}.001")]
        .into_iter()
        .find(|n| bundle_dir.join(n).symlink_metadata().is_ok())
}

/// GitLab's status and words for each reason the engine refuses a migration.
fn submit_error(e: SubmitError) -> ApiError {
    match e {
        SubmitError::InvalidSourceUrl(detail) => ApiError::Unprocessable(format!(
            "Invalid source URL. Enter only the base URL of the source GitLab instance. {detail}"
        )),
        SubmitError::SourceUnauthorized { .. } => ApiError::Unprocessable(
            "Check that the source instance base URL and the personal access token meet the necessary requirements."
                .into(),
        ),
        SubmitError::SourceEntityNotFound { full_path, .. } => {
            ApiError::Unprocessable(format!("Import failed. '{full_path}' not found."))
        }
        SubmitError::DestinationNamespaceInvalid { namespace } => ApiError::Unprocessable(format!(
            "Import failed. Destination '{namespace}' is invalid, or you don't have permission."
        )),
        SubmitError::DestinationExists { full_path } => ApiError::Unprocessable(format!(
            "Import failed. '{full_path}' already exists. Change the destination and try again."
        )),
        // GitLab's words (BulkImports::Entity#validate_destination_namespace_ascendency).
        e @ SubmitError::DestinationUnderSource => {
            ApiError::Unprocessable(format!("Import failed: {e}"))
        }
        e @ SubmitError::DuplicateDestination { .. } => {
            ApiError::Unprocessable(format!("Import failed. {e}"))
        }
        e @ (SubmitError::SourceUnreachable { .. }
        | SubmitError::InvalidBundle(_)
        | SubmitError::NestedExport { .. }
        | SubmitError::ProjectImportsDisabled
        | SubmitError::MigratedBefore { .. }) => {
            ApiError::Unprocessable(e.to_string())
        }
        e @ (SubmitError::DestinationUnreachable(_) | SubmitError::NoDestination) => {
            ApiError::Unavailable(e.to_string())
        }
        SubmitError::Store(StoreError::NotFound(what)) => {
            ApiError::Unavailable(format!("503 Service Unavailable: {what} not found while recording the migration"))
        }
        SubmitError::Store(other) => ApiError::from(other),
    }
}

/// `POST /bulk_imports`: 201 with the new bulk import, 400 for a malformed or invalid body, 422 when
/// the source or destination refuses it, 503 when the destination or the store cannot be used.
pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let params = parse_create_request(content_type.as_deref(), &body)?;
    if params.dry_run {
        return dry_run(&state, params).await;
    }
    let bulk = start(&state, params, "the API").await?;
    Ok((StatusCode::CREATED, Json(render::bulk_import(&bulk))).into_response())
}

/// `dry_run: true` (an appliance extension): 200 with what the request would move and every blocker
/// (`Engine::preflight`), nothing recorded or written. Live migrations only.
async fn dry_run(state: &ApiState, params: params::CreateParams) -> Result<Response, ApiError> {
    if params.replay_bundle.is_some() || params.export_bundle.is_some() {
        return Err(ApiError::BadRequest(
            "dry_run checks a live migration: configuration[bundle] and export_bundle cannot be given with it".into(),
        ));
    }
    let token = params.access_token.clone();
    let req = SubmitRequest {
        source_url: params.url,
        source_token: params.access_token,
        entities: params.entities,
        user_map: params.user_map,
        continue_earlier: true,
    };
    let found = state
        .engine
        .preflight(&req)
        .await
        .map_err(|e| submit_error(e).redact(token.expose_secret()))?;
    let mut body = serde_json::to_value(&found)
        .map_err(|e| ApiError::Unavailable(format!("503 Service Unavailable: {e}")))?;
    // Whatever a forge answered, the token it was given is never sent back.
    let secret = token.expose_secret();
    if !secret.is_empty() && body.to_string().contains(secret) {
        body = serde_json::from_str(&body.to_string().replace(secret, "[REDACTED]"))
            .unwrap_or_default();
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Starts the migration, replay or export validated `params` ask for, as `POST /bulk_imports` does;
/// the web page's forms come here too (`via` names which, for the log). The errors are GitLab's
/// (`ApiError`), with the source token scrubbed from them.
pub async fn start(
    state: &ApiState,
    params: params::CreateParams,
    via: &'static str,
) -> Result<BulkImport, ApiError> {
    let token = params.access_token.clone();
    let bundle_dir = state.engine.bundle_dir().to_path_buf();
    let (replay, export) = (params.replay_bundle.clone(), params.export_bundle.clone());
    if replay.is_some() && export.is_some() {
        return Err(ApiError::BadRequest(
            "configuration[bundle], export_bundle are mutually exclusive".into(),
        ));
    }
    let req = SubmitRequest {
        source_url: params.url,
        source_token: params.access_token,
        entities: params.entities,
        user_map: params.user_map,
        // GitLab's API has no retry flag: a request for an entity this appliance migrated into the
        // same place before continues it, writing only what is missing.
        continue_earlier: true,
    };
    let submitted = match (replay, export) {
        (Some(name), _) => {
            let (entities, user_map) = (req.entities, req.user_map);
            state
                .engine
                .submit_replay(bundle_dir.join(name), entities, user_map, true)
                .await
        }
        (None, Some(name)) => {
            // As `appliance export` without `--force`: a bundle (or anything) already there is never
            // overwritten, and is refused now rather than when the export ends.
            if let Some(existing) = existing_bundle(&bundle_dir, &name) {
                return Err(ApiError::Unprocessable(format!(
                    "Import failed. '{existing}' already exists in the bundle directory. Choose another export_bundle and try again."
                )));
            }
            if let Err(e) = std::fs::create_dir_all(&bundle_dir) {
                return Err(ApiError::Unavailable(format!(
                    "503 Service Unavailable: cannot create the bundle directory: {e}"
                )));
            }
            state.engine.submit_export(req, bundle_dir.join(name)).await
        }
        (None, None) => state.engine.submit(req).await,
    };
    match submitted {
        Ok((bulk, _)) => {
            tracing::info!(bulk_import = bulk.id, source = %bulk.source_url, "migration started through {via}");
            Ok(bulk)
        }
        Err(e) => {
            let err = submit_error(e).redact(token.expose_secret());
            tracing::info!(error = %err, "migration refused");
            Err(err)
        }
    }
}

/// A page of a listing with GitLab's pagination headers.
fn paged<T: serde::Serialize>(
    headers: &HeaderMap,
    uri: &Uri,
    query: &Query,
    info: PageInfo,
    items: Vec<T>,
) -> Response {
    let h = pagination::headers(&request_base(headers, uri), query, &info);
    (h, Json(items)).into_response()
}

/// `GET /bulk_imports`, newest first unless `sort=asc`, filtered by `status`.
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = parse_query(uri.query());
    let mut errors = Vec::new();
    let p = list_params(&query, &mut errors);
    check(errors)?;
    let store = state.engine.store().clone();
    let q = p.store_query();
    let page = blocking(move || store.list_bulk_imports(&q)).await?;
    let items: Vec<BulkImportBody> = page.items.iter().map(render::bulk_import).collect();
    Ok(paged(
        &headers,
        &uri,
        &query,
        PageInfo::new(p.page, page.total),
        items,
    ))
}

/// Lists entities (of one bulk import or of all) with their stats and failures.
async fn entity_listing(
    state: &ApiState,
    headers: &HeaderMap,
    uri: &Uri,
    bulk_import_id: Option<u64>,
    mut errors: Vec<String>,
) -> Result<Response, ApiError> {
    let query = parse_query(uri.query());
    let p = list_params(&query, &mut errors);
    check(errors)?;
    let store = state.engine.store().clone();
    let q = p.store_query();
    let (total, items) = blocking(move || {
        if let Some(id) = bulk_import_id {
            store.bulk_import(id)?;
        }
        let page = store.list_entities(EntityFilter { bulk_import_id }, &q)?;
        let mut items: Vec<EntityBody> = Vec::with_capacity(page.items.len());
        for e in &page.items {
            items.push(
                render::entity(e, &store.trackers(e.id)?, &store.failures(e.id)?)
                    .with_skipped(&store.skipped(e.id)?),
            );
        }
        Ok::<_, StoreError>((page.total, items))
    })
    .await?;
    Ok(paged(
        headers,
        uri,
        &query,
        PageInfo::new(p.page, total),
        items,
    ))
}

/// `GET /bulk_imports/entities`: the entities of every bulk import.
pub async fn list_all_entities(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    entity_listing(&state, &headers, &uri, None, Vec::new()).await
}

/// `GET /bulk_imports/:import_id/entities`.
pub async fn list_entities(
    State(state): State<ApiState>,
    Path(import_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let id = path_id(&import_id, "import_id", &mut errors);
    if errors.is_empty() && id.is_none() {
        return Err(ApiError::RecordNotFound);
    }
    entity_listing(&state, &headers, &uri, Some(id.unwrap_or_default()), errors).await
}

/// Both ids of an entity path, or GitLab's 400 / 404.
fn entity_ids(import_id: &str, entity_id: &str) -> Result<(u64, u64), ApiError> {
    let mut errors = Vec::new();
    let import = path_id(import_id, "import_id", &mut errors);
    let entity = path_id(entity_id, "entity_id", &mut errors);
    check(errors)?;
    import.zip(entity).ok_or(ApiError::RecordNotFound)
}

/// `GET /bulk_imports/:import_id`.
pub async fn show(
    State(state): State<ApiState>,
    Path(import_id): Path<String>,
) -> Result<Json<BulkImportBody>, ApiError> {
    let mut errors = Vec::new();
    let id = path_id(&import_id, "import_id", &mut errors);
    check(errors)?;
    let id = id.ok_or(ApiError::RecordNotFound)?;
    let store = state.engine.store().clone();
    let bulk = blocking(move || store.bulk_import(id)).await?;
    Ok(Json(render::bulk_import(&bulk)))
}

/// `GET /bulk_imports/:import_id/unmapped_users` (an appliance extension): the source users whose
/// memberships were skipped because no destination user maps to them, as a user map to complete
/// (`text/csv`, a `username,` line each) and pass back with the next migration (`user_map`).
pub async fn unmapped_users(
    State(state): State<ApiState>,
    Path(import_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let id = path_id(&import_id, "import_id", &mut errors);
    check(errors)?;
    let id = id.ok_or(ApiError::RecordNotFound)?;
    csv_response(unmapped_users_csv(&state, id).await?, "unmapped-users.csv")
}

/// The user map to complete of migration `id` (its unmapped users), shared by the API and the page.
pub async fn unmapped_users_csv(state: &ApiState, id: u64) -> Result<String, ApiError> {
    let store = state.engine.store().clone();
    let users = blocking(move || {
        store.bulk_import(id)?;
        let mut users = Vec::new();
        for e in store.entities_of(id)? {
            users.extend(
                store
                    .skipped(e.id)?
                    .into_iter()
                    .filter(|s| s.exception_class == crate::relations::UNMAPPED_USER_CLASS)
                    .filter_map(|s| s.source_title),
            );
        }
        Ok::<_, StoreError>(users)
    })
    .await?;
    Ok(crate::user_map::UserMap::to_complete(
        users.iter().map(String::as_str),
    ))
}

/// A CSV download named `filename`.
pub fn csv_response(csv: String, filename: &str) -> Result<Response, ApiError> {
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// `GET /bulk_imports/:import_id/entities/:entity_id`.
pub async fn show_entity(
    State(state): State<ApiState>,
    Path((import_id, entity_id)): Path<(String, String)>,
) -> Result<Json<EntityBody>, ApiError> {
    let (import_id, entity_id) = entity_ids(&import_id, &entity_id)?;
    let store = state.engine.store().clone();
    let body = blocking(move || {
        store.bulk_import(import_id)?;
        let e = store.entity(entity_id)?;
        if e.bulk_import_id != import_id {
            return Err(StoreError::NotFound(format!("entity {entity_id}")));
        }
        Ok(
            render::entity(&e, &store.trackers(e.id)?, &store.failures(e.id)?)
                .with_skipped(&store.skipped(e.id)?),
        )
    })
    .await?;
    Ok(Json(body))
}

/// `GET /bulk_imports/:import_id/entities/:entity_id/failures`: an array, paginated, oldest first.
pub async fn entity_failures(
    State(state): State<ApiState>,
    Path((import_id, entity_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (import_id, entity_id) = entity_ids(&import_id, &entity_id)?;
    let query = parse_query(uri.query());
    let mut errors = Vec::new();
    let page = pagination::page_request(&query, &mut errors);
    check(errors)?;
    let store = state.engine.store().clone();
    let failures = blocking(move || {
        store.bulk_import(import_id)?;
        let e = store.entity(entity_id)?;
        if e.bulk_import_id != import_id {
            return Err(StoreError::NotFound(format!("entity {entity_id}")));
        }
        store.failures(entity_id)
    })
    .await?;
    let info = PageInfo::new(page, failures.len() as u64);
    let skip = (info.page - 1).saturating_mul(info.per_page);
    let items: Vec<FailureBody> = failures
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(info.per_page as usize)
        .map(render::failure)
        .collect();
    Ok(paged(&headers, &uri, &query, info, items))
}

/// `POST /bulk_imports/:import_id/cancel`: 200 with the bulk import (canceled, its unfinished
/// entities too), 404 when there is no such import, 503 when the store cannot record the cancel.
/// A migration that already ended keeps its final status: the store never rewrites a terminal one.
pub async fn cancel(
    State(state): State<ApiState>,
    Path(import_id): Path<String>,
) -> Result<Json<BulkImportBody>, ApiError> {
    let mut errors = Vec::new();
    let id = path_id(&import_id, "import_id", &mut errors);
    check(errors)?;
    let id = id.ok_or(ApiError::NotFound)?;
    match state.engine.cancel(id).await {
        Ok(bulk) => {
            tracing::info!(
                bulk_import = id,
                status = bulk.status.as_str(),
                "cancel requested through the API"
            );
            Ok(Json(render::bulk_import(&bulk)))
        }
        Err(EngineError::Store(StoreError::NotFound(_))) => Err(ApiError::NotFound),
        Err(EngineError::Store(e)) => Err(ApiError::from(e)),
        Err(other) => {
            tracing::error!(bulk_import = id, error = %other, "cancel failed");
            Err(ApiError::Unavailable(format!(
                "503 Service Unavailable: {other}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_with_a_charset_and_forms_without_a_type_are_read() {
        let tree = body_tree("application/json; charset=utf-8", br#"{"a": 1}"#).unwrap();
        assert_eq!(tree, json!({"a": 1}));
        let tree = body_tree("", b"configuration[url]=u").unwrap();
        assert_eq!(tree, json!({"configuration": {"url": "u"}}));
        assert!(matches!(
            body_tree("multipart/form-data; boundary=x", b"--x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn refusals_without_a_gitlab_equivalent_are_503_and_say_why() {
        let e = submit_error(SubmitError::NoDestination);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.to_string().contains("--destination-url"), "{e}");
        let e = submit_error(SubmitError::DestinationUnreachable(
            "connection refused".into(),
        ));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let e = submit_error(SubmitError::Store(StoreError::Task("panicked".into())));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let e = submit_error(SubmitError::NestedExport {
            inner: "g/p".into(),
            outer: "g".into(),
        });
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.to_string().contains("'g/p' lies inside 'g'"), "{e}");
    }
}

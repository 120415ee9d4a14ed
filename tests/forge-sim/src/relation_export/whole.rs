//! GitLab's whole-project export (`POST /projects/:id/export`, `GET /projects/:id/export`,
//! `GET /projects/:id/export/download`): the file export that GitLab offered long before the relation
//! export, and the one a source without the relation export (or one that refuses it) still has.
//!
//! The archive has the layout of GitLab's project export (`shared/fixtures/gitlab-export/project`):
//! `VERSION`, `tree/project.json`, `tree/project/<relation>.ndjson` with the same records as the
//! relation export (from `tree.rs`), `uploads/<secret>/<filename>`, and a `git bundle` of each
//! repository (`project.bundle`, `project.wiki.bundle`, `project.design.bundle`). It is built from a
//! snapshot of the store when the export is asked for, off the async workers; until it is built the
//! status says `started`, as GitLab's says while Sidekiq works, and `failed` when any relation is
//! named in `FaultConfig::failed_exports` (GitLab fails a whole export as a whole).

use super::tree::{self, Content};
use super::{Kind, Portable, Sims, authorize, tar_gz};
use crate::error::ApiError;
use crate::faults::FaultState;
use crate::routes::request::parse_pairs;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The export format version GitLab writes in `VERSION`.
const VERSION: &str = "0.2.4";

/// Where a project's last export is.
#[derive(Clone)]
enum Export {
    Building,
    Finished(Bytes),
    /// It could not be built (a relation named in `FaultConfig::failed_exports`): GitLab fails a
    /// whole export as a whole, and says `failed`.
    Failed,
}

/// Each project's last export.
struct Archives {
    exports: Mutex<HashMap<u64, Export>>,
    faults: Arc<FaultState>,
}

impl Archives {
    fn get(&self, project: u64) -> Option<Export> {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&project)
            .cloned()
    }

    fn set(&self, project: u64, export: Export) {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(project, export);
    }
}

type Ext = Extension<Arc<Archives>>;

/// The three endpoints, with an export state of their own.
pub fn routes(faults: Arc<FaultState>) -> Router<Arc<crate::state::Sim>> {
    Router::new()
        .route("/api/v4/projects/{id}/export", post(start).get(status))
        .route("/api/v4/projects/{id}/export/download", get(download))
        .layer(Extension(Arc::new(Archives {
            exports: Mutex::default(),
            faults,
        })))
}

/// The project an authorized caller (a maintainer) may export.
fn project(
    sim: &crate::state::Sim,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<u64, ApiError> {
    let query = parse_pairs(query.unwrap_or(""));
    match authorize(sim, Kind::Project, id, headers, &query)? {
        Portable::Project(pid) => Ok(pid),
        Portable::Group(_) => Err(ApiError::NotFound("Project")),
    }
}

async fn start(
    sims: Sims,
    Extension(archives): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let sim = sims.0;
    let pid = match project(&sim, &id, &headers, query.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    archives.set(pid, Export::Building);
    let failing = !archives.faults.config().failed_exports.is_empty();
    tokio::task::spawn_blocking(move || match archive(&sim, pid) {
        Ok(_) if failing => archives.set(pid, Export::Failed),
        Ok(bytes) => archives.set(pid, Export::Finished(bytes)),
        Err(e) => {
            tracing::warn!(project = pid, error = %e, "the project export failed");
            archives.set(pid, Export::Failed);
        }
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"message": "202 Accepted"})),
    )
        .into_response()
}

async fn status(
    sims: Sims,
    Extension(archives): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let sim = sims.0;
    let pid = match project(&sim, &id, &headers, query.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let export_status = match archives.get(pid) {
        None => "none",
        Some(Export::Building) => "started",
        Some(Export::Finished(_)) => "finished",
        Some(Export::Failed) => "failed",
    };
    let store = sim.read();
    let Some(p) = store.project(pid) else {
        return ApiError::NotFound("Project").into_response();
    };
    let mut body = json!({
        "id": p.id, "description": p.description, "name": p.name,
        "name_with_namespace": p.name_with_namespace, "path": p.path,
        "path_with_namespace": p.path_with_namespace, "created_at": p.created_at,
        "export_status": export_status,
    });
    if export_status == "finished" {
        let api = format!("{}/api/v4/projects/{pid}/export/download", sim.base_url);
        let web = format!("{}/{}/download_export", sim.base_url, p.path_with_namespace);
        body["_links"] = json!({"api_url": api, "web_url": web});
    }
    axum::Json(body).into_response()
}

async fn download(
    sims: Sims,
    Extension(archives): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let sim = sims.0;
    let pid = match project(&sim, &id, &headers, query.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(Export::Finished(bytes)) = archives.get(pid) else {
        return ApiError::message(StatusCode::NOT_FOUND, "404 Not found or has expired")
            .into_response();
    };
    let path = sim
        .read()
        .project(pid)
        .map(|p| p.path.clone())
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{pid}_{path}_export.tar.gz\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The project's export archive, gzipped.
fn archive(sim: &crate::state::Sim, pid: u64) -> std::io::Result<Bytes> {
    let (contents, full_path) = {
        let store = sim.read();
        let full_path = store
            .project(pid)
            .map(|p| p.path_with_namespace.clone())
            .unwrap_or_default();
        (tree::project_relations(&store, pid), full_path)
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![("VERSION".into(), VERSION.as_bytes().to_vec())];
    for (relation, content) in contents {
        match content {
            Content::Document(doc) => {
                files.push(("tree/project.json".into(), serde_json::to_vec(&doc)?));
            }
            // Only the relation export lists the users a project's records name.
            Content::Records { .. } if relation == "user_contributions" => {}
            Content::Records { records, .. } => {
                let mut text = Vec::new();
                for record in &records {
                    serde_json::to_writer(&mut text, record)?;
                    text.push(b'\n');
                }
                files.push((format!("tree/project/{relation}.ndjson"), text));
            }
            Content::Files(uploads) => files.extend(
                uploads
                    .into_iter()
                    .map(|(name, bytes)| (format!("uploads/{name}"), bytes)),
            ),
            Content::Repository(repo) => {
                if let Some(bundle) = sim.git.bundle(&repo)? {
                    files.push(("project.design.bundle".into(), bundle));
                }
            }
        }
    }
    for (repo, name) in [
        (full_path.clone(), "project.bundle"),
        (crate::git::wiki_path(&full_path), "project.wiki.bundle"),
    ] {
        if let Some(bundle) = sim.git.bundle(&repo)? {
            files.push((name.into(), bundle));
        }
    }
    tar_gz(&files)
}

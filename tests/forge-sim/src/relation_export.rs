//! The relation export API that GitLab's own direct transfer (bulk import) uses:
//! `POST /groups/:id/export_relations`, `GET .../export_relations/status`,
//! `GET .../export_relations/download`, and the same under `/projects/:id`; and, in `whole.rs`, the
//! whole-project export that sources without the relation export still offer.
//!
//! It owns: the exports started on this simulator (per group or project, per relation), their
//! batches of [`BATCH_SIZE`] records, and the gzipped NDJSON files built from a snapshot of the
//! store taken when the export starts, exactly as GitLab exports at request time; file relations
//! are tars (`uploads.tar.gz`, and `design.tar.gz` holding a `git bundle` of the design repository). The record
//! format lives in `tree.rs`. It never writes to the store, and it decides access the way GitLab
//! does for these endpoints: group exports need the owner role, project exports maintainer.

mod tree;
mod whole;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::FaultState;
use crate::model::access;
use crate::routes::request::{Params, parse_pairs};
use crate::state::Sim;
use tree::Content;

/// Records per batch unless the `relation_export_batch_size` setting says otherwise, as in GitLab
/// (`BulkImports::FileTransfer::BaseConfig::BATCH_SIZE`).
pub const BATCH_SIZE: usize = 1000;

/// Export status codes as the API prints them.
const STARTED: i8 = 0;
const FINISHED: i8 = 1;
const FAILED: i8 = -1;

/// What is exported: a group or a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Portable {
    Group(u64),
    Project(u64),
}

#[derive(Debug, Clone)]
struct Batch {
    number: usize,
    objects: usize,
    gz: Bytes,
}

/// One relation of one export.
#[derive(Debug, Clone)]
struct RelationExport {
    relation: &'static str,
    status: i8,
    error: Option<String>,
    updated_at: String,
    batched: bool,
    total: usize,
    batches: Vec<Batch>,
    /// The whole relation as one file, for an unbatched relation.
    whole: Option<Bytes>,
    file_name: String,
}

impl RelationExport {
    fn started(relation: &'static str, batched: bool, now: &str) -> RelationExport {
        RelationExport {
            relation,
            status: STARTED,
            error: None,
            updated_at: now.to_owned(),
            batched,
            total: 0,
            batches: Vec::new(),
            whole: None,
            file_name: file_name(relation),
        }
    }

    fn status_json(&self) -> Value {
        let mut v = json!({
            "relation": self.relation,
            "status": self.status,
            "error": self.error,
            "updated_at": self.updated_at,
            "batched": self.batched,
            "batches_count": self.batches.len(),
            // GitLab counts objects only for batched exports: an unbatched one keeps the 0 its
            // start set (`BulkImports::RelationExportService#start_export!`).
            "total_objects_count": if self.batched { self.total } else { 0 },
        });
        if self.batched {
            v["batches"] = self
                .batches
                .iter()
                .map(|b| {
                    json!({
                        "status": self.status,
                        "batch_number": b.number,
                        "objects_count": b.objects,
                        "error": null,
                        "updated_at": self.updated_at,
                    })
                })
                .collect();
        }
        v
    }
}

fn file_name(relation: &str) -> String {
    if relation == "self" {
        "self.json.gz".to_owned()
    } else if relation == "uploads" || relation == "design" {
        format!("{relation}.tar.gz")
    } else {
        format!("{relation}.ndjson.gz")
    }
}

/// The exports of one running simulator.
struct Exports {
    by_portable: Mutex<HashMap<Portable, Vec<RelationExport>>>,
    /// Which relations' exports are to fail (`FaultConfig::failed_exports`).
    faults: Arc<FaultState>,
}

impl Exports {
    fn get(&self, portable: Portable) -> Option<Vec<RelationExport>> {
        self.by_portable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&portable)
            .cloned()
    }

    fn set(&self, portable: Portable, relations: Vec<RelationExport>) {
        self.by_portable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(portable, relations);
    }
}

/// The six endpoints, and the whole-project export's three; each simulator router gets its own
/// export state.
pub fn routes(faults: Arc<FaultState>) -> Router<Arc<Sim>> {
    Router::new()
        .merge(whole::routes(Arc::clone(&faults)))
        .route(
            "/api/v4/groups/{id}/export_relations",
            post(|s, e, p, h, q, b| start(s, e, p, h, q, b, Kind::Group)),
        )
        .route(
            "/api/v4/groups/{id}/export_relations/status",
            get(|s, e, p, h, q| status(s, e, p, h, q, Kind::Group)),
        )
        .route(
            "/api/v4/groups/{id}/export_relations/download",
            get(|s, e, p, h, q| download(s, e, p, h, q, Kind::Group)),
        )
        .route(
            "/api/v4/projects/{id}/export_relations",
            post(|s, e, p, h, q, b| start(s, e, p, h, q, b, Kind::Project)),
        )
        .route(
            "/api/v4/projects/{id}/export_relations/status",
            get(|s, e, p, h, q| status(s, e, p, h, q, Kind::Project)),
        )
        .route(
            "/api/v4/projects/{id}/export_relations/download",
            get(|s, e, p, h, q| download(s, e, p, h, q, Kind::Project)),
        )
        .layer(Extension(Arc::new(Exports {
            by_portable: Mutex::default(),
            faults,
        })))
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Group,
    Project,
}

type Sims = State<Arc<Sim>>;
type Ext = Extension<Arc<Exports>>;

/// The caller's portable if they may export it: 401 without a valid token, 404 when they
/// cannot see it, 403 below owner (groups) or maintainer (projects).
fn authorize(
    sim: &Sim,
    kind: Kind,
    id: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Portable, ApiError> {
    let user = crate::auth::authenticate(sim, headers, query)?;
    let store = sim.read();
    match kind {
        Kind::Group => {
            let gid = store.resolve_group(id).ok_or(ApiError::NotFound("Group"))?;
            let level = store
                .group_access(user, gid)
                .ok_or(ApiError::NotFound("Group"))?;
            if level < access::OWNER {
                return Err(ApiError::Forbidden);
            }
            Ok(Portable::Group(gid))
        }
        Kind::Project => {
            let pid = store
                .resolve_project(id)
                .ok_or(ApiError::NotFound("Project"))?;
            let level = store
                .project_access(user, pid)
                .ok_or(ApiError::NotFound("Project"))?;
            if level < access::MAINTAINER {
                return Err(ApiError::Forbidden);
            }
            Ok(Portable::Project(pid))
        }
    }
}

fn now() -> String {
    crate::timestamp::format_time(time::OffsetDateTime::now_utc())
}

async fn start(
    State(sim): Sims,
    Extension(exports): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
    kind: Kind,
) -> Response {
    let query = parse_pairs(query.as_deref().unwrap_or(""));
    let portable = match authorize(&sim, kind, &id, &headers, &query) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut params = Params::default();
    params.add_pairs(&query);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if let Err(e) = params.add_body(content_type, &body) {
        return e.into_response();
    }
    let batched = match params.bool("batched") {
        Ok(b) => b.unwrap_or(false),
        Err(e) => return e.into_response(),
    };

    // GitLab starts the export in a background job: until the job runs, the status and the
    // downloads are the previous export's, as it ended (`export_worker_delay_ms` says how long).
    let config = exports.faults.config();
    let delay = Duration::from_millis(config.export_worker_delay_ms);
    let failing = config.failed_exports;
    let job = move || {
        let started_at = now();
        let names = relation_names(portable);
        exports.set(
            portable,
            names
                .iter()
                .map(|r| RelationExport::started(r, batched, &started_at))
                .collect(),
        );
        // Rendering and compressing a large export takes a while: do it off the async workers
        // and let clients poll the status, as they must with GitLab.
        tokio::task::spawn_blocking(move || {
            let relations = build(&sim, portable, batched, &failing);
            exports.set(portable, relations);
        });
    };
    if delay.is_zero() {
        job();
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            job();
        });
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"message": "202 Accepted"})),
    )
        .into_response()
}

fn relation_names(portable: Portable) -> &'static [&'static str] {
    match portable {
        Portable::Group(_) => tree::GROUP_RELATIONS,
        Portable::Project(_) => tree::PROJECT_RELATIONS,
    }
}

/// Snapshot the portable's relations and compress them into files and batches.
/// A relation named in `failing` ends failed, as GitLab's does when a record cannot be exported.
fn build(sim: &Sim, portable: Portable, batched: bool, failing: &[String]) -> Vec<RelationExport> {
    let started = std::time::Instant::now();
    let (contents, batch_size) = {
        let store = sim.read();
        let contents = match portable {
            Portable::Group(id) => tree::group_relations(&store, id),
            Portable::Project(id) => tree::project_relations(&store, id),
        };
        (contents, store.settings.relation_export_batch_size.max(1))
    };
    let rendered = started.elapsed();
    let finished_at = now();
    let relations: Vec<RelationExport> = contents
        .into_iter()
        .map(|(relation, content)| {
            let mut export = RelationExport::started(relation, false, &finished_at);
            if failing.iter().any(|f| f == relation) {
                export.status = FAILED;
                export.error = Some(format!(
                    "Errno::ENOENT: No such file or directory @ rb_sysopen - {relation} (forge-sim failed_exports)"
                ));
                return export;
            }
            let result = match content {
                Content::Document(doc) => {
                    export.total = 1;
                    gzip(&[doc], false).map(|gz| export.whole = Some(gz))
                }
                Content::Files(files) => {
                    export.total = files.len();
                    if batched {
                        // A project's uploads are a collection, so GitLab batches them too: each
                        // batch a tar of its files, an empty relation no batch at all.
                        export.batched = true;
                        files
                            .chunks(batch_size)
                            .enumerate()
                            .map(|(i, chunk)| {
                                tar_gz(chunk).map(|gz| Batch {
                                    number: i + 1,
                                    objects: chunk.len(),
                                    gz,
                                })
                            })
                            .collect::<std::io::Result<Vec<_>>>()
                            .map(|batches| export.batches = batches)
                    } else {
                        tar_gz(&files).map(|gz| export.whole = Some(gz))
                    }
                }
                // Not a collection of the project, so GitLab never batches it.
                Content::Repository(repo_path) => {
                    export.total = 1;
                    sim.git
                        .bundle(&repo_path)
                        .and_then(|bundle| {
                            let file = bundle
                                .map(|b| (format!("{relation}.bundle"), b))
                                .into_iter()
                                .collect::<Vec<_>>();
                            tar_gz(&file)
                        })
                        .map(|gz| export.whole = Some(gz))
                }
                Content::Records { records, batchable } => {
                    export.total = records.len();
                    if batched && batchable {
                        // GitLab batches every collection of a batched export; an empty one
                        // finishes at once as batched with no batch and a count of 0
                        // (`BatchedRelationExportService#execute`: `finish_export! if
                        // batches_count == 0`), so a client knows it is empty without a download.
                        export.batched = true;
                        records
                            .chunks(batch_size)
                            .enumerate()
                            .map(|(i, chunk)| {
                                gzip(chunk, true).map(|gz| Batch {
                                    number: i + 1,
                                    objects: chunk.len(),
                                    gz,
                                })
                            })
                            .collect::<std::io::Result<Vec<_>>>()
                            .map(|batches| export.batches = batches)
                    } else {
                        gzip(&records, true).map(|gz| export.whole = Some(gz))
                    }
                }
            };
            match result {
                Ok(()) => export.status = FINISHED,
                Err(e) => {
                    export.status = FAILED;
                    export.error = Some(format!("compressing the export failed: {e}"));
                }
            }
            export
        })
        .collect();
    tracing::debug!(
        ?portable,
        ?rendered,
        total = ?started.elapsed(),
        "relation export built"
    );
    relations
}

/// One record per line (NDJSON), or a single JSON document, gzipped.
fn gzip(records: &[Value], ndjson: bool) -> std::io::Result<Bytes> {
    // serde_json writes token by token; the encoder must see large writes to be fast.
    let mut text = Vec::with_capacity(records.len() * 512);
    for record in records {
        serde_json::to_writer(&mut text, record)?;
        if ndjson {
            text.push(b'\n');
        }
    }
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::fast(),
    );
    gz.write_all(&text)?;
    Ok(Bytes::from(gz.finish()?))
}

/// A gzipped tar of regular files, as GitLab's file relation exports are.
fn tar_gz(files: &[(String, Vec<u8>)]) -> std::io::Result<Bytes> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes.as_slice())?;
    }
    Ok(Bytes::from(tar.into_inner()?.finish()?))
}

async fn status(
    State(sim): Sims,
    Extension(exports): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    kind: Kind,
) -> Response {
    let query = parse_pairs(query.as_deref().unwrap_or(""));
    let portable = match authorize(&sim, kind, &id, &headers, &query) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let relations = exports.get(portable).unwrap_or_default();
    let wanted = query.iter().find(|(k, _)| k == "relation").map(|(_, v)| v);
    match wanted {
        Some(name) => match relations.iter().find(|r| r.relation == name) {
            Some(r) => axum::Json(r.status_json()).into_response(),
            None => ApiError::message(StatusCode::NOT_FOUND, "404 Not found").into_response(),
        },
        None => axum::Json(Value::Array(
            relations.iter().map(RelationExport::status_json).collect(),
        ))
        .into_response(),
    }
}

async fn download(
    State(sim): Sims,
    Extension(exports): Ext,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    kind: Kind,
) -> Response {
    let query = parse_pairs(query.as_deref().unwrap_or(""));
    let portable = match authorize(&sim, kind, &id, &headers, &query) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut params = Params::default();
    params.add_pairs(&query);
    let relation = match params.required("relation") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (batched, batch_number) = match (params.bool("batched"), params.u64("batch_number")) {
        (Ok(b), Ok(n)) => (b.unwrap_or(false), n),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let not_found = |what: &str| ApiError::message(StatusCode::NOT_FOUND, what).into_response();
    let relations = exports.get(portable).unwrap_or_default();
    let Some(export) = relations.iter().find(|r| r.relation == relation) else {
        return not_found("Export not found");
    };
    let gz = if let (true, Some(number)) = (batched, batch_number) {
        match export
            .batches
            .iter()
            .find(|b| b.number as u64 == number && export.status == FINISHED)
        {
            Some(batch) => batch.gz.clone(),
            None => return not_found("Batch not found"),
        }
    } else {
        match (&export.whole, export.status) {
            (Some(gz), FINISHED) => gz.clone(),
            _ => return not_found("Export file not found"),
        }
    };
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", export.file_name),
            ),
        ],
        gz,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_writes_one_record_per_line() {
        let gz = gzip(&[json!({"a": 1}), json!({"b": "ü"})], true).expect("gzip");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, "{\"a\":1}\n{\"b\":\"ü\"}\n");
    }

    #[test]
    fn batched_status_lists_batches_and_unbatched_does_not() {
        let mut r = RelationExport::started("labels", true, "2024-01-01T00:00:00.000Z");
        r.batches.push(Batch {
            number: 1,
            objects: 3,
            gz: Bytes::new(),
        });
        let v = r.status_json();
        assert_eq!(v["batches_count"], 1);
        assert_eq!(v["batches"][0]["objects_count"], 3);
        r.batched = false;
        assert!(r.status_json().get("batches").is_none());
        assert_eq!(file_name("self"), "self.json.gz");
    }
}

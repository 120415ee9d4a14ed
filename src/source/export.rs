//! GitLab's relation export API, the one its own direct transfer uses: the source builds every relation
//! of a group or project as batches of gzipped NDJSON, and the appliance downloads them one batch at a
//! time. It is started once per group or project (a "portable": `groups/<id>` or `projects/<id>`), on
//! the first relation that asks for it, or earlier ([`Exports::start_early`]: a project when its group
//! lists it); a source that does not offer it (or a token without the rights: 403/404) is remembered,
//! and its relations are read through REST instead. A project the relation export is not offered for
//! is exported whole instead, when the source offers that (`super::project_export`): its relations are
//! then read from the unpacked archive, a page at a time, as if they were batches.

use super::project_export::ProjectExport;
use crate::forge::{ForgeError, GitLab};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

/// How long the source may take to build an export before the appliance reads REST instead.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest batch download accepted (GitLab's batches hold 1000 records).
const MAX_BATCH: usize = 256 * 1024 * 1024;

/// One relation of a finished export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedRelation {
    pub batches: u64,
    /// Objects GitLab counted; it counts only batched exports (0 for one exported whole).
    pub total: u64,
    /// Exported as one file (GitLab batches only collections), downloaded without a batch number.
    pub whole: bool,
    /// The source could not export it (status -1): its own words. A relation REST can read is read
    /// there instead; one only the export has (a project's issues, its uploads) is a failure that
    /// quotes this, never an empty relation.
    pub failed: Option<String>,
}

/// How long the source may take to build a whole-project export (GitLab builds it in one job,
/// repositories included) before the migration gives up on it.
const WHOLE_BUILD_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// How long a whole-project export may stay unstarted (`none`) after it was asked for.
const WHOLE_START_TIMEOUT: Duration = Duration::from_secs(600);

/// What a source exported of a group or project.
struct Export {
    relations: HashMap<String, ExportedRelation>,
    /// A project exported whole: where its relations are read from.
    file: Option<Arc<ProjectExport>>,
    /// Why the source could not export it at all (a whole export that failed): every relation
    /// asked for is failed with these words, and the export is not asked for again.
    failed: Option<String>,
}

/// An export, or None when the source would not export it.
type PortableExport = Option<Export>;

#[derive(Default)]
pub struct Exports {
    portables: Mutex<HashMap<String, Arc<OnceCell<PortableExport>>>>,
    /// Portables whose export [`Exports::start_early`] started and no one has waited for yet.
    started_early: Mutex<HashMap<String, Early>>,
    /// Where a whole-project export is downloaded and unpacked (the system's temporary directory
    /// when not set).
    work_dir: Option<std::path::PathBuf>,
}

impl Exports {
    /// Exports that unpack whole-project exports under `work_dir`.
    pub fn in_dir(work_dir: std::path::PathBuf) -> Exports {
        Exports {
            work_dir: Some(work_dir),
            ..Exports::default()
        }
    }

    fn cell(&self, portable: &str) -> Arc<OnceCell<PortableExport>> {
        let mut portables = self.portables.lock().unwrap_or_else(|p| p.into_inner());
        portables.entry(portable.to_string()).or_default().clone()
    }

    /// The export of `portable`, started and waited for on first use.
    async fn built(
        &self,
        gitlab: &GitLab,
        portable: &str,
    ) -> Result<Arc<OnceCell<PortableExport>>, ForgeError> {
        let cell = self.cell(portable);
        let work_dir = self.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        cell.get_or_try_init(|| build(gitlab, portable, self.take_early(portable), work_dir))
            .await?;
        Ok(cell)
    }

    /// The export of `relation` of `portable` (`groups/<id or encoded path>` or `projects/<...>`),
    /// started and waited for on first use; None when the source does not export it to this token.
    pub async fn relation(
        &self,
        gitlab: &GitLab,
        portable: &str,
        relation: &str,
    ) -> Result<Option<ExportedRelation>, ForgeError> {
        let cell = self.built(gitlab, portable).await?;
        Ok(cell.get().and_then(Option::as_ref).and_then(|e| {
            e.relations.get(relation).cloned().or_else(|| {
                e.failed.clone().map(|why| ExportedRelation {
                    batches: 0,
                    total: 0,
                    whole: false,
                    failed: Some(why),
                })
            })
        }))
    }

    /// The whole-project export `portable`'s relations are read from, when it was exported whole.
    pub async fn file(
        &self,
        gitlab: &GitLab,
        portable: &str,
    ) -> Result<Option<Arc<ProjectExport>>, ForgeError> {
        let cell = self.built(gitlab, portable).await?;
        Ok(cell
            .get()
            .and_then(Option::as_ref)
            .and_then(|e| e.file.clone()))
    }

    /// Forgets `portable`'s export once its entity is done: a whole-project export's unpacked
    /// files go with it.
    pub fn forget(&self, portable: &str) {
        self.portables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(portable);
    }

    /// Starts the export of `portable` now, without waiting for it, so that the source builds it
    /// while other entities migrate; the first [`Exports::relation`] of it then waits for that
    /// export instead of starting another. A refusal is remembered too (the first use goes straight
    /// to what comes instead: a project's whole export, or REST); when the source cannot be reached,
    /// nothing is recorded, and the export starts when it is first needed.
    pub async fn start_early(&self, gitlab: &GitLab, portable: &str) {
        let already = self
            .portables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(portable);
        if already {
            return;
        }
        let early = match start(gitlab, portable).await {
            Ok(early) => early,
            Err(e) => {
                tracing::debug!(portable, error = %e, "the early export did not start");
                return;
            }
        };
        self.started_early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(portable.to_string(), early);
    }

    /// Whether the source exports `portable` to this token at all.
    pub async fn offered(&self, gitlab: &GitLab, portable: &str) -> Result<bool, ForgeError> {
        let cell = self.built(gitlab, portable).await?;
        Ok(cell.get().is_some_and(Option::is_some))
    }

    /// What [`Exports::start_early`] found for `portable` (asked once: a second build, after a
    /// failed one, starts its own).
    fn take_early(&self, portable: &str) -> Option<Early> {
        self.started_early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(portable)
    }

    /// The records of a relation GitLab exports whole even in a batched export (`batched: false`,
    /// no batches: a single record such as `project_feature` or `push_rule`).
    pub async fn whole(
        &self,
        gitlab: &GitLab,
        portable: &str,
        relation: &str,
    ) -> Result<Vec<Value>, ForgeError> {
        download(
            gitlab,
            format!("{portable}/export_relations/download?relation={relation}"),
        )
        .await
    }

    /// The records of batch `number` (1-based) of an exported relation: downloaded, or read from
    /// the project's whole export (a page of it) when it was exported whole.
    pub async fn batch(
        &self,
        gitlab: &GitLab,
        portable: &str,
        relation: &str,
        number: u64,
    ) -> Result<Vec<Value>, ForgeError> {
        if let Some(file) = self.file(gitlab, portable).await? {
            let (relation, url) = (
                relation.to_string(),
                gitlab
                    .client
                    .api_url(&format!("{portable}/export/download")),
            );
            return super::files::off_runtime(url, move || file.page(&relation, number)).await;
        }
        download(
            gitlab,
            format!(
                "{portable}/export_relations/download?relation={relation}&batched=true&batch_number={number}"
            ),
        )
        .await
    }
}

/// The records of one downloaded export file (gzipped NDJSON).
async fn download(gitlab: &GitLab, path: String) -> Result<Vec<Value>, ForgeError> {
    let gz = gitlab.client.get_bytes(&path, MAX_BATCH).await?;
    let url = gitlab.client.api_url(&path);
    tokio::task::spawn_blocking(move || ndjson(&gz, &url))
        .await
        .map_err(|e| ForgeError::Decode {
            url: String::new(),
            message: e.to_string(),
        })?
}

/// The exports this process is waiting for a source to prepare, as progress shows them.
static PREPARING: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());

/// What this process is waiting for sources to prepare: `<source> is preparing the export of
/// <portable> (2m10s so far)`, one per export being built.
pub fn preparing() -> Vec<String> {
    PREPARING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, what)| what.clone())
        .collect()
}

/// Shown by [`preparing`] while it lives.
struct Preparing(u64);

impl Preparing {
    fn new(what: String) -> Preparing {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PREPARING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, what));
        Preparing(id)
    }

    fn update(&self, what: String) {
        let mut all = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = all.iter_mut().find(|(id, _)| *id == self.0) {
            entry.1 = what;
        }
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        PREPARING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Asks the source to build a batched export of `portable`: started, with the source's time of
/// answering, or refused when it does not export it to this token.
async fn start(gitlab: &GitLab, portable: &str) -> Result<Early, ForgeError> {
    match gitlab
        .client
        .post_repeatable_dated(
            &format!("{portable}/export_relations"),
            &json!({ "batched": true }),
        )
        .await
    {
        Ok((_, requested_at)) => Ok(Early::Started(requested_at)),
        Err(e) if matches!(e.status(), Some(401 | 403 | 404 | 405)) => {
            tracing::info!(portable, error = %e, "the source does not export this; reading REST");
            Ok(Early::Refused)
        }
        Err(e) => Err(e),
    }
}

/// What asking the source for an export found ([`start`], early or when first needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Early {
    /// Asked for; when the source said, at this time by its clock.
    Started(Option<OffsetDateTime>),
    /// The source would not export it (so it is not asked again).
    Refused,
}

/// How long GitLab reuses the export of a relation it exports whole (not batched): one that
/// finished this recently is not made again (its `RelationExportService::EXISTING_EXPORT_TTL`).
const REUSED_EXPORT_AGE: time::Duration = time::Duration::minutes(3);

/// How much earlier than the source's answer to the request (its `Date`, to the second) the
/// export it started may already show as updated: its job can run before the answer is sent.
const REQUEST_SLACK: time::Duration = time::Duration::seconds(1);

/// Whether a relation of the export's status is the export just asked for, not the one before
/// it: GitLab builds an export in a background job, and until that job runs, the status shows the
/// relation's previous export as it ended (finished, with its old files), which would carry old
/// records. A batched relation is exported again by every request; one exported whole may be
/// reused by GitLab when it finished within [`REUSED_EXPORT_AGE`]. Without the source's clock or
/// the relation's `updated_at` (a source that does not say), the status is taken as it is.
fn is_current(relation: &Value, requested_at: Option<OffsetDateTime>) -> bool {
    let Some(requested_at) = requested_at else {
        return true;
    };
    let Some(updated_at) = relation
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    else {
        return true;
    };
    let batched = relation.get("batched").and_then(Value::as_bool) == Some(true);
    let oldest = if batched {
        requested_at - REQUEST_SLACK
    } else {
        requested_at - REUSED_EXPORT_AGE
    };
    updated_at >= oldest
}

/// Starts a batched export (unless it was, or was refused, `early`) and waits until every relation
/// is built; a project the source does not export that way is exported whole, when it can be.
async fn build(
    gitlab: &GitLab,
    portable: &str,
    early: Option<Early>,
    work_dir: std::path::PathBuf,
) -> Result<PortableExport, ForgeError> {
    let start_path = format!("{portable}/export_relations");
    let started_early = matches!(early, Some(Early::Started(_)));
    let early = match early {
        Some(e) => e,
        None => start(gitlab, portable).await?,
    };
    let Early::Started(requested_at) = early else {
        if portable.starts_with("projects/") {
            return export_whole(gitlab, portable, &work_dir).await;
        }
        return Ok(None);
    };
    let started = tokio::time::Instant::now();
    let deadline = started + BUILD_TIMEOUT;
    let mut wait = Duration::from_millis(50);
    let source = crate::forge::base_string(gitlab.client.base());
    let what =
        |secs: u64| format!("{source} is preparing the export of {portable} ({secs}s so far)");
    let shown = Preparing::new(what(0));
    if !started_early {
        // Just asked for: not ready yet.
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    loop {
        shown.update(what(started.elapsed().as_secs()));
        let status = gitlab
            .client
            .get(&format!("{start_path}/status"), &[])
            .await?;
        let relations = status.as_array().cloned().unwrap_or_default();
        let building = relations
            .iter()
            .any(|r| r.get("status").and_then(Value::as_i64) == Some(0));
        let previous: Vec<&str> = relations
            .iter()
            .filter(|r| !is_current(r, requested_at))
            .filter_map(|r| r.get("relation").and_then(Value::as_str))
            .collect();
        if !relations.is_empty() && !building && previous.is_empty() {
            let done = relations
                .iter()
                .filter_map(|r| {
                    let name = r.get("relation")?.as_str()?.to_string();
                    let batches = r.get("batches_count").and_then(Value::as_u64).unwrap_or(0);
                    let total = r
                        .get("total_objects_count")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let failed = match r.get("status").and_then(Value::as_i64) {
                        Some(1) => None,
                        status => Some(match r.get("error").and_then(Value::as_str) {
                            Some(why) if !why.trim().is_empty() => why.to_string(),
                            _ => format!("its export ended with status {status:?} and no error"),
                        }),
                    };
                    let whole = r.get("batched").and_then(Value::as_bool) == Some(false);
                    let exported = ExportedRelation {
                        batches,
                        total,
                        whole,
                        failed,
                    };
                    Some((name, exported))
                })
                .collect();
            return Ok(Some(Export {
                relations: done,
                file: None,
                failed: None,
            }));
        }
        if tokio::time::Instant::now() > deadline {
            if previous.is_empty() {
                tracing::warn!(portable, "the source's export took too long; reading REST");
            } else {
                tracing::warn!(
                    portable,
                    relations = previous.join(", "),
                    "the source still shows its previous export of these, not the one asked \
                     for; reading REST"
                );
            }
            return Ok(None);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Exports the project `portable` whole (`POST /projects/:id/export`), waits for the source to build
/// it, streams it to disk and unpacks it; None when the source does not export it to this token
/// either.
async fn export_whole(
    gitlab: &GitLab,
    portable: &str,
    work_dir: &std::path::Path,
) -> Result<PortableExport, ForgeError> {
    let path = format!("{portable}/export");
    match gitlab.client.post_repeatable(&path, &json!({})).await {
        Ok(_) => {}
        Err(e) if matches!(e.status(), Some(401 | 403 | 404 | 405)) => {
            tracing::info!(portable, error = %e, "the source does not export this project whole");
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let started = tokio::time::Instant::now();
    let source = crate::forge::base_string(gitlab.client.base());
    let what = |secs: u64| {
        format!("{source} is preparing the whole export of {portable} ({secs}s so far)")
    };
    let shown = Preparing::new(what(0));
    let mut wait = Duration::from_millis(50);
    // Whether the export was seen queued or being built: GitLab puts one that failed back to
    // `none` (before it had a `failed` status).
    let mut seen = false;
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        shown.update(what(started.elapsed().as_secs()));
        let status = gitlab.client.get(&path, &[]).await?;
        let failed = match status.get("export_status").and_then(Value::as_str) {
            Some("finished") => break,
            Some("failed") => true,
            Some("none") | None => seen || started.elapsed() > WHOLE_START_TIMEOUT,
            Some(_) => {
                seen = true;
                false
            }
        };
        let why = if failed {
            format!(
                "its export ended without an archive (GET /{path}); the source's logs \
                 (Sidekiq, ProjectExportWorker) say why"
            )
        } else if started.elapsed() > WHOLE_BUILD_TIMEOUT {
            format!(
                "its export did not finish within {} hours",
                WHOLE_BUILD_TIMEOUT.as_secs() / 3600
            )
        } else {
            continue;
        };
        // Every relation fails with these words; the export is not asked for again.
        return Ok(Some(Export {
            relations: HashMap::new(),
            file: None,
            failed: Some(why),
        }));
    }
    drop(shown);
    let disk = |e: std::io::Error| ForgeError::Decode {
        url: work_dir.display().to_string(),
        message: format!("cannot write the project export: {e}"),
    };
    // `.tmp*`: what a killed process leaves here, `appliance gc` removes.
    let dir = tempfile::Builder::new()
        .prefix(".tmp-project-export-")
        .tempdir_in(work_dir)
        .map_err(disk)?;
    let download = dir.path().join("export.tar.gz");
    let download_path = format!("{path}/download");
    gitlab.client.download_to(&download_path, &download).await?;
    let url = gitlab.client.api_url(&download_path);
    let unpacked = super::files::off_runtime(url, move || {
        let unpacked = ProjectExport::unpack(&download, dir);
        // Everything the migration reads is unpacked.
        let _ = std::fs::remove_file(&download);
        unpacked
    })
    .await?;
    tracing::info!(portable, "read the project from its whole export");
    Ok(Some(Export {
        relations: unpacked.exported(),
        file: Some(Arc::new(unpacked)),
        failed: None,
    }))
}

/// Gunzips a batch and parses one JSON record per line.
fn ndjson(gz: &[u8], url: &str) -> Result<Vec<Value>, ForgeError> {
    let bad = |message: String| ForgeError::Decode {
        url: url.to_string(),
        message,
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .take(MAX_BATCH as u64 * 8)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("not gzipped NDJSON: {e}")))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| bad(format!("a line is not JSON: {e}"))))
        // GitLab writes a single record the portable does not have (a project without a push rule)
        // as `null`: no record, not one to count.
        .filter(|r| !matches!(r, Ok(Value::Null)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_export_being_prepared_is_shown_until_it_is_ready() {
        let shown = Preparing::new("src is preparing the export of projects/7 (0s so far)".into());
        shown.update("src is preparing the export of projects/7 (4s so far)".into());
        assert!(
            preparing().contains(&"src is preparing the export of projects/7 (4s so far)".into())
        );
        drop(shown);
        assert!(!preparing().iter().any(|w| w.contains("projects/7")));
    }

    #[test]
    fn a_relation_updated_before_the_request_is_the_previous_export() {
        let asked = time::macros::datetime!(2026-12-04 12:00:10 UTC);
        let row = |updated_at: &str, batched: bool| json!({"relation": "issues", "status": 1, "updated_at": updated_at, "batched": batched});
        // A batched relation is exported again by every request: one that ended before it is old.
        assert!(!is_current(
            &row("2026-12-04T11:59:59.000Z", true),
            Some(asked)
        ));
        assert!(!is_current(
            &row("2026-12-04T12:00:08.900+00:00", true),
            Some(asked)
        ));
        // Its job may run before the answer is sent (the answer's date has whole seconds).
        assert!(is_current(
            &row("2026-12-04T12:00:09.000Z", true),
            Some(asked)
        ));
        assert!(is_current(
            &row("2026-12-04T13:00:10.000+01:00", true),
            Some(asked)
        ));
        assert!(is_current(
            &row("2026-12-04T12:00:11.000Z", true),
            Some(asked)
        ));
        // One exported whole is reused by GitLab for three minutes.
        assert!(is_current(
            &row("2026-12-04T11:57:30.000Z", false),
            Some(asked)
        ));
        assert!(!is_current(
            &row("2026-12-04T11:56:30.000Z", false),
            Some(asked)
        ));
        // A source that gives no date, or a status without `updated_at`, is taken as it is.
        assert!(is_current(&row("2020-01-01T00:00:00Z", true), None));
        assert!(is_current(
            &json!({"relation": "labels", "status": 1}),
            Some(asked)
        ));
    }

    #[test]
    fn a_batch_is_gunzipped_and_read_line_by_line() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"id\":1,\"title\":\"bug\"}\n\n{\"id\":2,\"title\":\"ui\"}\n")
            .unwrap();
        let records = ndjson(&gz.finish().unwrap(), "u").unwrap();
        assert_eq!(records.len(), 2);
        // A single record the portable does not have, as GitLab writes it (no newline).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"null").unwrap();
        assert!(ndjson(&gz.finish().unwrap(), "u").unwrap().is_empty());
        assert_eq!(records[1]["title"], "ui");
        assert!(ndjson(b"not gzip", "u").is_err());
    }
}

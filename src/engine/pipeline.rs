//! One relation pipeline of one entity: extract a page, load each record, commit the page (tracker
//! position, counts, id map and failures in one transaction), until the last page. A crash anywhere
//! resumes at the first uncommitted page, whose records are then looked up before they are created.

use super::{EngineError, blocking};
use crate::model::{Failure, Status, now_millis};
use crate::relations::{EntityContext, Relation};
use crate::sink::Sink;
use crate::source::Source;
use crate::store::{MappingScope, PageCommit, Store};
use tokio_util::sync::CancellationToken;

pub(super) struct PipelineRun<'a> {
    pub store: &'a Store,
    pub source: &'a dyn Source,
    pub sink: &'a dyn Sink,
    pub ctx: &'a EntityContext,
    pub scope: &'a MappingScope,
    pub stage: u8,
    pub cancel: &'a CancellationToken,
    /// The entity was written to before this run (a resume or a retry): any record not in the id map
    /// may exist at the destination all the same, so it is looked up before it is created.
    pub continuing: bool,
}

/// How a pipeline ended (when it did not stop the whole entity).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PipelineOutcome {
    Finished,
    Failed,
}

impl PipelineRun<'_> {
    pub async fn run(&self, relation: &dyn Relation) -> Result<PipelineOutcome, EngineError> {
        let name = relation.name();
        let entity_id = self.ctx.entity.id;
        let store = self.store.clone();
        let stage = self.stage;
        let mut tracker =
            blocking(move || store.ensure_tracker(entity_id, name, stage, now_millis())).await?;
        match tracker.status {
            Status::Finished => return Ok(PipelineOutcome::Finished),
            Status::Failed => return Ok(PipelineOutcome::Failed),
            _ => {}
        }
        loop {
            if self.cancel.is_cancelled() {
                return Err(EngineError::Canceled);
            }
            let mut page = match self
                .source
                .extract(relation, self.ctx, tracker.cursor.as_deref())
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_unreachable() => {
                    return Err(EngineError::Unreachable(e.to_string()));
                }
                Err(e) => {
                    let failure = self.failure(
                        relation,
                        "extractor",
                        e.source_class(),
                        e.message(),
                        e.correlation_id(),
                        None,
                    );
                    let store = self.store.clone();
                    blocking(move || {
                        store.end_tracker(
                            entity_id,
                            name,
                            Status::Failed,
                            Some(failure),
                            now_millis(),
                        )
                    })
                    .await?;
                    return Ok(PipelineOutcome::Failed);
                }
            };
            let in_doubt = tracker.in_doubt || self.continuing;
            let via = self.source.via_for(relation, self.ctx);
            let store = self.store.clone();
            blocking(move || store.begin_page(entity_id, name, via, now_millis())).await?;

            // What a record cannot take with it: out before it loads (or goes into a bundle).
            let left_out: Vec<Option<String>> = page
                .records
                .iter_mut()
                .map(|r| relation.leave_out(self.ctx, r))
                .collect();
            let last_page = page.next.is_none();
            let mut commit = PageCommit {
                next_cursor: page.next,
                last_page,
                source_total: page.total,
                fetched: page.records.len() as u64,
                ..Default::default()
            };
            let source_ids: Vec<String> =
                page.records.iter().map(|r| relation.source_id(r)).collect();
            let (store, scope, ids) = (self.store.clone(), self.scope.clone(), source_ids.clone());
            let already = blocking(move || store.mapped_ids_of(&scope, name, &ids)).await?;
            let mut batch = Vec::new();
            let reused = already.iter().filter(|m| m.is_some()).count() as u64;
            for (((record, source_id), mapped), left_out) in page
                .records
                .iter()
                .zip(source_ids)
                .zip(already)
                .zip(left_out)
            {
                if self.cancel.is_cancelled() {
                    return Err(EngineError::Canceled);
                }
                // Written by an earlier run of this migration (a resume or a retry): never again.
                if let Some(dest_id) = mapped {
                    commit.imported.push((source_id, dest_id));
                    continue;
                }
                if let Some(what) = left_out {
                    self.left_out(&mut commit, relation, record, what);
                }
                if relation.loads_in_batches() {
                    batch.push((record, source_id));
                    continue;
                }
                let outcome = self.sink.load(relation, self.ctx, record, in_doubt).await;
                self.settle(&mut commit, relation, record, source_id, outcome)?;
            }
            if !batch.is_empty() {
                // The page as it came when every record is to be loaded (no copy of a page that
                // may be many MiB of records); a copy of the rest when some were loaded before.
                let records: std::borrow::Cow<[serde_json::Value]> =
                    if batch.len() == page.records.len() {
                        std::borrow::Cow::Borrowed(&page.records)
                    } else {
                        batch.iter().map(|(r, _)| (*r).clone()).collect()
                    };
                match self
                    .sink
                    .load_batch(relation, self.ctx, &records, in_doubt)
                    .await
                {
                    Ok(outcomes) => {
                        for ((record, source_id), outcome) in batch.into_iter().zip(outcomes) {
                            self.settle(&mut commit, relation, record, source_id, outcome)?;
                        }
                    }
                    Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                    Err(e) => {
                        for (record, source_id) in batch {
                            self.settle(&mut commit, relation, record, source_id, Err(e.clone()))?;
                        }
                    }
                }
            }
            match self.sink.end_page(relation, self.ctx, tracker.pages).await {
                Ok(()) => {}
                Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                Err(e) => return Err(EngineError::Setup(e.message)),
            }
            let store = self.store.clone();
            let scope = self.scope.clone();
            let wrote = (commit.imported.len() as u64).saturating_sub(reused);
            tracker =
                blocking(move || store.commit_page(entity_id, name, &scope, commit, now_millis()))
                    .await?;
            count_written(self.ctx.entity.bulk_import_id, name, wrote);
            tracing::debug!(
                entity = %self.ctx.entity.source_full_path,
                relation = name,
                page = tracker.pages,
                via,
                "page committed"
            );
            if last_page {
                tracing::info!(
                    entity = %self.ctx.entity.source_full_path,
                    relation = name,
                    source = tracker.stats.source,
                    fetched = tracker.stats.fetched,
                    imported = tracker.stats.imported,
                    via,
                    "relation finished"
                );
                return Ok(PipelineOutcome::Finished);
            }
        }
    }

    /// Files one record's outcome in the page's commit; an unreachable destination stops the run.
    pub(super) fn settle(
        &self,
        commit: &mut PageCommit,
        relation: &dyn Relation,
        record: &serde_json::Value,
        source_id: String,
        outcome: Result<u64, crate::relations::LoadError>,
    ) -> Result<(), EngineError> {
        match outcome {
            Ok(dest_id) => commit.imported.push((source_id, dest_id)),
            Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
            Err(e) if e.is_skip() => commit.skipped.push(self.failure(
                relation,
                "loader",
                &e.class,
                e.message,
                None,
                Some(record),
            )),
            Err(e) => commit.failures.push(self.failure(
                relation,
                "loader",
                &e.class,
                e.message,
                e.correlation_id.as_deref(),
                Some(record),
            )),
        }
        Ok(())
    }

    /// Files what [`Relation::leave_out`] took out of `record` as a skipped row naming the record.
    pub(super) fn left_out(
        &self,
        commit: &mut PageCommit,
        relation: &dyn Relation,
        record: &serde_json::Value,
        what: String,
    ) {
        commit.skipped.push(self.failure(
            relation,
            "transformer",
            crate::relations::SKIPPED_CLASS,
            what,
            None,
            Some(record),
        ));
    }

    fn failure(
        &self,
        relation: &dyn Relation,
        step: &str,
        class: &str,
        message: String,
        correlation_id: Option<&str>,
        record: Option<&serde_json::Value>,
    ) -> Failure {
        Failure {
            entity_id: self.ctx.entity.id,
            relation: relation.name().to_string(),
            step: step.to_string(),
            exception_class: class.to_string(),
            exception_message: message,
            correlation_id: correlation_id
                .map(str::to_string)
                .unwrap_or_else(new_correlation_id),
            source_url: match record {
                Some(r) => relation.source_url(self.ctx, r),
                None => Some(self.ctx.source_web_url()),
            },
            // A failure of the whole relation names its group or project, as its URL does.
            source_title: match record {
                Some(r) => relation.title(r),
                None => Some(self.ctx.entity.source_full_path.clone()),
            },
            pipeline_class: relation.pipeline_class().to_string(),
            created_at: now_millis(),
        }
    }
}

/// What the runs of each bulk import in this process wrote, per relation: records now at the
/// destination that no earlier run had put there (a resume or a retry finds those in the id map).
static WRITTEN: std::sync::Mutex<std::collections::BTreeMap<(u64, String), u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// `n` records of `relation` written for bulk import `bulk` by this process.
pub(super) fn count_written(bulk: u64, relation: &str, n: u64) {
    if n == 0 {
        return;
    }
    let mut written = WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    *written.entry((bulk, relation.to_string())).or_default() += n;
}

/// What this process wrote for bulk import `bulk`, per relation.
pub fn written(bulk: u64) -> std::collections::BTreeMap<String, u64> {
    WRITTEN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .range((bulk, String::new())..(bulk + 1, String::new()))
        .map(|((_, relation), n)| (relation.clone(), *n))
        .collect()
}

/// A correlation id for failures the forge gave none for (32 hex digits, like GitLab's).
pub(super) fn new_correlation_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

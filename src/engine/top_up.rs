//! The archive relations of a project (labels, badges, protected branches and tags, releases,
//! snippets, boards, pipelines, pipeline schedules), checked record by record at the destination
//! and topped up through REST (`crate::relations::top_up` says how each is found and created):
//!
//! - after the import that created the project, for each relation it sent: a record GitLab's
//!   import dropped is created through REST, and one that cannot be (or is refused) is a failure
//!   row with its own title and URL;
//! - on a retry, which finds the project already there: each relation is read from the source
//!   again and what the destination lacks is added the same way, so a retry loads what is missing
//!   of these relations too, not only of those GitLab's relation import takes.

use super::{Engine, EngineError, blocking};
use crate::model::{Failure, now_millis};
use crate::relations::top_up::{ArchiveTopUp, TOP_UPS};
use crate::relations::{EntityContext, Relation};
use crate::sink::Sink;
use crate::source::Source;
use crate::store::{MappingScope, PageCommit};
use serde_json::Value;
use std::collections::HashMap;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Compares `sent` records of an archive relation, staged one per line at `staged`, with what
    /// the destination project lists, and creates through REST those it lacks. `why`: what the
    /// project's import said of the relation, if it named it. The page to commit; None for a sink
    /// that cannot list (not a live destination).
    pub(super) async fn reconcile(
        &self,
        sink: &dyn Sink,
        ctx: &EntityContext,
        top_up: &'static ArchiveTopUp,
        staged: &std::path::Path,
        sent: u64,
        why: Option<String>,
    ) -> Result<Option<PageCommit>, EngineError> {
        let project = ctx
            .destination_project_id()
            .map_err(|e| EngineError::Setup(e.message))?;
        let listed = match sink
            .list(
                &format!("projects/{project}/{}", top_up.list),
                &top_up.query(),
            )
            .await
        {
            Ok(Some(listed)) => listed,
            Ok(None) => return Ok(None),
            Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
            Err(e) => {
                let mut commit = PageCommit {
                    last_page: true,
                    source_total: Some(sent),
                    fetched: sent,
                    ..Default::default()
                };
                commit.failures.push(self.top_up_failure(
                    ctx,
                    top_up,
                    None,
                    &e.class,
                    format!(
                        "the destination's {} could not be listed to check what arrived: {}",
                        top_up.name, e.message
                    ),
                ));
                return Ok(Some(commit));
            }
        };
        let mut present: HashMap<String, Vec<u64>> = HashMap::new();
        for record in &listed {
            if let Some(key) = top_up.dest_key(record) {
                let id = record["id"].as_u64().unwrap_or(0);
                present.entry(key).or_default().push(id);
            }
        }
        drop(listed);
        let dropped = match &why {
            Some(why) => format!("did not arrive with the project's import (it said: {why})"),
            None => "is not at the destination".to_string(),
        };
        let file = tokio::fs::File::open(staged).await.map_err(|e| {
            EngineError::Setup(format!("cannot read the staged {}: {e}", top_up.name))
        })?;
        let mut lines = tokio::io::BufReader::new(file).lines();
        let mut commit = PageCommit {
            last_page: true,
            source_total: Some(sent),
            fetched: sent,
            ..Default::default()
        };
        let mut created = 0;
        while let Some(line) = lines.next_line().await.map_err(|e| {
            EngineError::Setup(format!("cannot read the staged {}: {e}", top_up.name))
        })? {
            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if record.is_null() {
                continue;
            }
            let key = top_up.source_key(&record);
            if let Some(id) = present.get_mut(&key).and_then(Vec::pop) {
                commit.imported.push((key, id));
                continue;
            }
            let what = singular(top_up.name);
            if let Some(cannot) = top_up.cannot() {
                let message = format!("the {what} {dropped}: {cannot}");
                let failure = self.top_up_failure(
                    ctx,
                    top_up,
                    Some(&record),
                    "Appliance::NotImported",
                    message,
                );
                commit.failures.push(failure);
                continue;
            }
            match sink.load(top_up, ctx, &record, false).await {
                Ok(id) => {
                    created += 1;
                    commit.imported.push((key, id));
                }
                Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                Err(e) => {
                    let message = format!(
                        "the {what} {dropped}, and creating it through the REST API failed: {}",
                        e.message
                    );
                    let failure =
                        self.top_up_failure(ctx, top_up, Some(&record), &e.class, message);
                    if e.is_skip() {
                        commit.skipped.push(failure);
                    } else {
                        commit.failures.push(failure);
                    }
                }
            }
        }
        if created > 0 {
            tracing::info!(
                relation = top_up.name,
                created,
                "records the project's import dropped were created through REST"
            );
        }
        Ok(Some(commit))
    }

    /// On a retry that found its project already at the destination: each archive relation this
    /// entity has not checked yet is read from the source again and topped up.
    pub(super) async fn top_up_archive(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &EntityContext,
        scope: &MappingScope,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let entity_id = ctx.entity.id;
        let staging = tempfile::tempdir_in(self.data_dir())
            .map_err(|e| EngineError::Setup(format!("cannot stage the project: {e}")))?;
        for top_up in TOP_UPS {
            if cancel.is_cancelled() {
                return Err(EngineError::Canceled);
            }
            let name = top_up.name;
            let store = self.store.clone();
            let checked = blocking(move || store.tracker(entity_id, name))
                .await?
                .is_some_and(|t| t.status.is_terminal());
            if checked {
                continue;
            }
            let store = self.store.clone();
            blocking(move || store.ensure_tracker(entity_id, name, 0, now_millis())).await?;
            let staged = staging.path().join(format!("{name}.ndjson"));
            let Some(sent) = self
                .stage_archive_relation(source, ctx, name, &staged)
                .await?
            else {
                continue;
            };
            let commit = if sent == 0 {
                None
            } else {
                self.reconcile(sink, ctx, top_up, &staged, sent, None)
                    .await?
            };
            // A sink that cannot list is not a live destination: nothing to top up.
            let commit = commit.unwrap_or(PageCommit {
                last_page: true,
                source_total: Some(sent),
                fetched: sent,
                imported: (0..sent).map(|i| (format!("#{i}"), 0)).collect(),
                ..Default::default()
            });
            self.commit_row(ctx, scope, name, commit).await?;
        }
        Ok(())
    }

    fn top_up_failure(
        &self,
        ctx: &EntityContext,
        top_up: &ArchiveTopUp,
        record: Option<&Value>,
        class: &str,
        message: String,
    ) -> Failure {
        let mut failure = self.failure(ctx, top_up.name, "loader", class, message);
        if let Some(record) = record {
            failure.source_url = top_up.source_url(ctx, record);
            failure.source_title = top_up.title(record);
        }
        failure
    }
}

/// "label" for `labels`, "protected branch" for `protected_branches`.
fn singular(relation: &str) -> String {
    let name = relation
        .trim_start_matches("project_")
        .trim_start_matches("ci_")
        .replace('_', " ");
    name.strip_suffix("es")
        .filter(|n| n.ends_with("ch"))
        .map(str::to_string)
        .or_else(|| name.strip_suffix('s').map(str::to_string))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn relation_names_read_as_one_record() {
        assert_eq!(super::singular("labels"), "label");
        assert_eq!(super::singular("protected_branches"), "protected branch");
        assert_eq!(super::singular("protected_tags"), "protected tag");
        assert_eq!(super::singular("project_badges"), "badge");
        assert_eq!(super::singular("ci_pipelines"), "pipeline");
        assert_eq!(super::singular("pipeline_schedules"), "pipeline schedule");
        assert_eq!(super::singular("releases"), "release");
    }
}

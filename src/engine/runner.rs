//! Drives one bulk import to its end: entities run in rounds (a subgroup only after its parent group
//! exists), a bounded number at a time, each through its stages. A cancel or an unreachable forge stops
//! the run; everything done so far is committed, so running it again continues where it stopped.

use super::pipeline::{PipelineOutcome, PipelineRun, new_correlation_id};
use super::stages::{PROJECTS, SUBGROUPS, group_stages};
use super::{Engine, EngineError, blocking, path_is_within, same_instance};
use crate::model::{BulkImport, Entity, EntityRequest, EntityType, Failure, Status, now_millis};
use crate::relations::{EntityContext, IdLookup, SKIPPED_CLASS};
use crate::sink::Sink;
use crate::source::Source;
use crate::store::{MappingScope, PageCommit};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PROJECTS_PIPELINE: &str = "BulkImports::Groups::Pipelines::ProjectEntitiesPipeline";

/// Removes a bulk import from the set of running ones when its run ends, however it ends.
struct Running<'a> {
    engine: &'a Engine,
    id: u64,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.engine.running.lock() {
            r.remove(&self.id);
        }
        if let Ok(mut s) = self.engine.sources.lock() {
            s.remove(&self.id);
        }
    }
}

impl Engine {
    /// Runs a bulk import until it ends (finished, failed or canceled) or cannot go on (unreachable,
    /// or interrupted by Ctrl-C or SIGTERM: it stops at its next record and stays resumable).
    pub async fn run(self: &Arc<Self>, id: u64) -> Result<BulkImport, EngineError> {
        match self.run_until_stopped(id).await {
            Err(EngineError::Canceled) if crate::interrupt::requested() => {
                let store = self.store.clone();
                let bulk = blocking(move || store.bulk_import(id)).await?;
                if bulk.status == Status::Canceled {
                    Err(EngineError::Canceled)
                } else {
                    Err(EngineError::Interrupted)
                }
            }
            Ok(bulk) => {
                self.remove_staged_export(&bulk);
                Ok(bulk)
            }
            other => other,
        }
    }

    /// An export that finished has its bundle: the pages staged for it (several times the bundle's
    /// size) go. Only once the bulk import says finished, so a crash before never loses what a resume
    /// packs from; a crash after leaves them for a clean-up, nothing worse.
    fn remove_staged_export(&self, bulk: &BulkImport) {
        if bulk.status != Status::Finished
            || !matches!(
                bulk.destination,
                crate::model::DestinationKind::Bundle { .. }
            )
        {
            return;
        }
        let staged = crate::sink::bundle::staging_dir(self.data_dir(), bulk.id);
        if let Err(e) = crate::bundle::Staging::new(staged).remove() {
            tracing::warn!(bulk_import = bulk.id, error = %e, "the staged pages of a finished export stay behind");
        }
    }

    async fn run_until_stopped(self: &Arc<Self>, id: u64) -> Result<BulkImport, EngineError> {
        // A stop asked for by the process (Ctrl-C, SIGTERM) stops every run at its next record, as a
        // cancel does, but leaves the store as it is: the migration resumes at the next start.
        let cancel = crate::interrupt::token().child_token();
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| EngineError::Internal("engine state poisoned".into()))?;
            if running.contains_key(&id) {
                return Err(EngineError::Internal(format!(
                    "bulk import {id} is already running"
                )));
            }
            running.insert(id, cancel.clone());
        }
        let _running = Running { engine: self, id };

        let store = self.store.clone();
        let bulk = blocking(move || store.bulk_import(id)).await?;
        if bulk.status.is_terminal() {
            return Ok(bulk);
        }
        let source = self.open_source(&bulk).await?;
        let sink = self.open_sink(&bulk).await?;

        let store = self.store.clone();
        blocking(move || store.set_bulk_import_status(id, Status::Started, now_millis())).await?;

        loop {
            if cancel.is_cancelled() {
                return Err(EngineError::Canceled);
            }
            let store = self.store.clone();
            let entities = blocking(move || store.entities_of(id)).await?;
            let by_id: HashMap<u64, &Entity> = entities.iter().map(|e| (e.id, e)).collect();
            let mut runnable = Vec::new();
            let mut orphaned = Vec::new();
            for e in entities.iter().filter(|e| !e.status.is_terminal()) {
                match e.parent_id.and_then(|p| by_id.get(&p)).map(|p| p.status) {
                    None | Some(Status::Finished) => runnable.push(e.clone()),
                    Some(s) if s.is_terminal() => orphaned.push(e.clone()),
                    Some(_) => {}
                }
            }
            if runnable.is_empty() && orphaned.is_empty() {
                break;
            }
            for e in orphaned {
                self.fail_entity(
                    &e,
                    "the parent group was not migrated, so this subgroup cannot be created",
                )
                .await?;
            }
            let results: Vec<Result<(), EngineError>> = futures_util::stream::iter(runnable)
                .map(|e| self.run_entity(source.as_ref(), sink.as_ref(), e, &cancel))
                .buffer_unordered(self.config.entity_concurrency.max(1))
                .collect()
                .await;
            // Let every entity of the round reach a safe point before reporting the first problem.
            if let Some(err) = results.into_iter().find_map(Result::err) {
                return Err(err);
            }
        }

        let store = self.store.clone();
        let entities = blocking(move || store.entities_of(id)).await?;
        if cancel.is_cancelled() {
            return Err(EngineError::Canceled);
        }
        sink.finish(&self.store, &bulk, &entities).await?;
        let all_failed =
            !entities.is_empty() && entities.iter().all(|e| e.status == Status::Failed);
        let end = if all_failed {
            Status::Failed
        } else {
            Status::Finished
        };
        let store = self.store.clone();
        Ok(blocking(move || store.set_bulk_import_status(id, end, now_millis())).await?)
    }

    async fn run_entity(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        entity: Entity,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let entity_id = entity.id;
        let mut entity = self
            .update_entity(entity_id, |e| e.status = Status::Started)
            .await?;
        if entity.status != Status::Started {
            return Ok(()); // canceled meanwhile
        }
        let destination_parent_id = match entity.parent_id {
            Some(p) => {
                let store = self.store.clone();
                blocking(move || store.entity(p)).await?.namespace_id
            }
            None => None,
        };
        let scope = MappingScope::new(
            &source.url(),
            &entity.source_full_path,
            &sink.identity(),
            &entity.destination_full_path(),
        );
        let mut ctx = EntityContext {
            entity: entity.clone(),
            ids: IdLookup::new(
                self.store.clone(),
                scope.clone(),
                self.ancestor_scopes(&entity, source, sink).await?,
            ),
            destination_parent_id,
            source_base: source.url(),
            project_members: None,
            design_commits: None,
        };
        if entity.entity_type == EntityType::Project {
            let ran = self
                .run_project(source, sink, &mut ctx, &scope, cancel)
                .await;
            source.project_done(&ctx).await;
            return ran;
        }
        let (store, s) = (self.store.clone(), scope.clone());
        let continuing = !blocking(move || store.mapped_ids(&s, "group"))
            .await?
            .is_empty();
        let stages = group_stages();
        for (stage_no, stage) in stages.iter().enumerate() {
            let run = PipelineRun {
                store: &self.store,
                source,
                sink,
                ctx: &ctx,
                scope: &scope,
                stage: stage_no as u8,
                cancel,
                continuing,
            };
            let outcomes =
                futures_util::future::join_all(stage.iter().map(|r| run.run(r.as_ref()))).await;
            let mut outcomes_ok = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                outcomes_ok.push(o?);
            }
            if stage_no == 0 {
                if outcomes_ok.contains(&PipelineOutcome::Failed) {
                    self.update_entity(entity_id, |e| e.status = Status::Failed)
                        .await?;
                    return Ok(());
                }
                // The group itself was refused (its failure row says why): nothing else can follow.
                let Some(created) = self.record_destination(&entity, &scope).await? else {
                    self.update_entity(entity_id, |e| e.status = Status::Failed)
                        .await?;
                    return Ok(());
                };
                entity = created;
                ctx.entity = entity.clone();
            }
        }
        self.discover_projects(source, sink, &ctx, &scope, stages.len() as u8, cancel)
            .await?;
        self.discover_subgroups(source, sink, &ctx, &scope, stages.len() as u8)
            .await?;
        self.update_entity(entity_id, |e| e.status = Status::Finished)
            .await?;
        Ok(())
    }

    /// The mapping scopes of an entity's ancestors, nearest first, with their destination group ids.
    async fn ancestor_scopes(
        &self,
        entity: &Entity,
        source: &dyn Source,
        sink: &dyn Sink,
    ) -> Result<Vec<(MappingScope, u64)>, EngineError> {
        let mut out = Vec::new();
        let mut next = entity.parent_id;
        while let Some(id) = next {
            let store = self.store.clone();
            let parent = blocking(move || store.entity(id)).await?;
            if let Some(group) = parent.namespace_id {
                let scope = MappingScope::new(
                    &source.url(),
                    &parent.source_full_path,
                    &sink.identity(),
                    &parent.destination_full_path(),
                );
                out.push((scope, group));
            }
            next = parent.parent_id;
        }
        Ok(out)
    }

    /// After the group pipeline: remember the group's source id and the destination id it became.
    /// None when the group was not created (the destination refused it).
    async fn record_destination(
        &self,
        entity: &Entity,
        scope: &MappingScope,
    ) -> Result<Option<Entity>, EngineError> {
        let store = self.store.clone();
        let scope = scope.clone();
        let mapped = blocking(move || store.mapped_ids(&scope, "group")).await?;
        let Some((source_id, dest_id)) = mapped.into_iter().next() else {
            return Ok(None);
        };
        let source_xid = source_id.parse::<u64>().ok();
        let updated = self
            .update_entity(entity.id, move |e| {
                e.namespace_id = Some(dest_id);
                e.source_xid = source_xid;
            })
            .await?;
        Ok(Some(updated))
    }

    /// Turns the direct subgroups of a group into entities of this bulk import. When the source is
    /// the destination instance, a subgroup that is (or is below) a destination of this bulk import
    /// is a group this migration writes: it is skipped and reported, never migrated into itself.
    async fn discover_subgroups(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &EntityContext,
        scope: &MappingScope,
        stage: u8,
    ) -> Result<(), EngineError> {
        let entity = &ctx.entity;
        let (store, entity_id) = (self.store.clone(), entity.id);
        let tracker =
            blocking(move || store.ensure_tracker(entity_id, SUBGROUPS, stage, now_millis()))
                .await?;
        if tracker.status.is_terminal() {
            return Ok(());
        }
        let subgroups = match source.subgroups(ctx).await {
            Ok(s) => s,
            Err(e) if e.is_unreachable() => return Err(EngineError::Unreachable(e.to_string())),
            Err(e) => {
                let pipeline = "BulkImports::Groups::Pipelines::SubgroupEntitiesPipeline";
                return self
                    .end_extraction_failed(ctx, SUBGROUPS, pipeline, e.class(), &e)
                    .await;
            }
        };
        let mut commit = PageCommit {
            last_page: true,
            source_total: Some(subgroups.len() as u64),
            fetched: subgroups.len() as u64,
            ..Default::default()
        };
        let written_here: Vec<String> = if same_instance(&source.url(), &sink.identity()) {
            let (store, bulk_id) = (self.store.clone(), entity.bulk_import_id);
            blocking(move || store.entities_of(bulk_id))
                .await?
                .iter()
                .map(Entity::destination_full_path)
                .collect()
        } else {
            Vec::new()
        };
        for sg in &subgroups {
            let (Some(full_path), Some(path)) = (
                sg.get("full_path").and_then(|v| v.as_str()),
                sg.get("path").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            if let Some(dest) = written_here.iter().find(|d| path_is_within(full_path, d)) {
                commit.skipped.push(Failure {
                    entity_id,
                    relation: SUBGROUPS.into(),
                    step: "extractor".into(),
                    exception_class: SKIPPED_CLASS.into(),
                    exception_message: if full_path.eq_ignore_ascii_case(dest) {
                        format!(
                            "'{full_path}' is a group this migration creates (the source is the \
                             destination instance): it is not migrated into itself"
                        )
                    } else {
                        format!(
                            "'{full_path}' is inside '{dest}', a group this migration creates (the \
                             source is the destination instance): it is not migrated into itself"
                        )
                    },
                    correlation_id: new_correlation_id(),
                    source_url: sg
                        .get("web_url")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    source_title: Some(full_path.to_string()),
                    pipeline_class: "BulkImports::Groups::Pipelines::SubgroupEntitiesPipeline"
                        .into(),
                    created_at: now_millis(),
                });
                continue;
            }
            let req = EntityRequest {
                entity_type: EntityType::Group,
                source_full_path: full_path.to_string(),
                destination_slug: path.to_string(),
                destination_namespace: entity.destination_full_path(),
                migrate_projects: entity.migrate_projects,
                migrate_memberships: entity.migrate_memberships,
            };
            let (store, bulk_id) = (self.store.clone(), entity.bulk_import_id);
            let child =
                blocking(move || store.add_child_entity(bulk_id, entity_id, &req, now_millis()))
                    .await?;
            let source_id = sg.get("id").map(|v| v.to_string()).unwrap_or_default();
            // For subgroups the id map names the entity that migrates each one.
            commit.imported.push((source_id, child.id));
        }
        let (store, scope) = (self.store.clone(), scope.clone());
        blocking(move || store.commit_page(entity_id, SUBGROUPS, &scope, commit, now_millis()))
            .await?;
        Ok(())
    }

    /// Turns the projects of a group into project entities of this bulk import (parent_id set), each
    /// run once the group has finished; a page of the group's project list at a time. Listed and
    /// reported as skipped instead when the request said `migrate_projects: false`, or when the source
    /// lists a project it cannot give (a bundle that does not carry it).
    async fn discover_projects(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &EntityContext,
        scope: &MappingScope,
        stage: u8,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let entity = &ctx.entity;
        let (store, entity_id) = (self.store.clone(), entity.id);
        let mut tracker =
            blocking(move || store.ensure_tracker(entity_id, PROJECTS, stage, now_millis()))
                .await?;
        let written_here: Vec<String> = if same_instance(&source.url(), &sink.identity()) {
            let (store, bulk_id) = (self.store.clone(), entity.bulk_import_id);
            blocking(move || store.entities_of(bulk_id))
                .await?
                .iter()
                .filter(|e| e.entity_type == EntityType::Group)
                .map(Entity::destination_full_path)
                .collect()
        } else {
            Vec::new()
        };
        let relation = crate::relations::projects::Projects;
        while !tracker.status.is_terminal() {
            if cancel.is_cancelled() {
                return Err(EngineError::Canceled);
            }
            let page = match source
                .extract(&relation, ctx, tracker.cursor.as_deref())
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_unreachable() => {
                    return Err(EngineError::Unreachable(e.to_string()));
                }
                Err(e) => {
                    return self
                        .end_extraction_failed(
                            ctx,
                            PROJECTS,
                            PROJECTS_PIPELINE,
                            e.source_class(),
                            &e,
                        )
                        .await;
                }
            };
            let via = source.via_for(&relation, ctx);
            let store = self.store.clone();
            blocking(move || store.begin_page(entity_id, PROJECTS, via, now_millis())).await?;
            let mut commit = PageCommit {
                last_page: page.next.is_none(),
                next_cursor: page.next.clone(),
                source_total: page.total,
                fetched: page.records.len() as u64,
                ..Default::default()
            };
            let mut early = Vec::new();
            for p in &page.records {
                let (Some(full_path), Some(path)) = (
                    p.get("path_with_namespace").and_then(|v| v.as_str()),
                    p.get("path").and_then(|v| v.as_str()),
                ) else {
                    continue;
                };
                let skip = |why: String| Failure {
                    entity_id,
                    relation: PROJECTS.into(),
                    step: "extractor".into(),
                    exception_class: SKIPPED_CLASS.into(),
                    exception_message: why,
                    correlation_id: new_correlation_id(),
                    source_url: Some(format!(
                        "{}/{full_path}",
                        ctx.source_base.trim_end_matches('/')
                    )),
                    source_title: Some(full_path.to_string()),
                    pipeline_class: PROJECTS_PIPELINE.into(),
                    created_at: now_millis(),
                };
                // A bundle keeps the group's list of projects, so a replay finds them.
                match sink.list_child(&relation, ctx, p).await {
                    Ok(()) => {}
                    Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                    Err(e) => return Err(EngineError::Setup(e.message)),
                }
                if !entity.migrate_projects {
                    commit.skipped.push(skip(
                        "migrate_projects is false for this group: its projects are listed, not \
                         migrated"
                            .into(),
                    ));
                    continue;
                }
                if let Some(why) = source.project_absent(full_path) {
                    commit.skipped.push(skip(why));
                    continue;
                }
                if let Some(dest) = written_here.iter().find(|d| path_is_within(full_path, d)) {
                    commit.skipped.push(skip(format!(
                        "'{full_path}' is inside '{dest}', a group this migration creates (the \
                         source is the destination instance): it is not migrated into itself"
                    )));
                    continue;
                }
                let req = EntityRequest {
                    entity_type: EntityType::Project,
                    source_full_path: full_path.to_string(),
                    destination_slug: path.to_string(),
                    destination_namespace: entity.destination_full_path(),
                    migrate_projects: entity.migrate_projects,
                    migrate_memberships: entity.migrate_memberships,
                };
                let (store, bulk_id) = (self.store.clone(), entity.bulk_import_id);
                let child = blocking(move || {
                    store.add_child_entity(bulk_id, entity_id, &req, now_millis())
                })
                .await?;
                let source_id = p.get("id").map(|v| v.to_string()).unwrap_or_default();
                early.extend(p.get("id").and_then(serde_json::Value::as_u64));
                // For projects the id map names the entity that migrates each one.
                commit.imported.push((source_id, child.id));
            }
            match sink.end_page(&relation, ctx, tracker.pages).await {
                Ok(()) => {}
                Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                Err(e) => return Err(EngineError::Setup(e.message)),
            }
            let (store, scope) = (self.store.clone(), scope.clone());
            tracker = blocking(move || {
                store.commit_page(entity_id, PROJECTS, &scope, commit, now_millis())
            })
            .await?;
            // The source builds these projects' exports while the group finishes and the projects
            // before them migrate, as GitLab's direct transfer has every entity's export started
            // when the entity is created.
            futures_util::future::join_all(early.drain(..).map(|id| source.prepare_project(id)))
                .await;
        }
        Ok(())
    }

    /// A pipeline that turns children into entities could not read them: its tracker ends failed,
    /// with the source's words.
    async fn end_extraction_failed(
        &self,
        ctx: &EntityContext,
        relation: &'static str,
        pipeline_class: &str,
        class: &str,
        e: &crate::forge::ForgeError,
    ) -> Result<(), EngineError> {
        let entity_id = ctx.entity.id;
        let failure = Failure {
            entity_id,
            relation: relation.into(),
            step: "extractor".into(),
            exception_class: class.into(),
            exception_message: e.message(),
            correlation_id: e
                .correlation_id()
                .map(str::to_string)
                .unwrap_or_else(new_correlation_id),
            source_url: Some(ctx.source_web_url()),
            source_title: Some(ctx.entity.source_full_path.clone()),
            pipeline_class: pipeline_class.into(),
            created_at: now_millis(),
        };
        let store = self.store.clone();
        blocking(move || {
            store.end_tracker(
                entity_id,
                relation,
                Status::Failed,
                Some(failure),
                now_millis(),
            )
        })
        .await?;
        Ok(())
    }

    async fn fail_entity(&self, entity: &Entity, why: &str) -> Result<(), EngineError> {
        let failure = Failure {
            entity_id: entity.id,
            relation: "group".into(),
            step: "extractor".into(),
            exception_class: "BulkImports::Error".into(),
            exception_message: why.to_string(),
            correlation_id: new_correlation_id(),
            source_url: None,
            source_title: Some(entity.source_full_path.clone()),
            pipeline_class: "BulkImports::Groups::Pipelines::GroupPipeline".into(),
            created_at: now_millis(),
        };
        let (store, entity_id) = (self.store.clone(), entity.id);
        blocking(move || {
            store.ensure_tracker(entity_id, "group", 0, now_millis())?;
            store.end_tracker(
                entity_id,
                "group",
                Status::Failed,
                Some(failure),
                now_millis(),
            )
        })
        .await?;
        self.update_entity(entity.id, |e| e.status = Status::Failed)
            .await?;
        Ok(())
    }

    pub(super) async fn update_entity(
        &self,
        id: u64,
        change: impl FnOnce(&mut Entity) + Send + 'static,
    ) -> Result<Entity, EngineError> {
        let store = self.store.clone();
        Ok(blocking(move || store.update_entity(id, now_millis(), change)).await?)
    }
}

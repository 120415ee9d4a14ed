//! The plan of a project entity, in GitLab's order for its project pipelines:
//!
//! 0. `project`: the project is created by the destination's own project import. Its attributes, the
//!    relations that travel with it (`ARCHIVE_RELATIONS`, each read in full from the source and staged
//!    on disk, a page at a time), its repository and its wiki's (each a `git bundle` of every ref)
//!    make one package the sink turns into what creates the project (a live destination: a GitLab
//!    export archive sent to `POST /projects/import`). Each of those relations, and the wiki's
//!    pages, then counts what the destination holds.
//!    Those of `milestones`, `issues` and `merge_requests` that one page holds travel in it too, for a
//!    sink that reads them back (a live destination), and are counted there record by record.
//! 1. `milestones`, 2. `issues`, 3. `merge_requests`: the relations GitLab's relation import takes,
//!    a page at a time, one relation after the other (a project takes one relation import at a time).
//!    Each page is read back from the destination; a crash redoes at most that page, and GitLab skips
//!    what it already imported.

use super::pipeline::{PipelineOutcome, PipelineRun, new_correlation_id};
use super::{Engine, EngineError, blocking};
use crate::model::{Failure, Status, now_millis};
use crate::relations::project::ProjectAttributes;
use crate::relations::project::{ArchiveRelation, ISSUES, MERGE_REQUESTS, MILESTONES};
use crate::relations::{EntityContext, Relation};
use crate::sink::{ProjectPackage, Sink};
use crate::source::{RepositoryKind, Source};
use crate::store::{MappingScope, PageCommit};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// Relations that travel in the archive that creates the project (GitLab's relation import cannot add
/// them later), by their names in GitLab's export tree, with the REST list that counts them at the
/// destination (None: a single settings record, counted by the import's own report).
pub const ARCHIVE_RELATIONS: &[(&str, Option<&str>)] = &[
    ("labels", Some("labels")),
    // Everyone with access counts: a member the destination group already has is not added again.
    ("project_members", Some("members/all")),
    ("project_badges", Some("badges")),
    ("protected_branches", Some("protected_branches")),
    ("protected_tags", Some("protected_tags")),
    ("releases", Some("releases")),
    ("snippets", Some("snippets")),
    ("boards", Some("boards")),
    ("ci_pipelines", Some("pipelines")),
    ("pipeline_schedules", Some("pipeline_schedules")),
    ("project_feature", None),
    ("ci_cd_settings", None),
    ("container_expiration_policy", None),
    ("auto_devops", None),
    ("push_rule", None),
    ("service_desk_setting", None),
    ("external_pull_requests", None),
    ("commit_notes", None),
];

/// The project's wiki: its repository travels in the archive as `project.wiki.bundle`; the row
/// counts its pages at the source and at the destination.
pub const WIKI: &str = "wiki";

/// The files the project's markdown links to: they travel in the archive as
/// `uploads/<secret>/<filename>`; the row counts them at the source and at the destination
/// (`GET /projects/:id/uploads`, GitLab 17.2; an older destination is trusted with what it got).
pub const UPLOADS: &str = "uploads";

/// The Git LFS objects the project's repository points to: they travel in the archive as
/// `lfs-objects/<oid>`; the row counts them at the source and at the destination (its LFS batch API
/// answers which of them it holds, without downloading any).
pub const LFS_OBJECTS: &str = "lfs_objects";

/// The repositories of the project's snippets: each travels in the archive as
/// `snippets/<hexdigest>.bundle` (GitLab's import finds a snippet's by its title, description and
/// dates); the row counts those sent, and the import fails as a whole when one cannot be restored.
pub const SNIPPET_REPOSITORIES: &str = "snippet_repositories";

/// The project's designs: its design repository travels in the archive as
/// `project.design.bundle`, and its issues keep their designs and versions. The row counts the
/// designs the repository's tip holds (`designs/issue-<iid>/<filename>`); they are counted at the
/// destination once the issues have loaded, each issue's through GraphQL.
pub const DESIGNS: &str = "designs";

/// The relations loaded through GitLab's relation import once the project exists, in order.
pub fn batched_stages() -> Vec<&'static dyn Relation> {
    vec![&MILESTONES, &ISSUES, &MERGE_REQUESTS]
}

/// Every relation name of a project, in stage order, with its stage number (for reports).
pub fn project_relation_names() -> Vec<(u8, &'static str)> {
    let mut out = vec![(0, "project")];
    out.extend(ARCHIVE_RELATIONS.iter().map(|(name, _)| (0, *name)));
    out.push((0, WIKI));
    out.push((0, UPLOADS));
    out.push((0, LFS_OBJECTS));
    out.push((0, SNIPPET_REPOSITORIES));
    out.push((0, DESIGNS));
    out.extend(
        batched_stages()
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u8 + 1, r.name())),
    );
    out
}

impl Engine {
    pub(super) async fn run_project(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &mut EntityContext,
        scope: &MappingScope,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let entity_id = ctx.entity.id;
        let (store, s) = (self.store.clone(), scope.clone());
        let continuing = !blocking(move || store.mapped_ids(&s, "project"))
            .await?
            .is_empty();
        // The members travel with every batch (GitLab maps authors through them): kept from the
        // project's creation when this run created it, staged again otherwise (a resume after a
        // restart), so they are read once per run.
        let staging = tempfile::tempdir_in(self.data_dir())
            .map_err(|e| EngineError::Setup(format!("cannot stage the project: {e}")))?;
        let members = staging.path().join("project_members.ndjson");
        ctx.project_members = None;
        if !self
            .create_project(source, sink, ctx, scope, cancel, &members)
            .await?
        {
            self.update_entity(entity_id, |e| e.status = Status::Failed)
                .await?;
            return Ok(());
        }
        // A project created by an earlier run: its issues keep their designs when their
        // repository travelled then (the designs row keeps its commits until the issues loaded).
        let (store, entity) = (self.store.clone(), entity_id);
        if ctx.design_commits.is_none()
            && let Some(sent) = blocking(move || store.tracker(entity, DESIGNS))
                .await?
                .and_then(|t| t.cursor)
                .and_then(|c| serde_json::from_str::<DesignsSent>(&c).ok())
        {
            ctx.design_commits = Some(std::sync::Arc::new(sent.commits));
        }
        let staged = match ctx.project_members.clone() {
            Some(kept) => Ok(kept),
            None => match stage_relation(source, ctx, "project_members", &members).await {
                Ok(_) => {
                    map_members(sink, &members).await?;
                    Ok(members)
                }
                Err(e) => Err(e),
            },
        };
        match staged {
            Ok(members) => ctx.project_members = Some(members),
            Err(StageError::Source(e)) if e.is_unreachable() => {
                return Err(EngineError::Unreachable(e.to_string()));
            }
            Err(StageError::Source(e)) => {
                tracing::warn!(error = %e, "the project's members could not be read again; its authors may not map");
            }
            Err(StageError::Disk(e)) => {
                return Err(EngineError::Setup(format!("cannot stage the project: {e}")));
            }
        }
        for (i, relation) in batched_stages().into_iter().enumerate() {
            let run = PipelineRun {
                store: &self.store,
                source,
                sink,
                ctx,
                scope,
                stage: i as u8 + 1,
                cancel,
                continuing,
            };
            // A relation that failed is reported; the next ones still load.
            let _: PipelineOutcome = run.run(relation).await?;
        }
        self.settle_designs(sink, ctx, scope).await?;
        self.update_entity(entity_id, |e| e.status = Status::Finished)
            .await?;
        Ok(())
    }

    /// Stage 0. Returns false when the project could not be created (its failure row says why).
    /// When it reads the project's members it stages them at `members` too and sets
    /// `ctx.project_members`, for the batches that follow.
    async fn create_project(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &mut EntityContext,
        scope: &MappingScope,
        cancel: &CancellationToken,
        members: &std::path::Path,
    ) -> Result<bool, EngineError> {
        let entity_id = ctx.entity.id;
        let (store, s) = (self.store.clone(), scope.clone());
        if let Some((source_id, dest_id)) = blocking(move || store.mapped_ids(&s, "project"))
            .await?
            .into_iter()
            .next()
        {
            self.adopt_project(ctx, &source_id, dest_id).await?;
            // A retry: the project is there, but what its import dropped is not.
            self.top_up_archive(source, sink, ctx, scope, cancel)
                .await?;
            return Ok(true);
        }
        let store = self.store.clone();
        let tracker =
            blocking(move || store.ensure_tracker(entity_id, "project", 0, now_millis())).await?;
        if tracker.status == Status::Failed {
            return Ok(false);
        }
        let in_doubt = tracker.in_doubt;

        // The attributes first: their source id addresses the export.
        let page = match source.extract(&ProjectAttributes, ctx, None).await {
            Ok(page) => page,
            Err(e) if e.is_unreachable() => return Err(EngineError::Unreachable(e.to_string())),
            Err(e) => {
                self.fail_stage(ctx, "project", "extractor", e.source_class(), e.message())
                    .await?;
                return Ok(false);
            }
        };
        let Some(attributes) = page.records.into_iter().next() else {
            self.fail_stage(
                ctx,
                "project",
                "extractor",
                "Appliance::SourceRejected",
                format!("the source has no project {}", ctx.entity.source_full_path),
            )
            .await?;
            return Ok(false);
        };
        let source_id = ProjectAttributes.source_id(&attributes);
        if let Ok(xid) = source_id.parse::<u64>() {
            ctx.entity = self
                .update_entity(entity_id, move |e| e.source_xid = Some(xid))
                .await?;
        }

        let staging = tempfile::tempdir_in(self.data_dir())
            .map_err(|e| EngineError::Setup(format!("cannot stage the project: {e}")))?;
        let mut relations = Vec::new();
        let mut counted = Vec::new();
        for (name, count_path) in ARCHIVE_RELATIONS {
            if cancel.is_cancelled() {
                return Err(EngineError::Canceled);
            }
            let store = self.store.clone();
            blocking(move || store.ensure_tracker(entity_id, name, 0, now_millis())).await?;
            let staged = staging.path().join(format!("{name}.ndjson"));
            match self
                .stage_archive_relation(source, ctx, name, &staged)
                .await?
            {
                None => {}
                Some(n) if *name == "project_members" => {
                    // Mapped once (an explicit user map), for the archive and the batches alike.
                    map_members(sink, &staged).await?;
                    if tokio::fs::copy(&staged, members).await.is_ok() {
                        ctx.project_members = Some(members.to_path_buf());
                    }
                    if n > 0 {
                        relations.push((name.to_string(), staged));
                    }
                    counted.push((*name, *count_path, n));
                }
                Some(0) => counted.push((*name, *count_path, 0)),
                Some(n) => {
                    relations.push((name.to_string(), staged));
                    counted.push((*name, *count_path, n));
                }
            }
        }
        let mut repositories = Vec::new();
        // The design repository before any issue is staged: whether it travels decides whether
        // the issues keep their designs. Issues that travel in this archive are read first: when
        // none of them has designs, the project has none, and its design repository is not read.
        let mut designs: Option<DesignPart> = None;
        let inline = self
            .stage_single_pages(
                source,
                sink,
                ctx,
                staging.path(),
                &mut relations,
                &mut designs,
            )
            .await?;
        let designs = match designs {
            Some(decided) => decided,
            None => self.design_part(source, ctx, staging.path()).await?,
        };
        let designs = designs.map(|(contents, bundle)| {
            repositories.extend(bundle.map(|b| (RepositoryKind::Design, b)));
            contents
        });
        match source
            .repository(ctx, RepositoryKind::Project, staging.path())
            .await
        {
            Ok(r) => repositories.extend(r.map(|path| (RepositoryKind::Project, path))),
            Err(e) if e.is_unreachable() => return Err(EngineError::Unreachable(e.to_string())),
            Err(e) => {
                self.fail_stage(ctx, "project", "extractor", e.source_class(), e.message())
                    .await?;
                return Ok(false);
            }
        }
        // The wiki, the files its markdown links to and the LFS objects its repository points
        // to: a project whose part cannot be read is still created, without it, and the part's
        // row says why.
        let wiki = source
            .repository(ctx, RepositoryKind::Wiki, staging.path())
            .await;
        match self.optional_part(ctx, WIKI, wiki).await? {
            Some(None) => counted.push((WIKI, Some("wikis"), 0)),
            Some(Some(bundle)) => match crate::forge::git::wiki_page_count(&bundle).await {
                Ok(pages) => {
                    counted.push((WIKI, Some("wikis"), pages));
                    repositories.push((RepositoryKind::Wiki, bundle));
                }
                Err(e) => {
                    let message = format!("the wiki's git bundle cannot be read: {e}");
                    self.fail_stage(ctx, WIKI, "extractor", "Appliance::GitError", message)
                        .await?;
                }
            },
            None => {}
        }
        let uploads = source.uploads(ctx, staging.path()).await;
        let uploads = self.optional_part(ctx, UPLOADS, uploads).await?;
        if let Some(uploads) = &uploads {
            counted.push((UPLOADS, Some("uploads"), uploads.len() as u64));
        }
        let design_pointers = designs
            .as_ref()
            .map(|d| d.lfs_pointers.clone())
            .unwrap_or_default();
        let lfs = source
            .lfs_objects(ctx, &design_pointers, staging.path())
            .await;
        let lfs = self.optional_part(ctx, LFS_OBJECTS, lfs).await?;
        if let Some(got) = &lfs {
            counted.push((LFS_OBJECTS, None, got.objects.len() as u64));
        }
        let snippets = source
            .snippet_repositories(ctx, &staging.path().join("snippets.ndjson"), staging.path())
            .await;
        let snippet_repositories = self
            .optional_part(ctx, SNIPPET_REPOSITORIES, snippets)
            .await?;
        if let Some(got) = &snippet_repositories {
            counted.push((SNIPPET_REPOSITORIES, None, got.len() as u64));
        }
        let lfs = lfs.unwrap_or_default();
        let (lfs_objects, mut lfs_missing) = (lfs.objects, lfs.missing);
        let lfs_sent: Vec<(String, u64)> = lfs_objects
            .iter()
            .map(|o| (o.oid.clone(), o.size))
            .collect();
        let uploads = uploads.unwrap_or_default();
        let package = ProjectPackage {
            attributes,
            relations,
            repositories,
            uploads,
            lfs_objects,
            snippet_repositories: snippet_repositories.unwrap_or_default(),
        };

        let store = self.store.clone();
        let via = source.via();
        blocking(move || store.begin_page(entity_id, "project", via, now_millis())).await?;
        let created = match sink.create_project(ctx, &package, in_doubt).await {
            Ok(created) => created,
            Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
            Err(e) => {
                let skip = e.is_skip();
                let failure = self.failure(ctx, "project", "loader", &e.class, e.message);
                let commit = PageCommit {
                    last_page: true,
                    source_total: Some(1),
                    fetched: 1,
                    failures: if skip { vec![] } else { vec![failure.clone()] },
                    skipped: if skip { vec![failure] } else { vec![] },
                    ..Default::default()
                };
                let (store, scope) = (self.store.clone(), scope.clone());
                blocking(move || {
                    store.commit_page(entity_id, "project", &scope, commit, now_millis())
                })
                .await?;
                return Ok(false);
            }
        };
        // The records dropped by the import are created through REST: they need the project's id.
        self.adopt_project(ctx, &source_id, created.id).await?;

        // What arrived of each relation that travelled in the archive, counted at the destination.
        for (name, count_path, sent) in counted {
            // Counted by a run that stopped before the project was recorded: not counted twice.
            let store = self.store.clone();
            let counted_before = blocking(move || store.tracker(entity_id, name))
                .await?
                .is_some_and(|t| t.status.is_terminal());
            if counted_before {
                continue;
            }
            let failed = created
                .failed_relations
                .iter()
                .filter(|(r, _)| r == name)
                .map(|(_, why)| why.clone())
                .collect::<Vec<_>>();
            let top_up = crate::relations::top_up::find(name).filter(|_| sent > 0);
            // A list that counts only the project's own records is counted first: when every
            // record arrived, one request says so.
            let arrived = match count_path {
                _ if top_up.is_some_and(|t| !t.counts_exactly) => None,
                Some(path) if sent > 0 => sink_count(sink, created.id, path).await?,
                // LFS objects have no REST list: the destination's LFS batch API says which it has.
                None if name == LFS_OBJECTS && sent > 0 => {
                    let dest = ctx.entity.destination_full_path();
                    match sink.lfs_present(&dest, &lfs_sent).await {
                        Ok(Some(n)) => Some(n),
                        Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
                        // Not a live destination, or one that would not say: its import's report.
                        _ if failed.is_empty() => Some(sent),
                        _ => Some(0),
                    }
                }
                _ if failed.is_empty() => Some(sent),
                _ => Some(0),
            };
            // Else found record by record, and what the import dropped created through REST.
            if let Some(top_up) = top_up
                && (arrived.is_none_or(|n| n < sent) || !failed.is_empty())
                && let Some(commit) = self
                    .reconcile(
                        sink,
                        ctx,
                        top_up,
                        &staging.path().join(format!("{name}.ndjson")),
                        sent,
                        (!failed.is_empty()).then(|| failed.join("; ")),
                    )
                    .await?
            {
                self.commit_row(ctx, scope, name, commit).await?;
                continue;
            }
            let arrived = arrived.unwrap_or(sent).min(sent);
            // LFS objects the source could not give are counted at the source and reported.
            let missing = if name == LFS_OBJECTS {
                std::mem::take(&mut lfs_missing)
            } else {
                Vec::new()
            };
            let mut commit = PageCommit {
                last_page: true,
                source_total: Some(sent + missing.len() as u64),
                fetched: sent,
                imported: (0..arrived)
                    .map(|i| (format!("#{i}"), created.id))
                    .collect(),
                ..Default::default()
            };
            if arrived < sent && failed.is_empty() && name == "project_members" {
                // GitLab's import adds only the members it maps: by email, for an administrator.
                let mut skipped = self.failure(
                    ctx,
                    name,
                    "loader",
                    crate::relations::SKIPPED_CLASS,
                    format!(
                        "{} of {sent} project members have no access at the destination: GitLab's \
                         project import adds a member only when the importing token is an \
                         administrator's and the member's email matches a destination user",
                        sent - arrived
                    ),
                );
                skipped.pipeline_class = "BulkImports::Common::Pipelines::MembersPipeline".into();
                commit.skipped.push(skipped);
            } else if arrived < sent || !failed.is_empty() {
                let what = if name == WIKI { "wiki pages" } else { name };
                let why = if failed.is_empty() {
                    "the destination's import did not say why".to_string()
                } else {
                    failed.join("; ")
                };
                commit.failures.push(self.failure(
                    ctx,
                    name,
                    "loader",
                    "Appliance::NotImported",
                    format!(
                        "{} of {sent} {what} did not arrive at the destination: {why}",
                        sent - arrived
                    ),
                ));
            }
            if !missing.is_empty() {
                let list = missing
                    .iter()
                    .map(|(oid, why)| format!("{oid}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                commit.failures.push(self.failure(
                    ctx,
                    name,
                    "extractor",
                    "Appliance::LfsObjectMissing",
                    format!(
                        "{} LFS objects the repository points to could not be read from the source: {list}",
                        missing.len()
                    ),
                ));
            }
            self.commit_row(ctx, scope, name, commit).await?;
        }
        if let Some(designs) = designs {
            let sent = DesignsSent {
                designs: designs.designs,
                commits: designs.commits,
            };
            self.designs_sent(ctx, scope, &sent, &created).await?;
        }
        for page in inline {
            let run = PipelineRun {
                store: &self.store,
                source,
                sink,
                ctx,
                scope,
                stage: page.stage,
                cancel,
                continuing: false,
            };
            self.settle_single_page(&run, &created, page).await?;
        }
        drop(staging);
        let commit = PageCommit {
            last_page: true,
            source_total: Some(1),
            fetched: 1,
            imported: vec![(source_id.clone(), created.id)],
            ..Default::default()
        };
        let (store, s) = (self.store.clone(), scope.clone());
        blocking(move || store.commit_page(entity_id, "project", &s, commit, now_millis())).await?;
        super::pipeline::count_written(ctx.entity.bulk_import_id, "project", 1);
        Ok(true)
    }

    /// The project's design repository, read from the source: what it holds and its `git bundle`
    /// (none for a project without one), with `ctx.design_commits` set so that the issues keep
    /// their designs; None when it could not be read (its row then fails, saying why).
    async fn design_part(
        &self,
        source: &dyn Source,
        ctx: &mut EntityContext,
        staging: &std::path::Path,
    ) -> Result<DesignPart, EngineError> {
        let design = source
            .repository(ctx, RepositoryKind::Design, staging)
            .await;
        Ok(match self.optional_part(ctx, DESIGNS, design).await? {
            Some(None) => Some((Default::default(), None)),
            Some(Some(bundle)) => match crate::forge::git::design_contents(&bundle).await {
                Ok(contents) => {
                    ctx.design_commits = Some(std::sync::Arc::new(contents.commits.clone()));
                    Some((contents, Some(bundle)))
                }
                Err(e) => {
                    let message = format!("the design repository's git bundle cannot be read: {e}");
                    self.fail_stage(ctx, DESIGNS, "extractor", "Appliance::GitError", message)
                        .await?;
                    None
                }
            },
            None => None,
        })
    }

    /// The relations GitLab's relation import takes (`batched_stages`) that one page holds whole: read
    /// now and staged to travel in the archive that creates the project, so that a project of a few
    /// hundred issues is one import, not one per relation with its polls. Only for a sink that can
    /// read them back ([`Sink::reads_back_archive_relations`]), and only for a relation the source
    /// can say is one page without reading it; any other, or one that cannot be read now, loads in
    /// its own stage as before. When the issues are read here, `designs` is decided here too
    /// ([`Engine::design_part`] only when one of them has designs), before they are staged.
    async fn stage_single_pages(
        &self,
        source: &dyn Source,
        sink: &dyn Sink,
        ctx: &mut EntityContext,
        staging: &std::path::Path,
        relations: &mut Vec<(String, std::path::PathBuf)>,
        designs: &mut Option<DesignPart>,
    ) -> Result<Vec<SinglePage>, EngineError> {
        let mut out = Vec::new();
        if !sink.reads_back_archive_relations() {
            return Ok(out);
        }
        for (stage, relation) in batched_stages().into_iter().enumerate() {
            let name = relation.name();
            let (store, entity_id) = (self.store.clone(), ctx.entity.id);
            if blocking(move || store.tracker(entity_id, name))
                .await?
                .is_some()
            {
                // Counted by an earlier run, or loading in its own stage: left to it.
                continue;
            }
            match source.pages(relation, ctx).await {
                Ok(Some(1)) => {}
                Err(e) if e.is_unreachable() => {
                    return Err(EngineError::Unreachable(e.to_string()));
                }
                _ => continue,
            }
            let mut page = match source.extract(relation, ctx, None).await {
                Ok(page) if page.next.is_none() => page,
                Err(e) if e.is_unreachable() => {
                    return Err(EngineError::Unreachable(e.to_string()));
                }
                _ => continue,
            };
            if relation.name() == ISSUES.name() && designs.is_none() {
                // Designs belong to issues: with every issue in hand, a project none of whose
                // issues has designs has none to move.
                let any = page
                    .records
                    .iter()
                    .any(crate::relations::project::has_designs);
                *designs = Some(if any {
                    self.design_part(source, ctx, staging).await?
                } else {
                    Some((Default::default(), None))
                });
            }
            let left_out: Vec<Option<String>> = page
                .records
                .iter_mut()
                .map(|r| relation.leave_out(ctx, r))
                .collect();
            if !page.records.is_empty() {
                let staged = staging.join(format!("{name}.ndjson"));
                let mut lines = Vec::new();
                for record in &page.records {
                    serde_json::to_writer(&mut lines, record)
                        .map_err(|e| EngineError::Setup(e.to_string()))?;
                    lines.push(b'\n');
                }
                tokio::fs::write(&staged, lines).await.map_err(|e| {
                    EngineError::Setup(format!(
                        "cannot stage the {name} of {}: {e}",
                        ctx.entity.source_full_path
                    ))
                })?;
                relations.push((name.to_string(), staged));
            }
            // Only what the read-back and a failure row use (iid, title) waits in memory for the
            // import to end: the records themselves are on disk, and a page can be many MiB.
            let records = page
                .records
                .iter()
                .map(|r| serde_json::json!({"iid": r.get("iid"), "title": r.get("title")}))
                .collect();
            out.push(SinglePage {
                relation,
                stage: stage as u8 + 1,
                records,
                left_out,
                total: page.total,
                via: source.via_for(relation, ctx),
            });
        }
        Ok(out)
    }

    /// A relation that travelled in the creating archive ([`Engine::stage_single_pages`]): what
    /// arrived, read back from the destination record by record, committed as the relation's one
    /// page, so its own stage finds it done.
    async fn settle_single_page(
        &self,
        run: &PipelineRun<'_>,
        created: &crate::sink::CreatedProject,
        page: SinglePage,
    ) -> Result<(), EngineError> {
        let SinglePage {
            relation,
            stage,
            records,
            left_out,
            total,
            via,
        } = page;
        let (name, entity_id) = (relation.name(), run.ctx.entity.id);
        let store = self.store.clone();
        let tracker =
            blocking(move || store.ensure_tracker(entity_id, name, stage, now_millis())).await?;
        if tracker.status.is_terminal() {
            return Ok(());
        }
        let store = self.store.clone();
        blocking(move || store.begin_page(entity_id, name, via, now_millis())).await?;
        let why = created
            .failed_relations
            .iter()
            .filter(|(r, _)| r == name)
            .map(|(_, why)| why.clone())
            .reduce(|a, b| format!("{a}; {b}"));
        let outcomes = match run.sink.arrived(relation, created.id, &records, why).await {
            Ok(Some(outcomes)) => outcomes,
            Ok(None) => {
                return Err(EngineError::Setup(format!(
                    "the destination cannot say which {name} arrived"
                )));
            }
            Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
            Err(e) => records.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut commit = PageCommit {
            last_page: true,
            source_total: total,
            fetched: records.len() as u64,
            ..Default::default()
        };
        for ((record, outcome), left) in records.iter().zip(outcomes).zip(left_out) {
            if let Some(what) = left {
                run.left_out(&mut commit, relation, record, what);
            }
            run.settle(
                &mut commit,
                relation,
                record,
                relation.source_id(record),
                outcome,
            )?;
        }
        let wrote = commit.imported.len() as u64;
        let (store, scope) = (self.store.clone(), run.scope.clone());
        blocking(move || store.commit_page(entity_id, name, &scope, commit, now_millis())).await?;
        super::pipeline::count_written(run.ctx.entity.bulk_import_id, name, wrote);
        Ok(())
    }

    /// The designs that travelled in the archive that created the project, recorded as the first
    /// page of the designs row: counted at the source now, at the destination once the issues
    /// (which carry the designs' records) have loaded ([`Engine::settle_designs`]). What was sent
    /// waits in the row's cursor, so a resume after a restart still knows it.
    async fn designs_sent(
        &self,
        ctx: &EntityContext,
        scope: &MappingScope,
        designs: &DesignsSent,
        created: &crate::sink::CreatedProject,
    ) -> Result<(), EngineError> {
        let (store, entity_id) = (self.store.clone(), ctx.entity.id);
        // Ensured here too: a project none of whose issues has designs never read the repository.
        let tracker =
            blocking(move || store.ensure_tracker(entity_id, DESIGNS, 0, now_millis())).await?;
        if tracker.status.is_terminal() || tracker.cursor.is_some() {
            return Ok(());
        }
        let sent = designs.designs.len() as u64;
        let mut commit = PageCommit {
            last_page: sent == 0,
            source_total: Some(sent),
            fetched: sent,
            ..Default::default()
        };
        if sent > 0 {
            let cursor =
                serde_json::to_string(designs).map_err(|e| EngineError::Internal(e.to_string()))?;
            commit.next_cursor = Some(cursor);
        }
        let why: Vec<String> = created
            .failed_relations
            .iter()
            .filter(|(r, _)| r == "design" || r == DESIGNS)
            .map(|(_, why)| why.clone())
            .collect();
        if !why.is_empty() {
            commit.failures.push(self.failure(
                ctx,
                DESIGNS,
                "loader",
                "Appliance::NotImported",
                format!(
                    "the destination's import did not restore the design repository: {}",
                    why.join("; ")
                ),
            ));
        }
        let (store, scope) = (self.store.clone(), scope.clone());
        blocking(move || store.commit_page(entity_id, DESIGNS, &scope, commit, now_millis()))
            .await?;
        Ok(())
    }

    /// The designs row, once the issues have loaded: each design that travelled
    /// ([`Engine::designs_sent`]) is looked for on its issue at the destination; every issue
    /// missing some is a failure row with its URL, naming them. A sink that cannot say (a bundle)
    /// holds what it was given.
    async fn settle_designs(
        &self,
        sink: &dyn Sink,
        ctx: &EntityContext,
        scope: &MappingScope,
    ) -> Result<(), EngineError> {
        let (store, entity_id) = (self.store.clone(), ctx.entity.id);
        let Some(tracker) = blocking(move || store.tracker(entity_id, DESIGNS)).await? else {
            return Ok(());
        };
        let Some(cursor) = tracker.cursor.filter(|_| !tracker.status.is_terminal()) else {
            return Ok(());
        };
        let sent: DesignsSent = serde_json::from_str(&cursor).map_err(|e| {
            EngineError::Internal(format!("the designs row's list cannot be read: {e}"))
        })?;
        let mut by_issue: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (iid, filename) in sent.designs {
            by_issue.entry(iid).or_default().push(filename);
        }
        let iids: Vec<u64> = by_issue.keys().copied().collect();
        let dest_path = ctx.entity.destination_full_path();
        let project = ctx.entity.project_id.unwrap_or_default();
        let found = match sink.designs(&dest_path, &iids).await {
            Ok(found) => Ok(found),
            Err(e) if e.unreachable => return Err(EngineError::Unreachable(e.message)),
            Err(e) => Err(e.message),
        };
        let mut commit = PageCommit {
            last_page: true,
            ..Default::default()
        };
        for (iid, sent) in by_issue {
            let (arrived, missing): (Vec<String>, Vec<String>) = match &found {
                // A bundle holds what it was given.
                Ok(None) => (sent, Vec::new()),
                Ok(Some(found)) => {
                    let there = found.get(&iid).cloned().unwrap_or_default();
                    sent.into_iter().partition(|f| there.contains(f))
                }
                Err(_) => (Vec::new(), sent),
            };
            commit
                .imported
                .extend(arrived.iter().map(|f| (format!("{iid}/{f}"), project)));
            if missing.is_empty() {
                continue;
            }
            let why = match &found {
                Err(e) => format!("the destination could not be asked for them: {e}"),
                Ok(Some(found)) if !found.contains_key(&iid) => {
                    "their issue is not at the destination (its own row says why)".to_string()
                }
                _ => "the destination's issue does not list them".to_string(),
            };
            let mut failure = self.failure(
                ctx,
                DESIGNS,
                "loader",
                "Appliance::NotImported",
                format!(
                    "{} of the issue's designs did not arrive ({}): {why}",
                    missing.len(),
                    missing.join(", ")
                ),
            );
            failure.source_url = Some(format!("{}/-/issues/{iid}", ctx.source_web_url()));
            failure.source_title = Some(format!("designs of issue #{iid}"));
            failure.pipeline_class =
                "BulkImports::Projects::Pipelines::DesignBundlePipeline".into();
            commit.failures.push(failure);
        }
        self.commit_row(ctx, scope, DESIGNS, commit).await
    }

    /// Commits the one page of a project row and counts what it wrote for this process's metrics.
    pub(super) async fn commit_row(
        &self,
        ctx: &EntityContext,
        scope: &MappingScope,
        name: &'static str,
        commit: PageCommit,
    ) -> Result<(), EngineError> {
        let wrote = commit.imported.len() as u64;
        let (store, scope, entity_id) = (self.store.clone(), scope.clone(), ctx.entity.id);
        blocking(move || store.commit_page(entity_id, name, &scope, commit, now_millis())).await?;
        super::pipeline::count_written(ctx.entity.bulk_import_id, name, wrote);
        Ok(())
    }

    /// Stages archive relation `name` from the source at `staged` and records how it was read: its
    /// record count, or None when the source could not give it (its row then fails, saying why);
    /// an unreachable source pauses the migration.
    pub(super) async fn stage_archive_relation(
        &self,
        source: &dyn Source,
        ctx: &EntityContext,
        name: &'static str,
        staged: &std::path::Path,
    ) -> Result<Option<u64>, EngineError> {
        match stage_relation(source, ctx, name, staged).await {
            Ok(n) => {
                let via = source.via_for(&ArchiveRelation { name }, ctx);
                let (store, entity_id) = (self.store.clone(), ctx.entity.id);
                blocking(move || store.record_via(entity_id, name, via)).await?;
                Ok(Some(n))
            }
            Err(StageError::Source(e)) if e.is_unreachable() => {
                Err(EngineError::Unreachable(e.to_string()))
            }
            Err(StageError::Source(e)) => {
                self.fail_stage(ctx, name, "extractor", e.source_class(), e.message())
                    .await?;
                Ok(None)
            }
            Err(StageError::Disk(e)) => Err(EngineError::Setup(format!(
                "cannot stage the {name} of {}: {e}",
                ctx.entity.source_full_path
            ))),
        }
    }

    /// The entity now knows its destination project.
    async fn adopt_project(
        &self,
        ctx: &mut EntityContext,
        source_id: &str,
        dest_id: u64,
    ) -> Result<(), EngineError> {
        let xid = source_id.parse::<u64>().ok();
        ctx.entity = self
            .update_entity(ctx.entity.id, move |e| {
                e.project_id = Some(dest_id);
                if xid.is_some() {
                    e.source_xid = xid;
                }
            })
            .await?;
        Ok(())
    }

    /// A part of a project it can be created without (its wiki, uploads, LFS objects): what the
    /// source gave, or None when it could not read it (the part's row then fails, saying why); an
    /// unreachable source pauses the migration.
    async fn optional_part<T>(
        &self,
        ctx: &EntityContext,
        name: &'static str,
        got: Result<T, crate::forge::ForgeError>,
    ) -> Result<Option<T>, EngineError> {
        let (store, entity_id) = (self.store.clone(), ctx.entity.id);
        blocking(move || store.ensure_tracker(entity_id, name, 0, now_millis())).await?;
        match got {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_unreachable() => Err(EngineError::Unreachable(e.to_string())),
            Err(e) => {
                self.fail_stage(ctx, name, "extractor", e.source_class(), e.message())
                    .await?;
                Ok(None)
            }
        }
    }

    pub(super) fn failure(
        &self,
        ctx: &EntityContext,
        relation: &str,
        step: &str,
        class: &str,
        message: String,
    ) -> Failure {
        Failure {
            entity_id: ctx.entity.id,
            relation: relation.to_string(),
            step: step.to_string(),
            exception_class: class.to_string(),
            exception_message: message,
            correlation_id: new_correlation_id(),
            source_url: Some(ctx.source_web_url()),
            source_title: Some(ctx.entity.source_full_path.clone()),
            pipeline_class: "BulkImports::Projects::Pipelines::ProjectPipeline".into(),
            created_at: now_millis(),
        }
    }

    async fn fail_stage(
        &self,
        ctx: &EntityContext,
        relation: &'static str,
        step: &str,
        class: &str,
        message: String,
    ) -> Result<(), EngineError> {
        let failure = self.failure(ctx, relation, step, class, message);
        let (store, entity_id) = (self.store.clone(), ctx.entity.id);
        blocking(move || {
            store.ensure_tracker(entity_id, relation, 0, now_millis())?;
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
}

/// What a project's design repository holds and its `git bundle` (none without one); None when
/// it could not be read.
type DesignPart = Option<(
    crate::forge::git::DesignContents,
    Option<std::path::PathBuf>,
)>;

/// What of a project's design repository travelled with it, kept in the designs row's cursor
/// until its issues have loaded: the designs to look for at the destination (issue iid, filename),
/// and the repository's commits (an issue keeps its designs when its versions are among them).
#[derive(serde::Serialize, serde::Deserialize)]
struct DesignsSent {
    designs: Vec<(u64, String)>,
    commits: std::collections::BTreeSet<String>,
}

/// One page of a relation that loads in batches, read in stage 0 to travel in the creating archive.
struct SinglePage {
    relation: &'static dyn Relation,
    stage: u8,
    /// Each record's iid and title.
    records: Vec<serde_json::Value>,
    /// What [`Relation::leave_out`] took out of each record.
    left_out: Vec<Option<String>>,
    total: Option<u64>,
    via: &'static str,
}

/// Why a relation could not be staged.
enum StageError {
    Source(crate::forge::ForgeError),
    Disk(std::io::Error),
}

/// Reads every page of an archive relation into `staged` (one record per line); the record count.
/// A page (about a batch of records) is serialized in memory and appended without blocking the
/// runtime.
async fn stage_relation(
    source: &dyn Source,
    ctx: &EntityContext,
    name: &'static str,
    staged: &std::path::Path,
) -> Result<u64, StageError> {
    use tokio::io::AsyncWriteExt;
    let relation = ArchiveRelation { name };
    let mut out = tokio::fs::File::create(staged)
        .await
        .map_err(StageError::Disk)?;
    let (mut cursor, mut count) = (None::<String>, 0u64);
    loop {
        let page = source
            .extract(&relation, ctx, cursor.as_deref())
            .await
            .map_err(StageError::Source)?;
        let mut lines = Vec::new();
        for record in &page.records {
            serde_json::to_writer(&mut lines, record).map_err(|e| StageError::Disk(e.into()))?;
            lines.push(b'\n');
            count += 1;
        }
        out.write_all(&lines).await.map_err(StageError::Disk)?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.flush().await.map_err(StageError::Disk)?;
    Ok(count)
}

/// An explicit user map applied to staged project members (a live destination rewrites their emails).
async fn map_members(sink: &dyn Sink, staged: &std::path::Path) -> Result<(), EngineError> {
    match sink.map_project_members(staged).await {
        Ok(()) => Ok(()),
        Err(e) if e.unreachable => Err(EngineError::Unreachable(e.message)),
        Err(e) => Err(EngineError::Setup(e.message)),
    }
}

/// How many records a destination project's REST list holds (None: not a live destination).
async fn sink_count(sink: &dyn Sink, project: u64, path: &str) -> Result<Option<u64>, EngineError> {
    match sink.count(&format!("projects/{project}/{path}")).await {
        Ok(n) => Ok(n),
        Err(e) if e.unreachable => Err(EngineError::Unreachable(e.message)),
        Err(_) => Ok(None),
    }
}

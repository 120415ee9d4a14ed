//! A live GitLab source. Relations that GitLab's relation export holds are read from it, a batch at a
//! time, where the source offers it to this token (a project it does not offer it for is exported
//! whole, and read from that archive a page at a time); every other relation (and every relation of a
//! source that does not export) is read through its REST list endpoint, one page at a time, or, for
//! what GitLab serves only through GraphQL, through its GraphQL connection, one page per cursor.

use super::export::Exports;
use super::{ExtractedPage, ProjectUpload, RepositoryKind, SnippetRepository, Source, files};
use crate::forge::{ForgeError, GitLab};
use crate::relations::{EntityContext, Extraction, Relation};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A git failure as a forge error naming the repository (the token is never in it).
fn git_error(url: &url::Url, e: crate::forge::git::GitError) -> ForgeError {
    ForgeError::Network {
        method: "git".into(),
        url: url.to_string(),
        message: e.to_string(),
        maybe_applied: false,
    }
}

/// `to` as a hard link to `from`, or a copy where the two are on different file systems.
fn link_or_copy(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

/// What a clone found at a repository's URL.
enum Cloned {
    Yes,
    /// The forge has no repository there (the error says so).
    Missing(ForgeError),
}

/// Cursor of a relation read from the export: the next batch number.
const EXPORT_CURSOR: &str = "export:";
/// Cursor of a relation read through GraphQL: the connection's end cursor.
const GRAPHQL_CURSOR: &str = "graphql:";

/// The (oid, size) of each LFS pointer in a repository, or why they could not be read.
type LfsPointers = Result<Vec<(String, u64)>, String>;

pub struct LiveSource {
    gitlab: GitLab,
    exports: Exports,
    /// How each (entity, relation) was last read.
    via: Mutex<HashMap<(u64, &'static str), &'static str>>,
    /// The LFS pointers (oid, size) found in each project entity's repository when it was cloned,
    /// or why they could not be read; taken by `lfs_objects`.
    lfs_pointers: Mutex<HashMap<u64, LfsPointers>>,
}

impl LiveSource {
    /// Whether the project has a wiki with pages: a wiki that is turned off (403), not visible
    /// (404) or without pages has nothing to migrate, and its repository is not cloned.
    async fn has_wiki(&self, ctx: &EntityContext) -> Result<bool, ForgeError> {
        let path = format!("{}/wikis", ctx.source_portable());
        match self.gitlab.client.get(&path, &[]).await {
            Ok(pages) => Ok(pages.as_array().is_some_and(|p| !p.is_empty())),
            Err(e) if matches!(e.status(), Some(403) | Some(404)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A relation only the relation export has, which the source failed to export: a failure that
    /// quotes the source, never an empty relation.
    fn export_failed(&self, ctx: &EntityContext, relation: &str, why: &str) -> ForgeError {
        ForgeError::Unsupported(format!(
            "{} could not export the {relation} of {}, so they are not migrated: {why}",
            self.url(),
            ctx.entity.source_full_path,
        ))
    }

    /// A mirror clone of `url` at `mirror`; a clone that failed (a 5xx, a reset) is started again
    /// from scratch, as often and as spaced out as the HTTP client retries a request (git cannot
    /// retry the requests of a clone one by one), before the migration pauses.
    async fn mirror_clone(
        &self,
        url: &url::Url,
        mirror: &std::path::Path,
    ) -> Result<Cloned, ForgeError> {
        let client = &self.gitlab.client;
        let again = std::sync::atomic::AtomicBool::new(false);
        let cloned = client
            .retry_work(
                "cloning",
                || {
                    let retry = again.swap(true, std::sync::atomic::Ordering::Relaxed);
                    async move {
                        if retry {
                            // What the failed try left behind.
                            let _ = tokio::fs::remove_dir_all(mirror).await;
                        }
                        crate::forge::git::mirror_clone(client.base(), client.token(), url, mirror)
                            .await
                    }
                },
                |e: &crate::forge::git::GitError| !e.is_not_found(),
            )
            .await;
        match cloned {
            Ok(()) => Ok(Cloned::Yes),
            Err(e) if e.is_not_found() => Ok(Cloned::Missing(git_error(url, e))),
            Err(e) => Err(git_error(url, e)),
        }
    }

    /// The project's design repository, from its relation export (`relation=design`, exported
    /// whole: a gzipped tar holding `design.bundle`, or nothing when the project has no design
    /// repository): GitLab refuses git access to a design repository. A source that exports the
    /// project without listing `design` (a GitLab from before designs were exported) has none to
    /// give; one that does not export at all neither, and its issues are not read either.
    async fn design_repository(
        &self,
        ctx: &EntityContext,
        dir: &std::path::Path,
    ) -> Result<Option<std::path::PathBuf>, ForgeError> {
        let portable = ctx.source_portable();
        if let Some(file) = self.exports.file(&self.gitlab, &portable).await? {
            let Some(design) = file.design.as_deref() else {
                return Ok(None);
            };
            let bundle = dir.join(RepositoryKind::Design.archive_name());
            let (from, to) = (design.to_path_buf(), bundle.clone());
            files::off_runtime(bundle.display().to_string(), move || {
                link_or_copy(&from, &to)
                    .map_err(|e| format!("cannot stage the exported design repository: {e}"))
            })
            .await?;
            return Ok(Some(bundle));
        }
        let exported = self
            .exports
            .relation(&self.gitlab, &portable, "design")
            .await?;
        if let Some(why) = exported.as_ref().and_then(|e| e.failed.as_deref()) {
            return Err(self.export_failed(ctx, "design repository", why));
        }
        if exported.is_none() {
            return Ok(None);
        }
        // Designs belong to issues: a project whose batched export counts no issue has none, and
        // its design relation is not downloaded (an empty tar).
        let issues = self
            .exports
            .relation(&self.gitlab, &portable, "issues")
            .await?;
        if issues.is_some_and(|i| !i.whole && i.failed.is_none() && i.batches == 0 && i.total == 0)
        {
            return Ok(None);
        }
        let path = format!("{portable}/export_relations/download?relation=design");
        let tar_gz = dir.join("design.tar.gz");
        self.gitlab.client.download_to(&path, &tar_gz).await?;
        let url = self.gitlab.client.api_url(&path);
        let bundle = dir.join(RepositoryKind::Design.archive_name());
        let (from, into) = (tar_gz.clone(), bundle.clone());
        let unpacked = files::off_runtime(url, move || files::unpack_design(&from, &into)).await;
        let _ = tokio::fs::remove_file(&tar_gz).await;
        Ok(unpacked?.then_some(bundle))
    }

    /// A source that downloads and unpacks what it must (a whole-project export) under `work_dir`.
    pub fn new(gitlab: GitLab, work_dir: std::path::PathBuf) -> LiveSource {
        LiveSource {
            gitlab,
            exports: Exports::in_dir(work_dir),
            via: Mutex::default(),
            lfs_pointers: Mutex::default(),
        }
    }

    fn read_via(&self, ctx: &EntityContext, relation: &dyn Relation, how: &'static str) {
        self.via
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((ctx.entity.id, relation.name()), how);
    }

    /// The relation's records from what its extraction read (REST records or GraphQL nodes).
    async fn records(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        items: Vec<Value>,
    ) -> Result<Vec<Value>, ForgeError> {
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            let mut record = relation.transform(item);
            relation.enrich(&self.gitlab, ctx, &mut record).await?;
            records.push(record);
        }
        Ok(records)
    }

    /// A page from the relation export, or None when this relation is to be read through REST.
    async fn page_from_export(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        cursor: Option<&str>,
    ) -> Result<Option<ExtractedPage>, ForgeError> {
        let Some(name) = relation.export_relation() else {
            return Ok(None);
        };
        // A relation that started through REST keeps going through REST.
        let batch = match cursor {
            None => 1,
            Some(c) => match c
                .strip_prefix(EXPORT_CURSOR)
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) => n,
                None => return Ok(None),
            },
        };
        let portable = ctx.source_portable();
        let Some(exported) = self.exports.relation(&self.gitlab, &portable, name).await? else {
            if matches!(relation.extraction(ctx), Extraction::ExportOnly)
                && self.exports.offered(&self.gitlab, &portable).await?
            {
                // The source exports this entity but has none of this relation.
                return Ok(Some(ExtractedPage {
                    records: Vec::new(),
                    next: None,
                    total: Some(0),
                }));
            }
            return Ok(None);
        };
        if let Some(why) = exported.failed {
            if !matches!(relation.extraction(ctx), Extraction::ExportOnly) {
                // REST has it too.
                return Ok(None);
            }
            return Err(self.export_failed(ctx, name, &why));
        }
        let mut records = Vec::new();
        let exported_records = if exported.batches > 0 {
            self.exports
                .batch(&self.gitlab, &portable, name, batch)
                .await?
        } else if exported.whole && batch == 1 {
            // GitLab batches only collections: a single record (`project_feature`, `push_rule`,
            // ...) is one file even in a batched export, and its count is not given (0), so the
            // file is read to know.
            self.exports.whole(&self.gitlab, &portable, name).await?
        } else {
            Vec::new()
        };
        for r in exported_records {
            let mut record = relation.record_from_export(r);
            relation.enrich(&self.gitlab, ctx, &mut record).await?;
            records.push(record);
        }
        // A relation exported whole has no count of its own: what its file held.
        let total = if exported.whole {
            records.len() as u64
        } else {
            exported.total
        };
        Ok(Some(ExtractedPage {
            records,
            next: (batch < exported.batches).then(|| format!("{EXPORT_CURSOR}{}", batch + 1)),
            total: Some(total),
        }))
    }
}

#[async_trait]
impl Source for LiveSource {
    fn via(&self) -> &'static str {
        "rest"
    }

    fn via_for(&self, relation: &dyn Relation, ctx: &EntityContext) -> &'static str {
        let via = self.via.lock().unwrap_or_else(|p| p.into_inner());
        via.get(&(ctx.entity.id, relation.name()))
            .copied()
            .unwrap_or("rest")
    }

    fn url(&self) -> String {
        crate::forge::base_string(self.gitlab.client.base())
    }

    async fn pages(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
    ) -> Result<Option<u64>, ForgeError> {
        let Some(name) = relation.export_relation() else {
            return Ok(None);
        };
        let portable = ctx.source_portable();
        Ok(
            match self.exports.relation(&self.gitlab, &portable, name).await? {
                // A batched export's batches; one exported whole, or empty, is one page.
                Some(e) if e.failed.is_none() => Some(e.batches.max(1)),
                _ => None,
            },
        )
    }

    async fn project_done(&self, ctx: &EntityContext) {
        self.exports.forget(&ctx.source_portable());
    }

    async fn prepare_project(&self, id: u64) {
        self.exports
            .start_early(&self.gitlab, &format!("projects/{id}"))
            .await;
    }

    async fn extract(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        cursor: Option<&str>,
    ) -> Result<ExtractedPage, ForgeError> {
        if let Some(page) = self.page_from_export(relation, ctx, cursor).await? {
            let whole = self
                .exports
                .file(&self.gitlab, &ctx.source_portable())
                .await?
                .is_some();
            let via = if whole {
                "project_export"
            } else {
                "relation_export"
            };
            self.read_via(ctx, relation, via);
            return Ok(page);
        }
        let extraction = relation.extraction(ctx);
        let via = match extraction {
            Extraction::Connection(_) => "graphql",
            _ => "rest",
        };
        self.read_via(ctx, relation, via);
        match extraction {
            Extraction::ExportOnly => Err(ForgeError::Unsupported(format!(
                "{} did not export the {} of {} through GitLab's relation export API \
                 (POST /{portable}/export_relations, GitLab 16.2 or later) nor whole \
                 (POST /{portable}/export), and only an export has them in a form GitLab can \
                 import: give the migration a token of a maintainer or owner of it",
                self.url(),
                relation.name(),
                ctx.entity.source_full_path,
                portable = ctx.source_portable(),
            ))),
            Extraction::Single { path } => {
                let mut record = relation.transform(self.gitlab.client.get(&path, &[]).await?);
                if !relation.exists(&record) {
                    return Ok(ExtractedPage {
                        records: Vec::new(),
                        next: None,
                        total: Some(0),
                    });
                }
                relation.enrich(&self.gitlab, ctx, &mut record).await?;
                Ok(ExtractedPage {
                    records: vec![record],
                    next: None,
                    total: Some(1),
                })
            }
            Extraction::List { path, query } => {
                let page = self.gitlab.client.list_page(&path, &query, cursor).await?;
                Ok(ExtractedPage {
                    records: self.records(relation, ctx, page.items).await?,
                    next: page.next,
                    total: page.total,
                })
            }
            Extraction::Connection(connection) => {
                // A cursor of another path (a tracker written before this relation read GraphQL)
                // starts over: what was loaded is in the id map and is not loaded again.
                let after = cursor.and_then(|c| c.strip_prefix(GRAPHQL_CURSOR));
                let page = self.gitlab.connection_page(&connection, after).await?;
                Ok(ExtractedPage {
                    records: self.records(relation, ctx, page.nodes).await?,
                    next: page.next.map(|c| format!("{GRAPHQL_CURSOR}{c}")),
                    total: None,
                })
            }
        }
    }

    async fn repository(
        &self,
        ctx: &EntityContext,
        kind: RepositoryKind,
        dir: &std::path::Path,
    ) -> Result<Option<std::path::PathBuf>, ForgeError> {
        if kind == RepositoryKind::Wiki && !self.has_wiki(ctx).await? {
            return Ok(None);
        }
        if kind == RepositoryKind::Design {
            return self.design_repository(ctx, dir).await;
        }
        let url = format!(
            "{}/{}{}",
            self.url(),
            ctx.entity.source_full_path,
            kind.url_suffix()
        );
        let url = url::Url::parse(&url).map_err(|e| ForgeError::Url(e.to_string()))?;
        let mirror = dir.join(format!("source-{}.git", kind.relation()));
        if let Cloned::Missing(e) = self.mirror_clone(&url, &mirror).await? {
            return Err(e);
        }
        if kind == RepositoryKind::Project {
            // The LFS objects its history points to, read while the clone is here.
            let pointers = crate::forge::git::lfs_pointers(&mirror)
                .await
                .map(|p| p.into_iter().collect())
                .map_err(|e| e.to_string());
            self.lfs_pointers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ctx.entity.id, pointers);
        }
        let bundle = dir.join(kind.archive_name());
        let made = crate::forge::git::bundle_create(&mirror, &bundle)
            .await
            .map_err(|e| git_error(&url, e))?;
        let _ = tokio::fs::remove_dir_all(&mirror).await;
        Ok(made.then_some(bundle))
    }

    /// The project's LFS objects: those its repository points to, and `designs` (its design
    /// repository's), through the forge's LFS batch API on the project's repository (GitLab serves
    /// every LFS object of a project there, whichever repository points to it).
    async fn lfs_objects(
        &self,
        ctx: &EntityContext,
        designs: &BTreeMap<String, u64>,
        dir: &std::path::Path,
    ) -> Result<crate::forge::lfs::Downloaded, ForgeError> {
        use crate::forge::lfs::{DESIGN_REPOSITORY, PROJECT_REPOSITORY};
        let pointers = self
            .lfs_pointers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ctx.entity.id)
            .unwrap_or_else(|| Ok(Vec::new()));
        let url = format!(
            "{}/{}{}",
            self.url(),
            ctx.entity.source_full_path,
            RepositoryKind::Project.url_suffix()
        );
        let project = pointers.map_err(|message| ForgeError::Decode {
            url: url.clone(),
            message: format!("the repository's LFS pointers could not be read: {message}"),
        })?;
        let mut wanted: BTreeMap<String, u64> = project.iter().cloned().collect();
        wanted.extend(designs.iter().map(|(oid, size)| (oid.clone(), *size)));
        if wanted.is_empty() {
            return Ok(Default::default());
        }
        let wanted: Vec<(String, u64)> = wanted.into_iter().collect();
        let url = url::Url::parse(&url).map_err(|e| ForgeError::Url(e.to_string()))?;
        let mut got = crate::forge::lfs::download(
            &self.gitlab.client,
            &url,
            &wanted,
            &dir.join("lfs-objects"),
        )
        .await?;
        let in_project: std::collections::HashSet<&str> =
            project.iter().map(|(oid, _)| oid.as_str()).collect();
        for object in &mut got.objects {
            object.repositories = [
                (in_project.contains(object.oid.as_str()), PROJECT_REPOSITORY),
                (designs.contains_key(&object.oid), DESIGN_REPOSITORY),
            ]
            .into_iter()
            .filter_map(|(yes, name)| yes.then_some(name))
            .collect();
        }
        Ok(got)
    }

    /// Each snippet's repository (`<project>/snippets/<id>.git`), cloned and bundled in turn; a
    /// snippet the forge has no repository for (404) or whose repository is empty has none.
    async fn snippet_repositories(
        &self,
        ctx: &EntityContext,
        snippets: &std::path::Path,
        dir: &std::path::Path,
    ) -> Result<Vec<SnippetRepository>, ForgeError> {
        let staged = match tokio::fs::read_to_string(snippets).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ForgeError::Decode {
                    url: snippets.display().to_string(),
                    message: format!("the staged snippets cannot be read: {e}"),
                });
            }
        };
        let mut out = Vec::new();
        for line in staged.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).map_err(|e| ForgeError::Decode {
                url: snippets.display().to_string(),
                message: format!("a staged snippet is not JSON: {e}"),
            })?;
            let (Some(id), Some(hexdigest)) = (
                record.get("id").and_then(Value::as_u64),
                super::snippet_hexdigest(&record),
            ) else {
                continue;
            };
            let url = format!(
                "{}/{}/snippets/{id}.git",
                self.url(),
                ctx.entity.source_full_path
            );
            let url = url::Url::parse(&url).map_err(|e| ForgeError::Url(e.to_string()))?;
            let mirror = dir.join(format!("source-snippet-{id}.git"));
            // No repository (a snippet from before GitLab kept them): its content is enough.
            if let Cloned::Missing(e) = self.mirror_clone(&url, &mirror).await? {
                tracing::info!(snippet = id, error = %e, "the snippet has no repository");
                continue;
            }
            let bundle = dir.join(format!("snippet-{id}.bundle"));
            let made = crate::forge::git::bundle_create(&mirror, &bundle)
                .await
                .map_err(|e| git_error(&url, e))?;
            let _ = tokio::fs::remove_dir_all(&mirror).await;
            if !made {
                continue;
            }
            let (size, sha256) =
                crate::digest::file_sha256(&bundle)
                    .await
                    .map_err(|e| ForgeError::Decode {
                        url: bundle.display().to_string(),
                        message: format!("cannot read the snippet's bundle: {e}"),
                    })?;
            out.push(SnippetRepository {
                hexdigest,
                path: bundle,
                size,
                sha256,
            });
        }
        Ok(out)
    }

    /// The project's uploads from its relation export (`uploads`: a tar per batch, or one
    /// `uploads.tar.gz` exported whole), each streamed to disk and unpacked file by file; an upload
    /// in two batches is refused. A source that exports the project but lists no
    /// `uploads` has none; one that does not export at all cannot give them (the same words as
    /// for its records).
    async fn uploads(
        &self,
        ctx: &EntityContext,
        dir: &std::path::Path,
    ) -> Result<Vec<ProjectUpload>, ForgeError> {
        let portable = ctx.source_portable();
        if let Some(file) = self.exports.file(&self.gitlab, &portable).await? {
            let dir = dir.to_path_buf();
            return files::off_runtime(dir.display().to_string(), move || {
                file.uploads
                    .iter()
                    .map(|upload| {
                        let path = dir.join(upload.archive_name());
                        path.parent()
                            .map_or(Ok(()), std::fs::create_dir_all)
                            .and_then(|()| link_or_copy(&upload.path, &path))
                            .map_err(|e| {
                                format!("cannot stage exported upload `{}`: {e}", path.display())
                            })?;
                        Ok(ProjectUpload {
                            path,
                            ..upload.clone()
                        })
                    })
                    .collect()
            })
            .await;
        }
        let exported = self
            .exports
            .relation(&self.gitlab, &portable, "uploads")
            .await?;
        if let Some(why) = exported.as_ref().and_then(|e| e.failed.as_deref()) {
            return Err(self.export_failed(ctx, "uploads", why));
        }
        let Some(exported) = exported else {
            if self.exports.offered(&self.gitlab, &portable).await? {
                return Ok(Vec::new());
            }
            return Err(ForgeError::Unsupported(format!(
                "{} did not export the uploads of {} through GitLab's relation export API \
                 (POST /{portable}/export_relations, GitLab 16.2 or later) nor whole \
                 (POST /{portable}/export): give the migration a token of a maintainer or owner \
                 of it",
                self.url(),
                ctx.entity.source_full_path,
            )));
        };
        // A batched export batches uploads as it does every collection: a tar per batch, and none
        // when there are no uploads. One exported whole is a single tar.
        let paths: Vec<String> = if exported.whole {
            vec![format!(
                "{portable}/export_relations/download?relation=uploads"
            )]
        } else {
            (1..=exported.batches)
                .map(|n| {
                    format!(
                        "{portable}/export_relations/download?relation=uploads&batched=true&batch_number={n}"
                    )
                })
                .collect()
        };
        let mut all: Vec<ProjectUpload> = Vec::new();
        for path in paths {
            let tar_gz = dir.join("uploads.tar.gz");
            self.gitlab.client.download_to(&path, &tar_gz).await?;
            let url = self.gitlab.client.api_url(&path);
            let (from, into) = (tar_gz.clone(), dir.to_path_buf());
            let unpacked =
                files::off_runtime(url.clone(), move || files::unpack_uploads(&from, &into)).await;
            let _ = tokio::fs::remove_file(&tar_gz).await;
            for upload in unpacked? {
                if all
                    .iter()
                    .any(|u| u.secret == upload.secret && u.filename == upload.filename)
                {
                    return Err(ForgeError::Decode {
                        url,
                        message: format!(
                            "the exported uploads hold `{}/{}` twice",
                            upload.secret, upload.filename
                        ),
                    });
                }
                all.push(upload);
            }
        }
        all.sort_by(|a, b| (&a.secret, &a.filename).cmp(&(&b.secret, &b.filename)));
        Ok(all)
    }

    async fn subgroups(&self, ctx: &EntityContext) -> Result<Vec<Value>, ForgeError> {
        self.gitlab
            .list_all(
                &format!("groups/{}/subgroups", ctx.source_id()),
                &[("all_available", "true".into())],
            )
            .await
    }
}

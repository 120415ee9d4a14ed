//! Where relation records come from. A source hands out pages of records already in GitLab's
//! import/export format; it never knows where they go.

pub mod bundle;
pub mod export;
pub mod files;
pub mod live;
pub mod project_export;

use crate::forge::ForgeError;
use crate::relations::{EntityContext, Relation};
use async_trait::async_trait;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use files::{ProjectUpload, SnippetRepository, check_upload_names, snippet_hexdigest};
pub use live::LiveSource;

/// One page of records in GitLab's import/export format.
#[derive(Debug, Default)]
pub struct ExtractedPage {
    pub records: Vec<Value>,
    /// Cursor of the next page; None on the last one.
    pub next: Option<String>,
    /// How many records the relation has in all, when the source says.
    pub total: Option<u64>,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// How records are read, recorded on each tracker: "rest", "graphql", "relation_export", "project_export" (a project exported whole) or
    /// "bundle".
    fn via(&self) -> &'static str;
    /// How the last page of `relation` for this entity was read (a live source may use the relation
    /// export for some relations and REST for others).
    fn via_for(&self, _relation: &dyn Relation, _ctx: &EntityContext) -> &'static str {
        self.via()
    }
    /// The source's base URL, without credentials.
    fn url(&self) -> String;
    async fn extract(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        cursor: Option<&str>,
    ) -> Result<ExtractedPage, ForgeError>;
    /// The direct subgroups of a group entity (REST group records), so they become entities of their own.
    async fn subgroups(&self, ctx: &EntityContext) -> Result<Vec<Value>, ForgeError>;
    /// Why this source cannot give the project at `full_path` (its records and repository), when it
    /// cannot: a bundle that lists the project without carrying it says why.
    fn project_absent(&self, _full_path: &str) -> Option<String> {
        None
    }
    /// The project with source id `id` will migrate later in this run: a source that builds its
    /// export asynchronously may start building it now, so that it is ready when the project's turn
    /// comes (GitLab's direct transfer starts every entity's export when it creates the entity).
    /// Nothing is lost when it does not: the export is then started when it is first needed.
    async fn prepare_project(&self, _id: u64) {}
    /// The project entity is done (finished, failed or paused): what the source kept for it
    /// (a whole-project export on disk) can go.
    async fn project_done(&self, _ctx: &EntityContext) {}
    /// How many pages `relation` of this entity has, when the source knows without reading them
    /// (GitLab's export status counts batches; a bundle lists its members); None when it does not.
    async fn pages(
        &self,
        _relation: &dyn Relation,
        _ctx: &EntityContext,
    ) -> Result<Option<u64>, ForgeError> {
        Ok(None)
    }
    /// One of a project entity's git repositories (`kind`: the project's own, its wiki's or its
    /// designs') as a `git bundle` of every ref, written under `dir`; None when that repository is
    /// empty or absent (a project without a wiki), or the source carries none.
    async fn repository(
        &self,
        _ctx: &EntityContext,
        _kind: RepositoryKind,
        _dir: &Path,
    ) -> Result<Option<PathBuf>, ForgeError> {
        Ok(None)
    }
    /// The Git LFS objects a project entity's repository points to, and `designs` (what its
    /// design repository points to, oid and size), each written under `dir`, checked against its
    /// oid and tagged with the repositories that point to it, with the ones the source could not
    /// give; none when it has none. Asked after [`Source::repository`] of the project.
    async fn lfs_objects(
        &self,
        _ctx: &EntityContext,
        _designs: &std::collections::BTreeMap<String, u64>,
        _dir: &Path,
    ) -> Result<crate::forge::lfs::Downloaded, ForgeError> {
        Ok(Default::default())
    }
    /// The repositories of a project entity's snippets (`snippets`: the staged NDJSON of its
    /// `snippets` relation), each a `git bundle` written under `dir` and hashed; a snippet whose
    /// repository is empty or absent has none (GitLab's import then makes one from its content).
    async fn snippet_repositories(
        &self,
        _ctx: &EntityContext,
        _snippets: &Path,
        _dir: &Path,
    ) -> Result<Vec<SnippetRepository>, ForgeError> {
        Ok(Vec::new())
    }
    /// The files a project entity's markdown links to (its uploads), each written under `dir`
    /// and hashed; empty when it has none (or the source carries none).
    async fn uploads(
        &self,
        _ctx: &EntityContext,
        _dir: &Path,
    ) -> Result<Vec<ProjectUpload>, ForgeError> {
        Ok(Vec::new())
    }
}

/// Which of a project's git repositories: the project's own, its wiki's or its designs'. Each
/// travels as a `git bundle` of every ref; they differ in where they are found and where they go.
/// A live GitLab serves the first two over git's HTTP protocol (a mirror clone); its design
/// repository only through the relation export (`relation=design`), since GitLab refuses git
/// access to it ("Designs are only accessible using the web interface").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositoryKind {
    Project,
    Wiki,
    Design,
}

impl RepositoryKind {
    pub const ALL: [RepositoryKind; 3] = [
        RepositoryKind::Project,
        RepositoryKind::Wiki,
        RepositoryKind::Design,
    ];

    /// The relation it is tracked as, and the file relation a bundle carries it as.
    pub fn relation(self) -> &'static str {
        match self {
            RepositoryKind::Project => "repository",
            RepositoryKind::Wiki => "wiki",
            RepositoryKind::Design => "design",
        }
    }

    /// What follows the project's full path in the repository's URL (`<base>/<path>.wiki.git`).
    pub fn url_suffix(self) -> &'static str {
        match self {
            RepositoryKind::Project => ".git",
            RepositoryKind::Wiki => ".wiki.git",
            RepositoryKind::Design => ".design.git",
        }
    }

    /// Its file name in GitLab's export archive.
    pub fn archive_name(self) -> &'static str {
        match self {
            RepositoryKind::Project => "project.bundle",
            RepositoryKind::Wiki => "project.wiki.bundle",
            RepositoryKind::Design => "project.design.bundle",
        }
    }
}

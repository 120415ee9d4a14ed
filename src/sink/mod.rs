//! Where relation records go: a live GitLab destination or a bundle. A sink never reads a source.

pub mod bundle;
pub mod live;
pub mod project_import;

use crate::engine::EngineError;
use crate::model::{BulkImport, Entity};
use crate::relations::{EntityContext, LoadError, Relation};
use crate::source::{ProjectUpload, RepositoryKind};
use crate::store::Store;
use async_trait::async_trait;
use serde_json::Value;
use std::path::PathBuf;

pub use live::LiveSink;

/// What creates a project: its attributes, the relations that travel with it (each staged on disk as
/// the NDJSON of an export's `tree/project/<relation>.ndjson`), its git repositories (its own
/// and its wiki's), each as a `git bundle` file (a repository that is empty or absent has none),
/// its uploads and its LFS objects.
#[derive(Debug)]
pub struct ProjectPackage {
    pub attributes: Value,
    pub relations: Vec<(String, PathBuf)>,
    pub repositories: Vec<(RepositoryKind, PathBuf)>,
    /// The files its markdown links to, each on disk.
    pub uploads: Vec<ProjectUpload>,
    /// The Git LFS objects its repository points to, each on disk.
    pub lfs_objects: Vec<crate::forge::lfs::LfsObject>,
    /// Its snippets' repositories, each a `git bundle` on disk.
    pub snippet_repositories: Vec<crate::source::SnippetRepository>,
}

impl ProjectPackage {
    /// The `git bundle` of one of the project's repositories, when it has one.
    pub fn repository(&self, kind: RepositoryKind) -> Option<&PathBuf> {
        self.repositories
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, path)| path)
    }
}

/// A project the destination created, and the relations its import says failed (relation, why).
#[derive(Debug)]
pub struct CreatedProject {
    pub id: u64,
    pub failed_relations: Vec<(String, String)>,
}

#[async_trait]
pub trait Sink: Send + Sync {
    /// Identifies the destination in id-map scopes (its base URL, or a bundle's identity).
    fn identity(&self) -> String;
    /// Writes one record and returns the id it has at the destination.
    async fn load(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError>;

    /// Writes a page of a relation that loads in batches; one outcome per record, in order. A sink that
    /// writes record by record loads each one.
    async fn load_batch(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        records: &[Value],
        in_doubt: bool,
    ) -> Result<Vec<Result<u64, LoadError>>, LoadError> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            out.push(self.load(relation, ctx, record, in_doubt).await);
        }
        Ok(out)
    }

    /// Notes a child a group lists (a project, from the group's `projects` relation), which becomes
    /// an entity of its own: a bundle keeps the list, so a replay finds the group's projects.
    async fn list_child(
        &self,
        _relation: &dyn Relation,
        _ctx: &EntityContext,
        _record: &Value,
    ) -> Result<(), LoadError> {
        Ok(())
    }

    /// Creates a project from its package (a bundle: stores it). When `in_doubt`, an earlier attempt
    /// may have created it: it is looked for first.
    async fn create_project(
        &self,
        ctx: &EntityContext,
        package: &ProjectPackage,
        in_doubt: bool,
    ) -> Result<CreatedProject, LoadError>;

    /// Rewrites a staged `project_members` NDJSON file in place for this destination before it travels
    /// in an import archive: GitLab's import maps authors through the members' emails, so a member an
    /// explicit user map names gets the mapped destination user's email. A bundle keeps the source's.
    async fn map_project_members(&self, _staged: &std::path::Path) -> Result<(), LoadError> {
        Ok(())
    }

    /// How many records a REST list of the destination holds (`projects/1/labels`); None for a sink
    /// that is not a live destination.
    async fn count(&self, _path: &str) -> Result<Option<u64>, LoadError> {
        Ok(None)
    }

    /// Every record of a REST list of the destination (`projects/1/labels`); None for a sink that
    /// is not a live destination.
    async fn list(
        &self,
        _path: &str,
        _query: &[(&str, String)],
    ) -> Result<Option<Vec<Value>>, LoadError> {
        Ok(None)
    }

    /// Whether [`Sink::arrived`] can tell which records of a relation that loads in batches reached
    /// the destination inside the archive that created their project: only then do such relations
    /// travel in that archive when one page holds them all (one import instead of one per relation).
    fn reads_back_archive_relations(&self) -> bool {
        false
    }

    /// Which of `records` of `relation`, sent in the archive that created project `project`, are at
    /// the destination (see [`Relation::arrived`]); None for a sink that cannot say.
    async fn arrived(
        &self,
        _relation: &dyn Relation,
        _project: u64,
        _records: &[Value],
        _why: Option<String>,
    ) -> Result<Option<Vec<Result<u64, LoadError>>>, LoadError> {
        Ok(None)
    }

    /// How many of `objects` (oid, size) the destination repository `project_full_path` holds as Git
    /// LFS objects; None for a sink that is not a live destination.
    async fn lfs_present(
        &self,
        _project_full_path: &str,
        _objects: &[(String, u64)],
    ) -> Result<Option<u64>, LoadError> {
        Ok(None)
    }

    /// The designs each of the issues `iids` of the destination project `project_full_path` has
    /// (their filenames, sorted), as the destination lists them; None for a sink that is not a
    /// live destination.
    async fn designs(
        &self,
        _project_full_path: &str,
        _iids: &[u64],
    ) -> Result<Option<std::collections::BTreeMap<u64, Vec<String>>>, LoadError> {
        Ok(None)
    }

    /// Called after every record of a page was loaded and before the page is committed to the store:
    /// a sink that writes in batches makes page `page` (0-based) of the relation durable here.
    async fn end_page(
        &self,
        _relation: &dyn Relation,
        _ctx: &EntityContext,
        _page: u64,
    ) -> Result<(), LoadError> {
        Ok(())
    }

    /// Called once when every entity of the bulk import has ended and it was not canceled: a bundle
    /// sink writes the manifest and packs the bundle here.
    async fn finish(
        &self,
        _store: &Store,
        _bulk: &BulkImport,
        _entities: &[Entity],
    ) -> Result<(), EngineError> {
        Ok(())
    }
}

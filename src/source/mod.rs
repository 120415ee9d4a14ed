//! Where relation records come from. A source hands out pages of records already in GitLab's
//! import/export format; it never knows where they go.

pub mod bundle;
pub mod export;
pub mod files;
pub mod live;

use crate::forge::ForgeError;
use crate::relations::{EntityContext, Relation};
use async_trait::async_trait;
use serde_json::Value;
use std::path::{Path, PathBuf};

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
    /// How records are read, recorded on each tracker: "rest", "graphql", "relation_export" or
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
    /// One of a project entity's git repositories (`kind`: the project's own, or its wiki's) as a
    /// `git bundle` of every ref, written under `dir`; None when that repository is empty or
    /// absent (a project without a wiki), or the source carries none.
    async fn repository(
        &self,
        _ctx: &EntityContext,
        _kind: RepositoryKind,
        _dir: &Path,
    ) -> Result<Option<PathBuf>, ForgeError> {
        Ok(None)
    }
    /// The Git LFS objects a project entity's repository points to, each written under `dir` and
    /// checked against its oid, with the ones the source could not give; none when it has none.
    /// Asked after [`Source::repository`] of the project.
    async fn lfs_objects(
        &self,
        _ctx: &EntityContext,
        _dir: &Path,
    ) -> Result<crate::forge::lfs::Downloaded, ForgeError> {
        Ok(Default::default())
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

/// A file a project's markdown links to as `/uploads/<secret>/<filename>`, staged on disk. GitLab's
/// import restores it from `uploads/<secret>/<filename>` of the archive under the same secret, so
/// the links keep working; a bundle carries it as a blob (its bytes, by sha256) and a record of
/// relation `uploads` naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectUpload {
    pub secret: String,
    pub filename: String,
    /// Where its bytes are on disk.
    pub path: PathBuf,
    pub size: u64,
    /// sha256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl ProjectUpload {
    /// Its entry in GitLab's export archive.
    pub fn archive_name(&self) -> String {
        format!("uploads/{}/{}", self.secret, self.filename)
    }

    /// Its record in a bundle (relation `uploads`): where it is linked, and which blob holds it.
    pub fn record(&self) -> serde_json::Value {
        serde_json::json!({
            "secret": self.secret,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
        })
    }

    /// A record of relation `uploads` read back: (secret, filename, size, sha256), each checked
    /// ([`check_upload_names`], a sha256 of 64 lowercase hex digits).
    pub fn from_record(
        record: &serde_json::Value,
    ) -> Result<(String, String, u64, String), String> {
        let text = |key: &str| {
            record
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("an upload record has no `{key}`"))
        };
        let (secret, filename, sha256) = (text("secret")?, text("filename")?, text("sha256")?);
        let size = record
            .get("size")
            .and_then(serde_json::Value::as_u64)
            .ok_or("an upload record has no `size`")?;
        check_upload_names(&secret, &filename)?;
        if !is_sha256(&sha256) {
            return Err(format!(
                "upload `{}` names `{}` as its sha256, which is not 64 lowercase hex digits",
                filename.escape_debug(),
                sha256.escape_debug()
            ));
        }
        Ok((secret, filename, size, sha256))
    }
}

/// Whether `s` is a sha256 as the bundle writes it: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An upload's secret is 1-64 ASCII letters and digits, and its file name one path component
/// (not `.` or `..`, no `/`, backslash or control character, at most 255 bytes): nothing can
/// step out of `uploads/<secret>/` when it is written to disk or into an archive.
pub fn check_upload_names(secret: &str, filename: &str) -> Result<(), String> {
    if secret.is_empty() || secret.len() > 64 || !secret.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "`{}` is not an upload secret (1-64 letters and digits)",
            secret.escape_debug()
        ));
    }
    let bad = filename.is_empty()
        || filename.len() > 255
        || filename == "."
        || filename == ".."
        || filename
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(format!(
            "`{}` is not a safe file name for an upload",
            filename.escape_debug()
        ));
    }
    Ok(())
}

/// Which of a project's git repositories: the project's own or its wiki's. Both move the same way
/// (a mirror clone, then `git bundle create --all`); they differ in where they are found and
/// where they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositoryKind {
    Project,
    Wiki,
}

impl RepositoryKind {
    pub const ALL: [RepositoryKind; 2] = [RepositoryKind::Project, RepositoryKind::Wiki];

    /// The relation it is tracked as, and the file relation a bundle carries it as.
    pub fn relation(self) -> &'static str {
        match self {
            RepositoryKind::Project => "repository",
            RepositoryKind::Wiki => "wiki",
        }
    }

    /// What follows the project's full path in the repository's URL (`<base>/<path>.wiki.git`).
    pub fn url_suffix(self) -> &'static str {
        match self {
            RepositoryKind::Project => ".git",
            RepositoryKind::Wiki => ".wiki.git",
        }
    }

    /// Its file name in GitLab's export archive.
    pub fn archive_name(self) -> &'static str {
        match self {
            RepositoryKind::Project => "project.bundle",
            RepositoryKind::Wiki => "project.wiki.bundle",
        }
    }
}

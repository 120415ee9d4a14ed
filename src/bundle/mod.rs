//! The offline bundle format (documented in `bundles/FORMAT.md`): one deterministic tar, optionally split
//! into volumes, holding a manifest that pins the sha256 of every member, an optional ed25519 signature,
//! and one zstd NDJSON member per batch of records. This module owns writing, reading, verifying and
//! signing bundles. It never talks to a forge or the store, and never writes a token or key into a bundle.

pub mod manifest;
pub mod reader;
pub mod records;
pub mod sign;
pub mod staging;
pub mod verify;
pub mod volumes;
pub mod writer;

pub use manifest::{Manifest, ManifestEntity, ManifestMember};
pub use reader::Bundle;
pub use staging::{BatchMeta, Staging};
pub use verify::{Problem, verify};
pub use writer::{PackOptions, pack};

use std::path::PathBuf;

/// `format` of every manifest.
pub const FORMAT_NAME: &str = "appliance-bundle";
/// The newest format version this build reads and writes: version 2 added projects (their records
/// under `projects/` and their repositories as `git bundle` files under `repositories/`), version 3
/// their design repositories (`repositories/<path>.design.bundle`, and LFS object records naming
/// the repositories each object belongs to).
pub const FORMAT_VERSION: u32 = 3;
/// The version a bundle with projects but without design repositories is written as, so that an
/// appliance from before designs still reads it.
pub const PROJECTS_FORMAT_VERSION: u32 = 2;
/// The oldest format version this build still reads. A bundle without projects is written as version
/// 1, so an older appliance on the other side of the air gap still reads it.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// `sha256sum`-style line with the root digest, so accidental damage to the manifest is caught too.
pub const MANIFEST_DIGEST: &str = "manifest.sha256";
pub const SIGNATURE: &str = "manifest.sig";
/// Fixed zstd level: the same records always give the same bytes.
pub const ZSTD_LEVEL: i32 = 9;
/// A manifest larger than this is not one this build wrote (64 MiB lists about 200,000 members, some
/// 200 GB of records); it bounds what reading a hostile manifest costs.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// A batch (one page of records) larger than this, compressed or not, is refused: it bounds the memory
/// a hostile manifest can make a reader allocate.
pub const MAX_BATCH_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no bundle at {0}: neither the file nor a first volume `{0}.001` exists")]
    Missing(PathBuf),
    #[error(
        "the bundle is truncated: it is {actual} bytes long and needs at least {expected}; a volume is missing or a copy was cut short"
    )]
    Truncated { expected: u64, actual: u64 },
    #[error(
        "the bundle has {extra} bytes after its end; a stale volume or extra data was appended"
    )]
    TrailingData { extra: u64 },
    #[error("not an appliance bundle: {0}")]
    NotABundle(String),
    #[error(
        "the bundle has format version {found}, this appliance reads version {supported} only; use the appliance release that wrote it"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("unsafe member `{path}`: {why}; the bundle was refused")]
    UnsafeMember { path: String, why: String },
    #[error("member `{0}` appears twice in the bundle")]
    DuplicateMember(String),
    #[error("the manifest does not match the content: {0}")]
    ManifestMismatch(String),
    #[error("member `{member}` is damaged: expected sha256 {expected}, found {actual}")]
    DigestMismatch {
        member: String,
        expected: String,
        actual: String,
    },
    #[error(
        "member `{member}` decompresses past its declared size of {declared} bytes; the bundle was refused"
    )]
    Oversized { member: String, declared: u64 },
    #[error("the tar header at byte {offset} (after member `{after}`) is damaged: {why}")]
    DamagedHeader {
        offset: u64,
        after: String,
        why: String,
    },
    #[error("member `{member}` is damaged: {why}")]
    Corrupt { member: String, why: String },
    /// A bundle intact in itself that `appliance replay` cannot load as it is.
    #[error("{0}")]
    NotReplayable(String),
    #[error("{0}")]
    Signature(String),
    #[error("{0}")]
    Key(String),
}

impl BundleError {
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BundleError {
        let path = path.into();
        move |source| BundleError::Read { path, source }
    }
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BundleError {
        let path = path.into();
        move |source| BundleError::Write { path, source }
    }
}

/// The member path of one batch of records: `groups/<source_full_path>/<relation>/<batch:06>.ndjson.zst`
/// for a group entity, `projects/...` for a project.
pub fn member_path(entity_type: &str, entity: &str, relation: &str, batch: u64) -> String {
    let dir = if entity_type == "project" {
        "projects"
    } else {
        "groups"
    };
    format!("{dir}/{entity}/{relation}/{batch:06}.ndjson.zst")
}

/// Relations whose member is one file as it is (not records), with where it sits in a bundle:
/// a project's repository, its wiki's and its designs', each as a `git bundle` of every ref.
pub const FILE_RELATIONS: &[(&str, &str)] = &[
    ("repository", ".bundle"),
    ("wiki", ".wiki.bundle"),
    ("design", ".design.bundle"),
];

/// The relation of a blob member: a file (an upload, an LFS object) stored as it is at
/// `blobs/sha256/<aa>/<sha256>`, addressed by the sha256 of its bytes, so a file several projects
/// hold is stored once. The records that name it (relation `uploads`) say where it belongs.
pub const BLOB_RELATION: &str = "blob";

/// Record relations whose records each name a blob: `uploads` by `sha256` and `size`,
/// `lfs_objects` by `oid` (the sha256 of its bytes) and `size`, `snippet_repositories` (each a
/// snippet's `git bundle`) by `sha256` and `size`, keyed by the snippet's `hexdigest`.
pub const BLOB_REFERENCES: &[&str] = &["uploads", "lfs_objects", "snippet_repositories"];

/// The blob a record of a [`BLOB_REFERENCES`] relation names: (the key that is unique per project,
/// the blob's sha256, its size), its names checked; or why the record is refused.
pub fn blob_reference(
    relation: &str,
    record: &serde_json::Value,
) -> Result<(String, String, u64), String> {
    if relation == "lfs_objects" {
        let oid = record
            .get("oid")
            .and_then(serde_json::Value::as_str)
            .ok_or("an LFS object record has no `oid`")?;
        let size = record
            .get("size")
            .and_then(serde_json::Value::as_u64)
            .ok_or("an LFS object record has no `size`")?;
        if !is_sha256(oid) {
            return Err(format!(
                "LFS object `{}` is not named by a sha256 (64 lowercase hex digits)",
                oid.escape_debug()
            ));
        }
        lfs_repositories(record)?;
        return Ok((format!("LFS object `{oid}`"), oid.to_string(), size));
    }
    if relation == "snippet_repositories" {
        let (hexdigest, size, sha256) = crate::source::SnippetRepository::from_record(record)?;
        return Ok((format!("snippet repository `{hexdigest}`"), sha256, size));
    }
    let (secret, filename, size, sha256) = crate::source::ProjectUpload::from_record(record)?;
    Ok((
        format!("upload `{secret}/{}`", filename.escape_debug()),
        sha256,
        size,
    ))
}

/// The repositories an LFS object record says point to its object (`repositories`, GitLab's names:
/// `project`, `design`); a record without the field (bundles from before designs) is the
/// project's. A name this version does not know, or an empty list, is refused.
pub fn lfs_repositories(record: &serde_json::Value) -> Result<Vec<&'static str>, String> {
    let Some(list) = record.get("repositories") else {
        return Ok(vec![crate::forge::lfs::PROJECT_REPOSITORY]);
    };
    let names = list
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or("an LFS object record's `repositories` is not a list of repository names")?;
    names
        .iter()
        .map(|n| {
            n.as_str()
                .and_then(crate::forge::lfs::repository_type)
                .ok_or_else(|| {
                    format!(
                        "an LFS object record names the repository `{}`, which is neither \
                         `project` nor `design`",
                        n.to_string().escape_debug()
                    )
                })
        })
        .collect()
}

/// The member path of the blob whose bytes have this sha256 (64 lowercase hex digits).
pub fn blob_member_path(sha256: &str) -> String {
    format!("blobs/sha256/{}/{sha256}", sha256.get(..2).unwrap_or(""))
}

/// Whether `relation`'s member is a file rather than records.
pub fn is_file_relation(relation: &str) -> bool {
    relation == BLOB_RELATION || FILE_RELATIONS.iter().any(|(r, _)| *r == relation)
}

/// The member path of a file relation: `repositories/<source_full_path>.bundle` (a wiki:
/// `.wiki.bundle`, designs: `.design.bundle`).
pub fn file_member_path(entity: &str, relation: &str) -> Option<String> {
    FILE_RELATIONS
        .iter()
        .find(|(r, _)| *r == relation)
        .map(|(_, suffix)| format!("repositories/{entity}{suffix}"))
}

/// Whether `s` is a sha256 as the bundle writes it: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Refuses member names that could escape an extraction directory or mean something else than a file.
pub fn check_member_name(path: &str) -> Result<(), BundleError> {
    let unsafe_member = |why: &str| BundleError::UnsafeMember {
        path: path.to_string(),
        why: why.to_string(),
    };
    if path.is_empty() {
        return Err(unsafe_member("empty name"));
    }
    if path.starts_with('/') || path.contains(':') || path.contains('\\') {
        return Err(unsafe_member("absolute path"));
    }
    for part in path.split('/') {
        match part {
            ".." => return Err(unsafe_member("`..` in the path")),
            "" | "." => return Err(unsafe_member("empty or `.` path component")),
            _ => {}
        }
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(unsafe_member("control character in the name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn member_names_that_escape_are_refused() {
        assert!(check_member_name("groups/acme/labels/000000.ndjson.zst").is_ok());
        assert_eq!(
            member_path("project", "acme/app", "issues", 3),
            "projects/acme/app/issues/000003.ndjson.zst"
        );
        assert_eq!(
            file_member_path("acme/app", "repository").as_deref(),
            Some("repositories/acme/app.bundle")
        );
        assert_eq!(
            file_member_path("acme/app", "wiki").as_deref(),
            Some("repositories/acme/app.wiki.bundle")
        );
        for bad in [
            "/etc/passwd",
            "../x",
            "groups/../../x",
            "a//b",
            "./a",
            "C:\\x",
            "",
        ] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
    }
}

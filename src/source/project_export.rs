//! GitLab's whole-project export (`POST /projects/:id/export`, then its download), for a source that
//! does not offer the relation export to this token (a GitLab from before it, or one that turned it
//! off): one gzipped tar in the layout of `shared/fixtures/gitlab-export/project`, whose
//! `tree/project/<relation>.ndjson` files hold the same records the relation export gives.
//!
//! The archive is streamed to disk, then unpacked entry by entry into a directory of its own: each
//! relation's NDJSON file, the uploads (`uploads/<secret>/<filename>`) and the design repository's
//! `git bundle` (`project.design.bundle`). Repositories are not read from it (they are cloned, every
//! ref), nor LFS objects (the LFS batch API gives them), nor anything else. Each relation file is
//! indexed once (where each page of [`PAGE`] records starts), so a page is read from disk on demand
//! and memory holds one page at a time whatever the project's size. Names are checked before
//! anything is written: an entry that could step out of its directory, or a relation file that is
//! not a regular file or comes twice, is refused, and so is a line longer than [`MAX_LINE`].

use super::ProjectUpload;
use super::export::ExportedRelation;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};

/// Records per page read from a relation file (what GitLab's relation export puts in a batch).
pub const PAGE: u64 = 1000;
/// The longest record line accepted (a merge request with its diffs and notes is a few MiB).
pub const MAX_LINE: u64 = 256 * 1024 * 1024;
/// The most an export may unpack to (what is read of it: records, uploads, the design repository):
/// GitLab's own default limit on an import's decompressed size
/// (`max_decompressed_archive_size`, 25,600 MiB).
pub const MAX_UNPACKED: u64 = 25_600 * 1024 * 1024;

/// One relation's file and where each of its pages starts.
struct RelationFile {
    path: PathBuf,
    /// Byte offset of the first line of each page.
    pages: Vec<u64>,
    /// Records it holds (lines that are neither blank nor `null`).
    records: u64,
}

/// A project's whole export, unpacked; the directory goes when this does.
pub struct ProjectExport {
    _dir: tempfile::TempDir,
    relations: HashMap<String, RelationFile>,
    pub uploads: Vec<ProjectUpload>,
    /// The design repository's `git bundle`, when the project has one.
    pub design: Option<PathBuf>,
}

/// Whether `name` can be a relation of GitLab's export tree: 1-64 lowercase letters and `_`.
fn relation_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl ProjectExport {
    /// Unpacks the downloaded export `tar_gz` into `dir`, which it then owns. Blocking I/O.
    pub fn unpack(tar_gz: &Path, dir: tempfile::TempDir) -> Result<ProjectExport, String> {
        let file = std::fs::File::open(tar_gz)
            .map_err(|e| format!("cannot read {}: {e}", tar_gz.display()))?;
        let mut archive =
            tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        let bad = |e: std::io::Error| format!("the project export is not a gzipped tar: {e}");
        let mut relations: HashMap<String, RelationFile> = HashMap::new();
        let mut uploads = Vec::new();
        let mut design = None;
        let mut unpacked = 0u64;
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = raw.trim_start_matches("./").to_string();
            let read = name.starts_with("uploads/")
                || name == "project.design.bundle"
                || name.starts_with("tree/project/");
            if read {
                // The tar header gives the size before a byte is written.
                unpacked = unpacked.saturating_add(entry.size());
                if unpacked > MAX_UNPACKED {
                    return Err(format!(
                        "the project export unpacks to more than {} MiB (GitLab's own limit on \
                         an import's decompressed size); at `{}`",
                        MAX_UNPACKED / (1024 * 1024),
                        raw.escape_debug()
                    ));
                }
            }
            let regular = entry.header().entry_type().is_file();
            let not_regular = || {
                format!(
                    "the project export holds `{}`, which is not a regular file",
                    raw.escape_debug()
                )
            };
            if let Some(upload) = name.strip_prefix("uploads/") {
                super::files::unpack_upload(&raw, upload, entry, dir.path(), &mut uploads)?;
            } else if name == "project.design.bundle" {
                if !regular {
                    return Err(not_regular());
                }
                if design.is_some() {
                    return Err("the project export holds `project.design.bundle` twice".into());
                }
                let path = dir.path().join("design.bundle");
                super::files::copy_hashed(entry, &path)
                    .map_err(|e| format!("cannot unpack `project.design.bundle`: {e}"))?;
                design = Some(path);
            } else if let Some(relation) = name
                .strip_prefix("tree/project/")
                .and_then(|n| n.strip_suffix(".ndjson"))
                .filter(|n| relation_name(n))
            {
                if !regular {
                    return Err(not_regular());
                }
                if relations.contains_key(relation) {
                    return Err(format!("the project export holds `{raw}` twice"));
                }
                let path = dir.path().join(format!("{relation}.ndjson"));
                super::files::copy_hashed(entry, &path)
                    .map_err(|e| format!("cannot unpack `{raw}`: {e}"))?;
                let file = index(&path).map_err(|e| format!("`{raw}`: {e}"))?;
                relations.insert(relation.to_string(), file);
            }
            // Anything else (repositories, LFS objects, the avatar, `project.json`) is not read.
        }
        uploads.sort_by(|a, b| (&a.secret, &a.filename).cmp(&(&b.secret, &b.filename)));
        Ok(ProjectExport {
            _dir: dir,
            relations,
            uploads,
            design,
        })
    }

    /// Its relations, as the relation export's status would list them: a page per batch.
    pub fn exported(&self) -> HashMap<String, ExportedRelation> {
        self.relations
            .iter()
            .map(|(name, file)| {
                let exported = ExportedRelation {
                    batches: file.pages.len() as u64,
                    total: file.records,
                    whole: false,
                    failed: None,
                };
                (name.clone(), exported)
            })
            .collect()
    }

    /// The records of page `number` (1-based) of `relation`; none past its end. Blocking I/O.
    pub fn page(&self, relation: &str, number: u64) -> Result<Vec<Value>, String> {
        let Some(file) = self.relations.get(relation) else {
            return Ok(Vec::new());
        };
        let Some(&start) = number
            .checked_sub(1)
            .and_then(|i| file.pages.get(i as usize))
        else {
            return Ok(Vec::new());
        };
        let mut reader = std::io::BufReader::new(
            std::fs::File::open(&file.path).map_err(|e| format!("cannot read {relation}: {e}"))?,
        );
        reader
            .seek(std::io::SeekFrom::Start(start))
            .map_err(|e| format!("cannot read {relation}: {e}"))?;
        let mut records = Vec::new();
        let mut line = Vec::new();
        while (records.len() as u64) < PAGE {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read {relation}: {e}"))?;
            if read == 0 {
                break;
            }
            if let Some(record) = parse(&line).map_err(|e| format!("{relation}: {e}"))? {
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// A record line: None for a blank line or `null` (GitLab's way of writing a single record the
/// project does not have).
fn parse(line: &[u8]) -> Result<Option<Value>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Null) => Ok(None),
        Ok(record) => Ok(Some(record)),
        Err(e) => Err(format!("a line is not JSON: {e}")),
    }
}

/// Counts a relation file's records and notes where each page starts; a line longer than
/// [`MAX_LINE`] is refused. Lines are only measured and looked at for being blank or `null` here:
/// each is parsed when its page is read.
fn index(path: &Path) -> Result<RelationFile, String> {
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(path).map_err(|e| format!("cannot read it back: {e}"))?,
    );
    let (mut offset, mut records, mut pages) = (0u64, 0u64, Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read it back: {e}"))? as u64;
        if read == 0 {
            break;
        }
        if read > MAX_LINE {
            return Err(format!(
                "a line is longer than {} MiB",
                MAX_LINE / (1024 * 1024)
            ));
        }
        let text = line.trim_ascii();
        if !text.is_empty() && text != b"null" {
            if records % PAGE == 0 {
                pages.push(offset);
            }
            records += 1;
        }
        offset += read;
    }
    Ok(RelationFile {
        path: path.to_path_buf(),
        pages,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(entries: &[(&str, Option<&[u8]>)]) -> Result<ProjectExport, String> {
        let (download, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let file = download.path().join("export.tar.gz");
        std::fs::write(&file, crate::source::files::test_tar_gz(entries)).unwrap();
        ProjectExport::unpack(&file, dir)
    }

    #[test]
    fn relations_are_read_a_page_at_a_time_from_the_unpacked_export() {
        let issues: String = (1..=2500)
            .map(|i| format!("{{\"iid\":{i},\"title\":\"issue {i}\"}}\n"))
            .collect();
        let export = unpack(&[
            ("VERSION", Some(b"0.2.4")),
            ("tree/project.json", Some(b"{\"description\":\"x\"}")),
            ("tree/project/issues.ndjson", Some(issues.as_bytes())),
            ("tree/project/push_rule.ndjson", Some(b"null")),
            (
                "tree/project/project_feature.ndjson",
                Some(b"\n{\"wiki_access_level\":20}\n"),
            ),
            ("uploads/abc123/shot.png", Some(b"png")),
            ("avatar/logo.png", Some(b"logo")),
            ("project.design.bundle", Some(b"# v2 git bundle\n")),
            ("project.bundle", Some(b"# v2 git bundle\n")),
        ])
        .unwrap();
        let exported = export.exported();
        assert_eq!(exported["issues"].batches, 3);
        assert_eq!(exported["issues"].total, 2500);
        assert_eq!(exported["push_rule"].total, 0);
        assert_eq!(exported["project_feature"].total, 1);
        let iids = |n| -> Vec<u64> {
            export
                .page("issues", n)
                .unwrap()
                .iter()
                .map(|r| r["iid"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(iids(1), (1..=1000).collect::<Vec<_>>());
        assert_eq!(iids(3), (2001..=2500).collect::<Vec<_>>());
        assert!(iids(4).is_empty() && iids(0).is_empty());
        assert!(export.page("push_rule", 1).unwrap().is_empty());
        assert_eq!(
            export.page("project_feature", 1).unwrap(),
            vec![serde_json::json!({"wiki_access_level": 20})]
        );
        assert_eq!(export.uploads.len(), 1);
        assert_eq!(export.uploads[0].archive_name(), "uploads/abc123/shot.png");
        assert_eq!(std::fs::read(&export.uploads[0].path).unwrap(), b"png");
        assert_eq!(
            std::fs::read(export.design.as_ref().unwrap()).unwrap(),
            b"# v2 git bundle\n"
        );
    }

    #[test]
    fn a_hostile_export_is_refused() {
        let refused = |entries: &[(&str, Option<&[u8]>)]| unpack(entries).err().unwrap();
        assert!(refused(&[("tree/project/issues.ndjson", None)]).contains("not a regular file"));
        assert!(refused(&[("uploads/ab-c/x", Some(b"x"))]).contains("upload secret"));
        assert!(refused(&[("uploads/abc/x/y", Some(b"x"))]).contains("<secret>/<filename>"));
        assert!(refused(&[("uploads/abc/x", None)]).contains("not a regular file"));
        assert!(refused(&[("project.design.bundle", None)]).contains("not a regular file"));
        assert!(
            refused(&[
                ("tree/project/labels.ndjson", Some(b"{}")),
                ("./tree/project/labels.ndjson", Some(b"{}")),
            ])
            .contains("twice")
        );
        let export = unpack(&[("tree/project/labels.ndjson", Some(b"{\"title\":\n"))]).unwrap();
        assert!(export.page("labels", 1).unwrap_err().contains("not JSON"));
        // A header that announces more than GitLab would unpack is refused before its data is read.
        let mut header = tar::Header::new_gnu();
        header.set_path("tree/project/issues.ndjson").unwrap();
        header.set_size(MAX_UNPACKED + 1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, header.as_bytes()).unwrap();
        std::io::Write::write_all(&mut gz, &[b'{'; 4096]).unwrap();
        let (download, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let file = download.path().join("export.tar.gz");
        std::fs::write(&file, gz.finish().unwrap()).unwrap();
        let refused = ProjectExport::unpack(&file, dir).err().unwrap();
        assert!(refused.contains("more than 25600 MiB"), "{refused}");
        // Names that are not relations of the tree are not read at all.
        let export = unpack(&[("tree/project/Issues.ndjson", Some(b"{}"))]).unwrap();
        assert!(export.exported().is_empty());
    }
}

//! The staging directory of an export: one NDJSON file per committed page, each written atomically
//! (temporary file, fsync, rename), so an export that crashed resumes with every committed page already
//! on disk and a re-extracted page replaces its file. Pages are stored uncompressed: packing joins them
//! into larger members and compresses those in parallel. A small description beside each page
//! (records, size, digest, latest timestamp) saves parsing it again when packing; it is only a cache.

use super::{BundleError, ZSTD_LEVEL, volumes::sync_dir};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a staged page holds; written as `<page:06>.json` beside `<page:06>.ndjson`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub entity: String,
    pub relation: String,
    pub page: u64,
    pub records: u64,
    /// Bytes of NDJSON.
    pub size: u64,
    /// sha256 of the NDJSON file.
    pub sha256: String,
    /// The latest `updated_at`/`created_at` among the records, seconds since the epoch.
    pub latest: Option<i64>,
}

pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn new(dir: PathBuf) -> Staging {
        Staging { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn batch_dir(&self, entity: &str, relation: &str) -> PathBuf {
        self.dir.join("groups").join(entity).join(relation)
    }

    /// Makes one page of records durable. Blocking I/O: call it off the async runtime.
    pub fn write_batch(
        &self,
        entity: &str,
        relation: &str,
        page: u64,
        records: &[Value],
    ) -> Result<BatchMeta, BundleError> {
        super::check_member_name(entity)?;
        super::check_member_name(relation)?;
        let (ndjson, latest) = encode_ndjson(records)?;
        let meta = BatchMeta {
            entity: entity.to_string(),
            relation: relation.to_string(),
            page,
            records: records.len() as u64,
            size: ndjson.len() as u64,
            sha256: hex::encode(Sha256::digest(&ndjson)),
            latest,
        };
        let dir = self.batch_dir(entity, relation);
        std::fs::create_dir_all(&dir).map_err(BundleError::write(&dir))?;
        write_atomic(&dir.join(format!("{page:06}.ndjson")), &ndjson)?;
        // The description is a cache, not synced: `batches` recomputes it when it does not describe
        // the data file (lost in a crash, or left from an earlier write of the page).
        let meta_bytes = serde_json::to_vec(&meta)
            .map_err(|e| BundleError::write(&dir)(std::io::Error::other(e)))?;
        let meta_path = dir.join(format!("{page:06}.json"));
        let tmp = meta_path.with_extension("json.tmp");
        std::fs::write(&tmp, &meta_bytes).map_err(BundleError::write(&tmp))?;
        std::fs::rename(&tmp, &meta_path).map_err(BundleError::write(&meta_path))?;
        Ok(meta)
    }

    /// Every staged batch with its data file, sorted by (entity, relation, page). Each description is
    /// checked against its data file (hashed on the rayon pool) and rebuilt from it when stale.
    pub fn batches(&self) -> Result<Vec<(BatchMeta, PathBuf)>, BundleError> {
        let root = self.dir.join("groups");
        let mut files = Vec::new();
        if root.is_dir() {
            collect(&root, &mut files)?;
        }
        let mut out = files
            .par_iter()
            .map(|data| describe(&root, data).map(|m| (m, data.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|(a, _), (b, _)| {
            (&a.entity, &a.relation, a.page).cmp(&(&b.entity, &b.relation, b.page))
        });
        Ok(out)
    }

    /// Stages the records of a whole relation from an NDJSON file (one record per line), in pages of
    /// about `TARGET_MEMBER_BYTES`, replacing whatever was staged for it before (a resume that reads
    /// the relation again). Blocking I/O.
    pub fn write_relation_file(
        &self,
        entity: &str,
        relation: &str,
        ndjson: &Path,
    ) -> Result<u64, BundleError> {
        use std::io::BufRead;
        super::check_member_name(entity)?;
        super::check_member_name(relation)?;
        let dir = self.batch_dir(entity, relation);
        remove_dir(&dir)?;
        let file = std::fs::File::open(ndjson).map_err(BundleError::read(ndjson))?;
        let (mut page, mut records, mut bytes, mut total) = (0u64, Vec::new(), 0u64, 0u64);
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(BundleError::read(ndjson))?;
            if line.is_empty() {
                continue;
            }
            let record: Value = serde_json::from_str(&line).map_err(|e| BundleError::Corrupt {
                member: ndjson.display().to_string(),
                why: e.to_string(),
            })?;
            bytes += line.len() as u64 + 1;
            records.push(record);
            if bytes >= super::writer::TARGET_MEMBER_BYTES {
                total += records.len() as u64;
                self.write_batch(entity, relation, page, &records)?;
                (page, bytes) = (page + 1, 0);
                records.clear();
            }
        }
        if !records.is_empty() {
            total += records.len() as u64;
            self.write_batch(entity, relation, page, &records)?;
        }
        Ok(total)
    }

    fn file_dir(&self, entity: &str) -> PathBuf {
        self.dir.join("files").join(entity)
    }

    /// Stages a file relation (a repository's `git bundle`) of `entity` by moving `src` in (copied
    /// when it is on another file system), atomically: a crash leaves the old file or the new one.
    pub fn write_file(&self, entity: &str, relation: &str, src: &Path) -> Result<(), BundleError> {
        super::check_member_name(entity)?;
        super::check_member_name(relation)?;
        let dir = self.file_dir(entity);
        std::fs::create_dir_all(&dir).map_err(BundleError::write(&dir))?;
        move_in(src, &dir, relation)?;
        sync_dir(&dir);
        Ok(())
    }

    /// Removes a staged file relation of `entity`, when there is one.
    pub fn remove_file(&self, entity: &str, relation: &str) -> Result<(), BundleError> {
        let path = self.file_dir(entity).join(relation);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BundleError::write(&path)(e)),
        }
    }

    /// Every staged file: (entity, relation, path), sorted.
    pub fn files(&self) -> Result<Vec<(String, String, PathBuf)>, BundleError> {
        staged_under(&self.dir.join("files"), |relation| {
            !relation.ends_with(".tmp")
        })
    }

    fn blob_dir(&self, entity: &str) -> PathBuf {
        self.dir.join("blobs").join(entity)
    }

    /// Stages the blobs of `entity` (its uploads' bytes), each named by its sha256, replacing the
    /// ones staged for it before (a resume stages them again). Files are moved in when they can
    /// be (else copied), each synced. Blocking I/O.
    pub fn write_blobs(
        &self,
        entity: &str,
        blobs: &[(String, PathBuf)],
    ) -> Result<(), BundleError> {
        super::check_member_name(entity)?;
        let dir = self.blob_dir(entity);
        remove_dir(&dir)?;
        if blobs.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(BundleError::write(&dir))?;
        for (sha256, src) in blobs {
            if !super::is_sha256(sha256) {
                return Err(BundleError::Corrupt {
                    member: src.display().to_string(),
                    why: format!("`{sha256}` is not a sha256"),
                });
            }
            if !dir.join(sha256).exists() {
                move_in(src, &dir, sha256)?;
            }
        }
        sync_dir(&dir);
        Ok(())
    }

    /// Every staged blob: (entity, sha256, path), sorted.
    pub fn blobs(&self) -> Result<Vec<(String, String, PathBuf)>, BundleError> {
        staged_under(&self.dir.join("blobs"), crate::bundle::is_sha256)
    }

    pub fn remove(&self) -> Result<(), BundleError> {
        remove_dir(&self.dir)
    }
}

/// Every `<page>.ndjson` under `dir`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    for entry in std::fs::read_dir(dir).map_err(BundleError::read(dir))? {
        let path = entry.map_err(BundleError::read(dir))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.to_str().is_some_and(|p| p.ends_with(".ndjson")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Every file `<root>/<entity...>/<name>` whose name `keep` accepts: (entity, name, path), sorted.
fn staged_under(
    root: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String, PathBuf)>, BundleError> {
    let mut found = Vec::new();
    if root.is_dir() {
        collect_files(root, &mut found)?;
    }
    let mut out = Vec::new();
    for path in found {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
        let [entity @ .., name] = parts.as_slice() else {
            continue;
        };
        if entity.is_empty() || !keep(name) {
            continue;
        }
        out.push((entity.join("/"), name.to_string(), path.clone()));
    }
    out.sort();
    Ok(out)
}

/// Moves `src` into `dir` as `name` (copied when it is on another file system), synced, through a
/// temporary name: a crash leaves the old file or the new one.
fn move_in(src: &Path, dir: &Path, name: &str) -> Result<(), BundleError> {
    let tmp = dir.join(format!("{name}.tmp"));
    if std::fs::rename(src, &tmp).is_err() {
        std::fs::copy(src, &tmp).map_err(BundleError::write(&tmp))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(BundleError::write(&tmp))?;
    let dest = dir.join(name);
    std::fs::rename(&tmp, &dest).map_err(BundleError::write(&dest))
}

/// Removes a directory and everything in it; one that is not there is fine.
fn remove_dir(dir: &Path) -> Result<(), BundleError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BundleError::write(dir)(e)),
    }
}

/// Every file under `dir`.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    for entry in std::fs::read_dir(dir).map_err(BundleError::read(dir))? {
        let path = entry.map_err(BundleError::read(dir))?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The description of one staged data file: its cached one when it matches the bytes, else rebuilt.
fn describe(root: &Path, data: &Path) -> Result<BatchMeta, BundleError> {
    let bytes = std::fs::read(data).map_err(BundleError::read(data))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let meta_path = data.with_extension("json");
    let cached = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<BatchMeta>(&b).ok())
        .filter(|m| m.sha256 == sha256 && m.size == bytes.len() as u64);
    if let Some(meta) = cached {
        return Ok(meta);
    }
    // groups/<entity>/<relation>/<page>.ndjson: a relation name has no slash.
    let bad = |why: &str| BundleError::Corrupt {
        member: data.display().to_string(),
        why: why.to_string(),
    };
    let rel = data
        .strip_prefix(root)
        .map_err(|_| bad("outside the staging directory"))?;
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap_or("")).collect();
    let [entity @ .., relation, file] = parts.as_slice() else {
        return Err(bad("not a staged batch"));
    };
    let page: u64 = file
        .trim_end_matches(".ndjson")
        .parse()
        .map_err(|_| bad("not a staged batch"))?;
    let ndjson = bytes;
    let mut latest: Option<i64> = None;
    let mut records = 0;
    for line in ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        records += 1;
        let r: Value = serde_json::from_slice(line).map_err(|e| bad(&e.to_string()))?;
        if let Some(t) = record_time(&r) {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
    }
    Ok(BatchMeta {
        entity: entity.join("/"),
        relation: relation.to_string(),
        page,
        records,
        size: ndjson.len() as u64,
        sha256,
        latest,
    })
}

fn record_time(r: &Value) -> Option<i64> {
    ["updated_at", "created_at"]
        .iter()
        .filter_map(|f| r.get(*f).and_then(Value::as_str).and_then(parse_time))
        .max()
}

/// One record per line, and the latest timestamp among them.
pub fn encode_ndjson(records: &[Value]) -> Result<(Vec<u8>, Option<i64>), BundleError> {
    let mut out = Vec::new();
    let mut latest: Option<i64> = None;
    for r in records {
        serde_json::to_writer(&mut out, r).map_err(|e| BundleError::Corrupt {
            member: "(staging)".into(),
            why: e.to_string(),
        })?;
        out.push(b'\n');
        if let Some(t) = record_time(r) {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
    }
    Ok((out, latest))
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Single-threaded zstd at the fixed level, so the same bytes always compress the same way.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, BundleError> {
    zstd::bulk::compress(data, ZSTD_LEVEL).map_err(|e| BundleError::Corrupt {
        member: "(staging)".into(),
        why: format!("zstd: {e}"),
    })
}

/// Writes a file so that after a crash it holds either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(BundleError::write(&tmp))?;
    f.write_all(bytes).map_err(BundleError::write(&tmp))?;
    f.sync_all().map_err(BundleError::write(&tmp))?;
    std::fs::rename(&tmp, path).map_err(BundleError::write(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

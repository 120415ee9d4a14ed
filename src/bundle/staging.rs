//! The staging directory of an export: one compressed batch file per committed page, each written
//! atomically (temporary file, fsync, rename) with a small description beside it, so an export that
//! crashed resumes with every committed page already on disk and a re-extracted page replaces its file.

use super::{BundleError, ZSTD_LEVEL, volumes::sync_dir};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a staged batch holds; written as `<page:06>.json` beside `<page:06>.ndjson.zst`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub entity: String,
    pub relation: String,
    pub page: u64,
    pub records: u64,
    pub size: u64,
    pub compressed_size: u64,
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

    /// Compresses one page of records and makes it durable. CPU work: call it off the async runtime.
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
        let compressed = compress(&ndjson)?;
        let meta = BatchMeta {
            entity: entity.to_string(),
            relation: relation.to_string(),
            page,
            records: records.len() as u64,
            size: ndjson.len() as u64,
            compressed_size: compressed.len() as u64,
            sha256: hex::encode(Sha256::digest(&compressed)),
            latest,
        };
        let dir = self.batch_dir(entity, relation);
        std::fs::create_dir_all(&dir).map_err(BundleError::write(&dir))?;
        write_atomic(&dir.join(format!("{page:06}.ndjson.zst")), &compressed)?;
        let meta_bytes = serde_json::to_vec(&meta)
            .map_err(|e| BundleError::write(&dir)(std::io::Error::other(e)))?;
        // The description goes last: a batch counts as staged only once both files are in place.
        write_atomic(&dir.join(format!("{page:06}.json")), &meta_bytes)?;
        Ok(meta)
    }

    /// Every staged batch with its data file, sorted by (entity, relation, page).
    pub fn batches(&self) -> Result<Vec<(BatchMeta, PathBuf)>, BundleError> {
        let mut out = Vec::new();
        let root = self.dir.join("groups");
        if root.is_dir() {
            collect(&root, &mut out)?;
        }
        out.sort_by(|(a, _), (b, _)| {
            (&a.entity, &a.relation, a.page).cmp(&(&b.entity, &b.relation, b.page))
        });
        Ok(out)
    }

    pub fn remove(&self) -> Result<(), BundleError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BundleError::write(&self.dir)(e)),
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<(BatchMeta, PathBuf)>) -> Result<(), BundleError> {
    for entry in std::fs::read_dir(dir).map_err(BundleError::read(dir))? {
        let path = entry.map_err(BundleError::read(dir))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).map_err(BundleError::read(&path))?;
            let meta: BatchMeta = serde_json::from_slice(&bytes).map_err(|e| {
                BundleError::read(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            out.push((meta, path.with_extension("ndjson.zst")));
        }
    }
    Ok(())
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
        for field in ["updated_at", "created_at"] {
            if let Some(t) = r.get(field).and_then(Value::as_str).and_then(parse_time) {
                latest = Some(latest.map_or(t, |l| l.max(t)));
            }
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

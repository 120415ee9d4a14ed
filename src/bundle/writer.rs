//! Packs a staging directory into a bundle: pages joined into members of about 1 MiB and compressed
//! in parallel, then the manifest first, its digest and optional signature, then the members in name
//! order, every tar header deterministic (mode 0644, uid/gid 0, no user names,
//! mtime = the source state time). The same staged records always give the same bytes.

use super::manifest::{Manifest, ManifestEntity, ManifestMember};
use super::reader::{digest_line, header_for};
use super::staging::{Staging, compress};
use super::volumes::VolumeWriter;
use super::{
    BLOB_RELATION, BundleError, FORMAT_NAME, FORMAT_VERSION, MANIFEST, MANIFEST_DIGEST,
    OLDEST_FORMAT_VERSION, PROJECTS_FORMAT_VERSION, SIGNATURE, blob_member_path, file_member_path,
    member_path,
};
use crate::digest::{Hashing, copy_hashed};
use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

pub struct PackOptions {
    /// The bundle file, or the base name of its volumes.
    pub out: PathBuf,
    pub source_url: String,
    pub entities: Vec<ManifestEntity>,
    /// Split into volumes of this many bytes.
    pub volume_size: Option<u64>,
    pub sign_key: Option<SigningKey>,
    /// SOURCE_DATE_EPOCH, when set: used instead of the records' latest timestamp.
    pub source_date_epoch: Option<i64>,
}

pub struct Packed {
    /// sha256 of manifest.json, lowercase hex.
    pub root_digest: String,
    pub manifest: Manifest,
    pub files: Vec<PathBuf>,
}

/// SOURCE_DATE_EPOCH from the environment, when it is a number.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Pages of one relation are joined into members of about this much NDJSON: large enough to compress
/// well and keep tar headers a small share, small enough that a replay holds one member in memory.
pub const TARGET_MEMBER_BYTES: u64 = 1 << 20;

pub fn pack(staging: &Staging, opts: PackOptions) -> Result<Packed, BundleError> {
    let staged = staging.batches()?;
    let types: std::collections::HashMap<&str, &str> = opts
        .entities
        .iter()
        .map(|e| (e.source_full_path.as_str(), e.entity_type.as_str()))
        .collect();
    let entity_type = |entity: &str| types.get(entity).copied().unwrap_or("group");
    // Consecutive pages of one (entity, relation) become one member until it reaches the target size;
    // pages without records are skipped. Batches are numbered 0, 1, ... per (entity, relation).
    let mut planned: Vec<(ManifestMember, Vec<PathBuf>)> = Vec::new();
    let mut latest: Option<i64> = None;
    for (meta, file) in staged.into_iter().filter(|(m, _)| m.records > 0) {
        if let Some(t) = meta.latest {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
        if let Some((last, pages)) = planned.last_mut()
            && last.entity == meta.entity
            && last.relation == meta.relation
            && last.size + meta.size <= TARGET_MEMBER_BYTES
        {
            last.records += meta.records;
            last.size += meta.size;
            pages.push(file);
            continue;
        }
        let batch = match planned.last() {
            Some((last, _)) if last.entity == meta.entity && last.relation == meta.relation => {
                last.batch + 1
            }
            _ => 0,
        };
        planned.push((
            ManifestMember {
                path: member_path(
                    entity_type(&meta.entity),
                    &meta.entity,
                    &meta.relation,
                    batch,
                ),
                entity: meta.entity,
                relation: meta.relation,
                batch,
                records: meta.records,
                size: meta.size,
                compressed_size: 0,
                sha256: String::new(),
            },
            vec![file],
        ));
    }
    // Compress members in parallel into files beside the staged pages; the tar is written in order.
    let packed_dir = staging.dir().join("packed");
    let _ = std::fs::remove_dir_all(&packed_dir);
    std::fs::create_dir_all(&packed_dir).map_err(BundleError::write(&packed_dir))?;
    let mut members: Vec<(ManifestMember, PathBuf)> = planned
        .into_par_iter()
        .enumerate()
        .map(|(i, (mut member, pages))| {
            let mut ndjson = Vec::with_capacity(member.size as usize);
            for page in &pages {
                let mut f = std::fs::File::open(page).map_err(BundleError::read(page))?;
                f.read_to_end(&mut ndjson)
                    .map_err(BundleError::read(page))?;
            }
            if ndjson.len() as u64 != member.size {
                return Err(BundleError::Corrupt {
                    member: member.path.clone(),
                    why: "a staged page changed while the bundle was packed".into(),
                });
            }
            let compressed = compress(&ndjson)?;
            member.compressed_size = compressed.len() as u64;
            member.sha256 = hex::encode(Sha256::digest(&compressed));
            let file = packed_dir.join(format!("{i:08}.zst"));
            std::fs::write(&file, &compressed).map_err(BundleError::write(&file))?;
            Ok((member, file))
        })
        .collect::<Result<_, BundleError>>()?;
    // Files (repositories) are stored as they are: hashed now, streamed into the tar below.
    let files = staging
        .files()?
        .into_par_iter()
        .map(|(entity, relation, file)| {
            let path =
                file_member_path(&entity, &relation).ok_or_else(|| BundleError::Corrupt {
                    member: file.display().to_string(),
                    why: format!("`{relation}` is not a file a bundle carries"),
                })?;
            let (size, sha256) = hash_file(&file)?;
            Ok((
                ManifestMember {
                    path,
                    entity,
                    relation,
                    batch: 0,
                    records: 0,
                    size,
                    compressed_size: size,
                    sha256,
                },
                file,
            ))
        })
        .collect::<Result<Vec<_>, BundleError>>()?;
    members.extend(files);
    // Blobs (uploads) are stored once per sha256, under the first project (by path) that holds
    // one; each is hashed again now and must be the file its name says.
    let mut blobs = staging.blobs()?;
    blobs.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    blobs.dedup_by(|later, first| later.1 == first.1);
    let blobs = blobs
        .into_par_iter()
        .map(|(entity, sha256, file)| {
            let (size, actual) = hash_file(&file)?;
            if actual != sha256 {
                return Err(BundleError::DigestMismatch {
                    member: format!("{} (staged)", file.display()),
                    expected: sha256,
                    actual,
                });
            }
            Ok((
                ManifestMember {
                    path: blob_member_path(&sha256),
                    entity,
                    relation: BLOB_RELATION.to_string(),
                    batch: 0,
                    records: 0,
                    size,
                    compressed_size: size,
                    sha256,
                },
                file,
            ))
        })
        .collect::<Result<Vec<_>, BundleError>>()?;
    members.extend(blobs);
    members.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path));
    let epoch = opts.source_date_epoch.or(latest).unwrap_or(0).max(0);
    let mut entities = opts.entities;
    entities.sort_by(|a, b| a.source_full_path.cmp(&b.source_full_path));
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        // The oldest version that holds what the bundle holds, so an older appliance still reads
        // a bundle of groups (1), or of projects without designs (2).
        format_version: if members.iter().any(|(m, _)| m.relation == "design") {
            u64::from(FORMAT_VERSION)
        } else if entities.iter().any(|e| e.entity_type != "group") {
            u64::from(PROJECTS_FORMAT_VERSION)
        } else {
            u64::from(OLDEST_FORMAT_VERSION)
        },
        appliance_version: env!("CARGO_PKG_VERSION").into(),
        source_url: opts.source_url,
        source_state_time: rfc3339(epoch),
        source_state_epoch: epoch,
        entities,
        members: members.iter().map(|(m, _)| m.clone()).collect(),
        signed_by: opts
            .sign_key
            .as_ref()
            .map(|k| hex::encode(k.verifying_key().as_bytes())),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::write(&opts.out)(std::io::Error::other(e)))?;
    manifest_bytes.push(b'\n');
    let root_digest = hex::encode(Sha256::digest(&manifest_bytes));

    let out = opts.out.clone();
    let mut tar = tar::Builder::new(VolumeWriter::new(out.clone(), opts.volume_size));
    let append = |tar: &mut tar::Builder<VolumeWriter>, path: &str, data: &[u8]| {
        let mut h = header_for(data.len() as u64, epoch);
        tar.append_data(&mut h, path, data)
            .map_err(BundleError::write(&out))
    };
    append(&mut tar, MANIFEST, &manifest_bytes)?;
    append(
        &mut tar,
        MANIFEST_DIGEST,
        digest_line(&root_digest).as_bytes(),
    )?;
    if let Some(key) = &opts.sign_key {
        let sig = key.sign(&manifest_bytes);
        append(&mut tar, SIGNATURE, &sig.to_bytes())?;
    }
    for (m, file) in &members {
        // Streamed (a repository may be gigabytes), hashed on the way, and checked against what the
        // manifest pins: a file that changed since it was hashed is not packed.
        let f = std::fs::File::open(file).map_err(BundleError::read(file))?;
        let mut hashing = Hashing::new(f.take(m.compressed_size));
        let mut h = header_for(m.compressed_size, epoch);
        tar.append_data(&mut h, &m.path, &mut hashing)
            .map_err(BundleError::write(&out))?;
        let (read, actual) = hashing.finish();
        if actual != m.sha256 || read != m.compressed_size {
            return Err(BundleError::DigestMismatch {
                member: format!("{} (packed as {})", m.path, file.display()),
                expected: m.sha256.clone(),
                actual,
            });
        }
    }
    tar.finish().map_err(BundleError::write(&out))?;
    let _ = std::fs::remove_dir_all(&packed_dir);
    let mut writer = tar.into_inner().map_err(BundleError::write(&out))?;
    writer.flush().map_err(BundleError::write(&out))?;
    let files = writer.finish()?;
    Ok(Packed {
        root_digest,
        manifest,
        files,
    })
}

/// The size and sha256 of a file, streamed.
pub fn hash_file(path: &std::path::Path) -> Result<(u64, String), BundleError> {
    let f = std::fs::File::open(path).map_err(BundleError::read(path))?;
    copy_hashed(f, &mut std::io::sink()).map_err(BundleError::read(path))
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

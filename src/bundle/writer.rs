//! Packs a staging directory into a bundle: manifest first, then its digest and optional signature,
//! then the members in name order, every tar header deterministic (mode 0644, uid/gid 0, no user names,
//! mtime = the source state time). The same staged records always give the same bytes.

use super::manifest::{Manifest, ManifestEntity, ManifestMember};
use super::staging::Staging;
use super::volumes::VolumeWriter;
use super::{
    BundleError, FORMAT_NAME, FORMAT_VERSION, MANIFEST, MANIFEST_DIGEST, SIGNATURE, member_path,
};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
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

pub fn pack(staging: &Staging, opts: PackOptions) -> Result<Packed, BundleError> {
    let staged = staging.batches()?;
    // Pages without records (an empty relation, a last empty page) are not members; the others are
    // numbered 0, 1, ... per (entity, relation) in page order.
    let mut next_batch: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut members = Vec::new();
    let mut latest: Option<i64> = None;
    for (meta, file) in staged.into_iter().filter(|(m, _)| m.records > 0) {
        let counter = next_batch
            .entry((meta.entity.clone(), meta.relation.clone()))
            .or_default();
        let batch = *counter;
        *counter += 1;
        if let Some(t) = meta.latest {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
        members.push((
            ManifestMember {
                path: member_path(&meta.entity, &meta.relation, batch),
                entity: meta.entity,
                relation: meta.relation,
                batch,
                records: meta.records,
                size: meta.size,
                compressed_size: meta.compressed_size,
                sha256: meta.sha256,
            },
            file,
        ));
    }
    members.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path));
    let epoch = opts.source_date_epoch.or(latest).unwrap_or(0).max(0);
    let mut entities = opts.entities;
    entities.sort_by(|a, b| a.source_full_path.cmp(&b.source_full_path));
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: u64::from(FORMAT_VERSION),
        appliance_version: env!("CARGO_PKG_VERSION").into(),
        source_url: opts.source_url,
        source_state_time: rfc3339(epoch),
        source_state_epoch: epoch,
        entities,
        members: members.iter().map(|(m, _)| m.clone()).collect(),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::write(&opts.out)(std::io::Error::other(e)))?;
    manifest_bytes.push(b'\n');
    let root_digest = hex::encode(Sha256::digest(&manifest_bytes));

    let out = opts.out.clone();
    let mut tar = tar::Builder::new(VolumeWriter::new(out.clone(), opts.volume_size));
    let append = |tar: &mut tar::Builder<VolumeWriter>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(epoch as u64);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data)
            .map_err(BundleError::write(&out))
    };
    append(&mut tar, MANIFEST, &manifest_bytes)?;
    append(
        &mut tar,
        MANIFEST_DIGEST,
        format!("{root_digest}  {MANIFEST}\n").as_bytes(),
    )?;
    if let Some(key) = &opts.sign_key {
        let sig = key.sign(&manifest_bytes);
        append(&mut tar, SIGNATURE, &sig.to_bytes())?;
    }
    for (m, file) in &members {
        let data = std::fs::read(file).map_err(BundleError::read(file))?;
        let actual = hex::encode(Sha256::digest(&data));
        if actual != m.sha256 || data.len() as u64 != m.compressed_size {
            return Err(BundleError::DigestMismatch {
                member: format!("{} (staged as {})", m.path, file.display()),
                expected: m.sha256.clone(),
                actual,
            });
        }
        append(&mut tar, &m.path, &data)?;
    }
    tar.finish().map_err(BundleError::write(&out))?;
    let mut writer = tar.into_inner().map_err(BundleError::write(&out))?;
    writer.flush().map_err(BundleError::write(&out))?;
    let files = writer.finish()?;
    Ok(Packed {
        root_digest,
        manifest,
        files,
    })
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

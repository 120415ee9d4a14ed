//! `appliance inspect`: what a bundle holds, from its manifest: source, state time, entities,
//! relations, record counts and sizes. It reads the structure only; `appliance verify` checks content.

use crate::bundle::Bundle;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The bundle file, or its first volume.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let files = args.files.clone();
    let bundle = tokio::task::spawn_blocking(move || Bundle::open(&files)).await??;
    let m = &bundle.manifest;
    // (entity, relation) -> (batches, records, size, compressed size)
    let mut per: BTreeMap<(&str, &str), (u64, u64, u64, u64)> = BTreeMap::new();
    for mem in &m.members {
        let e = per
            .entry((mem.entity.as_str(), mem.relation.as_str()))
            .or_default();
        e.0 += 1;
        e.1 += mem.records;
        e.2 += mem.size;
        e.3 += mem.compressed_size;
    }
    if args.json {
        let entities: Vec<_> = m
            .entities
            .iter()
            .map(|e| {
                let relations: serde_json::Map<String, serde_json::Value> = per
                    .iter()
                    .filter(|((ent, _), _)| *ent == e.source_full_path)
                    .map(|((_, rel), (b, r, s, c))| {
                        (
                            rel.to_string(),
                            json!({"batches": b, "records": r, "size": s, "compressed_size": c}),
                        )
                    })
                    .collect();
                json!({
                    "source_full_path": e.source_full_path,
                    "type": e.entity_type,
                    "id": e.id,
                    "parent": e.parent,
                    "status": e.status,
                    "relations": relations,
                })
            })
            .collect();
        let out = json!({
            "files": bundle.volumes.paths().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "size": bundle.volumes.len(),
            "format_version": m.format_version,
            "appliance_version": m.appliance_version,
            "source_url": m.source_url,
            "source_state_time": m.source_state_time,
            "root_digest": bundle.root_digest,
            "signed": bundle.signature.is_some(),
            "records": m.members.iter().map(|x| x.records).sum::<u64>(),
            "entities": entities,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!("Bundle:       {}", bundle.volumes.name().display())?;
    crate::outln!(
        "Size:         {} bytes in {} file(s)",
        bundle.volumes.len(),
        bundle.volumes.paths().count()
    )?;
    crate::outln!(
        "Format:       version {}, written by appliance {}",
        m.format_version,
        m.appliance_version
    )?;
    crate::outln!("Source:       {}", m.source_url)?;
    crate::outln!(
        "Source state: {} (created from this state)",
        m.source_state_time
    )?;
    crate::outln!("Root digest:  sha256:{}", bundle.root_digest)?;
    // `Bundle::open` refused a signature that does not verify against the key the manifest names.
    match (&bundle.signature, &m.signed_by) {
        (Some(_), Some(signer)) => crate::outln!(
            "Signed:       yes, by key {} (check it is one you trust with: appliance verify --trusted-key KEY)",
            &signer[..16.min(signer.len())]
        )?,
        _ => crate::outln!("Signed:       no")?,
    }
    crate::outln!()?;
    let ew = m
        .entities
        .iter()
        .map(|e| e.source_full_path.len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let rw = per
        .keys()
        .map(|(_, r)| r.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    crate::outln!(
        "{:<ew$}  {:<8}  {:<rw$}  {:>8}  {:>10}  {:>10}",
        "ENTITY",
        "STATUS",
        "RELATION",
        "RECORDS",
        "SIZE",
        "STORED"
    )?;
    for e in &m.entities {
        let rels: Vec<_> = per
            .iter()
            .filter(|((ent, _), _)| *ent == e.source_full_path)
            .collect();
        if rels.is_empty() {
            crate::outln!("{:<ew$}  {:<8}  {:<rw$}", e.source_full_path, e.status, "-")?;
        }
        for ((_, rel), (_, r, s, c)) in rels {
            crate::outln!(
                "{:<ew$}  {:<8}  {:<rw$}  {:>8}  {:>10}  {:>10}",
                e.source_full_path,
                e.status,
                rel,
                r,
                s,
                c
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! Bundle throughput, run by hand: `cargo bench --bench bundle [-- RECORDS]`.
//! Stages synthetic relation records (issue-like, ~0.4 KiB each, 100 per page), packs them, and
//! verifies the bundle; then does the same bytes with `tar | zstd -T0`, `sha256sum` and `tar | gzip`
//! for comparison. Prints one line per step: seconds, MiB/s of NDJSON, and sizes.

use appliance::bundle::{Bundle, PackOptions, Staging, pack, verify};
use rayon::prelude::*;
use serde_json::json;
use std::process::Command;
use std::time::Instant;

const PER_BATCH: usize = 100;

fn record(i: usize) -> serde_json::Value {
    json!({
        "id": i,
        "iid": i % 5000 + 1,
        "title": format!("Issue {i}: login fails with SSO when the session cookie expires"),
        "description": format!(
            "Steps to reproduce #{i}:\n1. Sign in\n2. Wait {} minutes\n3. Reload: the page shows **500**.\nSee !{} and ~bug.",
            i % 90,
            i % 700
        ),
        "state": if i.is_multiple_of(3) { "closed" } else { "opened" },
        "created_at": format!("2023-{:02}-{:02}T{:02}:{:02}:00.000Z", i % 12 + 1, i % 28 + 1, i % 24, i % 60),
        "updated_at": format!("2023-{:02}-{:02}T{:02}:{:02}:30.000Z", i % 12 + 1, i % 28 + 1, i % 24, i % 60),
        "labels": ["bug", if i.is_multiple_of(2) { "backend" } else { "frontend" }],
        "weight": i % 8,
        "author_id": i % 40 + 1,
    })
}

fn mib_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

fn sh(cmd: &str) -> f64 {
    let t = Instant::now();
    let ok = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let secs = t.elapsed().as_secs_f64();
    if !ok {
        eprintln!("`{cmd}` failed (is the tool installed?)");
    }
    secs
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let staging = Staging::new(dir.path().join("staging"));
    let batches = records.div_ceil(PER_BATCH);
    let groups = [
        "acme",
        "acme/backend",
        "acme/frontend",
        "acme/backend/services",
    ];

    // Plain NDJSON of the same batches, for the external tools.
    let plain = dir.path().join("plain");
    let t = Instant::now();
    let sizes: Vec<u64> = (0..batches)
        .into_par_iter()
        .map(|b| -> Result<u64, String> {
            let recs: Vec<_> = (b * PER_BATCH..((b + 1) * PER_BATCH).min(records))
                .map(record)
                .collect();
            let entity = groups[b % groups.len()];
            let page = (b / groups.len()) as u64;
            let meta = staging
                .write_batch(entity, "issues", page, &recs)
                .map_err(|e| e.to_string())?;
            let (ndjson, _) =
                appliance::bundle::staging::encode_ndjson(&recs).map_err(|e| e.to_string())?;
            let d = plain.join(entity);
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            std::fs::write(d.join(format!("{page:06}.ndjson")), ndjson)
                .map_err(|e| e.to_string())?;
            Ok(meta.size)
        })
        .collect::<Result<_, _>>()?;
    let stage_secs = t.elapsed().as_secs_f64();
    let raw: u64 = sizes.iter().sum();
    println!(
        "records {records}, batches {batches}, NDJSON {:.1} MiB, {} rayon threads",
        raw as f64 / (1 << 20) as f64,
        rayon::current_num_threads()
    );
    println!(
        "stage pages (serialize NDJSON, write + fsync):         {stage_secs:6.2} s  {:7.1} MiB/s",
        mib_s(raw, stage_secs)
    );

    let entities = groups
        .iter()
        .map(|g| appliance::bundle::ManifestEntity {
            source_full_path: g.to_string(),
            entity_type: "group".into(),
            id: None,
            path: g.rsplit('/').next().unwrap_or(g).to_string(),
            parent: g.rsplit_once('/').map(|(p, _)| p.to_string()),
            status: "finished".into(),
        })
        .collect();
    let out = dir.path().join("bench.bundle");
    let t = Instant::now();
    pack(
        &staging,
        PackOptions {
            out: out.clone(),
            source_url: "https://gitlab.example.com".into(),
            entities,
            volume_size: None,
            sign_key: None,
            source_date_epoch: Some(0),
        },
    )?;
    let pack_secs = t.elapsed().as_secs_f64();
    let bundle_size = std::fs::metadata(&out)?.len();
    println!(
        "pack (join pages, zstd-9 in parallel, manifest, tar): {pack_secs:6.2} s  {:7.1} MiB/s",
        mib_s(raw, pack_secs)
    );
    println!(
        "export total (stage + pack):                             {:6.2} s  {:7.1} MiB/s",
        stage_secs + pack_secs,
        mib_s(raw, stage_secs + pack_secs)
    );

    let t = Instant::now();
    let bundle = Bundle::open(std::slice::from_ref(&out))?;
    let problems = verify(&bundle, None);
    let verify_secs = t.elapsed().as_secs_f64();
    assert!(problems.is_empty(), "{problems:?}");
    println!(
        "verify (sha256 + bounded unzstd of every member):      {verify_secs:6.2} s  {:7.1} MiB/s of NDJSON, {:7.1} MiB/s of bundle",
        mib_s(raw, verify_secs),
        mib_s(bundle_size, verify_secs)
    );

    let p = plain.display();
    let zst = dir.path().join("plain.tar.zst");
    let secs = sh(&format!(
        "tar -C {p} -cf - . | zstd -q -T0 -o {}",
        zst.display()
    ));
    println!(
        "tar | zstd -T0 (level 3) of the same NDJSON:            {secs:6.2} s  {:7.1} MiB/s",
        mib_s(raw, secs)
    );
    let secs = sh(&format!("sha256sum {} > /dev/null", out.display()));
    println!(
        "sha256sum of the bundle:                                 {secs:6.2} s  {:7.1} MiB/s of bundle",
        mib_s(bundle_size, secs)
    );
    let gz = dir.path().join("plain.tar.gz");
    let secs = sh(&format!("tar -C {p} -czf {} .", gz.display()));
    let (zst_size, gz_size) = (
        std::fs::metadata(&zst)?.len(),
        std::fs::metadata(&gz)?.len(),
    );
    println!("tar -z (gzip -6):                                        {secs:6.2} s");
    println!(
        "sizes: NDJSON {raw} B, bundle {bundle_size} B ({:.1}%), tar.zst {zst_size} B ({:.1}%), tar.gz {gz_size} B ({:.1}%)",
        100.0 * bundle_size as f64 / raw as f64,
        100.0 * zst_size as f64 / raw as f64,
        100.0 * gz_size as f64 / raw as f64
    );
    Ok(())
}

//! Write a bundle from staged batches and read it back, without a forge: the library-level guarantees
//! the command tests rely on.

use super::*;
use serde_json::{Value, json};
use std::path::Path;

fn entity(path: &str, parent: Option<&str>) -> ManifestEntity {
    ManifestEntity {
        source_full_path: path.into(),
        entity_type: "group".into(),
        id: Some(1),
        path: path.rsplit('/').next().unwrap_or(path).into(),
        parent: parent.map(str::to_string),
        status: "finished".into(),
    }
}

fn labels(n: usize, offset: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": i + offset, "title": format!("label {}", i + offset), "color": "#d9534f",
                   "updated_at": "2024-05-01T10:00:00Z"})
        })
        .collect()
}

fn write(dir: &Path, out: &str, volume_size: Option<u64>) -> writer::Packed {
    let staging = Staging::new(dir.join("staging"));
    staging
        .write_batch("acme", "group", 0, &[json!({"id": 1, "name": "Acme"})])
        .unwrap();
    staging
        .write_batch("acme", "labels", 0, &labels(3, 0))
        .unwrap();
    staging
        .write_batch("acme", "labels", 1, &labels(2, 3))
        .unwrap();
    staging.write_batch("acme", "labels", 2, &[]).unwrap();
    staging
        .write_batch(
            "acme/backend",
            "group",
            0,
            &[json!({"id": 2, "name": "Backend"})],
        )
        .unwrap();
    pack(
        &staging,
        PackOptions {
            out: dir.join(out),
            source_url: "https://gitlab.example.com".into(),
            entities: vec![entity("acme/backend", Some("acme")), entity("acme", None)],
            volume_size,
            sign_key: None,
            source_date_epoch: None,
        },
    )
    .unwrap()
}

#[test]
fn a_packed_bundle_reads_back_batch_by_batch() {
    let dir = tempfile::tempdir().unwrap();
    let packed = write(dir.path(), "b.bundle", None);
    // The state time is the latest record timestamp, never the clock.
    assert_eq!(packed.manifest.source_state_time, "2024-05-01T10:00:00Z");
    let bundle = Bundle::open(&[dir.path().join("b.bundle")]).unwrap();
    assert_eq!(bundle.root_digest, packed.root_digest);
    assert!(verify(&bundle, None).is_empty());
    let relations = bundle.manifest.relations();
    let label_batches = &relations[&("acme", "labels")];
    // Small pages are joined into one member; the empty page adds nothing.
    assert_eq!(label_batches.len(), 1);
    let records = bundle.records(label_batches[0]).unwrap();
    assert_eq!(records, labels(5, 0));
    assert_eq!(
        bundle.manifest.children("acme")[0].source_full_path,
        "acme/backend"
    );
}

#[test]
fn the_same_batches_give_the_same_bytes_and_volumes_split_them() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), "b.bundle", None);
    write(b.path(), "b.bundle", Some(1024));
    let single = std::fs::read(a.path().join("b.bundle")).unwrap();
    let mut joined = Vec::new();
    for n in 1.. {
        match std::fs::read(volumes::volume_path(&b.path().join("b.bundle"), n)) {
            Ok(v) => joined.extend(v),
            Err(_) => break,
        }
    }
    assert_eq!(single, joined);
    let bundle = Bundle::open(&[b.path().join("b.bundle.001")]).unwrap();
    assert!(verify(&bundle, None).is_empty());
}

#[test]
fn a_signature_is_checked_against_the_trusted_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::new(dir.path().join("staging"));
    staging
        .write_batch("acme", "group", 0, &[json!({"id": 1, "name": "Acme"})])
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    pack(
        &staging,
        PackOptions {
            out: dir.path().join("s.bundle"),
            source_url: "https://gitlab.example.com".into(),
            entities: vec![entity("acme", None)],
            volume_size: None,
            sign_key: Some(key.clone()),
            source_date_epoch: Some(0),
        },
    )
    .unwrap();
    let bundle = Bundle::open(&[dir.path().join("s.bundle")]).unwrap();
    assert!(verify(&bundle, Some(&key.verifying_key())).is_empty());
    // Intact without a trusted key too: the signature verifies against the key the manifest names.
    assert_eq!(
        bundle.manifest.signed_by,
        Some(hex::encode(key.verifying_key().as_bytes()))
    );
    assert!(verify(&bundle, None).is_empty());
    let problems = verify(&bundle, Some(&other.verifying_key()));
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .to_string()
            .contains("does not match the trusted key")
    );
}

#[test]
fn lost_batch_descriptions_are_rebuilt_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "a.bundle", None);
    let labels_dir = dir.path().join("staging/groups/acme/labels");
    std::fs::remove_file(labels_dir.join("000000.json")).unwrap();
    std::fs::write(labels_dir.join("000001.json"), b"{\"stale\": true}").unwrap();
    let staging = Staging::new(dir.path().join("staging"));
    let again = pack(
        &staging,
        PackOptions {
            out: dir.path().join("b.bundle"),
            source_url: "https://gitlab.example.com".into(),
            entities: vec![entity("acme/backend", Some("acme")), entity("acme", None)],
            volume_size: None,
            sign_key: None,
            source_date_epoch: None,
        },
    )
    .unwrap();
    assert_eq!(first.root_digest, again.root_digest);
    assert_eq!(
        std::fs::read(dir.path().join("a.bundle")).unwrap(),
        std::fs::read(dir.path().join("b.bundle")).unwrap()
    );
}

#[test]
fn a_large_relation_is_split_into_members_of_about_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::new(dir.path().join("staging"));
    staging
        .write_batch("acme", "group", 0, &[json!({"id": 1, "name": "Acme"})])
        .unwrap();
    let page = |p: usize| -> Vec<Value> {
        (0..100)
            .map(|i| {
                json!({"id": p * 100 + i, "title": format!("l{i}"), "color": "#fff",
                       "description": "x".repeat(1000)})
            })
            .collect()
    };
    for p in 0..25 {
        staging
            .write_batch("acme", "labels", p as u64, &page(p))
            .unwrap();
    }
    let packed = pack(
        &staging,
        PackOptions {
            out: dir.path().join("big.bundle"),
            source_url: "https://gitlab.example.com".into(),
            entities: vec![entity("acme", None)],
            volume_size: None,
            sign_key: None,
            source_date_epoch: Some(0),
        },
    )
    .unwrap();
    let label_members: Vec<_> = packed
        .manifest
        .members
        .iter()
        .filter(|m| m.relation == "labels")
        .collect();
    assert_eq!(label_members.len(), 3, "2.5 MB of pages give three members");
    assert!(
        label_members
            .iter()
            .all(|m| m.size <= writer::TARGET_MEMBER_BYTES)
    );
    let bundle = Bundle::open(&[dir.path().join("big.bundle")]).unwrap();
    assert!(verify(&bundle, None).is_empty());
    let ids: Vec<u64> = label_members
        .iter()
        .flat_map(|m| bundle.records(m).unwrap())
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (0..2500).collect::<Vec<u64>>(),
        "every record once, in page order"
    );
}

#[test]
fn a_flipped_bit_anywhere_in_a_bundle_is_found() {
    // The signed sample too: its signature is checked against the key its manifest names.
    // And the frozen version 1 samples: a reader of version 2 checks them as strictly.
    for sample in [
        "acme.bundle",
        "acme-signed.bundle",
        "v1/acme.bundle",
        "v1/acme-signed.bundle",
    ] {
        flips_are_found(sample);
    }
}

fn flips_are_found(sample: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bundles/samples")
        .join(sample);
    let bytes = std::fs::read(&golden).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("flipped.bundle");
    let bundle_ok = |b: &[u8]| -> bool {
        std::fs::write(&copy, b).unwrap();
        match Bundle::open(std::slice::from_ref(&copy)) {
            Ok(bundle) => verify(&bundle, None).is_empty(),
            Err(_) => false,
        }
    };
    assert!(bundle_ok(&bytes));
    // About 1,000 bytes spread over the whole bundle (every 29th at least; an odd step, so the
    // offsets fall at every place of a 512-byte block), a different bit each time: headers, manifest,
    // members (repositories too), padding, end blocks.
    let step = (bytes.len() / 1000).max(29) | 1;
    let mut missed = Vec::new();
    for (n, at) in (0..bytes.len()).step_by(step).enumerate() {
        let mut b = bytes.clone();
        b[at] ^= 1 << (n % 8);
        if bundle_ok(&b) {
            missed.push(at);
        }
    }
    assert!(
        missed.is_empty(),
        "{sample}: flips at these offsets went unnoticed: {missed:?}"
    );
}

#[test]
fn a_batch_is_read_in_pages_of_a_byte_budget_from_any_record() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.bundle", None);
    let bundle = Bundle::open(&[dir.path().join("b.bundle")]).unwrap();
    let member = bundle.manifest.relations()[&("acme", "labels")][0].clone();
    let all = bundle.records(&member).unwrap();
    // Each label line is about 100 bytes: a budget of 150 holds one, then the next page starts there.
    let (page, next) = bundle.records_from(&member, 0, 150).unwrap();
    assert_eq!((page.as_slice(), next), (&all[..1], Some(1)));
    let (page, next) = bundle.records_from(&member, 3, 250).unwrap();
    assert_eq!((page.as_slice(), next), (&all[3..5], None));
    // A budget smaller than one record still yields that record.
    let (page, next) = bundle.records_from(&member, 4, 1).unwrap();
    assert_eq!((page.as_slice(), next), (&all[4..], None));
}

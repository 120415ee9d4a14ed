//! The golden sample bundles in `bundles/samples/`: export of the `small` dataset (seed 7) with
//! SOURCE_DATE_EPOCH set must still produce them byte for byte, and verify and inspect must read them.
//! After an intended format change, regenerate them with
//! `APPLIANCE_BLESS_BUNDLES=1 cargo test --test bundle_golden` and say why in the commit.

use crate::bundle_common;
use crate::common;

use bundle_common::*;
use common::*;
use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The source URL is in the manifest, so the samples are made from a simulator on a fixed port.
const GOLDEN_PORT: u16 = 47391;
const SOURCE_DATE_EPOCH: &str = "1700000000";
/// A test-only signing key, derived from a constant: never use it for real bundles.
const TEST_KEY_SEED: [u8; 32] = [0x5A; 32];

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bundles/samples")
}

fn manifest_of(bundle: &[u8]) -> Value {
    serde_json::from_slice(&members(bundle)[0].data).expect("manifest JSON")
}

/// Why `fresh` is not `golden`, member by member and manifest field by field.
fn explain(golden: &[u8], fresh: &[u8]) -> String {
    let (g, f) = (members(golden), members(fresh));
    let mut why = Vec::new();
    let (gm, fm) = (manifest_of(golden), manifest_of(fresh));
    for (k, v) in gm.as_object().unwrap() {
        if k != "members" && fm.get(k) != Some(v) {
            why.push(format!("manifest `{k}`: golden {v}, now {}", fm[k]));
        }
    }
    let paths = |ms: &[RawMember]| ms.iter().map(|m| m.path.clone()).collect::<Vec<_>>();
    if paths(&g) != paths(&f) {
        why.push(format!(
            "members: golden {:?}, now {:?}",
            paths(&g),
            paths(&f)
        ));
    }
    for (a, b) in g.iter().zip(&f) {
        if a.path == b.path && a.data != b.data && a.path.ends_with(".zst") {
            let (pa, pb) = (
                zstd::decode_all(a.data.as_slice()).unwrap_or_default(),
                zstd::decode_all(b.data.as_slice()).unwrap_or_default(),
            );
            why.push(if pa == pb {
                format!(
                    "{}: same records, compressed differently (zstd version?)",
                    a.path
                )
            } else {
                format!(
                    "{}: records differ:\n  golden {}\n  now    {}",
                    a.path,
                    String::from_utf8_lossy(&pa),
                    String::from_utf8_lossy(&pb)
                )
            });
        }
    }
    if why.is_empty() {
        why.push("tar headers differ".into());
    }
    why.join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn export_still_produces_the_golden_samples_byte_for_byte() {
    let mut cfg = SimConfig::new(Dataset::Small, SEED);
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], GOLDEN_PORT));
    // When the port is taken (another run of this test), the source URL differs: then everything
    // but the manifest's source_url (and the digest and signature that pin it) is compared.
    let (src, fixed_port) = match RunningSim::start(cfg).await {
        Ok(src) => (src, true),
        Err(_) => (source().await, false),
    };
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&TEST_KEY_SEED);
    let key_file = dir.path().join("test.key");
    std::fs::write(&key_file, hex::encode(key.to_bytes())).unwrap();
    let plain = dir.path().join("acme.bundle");
    let signed = dir.path().join("acme-signed.bundle");
    for (out, extra) in [
        (&plain, vec![]),
        (&signed, vec!["--sign-key", key_file.to_str().unwrap()]),
    ] {
        let mut cmd = export_cmd(&src, out, &dir.path().join(format!("data-{}", extra.len())));
        cmd.args(&extra).env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
        let o = run(cmd).await;
        assert!(o.status.success(), "{}", text(&o));
    }
    src.shutdown().await;

    if std::env::var("APPLIANCE_BLESS_BUNDLES").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(samples()).unwrap();
        std::fs::copy(&plain, samples().join("acme.bundle")).unwrap();
        std::fs::copy(&signed, samples().join("acme-signed.bundle")).unwrap();
        std::fs::write(
            samples().join("acme-signed.pub"),
            format!("{}\n", hex::encode(key.verifying_key().as_bytes())),
        )
        .unwrap();
    }
    for (fresh, name) in [(&plain, "acme.bundle"), (&signed, "acme-signed.bundle")] {
        let golden = std::fs::read(samples().join(name)).expect("the golden sample exists");
        let fresh = std::fs::read(fresh).unwrap();
        if !fixed_port {
            eprintln!("port {GOLDEN_PORT} is busy: {name} is compared without its source URL");
            let (mut g, f) = (manifest_of(&golden), manifest_of(&fresh));
            g["source_url"] = f["source_url"].clone();
            assert_eq!(
                g,
                f,
                "the manifest of {name} changed:\n{}",
                explain(&golden, &fresh)
            );
            let data = |b: &[u8]| -> Vec<(String, Vec<u8>)> {
                members(b)
                    .into_iter()
                    .filter(|m| m.path.ends_with(".zst"))
                    .map(|m| (m.path, m.data))
                    .collect()
            };
            assert!(
                data(&golden) == data(&fresh),
                "{}",
                explain(&golden, &fresh)
            );
            continue;
        }
        assert!(
            golden == fresh,
            "export no longer reproduces bundles/samples/{name}:\n{}\nIf this change is intended, regenerate the samples with APPLIANCE_BLESS_BUNDLES=1 and bump FORMAT_VERSION when old readers cannot read the new bundles.",
            explain(&golden, &fresh)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_and_inspect_read_the_golden_samples() {
    let plain = samples().join("acme.bundle");
    let signed = samples().join("acme-signed.bundle");
    let public = std::fs::read_to_string(samples().join("acme-signed.pub")).unwrap();
    let v = verify(&[&plain], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    let v = verify(&[&signed], &["--trusted-key", public.trim()]).await;
    assert!(v.status.success(), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("signature:   valid"));
    // The public key file itself is accepted too.
    let key_path = samples().join("acme-signed.pub");
    let v = verify(&[&signed], &["--trusted-key", key_path.to_str().unwrap()]).await;
    assert!(v.status.success(), "{}", text(&v));

    let mut cmd = appliance();
    cmd.arg("inspect").arg(&plain).arg("--json");
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        info["source_url"],
        format!("http://127.0.0.1:{GOLDEN_PORT}")
    );
    assert_eq!(info["source_state_time"], "2023-11-14T22:13:20Z");
    // Four groups and four projects, each project with its repository.
    let entities = info["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 8);
    // A project's design repository is in it.
    assert_eq!(info["format_version"], 3);
    let projects: Vec<&Value> = entities.iter().filter(|e| e["type"] == "project").collect();
    assert_eq!(projects.len(), 4);
    for p in projects {
        assert!(
            p["relations"]["repository"]["size"].as_u64() > Some(0),
            "{p}"
        );
    }
    let acme = &info["entities"][0];
    assert_eq!(acme["source_full_path"], "acme");
    assert_eq!(acme["relations"]["labels"]["records"], 5);
    assert_eq!(info["signed"], false);
    let mut cmd = appliance();
    cmd.arg("inspect").arg(&signed);
    let o = run(cmd).await;
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("Signed:       yes") && shown.contains("acme/backend/services"),
        "{shown}"
    );
}

/// The samples frozen in `bundles/samples/<dir>/`: both verify (the signed one with its key), and
/// the plain one's `inspect --json`; (the signed sample, its public key, what inspect said).
async fn frozen_sample(dir: &str) -> (PathBuf, String, Value) {
    let dir = samples().join(dir);
    let (plain, signed) = (dir.join("acme.bundle"), dir.join("acme-signed.bundle"));
    let public = std::fs::read_to_string(dir.join("acme-signed.pub")).unwrap();
    let v = verify(&[&plain], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    let v = verify(&[&signed], &["--trusted-key", public.trim()]).await;
    assert!(v.status.success(), "{}", text(&v));
    let mut cmd = appliance();
    cmd.arg("inspect").arg(&plain).arg("--json");
    let info: Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    (signed, public, info)
}

/// Bundles written before bundles carried projects (format version 1, frozen in
/// `bundles/samples/v1/` from the main of 2026-12-02) still verify, inspect and replay: the groups
/// arrive, and each project they list is reported as not carried, never silently left out.
#[tokio::test(flavor = "multi_thread")]
async fn bundles_of_format_version_1_still_verify_inspect_and_replay() {
    let (signed, public, info) = frozen_sample("v1").await;
    assert_eq!(info["format_version"], 1);
    assert_eq!(info["entities"].as_array().unwrap().len(), 4);

    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let mut cmd = replay_cmd(&dst, &signed, data.path());
    cmd.args(["--json", "--trusted-key", public.trim()]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "finished", "{r:#}");
    let entities = r["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 4, "the four groups, no project: {r:#}");
    let not_carried: Vec<&Value> = entities
        .iter()
        .flat_map(|e| e["skipped"].as_array().unwrap())
        .filter(|s| s["relation"] == "projects")
        .collect();
    assert_eq!(
        not_carried.len(),
        4,
        "each listed project is reported: {r:#}"
    );
    for s in not_carried {
        assert!(
            s["exception_message"]
                .as_str()
                .is_some_and(|m| m.contains("written before bundles carried projects")),
            "{s}"
        );
    }
    let labels = get_all(&dst.url, &dst.owner_token, "groups/imported%2Facme/labels").await;
    assert_eq!(labels.len(), 5, "the group's records arrived");
    dst.shutdown().await;
}

/// Bundles of projects written before designs travelled (format version 2, frozen in
/// `bundles/samples/v2/` from the main of 2026-12-03) still verify, inspect and replay: every
/// group and project arrives, with the records each project's rows count, and nothing fails.
#[tokio::test(flavor = "multi_thread")]
async fn bundles_of_format_version_2_still_verify_inspect_and_replay() {
    let (signed, public, info) = frozen_sample("v2").await;
    assert_eq!(info["format_version"], 2);
    let entities = info["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 8, "four groups and four projects");
    let issues_carried: u64 = entities
        .iter()
        .filter_map(|e| e["relations"]["issues"]["records"].as_u64())
        .sum();
    assert!(issues_carried > 0, "{info:#}");

    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let mut cmd = replay_cmd(&dst, &signed, data.path());
    cmd.args(["--json", "--trusted-key", public.trim()]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");
    let projects: Vec<&Value> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] == "project")
        .collect();
    assert_eq!(projects.len(), 4, "{r:#}");
    let mut issues_arrived = 0;
    for p in projects {
        assert_eq!(p["status"], "finished", "{p:#}");
        let dest = p["destination_full_path"].as_str().unwrap();
        let there = get_all(
            &dst.url,
            &dst.admin_token,
            &format!("projects/{}/issues", dest.replace('/', "%2F")),
        )
        .await;
        let stat = p["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["relation"] == "issues")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            stat["imported"].as_u64().unwrap_or(0),
            there.len() as u64,
            "{dest}: {stat}"
        );
        issues_arrived += there.len() as u64;
    }
    assert_eq!(
        issues_arrived, issues_carried,
        "every issue carried arrived"
    );
    dst.shutdown().await;
}

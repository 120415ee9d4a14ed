//! Support for the bundle tests: run export / verify / inspect / replay through the real binary, and
//! take a bundle apart or put a crafted one together to check what the reader refuses.
#![allow(dead_code)]

use crate::common::{appliance, run};
use forge_sim::RunningSim;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `appliance export --group acme` from the simulator into `out`.
pub fn export_cmd(src: &RunningSim, out: &Path, data: &Path) -> Command {
    let mut cmd = appliance();
    cmd.args(["export", "--group", "acme", "--source-url", &src.url])
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    cmd
}

pub async fn export(src: &RunningSim, out: &Path, data: &Path, extra: &[&str]) -> Output {
    let mut cmd = export_cmd(src, out, data);
    cmd.args(extra);
    let o = run(cmd).await;
    assert!(o.status.success(), "export failed: {}", text(&o));
    o
}

pub fn replay_cmd(dst: &RunningSim, bundle: &Path, data: &Path) -> Command {
    let mut cmd = appliance();
    cmd.arg("replay")
        .arg(bundle)
        .args(["--to", "imported", "--destination-url", &dst.url])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    cmd
}

pub async fn verify(files: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = appliance();
    cmd.arg("verify").args(files).args(extra);
    run(cmd).await
}

/// One member of a tar as it was stored: its raw header and its content.
pub struct RawMember {
    pub header: tar::Header,
    pub path: String,
    pub data: Vec<u8>,
}

/// Takes a bundle apart (long names resolved).
pub fn members(bundle: &[u8]) -> Vec<RawMember> {
    let mut archive = tar::Archive::new(bundle);
    let mut out = Vec::new();
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8");
        let header = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read");
        out.push(RawMember { header, path, data });
    }
    out
}

/// Puts members together as they are, with their headers (paths written raw, so anything can be
/// crafted), recomputing only the header checksums.
pub fn pack(members: &[RawMember]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = m.header.clone();
        h.set_size(m.data.len() as u64);
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        let bytes = m.path.as_bytes();
        name[..bytes.len()].copy_from_slice(bytes);
        if let Some(u) = h.as_ustar_mut() {
            u.prefix.fill(0);
        }
        h.set_cksum();
        b.append(&h, m.data.as_slice()).expect("append");
    }
    b.into_inner().expect("finish")
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Rewrites the manifest (and the digest member that pins it) with `change`.
pub fn with_manifest(members: &mut [RawMember], change: impl FnOnce(&mut serde_json::Value)) {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&members[0].data).expect("manifest JSON");
    change(&mut manifest);
    let mut bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    bytes.push(b'\n');
    members[1].data = format!("{}  manifest.json\n", sha256_hex(&bytes)).into_bytes();
    members[0].data = bytes;
}

pub fn index(parts: &[RawMember], path: &str) -> usize {
    parts
        .iter()
        .position(|m| m.path == path)
        .unwrap_or_else(|| panic!("the exported bundle has `{path}`"))
}

/// Changes the manifest's entry of member `path`.
pub fn declare(parts: &mut [RawMember], path: &str, change: impl FnOnce(&mut Value)) {
    with_manifest(parts, |m| {
        let member = m["members"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|x| x["path"] == path)
            .expect("a member of the manifest");
        change(member);
    });
}

/// Replaces the NDJSON of member `path` and declares it honestly in the manifest.
pub fn restuff(parts: &mut [RawMember], path: &str, ndjson: &[u8]) {
    let compressed = zstd::encode_all(ndjson, 9).unwrap();
    let i = index(parts, path);
    parts[i].data = compressed.clone();
    declare(parts, path, |m| {
        m["size"] = json!(ndjson.len());
        m["compressed_size"] = json!(compressed.len());
        m["sha256"] = json!(sha256_hex(&compressed));
        m["records"] = json!(ndjson.iter().filter(|b| **b == b'\n').count());
    });
}

/// Rewrites the records of NDJSON member `path` with `change` and declares the result honestly.
pub fn rewrite_records(parts: &mut [RawMember], path: &str, change: impl FnOnce(&mut Vec<Value>)) {
    let ndjson = zstd::decode_all(parts[index(parts, path)].data.as_slice()).unwrap();
    let mut records: Vec<Value> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    change(&mut records);
    let mut lines = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut lines, record).unwrap();
        lines.push(b'\n');
    }
    restuff(parts, path, &lines);
}

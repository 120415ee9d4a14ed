//! Bad bundles are refused with a message naming the problem, by `verify` and by `replay`, and a
//! refused replay leaves the destination untouched. Signed bundles are accepted only with their key.

use crate::bundle_common;
use crate::common;

use bundle_common::*;
use common::*;
use forge_sim::RunningSim;
use serde_json::json;
use std::path::Path;

/// Nothing of the sample group reached the destination: no group under `imported`, no label in it.
async fn assert_untouched(dst: &RunningSim, case: &str) {
    assert!(
        get(&dst.url, &dst.owner_token, "groups/imported%2Facme")
            .await
            .is_none(),
        "{case}: a group was created"
    );
    let subgroups = get_all(&dst.url, &dst.owner_token, "groups/imported/subgroups").await;
    assert!(subgroups.is_empty(), "{case}: subgroups were created");
    let labels = get_all(
        &dst.url,
        &dst.owner_token,
        "groups/imported/labels?include_ancestor_groups=false",
    )
    .await;
    assert!(labels.is_empty(), "{case}: labels were created");
}

/// `verify` and `replay` both refuse `file`, saying `why`, and the destination stays as it was.
async fn assert_refused(dst: &RunningSim, data: &Path, file: &Path, case: &str, why: &str) {
    let v = verify(&[file], &[]).await;
    assert_eq!(
        v.status.code(),
        Some(1),
        "{case}: verify accepted it: {}",
        text(&v)
    );
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(why),
        "{case}: verify does not say `{why}`: {}",
        text(&v)
    );
    let r = run(replay_cmd(dst, file, data)).await;
    assert!(
        !r.status.success(),
        "{case}: replay accepted it: {}",
        text(&r)
    );
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(why),
        "{case}: replay does not say `{why}`: {}",
        text(&r)
    );
    assert!(stderr.contains("nothing was written") || stderr.contains("Nothing was written"));
    assert_untouched(dst, case).await;
}

fn member_index(parts: &[RawMember], suffix: &str) -> usize {
    parts
        .iter()
        .position(|m| m.path.ends_with(suffix))
        .unwrap_or_else(|| panic!("the sample bundle has a member ending in {suffix}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_or_malicious_bundles_are_refused_before_anything_is_written() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bundle");
    export(&src, &good, &dir.path().join("export-data"), &[]).await;
    let bytes = std::fs::read(&good).unwrap();
    let data = dir.path().join("replay-data");
    let labels = "groups/acme/labels/000000.ndjson.zst";

    let write = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };

    // Truncated: a copy cut short.
    let cut = write("truncated.bundle", &bytes[..bytes.len() - 1500]);
    assert_refused(&dst, &data, &cut, "truncated", "truncated").await;

    // A flipped bit inside a member: the member and both digests are named.
    let bundle = appliance::bundle::Bundle::open(std::slice::from_ref(&good)).unwrap();
    let at = bundle.location(labels).unwrap().offset + 20;
    let mut flipped = bytes.clone();
    flipped[at as usize] ^= 0x04;
    let expected = bundle
        .manifest
        .members
        .iter()
        .find(|m| m.path == labels)
        .unwrap()
        .sha256
        .clone();
    let f = write("flipped.bundle", &flipped);
    assert_refused(&dst, &data, &f, "flipped bit", labels).await;
    let v = verify(&[&f], &[]).await;
    let said = String::from_utf8_lossy(&v.stdout);
    assert!(
        said.contains(&format!("expected sha256 {expected}")),
        "{said}"
    );
    assert!(said.contains("found "), "{said}");

    // A flipped bit in the manifest itself.
    let mut flipped = bytes.clone();
    let at = bundle.location("manifest.json").unwrap().offset + 100;
    flipped[at as usize] ^= 0x01;
    let f = write("manifest-flipped.bundle", &flipped);
    assert_refused(&dst, &data, &f, "flipped manifest", "manifest.json").await;

    // An unknown format version.
    let mut parts = members(&bytes);
    with_manifest(&mut parts, |m| m["format_version"] = json!(4));
    let f = write("v4.bundle", &pack(&parts));
    assert_refused(&dst, &data, &f, "format version", "format version 4").await;

    // A manifest that does not match the content: another digest for a member ...
    let mut parts = members(&bytes);
    with_manifest(&mut parts, |m| {
        for member in m["members"].as_array_mut().unwrap() {
            if member["path"] == labels {
                member["sha256"] = json!("0".repeat(64));
            }
        }
    });
    let f = write("wrong-digest.bundle", &pack(&parts));
    assert_refused(&dst, &data, &f, "wrong digest", labels).await;
    // ... or a member it does not list.
    let mut parts = members(&bytes);
    with_manifest(&mut parts, |m| {
        m["members"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x["path"] != labels)
    });
    let f = write("unlisted.bundle", &pack(&parts));
    assert_refused(&dst, &data, &f, "unlisted member", "not in the manifest").await;

    // Unsafe names and entry types.
    let extra = |path: &str, kind: tar::EntryType| {
        let mut parts = members(&bytes);
        let mut m = RawMember {
            header: parts[2].header.clone(),
            path: path.to_string(),
            data: b"x".to_vec(),
        };
        m.header.set_entry_type(kind);
        if kind != tar::EntryType::Regular {
            m.data.clear();
            m.header.set_link_name("/etc/passwd").unwrap();
        }
        parts.push(m);
        pack(&parts)
    };
    let cases = [
        (
            "absolute.bundle",
            "/etc/cron.d/evil",
            tar::EntryType::Regular,
            "absolute path",
        ),
        (
            "dotdot.bundle",
            "groups/../../evil",
            tar::EntryType::Regular,
            "`..`",
        ),
        (
            "symlink.bundle",
            "groups/acme/link",
            tar::EntryType::Symlink,
            "a link",
        ),
        (
            "hardlink.bundle",
            "groups/acme/hard",
            tar::EntryType::Link,
            "a link",
        ),
        (
            "device.bundle",
            "groups/acme/dev",
            tar::EntryType::Char,
            "a device",
        ),
    ];
    for (name, path, kind, why) in cases {
        let f = write(name, &extra(path, kind));
        assert_refused(&dst, &data, &f, name, why).await;
    }

    // The same member twice.
    let mut parts = members(&bytes);
    let i = member_index(&parts, labels);
    let dup = RawMember {
        header: parts[i].header.clone(),
        path: parts[i].path.clone(),
        data: parts[i].data.clone(),
    };
    parts.insert(i + 1, dup);
    let f = write("duplicate.bundle", &pack(&parts));
    assert_refused(&dst, &data, &f, "duplicate", "appears twice").await;

    // A member that decompresses past its declared size (a zip bomb in miniature).
    let mut parts = members(&bytes);
    with_manifest(&mut parts, |m| {
        for member in m["members"].as_array_mut().unwrap() {
            if member["path"] == labels {
                member["size"] = json!(10);
            }
        }
    });
    let f = write("oversized.bundle", &pack(&parts));
    assert_refused(
        &dst,
        &data,
        &f,
        "oversized",
        "decompresses past its declared size",
    )
    .await;

    // The untouched original is still accepted (so the refusals above were about the damage).
    let v = verify(&[&good], &[]).await;
    assert!(v.status.success(), "{}", text(&v));
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_bundle_is_accepted_only_with_its_own_key() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let key_a = ed25519_dalek::SigningKey::from_bytes(&[0xA1; 32]);
    let key_b = ed25519_dalek::SigningKey::from_bytes(&[0xB2; 32]);
    let key_file = dir.path().join("a.key");
    std::fs::write(&key_file, hex::encode(key_a.to_bytes())).unwrap();
    let pub_a = hex::encode(key_a.verifying_key().as_bytes());
    let pub_b = hex::encode(key_b.verifying_key().as_bytes());

    let signed = dir.path().join("signed.bundle");
    let key_arg = key_file.to_str().unwrap();
    export(
        &src,
        &signed,
        &dir.path().join("export-a"),
        &["--sign-key", key_arg],
    )
    .await;
    let plain = dir.path().join("plain.bundle");
    export(&src, &plain, &dir.path().join("export-b"), &[]).await;
    let bytes = std::fs::read(&signed).unwrap();
    let key_hex = hex::encode(key_a.to_bytes());
    assert!(
        !bytes.windows(32).any(|w| w == key_a.to_bytes())
            && !String::from_utf8_lossy(&bytes).contains(&key_hex),
        "the private key is in the bundle"
    );

    let data = dir.path().join("replay-data");
    let v = verify(&[&signed], &["--trusted-key", &pub_b]).await;
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("does not match the trusted key"));
    let v = verify(&[&plain], &["--trusted-key", &pub_a]).await;
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("not signed"));

    let mut cmd = replay_cmd(&dst, &signed, &data);
    cmd.args(["--trusted-key", &pub_b]);
    let r = run(cmd).await;
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(String::from_utf8_lossy(&r.stderr).contains("does not match the trusted key"));
    assert_untouched(&dst, "wrong key").await;

    let v = verify(&[&signed], &["--trusted-key", &pub_a]).await;
    assert!(v.status.success(), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("signature:   valid"));
    let mut cmd = replay_cmd(&dst, &signed, &data);
    cmd.args(["--trusted-key", &pub_a]);
    let r = run(cmd).await;
    assert!(r.status.success(), "{}", text(&r));
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_of_a_nested_project_or_an_unknown_group_is_refused_before_anything_is_written() {
    let src = source().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.bundle");

    // A project inside a group the export is asked for would be in the bundle twice.
    let mut cmd = appliance();
    cmd.args([
        "export",
        "--group",
        "acme",
        "--project",
        "acme/backend/api",
        "--source-url",
        &src.url,
    ])
    .arg("--out")
    .arg(&out)
    .arg("--data")
    .arg(dir.path().join("data"))
    .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    let o = run(cmd).await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("'acme/backend/api' lies inside 'acme', which this export is asked for too"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());

    let mut cmd = appliance();
    cmd.args([
        "export",
        "--group",
        "no-such-group",
        "--source-url",
        &src.url,
    ])
    .arg("--out")
    .arg(&out)
    .arg("--data")
    .arg(dir.path().join("data"))
    .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token);
    let o = run(cmd).await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("'no-such-group' was not found"),
        "{}",
        text(&o)
    );

    let mut cmd = export_cmd(&src, &out, &dir.path().join("data"));
    cmd.env("APPLIANCE_SOURCE_TOKEN", "glpat-not-a-token");
    let o = run(cmd).await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the access token"),
        "{}",
        text(&o)
    );
    assert!(!out.exists(), "a refused export wrote a bundle");
    src.shutdown().await;
}

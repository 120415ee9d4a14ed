//! Checks a whole bundle once it is open (`Bundle::open` has checked its structure, order and the
//! signature against the key the manifest names): the signature against the trusted key when one is
//! given, then every member's digest, size, record count and every record, streamed (members in
//! parallel on the rayon pool, one record at a time each). Every problem is reported, not only the
//! first, each naming the member and the expected and actual values.

use super::reader::Bundle;
use super::{BLOB_REFERENCES, BLOB_RELATION, BundleError, blob_reference, sign};
use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

pub type Problem = BundleError;

/// An empty list means the bundle is complete and intact (and signed by `trusted`, when given).
pub fn verify(bundle: &Bundle, trusted: Option<&VerifyingKey>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(key) = trusted
        && let Err(e) = sign::check(&bundle.manifest_bytes, bundle.signature.as_deref(), key)
    {
        problems.push(e);
    }
    let mut members: Vec<(String, Problem)> = bundle
        .manifest
        .members
        .par_iter()
        .filter_map(|m| bundle.check_member(m).err().map(|e| (m.path.clone(), e)))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    problems.extend(members.into_iter().map(|(_, e)| e));
    if problems.is_empty() {
        problems.extend(blob_references(bundle));
    }
    problems
}

/// Every record that names a blob (an upload, an LFS object) names one the bundle holds, of the
/// size it says, under a name that cannot step out of its directory, and each once per project: a replay writes these files to disk, so a record that could not be written safely is
/// refused here, before anything is.
fn blob_references(bundle: &Bundle) -> Vec<Problem> {
    let blobs: HashMap<&str, u64> = bundle
        .manifest
        .members
        .iter()
        .filter(|m| m.relation == BLOB_RELATION)
        .map(|m| (m.sha256.as_str(), m.size))
        .collect();
    let mut problems = Vec::new();
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    for m in &bundle.manifest.members {
        if !BLOB_REFERENCES.contains(&m.relation.as_str()) {
            continue;
        }
        let mut found = Vec::new();
        let read = bundle.read_member(m, |_, _, record| {
            let why = match blob_reference(&m.relation, &record) {
                Err(why) => Some(why),
                Ok((shown, sha256, size)) => {
                    if blobs.get(sha256.as_str()) != Some(&size) {
                        Some(format!(
                            "{shown} names blob {sha256} of {size} bytes, which the bundle does not hold"
                        ))
                    } else if !seen.insert((m.entity.clone(), m.relation.clone(), shown.clone())) {
                        Some(format!("{shown} is listed twice"))
                    } else {
                        None
                    }
                }
            };
            if let Some(why) = why {
                found.push(BundleError::Corrupt {
                    member: m.path.clone(),
                    why,
                });
            }
        });
        if let Err(e) = read {
            problems.push(e);
        }
        problems.extend(found);
    }
    problems
}

//! Checks a whole bundle: the signature (against the key the manifest names, and the trusted key when
//! one is given), then every member's digest,
//! size and record count, members in parallel on the rayon pool. Every problem is reported, not only
//! the first, each naming the member and the expected and actual values.

use super::reader::Bundle;
use super::{BundleError, sign};
use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;

pub type Problem = BundleError;

/// An empty list means the bundle is complete and intact (and signed by `trusted`, when given).
pub fn verify(bundle: &Bundle, trusted: Option<&VerifyingKey>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(e) = sign::check_intact(
        &bundle.manifest_bytes,
        bundle.manifest.signed_by.as_deref(),
        bundle.signature.as_deref(),
    ) {
        problems.push(e);
    } else if let Some(key) = trusted
        && let Err(e) = sign::check(&bundle.manifest_bytes, bundle.signature.as_deref(), key)
    {
        problems.push(e);
    }
    let mut members: Vec<(String, Problem)> = bundle
        .manifest
        .members
        .par_iter()
        .filter_map(|m| bundle.member_ndjson(m).err().map(|e| (m.path.clone(), e)))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    problems.extend(members.into_iter().map(|(_, e)| e));
    problems
}

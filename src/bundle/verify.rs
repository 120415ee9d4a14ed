//! Checks a whole bundle once it is open (`Bundle::open` has checked its structure, order and the
//! signature against the key the manifest names): the signature against the trusted key when one is
//! given, then every member's digest, size, record count and every record, streamed (members in
//! parallel on the rayon pool, one record at a time each). Every problem is reported, not only the
//! first, each naming the member and the expected and actual values.

use super::reader::Bundle;
use super::{BundleError, sign};
use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;

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
    problems
}

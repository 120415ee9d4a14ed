//! The record reader `verify` and replay share: the first byte picks a relation, the rest is one
//! NDJSON line for `parse_record`; the same bytes are also read as a stored member (zstd, line cap,
//! counts, record checks) by `read_records`. Neither may panic or allocate without bound.
#![no_main]

use appliance::bundle::ManifestMember;
use appliance::bundle::records::{parse_record, read_records};
use appliance::relations::schema::RECORDS;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((first, line)) = data.split_first() else {
        return;
    };
    let relation = RECORDS[*first as usize % RECORDS.len()].0;
    let _ = parse_record(relation, line);
    let member = ManifestMember {
        path: format!("groups/acme/{relation}/000000.ndjson.zst"),
        entity: "acme".into(),
        relation: relation.into(),
        batch: 0,
        records: u64::from(*first),
        size: (line.len() as u64) << (first % 12),
        compressed_size: line.len() as u64,
        sha256: hex::encode(Sha256::digest(line)),
    };
    let _ = read_records(line, &member, |_, _, _| {});
});

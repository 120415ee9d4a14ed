//! The one reader of a member's records, shared by `verify` and replay so they cannot disagree. It
//! streams: the stored bytes are hashed as they are read, decompressed through zstd into a line reader
//! that holds one record at a time (never more than `MAX_RECORD_BYTES`), and counted against the
//! manifest's `size` and `records` the moment they pass. Memory is bounded by one record whatever a
//! bundle declares. Each line is parsed and checked against its relation's fields
//! (`crate::relations::schema`) by `parse_record`.

use super::BundleError;
use super::manifest::ManifestMember;
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};

/// The longest record (one NDJSON line, without its newline): GitLab's cap on an NDJSON row, 50 MiB.
pub const MAX_RECORD_BYTES: usize = 50 << 20;
/// The largest zstd window a member may ask for (16 MiB): the writer's level 9 uses at most 4 MiB, and
/// a hostile frame must not make a reader reserve the 128 MiB zstd would otherwise allow.
pub const MAX_WINDOW_LOG: u32 = 24;

/// The most JSON values (objects, arrays, strings, numbers, ...) one record may hold, a non-empty
/// object counting as `OBJECT_WEIGHT` values (a parsed object takes some 600 bytes, another value 32):
/// this bounds a parsed record to about 64 MiB besides its strings even when its 50 MiB are a hostile
/// `[0,0,0,...]` or `[{"a":0},...]`. A real record (an epic with ten thousand notes) holds fewer.
pub const MAX_RECORD_VALUES: u64 = 2 << 20;
/// What a non-empty object counts for in `MAX_RECORD_VALUES`.
pub const OBJECT_WEIGHT: u64 = 20;

/// Parses one NDJSON line (without its newline) as a record of `relation` and checks the fields its
/// relation needs. The error says what is wrong, in a few words.
pub fn parse_record(relation: &str, line: &[u8]) -> Result<Value, String> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "it is {} bytes long, more than the {} MiB a record may have",
            line.len(),
            MAX_RECORD_BYTES >> 20
        ));
    }
    // Counted before anything is built, so a record cannot make the parser allocate without bound.
    let mut values = 0;
    let counted = serde::de::DeserializeSeed::deserialize(
        Count(&mut values),
        &mut serde_json::Deserializer::from_slice(line),
    );
    if values > MAX_RECORD_VALUES {
        return Err(format!(
            "it holds more than {MAX_RECORD_VALUES} JSON values, more than a record may have"
        ));
    }
    counted.map_err(|e| format!("it is not valid JSON ({e})"))?;
    let value: Value =
        serde_json::from_slice(line).map_err(|e| format!("it is not valid JSON ({e})"))?;
    crate::relations::schema::check(relation, &value)?;
    Ok(value)
}

/// Counts the JSON values of a document without keeping any, stopping past `MAX_RECORD_VALUES`.
struct Count<'a>(&'a mut u64);

impl Count<'_> {
    fn one<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.add(1)
    }
    fn add<E: serde::de::Error>(&mut self, n: u64) -> Result<(), E> {
        *self.0 += n;
        if *self.0 > MAX_RECORD_VALUES {
            // Enough is known: the caller reports the count.
            return Err(E::custom("too many values"));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(mut self, _: bool) -> Result<(), E> {
        self.one()
    }
    fn visit_i64<E: serde::de::Error>(mut self, _: i64) -> Result<(), E> {
        self.one()
    }
    fn visit_u64<E: serde::de::Error>(mut self, _: u64) -> Result<(), E> {
        self.one()
    }
    fn visit_f64<E: serde::de::Error>(mut self, _: f64) -> Result<(), E> {
        self.one()
    }
    fn visit_str<E: serde::de::Error>(mut self, _: &str) -> Result<(), E> {
        self.one()
    }
    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        self.one()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.one()?;
        while seq.next_element_seed(Count(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.one()?;
        let mut first = true;
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            if first {
                self.add(OBJECT_WEIGHT - 1)?;
                first = false;
            }
            map.next_value_seed(Count(&mut *self.0))?;
        }
        Ok(())
    }
}

/// Streams the records of member `m` from its stored (compressed) bytes `stored`, exactly
/// `m.compressed_size` of them, calling `each(index, line length, record)` in order. Checks, while
/// streaming: the decompressed bytes never pass `m.size`, no line passes `MAX_RECORD_BYTES`, no more
/// records than `m.records`, every record parses and has its relation's fields; at the end: the sha256 of
/// the stored bytes, the exact size, the record count and the final newline. When the digest differs it
/// is the error reported (the other findings follow from the damage).
pub fn read_records(
    stored: impl Read,
    m: &ManifestMember,
    mut each: impl FnMut(u64, usize, Value),
) -> Result<(), BundleError> {
    let mut hashing = crate::digest::Hashing::new(stored.take(m.compressed_size));
    let content = stream(&mut hashing, m, &mut each);
    // Whatever the content said, every stored byte is hashed, so damage is named by its digest.
    let drained = io::copy(&mut hashing, &mut io::sink());
    let (_, actual) = hashing.finish();
    if actual != m.sha256 {
        return Err(BundleError::DigestMismatch {
            member: m.path.clone(),
            expected: m.sha256.clone(),
            actual,
        });
    }
    drained.map_err(|e| corrupt(m, format!("cannot read it: {e}")))?;
    content
}

fn corrupt(m: &ManifestMember, why: String) -> BundleError {
    BundleError::Corrupt {
        member: m.path.clone(),
        why,
    }
}

fn stream(
    stored: &mut impl Read,
    m: &ManifestMember,
    each: &mut impl FnMut(u64, usize, Value),
) -> Result<(), BundleError> {
    let zstd_error = |e: io::Error| corrupt(m, format!("zstd: {e}"));
    let mut decoder = zstd::stream::read::Decoder::new(stored).map_err(zstd_error)?;
    decoder.window_log_max(MAX_WINDOW_LOG).map_err(zstd_error)?;
    // One byte past the declared size is enough to know it was passed: decompression stops there.
    let mut text = BufReader::with_capacity(64 << 10, decoder.take(m.size.saturating_add(1)));
    let mut line = Vec::new();
    let (mut total, mut records) = (0u64, 0u64);
    loop {
        line.clear();
        let complete = read_line(&mut text, &mut line, MAX_RECORD_BYTES + 1).map_err(zstd_error)?;
        total += line.len() as u64;
        if total > m.size {
            return Err(BundleError::Oversized {
                member: m.path.clone(),
                declared: m.size,
            });
        }
        if line.is_empty() {
            break;
        }
        if !complete && line.len() > MAX_RECORD_BYTES {
            return Err(corrupt(
                m,
                format!(
                    "record {} is longer than {} MiB, the most a record may have",
                    records + 1,
                    MAX_RECORD_BYTES >> 20
                ),
            ));
        }
        if !complete {
            return Err(corrupt(
                m,
                "its last line does not end with a newline: the member was cut or altered".into(),
            ));
        }
        records += 1;
        if records > m.records {
            return Err(corrupt(
                m,
                format!(
                    "it holds more than the {} records the manifest says",
                    m.records
                ),
            ));
        }
        let body = &line[..line.len() - 1];
        let record = parse_record(&m.relation, body)
            .map_err(|why| corrupt(m, format!("record {records}: {why}")))?;
        each(records - 1, body.len(), record);
    }
    if total < m.size {
        return Err(corrupt(
            m,
            format!(
                "it decompresses to {total} bytes, the manifest says {}",
                m.size
            ),
        ));
    }
    if records != m.records {
        return Err(corrupt(
            m,
            format!(
                "it holds {records} records, the manifest says {}",
                m.records
            ),
        ));
    }
    Ok(())
}

/// Appends one line (with its `\n`) to `out`, never more than `cap` bytes in all; true when the line
/// ended with `\n`, false at the end of the stream or at the cap.
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>, cap: usize) -> io::Result<bool> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let room = cap - out.len();
        if let Some(i) = buf.iter().position(|b| *b == b'\n')
            && i < room
        {
            out.extend_from_slice(&buf[..=i]);
            r.consume(i + 1);
            return Ok(true);
        }
        let n = buf.len().min(room);
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
        if out.len() >= cap {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn member(ndjson: &[u8], compressed: &[u8], records: u64) -> ManifestMember {
        ManifestMember {
            path: "groups/acme/labels/000000.ndjson.zst".into(),
            entity: "acme".into(),
            relation: "labels".into(),
            batch: 0,
            records,
            size: ndjson.len() as u64,
            compressed_size: compressed.len() as u64,
            sha256: hex::encode(Sha256::digest(compressed)),
        }
    }

    fn read(m: &ManifestMember, compressed: &[u8]) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        read_records(compressed, m, |_, _, r| out.push(r))
            .map(|()| out)
            .map_err(|e| e.to_string())
    }

    const LABEL: &[u8] = b"{\"title\":\"bug\",\"color\":\"#fff\"}\n";

    #[test]
    fn decompression_stops_at_the_declared_size() {
        let big = vec![b'x'; 1 << 20];
        let compressed = zstd::encode_all(big.as_slice(), 3).unwrap();
        let mut m = member(&big, &compressed, 0);
        m.size = 1000;
        let err = read(&m, &compressed).unwrap_err();
        assert!(
            err.contains("decompresses past its declared size of 1000"),
            "{err}"
        );
    }

    #[test]
    fn a_record_over_the_row_cap_is_refused_without_reading_the_rest() {
        // 60 MiB of one line, declared honestly: refused at the cap.
        let line = vec![b' '; 60 << 20];
        let compressed = zstd::encode_all(line.as_slice(), 1).unwrap();
        let m = member(&line, &compressed, 1);
        let err = read(&m, &compressed).unwrap_err();
        assert!(err.contains("record 1 is longer than 50 MiB"), "{err}");
    }

    #[test]
    fn a_record_of_too_many_values_is_refused_before_it_is_built() {
        let mut line = b"{\"title\":\"a\",\"color\":\"#fff\",\"x\":[".to_vec();
        line.extend("0,".repeat(MAX_RECORD_VALUES as usize).as_bytes());
        line.extend(b"0]}");
        let err = parse_record("labels", &line).unwrap_err();
        assert!(err.contains("more than 2097152 JSON values"), "{err}");
        // Objects weigh more: 110,000 small objects are over the bound.
        let mut line = b"{\"title\":\"a\",\"color\":\"#fff\",\"x\":[".to_vec();
        line.extend("{\"a\":0},".repeat(110_000).as_bytes());
        line.extend(b"{}]}");
        let err = parse_record("labels", &line).unwrap_err();
        assert!(err.contains("more than 2097152 JSON values"), "{err}");
        let mut line = b"{\"title\":\"a\",\"color\":\"#fff\",\"x\":[".to_vec();
        line.extend("0,".repeat(1000).as_bytes());
        line.extend(b"0]}");
        assert!(parse_record("labels", &line).is_ok());
    }

    #[test]
    fn the_last_record_must_end_with_a_newline() {
        let mut ndjson = LABEL.repeat(4);
        ndjson.pop();
        let compressed = zstd::encode_all(ndjson.as_slice(), 3).unwrap();
        let err = read(&member(&ndjson, &compressed, 4), &compressed).unwrap_err();
        assert!(err.contains("does not end with a newline"), "{err}");
    }

    #[test]
    fn records_are_parsed_and_checked() {
        let ndjson = LABEL.repeat(2);
        let compressed = zstd::encode_all(ndjson.as_slice(), 3).unwrap();
        assert_eq!(
            read(&member(&ndjson, &compressed, 2), &compressed)
                .unwrap()
                .len(),
            2
        );
        for (bad, why) in [
            (&b"{not json\n"[..], "record 1: it is not valid JSON"),
            (
                b"[\"bug\"]\n",
                "record 1: a record of `labels` must be a JSON object",
            ),
            (b"{\"title\":\"bug\"}\n", "must have `color`"),
        ] {
            let compressed = zstd::encode_all(bad, 3).unwrap();
            let err = read(&member(bad, &compressed, 1), &compressed).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_damaged_member_is_named_by_its_digest() {
        let ndjson = LABEL.repeat(2);
        let mut compressed = zstd::encode_all(ndjson.as_slice(), 3).unwrap();
        let m = member(&ndjson, &compressed, 2);
        let at = compressed.len() / 2;
        compressed[at] ^= 0x10;
        let err = read(&m, &compressed).unwrap_err();
        assert!(err.contains("expected sha256"), "{err}");
    }
}

//! Opens a bundle: walks the tar headers once (seeking over contents), refuses anything the writer
//! would never produce (links, devices, directories, extension headers other than GNU long names,
//! unsafe or duplicate names, data after the end), checks that the members are exactly the ones the
//! manifest lists, and keeps an index from member path to offset so batches are read one at a time.

use super::manifest::{Manifest, ManifestMember};
use super::volumes::VolumeSet;
use super::{
    BundleError, MANIFEST, MANIFEST_DIGEST, MAX_MANIFEST_BYTES, SIGNATURE, check_member_name, sign,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

const BLOCK: u64 = 512;

/// Where a member's bytes are in the tar stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Where the member's first header starts (its GNU long-name header, when it has one).
    pub header: u64,
    pub offset: u64,
    pub size: u64,
}

pub struct Bundle {
    pub volumes: Arc<VolumeSet>,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    /// sha256 of manifest.json, lowercase hex.
    pub root_digest: String,
    pub signature: Option<Vec<u8>>,
    /// Every member in the tar, by path, in tar order.
    pub index: Vec<(String, Location)>,
    by_path: HashMap<String, Location>,
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

impl Bundle {
    /// Reads the structure and the manifest; member contents are checked by `verify`.
    pub fn open(paths: &[PathBuf]) -> Result<Bundle, BundleError> {
        let volumes = VolumeSet::discover(paths)?;
        let name = volumes.name();
        let index = walk(&volumes)?;
        let by_path: HashMap<String, Location> = index.iter().cloned().collect();

        let first = index.first().map(|(p, _)| p.as_str());
        if first != Some(MANIFEST) {
            return Err(BundleError::NotABundle(format!(
                "{} does not start with {MANIFEST} (found {})",
                name.display(),
                first.unwrap_or("no member at all")
            )));
        }
        let loc = by_path[MANIFEST];
        if loc.size > MAX_MANIFEST_BYTES {
            return Err(BundleError::NotABundle(format!(
                "{MANIFEST} is {} bytes, larger than any manifest this appliance writes",
                loc.size
            )));
        }
        let manifest_bytes = read_padded(&volumes, MANIFEST, loc)?;
        let root_digest = hex::encode(Sha256::digest(&manifest_bytes));
        // The digest first, so a damaged manifest is named as such rather than by a parse error.
        if let Some(digest_loc) = by_path.get(MANIFEST_DIGEST).copied() {
            if digest_loc.size > 4096 {
                return Err(BundleError::ManifestMismatch(format!(
                    "{MANIFEST_DIGEST} is {} bytes long",
                    digest_loc.size
                )));
            }
            let recorded = read_padded(&volumes, MANIFEST_DIGEST, digest_loc)?;
            if recorded != digest_line(&root_digest).as_bytes() {
                let recorded = String::from_utf8_lossy(&recorded);
                return Err(BundleError::DigestMismatch {
                    member: MANIFEST.into(),
                    expected: recorded.trim().to_string(),
                    actual: root_digest,
                });
            }
        }
        // A manifest of a newer format says so (its version) before anything else is asked of it.
        let manifest = Manifest::parse(&manifest_bytes)?;
        if !by_path.contains_key(MANIFEST_DIGEST) {
            return Err(BundleError::ManifestMismatch(format!(
                "{MANIFEST_DIGEST} is missing"
            )));
        }
        let signature = match by_path.get(SIGNATURE) {
            Some(l) if l.size == 64 => Some(read_padded(&volumes, SIGNATURE, *l)?),
            Some(l) => {
                return Err(BundleError::Signature(format!(
                    "{SIGNATURE} is {} bytes; an ed25519 signature is 64",
                    l.size
                )));
            }
            None => None,
        };

        // The members are exactly the manifest's, in its order, with the declared sizes.
        let listed: Vec<&str> = index
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| ![MANIFEST, MANIFEST_DIGEST, SIGNATURE].contains(p))
            .collect();
        let declared: HashSet<&str> = manifest.members.iter().map(|m| m.path.as_str()).collect();
        for p in &listed {
            if !declared.contains(p) {
                return Err(BundleError::ManifestMismatch(format!(
                    "member `{p}` is in the bundle but not in the manifest"
                )));
            }
        }
        for m in &manifest.members {
            match by_path.get(&m.path) {
                None => {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` is in the manifest but not in the bundle",
                        m.path
                    )));
                }
                Some(l) if l.size != m.compressed_size => {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` is {} bytes, the manifest says {}",
                        m.path, l.size, m.compressed_size
                    )));
                }
                Some(_) => {}
            }
        }
        // The format's order is part of what is pinned: the three manifest files first, then the
        // members in the manifest's order (sorted by path), so no two orders verify alike.
        let canonical = [MANIFEST, MANIFEST_DIGEST]
            .into_iter()
            .chain(signature.is_some().then_some(SIGNATURE))
            .chain(manifest.members.iter().map(|m| m.path.as_str()));
        for (at, ((found, _), expected)) in index.iter().zip(canonical).enumerate() {
            if found != expected {
                return Err(BundleError::ManifestMismatch(format!(
                    "member `{found}` is out of place: entry {} of the bundle must be `{expected}` (the format's order is {MANIFEST}, {MANIFEST_DIGEST}, {SIGNATURE} when signed, then the members sorted by path)",
                    at + 1
                )));
            }
        }
        sign::check_intact(
            &manifest_bytes,
            manifest.signed_by.as_deref(),
            signature.as_deref(),
        )?;
        // Every header must be exactly the one the writer makes for that member, so no byte of the
        // bundle escapes the check (a header's own checksum misses some changes).
        for (path, loc) in &index {
            let expected = canonical_header(path, loc.size, manifest.source_state_epoch)?;
            let actual = volumes.read_at(loc.header, loc.offset - loc.header)?;
            if actual != expected {
                return Err(BundleError::DamagedHeader {
                    offset: loc.header,
                    after: path.clone(),
                    why: "it is not the header this format prescribes for that member".into(),
                });
            }
        }
        Ok(Bundle {
            volumes,
            manifest,
            manifest_bytes,
            root_digest,
            signature,
            index,
            by_path,
        })
    }

    pub fn location(&self, path: &str) -> Option<Location> {
        self.by_path.get(path).copied()
    }

    /// Streams the records of member `m` to `each(index, line length, record)`, checking every byte
    /// of it against the manifest (digest, sizes, record count, each record's fields; see
    /// `records::read_records`) and its tar padding, in memory bounded by one record.
    pub fn read_member(
        &self,
        m: &ManifestMember,
        each: impl FnMut(u64, usize, Value),
    ) -> Result<(), BundleError> {
        if super::is_file_relation(&m.relation) {
            return Err(BundleError::Corrupt {
                member: m.path.clone(),
                why: "it is a file, not records".into(),
            });
        }
        let loc = self
            .location(&m.path)
            .ok_or_else(|| BundleError::ManifestMismatch(format!("`{}` is missing", m.path)))?;
        let mut stored = self.volumes.reader();
        stored
            .seek(SeekFrom::Start(loc.offset))
            .map_err(BundleError::read(self.volumes.name()))?;
        super::records::read_records(stored, m, each)?;
        self.check_padding(m, loc)
    }

    /// The tar padding after member `m` must be zeros.
    fn check_padding(&self, m: &ManifestMember, loc: Location) -> Result<(), BundleError> {
        let padding = self
            .volumes
            .read_at(loc.offset + loc.size, padded(loc.size) - loc.size)?;
        if padding.iter().any(|b| *b != 0) {
            return Err(BundleError::Corrupt {
                member: m.path.clone(),
                why: "the padding after it is not zeros".into(),
            });
        }
        Ok(())
    }

    /// Checks every byte of member `m`, records or file, against the manifest.
    pub fn check_member(&self, m: &ManifestMember) -> Result<(), BundleError> {
        if super::is_file_relation(&m.relation) {
            self.copy_file(m, &mut std::io::sink())
        } else {
            self.read_member(m, |_, _, _| {})
        }
    }

    /// Streams the bytes of file member `m` (a repository) into `out`, checking its size, its sha256
    /// and the tar padding after it; what was written is worthless when this fails.
    pub fn copy_file(
        &self,
        m: &ManifestMember,
        out: &mut impl std::io::Write,
    ) -> Result<(), BundleError> {
        let loc = self
            .location(&m.path)
            .ok_or_else(|| BundleError::ManifestMismatch(format!("`{}` is missing", m.path)))?;
        let mut stored = self.volumes.reader();
        stored
            .seek(SeekFrom::Start(loc.offset))
            .map_err(BundleError::read(self.volumes.name()))?;
        let mut stored = crate::digest::Hashing::new(stored.take(m.compressed_size));
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = stored
                .read(&mut buf)
                .map_err(BundleError::read(self.volumes.name()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|e| BundleError::Write {
                path: PathBuf::from(&m.path),
                source: e,
            })?;
        }
        let (copied, actual) = stored.finish();
        if actual != m.sha256 || copied != m.compressed_size {
            return Err(BundleError::DigestMismatch {
                member: m.path.clone(),
                expected: m.sha256.clone(),
                actual,
            });
        }
        self.check_padding(m, loc)
    }

    /// Every record of one batch.
    pub fn records(&self, m: &ManifestMember) -> Result<Vec<Value>, BundleError> {
        let mut out = Vec::new();
        self.read_member(m, |_, _, r| out.push(r))?;
        Ok(out)
    }

    /// The records of one batch from record `from` on, up to about `budget` bytes of NDJSON (at least
    /// one record), and the index of the next record when some are left. The whole member is still
    /// read and checked, so a member that changed since it was verified yields nothing.
    pub fn records_from(
        &self,
        m: &ManifestMember,
        from: u64,
        budget: usize,
    ) -> Result<(Vec<Value>, Option<u64>), BundleError> {
        let (mut out, mut bytes, mut next) = (Vec::new(), 0usize, None);
        self.read_member(m, |i, len, r| {
            if i < from || next.is_some() {
                return;
            }
            if !out.is_empty() && bytes + len > budget {
                next = Some(i);
                return;
            }
            bytes += len;
            out.push(r);
        })?;
        Ok((out, next))
    }
}

/// A member's bytes; the tar padding after them must be zeros.
fn read_padded(
    volumes: &Arc<VolumeSet>,
    path: &str,
    loc: Location,
) -> Result<Vec<u8>, BundleError> {
    let mut data = volumes.read_at(loc.offset, padded(loc.size))?;
    if data[loc.size as usize..].iter().any(|b| *b != 0) {
        return Err(BundleError::Corrupt {
            member: path.to_string(),
            why: "the padding after it is not zeros".into(),
        });
    }
    data.truncate(loc.size as usize);
    Ok(data)
}

/// The content of `manifest.sha256`.
pub fn digest_line(root_digest: &str) -> String {
    format!("{root_digest}  {MANIFEST}\n")
}

/// The header bytes (with a GNU long-name header before them when the name needs one) the writer puts
/// before a member.
pub fn canonical_header(path: &str, size: u64, mtime: i64) -> Result<Vec<u8>, BundleError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = header_for(size, mtime);
    builder
        .append_data(&mut h, path, std::io::empty())
        .map_err(|e| BundleError::UnsafeMember {
            path: path.to_string(),
            why: e.to_string(),
        })?;
    // Not `into_inner`: that would append the end-of-archive blocks.
    Ok(builder.get_ref().clone())
}

/// A deterministic ustar header: mode 0644, uid/gid 0, no user names, mtime = the source state time.
pub fn header_for(size: u64, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Reads every header of the tar stream, seeking over contents.
fn walk(volumes: &Arc<VolumeSet>) -> Result<Vec<(String, Location)>, BundleError> {
    let name = volumes.name();
    let broken = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            BundleError::Truncated {
                expected: volumes.len() + 1,
                actual: volumes.len(),
            }
        } else {
            BundleError::NotABundle(format!("{}: {e}", name.display()))
        }
    };
    let mut archive = tar::Archive::new(volumes.reader());
    let entries = archive.entries_with_seek().map_err(broken)?;
    let mut entries = entries.raw(true);
    let mut index = Vec::new();
    let mut seen = HashSet::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_name_at: Option<u64> = None;
    let mut end = 0u64;
    let mut previous = String::from("none");
    for entry in &mut entries {
        let mut entry = entry.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => broken(e),
            // A header cut short by the end of the file is a truncation, not damage.
            _ if end + BLOCK > volumes.len() => BundleError::Truncated {
                expected: end + 3 * BLOCK,
                actual: volumes.len(),
            },
            _ => BundleError::DamagedHeader {
                offset: end,
                after: previous.clone(),
                why: e.to_string(),
            },
        })?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        end = entry.raw_file_position() + padded(size);
        if end > volumes.len() {
            return Err(BundleError::Truncated {
                expected: end + 2 * BLOCK,
                actual: volumes.len(),
            });
        }
        if kind.is_gnu_longname() {
            if long_name.is_some() || size > 4096 {
                return Err(BundleError::NotABundle(
                    "a GNU long name header is malformed".into(),
                ));
            }
            let mut buf = Vec::new();
            (&mut entry)
                .take(size)
                .read_to_end(&mut buf)
                .map_err(broken)?;
            while buf.last() == Some(&0) {
                buf.pop();
            }
            long_name = Some(buf);
            long_name_at = Some(entry.raw_header_position());
            continue;
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let path = String::from_utf8(raw).map_err(|_| BundleError::UnsafeMember {
            path: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            why: "the name is not UTF-8".into(),
        })?;
        let why = match kind {
            tar::EntryType::Regular => None,
            tar::EntryType::Link | tar::EntryType::Symlink => Some("a link"),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                Some("a device or fifo")
            }
            tar::EntryType::Directory => Some("a directory"),
            _ => Some("an entry type bundles never use"),
        };
        if let Some(why) = why {
            return Err(BundleError::UnsafeMember {
                path,
                why: why.into(),
            });
        }
        check_member_name(&path)?;
        if !seen.insert(path.clone()) {
            return Err(BundleError::DuplicateMember(path));
        }
        previous = path.clone();
        index.push((
            path,
            Location {
                header: long_name_at.take().unwrap_or(entry.raw_header_position()),
                offset: entry.raw_file_position(),
                size,
            },
        ));
    }
    if long_name.is_some() {
        return Err(BundleError::Truncated {
            expected: end + 3 * BLOCK,
            actual: volumes.len(),
        });
    }
    // The writer ends the stream with exactly two zero blocks.
    let expected = end + 2 * BLOCK;
    let actual = volumes.len();
    if actual < expected {
        return Err(BundleError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(BundleError::TrailingData {
            extra: actual - expected,
        });
    }
    let tail = volumes.read_at(end, 2 * BLOCK)?;
    if tail.iter().any(|b| *b != 0) {
        return Err(BundleError::NotABundle(
            "the end-of-archive blocks are not zeros".into(),
        ));
    }
    Ok(index)
}

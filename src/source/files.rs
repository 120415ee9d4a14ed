//! A project's files as a live source exports them: GitLab's relation export gives a project's
//! uploads as one `uploads.tar.gz` of `<secret>/<filename>` entries. It is streamed to disk whole,
//! then unpacked entry by entry into `<dir>/uploads/<secret>/<filename>`, each hashed as it is
//! written, so no file is ever held in memory. Names are checked before anything is written: an
//! entry that could step out of its directory, or that is not a regular file, is refused.

use super::{ProjectUpload, check_upload_names};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// Copies `from` into a new file at `to` (its directory created), hashing the bytes as they pass:
/// (size, sha256 in lowercase hex).
pub fn copy_hashed(mut from: impl Read, to: &Path) -> std::io::Result<(u64, String)> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(to)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Unpacks an exported `uploads.tar.gz` into `<dir>/uploads/<secret>/<filename>`. The project's
/// avatar (`avatar/<filename>`) is not an upload and is left out; a directory entry is skipped.
/// Blocking I/O.
pub fn unpack_uploads(tar_gz: &Path, dir: &Path) -> Result<Vec<ProjectUpload>, String> {
    let file = std::fs::File::open(tar_gz)
        .map_err(|e| format!("cannot read {}: {e}", tar_gz.display()))?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let bad = |e: std::io::Error| format!("the exported uploads are not a gzipped tar: {e}");
    let mut out: Vec<ProjectUpload> = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw.trim_start_matches("./");
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let parts: Vec<&str> = name.split('/').collect();
        if parts.first() == Some(&"avatar") {
            continue;
        }
        let [secret, filename] = parts.as_slice() else {
            return Err(format!(
                "the exported uploads hold `{}`, which is not `<secret>/<filename>`",
                raw.escape_debug()
            ));
        };
        check_upload_names(secret, filename)
            .map_err(|e| format!("the exported uploads hold `{}`: {e}", raw.escape_debug()))?;
        if !kind.is_file() {
            return Err(format!(
                "the exported uploads hold `{}`, which is not a regular file",
                raw.escape_debug()
            ));
        }
        if out
            .iter()
            .any(|u| u.secret == *secret && u.filename == *filename)
        {
            return Err(format!(
                "the exported uploads hold `{}` twice",
                raw.escape_debug()
            ));
        }
        let path = dir.join("uploads").join(secret).join(filename);
        let (size, sha256) = copy_hashed(entry, &path)
            .map_err(|e| format!("cannot unpack upload `{}`: {e}", raw.escape_debug()))?;
        out.push(ProjectUpload {
            secret: (*secret).to_string(),
            filename: (*filename).to_string(),
            path,
            size,
            sha256,
        });
    }
    out.sort_by(|a, b| (&a.secret, &a.filename).cmp(&(&b.secret, &b.filename)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Raw names, so hostile ones can be written.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn unpack(bytes: &[u8]) -> (tempfile::TempDir, Result<Vec<ProjectUpload>, String>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("uploads.tar.gz");
        std::fs::write(&file, bytes).unwrap();
        let out = unpack_uploads(&file, &dir.path().join("out"));
        (dir, out)
    }

    #[test]
    fn uploads_unpack_by_secret_with_their_digests() {
        let regular = tar::EntryType::Regular;
        let (dir, out) = unpack(&tar_gz(&[
            (
                "./0123456789abcdef0123456789abcdef/a b.png",
                regular,
                b"png",
            ),
            ("avatar/logo.png", regular, b"logo"),
            ("fedcba9876543210fedcba9876543210/ü.txt", regular, b""),
        ]));
        let out = out.unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].filename, "a b.png");
        assert_eq!(out[0].size, 3);
        assert_eq!(out[0].sha256, hex::encode(Sha256::digest(b"png")));
        assert_eq!(std::fs::read(&out[0].path).unwrap(), b"png");
        assert!(
            out[0].path.starts_with(
                dir.path()
                    .join("out/uploads/0123456789abcdef0123456789abcdef")
            )
        );
        assert_eq!(out[1].size, 0);
    }

    #[test]
    fn hostile_entries_are_refused_before_they_are_written() {
        let regular = tar::EntryType::Regular;
        for (name, kind, why) in [
            ("abc/../../etc/x", regular, "not `<secret>/<filename>`"),
            ("abc/..", regular, "not a safe file name"),
            ("a.b/x", regular, "not an upload secret"),
            ("abc/link", tar::EntryType::Symlink, "not a regular file"),
            ("x", regular, "not `<secret>/<filename>`"),
        ] {
            let (dir, out) = unpack(&tar_gz(&[(name, kind, b"x")]));
            let err = out.unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
            assert!(!dir.path().join("out").exists(), "{name}: nothing written");
        }
        let (_, out) = unpack(&tar_gz(&[
            ("abc/x", regular, b"1"),
            ("abc/x", regular, b"2"),
        ]));
        assert!(out.unwrap_err().contains("twice"));
        let (_, out) = unpack(b"not gzip");
        assert!(out.unwrap_err().contains("not a gzipped tar"));
    }
}

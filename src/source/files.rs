//! A project's files: what an upload is and how its names are checked, and how a live source exports
//! them: GitLab's relation export gives a project's uploads as a tar of `<secret>/<filename>` entries
//! per batch (one `uploads.tar.gz` when exported whole). Each is streamed to disk whole,
//! then unpacked entry by entry into `<dir>/uploads/<secret>/<filename>`, each hashed as it is
//! written, so no file is ever held in memory. Names are checked before anything is written: an
//! entry that could step out of its directory, or that is not a regular file, is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A file a project's markdown links to as `/uploads/<secret>/<filename>`, staged on disk. GitLab's
/// import restores it from `uploads/<secret>/<filename>` of the archive under the same secret, so
/// the links keep working; a bundle carries it as a blob (its bytes, by sha256) and a record of
/// relation `uploads` naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectUpload {
    pub secret: String,
    pub filename: String,
    /// Where its bytes are on disk.
    pub path: PathBuf,
    pub size: u64,
    /// sha256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl ProjectUpload {
    /// Its entry in GitLab's export archive.
    pub fn archive_name(&self) -> String {
        format!("uploads/{}/{}", self.secret, self.filename)
    }

    /// Its record in a bundle (relation `uploads`): where it is linked, and which blob holds it.
    pub fn record(&self) -> serde_json::Value {
        serde_json::json!({
            "secret": self.secret,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
        })
    }

    /// A record of relation `uploads` read back: (secret, filename, size, sha256), each checked
    /// ([`check_upload_names`], a sha256 of 64 lowercase hex digits).
    pub fn from_record(
        record: &serde_json::Value,
    ) -> Result<(String, String, u64, String), String> {
        let text = |key: &str| {
            record
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("an upload record has no `{key}`"))
        };
        let (secret, filename, sha256) = (text("secret")?, text("filename")?, text("sha256")?);
        let size = record
            .get("size")
            .and_then(serde_json::Value::as_u64)
            .ok_or("an upload record has no `size`")?;
        check_upload_names(&secret, &filename)?;
        if !crate::bundle::is_sha256(&sha256) {
            return Err(format!(
                "upload `{}` names `{}` as its sha256, which is not 64 lowercase hex digits",
                filename.escape_debug(),
                sha256.escape_debug()
            ));
        }
        Ok((secret, filename, size, sha256))
    }
}

/// The repository of one of a project's snippets, as a `git bundle` on disk. GitLab's import finds
/// it in the archive as `snippets/<hexdigest>.bundle`, the hexdigest naming the snippet by its
/// title, description and dates ([`snippet_hexdigest`]); a bundle carries the file as a blob and a
/// record of relation `snippet_repositories` naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetRepository {
    pub hexdigest: String,
    pub path: PathBuf,
    pub size: u64,
    /// sha256 of the bundle file, lowercase hex.
    pub sha256: String,
}

impl SnippetRepository {
    /// Its entry in GitLab's export archive.
    pub fn archive_name(&self) -> String {
        format!("snippets/{}.bundle", self.hexdigest)
    }

    /// Its record in a bundle (relation `snippet_repositories`).
    pub fn record(&self) -> serde_json::Value {
        serde_json::json!({"hexdigest": self.hexdigest, "size": self.size, "sha256": self.sha256})
    }

    /// A record of relation `snippet_repositories` read back: (hexdigest, size, sha256), each
    /// checked (64 lowercase hex digits).
    pub fn from_record(record: &serde_json::Value) -> Result<(String, u64, String), String> {
        let hex = |key: &str| {
            let v = record
                .get(key)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("a snippet repository record has no `{key}`"))?;
            if !crate::bundle::is_sha256(v) {
                return Err(format!(
                    "a snippet repository record names `{}` as its {key}, which is not 64 \
                     lowercase hex digits",
                    v.escape_debug()
                ));
            }
            Ok(v.to_string())
        };
        let size = record
            .get("size")
            .and_then(serde_json::Value::as_u64)
            .ok_or("a snippet repository record has no `size`")?;
        Ok((hex("hexdigest")?, size, hex("sha256")?))
    }
}

/// How GitLab names a snippet's repository in an export archive (`Snippet#hexdigest`): the sha256,
/// in lowercase hex, of its title, description and creation and update times written as Ruby writes
/// a UTC time (`2021-06-18 09:47:37 UTC`), one after the other. The importer computes it again from
/// the snippet it restored, with the same values, to find the bundle. None for a record without a
/// title or with a date that is not RFC 3339.
pub fn snippet_hexdigest(record: &serde_json::Value) -> Option<String> {
    use sha2::{Digest, Sha256};
    let ruby_time = |key: &str| -> Option<String> {
        let raw = record.get(key)?.as_str()?;
        let t = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .ok()?
            .to_offset(time::UtcOffset::UTC);
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        t.format(&format).ok()
    };
    let title = record.get("title")?.as_str()?;
    let description = record
        .get("description")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let text = format!(
        "{title}{description}{}{}",
        ruby_time("created_at")?,
        ruby_time("updated_at")?
    );
    Some(hex::encode(Sha256::digest(text.as_bytes())))
}

/// Runs blocking file work (unpacking, staging) off the async workers; what fails, or panics, is a
/// decode error of `url` (what was being read).
pub async fn off_runtime<T: Send + 'static>(
    url: String,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, crate::forge::ForgeError> {
    let decode = |message: String| crate::forge::ForgeError::Decode {
        url: url.clone(),
        message,
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| decode(e.to_string()))?
        .map_err(decode)
}

/// An upload's secret is 1-64 ASCII letters and digits, and its file name one path component
/// (not `.` or `..`, no `/`, backslash or control character, at most 255 bytes): nothing can
/// step out of `uploads/<secret>/` when it is written to disk or into an archive.
pub fn check_upload_names(secret: &str, filename: &str) -> Result<(), String> {
    if secret.is_empty() || secret.len() > 64 || !secret.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "`{}` is not an upload secret (1-64 letters and digits)",
            secret.escape_debug()
        ));
    }
    let bad = filename.is_empty()
        || filename.len() > 255
        || filename == "."
        || filename == ".."
        || filename
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(format!(
            "`{}` is not a safe file name for an upload",
            filename.escape_debug()
        ));
    }
    Ok(())
}

/// Copies `from` into a new file at `to` (its directory created), hashing the bytes as they pass:
/// (size, sha256 in lowercase hex).
pub fn copy_hashed(from: impl Read, to: &Path) -> std::io::Result<(u64, String)> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(to)?);
    let hashed = crate::digest::copy_hashed(from, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(hashed)
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
        let name = raw.trim_start_matches("./").to_string();
        unpack_upload(&raw, &name, entry, dir, &mut out)?;
    }
    out.sort_by(|a, b| (&a.secret, &a.filename).cmp(&(&b.secret, &b.filename)));
    Ok(out)
}

/// One entry of exported uploads, named `<secret>/<filename>` (`name`, as `raw` in the archive),
/// unpacked into `<dir>/uploads/<secret>/<filename>` and added to `out`. The project's avatar
/// (`avatar/<filename>`) is not an upload and a directory holds nothing: both are skipped. A name
/// that could step out of its directory, an entry that is not a regular file, or an upload already
/// in `out` is refused before anything is written.
pub fn unpack_upload(
    raw: &str,
    name: &str,
    entry: tar::Entry<'_, impl Read>,
    dir: &Path,
    out: &mut Vec<ProjectUpload>,
) -> Result<(), String> {
    let kind = entry.header().entry_type();
    if kind.is_dir() {
        return Ok(());
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.first() == Some(&"avatar") {
        return Ok(());
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
    Ok(())
}

/// The design repository of a project's relation export (`relation=design`: a gzipped tar
/// holding `design.bundle`), streamed to `out`; false when the tar holds none (GitLab writes no
/// bundle for a project without a design repository). Anything else in the tar is not read; a
/// `design.bundle` that is not a regular file, or comes twice, is refused.
pub fn unpack_design(tar_gz: &Path, out: &Path) -> Result<bool, String> {
    let file = std::fs::File::open(tar_gz)
        .map_err(|e| format!("cannot read {}: {e}", tar_gz.display()))?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let bad =
        |e: std::io::Error| format!("the exported design repository is not a gzipped tar: {e}");
    let mut found = false;
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.trim_start_matches("./") != "design.bundle" {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(
                "the exported design repository's `design.bundle` is not a regular file".into(),
            );
        }
        if found {
            return Err("the exported design repository holds `design.bundle` twice".into());
        }
        copy_hashed(entry, out).map_err(|e| format!("cannot unpack `design.bundle`: {e}"))?;
        found = true;
    }
    Ok(found)
}

/// A gzipped tar of `entries` (name, bytes, or None for a symlink to `/etc/passwd`), as the unit
/// tests of exported files build them.
#[cfg(test)]
pub(crate) fn test_tar_gz(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        match bytes {
            Some(bytes) => {
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder.append_data(&mut header, name, *bytes).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder
                    .append_link(&mut header, name, "/etc/passwd")
                    .unwrap();
            }
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_export_gives_its_bundle_or_nothing_and_refuses_odd_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (file, out) = (
            dir.path().join("design.tar.gz"),
            dir.path().join("out.bundle"),
        );
        let unpack = |bytes: Vec<u8>| {
            std::fs::write(&file, bytes).unwrap();
            let _ = std::fs::remove_file(&out);
            unpack_design(&file, &out)
        };
        assert_eq!(
            unpack(test_tar_gz(&[(
                "design.bundle",
                Some(b"# v2 git bundle\n")
            )])),
            Ok(true)
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"# v2 git bundle\n");
        // GitLab writes no bundle for a project without a design repository.
        assert_eq!(unpack(test_tar_gz(&[])), Ok(false));
        assert!(!out.exists());
        // Anything else in the tar is not read.
        assert_eq!(unpack(test_tar_gz(&[("other", Some(b"x"))])), Ok(false));
        let said = unpack(test_tar_gz(&[("design.bundle", None)])).unwrap_err();
        assert!(said.contains("not a regular file"), "{said}");
        let said = unpack(test_tar_gz(&[
            ("design.bundle", Some(b"a")),
            ("./design.bundle", Some(b"b")),
        ]))
        .unwrap_err();
        assert!(said.contains("twice"), "{said}");
        let said = unpack(b"not gzip".to_vec()).unwrap_err();
        assert!(said.contains("not a gzipped tar"), "{said}");
    }
    use sha2::{Digest, Sha256};

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
    fn a_snippet_is_named_as_gitlab_names_it() {
        let record = serde_json::json!({
            "title": "Deploy script",
            "description": "How we ship.",
            "created_at": "2021-06-18T09:47:37.390Z",
            "updated_at": "2021-06-18T11:47:37.000+02:00",
        });
        // sha256 of "Deploy scriptHow we ship.2021-06-18 09:47:37 UTC2021-06-18 09:47:37 UTC"
        let want = hex::encode(Sha256::digest(
            b"Deploy scriptHow we ship.2021-06-18 09:47:37 UTC2021-06-18 09:47:37 UTC",
        ));
        assert_eq!(snippet_hexdigest(&record).as_deref(), Some(want.as_str()));
        let mut no_description = record.clone();
        no_description["description"] = serde_json::Value::Null;
        assert_eq!(
            snippet_hexdigest(&no_description),
            Some(hex::encode(Sha256::digest(
                b"Deploy script2021-06-18 09:47:37 UTC2021-06-18 09:47:37 UTC"
            )))
        );
        let mut bad = record.clone();
        bad["created_at"] = "yesterday".into();
        assert_eq!(snippet_hexdigest(&bad), None);
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

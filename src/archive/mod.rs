//! GitLab's project import archive (what `POST /projects/import` and `POST /projects/import-relation`
//! take), written as a sink of its own: a `.tar.gz` in GitLab's export layout.
//!
//! Layout: `VERSION` (the export format version), `tree/project.json` (the project's attributes),
//! `tree/project/<relation>.ndjson` (one record per line), and files copied in by name:
//! `project.bundle`, `project.wiki.bundle`, `design.bundle`, `snippets/<id>.bundle`,
//! `uploads/<secret>/<file>`, `lfs-objects/<oid>`, `lfs-objects.json`.
//!
//! It owns: the tar and gzip framing, name validation, and determinism (every header has the same
//! mtime, mode, owner; gzip has no timestamp or file name), so the same calls give the same bytes.
//! Memory stays bounded: a relation's records go one at a time to a temporary file (tar needs an
//! entry's size before its data) and files are copied through a fixed buffer.
//! It never knows a relation's fields and never talks to a forge.
//!
//! After any error the archive is unusable (later calls fail) and its file should be removed.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// GitLab's current export format version (`Gitlab::ImportExport.version`), the content of `VERSION`.
pub const EXPORT_VERSION: &str = "0.2.4";

/// Every entry's modification time: 2020-01-01T00:00:00Z. Fixed for reproducible archives, and
/// recent enough that `tar` does not warn about an implausibly old timestamp.
const MTIME: u64 = 1_577_836_800;
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
/// Buffer between the gzip stream and the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// A project import archive being written to a file. See the module documentation.
pub struct ImportArchive {
    builder: Option<tar::Builder<GzEncoder<BufWriter<File>>>>,
    /// Where temporary relation files go: next to the archive, on the same file system.
    temp_dir: PathBuf,
    /// Every entry written so far (files and directories): a name is written once.
    names: HashSet<String>,
    /// An earlier call failed; the archive is incomplete.
    failed: bool,
}

impl ImportArchive {
    /// Starts an archive at `path` (created, truncating); writes `VERSION` ("0.2.4", GitLab's
    /// current export version) first.
    pub fn create(path: &Path) -> io::Result<ImportArchive> {
        let file = File::create(path)?;
        let temp_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let gz = flate2::GzBuilder::new().write(
            BufWriter::with_capacity(WRITE_BUFFER, file),
            Compression::default(),
        );
        let mut builder = tar::Builder::new(gz);
        builder.mode(tar::HeaderMode::Deterministic);
        let mut archive = ImportArchive {
            builder: Some(builder),
            temp_dir,
            names: HashSet::new(),
            failed: false,
        };
        archive.entry(
            "VERSION",
            EXPORT_VERSION.len() as u64,
            EXPORT_VERSION.as_bytes(),
        )?;
        Ok(archive)
    }

    /// `tree/project.json`: the project's attributes.
    pub fn project(&mut self, attributes: &serde_json::Value) -> io::Result<()> {
        if !attributes.is_object() {
            return Err(invalid(
                "the project's attributes (tree/project.json) must be a JSON object".into(),
            ));
        }
        let json = serde_json::to_vec(attributes)?;
        self.entry("tree/project.json", json.len() as u64, json.as_slice())
    }

    /// `tree/project/<relation>.ndjson`, one record per line; returns how many records were
    /// written. Records go one at a time to a temporary file (tar needs the size up front), never
    /// all into memory. A relation without records is written as an empty file.
    pub fn relation<'a>(
        &mut self,
        relation: &str,
        records: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> io::Result<u64> {
        self.usable()?;
        check_relation(relation)?;
        let name = format!("tree/project/{relation}.ndjson");
        self.check_new(&name)?;
        // Nothing is in the archive yet when spooling fails, so such a failure does not spoil it.
        let spooled = (|| -> io::Result<(u64, u64, File)> {
            let mut spool =
                BufWriter::with_capacity(WRITE_BUFFER, tempfile::tempfile_in(&self.temp_dir)?);
            let mut count = 0u64;
            for record in records {
                // Compact JSON has no raw newline (a newline in a string is escaped), so one
                // record is one line.
                serde_json::to_writer(&mut spool, record)?;
                spool.write_all(b"\n")?;
                count += 1;
            }
            let mut spool = spool.into_inner().map_err(|e| e.into_error())?;
            let size = spool.stream_position()?;
            spool.seek(SeekFrom::Start(0))?;
            Ok((count, size, spool))
        })();
        let (count, size, spool) = spooled?;
        self.entry(&name, size, spool)?;
        Ok(count)
    }

    /// A file copied in under `name` (e.g. "project.bundle", "uploads/abc/x.png",
    /// "lfs-objects/<oid>"), streamed from disk.
    pub fn file(&mut self, name: &str, from: &Path) -> io::Result<()> {
        self.usable()?;
        check_name(name)?;
        self.check_new(name)?;
        let source = File::open(from)?;
        let meta = source.metadata()?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "{} is not a regular file, so it cannot go into the archive as `{name}`",
                from.display()
            )));
        }
        self.entry(name, meta.len(), source)
    }

    /// Finishes the gzip stream and syncs the file; returns the bytes written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.usable()?;
        let builder = self.builder.take().ok_or_else(broken)?;
        let gz = builder.into_inner()?;
        let buffered = gz.finish()?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }

    fn usable(&self) -> io::Result<()> {
        if self.failed || self.builder.is_none() {
            return Err(broken());
        }
        Ok(())
    }

    /// `name` is not in the archive yet, neither as a file nor as a directory, and none of its
    /// parents is a file.
    fn check_new(&self, name: &str) -> io::Result<()> {
        if self.names.contains(name) || self.names.contains(&format!("{name}/")) {
            return Err(invalid(format!("`{name}` is already in the archive")));
        }
        let mut parents = name.match_indices('/').map(|(i, _)| &name[..i]);
        if let Some(file) = parents.find(|p| self.names.contains(*p)) {
            return Err(invalid(format!(
                "`{name}` cannot go into the archive: `{file}` is a file there"
            )));
        }
        Ok(())
    }

    /// Writes one file entry of exactly `size` bytes read from `data`, after the directory entries
    /// of its parents that are not in the archive yet.
    fn entry(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        self.usable()?;
        let result = self.write_entry(name, size, data);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write_entry(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        let builder = self.builder.as_mut().ok_or_else(broken)?;
        let mut parent = String::new();
        let segments: Vec<&str> = name.split('/').collect();
        for segment in &segments[..segments.len() - 1] {
            parent.push_str(segment);
            parent.push('/');
            if self.names.insert(parent.clone()) {
                let mut header = header(tar::EntryType::Directory, DIR_MODE, 0);
                builder.append_data(&mut header, &parent, io::empty())?;
            }
        }
        let mut header = header(tar::EntryType::Regular, FILE_MODE, size);
        builder.append_data(&mut header, name, Exact::new(data, size))?;
        self.names.insert(name.to_owned());
        Ok(())
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(size);
    header
}

/// Reads exactly `size` bytes of `inner`: a source that is shorter (a file truncated while being
/// copied) is an error, and anything beyond `size` is not read, so the entry matches its header.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Exact<R> {
        Exact { inner, left: size }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the source ended {} bytes early (did it change while being copied?)",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A relation name: `[a-z_]+`, as GitLab's relation names are.
fn check_relation(relation: &str) -> io::Result<()> {
    if relation.is_empty()
        || !relation
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(invalid(format!(
            "`{relation}` is not a relation name (lowercase letters and `_` only)"
        )));
    }
    Ok(())
}

/// An entry name: relative, `/`-separated, without empty, `.` or `..` segments, backslashes or
/// control characters, so that extracting the archive cannot write outside its directory.
fn check_name(name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.chars().any(|c| c == '\\' || c.is_control())
        || name
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(invalid(format!(
            "`{}` is not a valid archive entry name (relative, no `.` or `..` segments)",
            name.escape_debug()
        )));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn broken() -> io::Error {
    io::Error::other("the import archive is incomplete after an earlier error; remove it")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use std::io::BufRead;

    fn fixture_project() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/gitlab-export/project/tree/project.json")
    }

    /// An entry read back: (entry type, mode, mtime, uid, gid, content).
    type Entry = (u8, u32, u64, u64, u64, Vec<u8>);

    /// Every entry of a `.tar.gz` by name.
    fn read_back(path: &Path) -> BTreeMap<String, Entry> {
        let gz = flate2::read::GzDecoder::new(File::open(path).unwrap());
        let mut tar = tar::Archive::new(gz);
        let mut entries = BTreeMap::new();
        let mut order = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let h = entry.header().clone();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            order.push(name.clone());
            let old = entries.insert(
                name,
                (
                    h.entry_type().as_byte(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    content,
                ),
            );
            assert!(old.is_none(), "an entry is written twice");
        }
        assert_eq!(order.first().map(String::as_str), Some("VERSION"));
        entries
    }

    fn ndjson(records: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            out.extend(serde_json::to_vec(r).unwrap());
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn an_archive_reads_back_entry_for_entry_and_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let project: Value = match std::fs::read(fixture_project()) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            // The shared fixtures live next to the repository; a checkout without them still tests.
            Err(_) => {
                json!({"description": "a project", "visibility_level": 10, "archived": false})
            }
        };
        let labels = vec![
            json!({"title": "bug", "color": "#d9534f", "type": "ProjectLabel"}),
            json!({"title": "déjà vu", "color": "#5843AD", "description": "line one\nline two"}),
        ];
        let issues = vec![json!({"iid": 1, "title": "First", "notes": [{"note": "hi"}]})];
        let bundle = dir.path().join("source.bundle");
        std::fs::write(&bundle, b"# v2 git bundle\nnot really\n").unwrap();
        let upload = dir.path().join("x.png");
        let png: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        std::fs::write(&upload, &png).unwrap();
        let long = format!("uploads/{}/{}.png", "a".repeat(32), "n".repeat(120));

        let out = dir.path().join("export.tar.gz");
        let write = |out: &Path| {
            let mut archive = ImportArchive::create(out).unwrap();
            archive.project(&project).unwrap();
            assert_eq!(archive.relation("labels", &labels).unwrap(), 2);
            assert_eq!(archive.relation("issues", issues.iter()).unwrap(), 1);
            assert_eq!(archive.relation("milestones", &[]).unwrap(), 0);
            archive.file("project.bundle", &bundle).unwrap();
            archive.file("uploads/abc123/x.png", &upload).unwrap();
            archive.file(&long, &upload).unwrap();
            archive.finish().unwrap()
        };
        let size = write(&out);
        assert_eq!(size, std::fs::metadata(&out).unwrap().len());

        let entries = read_back(&out);
        let files: BTreeMap<&str, &[u8]> = entries
            .iter()
            .filter(|(_, e)| e.0 == b'0')
            .map(|(n, e)| (n.as_str(), e.5.as_slice()))
            .collect();
        let project_json = serde_json::to_vec(&project).unwrap();
        let (labels_ndjson, issues_ndjson) = (ndjson(&labels), ndjson(&issues));
        let expected: BTreeMap<&str, &[u8]> = BTreeMap::from([
            ("VERSION", &b"0.2.4"[..]),
            ("tree/project.json", &project_json[..]),
            ("tree/project/labels.ndjson", &labels_ndjson[..]),
            ("tree/project/issues.ndjson", &issues_ndjson[..]),
            ("tree/project/milestones.ndjson", &b""[..]),
            ("project.bundle", &b"# v2 git bundle\nnot really\n"[..]),
            ("uploads/abc123/x.png", &png[..]),
            (long.as_str(), &png[..]),
        ]);
        assert_eq!(files, expected);
        let dirs: Vec<&str> = entries
            .iter()
            .filter(|(_, e)| e.0 == b'5')
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            dirs,
            [
                "tree/",
                "tree/project/",
                "uploads/",
                &format!("uploads/{}/", "a".repeat(32)),
                "uploads/abc123/",
            ]
        );
        for (name, (kind, mode, mtime, uid, gid, _)) in &entries {
            let want = if *kind == b'5' { 0o755 } else { 0o644 };
            assert_eq!((*mode, *mtime, *uid, *gid), (want, MTIME, 0, 0), "{name}");
        }

        // The same calls give the same bytes.
        let again = dir.path().join("again.tar.gz");
        write(&again);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    }

    #[test]
    fn a_large_relation_streams_through_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("big.tar.gz");
        let mut archive = ImportArchive::create(&out).unwrap();
        // The records are the caller's; the archive holds one serialized line at a time.
        let records: Vec<Value> = (0..100_000u64)
            .map(|i| json!({"iid": i, "title": format!("note {i}")}))
            .collect();
        assert_eq!(archive.relation("notes", &records).unwrap(), 100_000);
        drop(records);
        archive.finish().unwrap();
        assert!(out.is_file());

        let gz = flate2::read::GzDecoder::new(File::open(&out).unwrap());
        let mut tar = tar::Archive::new(gz);
        let mut lines = None;
        for entry in tar.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.path().unwrap() == Path::new("tree/project/notes.ndjson") {
                let mut n = 0u64;
                for (i, line) in io::BufReader::new(entry).lines().enumerate() {
                    let record: Value = serde_json::from_str(&line.unwrap()).unwrap();
                    assert_eq!(record["iid"], i as u64);
                    n += 1;
                }
                lines = Some(n);
            }
        }
        assert_eq!(lines, Some(100_000));
        // No temporary file is left next to the archive.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn bad_names_are_refused_and_good_ones_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("f");
        std::fs::write(&source, b"x").unwrap();
        let out = dir.path().join("a.tar.gz");
        let mut archive = ImportArchive::create(&out).unwrap();
        for name in [
            "",
            "/etc/passwd",
            "../x",
            "uploads/../../x",
            "uploads/./x",
            "uploads//x",
            "uploads/x/",
            "a\\b",
            "a\nb",
            "..",
        ] {
            let err = archive.file(name, &source).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        for relation in [
            "",
            "Issues",
            "../issues",
            "issues.ndjson",
            "a-b",
            "a/b",
            "é",
        ] {
            let err = archive.relation(relation, &[]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{relation:?}");
        }
        // A name is written once; VERSION is already there, and is a file, not a directory.
        for name in ["VERSION", "VERSION/x"] {
            let err = archive.file(name, &source).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name}");
        }
        assert_eq!(
            archive.project(&json!([1])).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // A directory is not a file.
        assert!(archive.file("dir", dir.path()).is_err());
        // Refusals do not spoil the archive; a source failure does.
        archive.file("uploads/s/f", &source).unwrap();
        archive
            .relation("labels", &[json!({"title": "a"})])
            .unwrap();
        assert!(archive.relation("labels", &[]).is_err());
        assert!(archive.file("uploads/s", &source).is_err());
        archive.finish().unwrap();
        let names: Vec<String> = read_back(&out).into_keys().collect();
        assert_eq!(
            names,
            [
                "VERSION",
                "tree/",
                "tree/project/",
                "tree/project/labels.ndjson",
                "uploads/",
                "uploads/s/",
                "uploads/s/f"
            ]
        );
    }
}

//! A bundle is one tar stream, stored as one file or split into volumes `FILE.001`, `FILE.002`, ...
//! This file finds the volumes of a bundle, reads them as one seekable stream, and writes a stream
//! into volumes atomically (each volume is written as `.partial`, synced, and renamed at the end).

use super::BundleError;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of one bundle, in stream order, with where each starts in the stream.
#[derive(Debug)]
pub struct VolumeSet {
    files: Vec<(PathBuf, u64)>,
    starts: Vec<u64>,
    total: u64,
}

/// `FILE.001` -> (`FILE`, 1)
fn volume_number(path: &Path) -> Option<(String, u32)> {
    let s = path.to_str()?;
    let (base, ext) = s.rsplit_once('.')?;
    if ext.len() == 3 && ext.bytes().all(|b| b.is_ascii_digit()) {
        Some((base.to_string(), ext.parse().ok()?))
    } else {
        None
    }
}

pub fn volume_path(base: &Path, n: u32) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n:03}"));
    PathBuf::from(s)
}

impl VolumeSet {
    /// The bundle named on the command line: one file, the first volume (the rest are found beside
    /// it), every volume, or a base name whose `.001` exists.
    pub fn discover(paths: &[PathBuf]) -> Result<Arc<VolumeSet>, BundleError> {
        let files: Vec<PathBuf> = match paths {
            [] => return Err(BundleError::NotABundle("no bundle file given".into())),
            [one] if one.is_file() => match volume_number(one) {
                Some((base, 1)) => {
                    let base = PathBuf::from(base);
                    (1..)
                        .map(|n| volume_path(&base, n))
                        .take_while(|p| p.is_file())
                        .collect()
                }
                _ => vec![one.clone()],
            },
            [one] => {
                let first = volume_path(one, 1);
                if !first.is_file() {
                    return Err(BundleError::Missing(one.clone()));
                }
                (1..)
                    .map(|n| volume_path(one, n))
                    .take_while(|p| p.is_file())
                    .collect()
            }
            many => {
                let mut many = many.to_vec();
                // Volumes given in any order (a shell glob sorts them anyway) are read in number order.
                if many.iter().all(|p| volume_number(p).is_some()) {
                    many.sort_by_key(|p| volume_number(p).map(|(_, n)| n));
                    for (i, p) in many.iter().enumerate() {
                        if volume_number(p).map(|(_, n)| n) != Some(i as u32 + 1) {
                            return Err(BundleError::NotABundle(format!(
                                "volume {:03} is missing before {}",
                                i + 1,
                                p.display()
                            )));
                        }
                    }
                }
                many
            }
        };
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let len = std::fs::metadata(&f).map_err(BundleError::read(&f))?.len();
            out.push((f, len));
        }
        Ok(Arc::new(VolumeSet::new(out)))
    }

    fn new(files: Vec<(PathBuf, u64)>) -> VolumeSet {
        let mut starts = Vec::with_capacity(files.len());
        let mut total = 0;
        for (_, len) in &files {
            starts.push(total);
            total += len;
        }
        VolumeSet {
            files,
            starts,
            total,
        }
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// A name for messages: the single file, or the first volume.
    pub fn name(&self) -> PathBuf {
        self.files
            .first()
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    pub fn reader(self: &Arc<Self>) -> VolumeReader {
        VolumeReader {
            set: Arc::clone(self),
            pos: 0,
            open: None,
        }
    }

    /// Reads exactly `len` bytes at `offset` of the stream.
    pub fn read_at(self: &Arc<Self>, offset: u64, len: u64) -> Result<Vec<u8>, BundleError> {
        if offset.saturating_add(len) > self.total {
            return Err(BundleError::Truncated {
                expected: offset.saturating_add(len),
                actual: self.total,
            });
        }
        let mut r = self.reader();
        r.seek(SeekFrom::Start(offset))
            .map_err(BundleError::read(self.name()))?;
        let mut buf = vec![0; len as usize];
        r.read_exact(&mut buf)
            .map_err(BundleError::read(self.name()))?;
        Ok(buf)
    }
}

/// The volumes as one `Read + Seek` stream; each reader has its own file handle.
pub struct VolumeReader {
    set: Arc<VolumeSet>,
    pos: u64,
    open: Option<(usize, File)>,
}

impl Read for VolumeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.set.total || buf.is_empty() {
            return Ok(0);
        }
        let idx = self.set.starts.partition_point(|s| *s <= self.pos) - 1;
        let within = self.pos - self.set.starts[idx];
        let left = self.set.files[idx].1 - within;
        if self.open.as_ref().map(|(i, _)| *i) != Some(idx) {
            let mut f = File::open(&self.set.files[idx].0)?;
            f.seek(SeekFrom::Start(within))?;
            self.open = Some((idx, f));
        }
        let Some((_, file)) = self.open.as_mut() else {
            return Ok(0);
        };
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter than when it was opened",
                    self.set.files[idx].0.display()
                ),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for VolumeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.set.total.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target != self.pos {
            self.pos = target;
            // Re-position the open handle lazily; cheaper than tracking it here.
            if let Some((idx, file)) = self.open.as_mut() {
                let start = self.set.starts[*idx];
                let end = start + self.set.files[*idx].1;
                if target >= start && target < end {
                    file.seek(SeekFrom::Start(target - start))?;
                } else {
                    self.open = None;
                }
            }
        }
        Ok(self.pos)
    }
}

/// Writes a stream into `FILE` or `FILE.001`, `FILE.002`, ... of at most `volume_size` bytes each.
/// Nothing appears under the final names until `finish`.
pub struct VolumeWriter {
    base: PathBuf,
    volume_size: Option<u64>,
    current: Option<(File, u64)>,
    written: Vec<(PathBuf, PathBuf)>,
}

fn partial(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

impl VolumeWriter {
    pub fn new(base: PathBuf, volume_size: Option<u64>) -> VolumeWriter {
        VolumeWriter {
            base,
            volume_size: volume_size.filter(|s| *s > 0),
            current: None,
            written: Vec::new(),
        }
    }

    fn next_volume(&mut self) -> io::Result<()> {
        self.close_current()?;
        let target = match self.volume_size {
            Some(_) => volume_path(&self.base, self.written.len() as u32 + 1),
            None => self.base.clone(),
        };
        let tmp = partial(&target);
        let file = File::create(&tmp)?;
        self.written.push((tmp, target));
        self.current = Some((file, 0));
        Ok(())
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((file, _)) = self.current.take() {
            file.sync_all()?;
        }
        Ok(())
    }

    /// Syncs and renames every volume into place, removes stale volumes of an earlier bundle with the
    /// same name, and returns the files written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, BundleError> {
        if self.current.is_none() && self.written.is_empty() {
            self.next_volume().map_err(BundleError::write(&self.base))?;
        }
        self.close_current()
            .map_err(BundleError::write(&self.base))?;
        let mut out = Vec::new();
        for (tmp, target) in &self.written {
            std::fs::rename(tmp, target).map_err(BundleError::write(target))?;
            out.push(target.clone());
        }
        if self.volume_size.is_some() {
            let mut n = self.written.len() as u32 + 1;
            while volume_path(&self.base, n).is_file() {
                let stale = volume_path(&self.base, n);
                std::fs::remove_file(&stale).map_err(BundleError::write(&stale))?;
                n += 1;
            }
        }
        if let Some(dir) = self.base.parent() {
            sync_dir(dir);
        }
        Ok(out)
    }
}

impl Write for VolumeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let full = match (&self.current, self.volume_size) {
            (None, _) => true,
            (Some((_, n)), Some(max)) => *n >= max,
            (Some(_), None) => false,
        };
        if full {
            self.next_volume()?;
        }
        let Some((file, n)) = self.current.as_mut() else {
            return Err(io::Error::other("no volume open"));
        };
        let room = match self.volume_size {
            Some(max) => (max - *n).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        let wrote = file.write(&buf[..room])?;
        *n += wrote as u64;
        Ok(wrote)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((f, _)) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for VolumeWriter {
    fn drop(&mut self) {
        // An abandoned write leaves no `.partial` files behind (after finish they were renamed).
        for (tmp, _) in &self.written {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Makes a rename durable. Best effort: some filesystems refuse to sync a directory.
pub(crate) fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_read_back_as_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = VolumeWriter::new(base.clone(), Some(3000));
        w.write_all(&data).unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 4);
        assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 3000);
        let set = VolumeSet::discover(&[files[0].clone()]).unwrap();
        assert_eq!(set.len(), 10_000);
        let mut all = Vec::new();
        set.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert_eq!(set.read_at(2990, 20).unwrap(), data[2990..3010]);
        let by_base = VolumeSet::discover(&[base]).unwrap();
        assert_eq!(by_base.len(), 10_000);
    }
}

//! sha256 of bytes as they stream: one reader that hashes and counts what passes through it, for
//! bundle members, staged files and uploads alike (nothing is read whole into memory to be hashed).

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// Hashes and counts the bytes read through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// How many bytes were read, and their sha256 in lowercase hex.
    pub fn finish(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Copies `from` into `to`, hashing the bytes as they pass: (size, sha256 in lowercase hex).
pub fn copy_hashed(from: impl Read, to: &mut impl Write) -> io::Result<(u64, String)> {
    let mut hashing = Hashing::new(from);
    io::copy(&mut hashing, to)?;
    Ok(hashing.finish())
}

/// The size and sha256 (lowercase hex) of the file at `path`, read in a blocking task.
pub async fn file_sha256(path: &std::path::Path) -> io::Result<(u64, String)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || copy_hashed(std::fs::File::open(&path)?, &mut io::sink()))
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_that_pass_are_counted_and_hashed() {
        let mut out = Vec::new();
        let (n, sha) = copy_hashed(&b"abc"[..], &mut out).unwrap();
        assert_eq!((n, out.as_slice()), (3, &b"abc"[..]));
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

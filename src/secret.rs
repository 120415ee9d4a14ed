//! Secrets at rest. Source access tokens are sealed (ChaCha20-Poly1305) with a key kept in
//! `<data>/seal.key` (mode 0600) before they reach the store, and unsealed only by the engine when it
//! talks to the source. Tokens are `SecretString`s everywhere else, so they cannot be printed or logged.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or create the sealing key {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the sealing key {0} is not 32 bytes; restore it from backup or remove it (sealed tokens are then lost)"
    )]
    KeyLength(String),
    #[error("a sealed token cannot be opened with this data directory's key")]
    Unseal,
}

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// Loads `<dir>/seal.key`, creating it with a random key (mode 0600) on first use.
    pub fn open(dir: &Path) -> Result<Sealer, SecretError> {
        let path = dir.join("seal.key");
        let err = |source| SecretError::Key {
            path: path.display().to_string(),
            source,
        };
        let key = match std::fs::read(&path) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                write_private(&path, key.as_slice()).map_err(err)?;
                key.to_vec()
            }
            Err(e) => return Err(err(e)),
        };
        if key.len() != 32 {
            return Err(SecretError::KeyLength(path.display().to_string()));
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn seal(&self, secret: &SecretString) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption of an in-memory buffer with a valid key cannot fail.
        let ct = self
            .cipher
            .encrypt(&nonce, secret.expose_secret().as_bytes())
            .expect("chacha20poly1305 encryption");
        out.extend_from_slice(&ct);
        out
    }

    pub fn unseal(&self, sealed: &[u8]) -> Result<SecretString, SecretError> {
        if sealed.len() < 12 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ct) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Unseal)?;
        let s = String::from_utf8(plain).map_err(|_| SecretError::Unseal)?;
        Ok(SecretString::from(s))
    }
}

/// Writes a file readable by its owner only (0600), replacing any earlier one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_token_round_trips_and_does_not_contain_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::open(dir.path()).unwrap();
        let token = SecretString::from("glpat-very-secret-token".to_string());
        let sealed = sealer.seal(&token);
        assert!(!sealed.windows(6).any(|w| w == b"glpat-"));
        let again = Sealer::open(dir.path()).unwrap();
        assert_eq!(
            again.unseal(&sealed).unwrap().expose_secret(),
            "glpat-very-secret-token"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("seal.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_tampered_seal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::open(dir.path()).unwrap();
        let mut sealed = sealer.seal(&SecretString::from("t".to_string()));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(sealer.unseal(&sealed), Err(SecretError::Unseal)));
    }
}

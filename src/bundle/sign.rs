//! ed25519 signatures over manifest.json. Keys are read as 64 hex digits (the 32-byte seed or public
//! key) or as the PEM files `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write.
//! A key is never written into a bundle or printed.

use super::BundleError;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use std::path::Path;

/// DER prefixes of an Ed25519 PKCS#8 private key and SubjectPublicKeyInfo (RFC 8410); the 32 key bytes
/// follow them.
const PKCS8_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn key_bytes(text: &str, label: &str, prefix: &[u8], what: &str) -> Result<[u8; 32], BundleError> {
    let text = text.trim();
    let bytes = if text.starts_with("-----BEGIN") {
        let begin = format!("-----BEGIN {label}-----");
        let body: String = text
            .lines()
            .skip_while(|l| l.trim() != begin)
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| BundleError::Key(format!("{what}: the PEM body is not base64: {e}")))?;
        der.strip_prefix(prefix)
            .filter(|k| k.len() == 32)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                BundleError::Key(format!(
                    "{what}: not an Ed25519 {label} (create one with `openssl genpkey -algorithm ed25519`)"
                ))
            })?
    } else {
        hex::decode(text).map_err(|_| {
            BundleError::Key(format!("{what}: expected 64 hex digits or a PEM `{label}`"))
        })?
    };
    bytes
        .try_into()
        .map_err(|_| BundleError::Key(format!("{what}: an Ed25519 key is 32 bytes")))
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, BundleError> {
    let text = std::fs::read_to_string(path).map_err(BundleError::read(path))?;
    let what = format!("--sign-key {}", path.display());
    Ok(SigningKey::from_bytes(&key_bytes(
        &text,
        "PRIVATE KEY",
        PKCS8_PREFIX,
        &what,
    )?))
}

/// `--trusted-key`: 64 hex digits, or a file holding them or a PEM public key.
pub fn load_verifying_key(arg: &str) -> Result<VerifyingKey, BundleError> {
    let what = format!("--trusted-key {arg}");
    let text = if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg).map_err(BundleError::read(arg))?
    };
    let bytes = key_bytes(&text, "PUBLIC KEY", SPKI_PREFIX, &what)?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| BundleError::Key(format!("{what}: not a valid Ed25519 public key: {e}")))
}

/// A short name for a public key in messages.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(&key.as_bytes()[..8])
}

/// Checks the bundle's signature against the trusted key.
pub fn check(
    manifest: &[u8],
    signature: Option<&[u8]>,
    trusted: &VerifyingKey,
) -> Result<(), BundleError> {
    let sig = signature.ok_or_else(|| {
        BundleError::Signature(format!(
            "the bundle is not signed, but --trusted-key {} was given; it was refused",
            fingerprint(trusted)
        ))
    })?;
    let sig = Signature::from_slice(sig)
        .map_err(|e| BundleError::Signature(format!("manifest.sig is malformed: {e}")))?;
    trusted.verify_strict(manifest, &sig).map_err(|_| {
        BundleError::Signature(format!(
            "the bundle's signature does not match the trusted key {}: it was signed with another key, or the manifest was altered",
            fingerprint(trusted)
        ))
    })
}

/// Checks that a signed bundle is intact: `manifest.sig` must verify against the key the manifest
/// names (`signed_by`), and one must not come without the other. Says nothing about whether that key
/// is trusted.
pub fn check_intact(
    manifest: &[u8],
    signed_by: Option<&str>,
    signature: Option<&[u8]>,
) -> Result<(), BundleError> {
    match (signed_by, signature) {
        (None, None) => Ok(()),
        // A signature the manifest does not vouch for cannot be checked, and would make an unsigned
        // bundle look signed.
        (None, Some(_)) => Err(BundleError::Signature(
            "the bundle holds manifest.sig, but its manifest names no signer (`signed_by`), so the signature cannot be checked; ask for a bundle exported with --sign-key by this appliance".into(),
        )),
        (Some(_), None) => Err(BundleError::Signature(
            "the manifest says the bundle is signed, but manifest.sig is missing".into(),
        )),
        (Some(hex_key), Some(sig)) => {
            let key = hex::decode(hex_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .ok_or_else(|| {
                    BundleError::Signature(format!(
                        "the manifest's signed_by `{hex_key}` is not an Ed25519 public key"
                    ))
                })?;
            let sig = Signature::from_slice(sig)
                .map_err(|e| BundleError::Signature(format!("manifest.sig is malformed: {e}")))?;
            key.verify_strict(manifest, &sig).map_err(|_| {
                BundleError::Signature(format!(
                    "manifest.sig does not verify against the key the manifest names ({}): the signature is damaged",
                    fingerprint(&key)
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
    const PEM_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDwz8OcbuRfMb26BFsRFzHECTLb2Fb5qoxRVK5+VmOio\n-----END PRIVATE KEY-----\n";

    const PEM_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAvih4wviHMvPVWGox2ysNokCQpg5zrczGfBvD0fNs/S0=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn pem_and_hex_keys_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let pub_file = dir.path().join("k.pub.pem");
        std::fs::write(&pub_file, PEM_PUBLIC).unwrap();
        let key_file = dir.path().join("k.pem");
        std::fs::write(&key_file, PEM_PRIVATE).unwrap();
        let key = load_signing_key(&key_file).unwrap();
        let public_hex = hex::encode(key.verifying_key().as_bytes());
        assert_eq!(
            load_verifying_key(&public_hex).unwrap(),
            key.verifying_key()
        );
        let from_pem = load_verifying_key(pub_file.to_str().unwrap()).unwrap();
        assert_eq!(from_pem, key.verifying_key());
        let hex_file = dir.path().join("k.hex");
        std::fs::write(&hex_file, hex::encode(key.to_bytes())).unwrap();
        assert_eq!(
            load_signing_key(&hex_file).unwrap().to_bytes(),
            key.to_bytes()
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not a key").unwrap();
        let err = load_signing_key(&bad).unwrap_err().to_string();
        assert!(err.contains("--sign-key"), "{err}");
    }
}

//! `appliance verify`: checks every byte of a bundle against its manifest (and its signature against
//! a trusted key), members in parallel, and says exactly what is wrong. Exit 0 only for a complete,
//! intact bundle.

use crate::bundle::sign::{fingerprint, load_verifying_key};
use crate::bundle::{Bundle, verify};
use ed25519_dalek::VerifyingKey;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a bundle that is damaged, incomplete or not trusted.
pub const EXIT_BAD_BUNDLE: u8 = 1;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Bundle files to check; a bundle in volumes is named by its first volume (the others are found
    /// beside it) or by all of them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Require a signature by this Ed25519 public key (64 hex digits, or a file with them or a PEM key).
    #[arg(long)]
    pub trusted_key: Option<String>,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = args
        .trusted_key
        .as_deref()
        .map(load_verifying_key)
        .transpose()?;
    // Volumes of one bundle (`FILE.001 FILE.002 ...`) are one bundle; other names are one bundle each.
    let all_volumes = args.files.iter().all(|f| {
        f.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.len() == 3 && e.bytes().all(|b| b.is_ascii_digit()))
    });
    let bundles: Vec<Vec<PathBuf>> = if all_volumes {
        vec![args.files.clone()]
    } else {
        args.files.iter().map(|f| vec![f.clone()]).collect()
    };
    let mut all_good = true;
    for files in bundles {
        all_good &= check(files, key).await?;
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_BUNDLE)
    })
}

/// Verifies one bundle and prints the verdict; true when it is complete and intact.
async fn check(files: Vec<PathBuf>, key: Option<VerifyingKey>) -> anyhow::Result<bool> {
    let name = files[0].display().to_string();
    let result = tokio::task::spawn_blocking(move || {
        let bundle = Bundle::open(&files)?;
        // What `appliance replay` would refuse, verify refuses too, in the same words.
        bundle.manifest.replay_roots()?;
        let problems = verify(&bundle, key.as_ref());
        Ok::<_, crate::bundle::BundleError>((bundle, problems))
    })
    .await?;
    let (bundle, problems) = match result {
        Ok(r) => r,
        Err(e) => {
            crate::outln!("{name}: REFUSED: {e}")?;
            return Ok(false);
        }
    };
    if !problems.is_empty() {
        crate::outln!("{name}: DAMAGED: {} problem(s)", problems.len())?;
        for p in &problems {
            crate::outln!("  - {p}")?;
        }
        return Ok(false);
    }
    let records: u64 = bundle.manifest.members.iter().map(|m| m.records).sum();
    crate::outln!(
        "{name}: OK: {} bytes in {} file(s), {} entities, {} members, {records} records",
        bundle.volumes.len(),
        bundle.volumes.paths().count(),
        bundle.manifest.entities.len(),
        bundle.manifest.members.len(),
    )?;
    match (&key, &bundle.signature) {
        (Some(k), _) => crate::outln!("signature:   valid, by trusted key {}", fingerprint(k))?,
        // `Bundle::open` refused a signature that does not verify against `signed_by`.
        (None, Some(_)) => crate::outln!(
            "signature:   intact, by key {} (not checked against a trusted key: pass --trusted-key)",
            bundle
                .manifest
                .signed_by
                .as_deref()
                .map_or("", |s| &s[..16.min(s.len())])
        )?,
        (None, None) => crate::outln!("signature:   none")?,
    }
    crate::outln!("root digest: sha256:{}", bundle.root_digest)?;
    Ok(true)
}

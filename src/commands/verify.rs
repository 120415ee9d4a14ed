//! `appliance verify`: checks every byte of a bundle against its manifest (and its signature against
//! a trusted key), members in parallel, and says exactly what is wrong. Exit 0 only for a complete,
//! intact bundle.

use crate::bundle::sign::{fingerprint, load_verifying_key};
use crate::bundle::{Bundle, verify};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a bundle that is damaged, incomplete or not trusted.
pub const EXIT_BAD_BUNDLE: u8 = 1;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The bundle file, its first volume (the others are found beside it), or every volume.
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
    let files = args.files.clone();
    let result = tokio::task::spawn_blocking(move || {
        let bundle = Bundle::open(&files)?;
        let problems = verify(&bundle, key.as_ref());
        Ok::<_, crate::bundle::BundleError>((bundle, problems))
    })
    .await?;
    let name = args.files[0].display();
    let (bundle, problems) = match result {
        Ok(r) => r,
        Err(e) => {
            println!("{name}: REFUSED: {e}");
            return Ok(ExitCode::from(EXIT_BAD_BUNDLE));
        }
    };
    if !problems.is_empty() {
        println!("{name}: DAMAGED: {} problem(s)", problems.len());
        for p in &problems {
            println!("  - {p}");
        }
        return Ok(ExitCode::from(EXIT_BAD_BUNDLE));
    }
    let records: u64 = bundle.manifest.members.iter().map(|m| m.records).sum();
    println!(
        "{name}: OK: {} bytes in {} file(s), {} entities, {} members, {records} records",
        bundle.volumes.len(),
        bundle.volumes.paths().count(),
        bundle.manifest.entities.len(),
        bundle.manifest.members.len(),
    );
    match (&key, &bundle.signature) {
        (Some(k), _) => println!("signature:   valid, by trusted key {}", fingerprint(k)),
        (None, Some(_)) => println!("signature:   present, not checked (pass --trusted-key)"),
        (None, None) => println!("signature:   none"),
    }
    println!("root digest: sha256:{}", bundle.root_digest);
    Ok(ExitCode::SUCCESS)
}

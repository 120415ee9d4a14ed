//! `appliance export`: live source groups and projects into a bundle file for offline transfer. Running the same
//! command again after a crash resumes the unfinished export (pages already staged are not fetched
//! again). Prints the bundle's root digest, to be checked out of band before a replay.

use super::args::SourceArgs;
use super::{EXIT_PAUSED, exit_code, run_with_progress};
use crate::bundle::Bundle;
use crate::bundle::sign::load_signing_key;
use crate::engine::{Engine, EngineConfig, EngineError, Plan};
use crate::forge::{base_string, parse_forge_url};
use crate::model::{DestinationKind, EntityRequest, SourceKind};
use crate::sink::bundle::{ExportOptions, staging_dir, write_options};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub network: super::args::NetworkArgs,
    /// Full path of a source group to export with its subgroups and projects, e.g. `acme/platform`
    /// (repeatable).
    #[arg(long, required_unless_present = "project")]
    pub group: Vec<String>,
    /// Full path of a source project to export on its own, e.g. `acme/platform/api` (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// The bundle file to write (with --volume-size: the base name of FILE.001, FILE.002, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave the group's projects out of the bundle (they are listed and reported as skipped), as
    /// `migrate_projects: false` does in the API.
    #[arg(long)]
    pub skip_projects: bool,
    /// Where the export state and staged batches are kept (created if missing).
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Split the bundle into volumes of this size, e.g. `4GiB`, `700MB`.
    #[arg(long, value_parser = parse_size)]
    pub volume_size: Option<u64>,
    /// Sign the manifest with this Ed25519 private key (PEM from `openssl genpkey -algorithm ed25519`,
    /// or 64 hex digits).
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// Allow plain http to a forge that is not on this machine.
    #[arg(long)]
    pub allow_http: bool,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Replace a bundle already at --out (without it, an existing bundle is never overwritten).
    #[arg(long)]
    pub force: bool,
}

/// `4GiB`, `700MB`, `512k`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 4GiB or 700MB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "t" | "tb" => 1000u64.pow(4),
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}`; use KiB, MiB or GiB"
            ));
        }
    };
    let size = n
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if size < 1024 {
        return Err(format!("a volume of `{s}` is too small; use at least 1KiB"));
    }
    Ok(size)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("reading the current directory")?
            .join(p))
    }
}

/// A bundle already at `out`: the file itself, or its first volume.
fn existing_bundle(out: &Path) -> Option<PathBuf> {
    let mut first_volume = out.as_os_str().to_owned();
    first_volume.push(".001");
    [out.to_path_buf(), PathBuf::from(first_volume)]
        .into_iter()
        .find(|p| p.exists())
}

/// The bundle can be written where `--out` says: checked before anything is read from the source, so
/// a mistyped directory costs nothing.
fn check_writable(out: &Path) -> anyhow::Result<()> {
    let dir = out.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        bail!(
            "--out {}: the directory {} does not exist; create it or choose another --out",
            out.display(),
            dir.display()
        );
    }
    if out.is_dir() {
        bail!(
            "--out {} is a directory; name the bundle file to write, e.g. {}",
            out.display(),
            out.join("export.bundle").display()
        );
    }
    tempfile::Builder::new()
        .prefix(".appliance-write-check")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            // Say the OS's reason without the name of the probe file.
            let e = std::io::Error::from(e.kind());
            anyhow::anyhow!(
                "--out {}: cannot write into {}: {e}",
                out.display(),
                dir.display()
            )
        })
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    args.network.install()?;
    // Each becomes a top-level entity of the bundle; a replay places each under its --to.
    let place = super::args::PlacementArgs {
        to: String::new(),
        slug: None,
    };
    let entities = place.entities(&args.group, &args.project, !args.skip_projects, false);
    crate::engine::refuse_nested_roots(&entities)
        .map_err(|e| anyhow::anyhow!("Export failed. {e}"))?;
    let out = absolute(&args.out).context("--out")?;
    check_writable(&out)?;
    let sign_key = match &args.sign_key {
        Some(k) => {
            let k = absolute(k).context("--sign-key")?;
            load_signing_key(&k)?;
            Some(k)
        }
        None => None,
    };
    let source_url = parse_forge_url(&args.source.url, args.allow_http).context("--source-url")?;
    let mut config = EngineConfig::new(args.data.clone(), None);
    config.allow_http = args.allow_http;
    let engine = Engine::open(config)?;
    let destination = DestinationKind::Bundle {
        path: out.display().to_string(),
    };
    let id = match find_unfinished(&engine, &base_string(&source_url), &destination, &entities)? {
        Some(id) => {
            eprintln!("Resuming export {id} from {}", args.data.display());
            id
        }
        None => {
            if let Some(existing) = existing_bundle(&out).filter(|_| !args.force) {
                bail!(
                    "--out {}: a bundle is already there ({}); pass --force to replace it, or choose another --out",
                    out.display(),
                    existing.display()
                );
            }
            engine
                .check_source(source_url.as_str(), &args.source.token, &entities)
                .await
                .map_err(|e| anyhow::anyhow!("Export failed. {e}"))?;
            let (bulk, _) = engine
                .record(Plan {
                    source_url: base_string(&source_url),
                    source: SourceKind::Live {
                        url: base_string(&source_url),
                    },
                    source_token: Some(args.source.token.clone()),
                    destination,
                    entities: entities.clone(),
                    user_map: Vec::new(),
                })
                .await
                .map_err(|e| anyhow::anyhow!("Export failed. {e}"))?;
            bulk.id
        }
    };
    let staging = staging_dir(engine.data_dir(), id);
    write_options(
        &staging,
        &ExportOptions {
            volume_size: args.volume_size,
            sign_key,
        },
    )?;
    let report = match run_with_progress(&engine, id, super::progress::Mode::for_stderr()).await {
        Ok(report) => report,
        Err(EngineError::Unreachable(why)) => {
            eprintln!("Export {id} paused: {why}\nRun the same command again to resume it.");
            return Ok(ExitCode::from(EXIT_PAUSED));
        }
        Err(e) => return Err(e.into()),
    };
    let paths = vec![out.clone()];
    let bundle = tokio::task::spawn_blocking(move || Bundle::open(&paths))
        .await?
        .with_context(|| format!("reading back {}", out.display()))?;
    let files: Vec<String> = bundle
        .volumes
        .paths()
        .map(|p| p.display().to_string())
        .collect();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["bundle"] = serde_json::json!({
            "files": files,
            "size": bundle.volumes.len(),
            "root_digest": bundle.root_digest,
            "signed": bundle.signature.is_some(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        crate::out!("{}", report.to_text())?;
        crate::outln!()?;
        for f in &files {
            crate::outln!("Bundle:      {f}")?;
        }
        crate::outln!(
            "Size:        {} bytes, {} members{}",
            bundle.volumes.len(),
            bundle.manifest.members.len(),
            if bundle.signature.is_some() {
                ", signed"
            } else {
                ""
            }
        )?;
        crate::outln!("Root digest: sha256:{}", bundle.root_digest)?;
        crate::outln!("Check this digest out of band before you replay the bundle.")?;
    }
    Ok(exit_code(&report))
}

/// An export of the same source into the same bundle, asked for the same entities, that has not
/// finished: running the command again resumes it.
fn find_unfinished(
    engine: &Engine,
    source_url: &str,
    destination: &DestinationKind,
    entities: &[EntityRequest],
) -> anyhow::Result<Option<u64>> {
    let store = engine.store();
    let mut asked: Vec<&str> = entities
        .iter()
        .map(|e| e.source_full_path.as_str())
        .collect();
    asked.sort_unstable();
    for b in store.unfinished_bulk_imports()? {
        if b.source_url != source_url || &b.destination != destination {
            continue;
        }
        let recorded = store.entities_of(b.id)?;
        let mut roots: Vec<&str> = recorded
            .iter()
            .filter(|e| e.parent_id.is_none())
            .map(|e| e.source_full_path.as_str())
            .collect();
        roots.sort_unstable();
        if roots == asked {
            return Ok(Some(b.id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("700MB"), Ok(700_000_000));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("12").is_err());
        assert!(parse_size("4 parsecs").is_err());
    }
}

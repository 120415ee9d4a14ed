//! `appliance replay`: loads a bundle into a live destination. The bundle is verified completely (and
//! its signature checked against --trusted-key) before anything is recorded or sent; then the engine
//! runs it like a live migration, with the same stats and failures. Running the same command again
//! after a crash resumes the unfinished replay without creating anything twice.

use super::args::{DestinationArgs, PlacementArgs};
use super::verify::EXIT_BAD_BUNDLE;
use super::{EXIT_PAUSED, exit_code, run_with_progress};
use crate::bundle::sign::load_verifying_key;
use crate::bundle::{Bundle, ManifestEntity, verify};
use crate::engine::{Destination, Engine, EngineConfig, EngineError, Plan, SubmitError};
use crate::forge::{base_string, parse_forge_url};
use crate::model::{DestinationKind, EntityRequest, EntityType, SourceKind};
use anyhow::{Context, bail};
use secrecy::SecretString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The bundle file, its first volume (the others are found beside it), or every volume.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub destination: DestinationArgs,
    #[command(flatten)]
    pub network: super::args::NetworkArgs,
    #[command(flatten)]
    pub place: PlacementArgs,
    /// Where the replay state is kept (created if missing).
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Refuse the bundle unless it is signed by this Ed25519 public key (64 hex digits, or a file).
    #[arg(long)]
    pub trusted_key: Option<String>,
    /// Allow plain http to a destination that is not on this machine.
    #[arg(long)]
    pub allow_http: bool,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// CSV of `source username or email,destination username`, applied before mapping by email.
    #[arg(long)]
    pub user_map: Option<PathBuf>,
    /// Continue an earlier replay of the same bundle into the same place (from another data
    /// directory, or one that finished with failures): only what is missing there is written.
    #[arg(long)]
    pub retry: bool,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    args.network.install()?;
    let user_map = super::read_user_map(args.user_map.as_deref())?;
    let key = args
        .trusted_key
        .as_deref()
        .map(load_verifying_key)
        .transpose()?;
    let files = args.files.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let bundle = Bundle::open(&files)?;
        bundle.manifest.replay_roots()?;
        let problems = verify(&bundle, key.as_ref());
        Ok::<_, crate::bundle::BundleError>((bundle, problems))
    })
    .await?;
    let name = args.files[0].display().to_string();
    let bundle = match checked {
        Ok((b, problems)) if problems.is_empty() => b,
        Ok((_, problems)) => {
            eprintln!(
                "Replay refused: {name} did not verify; nothing was written to the destination."
            );
            for p in &problems {
                eprintln!("  - {p}");
            }
            return Ok(ExitCode::from(EXIT_BAD_BUNDLE));
        }
        Err(e) => {
            eprintln!("Replay refused: {name}: {e}\nNothing was written to the destination.");
            return Ok(ExitCode::from(EXIT_BAD_BUNDLE));
        }
    };
    let roots: Vec<ManifestEntity> = bundle
        .manifest
        .replay_roots()?
        .into_iter()
        .cloned()
        .collect();
    if roots.len() > 1
        && let Some(slug) = &args.place.slug
    {
        bail!(
            "--slug {slug} names the new group or project of a bundle of one, and this one holds {} ({}); leave --slug out and each keeps its own path",
            roots.len(),
            roots
                .iter()
                .map(|r| format!("`{}`", r.source_full_path))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let bundle_path = {
        let first = bundle.volumes.name();
        if first.is_absolute() {
            first
        } else {
            std::env::current_dir()?.join(first)
        }
    };
    // The engine opens the bundle again: it must still be the one verified (and trusted) here.
    crate::source::bundle::pin(&bundle_path.display().to_string(), &bundle.root_digest);
    let dest_url =
        parse_forge_url(&args.destination.url, args.allow_http).context("--destination-url")?;
    let token = args.destination.token.clone();
    let mut config = EngineConfig::new(
        args.data.clone(),
        Some(Destination {
            url: dest_url.clone(),
            token: token.clone(),
        }),
    );
    config.allow_http = args.allow_http;
    let engine = Engine::open(config)?;
    // Each top-level group or project of the bundle becomes a new one in the destination namespace.
    let entities: Vec<EntityRequest> = roots
        .iter()
        .map(|root| EntityRequest {
            entity_type: if root.entity_type == "project" {
                EntityType::Project
            } else {
                EntityType::Group
            },
            source_full_path: root.source_full_path.clone(),
            destination_slug: args.place.slug.clone().unwrap_or_else(|| root.path.clone()),
            destination_namespace: args.place.namespace(),
            migrate_projects: true,
            migrate_memberships: true,
        })
        .collect();
    let source = SourceKind::Bundle {
        path: bundle_path.display().to_string(),
    };
    let destination = DestinationKind::Live {
        url: base_string(&dest_url),
    };
    let id = match find_unfinished(&engine, &source, &destination, &entities)? {
        Some(id) => {
            eprintln!("Resuming replay {id} from {}", args.data.display());
            id
        }
        None => {
            crate::engine::refuse_duplicate_destinations(&entities)
                .map_err(|e| anyhow::anyhow!("Replay failed. {e}"))?;
            for entity in &entities {
                crate::engine::refuse_own_subtree(
                    &bundle.manifest.source_url,
                    dest_url.as_str(),
                    entity,
                )
                .map_err(|e| anyhow::anyhow!("Replay failed. {e}"))?;
                check_destination(
                    &engine,
                    &dest_url,
                    token.clone(),
                    &bundle.manifest.source_url,
                    entity,
                    args.retry,
                )
                .await?;
            }
            let (bulk, _) = engine
                .record(Plan {
                    source_url: bundle.manifest.source_url.clone(),
                    source,
                    source_token: None,
                    destination,
                    entities,
                    user_map: user_map.clone(),
                })
                .await
                .map_err(|e| anyhow::anyhow!("Replay failed. {e}"))?;
            bulk.id
        }
    };
    drop(bundle);
    match run_with_progress(&engine, id, super::progress::Mode::for_stderr()).await {
        Ok(report) => {
            if args.json {
                crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                crate::out!("{}", report.to_text())?;
            }
            Ok(exit_code(&report))
        }
        Err(EngineError::Unreachable(why)) => {
            eprintln!("Replay {id} paused: {why}\nRun the same command again to resume it.");
            Ok(ExitCode::from(EXIT_PAUSED))
        }
        Err(e) => Err(e.into()),
    }
}

/// The destination namespace must exist and the new group's path must be free.
async fn check_destination(
    engine: &Engine,
    url: &url::Url,
    token: SecretString,
    source_url: &str,
    e: &EntityRequest,
    retry: bool,
) -> anyhow::Result<()> {
    let dest = engine
        .gitlab_as("destination", url.clone(), token)
        .map_err(|e| anyhow::anyhow!("Replay failed. {e}"))?;
    // The checks a migration's submission makes (namespace, path, imports accepted), in its words.
    engine
        .check_destination_for(&dest, source_url, e, retry)
        .await
        .map_err(|err| match err {
            SubmitError::MigratedBefore { .. } => {
                anyhow::anyhow!("Replay failed. {err}: add --retry")
            }
            err => anyhow::anyhow!("Replay failed. {err}"),
        })
}

fn find_unfinished(
    engine: &Engine,
    source: &SourceKind,
    destination: &DestinationKind,
    wanted: &[EntityRequest],
) -> anyhow::Result<Option<u64>> {
    let store = engine.store();
    for b in store.unfinished_bulk_imports()? {
        if &b.source != source || &b.destination != destination {
            continue;
        }
        if store.entities_of(b.id)?.iter().any(|e| {
            e.parent_id.is_none()
                && wanted.iter().any(|w| {
                    e.source_full_path == w.source_full_path
                        && e.destination_slug == w.destination_slug
                        && e.destination_namespace == w.destination_namespace
                })
        }) {
            return Ok(Some(b.id));
        }
    }
    Ok(None)
}

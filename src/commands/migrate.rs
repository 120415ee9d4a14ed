//! `appliance migrate`: one live migration in the foreground. Running the same command again after a
//! crash or an unreachable forge resumes the unfinished migration instead of starting a new one.

use super::args::{DestinationArgs, PlacementArgs, SourceArgs};
use super::run_and_report;
use crate::engine::{Destination, Engine, EngineConfig, SubmitError, SubmitRequest};
use crate::forge::{base_string, parse_forge_url};
use crate::model::{EntityRequest, EntityType};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub destination: DestinationArgs,
    #[command(flatten)]
    pub network: super::args::NetworkArgs,
    /// Full path of a source group, e.g. `acme/platform` (repeatable); it migrates with its
    /// subgroups and projects.
    #[arg(long, required_unless_present = "project")]
    pub group: Vec<String>,
    /// Full path of a source project, e.g. `acme/platform/api` (repeatable); it is created in the
    /// namespace given with --to.
    #[arg(long)]
    pub project: Vec<String>,
    #[command(flatten)]
    pub place: PlacementArgs,
    /// Where the migration state is kept (created if missing).
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Allow plain http to a forge that is not on this machine.
    #[arg(long)]
    pub allow_http: bool,
    /// Do not migrate memberships.
    #[arg(long)]
    pub skip_memberships: bool,
    /// Do not migrate the projects of the groups (they are listed and reported as skipped), as
    /// `migrate_projects: false` does in the API.
    #[arg(long)]
    pub skip_projects: bool,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// CSV of `source username or email,destination username`, applied before mapping by email.
    #[arg(long)]
    pub user_map: Option<PathBuf>,
    /// Continue an earlier migration of the same group into the same destination: only what is
    /// missing there is written.
    #[arg(long)]
    pub retry: bool,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    args.network.install()?;
    let destination = Destination {
        url: parse_forge_url(&args.destination.url, args.allow_http)
            .context("--destination-url")?,
        token: args.destination.token,
    };
    let mut config = EngineConfig::new(args.data.clone(), Some(destination));
    config.allow_http = args.allow_http;
    let engine = Engine::open(config)?;
    if args.place.slug.is_some() && args.group.len() + args.project.len() > 1 {
        anyhow::bail!(
            "--slug names one new group or project; with several --group or --project, each keeps its source path"
        );
    }
    let entities = args.place.entities(
        &args.group,
        &args.project,
        !args.skip_projects,
        !args.skip_memberships,
    );
    let source_url = parse_forge_url(&args.source.url, args.allow_http).context("--source-url")?;
    let id = match find_unfinished(&engine, &base_string(&source_url), &entities)? {
        Some(id) => {
            eprintln!("Resuming migration {id} from {}", args.data.display());
            id
        }
        None => {
            let req = SubmitRequest {
                source_url: source_url.to_string(),
                source_token: args.source.token,
                entities,
                user_map: super::read_user_map(args.user_map.as_deref())?,
                continue_earlier: args.retry,
            };
            let (bulk, _) = engine.create(req).await.map_err(|e| match e {
                SubmitError::MigratedBefore { .. } => {
                    anyhow::anyhow!("Import failed. {e}: add --retry")
                }
                e => anyhow::anyhow!("Import failed. {e}"),
            })?;
            bulk.id
        }
    };
    run_and_report(&engine, id, args.json, "Migration").await
}

/// An unfinished bulk import in this data directory with the same source, destination and top-level
/// entities.
fn find_unfinished(
    engine: &Engine,
    source_url: &str,
    wanted: &[EntityRequest],
) -> anyhow::Result<Option<u64>> {
    let store = engine.store();
    let key = |t: EntityType, s: &str, slug: &str, ns: &str| {
        (t, s.to_string(), slug.to_string(), ns.to_string())
    };
    let mut wanted: Vec<_> = wanted
        .iter()
        .map(|w| {
            key(
                w.entity_type,
                &w.source_full_path,
                &w.destination_slug,
                &w.destination_namespace,
            )
        })
        .collect();
    wanted.sort();
    for b in store.unfinished_bulk_imports()? {
        let same_destination = b.destination
            == crate::model::DestinationKind::Live {
                url: engine
                    .destination_url()
                    .map(base_string)
                    .unwrap_or_default(),
            };
        if b.source_url != source_url || !same_destination {
            continue;
        }
        let mut top: Vec<_> = store
            .entities_of(b.id)?
            .iter()
            .filter(|e| e.parent_id.is_none())
            .map(|e| {
                key(
                    e.entity_type,
                    &e.source_full_path,
                    &e.destination_slug,
                    &e.destination_namespace,
                )
            })
            .collect();
        top.sort();
        if top == wanted {
            return Ok(Some(b.id));
        }
    }
    Ok(None)
}

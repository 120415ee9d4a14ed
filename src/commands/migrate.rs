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
    /// Full path of the source group, e.g. `acme/platform`.
    #[arg(long)]
    pub group: String,
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
    let destination = Destination {
        url: parse_forge_url(&args.destination.url, args.allow_http)
            .context("--destination-url")?,
        token: args.destination.token,
    };
    let mut config = EngineConfig::new(args.data.clone(), Some(destination));
    config.allow_http = args.allow_http;
    let engine = Engine::open(config)?;
    let slug = args.place.slug.clone().unwrap_or_else(|| {
        args.group
            .rsplit('/')
            .next()
            .unwrap_or(&args.group)
            .to_string()
    });
    let entity = EntityRequest {
        entity_type: EntityType::Group,
        source_full_path: args.group.trim_matches('/').to_string(),
        destination_slug: slug,
        destination_namespace: args.place.namespace(),
        migrate_projects: true,
        migrate_memberships: !args.skip_memberships,
    };
    let source_url = parse_forge_url(&args.source.url, args.allow_http).context("--source-url")?;
    let id = match find_unfinished(&engine, &base_string(&source_url), &entity)? {
        Some(id) => {
            eprintln!("Resuming migration {id} from {}", args.data.display());
            id
        }
        None => {
            let req = SubmitRequest {
                source_url: source_url.to_string(),
                source_token: args.source.token,
                entities: vec![entity],
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

/// An unfinished bulk import in this data directory for the same source group and destination.
fn find_unfinished(
    engine: &Engine,
    source_url: &str,
    wanted: &EntityRequest,
) -> anyhow::Result<Option<u64>> {
    let store = engine.store();
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
        let entities = store.entities_of(b.id)?;
        if entities.iter().any(|e| {
            e.parent_id.is_none()
                && e.source_full_path == wanted.source_full_path
                && e.destination_slug == wanted.destination_slug
                && e.destination_namespace == wanted.destination_namespace
        }) {
            return Ok(Some(b.id));
        }
    }
    Ok(None)
}

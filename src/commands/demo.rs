//! `appliance demo`: a real migration end to end on this machine, with nothing to set up. It starts the
//! simulator's `small` dataset as the source and `empty` as the destination (both in-process, on
//! loopback), migrates the source's top-level group into the destination's `imported` group, and
//! prints the report.

use super::{exit_code, run_with_progress};
use crate::engine::{Destination, Engine, EngineConfig, SubmitRequest};
use crate::forge::client::RetryPolicy;
use crate::forge::{ForgeClient, GitLab, parse_forge_url};
use crate::model::{EntityRequest, EntityType};
use anyhow::Context;
use forge_sim::{Dataset, RunningSim, SimConfig};
use secrecy::SecretString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seed of the sample data (the same seed gives the same data).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Keep the migration state here instead of a temporary directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let source = RunningSim::start(SimConfig::new(Dataset::Small, args.seed))
        .await
        .context("starting the sample source")?;
    let destination = RunningSim::start(SimConfig::new(Dataset::Empty, args.seed))
        .await
        .context("starting the sample destination")?;
    eprintln!(
        "Source:      {} (sample dataset `small`, seed {})",
        source.url, args.seed
    );
    eprintln!("Destination: {} (sample dataset `empty`)", destination.url);

    let source_url = parse_forge_url(&source.url, false)?;
    let source_token = SecretString::from(source.owner_token.clone());
    let reader = GitLab::new(ForgeClient::new(
        source_url.clone(),
        source_token.clone(),
        4,
        RetryPolicy::default(),
    )?);
    let top = reader
        .list_all("groups", &[("top_level_only", "true".into())])
        .await
        .context("listing the source's groups")?;
    let group = top
        .first()
        .and_then(|g| g.get("full_path"))
        .and_then(|p| p.as_str())
        .context("the sample source has no top-level group")?
        .to_string();

    let temp = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let config = EngineConfig::new(
        data,
        Some(Destination {
            url: parse_forge_url(&destination.url, false)?,
            token: SecretString::from(destination.owner_token.clone()),
        }),
    );
    let engine = Engine::open(config)?;
    eprintln!("Migrating group `{group}` live into `imported/{group}` ...");
    let (bulk, _) = engine
        .create(SubmitRequest {
            source_url: source_url.to_string(),
            source_token,
            entities: vec![EntityRequest {
                entity_type: EntityType::Group,
                source_full_path: group.clone(),
                destination_slug: group.rsplit('/').next().unwrap_or(&group).to_string(),
                destination_namespace: "imported".into(),
                migrate_projects: true,
                migrate_memberships: true,
            }],
            user_map: Vec::new(),
            continue_earlier: false,
        })
        .await
        .map_err(|e| anyhow::anyhow!("Import failed. {e}"))?;
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let report = run_with_progress(&engine, bulk.id, show_progress).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    source.shutdown().await;
    destination.shutdown().await;
    Ok(exit_code(&report))
}

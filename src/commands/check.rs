//! `appliance check`: the pre-flight of a migration (`Engine::preflight`): what would move and every
//! blocker, with nothing written to either forge and nothing recorded.

use super::args::{DestinationArgs, PlacementArgs, SourceArgs};
use crate::engine::{Destination, Engine, EngineConfig, SubmitRequest};
use crate::forge::parse_forge_url;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub destination: DestinationArgs,
    /// Full path of a source group (repeatable).
    #[arg(long, required_unless_present = "project")]
    pub group: Vec<String>,
    /// Full path of a source project (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    #[command(flatten)]
    pub place: PlacementArgs,
    /// The data directory a migration would run in, when it exists (an earlier migration there makes
    /// a taken destination path a retry, not a blocker); nothing is written to it.
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    #[arg(long)]
    pub allow_http: bool,
    /// Check as `migrate --skip-memberships` would run.
    #[arg(long)]
    pub skip_memberships: bool,
    /// Check as `migrate --skip-projects` would run.
    #[arg(long)]
    pub skip_projects: bool,
    /// CSV of `source username or email,destination username`, as `migrate --user-map`.
    #[arg(long)]
    pub user_map: Option<PathBuf>,
    /// Check as `migrate --retry` would run.
    #[arg(long)]
    pub retry: bool,
    /// Write the source users no destination user maps to, as a user map to complete
    /// (`source username,destination username` with the destination left empty).
    #[arg(long)]
    pub unmapped_csv: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let destination = Destination {
        url: parse_forge_url(&args.destination.url, args.allow_http)
            .context("--destination-url")?,
        token: args.destination.token,
    };
    // An existing data directory is read (earlier migrations); none is created.
    let scratch = tempfile::tempdir()?;
    let data = if args.data.join("appliance.redb").is_file() {
        args.data.clone()
    } else {
        scratch.path().to_path_buf()
    };
    let mut config = EngineConfig::new(data, Some(destination));
    config.allow_http = args.allow_http;
    let engine = Engine::open(config)?;
    let entities = args.place.entities(
        &args.group,
        &args.project,
        !args.skip_projects,
        !args.skip_memberships,
    );
    let req = SubmitRequest {
        source_url: args.source.url.clone(),
        source_token: args.source.token,
        entities,
        user_map: super::read_user_map(args.user_map.as_deref())?,
        continue_earlier: args.retry,
    };
    let found = engine
        .preflight(&req)
        .await
        .map_err(|e| anyhow::anyhow!("Check failed. {e}"))?;
    if let Some(path) = &args.unmapped_csv {
        let users = found.unmapped_users.iter().map(|u| {
            if u.username.is_empty() {
                u.public_email.as_str()
            } else {
                u.username.as_str()
            }
        });
        std::fs::write(path, crate::user_map::UserMap::to_complete(users))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&found)?)?;
    } else {
        crate::outln!(
            "Source:      {} (GitLab {})",
            found.source_url,
            found.source_version.as_deref().unwrap_or("?")
        )?;
        crate::outln!(
            "Destination: {} (GitLab {}{})",
            found.destination_url,
            found.destination_version.as_deref().unwrap_or("?"),
            match found.destination_admin {
                Some(true) => ", administrator's token",
                Some(false) => ", not an administrator's token",
                None => "",
            }
        )?;
        if let Some(i) = &found.destination_import {
            crate::outln!(
                "Imports:     GitLab export {}; maximum import size {}",
                if i.accepts_gitlab_exports {
                    "accepted"
                } else {
                    "NOT accepted"
                },
                i.max_import_mib
                    .map_or("unlimited".to_string(), |m| format!("{m} MiB"))
            )?;
        }
        for e in &found.entities {
            crate::outln!(
                "\n{} {} -> {}",
                e.entity_type,
                e.source_full_path,
                e.destination_full_path
            )?;
            for (relation, n) in &e.counts {
                crate::outln!("    {relation:<16} {n:>8}")?;
            }
            for p in &e.projects {
                let mib = |b: Option<u64>| b.map_or("?".to_string(), crate::ui::html::size);
                crate::outln!(
                    "    project {}: {} issues, {} merge requests, repository {}, LFS {}",
                    p.source_full_path,
                    p.issues,
                    p.merge_requests,
                    mib(p.repository_size),
                    mib(p.lfs_objects_size)
                )?;
            }
        }
        for w in &found.warnings {
            crate::outln!("\nWARNING: {w}")?;
        }
        if found.blockers.is_empty() {
            crate::outln!("\nNothing blocks this migration.")?;
        } else {
            crate::outln!("\nBlocked:")?;
            for b in &found.blockers {
                crate::outln!("  - {b}")?;
            }
        }
    }
    Ok(if found.blockers.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! `appliance demo`: a real migration end to end on this machine, with nothing to set up. It starts the
//! simulator's `small` dataset as the source and `empty` as the destination (both in-process, on
//! loopback), then migrates the source's top-level group twice: live into `imported/<group>`, and offline
//! (export to a bundle, verify it, replay it) into `imported/<group>-offline`. It prints both reports and
//! compares the two copies through the destination's API.

use super::args::{DestinationArgs, NetworkArgs, PlacementArgs, SourceArgs};
use super::{export, replay, run_with_progress, verify};
use crate::engine::{Destination, Engine, EngineConfig, SubmitRequest};
use crate::forge::client::RetryPolicy;
use crate::forge::{ForgeClient, GitLab, parse_forge_url};
use crate::model::{EntityRequest, EntityType};
use anyhow::Context;
use forge_sim::{Dataset, RunningSim, SimConfig};
use secrecy::SecretString;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seed of the sample data (the same seed gives the same data).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Keep the migration state and the bundle here instead of a temporary directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let source = RunningSim::start(SimConfig::new(Dataset::Small, args.seed))
        .await
        .context("starting the sample source")?;
    let destination = RunningSim::start(SimConfig::new(Dataset::Empty, args.seed))
        .await
        .context("starting the sample destination")?;
    crate::outln!(
        "Source:      {} (sample dataset `small`, seed {})",
        source.url,
        args.seed
    )?;
    crate::outln!("Destination: {} (sample dataset `empty`)", destination.url)?;

    let source_url = parse_forge_url(&source.url, false)?;
    let dest_url = parse_forge_url(&destination.url, false)?;
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
        .and_then(Value::as_str)
        .context("the sample source has no top-level group")?
        .to_string();
    let temp = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());

    // 1. Live: source API -> destination API.
    crate::outln!("\n== Live: migrating `{group}` into `imported/{group}`")?;
    let engine = Engine::open(EngineConfig::new(
        data.join("live"),
        Some(Destination {
            url: dest_url.clone(),
            token: SecretString::from(destination.owner_token.clone()),
        }),
    ))?;
    let (bulk, _) = engine
        .create(SubmitRequest {
            source_url: source_url.to_string(),
            source_token,
            entities: vec![EntityRequest {
                entity_type: EntityType::Group,
                source_full_path: group.clone(),
                destination_slug: group.clone(),
                destination_namespace: "imported".into(),
                migrate_projects: true,
                migrate_memberships: true,
            }],
            user_map: Vec::new(),
            continue_earlier: false,
        })
        .await
        .map_err(|e| anyhow::anyhow!("Import failed. {e}"))?;
    let live = run_with_progress(&engine, bulk.id, super::progress::Mode::for_stderr()).await?;
    crate::out!("{}", live.to_text())?;
    drop(engine);

    // 2. Offline: source -> bundle -> verify -> replay into the destination.
    let bundle = data.join(format!("{group}.bundle"));
    crate::outln!("\n== Offline: exporting `{group}` to {}", bundle.display())?;
    let exported = export::run(export::ExportArgs {
        source: SourceArgs {
            url: source.url.clone(),
            token: source.owner_token.clone().into(),
        },
        // The simulators are on this machine: no CA or proxy of the caller's.
        network: NetworkArgs::default(),
        group: vec![group.clone()],
        project: Vec::new(),
        out: bundle.clone(),
        skip_projects: false,
        data: data.join("export"),
        volume_size: None,
        sign_key: None,
        allow_http: false,
        json: false,
        // `demo --data DIR` run again makes its bundle again.
        force: true,
    })
    .await?;
    crate::outln!("\n== Offline: verifying the bundle")?;
    let verified = verify::run(verify::VerifyArgs {
        files: vec![bundle.clone()],
        trusted_key: None,
    })
    .await?;
    let offline_slug = format!("{group}-offline");
    crate::outln!("\n== Offline: replaying the bundle into `imported/{offline_slug}`")?;
    let replayed = replay::run(replay::ReplayArgs {
        files: vec![bundle],
        destination: DestinationArgs {
            url: destination.url.clone(),
            token: destination.owner_token.clone().into(),
        },
        network: NetworkArgs::default(),
        place: PlacementArgs {
            to: "imported".into(),
            slug: Some(offline_slug.clone()),
        },
        data: data.join("replay"),
        trusted_key: None,
        allow_http: false,
        json: false,
        user_map: None,
        retry: false,
    })
    .await?;

    // 3. The two copies, side by side, as the destination's API shows them.
    let dest = GitLab::new(ForgeClient::new(
        dest_url,
        SecretString::from(destination.owner_token.clone()),
        4,
        RetryPolicy::default(),
    )?);
    let live_counts = tree_counts(&dest, &format!("imported/{group}")).await?;
    let offline_counts = tree_counts(&dest, &format!("imported/{offline_slug}")).await?;
    crate::outln!("\n== Live and offline copies at the destination")?;
    crate::outln!("    {:<16} {:>8} {:>8}", "", "live", "offline")?;
    for ((name, l), (_, o)) in live_counts.iter().zip(&offline_counts) {
        crate::outln!("    {name:<16} {l:>8} {o:>8}")?;
    }
    let same = live_counts == offline_counts;
    crate::outln!(
        "    {}",
        if same {
            "The two copies have the same number of records of each kind."
        } else {
            "The two copies DIFFER."
        }
    )?;
    source.shutdown().await;
    destination.shutdown().await;
    let all_ok = [exported, verified, replayed]
        .iter()
        .all(|c| *c == ExitCode::SUCCESS);
    Ok(
        if super::exit_code(&live) == ExitCode::SUCCESS && all_ok && same {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        },
    )
}

/// How many groups, labels, milestones, badges, epics, boards, members, cadences, iterations, projects,
/// issues, merge requests, notes and releases a group tree has.
async fn tree_counts(dest: &GitLab, root: &str) -> anyhow::Result<Vec<(&'static str, usize)>> {
    let top = dest
        .group(root)
        .await?
        .with_context(|| format!("`{root}` exists at the destination"))?;
    let id = top.get("id").and_then(Value::as_u64).unwrap_or_default();
    let mut groups = vec![id];
    let mut paths = vec![root.to_string()];
    for g in dest
        .list_all(&format!("groups/{id}/descendant_groups"), &[])
        .await?
    {
        groups.extend(g.get("id").and_then(Value::as_u64));
        paths.extend(
            g.get("full_path")
                .and_then(Value::as_str)
                .map(str::to_string),
        );
    }
    let mut counts = vec![("groups", groups.len())];
    for (name, path, query) in [
        (
            "labels",
            "labels",
            vec![("include_ancestor_groups", "false".to_string())],
        ),
        ("milestones", "milestones", vec![]),
        ("badges", "badges", vec![]),
        (
            "epics",
            "epics",
            vec![("include_descendant_groups", "false".to_string())],
        ),
        ("boards", "boards", vec![]),
        ("members", "members", vec![]),
    ] {
        let mut n = 0;
        for g in &groups {
            n += dest
                .list_all(&format!("groups/{g}/{path}"), &query)
                .await?
                .len();
        }
        counts.push((name, n));
    }
    // Cadences and iterations are served through GraphQL only.
    let (mut cadences, mut iterations) = (0, 0);
    for path in &paths {
        let (c, i) = crate::relations::iterations::count(dest, path).await?;
        (cadences, iterations) = (cadences + c, iterations + i);
    }
    counts.push(("cadences", cadences));
    counts.push(("iterations", iterations));
    // The projects, with what their import brought.
    let projects = dest
        .list_all(
            &format!("groups/{id}/projects"),
            &[("include_subgroups", "true".to_string())],
        )
        .await?;
    counts.push(("projects", projects.len()));
    let (mut issues, mut merge_requests, mut notes, mut releases) = (0, 0, 0, 0);
    for p in &projects {
        let pid = p.get("id").and_then(Value::as_u64).unwrap_or_default();
        for (kind, n) in [
            ("issues", &mut issues),
            ("merge_requests", &mut merge_requests),
        ] {
            let items = dest
                .list_all(&format!("projects/{pid}/{kind}"), &[])
                .await?;
            *n += items.len();
            for item in items {
                let iid = item.get("iid").and_then(Value::as_u64).unwrap_or_default();
                notes += dest
                    .list_all(&format!("projects/{pid}/{kind}/{iid}/notes"), &[])
                    .await?
                    .len();
            }
        }
        releases += dest
            .list_all(&format!("projects/{pid}/releases"), &[])
            .await?
            .len();
    }
    counts.push(("issues", issues));
    counts.push(("merge requests", merge_requests));
    counts.push(("notes", notes));
    counts.push(("releases", releases));
    Ok(counts)
}

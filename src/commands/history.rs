//! `appliance list`, `appliance status ID` and `appliance report ID`: what ran from a data directory,
//! read from its store alone (nothing is asked of a forge), so they answer during a run of another
//! process only when it has stopped (the store is locked by the process that runs), after a run, and
//! after a restart.

use crate::model::{DestinationKind, SourceKind, format_millis};
use crate::report::Report;
use crate::store::{ListQuery, SortOrder, Store};
use anyhow::{Context, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The data directory the migrations ran in.
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The migration's id (`appliance list` shows them).
    pub id: u64,
    /// The data directory the migration ran in.
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `appliance report` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// The whole report, as `--json` prints it.
    Json,
    /// One row per entity and relation: counts, status and failures.
    Csv,
    /// A document for people: a table per entity, then every failure and skipped record.
    Markdown,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The migration's id (`appliance list` shows them).
    pub id: u64,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// The file to write (standard output when not given).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace `--out` when it exists.
    #[arg(long)]
    pub force: bool,
    /// The data directory the migration ran in.
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
}

/// Opens the store of a data directory that must already exist: these commands never create one.
fn open(data: &Path) -> anyhow::Result<Store> {
    if !data.join("appliance.redb").is_file() {
        bail!(
            "no migration has run in {}: it holds no store (give the data directory of your runs with --data)",
            data.display()
        );
    }
    Ok(Store::open(data)?)
}

fn report(data: &Path, id: u64) -> anyhow::Result<Report> {
    let store = open(data)?;
    if store.bulk_import(id).is_err() {
        bail!(
            "there is no migration {id} in {} (appliance list shows the ones there are)",
            data.display()
        );
    }
    Ok(Report::build(&store, id)?)
}

fn source_of(s: &SourceKind, url: &str) -> String {
    match s {
        SourceKind::Bundle { path } => format!("bundle {path}"),
        _ => url.to_string(),
    }
}

fn destination_of(d: &DestinationKind) -> String {
    match d {
        DestinationKind::Live { url } => url.clone(),
        DestinationKind::Bundle { path } => format!("bundle {path}"),
    }
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.data)?;
    let mut rows = Vec::new();
    let mut page = 1;
    loop {
        let got = store.list_bulk_imports(&ListQuery {
            sort: SortOrder::Asc,
            page,
            per_page: 100,
            ..Default::default()
        })?;
        let done = got.items.len() < 100;
        for b in got.items {
            let entities = store.entities_of(b.id)?;
            rows.push((b, entities));
        }
        if done {
            break;
        }
        page += 1;
    }
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(b, entities)| {
                json!({
                    "id": b.id,
                    "status": b.status.as_str(),
                    "has_failures": b.has_failures,
                    "source": source_of(&b.source, &b.source_url),
                    "destination": destination_of(&b.destination),
                    "created_at": format_millis(b.created_at),
                    "updated_at": format_millis(b.updated_at),
                    "entities": entities.iter().map(|e| json!({
                        "entity_type": e.entity_type.as_str(),
                        "source_full_path": e.source_full_path,
                        "destination_full_path": e.destination_full_path(),
                        "status": e.status.as_str(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        crate::outln!("No migration has run in {}.", args.data.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "{:>4}  {:<24}  {:<10}  {:<8}  {:<30}  DESTINATION",
        "ID",
        "STARTED",
        "STATUS",
        "ENTITIES",
        "SOURCE"
    )?;
    for (b, entities) in &rows {
        let status = if b.has_failures && b.status.as_str() == "finished" {
            "finished*".to_string()
        } else {
            b.status.as_str().to_string()
        };
        let roots: Vec<String> = entities
            .iter()
            .filter(|e| e.parent_id.is_none())
            .map(|e| format!("{} -> {}", e.source_full_path, e.destination_full_path()))
            .collect();
        crate::outln!(
            "{:>4}  {:<24}  {:<10}  {:<8}  {:<30}  {} ({})",
            b.id,
            format_millis(b.created_at),
            status,
            entities.len(),
            source_of(&b.source, &b.source_url),
            destination_of(&b.destination),
            roots.join(", ")
        )?;
    }
    if rows
        .iter()
        .any(|(b, _)| b.has_failures && b.status.as_str() == "finished")
    {
        crate::outln!("* finished with failures: appliance status ID lists them")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let r = report(&args.data, args.id)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        crate::out!("{}", r.to_text())?;
    }
    Ok(super::exit_code(&r))
}

pub async fn write_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let r = report(&args.data, args.id)?;
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&r)? + "\n",
        ReportFormat::Csv => csv_of(&r)?,
        ReportFormat::Markdown => markdown_of(&r),
    };
    match &args.out {
        None => crate::out!("{text}")?,
        Some(path) => {
            if path.exists() && !args.force {
                bail!(
                    "--out {}: a file is already there; pass --force to replace it",
                    path.display()
                );
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Wrote the report of migration {} to {}",
                r.id,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per entity and relation, with how many of its records failed and were skipped.
fn csv_of(r: &Report) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "migration",
        "entity_type",
        "source_full_path",
        "destination_full_path",
        "entity_status",
        "relation",
        "relation_status",
        "extracted_via",
        "source",
        "fetched",
        "imported",
        "failed",
        "skipped",
    ])?;
    for e in &r.entities {
        for s in &e.stats {
            let failed = e
                .failures
                .iter()
                .filter(|f| f.relation == s.relation)
                .count();
            let skipped = e
                .skipped
                .iter()
                .filter(|f| f.relation == s.relation)
                .count();
            w.write_record([
                r.id.to_string(),
                e.entity_type.clone(),
                e.source_full_path.clone(),
                e.destination_full_path.clone(),
                e.status.clone(),
                s.relation.clone(),
                s.status.clone(),
                s.extracted_via.clone().unwrap_or_default(),
                s.stats.source.to_string(),
                s.stats.fetched.to_string(),
                s.stats.imported.to_string(),
                failed.to_string(),
                skipped.to_string(),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Escapes text for a Markdown table cell or list item.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn markdown_of(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let failures = r.failure_count();
    let _ = writeln!(s, "# Migration {}\n", r.id);
    let _ = writeln!(s, "- Source: {}", md(&r.source_url));
    let _ = writeln!(s, "- Status: {}", r.status);
    let _ = writeln!(s, "- Started: {}", r.created_at);
    let _ = writeln!(s, "- Last change: {}", r.updated_at);
    let _ = writeln!(s, "- Failures: {failures}");
    for e in &r.entities {
        let _ = writeln!(
            s,
            "\n## {} {} → {} ({})\n",
            e.entity_type,
            md(&e.source_full_path),
            md(&e.destination_full_path),
            e.status
        );
        let _ = writeln!(
            s,
            "| relation | source | fetched | imported | read through |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | --- |");
        for st in &e.stats {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md(&st.relation),
                st.stats.source,
                st.stats.fetched,
                st.stats.imported,
                st.extracted_via.as_deref().unwrap_or("")
            );
        }
        for (title, list) in [("Failures", &e.failures), ("Not migrated", &e.skipped)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n### {title}\n");
            for f in list {
                let what = match (&f.source_title, &f.source_url) {
                    (Some(t), Some(u)) => format!("[{}](<{}>)", md(t), u.replace('>', "%3E")),
                    (Some(t), None) => md(t),
                    (None, Some(u)) => format!("<{}>", u.replace('>', "%3E")),
                    (None, None) => String::new(),
                };
                let _ = writeln!(
                    s,
                    "- {} {}: {} ({}, correlation id {})",
                    md(&f.relation),
                    what,
                    md(&f.exception_message),
                    md(&f.exception_class),
                    md(&f.correlation_id)
                );
            }
        }
    }
    if !r.excluded.is_empty() {
        let _ = writeln!(s, "\n## Not migrated, on purpose\n");
        for kind in &r.excluded {
            for (why, items) in crate::relations::excluded::by_reason(kind.items) {
                let _ = writeln!(
                    s,
                    "- Of each {}: {} ({})",
                    kind.entity_type,
                    md(&items.join(", ")),
                    md(why.says())
                );
            }
        }
    }
    s
}

//! `appliance gc`: removes from a data directory what no run can use any more. An export stages its
//! pages under `<data>/exports/<id>` (several times the bundle's size) and removes them when it
//! finishes; one that was canceled, failed or timed out, or whose migration is gone from the store,
//! leaves them behind. A process killed while it staged a project leaves a temporary directory
//! (`.tmp*`) in the data directory. Neither is ever read again.
//!
//! What a run can still resume (an export created or started, paused or killed) is kept. The store
//! is held open while gc runs, so no other process (a `serve`, a migration) can be using the data
//! directory meanwhile: a temporary directory is then certainly abandoned.

use crate::model::Status;
use crate::store::Store;
use anyhow::{Context, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// The data directory to clean up (stop the service or run that uses it first).
    #[arg(long, default_value = "appliance-data")]
    pub data: PathBuf,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One directory gc looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    /// Bytes it holds.
    pub size: u64,
    /// Why it goes, or why it stays.
    pub why: String,
    pub removed: bool,
}

/// What gc found in a data directory: what goes and what stays, each with its reason.
#[derive(Debug, Default)]
pub struct Collected {
    pub garbage: Vec<Finding>,
    pub kept: Vec<Finding>,
}

impl Collected {
    pub fn freed(&self) -> u64 {
        self.garbage
            .iter()
            .filter(|f| f.removed)
            .map(|f| f.size)
            .sum()
    }
}

/// Finds (and unless `dry_run`, removes) what no run of `data` can use any more. Blocking I/O.
pub fn collect(data: &Path, dry_run: bool) -> anyhow::Result<Collected> {
    if !data.join("appliance.redb").is_file() {
        bail!(
            "{} holds no store: give the data directory of your runs with --data",
            data.display()
        );
    }
    // Held until the end: nothing else uses the directory while it is cleaned.
    let store = Store::open(data)?;
    let mut out = Collected::default();

    let exports = data.join("exports");
    for dir in subdirectories(&exports)? {
        let size = size_of(&dir);
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let verdict = match name.parse::<u64>() {
            Err(_) => Err("not an export's staging directory".to_string()),
            Ok(id) => match store.bulk_import(id) {
                Err(_) => Ok(format!(
                    "the staged pages of export {id}, which the store no longer has"
                )),
                Ok(bulk) => match bulk.status {
                    Status::Created | Status::Started => Err(format!(
                        "export {id} is {}: running it again resumes from these pages",
                        bulk.status.as_str()
                    )),
                    status => Ok(format!(
                        "the staged pages of export {id}, which is {}",
                        status.as_str()
                    )),
                },
            },
        };
        match verdict {
            Ok(why) => out.garbage.push(Finding {
                path: dir,
                size,
                why,
                removed: false,
            }),
            Err(why) => out.kept.push(Finding {
                path: dir,
                size,
                why,
                removed: false,
            }),
        }
    }
    for dir in subdirectories(data)? {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(".tmp") {
            out.garbage.push(Finding {
                size: size_of(&dir),
                path: dir,
                why: "a temporary directory a stopped process left behind".into(),
                removed: false,
            });
        }
    }
    if !dry_run {
        for f in &mut out.garbage {
            std::fs::remove_dir_all(&f.path)
                .with_context(|| format!("cannot remove {}", f.path.display()))?;
            f.removed = true;
        }
    }
    drop(store);
    Ok(out)
}

/// The directories directly under `dir` (none when it is missing), sorted.
fn subdirectories(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        // Not followed: a link is not ours to clean.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes of the files under `dir` (links not followed).
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let (data, dry_run) = (args.data.clone(), args.dry_run);
    let got = tokio::task::spawn_blocking(move || collect(&data, dry_run)).await??;
    if args.json {
        let row = |f: &Finding| json!({"path": f.path.display().to_string(), "size": f.size, "why": f.why, "removed": f.removed});
        let v = json!({
            "dry_run": dry_run,
            "removed": got.garbage.iter().map(row).collect::<Vec<_>>(),
            "kept": got.kept.iter().map(row).collect::<Vec<_>>(),
            "freed": got.freed(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "Would remove" } else { "Removed" };
    for f in &got.garbage {
        crate::outln!(
            "{verb} {} ({}): {}",
            f.path.display(),
            crate::ui::html::size(f.size),
            f.why
        )?;
    }
    for f in &got.kept {
        crate::outln!(
            "Kept {} ({}): {}",
            f.path.display(),
            crate::ui::html::size(f.size),
            f.why
        )?;
    }
    let total: u64 = got.garbage.iter().map(|f| f.size).sum();
    match (got.garbage.is_empty(), dry_run) {
        (true, _) => crate::outln!("Nothing to remove in {}.", args.data.display())?,
        (false, true) => crate::outln!(
            "{} would be freed; run without --dry-run to remove it.",
            crate::ui::html::size(total)
        )?,
        (false, false) => crate::outln!("{} freed.", crate::ui::html::size(got.freed()))?,
    }
    Ok(ExitCode::SUCCESS)
}

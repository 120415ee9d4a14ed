//! The bundles in the bundle directory (`bundle_dir`, default `<data>/bundles`): each with its size,
//! its time, and whether it verifies. Verifying reads every byte, so it runs when asked (the page's
//! Verify button), off the runtime, and its verdict is kept for as long as the files' sizes and
//! modification times stay the same.

use crate::bundle::{Bundle, verify};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// A bundle on disk: one file, or volumes `NAME.001`, `NAME.002`, ... shown as one.
#[derive(Clone, Debug, PartialEq)]
pub struct OnDisk {
    /// The name a replay is asked with (`configuration[bundle]`): the file, or the first volume.
    pub name: String,
    /// What the page shows: the file, or `NAME` for volumes.
    pub label: String,
    pub volumes: usize,
    pub bytes: u64,
    pub modified: SystemTime,
}

/// A top-level entity of a bundle: a group (with its subgroups and projects) or a project a replay
/// creates under the destination group it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub full_path: String,
    /// The last part of the full path: its path at the destination unless another is given.
    pub path: String,
    pub project: bool,
}

/// A verify's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Verifying,
    /// Complete and intact: what a replay makes of it.
    Intact {
        /// The top-level entities a replay creates.
        roots: Vec<Root>,
        entities: usize,
        records: u64,
    },
    /// Read, but some bytes or records are not what the manifest says.
    Damaged(Vec<String>),
    /// Not a bundle a replay takes (unreadable, no manifest, no group to replay).
    Refused(String),
}

/// A verdict with the size and time of the files it was made for.
type Stamped = (u64, SystemTime, Verdict);

/// Verdicts by bundle name.
#[derive(Clone, Default)]
pub struct Verdicts(Arc<Mutex<HashMap<String, Stamped>>>);

impl Verdicts {
    /// The verdict for `b` as it is now on disk; None when never verified or changed since.
    pub fn get(&self, b: &OnDisk) -> Option<Verdict> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&b.name)
            .filter(|(bytes, modified, _)| *bytes == b.bytes && *modified == b.modified)
            .map(|(_, _, v)| v.clone())
    }

    fn set(&self, b: &OnDisk, v: Verdict) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(b.name.clone(), (b.bytes, b.modified, v));
    }

    /// Starts verifying `b` in the background unless that is already under way; the page shows
    /// "Verifying" until the verdict is in.
    pub fn start(&self, dir: &Path, b: OnDisk) {
        if self.get(&b) == Some(Verdict::Verifying) {
            return;
        }
        self.set(&b, Verdict::Verifying);
        let (verdicts, path) = (self.clone(), dir.join(&b.name));
        tokio::task::spawn_blocking(move || {
            let verdict = check(path);
            tracing::info!(bundle = %b.name, verdict = ?verdict_word(&verdict), "bundle verified from the page");
            verdicts.set(&b, verdict);
        });
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Verifying => "verifying",
        Verdict::Intact { .. } => "intact",
        Verdict::Damaged(_) => "damaged",
        Verdict::Refused(_) => "refused",
    }
}

/// What `appliance verify` checks, in its words.
fn check(path: PathBuf) -> Verdict {
    let bundle = match Bundle::open(&[path]) {
        Ok(b) => b,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let roots = match bundle.manifest.replay_roots() {
        Ok(r) => r
            .iter()
            .map(|e| Root {
                full_path: e.source_full_path.clone(),
                path: e.path.clone(),
                project: e.entity_type == "project",
            })
            .collect(),
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let problems = verify(&bundle, None);
    if !problems.is_empty() {
        return Verdict::Damaged(problems.iter().map(|p| p.to_string()).collect());
    }
    Verdict::Intact {
        roots,
        entities: bundle.manifest.entities.len(),
        records: bundle.manifest.members.iter().map(|m| m.records).sum(),
    }
}

/// The bundles in `dir`, by name; an absent directory holds none. Hidden files and directories are
/// not bundles.
pub fn list(dir: &Path) -> std::io::Result<Vec<OnDisk>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut by_label: HashMap<String, OnDisk> = HashMap::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let meta = entry.metadata()?;
        if name.starts_with('.') || !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let volume = name
            .rsplit_once('.')
            .filter(|(_, n)| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()));
        let (label, first) = match volume {
            Some((stem, _)) => (stem.to_string(), format!("{stem}.001")),
            None => (name.clone(), name.clone()),
        };
        let b = by_label.entry(label.clone()).or_insert(OnDisk {
            name: first,
            label,
            volumes: 0,
            bytes: 0,
            modified,
        });
        b.volumes += 1;
        b.bytes += meta.len();
        b.modified = b.modified.max(modified);
    }
    let mut out: Vec<OnDisk> = by_label.into_values().collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_one_bundle_and_hidden_files_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bundle"), b"12345").unwrap();
        std::fs::write(dir.path().join("big.bundle.001"), b"12").unwrap();
        std::fs::write(dir.path().join("big.bundle.002"), b"345").unwrap();
        std::fs::write(dir.path().join(".partial"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let got = list(dir.path()).unwrap();
        let names: Vec<(&str, &str, usize, u64)> = got
            .iter()
            .map(|b| (b.label.as_str(), b.name.as_str(), b.volumes, b.bytes))
            .collect();
        assert_eq!(
            names,
            [
                ("a.bundle", "a.bundle", 1, 5),
                ("big.bundle", "big.bundle.001", 2, 5)
            ]
        );
        assert!(list(&dir.path().join("absent")).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_verdict_is_kept_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.bundle"), b"not a bundle").unwrap();
        let b = list(dir.path()).unwrap().remove(0);
        let verdicts = Verdicts::default();
        assert_eq!(verdicts.get(&b), None);
        verdicts.start(dir.path(), b.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let verdict = loop {
            match verdicts.get(&b) {
                Some(Verdict::Verifying) => {}
                Some(v) => break v,
                None => panic!("the verdict was lost"),
            }
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(matches!(verdict, Verdict::Refused(_)), "{verdict:?}");
        let mut changed = b.clone();
        changed.bytes += 1;
        assert_eq!(verdicts.get(&changed), None);
    }
}

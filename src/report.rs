//! What a migration did, for people and scripts: every entity with its status, per-relation stats and
//! failures. Built from the store only, so it reads the same during a run, after it, or after a restart.

use crate::model::{BulkImport, Entity, Failure, RelationStats, Tracker, format_millis};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Serialize)]
pub struct Report {
    pub id: u64,
    pub status: String,
    pub source_url: String,
    pub has_failures: bool,
    pub created_at: String,
    pub updated_at: String,
    pub entities: Vec<EntityReport>,
    /// The kinds of items left out on purpose, for each kind of entity the migration has
    /// (`crate::relations::excluded`).
    pub excluded: Vec<ExcludedOfKind>,
    /// What the run that printed this report wrote itself (a resumed or retried migration's earlier
    /// runs wrote the rest of the totals); None when read back from the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this_run: Option<ThisRun>,
}

/// What a migration leaves out of each entity of one kind.
#[derive(Debug, Serialize)]
pub struct ExcludedOfKind {
    pub entity_type: &'static str,
    pub items: &'static [crate::relations::excluded::Excluded],
}

/// What one run wrote: records it put at the destination per relation (not those an earlier run of
/// the same migration had put there, which a resume or a retry finds and counts as imported), and
/// the failures it recorded.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct ThisRun {
    pub imported: u64,
    /// Records written by this run, per relation (only relations it wrote to).
    pub relations: std::collections::BTreeMap<String, u64>,
    pub failures: usize,
}

impl ThisRun {
    pub fn new(relations: std::collections::BTreeMap<String, u64>, failures: usize) -> ThisRun {
        ThisRun {
            imported: relations.values().sum(),
            relations,
            failures,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EntityReport {
    pub id: u64,
    pub entity_type: String,
    pub source_full_path: String,
    pub destination_full_path: String,
    pub status: String,
    pub stats: Vec<RelationReport>,
    pub failures: Vec<FailureReport>,
    /// Records not migrated on purpose, with the reason (not failures).
    pub skipped: Vec<FailureReport>,
}

#[derive(Debug, Serialize)]
pub struct RelationReport {
    pub relation: String,
    pub status: String,
    pub extracted_via: Option<String>,
    #[serde(flatten)]
    pub stats: RelationStats,
    /// Why records of this relation were counted but not imported (`Relation::skip_reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FailureReport {
    pub relation: String,
    pub step: String,
    pub exception_class: String,
    pub exception_message: String,
    pub source_url: Option<String>,
    pub source_title: Option<String>,
    pub correlation_id: String,
}

impl Report {
    pub fn build(store: &Store, bulk_import_id: u64) -> Result<Report, StoreError> {
        let b: BulkImport = store.bulk_import(bulk_import_id)?;
        let mut entities = Vec::new();
        let mut kinds = Vec::new();
        for e in store.entities_of(bulk_import_id)? {
            if !kinds.contains(&e.entity_type) {
                kinds.push(e.entity_type);
            }
            entities.push(entity_report(store, &e)?);
        }
        kinds.sort_by_key(|k| k.as_str());
        Ok(Report {
            id: b.id,
            status: b.status.as_str().to_string(),
            source_url: b.source_url,
            has_failures: b.has_failures,
            created_at: format_millis(b.created_at),
            updated_at: format_millis(b.updated_at),
            entities,
            excluded: kinds
                .into_iter()
                .map(|kind| ExcludedOfKind {
                    entity_type: kind.as_str(),
                    items: crate::relations::excluded::of(kind),
                })
                .collect(),
            this_run: None,
        })
    }

    /// Sums of every relation over all entities: (relation, stats).
    pub fn totals(&self) -> Vec<(String, RelationStats)> {
        let mut out: Vec<(String, RelationStats)> = Vec::new();
        for r in self.entities.iter().flat_map(|e| &e.stats) {
            match out.iter_mut().find(|(name, _)| *name == r.relation) {
                Some((_, s)) => {
                    s.source += r.stats.source;
                    s.fetched += r.stats.fetched;
                    s.imported += r.stats.imported;
                }
                None => out.push((r.relation.clone(), r.stats)),
            }
        }
        out
    }

    pub fn failure_count(&self) -> usize {
        self.entities.iter().map(|e| e.failures.len()).sum()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Migration {} {} from {}{}",
            self.id,
            self.status,
            self.source_url,
            if self.has_failures {
                " (with failures)"
            } else {
                ""
            }
        );
        for e in &self.entities {
            let _ = writeln!(
                s,
                "\n  {} {} -> {}: {}",
                e.entity_type, e.source_full_path, e.destination_full_path, e.status
            );
            let _ = writeln!(
                s,
                "    {:<28} {:>8} {:>8} {:>8}",
                "relation", "source", "fetched", "imported"
            );
            for r in &e.stats {
                let _ = writeln!(
                    s,
                    "    {:<28} {:>8} {:>8} {:>8}",
                    r.relation, r.stats.source, r.stats.fetched, r.stats.imported
                );
                if let Some(note) = &r.note {
                    let _ = writeln!(s, "    {:<12} not imported: {note}", "");
                }
            }
            for f in &e.failures {
                let _ = writeln!(
                    s,
                    "    FAILED {} ({}): {} [{}] {}",
                    f.relation,
                    f.step,
                    f.exception_message,
                    f.exception_class,
                    f.source_title.as_deref().unwrap_or("")
                );
            }
        }
        for e in &self.entities {
            for k in &e.skipped {
                let _ = writeln!(
                    s,
                    "  SKIPPED {} {} `{}`: {}",
                    e.source_full_path,
                    k.relation,
                    k.source_title.as_deref().unwrap_or(""),
                    k.exception_message
                );
            }
        }
        if !self.excluded.is_empty() {
            let _ = writeln!(s, "\n  Not migrated, on purpose:");
            for kind in &self.excluded {
                for (why, items) in crate::relations::excluded::by_reason(kind.items) {
                    let _ = writeln!(
                        s,
                        "    of each {}: {} ({})",
                        kind.entity_type,
                        items.join(", "),
                        why.says()
                    );
                }
            }
        }
        let _ = writeln!(s, "\n  Totals:");
        for (relation, t) in self.totals() {
            let _ = writeln!(
                s,
                "    {:<28} {:>8} {:>8} {:>8}",
                relation, t.source, t.fetched, t.imported
            );
        }
        let _ = writeln!(s, "  Failures: {}", self.failure_count());
        if let Some(run) = &self.this_run {
            let per: Vec<String> = run
                .relations
                .iter()
                .map(|(relation, n)| format!("{relation} {n}"))
                .collect();
            let wrote = if run.imported == 0 {
                "wrote nothing new".to_string()
            } else {
                format!("wrote {} records ({})", run.imported, per.join(", "))
            };
            let _ = writeln!(s, "  This run: {wrote}; {} new failures", run.failures);
        }
        s
    }
}

fn entity_report(store: &Store, e: &Entity) -> Result<EntityReport, StoreError> {
    let trackers: Vec<Tracker> = store.trackers(e.id)?;
    let stages = crate::engine::stages::group_stages();
    let mut stats: Vec<RelationReport> = trackers
        .into_iter()
        .map(|t| RelationReport {
            note: stages
                .iter()
                .flatten()
                .find(|r| r.name() == t.relation)
                .and_then(|r| r.skip_reason())
                .map(str::to_string),
            relation: t.relation,
            status: t.status.as_str().to_string(),
            extracted_via: t.extracted_via,
            stats: t.stats,
        })
        .collect();
    let order: Vec<(u8, &str)> = match e.entity_type {
        crate::model::EntityType::Group => crate::engine::stages::group_relation_names(),
        crate::model::EntityType::Project => crate::engine::project::project_relation_names(),
    };
    stats.sort_by_key(|r| {
        order
            .iter()
            .position(|(_, n)| *n == r.relation)
            .unwrap_or(usize::MAX)
    });
    let failures = store
        .failures(e.id)?
        .into_iter()
        .map(failure_report)
        .collect();
    let skipped = store
        .skipped(e.id)?
        .into_iter()
        .map(failure_report)
        .collect();
    Ok(EntityReport {
        id: e.id,
        entity_type: e.entity_type.as_str().to_string(),
        source_full_path: e.source_full_path.clone(),
        destination_full_path: e.destination_full_path(),
        status: e.status.as_str().to_string(),
        stats,
        failures,
        skipped,
    })
}

fn failure_report(f: Failure) -> FailureReport {
    FailureReport {
        relation: f.relation,
        step: f.step,
        exception_class: f.exception_class,
        exception_message: f.exception_message,
        source_url: f.source_url,
        source_title: f.source_title,
        correlation_id: f.correlation_id,
    }
}

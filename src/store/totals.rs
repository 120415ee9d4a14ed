//! Totals over every migration the store holds, read in one transaction: what `/metrics` reports. The
//! counts are the ones the reports and the API show (tracker stats, failure and skipped rows), so a
//! scrape can never disagree with them.

use super::{BULK_IMPORTS, FAILURES, Result, SKIPPED, Store, TRACKERS, decode};
use crate::model::{BulkImport, Failure, Status, Tracker};
use redb::ReadableTable;
use std::collections::BTreeMap;

/// What every migration in the store did, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records per relation: written to (or, for an export, into) the destination.
    pub imported: BTreeMap<String, u64>,
    /// Failure rows per relation: records a destination refused, or a relation that could not be read.
    pub failed: BTreeMap<String, u64>,
    /// Skipped rows per relation: records not migrated on purpose (an unmapped member, a project).
    pub skipped: BTreeMap<String, u64>,
    /// Bulk imports per status.
    pub bulk_imports: BTreeMap<&'static str, u64>,
}

impl Store {
    pub fn totals(&self) -> Result<Totals> {
        let tx = self.read()?;
        let mut t = Totals::default();
        for row in tx.open_table(TRACKERS)?.iter()? {
            let tracker: Tracker = decode(row?.1.value())?;
            *t.imported.entry(tracker.relation).or_default() += tracker.stats.imported;
        }
        for (table, into) in [(FAILURES, &mut t.failed), (SKIPPED, &mut t.skipped)] {
            for row in tx.open_table(table)?.iter()? {
                let f: Failure = decode(row?.1.value())?;
                *into.entry(f.relation).or_default() += 1;
            }
        }
        for status in [
            Status::Created,
            Status::Started,
            Status::Finished,
            Status::Failed,
            Status::Canceled,
            Status::Timeout,
        ] {
            t.bulk_imports.insert(status.as_str(), 0);
        }
        for row in tx.open_table(BULK_IMPORTS)?.iter()? {
            let b: BulkImport = decode(row?.1.value())?;
            *t.bulk_imports.entry(b.status.as_str()).or_default() += 1;
        }
        Ok(t)
    }
}

//! Failure rows: one per record (or pipeline) that could not be migrated, in the order they happened.

use super::{FAILURES, Result, SKIPPED, Store, decode};
use crate::model::Failure;

impl Store {
    pub fn failures(&self, entity_id: u64) -> Result<Vec<Failure>> {
        let tx = self.read()?;
        let table = tx.open_table(FAILURES)?;
        let mut out = Vec::new();
        for row in table.range((entity_id, 0)..(entity_id + 1, 0))? {
            let (_, v) = row?;
            out.push(decode::<Failure>(v.value())?);
        }
        Ok(out)
    }

    /// Records deliberately not migrated (an unmapped member ...), with the reason.
    pub fn skipped(&self, entity_id: u64) -> Result<Vec<Failure>> {
        let tx = self.read()?;
        let table = tx.open_table(SKIPPED)?;
        let mut out = Vec::new();
        for row in table.range((entity_id, 0)..(entity_id + 1, 0))? {
            let (_, v) = row?;
            out.push(decode::<Failure>(v.value())?);
        }
        Ok(out)
    }
}

/// The log line of a failure once it is recorded: its correlation id (the one the API and reports
/// show) with what failed, so an operator finds the line from a failure row and the row from a line.
pub(super) fn log_recorded(f: &Failure) {
    tracing::warn!(
        correlation_id = %f.correlation_id,
        entity_id = f.entity_id,
        relation = %f.relation,
        exception_class = %f.exception_class,
        source_url = f.source_url.as_deref().unwrap_or(""),
        "failure recorded: {}",
        f.exception_message
    );
}

//! Relation trackers: where each pipeline of an entity stands, and the one transaction that commits a
//! loaded page together with its id map entries, failures and counts.

use super::imports::flag_failures;
use super::{
    FAILURES, ID_MAP, MappingScope, Result, SKIPPED, Store, TRACKERS, decode, encode, next_id,
};
use crate::model::{Failure, Millis, RelationStats, Status, Tracker};
use redb::ReadableTable;

/// Everything one loaded page changes, committed atomically by [`Store::commit_page`].
#[derive(Debug, Default)]
pub struct PageCommit {
    /// The cursor of the page after this one; None when this was the last page.
    pub next_cursor: Option<String>,
    pub last_page: bool,
    /// Total reported by the source, when this page told it.
    pub source_total: Option<u64>,
    pub fetched: u64,
    /// (source id, destination id) of every record now present at the destination.
    pub imported: Vec<(String, u64)>,
    pub failures: Vec<Failure>,
    /// Records deliberately not loaded, with the reason (reported; not failures).
    pub skipped: Vec<Failure>,
}

impl Store {
    pub fn trackers(&self, entity_id: u64) -> Result<Vec<Tracker>> {
        let tx = self.read()?;
        let table = tx.open_table(TRACKERS)?;
        let mut out = Vec::new();
        for row in table.range((entity_id, "")..(entity_id + 1, ""))? {
            let (_, v) = row?;
            out.push(decode::<Tracker>(v.value())?);
        }
        Ok(out)
    }

    pub fn tracker(&self, entity_id: u64, relation: &str) -> Result<Option<Tracker>> {
        let tx = self.read()?;
        let table = tx.open_table(TRACKERS)?;
        let value = table.get((entity_id, relation))?;
        value.map(|v| decode(v.value())).transpose()
    }

    /// Returns the tracker of a relation, creating it (status created) on first use.
    pub fn ensure_tracker(
        &self,
        entity_id: u64,
        relation: &str,
        stage: u8,
        now: Millis,
    ) -> Result<Tracker> {
        if let Some(t) = self.tracker(entity_id, relation)? {
            return Ok(t);
        }
        let t = Tracker {
            entity_id,
            relation: relation.to_string(),
            stage,
            status: Status::Created,
            cursor: None,
            in_doubt: false,
            stats: RelationStats::default(),
            extracted_via: None,
            pages: 0,
            updated_at: now,
        };
        self.put_tracker(&t)?;
        Ok(t)
    }

    pub fn put_tracker(&self, t: &Tracker) -> Result<()> {
        let tx = self.write()?;
        tx.open_table(TRACKERS)?
            .insert((t.entity_id, t.relation.as_str()), encode(t).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Records how a relation's records were read, for one that is read in full before it loads
    /// (it travels in the archive that creates its project).
    pub fn record_via(&self, entity_id: u64, relation: &str, via: &str) -> Result<Tracker> {
        self.change_tracker(entity_id, relation, |t| {
            t.extracted_via = Some(via.to_string());
        })
    }

    /// Marks the current page of a tracker as being loaded. If the process dies before
    /// [`Store::commit_page`], the next attempt knows the page's records may already exist.
    pub fn begin_page(
        &self,
        entity_id: u64,
        relation: &str,
        via: &str,
        now: Millis,
    ) -> Result<Tracker> {
        self.change_tracker(entity_id, relation, |t| {
            t.in_doubt = true;
            t.status = Status::Started;
            t.extracted_via = Some(via.to_string());
            t.updated_at = now;
        })
    }

    /// Commits one loaded page: tracker position and counts, id map entries and failures together.
    pub fn commit_page(
        &self,
        entity_id: u64,
        relation: &str,
        scope: &MappingScope,
        page: PageCommit,
        now: Millis,
    ) -> Result<Tracker> {
        let tx = self.write()?;
        let tracker = update_tracker(&tx, entity_id, relation, |t| {
            t.cursor = page.next_cursor.clone();
            t.in_doubt = false;
            if let Some(total) = page.source_total {
                t.stats.source = total;
            }
            t.stats.fetched += page.fetched;
            t.pages += 1;
            t.stats.imported += page.imported.len() as u64;
            if page.last_page {
                t.status = Status::Finished;
                // A source that gave no total (or a wrong one) is described by what it actually returned.
                if page.source_total.is_none() && t.stats.source < t.stats.fetched {
                    t.stats.source = t.stats.fetched;
                }
            }
            t.updated_at = now;
        })?;
        {
            let mut map = tx.open_table(ID_MAP)?;
            for (source_id, dest_id) in &page.imported {
                map.insert((scope.as_str(), relation, source_id.as_str()), *dest_id)?;
            }
        }
        if !page.skipped.is_empty() {
            let mut skipped = tx.open_table(SKIPPED)?;
            for f in &page.skipped {
                let seq = next_id(&tx, "skipped_id")?;
                skipped.insert((entity_id, seq), encode(f).as_slice())?;
            }
        }
        if !page.failures.is_empty() {
            let mut failures = tx.open_table(FAILURES)?;
            for f in &page.failures {
                let seq = next_id(&tx, "failure_id")?;
                failures.insert((entity_id, seq), encode(f).as_slice())?;
            }
            drop(failures);
            flag_failures(&tx, entity_id, now)?;
        }
        tx.commit()?;
        page.failures.iter().for_each(super::failures::log_recorded);
        Ok(tracker)
    }

    /// Ends a tracker with `status` (failed when its extraction could not go on), recording why.
    pub fn end_tracker(
        &self,
        entity_id: u64,
        relation: &str,
        status: Status,
        failure: Option<Failure>,
        now: Millis,
    ) -> Result<Tracker> {
        let tx = self.write()?;
        let t = update_tracker(&tx, entity_id, relation, |t| {
            t.status = status;
            t.updated_at = now;
        })?;
        if let Some(f) = &failure {
            let seq = next_id(&tx, "failure_id")?;
            tx.open_table(FAILURES)?
                .insert((entity_id, seq), encode(f).as_slice())?;
            flag_failures(&tx, entity_id, now)?;
        }
        tx.commit()?;
        failure.iter().for_each(super::failures::log_recorded);
        Ok(t)
    }

    fn change_tracker(
        &self,
        entity_id: u64,
        relation: &str,
        change: impl FnOnce(&mut Tracker),
    ) -> Result<Tracker> {
        let tx = self.write()?;
        let t = update_tracker(&tx, entity_id, relation, change)?;
        tx.commit()?;
        Ok(t)
    }
}

/// Reads a tracker inside an open write transaction, applies `change` and writes it back.
fn update_tracker(
    tx: &redb::WriteTransaction,
    entity_id: u64,
    relation: &str,
    change: impl FnOnce(&mut Tracker),
) -> Result<Tracker> {
    let mut trackers = tx.open_table(TRACKERS)?;
    let mut t: Tracker = match trackers.get((entity_id, relation))? {
        Some(v) => decode(v.value())?,
        None => {
            return Err(super::StoreError::NotFound(format!(
                "tracker {entity_id}/{relation}"
            )));
        }
    };
    change(&mut t);
    trackers.insert((entity_id, relation), encode(&t).as_slice())?;
    Ok(t)
}

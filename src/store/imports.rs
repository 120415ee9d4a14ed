//! Bulk imports and their entities: creation, status changes and the listings the API pages through.

use super::{BULK_IMPORTS, ENTITIES, Result, Store, StoreError, decode, encode, next_id};
use crate::model::{
    BulkImport, DestinationKind, Entity, EntityRequest, Millis, SourceKind, Status,
};
use crate::user_map::UserMapping;
use redb::{ReadableTable, WriteTransaction};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

/// Filtering and paging of a listing, as GitLab's `page`, `per_page`, `sort` and `status`.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub sort: SortOrder,
    pub page: u64,
    pub per_page: u64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: None,
            sort: SortOrder::Desc,
            page: 1,
            per_page: 20,
        }
    }
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct EntityFilter {
    pub bulk_import_id: Option<u64>,
}

fn paginate<T>(mut all: Vec<T>, created: impl Fn(&T) -> (Millis, u64), q: &ListQuery) -> Page<T> {
    all.sort_by_key(|t| created(t));
    if q.sort == SortOrder::Desc {
        all.reverse();
    }
    let total = all.len() as u64;
    let per_page = q.per_page.max(1);
    let skip = (q.page.max(1) - 1).saturating_mul(per_page) as usize;
    let items = all.into_iter().skip(skip).take(per_page as usize).collect();
    Page { items, total }
}

impl Store {
    /// Creates a bulk import and its entities in one transaction, and seals the source token with it.
    pub fn create_bulk_import(
        &self,
        source_url: &str,
        source: SourceKind,
        destination: DestinationKind,
        sealed_token: &[u8],
        entities: &[EntityRequest],
        now: Millis,
    ) -> Result<(BulkImport, Vec<Entity>)> {
        self.create_bulk_import_mapped(
            source_url,
            source,
            destination,
            sealed_token,
            entities,
            &[],
            now,
        )
    }

    /// [`Store::create_bulk_import`] with an explicit user map, kept with the bulk import.
    #[allow(clippy::too_many_arguments)]
    pub fn create_bulk_import_mapped(
        &self,
        source_url: &str,
        source: SourceKind,
        destination: DestinationKind,
        sealed_token: &[u8],
        entities: &[EntityRequest],
        user_map: &[UserMapping],
        now: Millis,
    ) -> Result<(BulkImport, Vec<Entity>)> {
        let tx = self.write()?;
        let id = next_id(&tx, "bulk_import_id")?;
        let bulk = BulkImport {
            id,
            status: Status::Created,
            source_type: "gitlab".into(),
            source_url: source_url.to_string(),
            source,
            destination,
            created_at: now,
            updated_at: now,
            has_failures: false,
        };
        tx.open_table(BULK_IMPORTS)?
            .insert(id, encode(&bulk).as_slice())?;
        tx.open_table(super::SEALED_TOKENS)?
            .insert(id, sealed_token)?;
        if !user_map.is_empty() {
            tx.open_table(super::USER_MAPS)?
                .insert(id, encode(&user_map.to_vec()).as_slice())?;
        }
        let mut created = Vec::with_capacity(entities.len());
        for req in entities {
            created.push(insert_entity(&tx, id, req, None, now)?);
        }
        tx.commit()?;
        Ok((bulk, created))
    }

    pub fn bulk_import(&self, id: u64) -> Result<BulkImport> {
        let tx = self.read()?;
        let table = tx.open_table(BULK_IMPORTS)?;
        let row = table
            .get(id)?
            .ok_or_else(|| StoreError::NotFound(format!("bulk import {id}")))?;
        decode(row.value())
    }

    pub fn list_bulk_imports(&self, q: &ListQuery) -> Result<Page<BulkImport>> {
        let tx = self.read()?;
        let table = tx.open_table(BULK_IMPORTS)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            let b: BulkImport = decode(v.value())?;
            if q.status.is_none_or(|s| s == b.status) {
                all.push(b);
            }
        }
        Ok(paginate(all, |b| (b.created_at, b.id), q))
    }

    /// Bulk imports that were created or started and not finished: the engine resumes these at start.
    pub fn unfinished_bulk_imports(&self) -> Result<Vec<BulkImport>> {
        let q = ListQuery {
            per_page: u64::MAX,
            sort: SortOrder::Asc,
            ..Default::default()
        };
        Ok(self
            .list_bulk_imports(&q)?
            .items
            .into_iter()
            .filter(|b| !b.status.is_terminal())
            .collect())
    }

    /// Moves a bulk import to `status`, unless it already reached a terminal state (a cancel wins).
    /// Returns the record as it is after the call.
    pub fn set_bulk_import_status(
        &self,
        id: u64,
        status: Status,
        now: Millis,
    ) -> Result<BulkImport> {
        let tx = self.write()?;
        let bulk = update_record(
            &tx,
            BULK_IMPORTS,
            id,
            "bulk import",
            |b: &mut BulkImport| {
                if b.status.is_terminal() || b.status == status {
                    return false;
                }
                b.status = status;
                b.updated_at = now;
                true
            },
        )?;
        tx.commit()?;
        Ok(bulk)
    }

    /// Cancels a bulk import and every entity of it that has not ended, in one transaction.
    pub fn cancel_bulk_import(&self, id: u64, now: Millis) -> Result<BulkImport> {
        let tx = self.write()?;
        let bulk = update_record(
            &tx,
            BULK_IMPORTS,
            id,
            "bulk import",
            |b: &mut BulkImport| {
                if b.status.is_terminal() {
                    return false;
                }
                b.status = Status::Canceled;
                b.updated_at = now;
                true
            },
        )?;
        {
            let mut entities = tx.open_table(ENTITIES)?;
            let mut changed = Vec::new();
            for row in entities.iter()? {
                let (_, v) = row?;
                let mut e: Entity = decode(v.value())?;
                if e.bulk_import_id == id && !e.status.is_terminal() {
                    e.status = Status::Canceled;
                    e.updated_at = now;
                    changed.push(e);
                }
            }
            for e in changed {
                entities.insert(e.id, encode(&e).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(bulk)
    }

    pub fn entity(&self, id: u64) -> Result<Entity> {
        let tx = self.read()?;
        let table = tx.open_table(ENTITIES)?;
        let row = table
            .get(id)?
            .ok_or_else(|| StoreError::NotFound(format!("entity {id}")))?;
        decode(row.value())
    }

    pub fn list_entities(&self, filter: EntityFilter, q: &ListQuery) -> Result<Page<Entity>> {
        let tx = self.read()?;
        let table = tx.open_table(ENTITIES)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            let e: Entity = decode(v.value())?;
            if filter.bulk_import_id.is_none_or(|b| b == e.bulk_import_id)
                && q.status.is_none_or(|s| s == e.status)
            {
                all.push(e);
            }
        }
        Ok(paginate(all, |e| (e.created_at, e.id), q))
    }

    /// Every entity of a bulk import, oldest first.
    pub fn entities_of(&self, bulk_import_id: u64) -> Result<Vec<Entity>> {
        let q = ListQuery {
            per_page: u64::MAX,
            sort: SortOrder::Asc,
            ..Default::default()
        };
        let filter = EntityFilter {
            bulk_import_id: Some(bulk_import_id),
        };
        Ok(self.list_entities(filter, &q)?.items)
    }

    /// Adds an entity discovered during a migration (a subgroup), unless the bulk import already has one
    /// for the same source path: re-running the discovery after a crash must not add it twice.
    pub fn add_child_entity(
        &self,
        bulk_import_id: u64,
        parent_id: u64,
        req: &EntityRequest,
        now: Millis,
    ) -> Result<Entity> {
        let tx = self.write()?;
        {
            let table = tx.open_table(ENTITIES)?;
            for row in table.iter()? {
                let (_, v) = row?;
                let e: Entity = decode(v.value())?;
                if e.bulk_import_id == bulk_import_id
                    && e.source_full_path == req.source_full_path
                    && e.entity_type == req.entity_type
                {
                    return Ok(e);
                }
            }
        }
        let e = insert_entity(&tx, bulk_import_id, req, Some(parent_id), now)?;
        tx.commit()?;
        Ok(e)
    }

    /// Applies `change` to an entity and stores it, unless the entity already ended (a cancel wins).
    pub fn update_entity(
        &self,
        id: u64,
        now: Millis,
        change: impl FnOnce(&mut Entity),
    ) -> Result<Entity> {
        let tx = self.write()?;
        let e = update_record(&tx, ENTITIES, id, "entity", |e: &mut Entity| {
            if e.status.is_terminal() {
                return false;
            }
            change(e);
            e.updated_at = now;
            true
        })?;
        tx.commit()?;
        Ok(e)
    }

    /// The explicit user map a bulk import was started with (empty when none).
    pub fn user_map(&self, bulk_import_id: u64) -> Result<Vec<UserMapping>> {
        let tx = self.read()?;
        let table = tx.open_table(super::USER_MAPS)?;
        let value = table.get(bulk_import_id)?;
        value
            .map(|v| decode(v.value()))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub fn sealed_token(&self, bulk_import_id: u64) -> Result<Vec<u8>> {
        let tx = self.read()?;
        let table = tx.open_table(super::SEALED_TOKENS)?;
        let row = table.get(bulk_import_id)?.ok_or_else(|| {
            StoreError::NotFound(format!("token of bulk import {bulk_import_id}"))
        })?;
        Ok(row.value().to_vec())
    }
}

fn insert_entity(
    tx: &WriteTransaction,
    bulk_import_id: u64,
    req: &EntityRequest,
    parent_id: Option<u64>,
    now: Millis,
) -> Result<Entity> {
    let id = next_id(tx, "entity_id")?;
    let e = Entity {
        id,
        bulk_import_id,
        status: Status::Created,
        entity_type: req.entity_type,
        source_full_path: req.source_full_path.clone(),
        source_xid: None,
        destination_slug: req.destination_slug.clone(),
        destination_namespace: req.destination_namespace.clone(),
        parent_id,
        namespace_id: None,
        project_id: None,
        migrate_projects: req.migrate_projects,
        migrate_memberships: req.migrate_memberships,
        created_at: now,
        updated_at: now,
        has_failures: false,
    };
    tx.open_table(ENTITIES)?.insert(id, encode(&e).as_slice())?;
    Ok(e)
}

/// Marks an entity and its bulk import as having failures, inside an open transaction.
pub(crate) fn flag_failures(tx: &WriteTransaction, entity_id: u64, now: Millis) -> Result<()> {
    let flag = |has_failures: &mut bool, updated_at: &mut Millis| {
        let changed = !*has_failures;
        *has_failures = true;
        if changed {
            *updated_at = now;
        }
        changed
    };
    let e = update_record(tx, ENTITIES, entity_id, "entity", |e: &mut Entity| {
        flag(&mut e.has_failures, &mut e.updated_at)
    })?;
    update_record(
        tx,
        BULK_IMPORTS,
        e.bulk_import_id,
        "bulk import",
        |b: &mut BulkImport| flag(&mut b.has_failures, &mut b.updated_at),
    )?;
    Ok(())
}

/// Reads the record `id` of `table` inside an open write transaction and lets `change` edit it; the
/// record is written back only when `change` says it changed. Returns the record as it is after.
fn update_record<T: serde::Serialize + serde::de::DeserializeOwned>(
    tx: &WriteTransaction,
    table: redb::TableDefinition<u64, &[u8]>,
    id: u64,
    what: &str,
    change: impl FnOnce(&mut T) -> bool,
) -> Result<T> {
    let mut t = tx.open_table(table)?;
    let mut record: T = match t.get(id)? {
        Some(v) => decode(v.value())?,
        None => return Err(StoreError::NotFound(format!("{what} {id}"))),
    };
    if change(&mut record) {
        t.insert(id, encode(&record).as_slice())?;
    }
    Ok(record)
}

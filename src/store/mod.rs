//! The embedded redb store: every table and the schema version are defined here, one file per kind of
//! record. Values are postcard-encoded. The store is synchronous: async callers go through
//! `tokio::task::spawn_blocking`. It knows nothing of HTTP or forges.
//!
//! Invariant: a change of progress and the records it describes (id map entries, failures, counts) are
//! written in one transaction, so a crash can never leave a record counted but unmapped or the reverse.

mod failures;
mod id_map;
mod imports;
mod totals;
mod trackers;

pub use id_map::MappingScope;
pub use imports::{EntityFilter, ListQuery, Page, SortOrder};
pub use totals::Totals;
pub use trackers::PageCommit;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};
use std::path::Path;
use std::sync::Arc;

/// Bumped whenever a table's key or value layout changes; an older binary refuses a newer store.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const BULK_IMPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("bulk_imports");
pub(crate) const ENTITIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entities");
pub(crate) const TRACKERS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("trackers");
pub(crate) const FAILURES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("failures");
pub(crate) const ID_MAP: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("id_map");
pub(crate) const SEALED_TOKENS: TableDefinition<u64, &[u8]> = TableDefinition::new("sealed_tokens");
pub(crate) const SKIPPED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("skipped");
pub(crate) const USER_MAPS: TableDefinition<u64, &[u8]> = TableDefinition::new("user_maps");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the data directory {dir} is in use by another appliance process (its store {path} is locked); stop that process or choose another --data directory"
    )]
    InUse { dir: String, path: String },
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: redb::DatabaseError,
    },
    #[error(
        "the store at {path} has schema version {found}, newer than this appliance understands ({SCHEMA_VERSION}); upgrade the appliance"
    )]
    NewerSchema { path: String, found: u64 },
    #[error("store error: {0}")]
    Redb(#[from] redb::Error),
    #[error("a stored record is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("a store task failed: {0}")]
    Task(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) `<dir>/appliance.redb` and makes sure every table exists.
    pub fn open(dir: &Path) -> Result<Store> {
        let path = dir.join("appliance.redb");
        let db = Database::create(&path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                dir: dir.display().to_string(),
                path: path.display().to_string(),
            },
            source => StoreError::Open {
                path: path.display().to_string(),
                source,
            },
        })?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: path.display().to_string(),
                        found: v,
                    });
                }
                _ => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            tx.open_table(BULK_IMPORTS)?;
            tx.open_table(ENTITIES)?;
            tx.open_table(TRACKERS)?;
            tx.open_table(FAILURES)?;
            tx.open_table(ID_MAP)?;
            tx.open_table(SEALED_TOKENS)?;
            tx.open_table(SKIPPED)?;
            tx.open_table(USER_MAPS)?;
        }
        tx.commit()?;
        Ok(Store { db: Arc::new(db) })
    }

    /// Reads the schema version back: the store answers reads (for the readiness probe).
    pub fn check(&self) -> Result<()> {
        let tx = self.read()?;
        let meta = tx.open_table(META)?;
        match meta.get("schema_version")? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound("the store's schema_version".into())),
        }
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    pub(crate) fn write(&self) -> Result<redb::WriteTransaction> {
        Ok(self.db.begin_write()?)
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data structures into a Vec cannot fail.
    postcard::to_allocvec(value).expect("postcard encoding of a plain struct")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(postcard::from_bytes(bytes)?)
}

/// Takes the next value of a named counter inside an open write transaction.
pub(crate) fn next_id(tx: &redb::WriteTransaction, counter: &str) -> Result<u64> {
    let mut meta = tx.open_table(META)?;
    let next = meta.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(counter, next)?;
    Ok(next)
}

#[cfg(test)]
mod tests;

//! Where relation records go: a live GitLab destination now, a bundle next. A sink never reads a source.

pub mod bundle;
pub mod live;

use crate::engine::EngineError;
use crate::model::{BulkImport, Entity};
use crate::relations::{EntityContext, LoadError, Relation};
use crate::store::Store;
use async_trait::async_trait;
use serde_json::Value;

pub use live::LiveSink;

#[async_trait]
pub trait Sink: Send + Sync {
    /// Identifies the destination in id-map scopes (its base URL, or a bundle's identity).
    fn identity(&self) -> String;
    /// Writes one record and returns the id it has at the destination.
    async fn load(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError>;

    /// Called after every record of a page was loaded and before the page is committed to the store:
    /// a sink that writes in batches makes page `page` (0-based) of the relation durable here.
    async fn end_page(
        &self,
        _relation: &dyn Relation,
        _ctx: &EntityContext,
        _page: u64,
    ) -> Result<(), LoadError> {
        Ok(())
    }

    /// Called once when every entity of the bulk import has ended and it was not canceled: a bundle
    /// sink writes the manifest and packs the bundle here.
    async fn finish(
        &self,
        _store: &Store,
        _bulk: &BulkImport,
        _entities: &[Entity],
    ) -> Result<(), EngineError> {
        Ok(())
    }
}

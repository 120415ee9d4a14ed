//! Where relation records go: a live GitLab destination now, a bundle next. A sink never reads a source.

pub mod live;

use crate::relations::{EntityContext, LoadError, Relation};
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
}

//! A live GitLab destination: each relation loads its records through the destination's REST API.

use super::Sink;
use crate::forge::GitLab;
use crate::relations::{EntityContext, LoadError, Relation};
use async_trait::async_trait;
use serde_json::Value;

pub struct LiveSink {
    pub gitlab: GitLab,
}

#[async_trait]
impl Sink for LiveSink {
    fn identity(&self) -> String {
        crate::forge::base_string(self.gitlab.client.base())
    }

    async fn load(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        relation.load(&self.gitlab, ctx, record, in_doubt).await
    }
}

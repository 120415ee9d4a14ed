//! Epic order: the order of each epic's child epics (GitLab's `relative_position`, the order the epic
//! tree and roadmap show). The REST entity does not expose positions, but GitLab lists an epic's children
//! in that order (`GET /groups/:id/epics/:iid/epics`), and moves one between its siblings with
//! `PUT /groups/:id/epics/:iid/epics/:child_id` (`move_before_id`: the sibling that ends up before it).
//!
//! Runs once the group's epics and their parent links exist. The record is a source epic with its
//! children in order; loading places each migrated child right after the one before it, so running it
//! twice changes nothing. Children in subgroups are migrated after this group and are linked after the
//! ordered ones; the order of top-level epics on epic boards is board-specific and only GraphQL can set
//! it, so neither is reproduced.

use super::epic_links::{epic_url, migrated_epic};
use super::{EntityContext, Extraction, LoadError, Relation, pick};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct EpicOrder;

#[async_trait]
impl Relation for EpicOrder {
    fn name(&self) -> &'static str {
        "epic_order"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::EpicsPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        super::epics::Epics.extraction(ctx)
    }
    fn transform(&self, rest: Value) -> Value {
        Value::Object(pick(&rest, &["id", "iid", "title", "group_id"]))
    }
    async fn enrich(
        &self,
        source: &GitLab,
        ctx: &EntityContext,
        record: &mut Value,
    ) -> Result<(), ForgeError> {
        let Some(iid) = record.get("iid").and_then(Value::as_u64) else {
            return Ok(());
        };
        let children = source
            .list_all(
                &format!("groups/{}/epics/{iid}/epics", ctx.source_id()),
                &[],
            )
            .await?;
        record["children"] = Value::Array(
            children
                .iter()
                .map(|c| Value::Object(pick(c, &["id", "iid", "title", "group_id"])))
                .collect(),
        );
        Ok(())
    }
    fn source_url(&self, ctx: &EntityContext, record: &Value) -> Option<String> {
        epic_url(ctx, record)
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let parent = migrated_epic(ctx, record, "its children cannot be ordered").await?;
        let children = record["children"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if children.len() < 2 {
            return Ok(parent);
        }
        let group = ctx.destination_id()?;
        let path = format!("groups/{group}/epics/{parent}/epics");
        let present = dest.list_all(&path, &[]).await?;
        // Each child this group migrated, as its destination id, in the source's order.
        let mut wanted = Vec::new();
        for child in children {
            let child_source = child.get("id").map(Value::to_string).unwrap_or_default();
            let Some(iid) = ctx.ids.get("epics", &child_source).await? else {
                continue;
            };
            let found = present.iter().find(|e| {
                e.get("iid").and_then(Value::as_u64) == Some(iid)
                    && e.get("group_id").and_then(Value::as_u64) == Some(group)
            });
            if let Some(id) = found.and_then(id_of) {
                wanted.push(id);
            }
        }
        let current: Vec<u64> = present
            .iter()
            .filter_map(id_of)
            .filter(|id| wanted.contains(id))
            .collect();
        if current != wanted {
            for pair in wanted.windows(2) {
                dest.client
                    .put(
                        &format!("{path}/{}", pair[1]),
                        &json!({ "move_before_id": pair[0] }),
                    )
                    .await?;
            }
        }
        Ok(parent)
    }
}

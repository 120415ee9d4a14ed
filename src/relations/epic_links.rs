//! Epic parent links, set once every epic of the group exists (a child may be listed before its
//! parent). Reads the same source list as `epics` and, for each epic with a parent, points the child's
//! destination epic at the parent's. Setting a parent is a PUT, so running it twice changes nothing.
//! A parent may be in an ancestor group (migrated by an ancestor entity); one outside the migrated
//! tree is reported as skipped.

use super::{EntityContext, Extraction, LoadError, Relation, pick, text};
use crate::forge::GitLab;
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct EpicLinks;

/// The source web page of the epic a record is about.
pub(super) fn epic_url(ctx: &EntityContext, record: &Value) -> Option<String> {
    Some(format!(
        "{}/-/epics/{}",
        ctx.source_web_url(),
        record.get("iid")?.as_u64()?
    ))
}

/// The destination iid of the epic a record (keyed by the source epic's `id`) is about; an epic this
/// migration did not create is skipped, saying what could not be done (`consequence`).
pub(super) async fn migrated_epic(
    ctx: &EntityContext,
    record: &Value,
    consequence: &str,
) -> Result<u64, LoadError> {
    let source = record.get("id").map(Value::to_string).unwrap_or_default();
    match ctx.ids.get("epics", &source).await? {
        Some(iid) => Ok(iid),
        None => Err(LoadError::skipped(format!(
            "epic `{}` was not migrated, so {consequence}",
            text(record, "title")
        ))),
    }
}

#[async_trait]
impl Relation for EpicLinks {
    fn name(&self) -> &'static str {
        "epic_links"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::EpicsPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        super::epics::Epics.extraction(ctx)
    }
    fn transform(&self, rest: Value) -> Value {
        Value::Object(pick(
            &rest,
            &["id", "iid", "title", "parent_id", "parent_iid"],
        ))
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
        let child = migrated_epic(ctx, record, "its parent cannot be set").await?;
        let Some(parent_source) = record.get("parent_id").filter(|p| !p.is_null()) else {
            return Ok(child);
        };
        let found = ctx
            .ids
            .get_in_tree("epics", &parent_source.to_string())
            .await?;
        let Some((parent, parent_group)) = found else {
            return Err(LoadError::skipped(format!(
                "the parent of epic `{}` is outside the migrated groups or was not migrated; link it by hand",
                text(record, "title")
            )));
        };
        let group = ctx.destination_id()?;
        let parent_group = parent_group.unwrap_or(group);
        let parent_epic = dest
            .client
            .get(&format!("groups/{parent_group}/epics/{parent}"), &[])
            .await?;
        let parent_id = parent_epic
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        dest.client
            .put(
                &format!("groups/{group}/epics/{child}"),
                &json!({ "parent_id": parent_id }),
            )
            .await?;
        Ok(child)
    }
}

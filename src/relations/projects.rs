//! The projects of a group (GitLab's ProjectEntitiesPipeline): how they are listed. The runner
//! (`engine::runner`, `discover_projects`) turns each into a project entity of its own, or reports it
//! skipped; no record of this relation is ever loaded.

use super::{EntityContext, Extraction, LoadError, Relation, pick};
use crate::forge::GitLab;
use async_trait::async_trait;
use serde_json::Value;

pub struct Projects;

#[async_trait]
impl Relation for Projects {
    fn name(&self) -> &'static str {
        "projects"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::ProjectEntitiesPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/projects", ctx.source_id()),
            // Projects of subgroups belong to the subgroup's entity; shared projects to their own group.
            query: vec![
                ("include_subgroups", "false".into()),
                ("with_shared", "false".into()),
            ],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        Value::Object(pick(
            &rest,
            &[
                "id",
                "name",
                "path",
                "path_with_namespace",
                "description",
                "visibility",
                "default_branch",
                "created_at",
            ],
        ))
    }
    fn title(&self, record: &Value) -> Option<String> {
        record
            .get("path_with_namespace")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    async fn load(
        &self,
        _dest: &GitLab,
        _ctx: &EntityContext,
        _record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        Err(LoadError::internal(
            "projects become entities of their own; they are never loaded as records".into(),
        ))
    }
}

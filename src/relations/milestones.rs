//! Group milestones: title, description, state, start and due dates. GitLab's API cannot set a
//! milestone's iid or timestamps; a closed milestone is created and then closed.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Milestones;

#[async_trait]
impl Relation for Milestones {
    fn name(&self) -> &'static str {
        "milestones"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Common::Pipelines::MilestonesPipeline"
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some("milestones")
    }
    fn from_export(&self, record: Value) -> Value {
        // The export's record has the REST record's fields: the same transform keeps both alike.
        self.transform(record)
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/milestones", ctx.source_id()),
            query: vec![("include_ancestors", "false".into())],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        Value::Object(pick(
            &rest,
            &[
                "id",
                "iid",
                "title",
                "description",
                "state",
                "start_date",
                "due_date",
                "created_at",
                "updated_at",
            ],
        ))
    }
    fn source_url(&self, ctx: &EntityContext, record: &Value) -> Option<String> {
        let iid = record.get("iid")?.as_u64()?;
        Some(format!("{}/-/milestones/{iid}", ctx.source_web_url()))
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let group = ctx.destination_id()?;
        let title = text(record, "title").to_string();
        let mut body = json!({ "title": title });
        for f in ["description", "start_date", "due_date"] {
            if let Some(v) = record.get(f).filter(|v| !v.is_null()) {
                body[f] = v.clone();
            }
        }
        let path = format!("groups/{group}/milestones");
        let id = create_once(dest, &path, &body, in_doubt, || async {
            let found = dest.list_all(&path, &[("title", title.clone())]).await?;
            Ok(found
                .iter()
                .find(|m| text(m, "title") == title)
                .and_then(id_of))
        })
        .await?;
        if text(record, "state") == "closed" {
            dest.client
                .put(
                    &format!("groups/{group}/milestones/{id}"),
                    &json!({ "state_event": "close" }),
                )
                .await?;
        }
        Ok(id)
    }
}

//! Group milestones: title, description, state, start and due dates, and the files the description
//! links to (carried in the record, uploaded again and relinked). GitLab's API cannot set a
//! milestone's iid or timestamps; a closed milestone is created and then closed.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text, uploads};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
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
    fn record_from_export(&self, record: Value) -> Value {
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
    async fn enrich(
        &self,
        source: &GitLab,
        ctx: &EntityContext,
        record: &mut Value,
    ) -> Result<(), ForgeError> {
        let description = text(record, "description").to_string();
        if !uploads::links(&description).is_empty() {
            record["uploads"] =
                Value::Array(uploads::collect(source, &ctx.source_id(), &[&description]).await?);
        }
        Ok(())
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
        let find = || async {
            let found = dest.list_all(&path, &[("title", title.clone())]).await?;
            Ok(found
                .iter()
                .find(|m| text(m, "title") == title)
                .and_then(id_of))
        };
        // A milestone an earlier attempt created is found before its files are uploaded again.
        let existing = if in_doubt { find().await? } else { None };
        let id = match existing {
            Some(id) => id,
            None => {
                let carried = record["uploads"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                if !carried.is_empty() {
                    let moves = uploads::place(dest, group, carried).await?;
                    body["description"] =
                        json!(uploads::rewrite(text(record, "description"), &moves));
                }
                create_once(dest, &path, &body, false, find).await?
            }
        };
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

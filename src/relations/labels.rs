//! Group labels: title, description and color. GitLab's API does not let a client set a label's
//! timestamps, so the destination's labels carry the time of the migration.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Labels;

#[async_trait]
impl Relation for Labels {
    fn name(&self) -> &'static str {
        "labels"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Common::Pipelines::LabelsPipeline"
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some("labels")
    }
    fn record_from_export(&self, record: Value) -> Value {
        let fields = [
            "id",
            "title",
            "color",
            "description",
            "created_at",
            "updated_at",
            "type",
            "template",
        ];
        Value::Object(pick(&record, &fields))
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/labels", ctx.source_id()),
            // Labels of ancestors are migrated with the ancestor, never copied down into subgroups.
            query: vec![
                ("include_ancestor_groups", "false".into()),
                ("include_descendant_groups", "false".into()),
                ("only_group_labels", "true".into()),
            ],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(
            &rest,
            &["id", "color", "description", "created_at", "updated_at"],
        );
        r.insert(
            "title".into(),
            rest.get("name")
                .or(rest.get("title"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        r.insert("type".into(), json!("GroupLabel"));
        r.insert("template".into(), json!(false));
        if let Some(tc) = rest.get("text_color") {
            r.insert("textColor".into(), tc.clone());
        }
        Value::Object(r)
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
        let mut body = json!({ "name": title, "color": text(record, "color") });
        if let Some(d) = record.get("description").filter(|d| !d.is_null()) {
            body["description"] = d.clone();
        }
        let path = format!("groups/{group}/labels");
        create_once(dest, &path, &body, in_doubt, || async {
            let found = dest
                .list_all(
                    &path,
                    &[
                        ("search", title.clone()),
                        ("include_ancestor_groups", "false".into()),
                    ],
                )
                .await?;
            let Some(existing) = found.iter().find(|l| text(l, "name") == title) else {
                return Ok(None);
            };
            // A label of that title can exist without being ours as the source has it: GitLab creates
            // missing labels (default color) when an issue or epic names one. Make it the source's.
            // "" and null both mean "no description".
            let stale = !text(existing, "color").eq_ignore_ascii_case(text(&body, "color"))
                || text(existing, "description") != text(&body, "description");
            if stale && let Some(id) = id_of(existing) {
                let mut fix = json!({ "color": body["color"] });
                if let Some(d) = body.get("description") {
                    fix["description"] = d.clone();
                }
                dest.client.put(&format!("{path}/{id}"), &fix).await?;
            }
            Ok(id_of(existing))
        })
        .await
    }
}

//! Group badges: name, link URL and image URL. GitLab does not keep badges unique, so an in-doubt badge is
//! found by comparing all three fields before a new one is created.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Badges;

#[async_trait]
impl Relation for Badges {
    fn name(&self) -> &'static str {
        "badges"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Common::Pipelines::BadgesPipeline"
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some("badges")
    }
    fn record_from_export(&self, record: Value) -> Value {
        self.transform(record)
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/badges", ctx.source_id()),
            query: vec![],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(
            &rest,
            &[
                "id",
                "name",
                "link_url",
                "image_url",
                "created_at",
                "updated_at",
            ],
        );
        r.insert("type".into(), json!("GroupBadge"));
        Value::Object(r)
    }
    fn title(&self, record: &Value) -> Option<String> {
        let name = text(record, "name");
        Some(
            if name.is_empty() {
                text(record, "link_url")
            } else {
                name
            }
            .to_string(),
        )
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let group = ctx.destination_id()?;
        let body = json!({
            "link_url": text(record, "link_url"),
            "image_url": text(record, "image_url"),
            "name": text(record, "name"),
        });
        let path = format!("groups/{group}/badges");
        create_once(dest, &path, &body, in_doubt, || async {
            let found = dest.list_all(&path, &[]).await?;
            Ok(found
                .iter()
                .find(|b| {
                    text(b, "link_url") == text(&body, "link_url")
                        && text(b, "image_url") == text(&body, "image_url")
                        && text(b, "name") == text(&body, "name")
                })
                .and_then(id_of))
        })
        .await
    }
}

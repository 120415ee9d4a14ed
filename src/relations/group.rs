//! The group itself (GitLab's GroupPipeline): name, path, description, visibility and group settings.
//! The record is the group's attributes in GitLab's export format (`visibility_level` 0/10/20). Secrets a
//! source returns (runners tokens) are never copied: only the listed attributes are.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{GitLab, gitlab::encode_path, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Group;

/// Group settings that GitLab's create-group API accepts and that the migration carries over as they are.
const SETTINGS: &[&str] = &[
    "project_creation_level",
    "subgroup_creation_level",
    "request_access_enabled",
    "require_two_factor_authentication",
    "two_factor_grace_period",
    "lfs_enabled",
    "mentions_disabled",
    "emails_enabled",
    "share_with_group_lock",
    "auto_devops_enabled",
];

pub fn visibility_level(name: &str) -> u64 {
    match name {
        "public" => 20,
        "internal" => 10,
        _ => 0,
    }
}

pub fn visibility_name(level: u64) -> &'static str {
    match level {
        20 => "public",
        10 => "internal",
        _ => "private",
    }
}

#[async_trait]
impl Relation for Group {
    fn name(&self) -> &'static str {
        "group"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::GroupPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::Single {
            path: format!("groups/{}", encode_path(&ctx.entity.source_full_path)),
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(
            &rest,
            &[
                "id",
                "name",
                "path",
                "full_path",
                "description",
                "created_at",
                "parent_id",
                "avatar_url",
            ],
        );
        r.extend(pick(&rest, SETTINGS));
        // Older sources say emails_disabled; carry it as emails_enabled, the current name.
        if !r.contains_key("emails_enabled")
            && let Some(disabled) = rest.get("emails_disabled").and_then(Value::as_bool)
        {
            r.insert("emails_enabled".into(), json!(!disabled));
        }
        r.insert(
            "visibility_level".into(),
            json!(visibility_level(text(&rest, "visibility"))),
        );
        Value::Object(r)
    }
    fn source_url(&self, ctx: &EntityContext, _record: &Value) -> Option<String> {
        Some(ctx.source_web_url())
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let entity = &ctx.entity;
        let (parent_id, parent_visibility) = match ctx.destination_parent_id {
            Some(id) => (Some(id), parent_visibility(dest, &id.to_string()).await?),
            None if entity.destination_namespace.is_empty() => (None, 20),
            None => {
                let ns = &entity.destination_namespace;
                let parent = dest.group(ns).await?.ok_or_else(|| LoadError {
                    class: "BulkImports::Error".into(),
                    message: format!(
                        "destination namespace `{ns}` does not exist on {}; create it or choose another",
                        dest.client.base()
                    ),
                    correlation_id: None,
                    unreachable: false,
                })?;
                let level = visibility_level(text(&parent, "visibility"));
                (id_of(&parent), level)
            }
        };
        // A group is never more visible than the group it is created in.
        let wanted = record
            .get("visibility_level")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let visibility = visibility_name(wanted.min(parent_visibility));
        let name = record
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&entity.destination_slug);
        let mut body = json!({
            "name": name,
            "path": entity.destination_slug,
            "visibility": visibility,
            "description": text(record, "description"),
        });
        if let Some(pid) = parent_id {
            body["parent_id"] = json!(pid);
        }
        for (k, v) in pick(record, SETTINGS) {
            body[k] = v;
        }
        let full_path = entity.destination_full_path();
        create_once(dest, "groups", &body, in_doubt, || async {
            Ok(dest.group(&full_path).await?.as_ref().and_then(id_of))
        })
        .await
    }
}

async fn parent_visibility(dest: &GitLab, id: &str) -> Result<u64, LoadError> {
    Ok(dest
        .group(id)
        .await?
        .map(|g| visibility_level(text(&g, "visibility")))
        .unwrap_or(0))
}

//! Group members (when the entity's `migrate_memberships` is true): a source member is mapped to a
//! destination user by the explicit user map or by public email (`crate::user_map`). A member who maps
//! to nobody, or who already has equal or higher access through the destination's ancestors, is skipped
//! and reported with the reason; neither is a failure. Expiry dates are kept.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{ForgeError, GitLab};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Members;

/// GitLab's access levels, for messages.
fn role(level: u64) -> &'static str {
    match level {
        50 => "Owner",
        40 => "Maintainer",
        30 => "Developer",
        20 => "Reporter",
        10 => "Guest",
        5 => "Minimal access",
        _ => "No access",
    }
}

#[async_trait]
impl Relation for Members {
    fn name(&self) -> &'static str {
        "members"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Common::Pipelines::MembersPipeline"
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some("members")
    }
    fn record_from_export(&self, record: Value) -> Value {
        // The export keys a membership by its own id, REST by the user's: keep REST's key, so the id
        // map holds one entry per member whichever path read it. Invite tokens are never copied.
        let user = pick(&record["user"], &["id", "username", "name", "public_email"]);
        let mut r = pick(&record, &["access_level", "expires_at", "created_at"]);
        r.insert("id".into(), user.get("id").cloned().unwrap_or(Value::Null));
        r.insert("user".into(), Value::Object(user));
        Value::Object(r)
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            // Direct members only: inherited ones are migrated with the ancestor that grants them.
            path: format!("groups/{}/members", ctx.source_id()),
            query: vec![],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        // GitLab's members.ndjson: the membership, with the user as a nested object. Never invite tokens.
        let mut r = pick(&rest, &["access_level", "expires_at", "created_at"]);
        r.insert("id".into(), rest.get("id").cloned().unwrap_or(Value::Null));
        r.insert(
            "user".into(),
            Value::Object(pick(&rest, &["id", "username", "name", "public_email"])),
        );
        Value::Object(r)
    }
    async fn enrich(
        &self,
        source: &GitLab,
        _ctx: &EntityContext,
        record: &mut Value,
    ) -> Result<(), ForgeError> {
        // Older GitLab versions leave the public email out of member lists; ask for the user.
        let has_email = !text(&record["user"], "public_email").is_empty();
        if !has_email && let Some(id) = record["user"].get("id").and_then(Value::as_u64) {
            let user = source.user(id).await?;
            record["user"]["public_email"] =
                user.get("public_email").cloned().unwrap_or(Value::Null);
        }
        Ok(())
    }
    fn title(&self, record: &Value) -> Option<String> {
        Some(text(&record["user"], "username").to_string())
    }
    fn source_url(&self, ctx: &EntityContext, _record: &Value) -> Option<String> {
        Some(format!("{}/-/group_members", ctx.source_web_url()))
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        if !ctx.entity.migrate_memberships {
            return Err(LoadError::skipped(
                "memberships are not migrated (migrate_memberships is false)",
            ));
        }
        let group = ctx.destination_id()?;
        let source_user = &record["user"];
        let username = text(source_user, "username");
        let Some(user) = dest.map_user(source_user).await? else {
            let why = if text(source_user, "public_email").is_empty() {
                format!(
                    "`{username}` has no public email on the source and no entry in the user map"
                )
            } else {
                format!(
                    "no destination user has the email {} and `{username}` has no entry in the user map",
                    text(source_user, "public_email")
                )
            };
            return Err(LoadError::unmapped_user(why));
        };
        let level = record
            .get("access_level")
            .and_then(Value::as_u64)
            .unwrap_or(10);
        // Membership through an ancestor (or as the group's creator) that is already as high is kept.
        match dest
            .client
            .get(&format!("groups/{group}/members/all/{}", user.id), &[])
            .await
        {
            Ok(existing) => {
                let have = existing
                    .get("access_level")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if have >= level {
                    // Already present with at least this access: nothing to write, the member is there.
                    if existing_is_direct(dest, group, user.id).await? {
                        return Ok(user.id);
                    }
                    return Err(LoadError::skipped(format!(
                        "`{}` already has {} access through a parent group, at least the source's {}",
                        user.username,
                        role(have),
                        role(level)
                    )));
                }
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        let mut body = json!({ "user_id": user.id, "access_level": level });
        if let Some(exp) = record.get("expires_at").filter(|v| !v.is_null()) {
            body["expires_at"] = exp.clone();
        }
        let path = format!("groups/{group}/members");
        create_once(dest, &path, &body, in_doubt, || async {
            // A direct membership already there (an earlier attempt whose answer was lost) is this one.
            match dest.client.get(&format!("{path}/{}", user.id), &[]).await {
                Ok(m) => Ok(m.get("id").and_then(Value::as_u64)),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

async fn existing_is_direct(dest: &GitLab, group: u64, user_id: u64) -> Result<bool, LoadError> {
    match dest
        .client
        .get(&format!("groups/{group}/members/{user_id}"), &[])
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(404) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_membership_is_keyed_by_its_user_and_carries_no_invite_token() {
        let exported = json!({
            "id": 7, "access_level": 30, "expires_at": null, "created_at": "2023-03-20T07:52:06.433Z",
            "invite_token": "secret-invite", "invite_email": "x@example.com", "source_id": 1,
            "user": {"id": 4, "public_email": "chen@forge-sim.test", "username": "chen"}, "user_id": 4
        });
        let record = Members.record_from_export(exported);
        assert_eq!(Members.source_id(&record), "4");
        assert_eq!(record["user"]["username"], "chen");
        assert_eq!(record["access_level"], 30);
        assert!(!record.to_string().contains("secret-invite"));
        assert!(!record.to_string().contains("invite_email"));
    }
}

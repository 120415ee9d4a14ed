//! The files of the group itself: its avatar (GitLab's GroupAvatarPipeline) and the files its
//! description links to (`/uploads/<secret>/<name>`). A group has a record here only when it has either;
//! the record carries the files' bytes (base64 with their sha256), so they travel in bundles too.
//!
//! Loaded after the group exists, because files are uploaded to it: the description's files are
//! uploaded again and the description rewritten to their new links (only while the destination still
//! shows the source's text, so a retry never moves them twice), and the avatar is set with a multipart
//! `PUT /groups/:id` unless the destination's avatar already has the same bytes. Keeping this apart from
//! the group record means a refused avatar is one reported failure, not a group that is missing.

use super::uploads::{self, MAX_UPLOAD, carried_bytes};
use super::{EntityContext, Extraction, LoadError, Relation, text};
use crate::forge::{ForgeError, GitLab, gitlab::encode_path};
use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct GroupFiles;

/// The avatar's file name in GitLab's `avatar_url` (`.../uploads/-/system/group/avatar/:id/logo.png`).
fn avatar_filename(url: &str) -> String {
    let name = url.split(['?', '#']).next().unwrap_or(url);
    match name.rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "avatar.png".to_string(),
    }
}

#[async_trait]
impl Relation for GroupFiles {
    fn name(&self) -> &'static str {
        "group_files"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::GroupAvatarPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::Single {
            path: format!("groups/{}", encode_path(&ctx.entity.source_full_path)),
        }
    }
    fn transform(&self, rest: Value) -> Value {
        json!({
            "id": rest.get("id").cloned().unwrap_or(Value::Null),
            "description": text(&rest, "description"),
            "avatar_url": rest.get("avatar_url").cloned().unwrap_or(Value::Null),
        })
    }
    fn exists(&self, record: &Value) -> bool {
        record["avatar_url"].is_string() || !uploads::links(text(record, "description")).is_empty()
    }
    async fn enrich(
        &self,
        source: &GitLab,
        ctx: &EntityContext,
        record: &mut Value,
    ) -> Result<(), ForgeError> {
        let group = ctx.source_id();
        if let Some(url) = record["avatar_url"].as_str() {
            let filename = avatar_filename(url);
            record["avatar"] = match source
                .client
                .get_bytes(&format!("groups/{group}/avatar"), MAX_UPLOAD)
                .await
            {
                Ok(bytes) => json!({
                    "filename": filename,
                    "size": bytes.len(),
                    "sha256": hex::encode(Sha256::digest(&bytes)),
                    "content": base64::engine::general_purpose::STANDARD.encode(&bytes),
                }),
                Err(e @ ForgeError::Decode { .. }) => {
                    json!({ "filename": filename, "omitted": e.to_string() })
                }
                Err(e) if e.status() == Some(404) => json!({
                    "filename": filename,
                    "omitted": "the source does not serve the avatar (GET /groups/:id/avatar needs GitLab 14.0)",
                }),
                Err(e) => return Err(e),
            };
        }
        let description = text(record, "description").to_string();
        record["uploads"] = Value::Array(uploads::collect(source, &group, &[&description]).await?);
        Ok(())
    }
    fn title(&self, record: &Value) -> Option<String> {
        Some(match record["avatar"]["filename"].as_str() {
            Some(name) => format!("avatar {name}"),
            None => "files linked from the description".to_string(),
        })
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let id = ctx.destination_id()?;
        let path = format!("groups/{id}");
        let group = dest.client.get(&path, &[]).await?;
        // The description's files: moved while the destination still shows the source's links.
        let description = text(record, "description");
        let carried = record["uploads"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if !carried.is_empty() && text(&group, "description") == description {
            let moves = uploads::place(dest, id, carried).await?;
            if !moves.is_empty() {
                let rewritten = uploads::rewrite(description, &moves);
                dest.client
                    .put(&path, &json!({ "description": rewritten }))
                    .await?;
            }
        }
        let avatar = &record["avatar"];
        if let Some(reason) = avatar.get("omitted").and_then(Value::as_str) {
            return Err(LoadError::internal(format!(
                "the avatar was not carried: {reason}"
            )));
        }
        if let Some(bytes) = carried_bytes(avatar, "avatar")? {
            let same = match group.get("avatar_url").and_then(Value::as_str) {
                Some(_) => match dest
                    .client
                    .get_bytes(&format!("{path}/avatar"), MAX_UPLOAD)
                    .await
                {
                    Ok(have) => have == bytes,
                    Err(e) if e.status() == Some(404) => false,
                    Err(e) => return Err(e.into()),
                },
                None => false,
            };
            if !same {
                let filename = text(avatar, "filename");
                dest.client
                    .put_file(&path, "avatar", filename, bytes)
                    .await?;
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avatar_file_name_comes_from_its_url() {
        assert_eq!(
            avatar_filename("https://gl.example/uploads/-/system/group/avatar/7/logo.png?width=64"),
            "logo.png"
        );
        assert_eq!(avatar_filename("https://gl.example/"), "avatar.png");
    }

    #[test]
    fn a_group_without_avatar_or_linked_files_has_no_record() {
        let plain = GroupFiles.transform(json!({ "id": 1, "description": "just text" }));
        assert!(!GroupFiles.exists(&plain));
        let with_avatar = GroupFiles.transform(
            json!({ "id": 1, "description": "", "avatar_url": "https://x/uploads/-/system/group/avatar/1/a.png" }),
        );
        assert!(GroupFiles.exists(&with_avatar));
        let with_link = GroupFiles.transform(json!({
            "id": 1,
            "description": "![a](/uploads/0123456789abcdef0123456789abcdef/a.png)",
        }));
        assert!(GroupFiles.exists(&with_link));
    }

    #[test]
    fn a_carried_file_must_match_its_digest() {
        let bytes = b"png bytes".to_vec();
        let good = json!({
            "sha256": hex::encode(Sha256::digest(&bytes)),
            "content": base64::engine::general_purpose::STANDARD.encode(&bytes),
        });
        assert_eq!(carried_bytes(&good, "avatar").unwrap(), Some(bytes));
        let mut bad = good.clone();
        bad["sha256"] = json!("00");
        assert!(carried_bytes(&bad, "avatar").is_err());
        assert_eq!(carried_bytes(&json!({}), "avatar").unwrap(), None);
    }
}

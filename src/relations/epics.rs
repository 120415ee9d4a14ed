//! Group epics: title, description, state, dates, confidentiality, color, labels, author, with their
//! notes and award emoji nested as in GitLab's epics.ndjson. Parent links are set afterwards by
//! `epic_links`, once every epic of the group exists. The id map holds each epic's destination *iid*,
//! because GitLab's epic API addresses epics by iid.
//!
//! Through the REST API every record is created by the importing user: an author who is not that user
//! is named in the text ("*By Name on date (imported from GitLab)*"), as GitLab does for unmapped users.
//! System notes (events) cannot be created through the API and are not migrated.

use super::uploads::{self, masked};
use super::{
    EntityContext, Extraction, LoadError, Relation, create_once, create_once_keyed, pick, text,
};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
use crate::user_map::attribution;
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Epics;

const FIELDS: &[&str] = &[
    "id",
    "iid",
    "title",
    "description",
    "state",
    "confidential",
    "color",
    "start_date_is_fixed",
    "start_date_fixed",
    "due_date_is_fixed",
    "due_date_fixed",
    "created_at",
    "updated_at",
    "closed_at",
    "parent_id",
    "parent_iid",
    "labels",
];

fn user_of(v: &Value) -> Value {
    Value::Object(pick(v, &["id", "username", "name", "public_email"]))
}

fn iid_of(v: &Value) -> Option<u64> {
    v.get("iid").and_then(Value::as_u64)
}

/// `text`, with the original author named when the importing user is not that author.
async fn attributed(
    dest: &GitLab,
    body: &str,
    author: &Value,
    created_at: &str,
) -> Result<String, LoadError> {
    let importer = dest.current_user().await?;
    let mapped = dest.map_user(author).await?;
    let is_importer =
        mapped.is_some_and(|m| Some(m.id) == importer.get("id").and_then(Value::as_u64));
    if is_importer {
        return Ok(body.to_string());
    }
    let name = match text(author, "name") {
        "" => text(author, "username"),
        n => n,
    };
    Ok(attribution(body, name, created_at))
}

#[async_trait]
impl Relation for Epics {
    fn name(&self) -> &'static str {
        "epics"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::EpicsPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/epics", ctx.source_id()),
            query: vec![
                ("include_descendant_groups", "false".into()),
                ("include_ancestor_groups", "false".into()),
                ("state", "all".into()),
                ("order_by", "created_at".into()),
                ("sort", "asc".into()),
            ],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(&rest, FIELDS);
        r.insert("author".into(), user_of(&rest["author"]));
        r.insert(
            "group_id".into(),
            rest.get("group_id").cloned().unwrap_or(Value::Null),
        );
        Value::Object(r)
    }
    async fn enrich(
        &self,
        source: &GitLab,
        ctx: &EntityContext,
        record: &mut Value,
    ) -> Result<(), ForgeError> {
        let Some(iid) = iid_of(record) else {
            return Ok(());
        };
        let base = format!("groups/{}/epics/{iid}", ctx.source_id());
        // GitLab addresses an epic's notes by the epic's id, its award emoji by its iid.
        let id = record.get("id").and_then(Value::as_u64).unwrap_or_default();
        let notes = source
            .list_all(
                &format!("groups/{}/epics/{id}/notes", ctx.source_id()),
                &[("sort", "asc".into()), ("order_by", "created_at".into())],
            )
            .await?;
        record["notes"] = Value::Array(
            notes
                .iter()
                .filter(|n| !n.get("system").and_then(Value::as_bool).unwrap_or(false))
                .map(|n| {
                    let mut note = pick(
                        n,
                        &[
                            "id",
                            "body",
                            "created_at",
                            "updated_at",
                            "confidential",
                            "internal",
                        ],
                    );
                    note.insert("author".into(), user_of(&n["author"]));
                    Value::Object(note)
                })
                .collect(),
        );
        let mut texts = vec![text(record, "description").to_string()];
        if let Some(notes) = record["notes"].as_array() {
            texts.extend(notes.iter().map(|n| text(n, "body").to_string()));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        record["uploads"] = Value::Array(uploads::collect(source, &ctx.source_id(), &refs).await?);
        let emoji = source.list_all(&format!("{base}/award_emoji"), &[]).await?;
        record["award_emoji"] = Value::Array(
            emoji
                .iter()
                .map(|e| {
                    let mut a = pick(e, &["name", "created_at"]);
                    a.insert("user".into(), user_of(&e["user"]));
                    Value::Object(a)
                })
                .collect(),
        );
        Ok(())
    }
    fn source_url(&self, ctx: &EntityContext, record: &Value) -> Option<String> {
        Some(format!(
            "{}/-/epics/{}",
            ctx.source_web_url(),
            iid_of(record)?
        ))
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
        let created_at = text(record, "created_at");
        let description = attributed(
            dest,
            text(record, "description"),
            &record["author"],
            created_at,
        )
        .await?;
        let labels: Vec<&str> = record["labels"]
            .as_array()
            .map(|ls| ls.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut body = json!({
            "title": title,
            "description": description,
            "labels": labels.join(","),
            "confidential": record.get("confidential").and_then(Value::as_bool).unwrap_or(false),
        });
        for f in [
            "color",
            "start_date_is_fixed",
            "start_date_fixed",
            "due_date_is_fixed",
            "due_date_fixed",
            "created_at",
        ] {
            if let Some(v) = record.get(f).filter(|v| !v.is_null()) {
                body[f] = v.clone();
            }
        }
        let path = format!("groups/{group}/epics");
        // Descriptions are compared with upload secrets masked: a rewritten link is the same text.
        let find = || async {
            let found = dest
                .list_all(
                    &path,
                    &[
                        ("search", title.clone()),
                        ("include_descendant_groups", "false".into()),
                        ("state", "all".into()),
                    ],
                )
                .await?;
            Ok(found
                .iter()
                .find(|e| {
                    text(e, "title") == title
                        && masked(text(e, "description")) == masked(&description)
                })
                .and_then(iid_of))
        };
        let mut files = Files::new(group, record);
        // An epic an earlier attempt created is found before its files are uploaded again.
        let existing = if in_doubt { find().await? } else { None };
        let iid = match existing {
            Some(iid) => iid,
            None => {
                body["description"] = json!(files.rewrite(dest, &description).await?);
                create_once_keyed(dest, &path, &body, in_doubt, find, iid_of).await?
            }
        };
        let epic = format!("{path}/{iid}");
        let id = dest
            .client
            .get(&epic, &[])
            .await?
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        if text(record, "state") == "closed" {
            dest.client
                .put(&epic, &json!({ "state_event": "close" }))
                .await?;
        }
        load_notes(dest, &format!("{path}/{id}"), record, in_doubt, &mut files).await?;
        load_award_emoji(dest, &epic, record).await?;
        Ok(iid)
    }
}

/// The files an epic's description and notes link to, uploaded to the destination group the first
/// time a text needs them.
struct Files<'a> {
    group: u64,
    carried: &'a [Value],
    moves: Option<Vec<(String, String)>>,
}

impl<'a> Files<'a> {
    fn new(group: u64, record: &'a Value) -> Files<'a> {
        let carried = record["uploads"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Files {
            group,
            carried,
            moves: None,
        }
    }

    /// `text` with its upload links pointing at the destination's copies.
    async fn rewrite(&mut self, dest: &GitLab, text: &str) -> Result<String, LoadError> {
        if uploads::links(text).is_empty() {
            return Ok(text.to_string());
        }
        if self.moves.is_none() {
            self.moves = Some(uploads::place(dest, self.group, self.carried).await?);
        }
        Ok(uploads::rewrite(text, self.moves.as_deref().unwrap_or(&[])))
    }
}

/// Notes in order, under `epic` = `groups/:group/epics/:epic_id` (by id, as GitLab's notes API wants).
/// On a page in doubt, notes already present (same text) are not written again.
async fn load_notes(
    dest: &GitLab,
    epic: &str,
    record: &Value,
    in_doubt: bool,
    files: &mut Files<'_>,
) -> Result<(), LoadError> {
    let notes = record["notes"].as_array().cloned().unwrap_or_default();
    if notes.is_empty() {
        return Ok(());
    }
    // Texts are compared with upload secrets masked: a rewritten link is the same note.
    let existing: Vec<String> = if in_doubt {
        dest.list_all(&format!("{epic}/notes"), &[])
            .await?
            .iter()
            .map(|n| masked(text(n, "body")))
            .collect()
    } else {
        Vec::new()
    };
    for note in notes {
        let created_at = text(&note, "created_at");
        let body = attributed(dest, text(&note, "body"), &note["author"], created_at).await?;
        if existing.contains(&masked(&body)) {
            continue;
        }
        let body = files.rewrite(dest, &body).await?;
        let mut req = json!({ "body": body });
        if !created_at.is_empty() {
            req["created_at"] = json!(created_at);
        }
        let path = format!("{epic}/notes");
        // A lost answer may hide a note that was written: look for its text before writing it again.
        create_once(dest, &path, &req, false, || async {
            let notes = dest.list_all(&path, &[]).await?;
            Ok(notes
                .iter()
                .find(|n| masked(text(n, "body")) == masked(&body))
                .and_then(id_of))
        })
        .await?;
    }
    Ok(())
}

/// Award emoji, each name once, by the importing user (the API awards as the token's user only).
async fn load_award_emoji(dest: &GitLab, epic: &str, record: &Value) -> Result<(), LoadError> {
    let mut names: Vec<&str> = record["award_emoji"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| text(e, "name"))
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(());
    }
    let path = format!("{epic}/award_emoji");
    let present: Vec<String> = dest
        .list_all(&path, &[])
        .await?
        .iter()
        .map(|e| text(e, "name").to_string())
        .collect();
    for name in names
        .into_iter()
        .filter(|n| !present.iter().any(|p| p == n))
    {
        let awarded = create_once(dest, &path, &json!({ "name": name }), false, || async {
            let present = dest.list_all(&path, &[]).await?;
            Ok(present
                .iter()
                .find(|e| text(e, "name") == name)
                .and_then(id_of))
        })
        .await;
        match awarded {
            Ok(_) => {}
            // GitLab refuses the same emoji twice from one user: it is there.
            Err(e) if e.message.contains("already") || e.message.contains("has been taken") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

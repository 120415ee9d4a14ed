//! Group epics: title, description, state, dates, confidentiality, color, labels, author, with their
//! notes and award emoji nested as in GitLab's epics.ndjson, and the history of their state and labels
//! (`events`, see `epic_events`). Parent links are set afterwards by `epic_links`, once every epic of
//! the group exists. The id map holds each epic's destination *iid*, because GitLab's epic API
//! addresses epics by iid.
//!
//! A text is written by its mapped author (`Sudo`) when the destination token is an administrator's;
//! otherwise by the importing user, and an author who is not that user is named in the text
//! ("*By Name on date (imported from GitLab)*"), as GitLab does for unmapped users.
//! State and label events are reproduced by closing, reopening and labelling the epic again in order,
//! so they keep their order and mapped actor but are dated by the destination (the API cannot set an
//! event's time). System notes cannot be created through the API and are not migrated.

use super::authored::{Authored, acting_as, create_authored, refused};
use super::epic_events::{self, History};
use super::uploads::{self, Files};
use super::{EntityContext, Extraction, LoadError, Relation, create_once_keyed, pick, text};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
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

pub(super) fn user_of(v: &Value) -> Value {
    Value::Object(pick(v, &["id", "username", "name", "public_email"]))
}

fn iid_of(v: &Value) -> Option<u64> {
    v.get("iid").and_then(Value::as_u64)
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
        // GitLab addresses an epic's notes and events by the epic's id, its award emoji by its iid.
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
        record["events"] = Value::Array(epic_events::read(source, &ctx.source_id(), id).await?);
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
        let description = Authored::of(
            dest,
            text(record, "description"),
            &record["author"],
            created_at,
        )
        .await?;
        // A record with a history of label events gets its labels by replaying them.
        let history = History::of(record);
        let labels: Vec<&str> = match &history {
            Some(h) if h.sets_labels() => Vec::new(),
            _ => record["labels"]
                .as_array()
                .map(|ls| ls.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        };
        let mut body = json!({
            "title": title,
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
        let search = [
            ("search", title.clone()),
            ("include_descendant_groups", "false".into()),
            ("state", "all".into()),
        ];
        let listed = || async {
            let found = dest.list_all(&path, &search).await?;
            Ok(found
                .into_iter()
                .filter(|e| text(e, "title") == title)
                .collect())
        };
        let mut files = Files::new(group, record);
        // An epic an earlier attempt created is found (in any form it was written) before its files
        // are uploaded again.
        let iid = create_authored(
            dest,
            &path,
            body,
            "description",
            &description,
            in_doubt,
            listed,
            iid_of,
            &[],
            &mut files,
        )
        .await?;
        let epic = format!("{path}/{iid}");
        let id = dest
            .client
            .get(&epic, &[])
            .await?
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        match &history {
            Some(h) => h.replay(dest, &path, iid, id, record, in_doubt).await?,
            // A record from an older bundle, without its events.
            None if text(record, "state") == "closed" => {
                dest.client
                    .put(&epic, &json!({ "state_event": "close" }))
                    .await?;
            }
            None => {}
        }
        load_notes(dest, &format!("{path}/{id}"), record, in_doubt, &mut files).await?;
        load_award_emoji(dest, &epic, record).await?;
        Ok(iid)
    }
}

/// Notes in order, under `epic` = `groups/:group/epics/:epic_id` (by id, as GitLab's notes API wants).
/// On a page in doubt, a note already present (its text in any form it was written in) is not
/// written again; each note present stands for one note of the record.
async fn load_notes(
    dest: &GitLab,
    epic: &str,
    record: &Value,
    in_doubt: bool,
    files: &mut Files<'_>,
) -> Result<(), LoadError> {
    let notes = record["notes"].as_array().cloned().unwrap_or_default();
    let path = format!("{epic}/notes");
    let listed = || dest.list_all(&path, &[]);
    let mut taken = Vec::new();
    for note in notes {
        let created_at = text(&note, "created_at");
        let body = Authored::of(dest, text(&note, "body"), &note["author"], created_at).await?;
        let mut req = json!({});
        if !created_at.is_empty() {
            req["created_at"] = json!(created_at);
        }
        let id = create_authored(
            dest, &path, req, "body", &body, in_doubt, listed, id_of, &taken, files,
        )
        .await?;
        taken.push(id);
    }
    Ok(())
}

/// Award emoji: each (name, user) once, by the mapped user where the token may act for others
/// (`Sudo`), else by the importing user (once per name, as one user can award a name only once).
async fn load_award_emoji(dest: &GitLab, epic: &str, record: &Value) -> Result<(), LoadError> {
    let importer = dest.current_user().await?;
    let me = text(&importer, "username").to_string();
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for e in record["award_emoji"].as_array().into_iter().flatten() {
        let name = text(e, "name");
        if name.is_empty() {
            continue;
        }
        let by = acting_as(dest, &e["user"]).await?;
        let pair = (name.to_string(), by);
        if !wanted.contains(&pair) {
            wanted.push(pair);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let path = format!("{epic}/award_emoji");
    let awarded_by = |e: &Value| {
        (
            text(e, "name").to_string(),
            text(&e["user"], "username").to_string(),
        )
    };
    let present: Vec<(String, String)> = dest
        .list_all(&path, &[])
        .await?
        .iter()
        .map(awarded_by)
        .collect();
    for (name, by) in wanted {
        let who = by.clone().unwrap_or_else(|| me.clone());
        if present.contains(&(name.clone(), who.clone())) {
            continue;
        }
        let find = || async {
            let present = dest.list_all(&path, &[]).await?;
            Ok(present
                .iter()
                .find(|e| awarded_by(e) == (name.clone(), who.clone()))
                .and_then(id_of))
        };
        let body = json!({ "name": name });
        let mut awarded =
            create_once_keyed(dest, &path, &body, false, find, id_of, by.as_deref()).await;
        if let Err(e) = &awarded
            && by.is_some()
            && refused(e)
        {
            // The user cannot see the group there: the importing user awards it, unless an earlier
            // attempt (or another user's award it stands for) already did.
            let find = || async {
                let present = dest.list_all(&path, &[]).await?;
                Ok(present
                    .iter()
                    .find(|e| awarded_by(e) == (name.clone(), me.clone()))
                    .and_then(id_of))
            };
            awarded = create_once_keyed(dest, &path, &body, true, find, id_of, None).await;
        }
        match awarded {
            Ok(_) => {}
            // GitLab refuses the same emoji twice from one user: it is there.
            Err(e) if e.message.contains("already") || e.message.contains("has been taken") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

//! Notes and award emoji on issues, merge requests, epics and snippets (and award emoji on
//! notes). Internal notes are visible to reporters and above only. A second identical award
//! by the same user is a 404, as GitLab answers for an award that fails validation.
//! It never changes the noteable itself.

use serde_json::{Value, json};

use super::issues::client_time;
use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{AwardEmoji, Note, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

/// The iid GitLab reports for a noteable (none for snippets).
fn noteable_iid(store: &Store, noteable: Parent) -> Option<u64> {
    match noteable {
        Parent::Issue(id) => store.issues.get(id).map(|i| i.iid),
        Parent::MergeRequest(id) => store.merge_requests.get(id).map(|m| m.iid),
        Parent::Epic(id) => store.epics.get(id).map(|e| e.iid),
        _ => None,
    }
}

pub fn render(sim: &Sim, store: &Store, scope: &Scope, note: &Note) -> Value {
    let mut value = json!({
        "id": note.id,
        "type": note_type(note),
        "body": note.body,
        "attachment": null,
        "author": super::users::basic(sim, store, note.author_id),
        "created_at": note.created_at,
        "updated_at": note.updated_at,
        "system": note.system,
        "noteable_id": note.noteable.id(),
        "noteable_type": note.noteable.class_name(),
        "resolvable": note.resolvable,
        "confidential": note.internal,
        "internal": note.internal,
        "imported": note.imported_from != "none",
        "imported_from": note.imported_from,
        "noteable_iid": noteable_iid(store, note.noteable),
        "commands_changes": {},
    });
    if note.resolvable {
        super::users::merge(
            &mut value,
            json!({ "resolved": note.resolved, "resolved_by": null, "resolved_at": null }),
        );
    }
    if let Some(position) = &note.position {
        super::users::merge(&mut value, json!({ "position": position }));
    }
    if let Parent::Project(pid) = scope.parent {
        super::users::merge(&mut value, json!({ "project_id": pid }));
    }
    value
}

/// GitLab's note `type`: `DiffNote` on a diff, `DiscussionNote` when resolvable, else none.
pub fn note_type(note: &Note) -> Option<&'static str> {
    if note.position.is_some() {
        Some("DiffNote")
    } else if note.resolvable {
        Some("DiscussionNote")
    } else {
        None
    }
}

pub fn render_award(sim: &Sim, store: &Store, award: &AwardEmoji) -> Value {
    json!({
        "id": award.id,
        "name": award.name,
        "user": super::users::basic(sim, store, award.user_id),
        "created_at": award.created_at,
        "updated_at": award.updated_at,
        "awardable_id": award.awardable.id(),
        "awardable_type": award.awardable.class_name(),
    })
}

/// The note with `raw_id` on `noteable`, or 404.
pub fn find(ctx: &Ctx, noteable: Parent, raw_id: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    raw_id
        .parse::<u64>()
        .ok()
        .filter(|id| store.notes.get(*id).is_some_and(|n| n.noteable == noteable))
        .ok_or(ApiError::NotFound("Note"))
}

pub fn list(ctx: &Ctx, scope: &Scope, noteable: Parent) -> Answer {
    let store = ctx.sim.read();
    let mut notes: Vec<&Note> = store
        .notes
        .children(noteable)
        .filter(|n| !n.internal || scope.level >= access::REPORTER)
        .collect();
    if ctx.params.text("order_by").as_deref() == Some("updated_at") {
        notes.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)));
    } else {
        notes.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    }
    if ctx.params.text("sort").as_deref() != Some("asc") {
        notes.reverse();
    }
    paginate(
        ctx,
        notes,
        Keyset::NotOffered,
        |n| n.id,
        |n| render(ctx.sim, &store, scope, n),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, noteable: Parent, raw_id: &str) -> Answer {
    let id = find(ctx, noteable, raw_id)?;
    let store = ctx.sim.read();
    let note = store
        .notes
        .get(id)
        .filter(|n| !n.internal || scope.level >= access::REPORTER)
        .ok_or(ApiError::NotFound("Note"))?;
    Ok(Reply::ok(render(ctx.sim, &store, scope, note)))
}

pub fn create(ctx: &Ctx, scope: &Scope, noteable: Parent) -> Answer {
    scope.require(access::GUEST)?;
    let body = ctx.params.required("body")?;
    let internal = ctx
        .params
        .bool("internal")?
        .or(ctx.params.bool("confidential")?)
        .unwrap_or(false);
    if internal {
        scope.require(access::REPORTER)?;
    }
    let now = ctx.now();
    let created_at = client_time(ctx, scope, "created_at")?.unwrap_or_else(|| now.clone());
    let mut store = ctx.sim.write();
    let id = store.notes.next_id();
    let note = Note {
        id,
        noteable,
        body,
        author_id: ctx.user_id,
        system: false,
        internal,
        resolvable: false,
        resolved: false,
        position: None,
        imported_from: "none",
        updated_at: created_at.clone(),
        created_at,
    };
    let value = render(ctx.sim, &store, scope, &note);
    store.notes.insert(note);
    Ok(Reply::created(value))
}

/// GitLab's discussion id for a note that starts its own thread.
fn discussion_id(note: &Note) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("discussion/{}", note.id).as_bytes()))[..40].to_string()
}

fn render_discussion(sim: &Sim, store: &Store, scope: &Scope, note: &Note) -> Value {
    json!({
        "id": discussion_id(note),
        "individual_note": !note.resolvable,
        "notes": [render(sim, store, scope, note)],
    })
}

/// `GET .../discussions`: every note is its own thread, oldest first.
pub fn discussions(ctx: &Ctx, scope: &Scope, noteable: Parent) -> Answer {
    let store = ctx.sim.read();
    let mut notes: Vec<&Note> = store
        .notes
        .children(noteable)
        .filter(|n| !n.internal || scope.level >= access::REPORTER)
        .collect();
    notes.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    paginate(
        ctx,
        notes,
        Keyset::NotOffered,
        |n| n.id,
        |n| render_discussion(ctx.sim, &store, scope, n),
    )
}

/// `POST .../discussions`: a new thread with one note.
pub fn create_discussion(ctx: &Ctx, scope: &Scope, noteable: Parent) -> Answer {
    let created = create(ctx, scope, noteable)?;
    let super::ReplyBody::Json(note) = &created.body else {
        return Ok(created);
    };
    let id = note["id"].as_u64().unwrap_or_default();
    let store = ctx.sim.read();
    let note = store.notes.get(id).ok_or(ApiError::NotFound("Note"))?;
    Ok(Reply::created(render_discussion(
        ctx.sim, &store, scope, note,
    )))
}

pub fn award_emoji(ctx: &Ctx, scope: &Scope, awardable: Parent) -> Answer {
    let _ = scope;
    let store = ctx.sim.read();
    let awards: Vec<&AwardEmoji> = store.award_emoji.children(awardable).collect();
    paginate(
        ctx,
        awards,
        Keyset::NotOffered,
        |a| a.id,
        |a| render_award(ctx.sim, &store, a),
    )
}

pub fn award(ctx: &Ctx, scope: &Scope, awardable: Parent) -> Answer {
    scope.require(access::GUEST)?;
    let name = ctx.params.required("name")?;
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'));
    let now = ctx.now();
    let mut store = ctx.sim.write();
    if !valid
        || store
            .award_emoji
            .children(awardable)
            .any(|a| a.name == name && a.user_id == ctx.user_id)
    {
        return Err(ApiError::NotFound("Award Emoji"));
    }
    let id = store.award_emoji.next_id();
    let award = AwardEmoji {
        id,
        awardable,
        name,
        user_id: ctx.user_id,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render_award(ctx.sim, &store, &award);
    store.award_emoji.insert(award);
    Ok(Reply::created(value))
}

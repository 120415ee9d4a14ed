//! Group epics: list (with descendant groups' epics, as GitLab does by default), read, create,
//! update (`state_event=close|reopen`, labels, parent), child epics and the epic's issues.
//! Creating and updating record the resource events the change makes (labels added or removed,
//! closed or reopened), by the acting user; `events.rs` serves them. Notes and award emoji on
//! epics are served by `notes.rs`.
//! It never changes issues except their `epic_id`, and creates only labels that are missing.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Epic, Label, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, epic: &Epic) -> Value {
    let group_path = store
        .group(epic.group_id)
        .map(|g| g.full_path.clone())
        .unwrap_or_default();
    let parent = epic.parent_id.and_then(|id| store.epics.get(id));
    let api = format!("{}/api/v4/groups/{}", sim.base_url, epic.group_id);
    let web_url = format!(
        "{}/groups/{}/-/epics/{}",
        sim.base_url, group_path, epic.iid
    );
    let upvotes = votes(store, epic.id, "thumbsup");
    let downvotes = votes(store, epic.id, "thumbsdown");
    let start_date = if epic.start_date_is_fixed {
        epic.start_date_fixed.clone()
    } else {
        None
    };
    let due_date = if epic.due_date_is_fixed {
        epic.due_date_fixed.clone()
    } else {
        None
    };
    json!({
        "id": epic.id,
        "iid": epic.iid,
        "color": epic.color,
        "text_color": super::labels::text_color(&epic.color),
        "group_id": epic.group_id,
        "parent_id": epic.parent_id,
        "parent_iid": parent.map(|p| p.iid),
        "work_item_id": epic.id + 1_000_000,
        "title": epic.title,
        "description": epic.description,
        "confidential": epic.confidential,
        "author": super::users::basic(sim, store, epic.author_id),
        "start_date": start_date,
        "start_date_is_fixed": epic.start_date_is_fixed,
        "start_date_fixed": epic.start_date_fixed,
        "start_date_from_milestones": null,
        "start_date_from_inherited_source": null,
        "end_date": due_date,
        "due_date": due_date,
        "due_date_is_fixed": epic.due_date_is_fixed,
        "due_date_fixed": epic.due_date_fixed,
        "due_date_from_milestones": null,
        "due_date_from_inherited_source": null,
        "state": epic.state,
        "web_edit_url": format!("{web_url}/edit"),
        "web_url": web_url,
        "reference": format!("&{}", epic.iid),
        "references": {
            "short": format!("&{}", epic.iid),
            "relative": format!("&{}", epic.iid),
            "full": format!("{group_path}&{}", epic.iid),
        },
        "created_at": epic.created_at,
        "updated_at": epic.updated_at,
        "closed_at": epic.closed_at,
        "labels": epic.labels,
        "upvotes": upvotes,
        "downvotes": downvotes,
        "imported": false,
        "imported_from": "none",
        "_links": {
            "self": format!("{api}/epics/{}", epic.iid),
            "epic_issues": format!("{api}/epics/{}/issues", epic.iid),
            "group": api,
            "parent": parent.map(|p| format!("{}/api/v4/groups/{}/epics/{}", sim.base_url, p.group_id, p.iid)),
        },
    })
}

fn votes(store: &Store, epic_id: u64, name: &str) -> usize {
    store
        .award_emoji
        .children(Parent::Epic(epic_id))
        .filter(|a| a.name == name)
        .count()
}

/// The epic with `iid` in the scope's group, or 404.
pub fn find(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    let iid: u64 = raw_iid.parse().map_err(|_| ApiError::NotFound("Epic"))?;
    let epic = store
        .epics
        .children(scope.parent)
        .find(|e| e.iid == iid)
        .ok_or(ApiError::NotFound("Epic"))?;
    if epic.confidential && scope.level < access::REPORTER {
        return Err(ApiError::NotFound("Epic"));
    }
    Ok(epic.id)
}

/// The epic with global `id` in the scope's group or below, or 404: GitLab's notes API
/// (`/groups/:id/epics/:epic_id/notes`, discussions, events) takes the epic's id, not its iid,
/// unlike every other epic endpoint.
pub fn find_by_id(ctx: &Ctx, scope: &Scope, raw_id: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    let id: u64 = raw_id.parse().map_err(|_| ApiError::NotFound("Epic"))?;
    let epic = store
        .epics
        .get(id)
        .filter(|e| store.ancestors(e.group_id).contains(&scope.parent.id()))
        .ok_or(ApiError::NotFound("Epic"))?;
    let level = store.group_access(ctx.user_id, epic.group_id).unwrap_or(0);
    if epic.confidential && level < access::REPORTER {
        return Err(ApiError::NotFound("Epic"));
    }
    Ok(epic.id)
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let p = &ctx.params;
    let state = p.text("state");
    let labels = p.list("labels");
    let author = p.u64("author_id")?;
    let parent_id = p.u64("parent_id")?;
    let search = p.text("search").map(|s| s.to_lowercase());
    let mut groups = vec![scope.parent.id()];
    if p.bool("include_descendant_groups")?.unwrap_or(true) {
        groups.extend(
            store
                .descendant_groups(scope.parent.id())
                .iter()
                .map(|g| g.id),
        );
    }
    if p.bool("include_ancestor_groups")?.unwrap_or(false) {
        groups.extend(store.ancestors(scope.parent.id()).into_iter().skip(1));
    }
    let mut epics: Vec<&Epic> = groups
        .iter()
        .flat_map(|gid| store.epics.children(Parent::Group(*gid)))
        .filter(|e| {
            !e.confidential
                || store
                    .group_access(ctx.user_id, e.group_id)
                    .is_some_and(|l| l >= access::REPORTER)
        })
        .filter(|e| state.as_ref().is_none_or(|s| s == "all" || &e.state == s))
        .filter(|e| {
            labels
                .as_ref()
                .is_none_or(|ls| ls.iter().all(|l| e.labels.contains(l)))
        })
        .filter(|e| author.is_none_or(|a| e.author_id == a))
        .filter(|e| parent_id.is_none_or(|pid| e.parent_id == Some(pid)))
        .filter(|e| {
            search.as_ref().is_none_or(|s| {
                e.title.to_lowercase().contains(s) || e.description.to_lowercase().contains(s)
            })
        })
        .collect();
    let order_by = p.text("order_by").unwrap_or_else(|| "created_at".into());
    match order_by.as_str() {
        "updated_at" => epics.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id))),
        "title" => epics.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        _ => epics.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))),
    }
    if p.text("sort").as_deref() != Some("asc") {
        epics.reverse();
    }
    paginate(
        ctx,
        epics,
        Keyset::NotOffered,
        |e| e.id,
        |e| render(ctx.sim, &store, e),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    let id = find(ctx, scope, raw_iid)?;
    let store = ctx.sim.read();
    let epic = store.epics.get(id).ok_or(ApiError::NotFound("Epic"))?;
    Ok(Reply::ok(render(ctx.sim, &store, epic)))
}

pub fn children(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    let id = find(ctx, scope, raw_iid)?;
    let store = ctx.sim.read();
    let epics = ordered_children(&store, id);
    paginate(
        ctx,
        epics,
        Keyset::NotOffered,
        |e| e.id,
        |e| render(ctx.sim, &store, e),
    )
}

/// An epic's children as GitLab lists them: by relative position (unset last), then by id.
fn ordered_children(store: &Store, parent: u64) -> Vec<&Epic> {
    let mut epics: Vec<&Epic> = store
        .epics
        .all()
        .filter(|e| e.parent_id == Some(parent))
        .collect();
    epics.sort_by_key(|e| (e.relative_position.is_none(), e.relative_position, e.id));
    epics
}

/// `PUT /groups/:id/epics/:epic_iid/epics/:child_epic_id`: moves a child epic between two of its
/// siblings (`move_before_id` ends up before it, `move_after_id` after it); answers the children in
/// their new order.
pub fn reorder_child(ctx: &Ctx, scope: &Scope, raw_iid: &str, raw_child: &str) -> Answer {
    scope.require(access::GUEST)?;
    let parent = find(ctx, scope, raw_iid)?;
    let child: u64 = raw_child
        .parse()
        .map_err(|_| ApiError::invalid("child_epic_id"))?;
    let before = ctx.params.u64("move_before_id")?;
    let after = ctx.params.u64("move_after_id")?;
    if before.is_none() && after.is_none() {
        return Err(ApiError::Param(
            "move_before_id, move_after_id are missing, at least one parameter must be provided"
                .into(),
        ));
    }
    let mut store = ctx.sim.write();
    let mut order: Vec<u64> = ordered_children(&store, parent)
        .iter()
        .map(|e| e.id)
        .collect();
    let not_found = || ApiError::NotFound("Epic");
    if !order.contains(&child) {
        return Err(not_found());
    }
    for sibling in before.iter().chain(after.iter()) {
        if *sibling == child || !order.contains(sibling) {
            return Err(not_found());
        }
    }
    order.retain(|e| *e != child);
    let at = match (before, after) {
        (Some(b), _) => order.iter().position(|e| *e == b).map(|i| i + 1),
        (None, Some(a)) => order.iter().position(|e| *e == a),
        (None, None) => None,
    }
    .ok_or_else(not_found)?;
    order.insert(at, child);
    for (n, id) in order.iter().enumerate() {
        if let Some(e) = store.epics.get_mut(*id) {
            e.relative_position = Some((n as i64 + 1) * 1000);
        }
    }
    let rendered: Vec<Value> = ordered_children(&store, parent)
        .into_iter()
        .map(|e| render(ctx.sim, &store, e))
        .collect();
    Ok(Reply::ok(Value::Array(rendered)))
}

pub fn issues(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    let id = find(ctx, scope, raw_iid)?;
    let store = ctx.sim.read();
    let issues: Vec<_> = store
        .issues
        .all()
        .filter(|i| i.epic_id == Some(id))
        .filter(|i| store.project_access(ctx.user_id, i.project_id).is_some())
        .collect();
    paginate(
        ctx,
        issues,
        Keyset::NotOffered,
        |i| i.id,
        |i| super::issues::render(ctx.sim, &store, i),
    )
}

/// Finds labels by name in the group's hierarchy, creating the missing ones in `owner`
/// the way GitLab does for issuables.
pub fn ensure_labels(store: &mut Store, owner: Parent, names: &[String], now: &str) -> Vec<String> {
    let mut result = Vec::new();
    for name in names {
        let existing = super::labels::available(store, owner, true)
            .into_iter()
            .find(|l| &l.name == name)
            .map(|l| l.name.clone());
        match existing {
            Some(found) => result.push(found),
            None => {
                let id = store.labels.next_id();
                store.labels.insert(Label {
                    id,
                    owner,
                    name: name.clone(),
                    color: "#6699cc".into(),
                    text_color: "#FFFFFF".into(),
                    description: None,
                    priority: None,
                    created_at: now.to_string(),
                });
                result.push(name.clone());
            }
        }
        result.dedup();
    }
    result
}

/// The parent epic given by id, which must be in the group's hierarchy.
fn parent_epic(store: &Store, group_id: u64, parent_id: u64) -> Result<u64, ApiError> {
    let epic = store
        .epics
        .get(parent_id)
        .ok_or(ApiError::NotFound("Parent"))?;
    let group_tree = store.ancestors(group_id);
    let parent_tree = store.ancestors(epic.group_id);
    if group_tree.contains(&epic.group_id) || parent_tree.contains(&group_id) {
        Ok(epic.id)
    } else {
        Err(ApiError::NotFound("Parent"))
    }
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let p = &ctx.params;
    let title = p.required("title")?;
    let start_date_fixed = p.date("start_date_fixed")?.flatten();
    let due_date_fixed = p.date("due_date_fixed")?.flatten();
    let now = ctx.now();
    let created_at = match p.text("created_at") {
        Some(at) if scope.level >= access::OWNER => {
            crate::timestamp::normalize_time(&at).ok_or_else(|| ApiError::invalid("created_at"))?
        }
        _ => now.clone(),
    };
    let gid = scope.parent.id();
    let mut store = ctx.sim.write();
    let parent_id = match p.u64("parent_id")? {
        Some(pid) => Some(parent_epic(&store, gid, pid)?),
        None => None,
    };
    let labels = ensure_labels(
        &mut store,
        scope.parent,
        &p.list("labels").unwrap_or_default(),
        &now,
    );
    let id = store.epics.next_id();
    let iid = store.epics.next_iid(scope.parent);
    let epic = Epic {
        id,
        iid,
        group_id: gid,
        parent_id,
        title,
        description: p.text("description").unwrap_or_default(),
        state: "opened".into(),
        confidential: p.bool("confidential")?.unwrap_or(false),
        author_id: ctx.user_id,
        labels,
        start_date_is_fixed: p.bool("start_date_is_fixed")?.unwrap_or(false),
        start_date_fixed,
        due_date_is_fixed: p.bool("due_date_is_fixed")?.unwrap_or(false),
        due_date_fixed,
        color: p.text("color").unwrap_or_else(|| "#1068bf".into()),
        updated_at: created_at.clone(),
        created_at,
        closed_at: None,
        relative_position: None,
    };
    let value = render(ctx.sim, &store, &epic);
    let labels = epic.labels.clone();
    store.epics.insert(epic);
    super::events::record_labels(
        &mut store,
        Parent::Epic(id),
        scope.parent,
        ctx.user_id,
        &[],
        &labels,
        &now,
    );
    Ok(Reply::created(value))
}

pub fn update(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let id = find(ctx, scope, raw_iid)?;
    let p = &ctx.params;
    let state_event = p.text("state_event");
    if let Some(event) = &state_event
        && event != "close"
        && event != "reopen"
    {
        return Err(ApiError::Param(
            "state_event does not have a valid value".into(),
        ));
    }
    let start_date_fixed = p.date("start_date_fixed")?;
    let due_date_fixed = p.date("due_date_fixed")?;
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let parent_id = match p.u64("parent_id")? {
        Some(pid) => Some(parent_epic(&store, scope.parent.id(), pid)?),
        None => None,
    };
    let before = store
        .epics
        .get(id)
        .map(|e| e.labels.clone())
        .unwrap_or_default();
    let mut labels = before.clone();
    if let Some(set) = p.list("labels") {
        labels = ensure_labels(&mut store, scope.parent, &set, &now);
    }
    if let Some(add) = p.list("add_labels") {
        for label in ensure_labels(&mut store, scope.parent, &add, &now) {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    if let Some(remove) = p.list("remove_labels") {
        labels.retain(|l| !remove.contains(l));
    }
    let epic = store.epics.get_mut(id).ok_or(ApiError::NotFound("Epic"))?;
    epic.labels = labels;
    if let Some(title) = p.text("title") {
        epic.title = title;
    }
    if let Some(description) = p.text("description") {
        epic.description = description;
    }
    if let Some(confidential) = p.bool("confidential")? {
        epic.confidential = confidential;
    }
    if let Some(fixed) = p.bool("start_date_is_fixed")? {
        epic.start_date_is_fixed = fixed;
    }
    if let Some(fixed) = p.bool("due_date_is_fixed")? {
        epic.due_date_is_fixed = fixed;
    }
    if let Some(date) = start_date_fixed {
        epic.start_date_fixed = date;
    }
    if let Some(date) = due_date_fixed {
        epic.due_date_fixed = date;
    }
    if let Some(color) = p.text("color") {
        epic.color = color;
    }
    if parent_id.is_some() {
        epic.parent_id = parent_id;
    }
    let changed = state_event
        .as_deref()
        .and_then(|event| change_state(epic, event, &now));
    epic.updated_at = now.clone();
    let epic = epic.clone();
    let (eventable, user) = (Parent::Epic(id), ctx.user_id);
    let after = &epic.labels;
    super::events::record_labels(
        &mut store,
        eventable,
        scope.parent,
        user,
        &before,
        after,
        &now,
    );
    if let Some(state) = changed {
        super::events::record_state(&mut store, eventable, user, state, &now);
    }
    Ok(Reply::ok(render(ctx.sim, &store, &epic)))
}

/// Applies `state_event` (`close` or `reopen`) at `at` and returns the state event it makes
/// (`closed` or `reopened`). Closing a closed epic or reopening an open one changes nothing.
pub fn change_state(epic: &mut Epic, state_event: &str, at: &str) -> Option<&'static str> {
    match state_event {
        "close" if epic.state != "closed" => {
            epic.state = "closed".into();
            epic.closed_at = Some(at.to_string());
            Some("closed")
        }
        "reopen" if epic.state == "closed" => {
            epic.state = "opened".into();
            epic.closed_at = None;
            Some("reopened")
        }
        _ => None,
    }
}

/// Deleting an epic needs the owner role; its children lose their parent.
pub fn remove(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    scope.require(access::OWNER)?;
    let id = find(ctx, scope, raw_iid)?;
    let mut store = ctx.sim.write();
    let children: Vec<u64> = store
        .epics
        .all()
        .filter(|e| e.parent_id == Some(id))
        .map(|e| e.id)
        .collect();
    for child in children {
        if let Some(epic) = store.epics.get_mut(child) {
            epic.parent_id = None;
        }
    }
    store.epics.remove(id);
    Ok(Reply::no_content())
}

/// `POST /groups/:id/epics/:iid/issues/:issue_id`: puts an issue (global id) in the epic.
pub fn assign_issue(ctx: &Ctx, scope: &Scope, raw_iid: &str, raw_issue: &str) -> Answer {
    scope.require(access::GUEST)?;
    let epic_id = find(ctx, scope, raw_iid)?;
    let mut store = ctx.sim.write();
    let issue = raw_issue
        .parse::<u64>()
        .ok()
        .and_then(|id| store.issues.get(id))
        .filter(|i| store.project_access(ctx.user_id, i.project_id).is_some())
        .ok_or(ApiError::NotFound("Issue"))?;
    if issue.epic_id == Some(epic_id) {
        return Err(ApiError::message(
            axum::http::StatusCode::CONFLICT,
            "Issue(s) already assigned",
        ));
    }
    let issue_id = issue.id;
    let now = ctx.now();
    if let Some(issue) = store.issues.get_mut(issue_id) {
        issue.epic_id = Some(epic_id);
        issue.updated_at = now;
    }
    let epic = store.epics.get(epic_id).ok_or(ApiError::NotFound("Epic"))?;
    let issue = store
        .issues
        .get(issue_id)
        .ok_or(ApiError::NotFound("Issue"))?;
    Ok(Reply::created(json!({
        "id": issue_id,
        "epic": render(ctx.sim, &store, epic),
        "issue": super::issues::render(ctx.sim, &store, issue),
    })))
}

//! Project issues: list (offset or keyset), read, create, update (`state_event=close|reopen`).
//! Confidential issues are visible to reporters and above, their author and assignees only.
//! It never changes milestones or epics; it only links to existing ones.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Issue, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, issue: &Issue) -> Value {
    let full_path = store
        .project(issue.project_id)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default();
    let api = format!("{}/api/v4/projects/{}", sim.base_url, issue.project_id);
    let awards = store.award_emoji.children(Parent::Issue(issue.id));
    let (mut up, mut down) = (0, 0);
    for award in awards {
        match award.name.as_str() {
            "thumbsup" => up += 1,
            "thumbsdown" => down += 1,
            _ => {}
        }
    }
    let assignees: Vec<Value> = issue
        .assignee_ids
        .iter()
        .map(|id| super::users::basic(sim, store, *id))
        .collect();
    let epic = issue.epic_id.and_then(|id| store.epics.get(id)).map(|e| {
        json!({
            "id": e.id, "iid": e.iid, "title": e.title, "group_id": e.group_id,
            "url": format!("/groups/{}/-/epics/{}", store.group(e.group_id).map(|g| g.full_path.as_str()).unwrap_or_default(), e.iid),
            "human_readable_end_date": null, "human_readable_timestamp": null,
        })
    });
    json!({
        "id": issue.id,
        "iid": issue.iid,
        "project_id": issue.project_id,
        "title": issue.title,
        "description": issue.description,
        "state": issue.state,
        "created_at": issue.created_at,
        "updated_at": issue.updated_at,
        "closed_at": issue.closed_at,
        "closed_by": issue.closed_by_id.map(|id| super::users::basic(sim, store, id)),
        "labels": issue.labels,
        "milestone": issue.milestone_id.and_then(|id| store.milestones.get(id)).map(|m| super::milestones::render(sim, store, m)),
        "assignees": assignees,
        "author": super::users::basic(sim, store, issue.author_id),
        "type": "ISSUE",
        "assignee": assignees.first(),
        "user_notes_count": store.notes.children(Parent::Issue(issue.id)).filter(|n| !n.system).count(),
        "merge_requests_count": 0,
        "upvotes": up,
        "downvotes": down,
        "start_date": null,
        "due_date": issue.due_date,
        "confidential": issue.confidential,
        "discussion_locked": issue.discussion_locked,
        "issue_type": "issue",
        "web_url": format!("{}/{}/-/issues/{}", sim.base_url, full_path, issue.iid),
        "time_stats": { "time_estimate": 0, "total_time_spent": 0, "human_time_estimate": null, "human_total_time_spent": null },
        "task_completion_status": { "count": 0, "completed_count": 0 },
        "weight": issue.weight,
        "blocking_issues_count": 0,
        "has_tasks": true,
        "task_status": "0 of 0 checklist items completed",
        "_links": {
            "self": format!("{api}/issues/{}", issue.iid),
            "notes": format!("{api}/issues/{}/notes", issue.iid),
            "award_emoji": format!("{api}/issues/{}/award_emoji", issue.iid),
            "project": api,
            "closed_as_duplicate_of": null,
        },
        "references": {
            "short": format!("#{}", issue.iid),
            "relative": format!("#{}", issue.iid),
            "full": format!("{full_path}#{}", issue.iid),
        },
        "severity": "UNKNOWN",
        "moved_to_id": null,
        "imported": false,
        "imported_from": "none",
        "service_desk_reply_to": null,
        "epic_iid": epic.as_ref().map(|e| e["iid"].clone()),
        "epic": epic,
        "iteration": issue.iteration_id.and_then(|id| store.iterations.get(id)).map(|i| super::iterations::render(sim, store, i)),
        "health_status": null,
    })
}

fn visible(scope: &Scope, user_id: u64, issue: &Issue) -> bool {
    visible_at(scope.level, user_id, issue)
}

fn visible_at(level: u8, user_id: u64, issue: &Issue) -> bool {
    !issue.confidential
        || level >= access::REPORTER
        || issue.author_id == user_id
        || issue.assignee_ids.contains(&user_id)
}

/// The issue with `iid` in the scope's project, if the caller may see it.
pub fn find(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    let iid: u64 = raw_iid.parse().map_err(|_| ApiError::NotFound("Issue"))?;
    store
        .issues
        .children(scope.parent)
        .find(|i| i.iid == iid && visible(scope, ctx.user_id, i))
        .map(|i| i.id)
        .ok_or(ApiError::NotFound("Issue"))
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let candidates: Vec<&Issue> = store
        .issues
        .children(scope.parent)
        .filter(|i| visible(scope, ctx.user_id, i))
        .collect();
    answer_list(ctx, &store, candidates, Keyset::Offered)
}

/// `/groups/:id/issues`: issues of every project in the group and its subgroups that the
/// caller can see.
pub fn list_in_group(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let gid = scope.parent.id();
    let mut candidates = Vec::new();
    for project in store.projects.values() {
        if !store.ancestors(project.namespace_id).contains(&gid) {
            continue;
        }
        let Some(level) = store.project_access(ctx.user_id, project.id) else {
            continue;
        };
        candidates.extend(
            store
                .issues
                .children(Parent::Project(project.id))
                .filter(|i| visible_at(level, ctx.user_id, i)),
        );
    }
    answer_list(ctx, &store, candidates, Keyset::NotOffered)
}

fn answer_list(ctx: &Ctx, store: &Store, candidates: Vec<&Issue>, keyset: Keyset) -> Answer {
    let p = &ctx.params;
    let state = p.text("state");
    let labels = p.list("labels");
    let milestone = p.text("milestone");
    let author = p.u64("author_id")?;
    let assignee = p.u64("assignee_id")?;
    let confidential = p.bool("confidential")?;
    let search = p.text("search").map(|s| s.to_lowercase());
    let created_after = p
        .text("created_after")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let created_before = p
        .text("created_before")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let updated_after = p
        .text("updated_after")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let updated_before = p
        .text("updated_before")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let iids: Vec<u64> = p
        .list("iids")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let milestone_id = milestone.as_ref().map(|title| {
        store
            .milestones
            .all()
            .find(|m| &m.title == title)
            .map(|m| m.id)
    });
    let mut issues: Vec<&Issue> = candidates
        .into_iter()
        .filter(|i| state.as_ref().is_none_or(|s| s == "all" || &i.state == s))
        .filter(|i| {
            labels
                .as_ref()
                .is_none_or(|ls| ls.iter().all(|l| i.labels.contains(l)))
        })
        .filter(|i| match (&milestone, milestone_id) {
            (Some(m), _) if m == "None" => i.milestone_id.is_none(),
            (Some(m), _) if m == "Any" => i.milestone_id.is_some(),
            (Some(_), Some(id)) => i.milestone_id.is_some() && i.milestone_id == id,
            _ => true,
        })
        .filter(|i| author.is_none_or(|a| i.author_id == a))
        .filter(|i| assignee.is_none_or(|a| i.assignee_ids.contains(&a)))
        .filter(|i| confidential.is_none_or(|c| i.confidential == c))
        .filter(|i| iids.is_empty() || iids.contains(&i.iid))
        .filter(|i| created_after.as_ref().is_none_or(|t| &i.created_at >= t))
        .filter(|i| created_before.as_ref().is_none_or(|t| &i.created_at <= t))
        .filter(|i| updated_after.as_ref().is_none_or(|t| &i.updated_at >= t))
        .filter(|i| updated_before.as_ref().is_none_or(|t| &i.updated_at <= t))
        .filter(|i| {
            search.as_ref().is_none_or(|s| {
                i.title.to_lowercase().contains(s) || i.description.to_lowercase().contains(s)
            })
        })
        .collect();
    match p.text("order_by").as_deref() {
        Some("updated_at") => {
            issues.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)))
        }
        Some("id") => issues.sort_by_key(|i| i.id),
        Some("title") => issues.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        _ => issues.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))),
    }
    if p.text("sort").as_deref() != Some("asc") {
        issues.reverse();
    }
    paginate(ctx, issues, keyset, |i| i.id, |i| render(ctx.sim, store, i))
}

pub fn get(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    let id = find(ctx, scope, raw_iid)?;
    let store = ctx.sim.read();
    let issue = store.issues.get(id).ok_or(ApiError::NotFound("Issue"))?;
    Ok(Reply::ok(render(ctx.sim, &store, issue)))
}

fn ids(ctx: &Ctx, key: &str) -> Option<Vec<u64>> {
    ctx.params
        .list(key)
        .map(|list| list.iter().filter_map(|s| s.parse().ok()).collect())
}

/// A milestone the project may use: its own or one of its groups'.
fn usable_milestone(store: &Store, project_id: u64, id: u64) -> bool {
    let Some(milestone) = store.milestones.get(id) else {
        return false;
    };
    match milestone.owner {
        Parent::Project(pid) => pid == project_id,
        Parent::Group(gid) => store
            .project(project_id)
            .is_some_and(|p| store.ancestors(p.namespace_id).contains(&gid)),
        _ => false,
    }
}

/// `created_at`/`updated_at` may be set by admins and owners, as in GitLab.
pub fn client_time(ctx: &Ctx, scope: &Scope, key: &str) -> Result<Option<String>, ApiError> {
    match ctx.params.text(key) {
        Some(raw) if scope.level >= access::OWNER => crate::timestamp::normalize_time(&raw)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key)),
        _ => Ok(None),
    }
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::GUEST)?;
    let p = &ctx.params;
    let title = p.required("title")?;
    let due_date = p.date("due_date")?.flatten();
    let now = ctx.now();
    let created_at = client_time(ctx, scope, "created_at")?.unwrap_or_else(|| now.clone());
    let pid = scope.parent.id();
    let mut store = ctx.sim.write();
    let milestone_id = p
        .u64("milestone_id")?
        .filter(|id| usable_milestone(&store, pid, *id));
    let epic_id = p
        .u64("epic_id")?
        .filter(|id| store.epics.get(*id).is_some());
    let labels = super::epics::ensure_labels(
        &mut store,
        scope.parent,
        &p.list("labels").unwrap_or_default(),
        &now,
    );
    let assignee_ids: Vec<u64> = ids(ctx, "assignee_ids")
        .or_else(|| p.u64("assignee_id").ok().flatten().map(|id| vec![id]))
        .unwrap_or_default()
        .into_iter()
        .filter(|id| store.user(*id).is_some())
        .collect();
    let id = store.issues.next_id();
    let iid = match p.u64("iid")? {
        Some(iid) if scope.level >= access::OWNER => {
            if store.issues.children(scope.parent).any(|i| i.iid == iid) {
                return Err(ApiError::bad_request(
                    json!({ "iid": ["has already been taken"] }),
                ));
            }
            iid
        }
        _ => store.issues.next_iid(scope.parent),
    };
    let issue = Issue {
        id,
        iid,
        project_id: pid,
        title,
        description: p.text("description").unwrap_or_default(),
        state: "opened".into(),
        author_id: ctx.user_id,
        assignee_ids,
        labels,
        milestone_id,
        epic_id,
        iteration_id: None,
        confidential: p.bool("confidential")?.unwrap_or(false),
        discussion_locked: p.bool("discussion_locked")?,
        due_date,
        weight: p.u64("weight")?,
        updated_at: created_at.clone(),
        created_at,
        closed_at: None,
        closed_by_id: None,
    };
    let value = render(ctx.sim, &store, &issue);
    store.issues.insert(issue);
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
    let due_date = p.date("due_date")?;
    let now = ctx.now();
    let updated_at = client_time(ctx, scope, "updated_at")?.unwrap_or_else(|| now.clone());
    let pid = scope.parent.id();
    let mut store = ctx.sim.write();
    let milestone_id = p.u64("milestone_id")?;
    if milestone_id.is_some_and(|m| m != 0 && !usable_milestone(&store, pid, m)) {
        return Err(ApiError::NotFound("Milestone"));
    }
    let mut labels = store
        .issues
        .get(id)
        .map(|i| i.labels.clone())
        .unwrap_or_default();
    if let Some(set) = p.list("labels") {
        labels = super::epics::ensure_labels(&mut store, scope.parent, &set, &now);
    }
    if let Some(add) = p.list("add_labels") {
        labels.extend(super::epics::ensure_labels(
            &mut store,
            scope.parent,
            &add,
            &now,
        ));
        labels.dedup();
    }
    if let Some(remove) = p.list("remove_labels") {
        labels.retain(|l| !remove.contains(l));
    }
    let assignees = ids(ctx, "assignee_ids");
    let epic_id = p.u64("epic_id")?;
    if epic_id.is_some_and(|e| e != 0 && store.epics.get(e).is_none()) {
        return Err(ApiError::NotFound("Epic"));
    }
    let user_id = ctx.user_id;
    let issue = store
        .issues
        .get_mut(id)
        .ok_or(ApiError::NotFound("Issue"))?;
    issue.labels = labels;
    if let Some(title) = p.text("title") {
        issue.title = title;
    }
    if let Some(description) = p.text("description") {
        issue.description = description;
    }
    if let Some(confidential) = p.bool("confidential")? {
        issue.confidential = confidential;
    }
    if let Some(m) = milestone_id {
        issue.milestone_id = (m != 0).then_some(m);
    }
    if let Some(a) = assignees {
        issue.assignee_ids = a;
    }
    if let Some(d) = due_date {
        issue.due_date = d;
    }
    if let Some(w) = p.u64("weight")? {
        issue.weight = Some(w);
    }
    if let Some(locked) = p.bool("discussion_locked")? {
        issue.discussion_locked = Some(locked);
    }
    if let Some(epic) = epic_id {
        issue.epic_id = (epic != 0).then_some(epic);
    }
    match state_event.as_deref() {
        Some("close") if issue.state != "closed" => {
            issue.state = "closed".into();
            issue.closed_at = Some(updated_at.clone());
            issue.closed_by_id = Some(user_id);
        }
        Some("reopen") => {
            issue.state = "opened".into();
            issue.closed_at = None;
            issue.closed_by_id = None;
        }
        _ => {}
    }
    issue.updated_at = updated_at;
    let issue = issue.clone();
    Ok(Reply::ok(render(ctx.sim, &store, &issue)))
}

/// Deleting an issue needs the owner role, as in GitLab.
pub fn remove(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    scope.require(access::OWNER)?;
    let id = find(ctx, scope, raw_iid)?;
    let mut store = ctx.sim.write();
    store.issues.remove(id);
    Ok(Reply::no_content())
}

//! Project merge requests: list, read, create (409 for a second open one on a source branch),
//! update (`state_event=close|reopen`). Branches are not checked against the repository.
//! It never touches the git repository.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::issues::client_time;
use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{MergeRequest, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, mr: &MergeRequest) -> Value {
    let full_path = store
        .project(mr.project_id)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default();
    let (mut up, mut down) = (0, 0);
    for award in store.award_emoji.children(Parent::MergeRequest(mr.id)) {
        match award.name.as_str() {
            "thumbsup" => up += 1,
            "thumbsdown" => down += 1,
            _ => {}
        }
    }
    let users = |ids: &[u64]| -> Vec<Value> {
        ids.iter()
            .map(|id| super::users::basic(sim, store, *id))
            .collect()
    };
    let assignees = users(&mr.assignee_ids);
    let merged_by = mr
        .merged_by_id
        .map(|id| super::users::basic(sim, store, id));
    json!({
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project_id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": mr.created_at,
        "updated_at": mr.updated_at,
        "merged_by": merged_by,
        "merge_user": merged_by,
        "merged_at": mr.merged_at,
        "closed_by": mr.closed_by_id.map(|id| super::users::basic(sim, store, id)),
        "closed_at": mr.closed_at,
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "user_notes_count": store.notes.children(Parent::MergeRequest(mr.id)).filter(|n| !n.system).count(),
        "upvotes": up,
        "downvotes": down,
        "author": super::users::basic(sim, store, mr.author_id),
        "assignees": assignees,
        "assignee": assignees.first(),
        "reviewers": users(&mr.reviewer_ids),
        "source_project_id": mr.project_id,
        "target_project_id": mr.project_id,
        "labels": mr.labels,
        "draft": mr.draft,
        "work_in_progress": mr.draft,
        "milestone": mr.milestone_id.and_then(|id| store.milestones.get(id)).map(|m| super::milestones::render(sim, store, m)),
        "merge_when_pipeline_succeeds": false,
        "merge_status": "can_be_merged",
        "detailed_merge_status": if mr.state == "opened" { "mergeable" } else { "not_open" },
        "sha": mr.sha,
        "merge_commit_sha": mr.merge_commit_sha,
        "squash_commit_sha": null,
        "discussion_locked": null,
        "should_remove_source_branch": null,
        "force_remove_source_branch": true,
        "prepared_at": mr.created_at,
        "reference": format!("!{}", mr.iid),
        "references": {
            "short": format!("!{}", mr.iid),
            "relative": format!("!{}", mr.iid),
            "full": format!("{full_path}!{}", mr.iid),
        },
        "web_url": format!("{}/{}/-/merge_requests/{}", sim.base_url, full_path, mr.iid),
        "time_stats": { "time_estimate": 0, "total_time_spent": 0, "human_time_estimate": null, "human_total_time_spent": null },
        "squash": mr.squash,
        "squash_on_merge": mr.squash,
        "task_completion_status": { "count": 0, "completed_count": 0 },
        "has_conflicts": false,
        "blocking_discussions_resolved": true,
        "approvals_before_merge": null,
        "imported": false,
        "imported_from": "none",
    })
}

pub fn find(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    let iid: u64 = raw_iid
        .parse()
        .map_err(|_| ApiError::NotFound("Merge Request"))?;
    store
        .merge_requests
        .children(scope.parent)
        .find(|m| m.iid == iid)
        .map(|m| m.id)
        .ok_or(ApiError::NotFound("Merge Request"))
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let candidates: Vec<&MergeRequest> = store.merge_requests.children(scope.parent).collect();
    answer_list(ctx, &store, candidates, Keyset::Offered)
}

/// `/groups/:id/merge_requests`: merge requests of every visible project below the group.
pub fn list_in_group(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let gid = scope.parent.id();
    let candidates: Vec<&MergeRequest> = store
        .projects
        .values()
        .filter(|p| store.ancestors(p.namespace_id).contains(&gid))
        .filter(|p| store.project_access(ctx.user_id, p.id).is_some())
        .flat_map(|p| store.merge_requests.children(Parent::Project(p.id)))
        .collect();
    answer_list(ctx, &store, candidates, Keyset::NotOffered)
}

fn answer_list(ctx: &Ctx, store: &Store, candidates: Vec<&MergeRequest>, keyset: Keyset) -> Answer {
    let p = &ctx.params;
    let state = p.text("state");
    let labels = p.list("labels");
    let author = p.u64("author_id")?;
    let search = p.text("search").map(|s| s.to_lowercase());
    let created_after = p
        .text("created_after")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let updated_after = p
        .text("updated_after")
        .and_then(|t| crate::timestamp::normalize_time(&t));
    let iids: Vec<u64> = p
        .list("iids")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut mrs: Vec<&MergeRequest> = candidates
        .into_iter()
        .filter(|m| state.as_ref().is_none_or(|s| s == "all" || &m.state == s))
        .filter(|m| {
            labels
                .as_ref()
                .is_none_or(|ls| ls.iter().all(|l| m.labels.contains(l)))
        })
        .filter(|m| author.is_none_or(|a| m.author_id == a))
        .filter(|m| iids.is_empty() || iids.contains(&m.iid))
        .filter(|m| created_after.as_ref().is_none_or(|t| &m.created_at >= t))
        .filter(|m| updated_after.as_ref().is_none_or(|t| &m.updated_at >= t))
        .filter(|m| {
            search.as_ref().is_none_or(|s| {
                m.title.to_lowercase().contains(s) || m.description.to_lowercase().contains(s)
            })
        })
        .collect();
    match p.text("order_by").as_deref() {
        Some("updated_at") => {
            mrs.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)))
        }
        Some("title") => mrs.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        _ => mrs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))),
    }
    if p.text("sort").as_deref() != Some("asc") {
        mrs.reverse();
    }
    paginate(ctx, mrs, keyset, |m| m.id, |m| render(ctx.sim, store, m))
}

pub fn get(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    let id = find(ctx, scope, raw_iid)?;
    let store = ctx.sim.read();
    let mr = store
        .merge_requests
        .get(id)
        .ok_or(ApiError::NotFound("Merge Request"))?;
    Ok(Reply::ok(render(ctx.sim, &store, mr)))
}

fn ids(ctx: &Ctx, key: &str) -> Option<Vec<u64>> {
    ctx.params
        .list(key)
        .map(|list| list.iter().filter_map(|s| s.parse().ok()).collect())
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::DEVELOPER)?;
    let p = &ctx.params;
    let missing: Vec<&str> = ["source_branch", "target_branch", "title"]
        .into_iter()
        .filter(|k| !p.has(k))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::Param(
            missing
                .iter()
                .map(|k| format!("{k} is missing"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let source_branch = p.required("source_branch")?;
    let target_branch = p.required("target_branch")?;
    let title = p.required("title")?;
    let now = ctx.now();
    let created_at = client_time(ctx, scope, "created_at")?.unwrap_or_else(|| now.clone());
    let mut store = ctx.sim.write();
    if source_branch == target_branch {
        return Err(ApiError::bad_request(json!([
            "You can't use same project/branch for source and target"
        ])));
    }
    if let Some(open) = store.merge_requests.children(scope.parent).find(|m| {
        m.state == "opened" && m.source_branch == source_branch && m.target_branch == target_branch
    }) {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            json!([format!(
                "Another open merge request already exists for this source branch: !{}",
                open.iid
            )]),
        ));
    }
    let labels = super::epics::ensure_labels(
        &mut store,
        scope.parent,
        &p.list("labels").unwrap_or_default(),
        &now,
    );
    let id = store.merge_requests.next_id();
    let iid = store.merge_requests.next_iid(scope.parent);
    let mr = MergeRequest {
        id,
        iid,
        project_id: scope.parent.id(),
        draft: title.starts_with("Draft:") || title.starts_with("[Draft]"),
        title,
        description: p.text("description").unwrap_or_default(),
        state: "opened".into(),
        author_id: ctx.user_id,
        assignee_ids: ids(ctx, "assignee_ids").unwrap_or_default(),
        reviewer_ids: ids(ctx, "reviewer_ids").unwrap_or_default(),
        labels,
        milestone_id: p.u64("milestone_id")?,
        source_branch,
        target_branch,
        squash: p.bool("squash")?.unwrap_or(false),
        sha: None,
        merge_commit_sha: None,
        updated_at: created_at.clone(),
        created_at,
        merged_at: None,
        merged_by_id: None,
        closed_at: None,
        closed_by_id: None,
    };
    let value = render(ctx.sim, &store, &mr);
    store.merge_requests.insert(mr);
    Ok(Reply::created(value))
}

pub fn update(ctx: &Ctx, scope: &Scope, raw_iid: &str) -> Answer {
    scope.require(access::DEVELOPER)?;
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
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let labels = p
        .list("labels")
        .map(|set| super::epics::ensure_labels(&mut store, scope.parent, &set, &now));
    let user_id = ctx.user_id;
    let mr = store
        .merge_requests
        .get_mut(id)
        .ok_or(ApiError::NotFound("Merge Request"))?;
    if let Some(labels) = labels {
        mr.labels = labels;
    }
    if let Some(title) = p.text("title") {
        mr.title = title;
    }
    if let Some(description) = p.text("description") {
        mr.description = description;
    }
    if let Some(target) = p.text("target_branch") {
        mr.target_branch = target;
    }
    if let Some(m) = p.u64("milestone_id")? {
        mr.milestone_id = (m != 0).then_some(m);
    }
    if let Some(a) = ids(ctx, "assignee_ids") {
        mr.assignee_ids = a;
    }
    match state_event.as_deref() {
        Some("close") if mr.state == "opened" => {
            mr.state = "closed".into();
            mr.closed_at = Some(now.clone());
            mr.closed_by_id = Some(user_id);
        }
        Some("reopen") if mr.state == "closed" => {
            mr.state = "opened".into();
            mr.closed_at = None;
            mr.closed_by_id = None;
        }
        _ => {}
    }
    mr.updated_at = now;
    let mr = mr.clone();
    Ok(Reply::ok(render(ctx.sim, &store, &mr)))
}

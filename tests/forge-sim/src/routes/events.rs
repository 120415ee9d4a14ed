//! Read-only views derived from records: resource state events of issues and merge requests
//! (from their closed/merged timestamps) and merge request approvals (merged ones are approved
//! by whoever merged them). It never stores anything: all of it is computed on each request.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::Parent;
use crate::pagination::{Keyset, paginate};

/// `GET .../issues/:iid/resource_state_events` and the merge request equivalent.
pub fn state_events(ctx: &Ctx, scope: &Scope, eventable: Parent) -> Answer {
    let _ = scope;
    let store = ctx.sim.read();
    let (resource_type, events): (&str, Vec<(u64, &str, &str)>) = match eventable {
        Parent::Issue(id) => {
            let issue = store.issues.get(id).ok_or(ApiError::NotFound("Issue"))?;
            let events = match (&issue.closed_at, issue.closed_by_id) {
                (Some(at), Some(by)) => vec![(by, at.as_str(), "closed")],
                _ => Vec::new(),
            };
            ("Issue", events)
        }
        Parent::MergeRequest(id) => {
            let mr = store
                .merge_requests
                .get(id)
                .ok_or(ApiError::NotFound("Merge Request"))?;
            let mut events = Vec::new();
            if let (Some(at), Some(by)) = (&mr.merged_at, mr.merged_by_id) {
                events.push((by, at.as_str(), "merged"));
            }
            if let (Some(at), Some(by)) = (&mr.closed_at, mr.closed_by_id) {
                events.push((by, at.as_str(), "closed"));
            }
            ("MergeRequest", events)
        }
        _ => return Err(ApiError::NoRoute),
    };
    let rendered: Vec<Value> = events
        .into_iter()
        .enumerate()
        .map(|(n, (user, at, state))| {
            json!({
                "id": eventable.id() * 10 + n as u64,
                "user": super::users::basic(ctx.sim, &store, user),
                "created_at": at,
                "resource_type": resource_type,
                "resource_id": eventable.id(),
                "state": state,
            })
        })
        .collect();
    paginate(ctx, rendered, Keyset::NotOffered, |_| 0, Value::clone)
}

/// `GET /projects/:id/merge_requests/:iid/approvals`.
pub fn approvals(ctx: &Ctx, scope: &Scope, mr_id: u64) -> Answer {
    let _ = scope;
    let store = ctx.sim.read();
    let mr = store
        .merge_requests
        .get(mr_id)
        .ok_or(ApiError::NotFound("Merge Request"))?;
    let approved_by: Vec<Value> = match (&mr.merged_at, mr.merged_by_id) {
        (Some(at), Some(by)) => vec![json!({
            "user": super::users::basic(ctx.sim, &store, by),
            "approved_at": at,
        })],
        _ => Vec::new(),
    };
    Ok(Reply::ok(json!({
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project_id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": mr.created_at,
        "updated_at": mr.updated_at,
        "merge_status": "can_be_merged",
        "approved": !approved_by.is_empty(),
        "approvals_required": 0,
        "approvals_left": 0,
        "require_password_to_approve": false,
        "approved_by": approved_by,
        "suggested_approvers": [],
        "approvers": [],
        "approver_groups": [],
        "user_has_approved": false,
        "user_can_approve": false,
        "approval_rules_left": [],
        "has_approval_rules": false,
        "merge_request_approvers_available": false,
        "multiple_approval_rules_available": false,
        "invalid_approvers_rules": [],
    })))
}

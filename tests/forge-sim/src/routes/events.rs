//! Resource events and merge request approvals. Epics' state and label events are recorded as they
//! happen ([`record_state`], [`record_labels`], called by the writes that cause them and by the
//! datasets); those of issues and merge requests are derived from their closed/merged timestamps,
//! and merge request approvals from who merged them (merged ones are approved by whoever merged
//! them). Reading never stores anything.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{LabelEvent, Parent, StateEvent};
use crate::pagination::{Keyset, paginate};
use crate::state::Store;

/// Records that `user_id` changed the epic's state to `state` (`closed` or `reopened`).
pub fn record_state(store: &mut Store, eventable: Parent, user_id: u64, state: &str, at: &str) {
    let id = store.state_events.next_id();
    store.state_events.insert(StateEvent {
        id,
        eventable,
        user_id,
        state: state.to_string(),
        created_at: at.to_string(),
    });
}

/// Records the labels `after` has and `before` had not ("add", in `after`'s order), then those it
/// lost ("remove", in `before`'s order), as GitLab does for one change of an epic's labels.
/// `owner` is the group whose labels (and its ancestors') the names are looked up in.
pub fn record_labels(
    store: &mut Store,
    eventable: Parent,
    owner: Parent,
    user_id: u64,
    before: &[String],
    after: &[String],
    at: &str,
) {
    let added = after
        .iter()
        .filter(|l| !before.contains(l))
        .map(|l| (l, "add"));
    let removed = before
        .iter()
        .filter(|l| !after.contains(l))
        .map(|l| (l, "remove"));
    let changes: Vec<(u64, &str)> = added
        .chain(removed)
        .filter_map(|(name, action)| {
            super::labels::available(store, owner, true)
                .into_iter()
                .find(|l| &l.name == name)
                .map(|l| (l.id, action))
        })
        .collect();
    for (label_id, action) in changes {
        let id = store.label_events.next_id();
        store.label_events.insert(LabelEvent {
            id,
            eventable,
            user_id,
            label_id,
            action: action.to_string(),
            created_at: at.to_string(),
        });
    }
}

/// `GET .../issues/:iid/resource_state_events`, the merge request equivalent, and
/// `GET /groups/:id/epics/:epic_id/resource_state_events` (by the epic's id), oldest first.
pub fn state_events(ctx: &Ctx, scope: &Scope, eventable: Parent) -> Answer {
    let _ = scope;
    let store = ctx.sim.read();
    // (id, user, created_at, state); derived events get ids from their record's id.
    let derived = |events: Vec<(u64, &str, &'static str)>| -> Vec<(u64, u64, String, String)> {
        events
            .into_iter()
            .enumerate()
            .map(|(n, (by, at, state))| {
                (
                    eventable.id() * 10 + n as u64,
                    by,
                    at.to_string(),
                    state.to_string(),
                )
            })
            .collect()
    };
    let (resource_type, events) = match eventable {
        Parent::Issue(id) => {
            let issue = store.issues.get(id).ok_or(ApiError::NotFound("Issue"))?;
            let events = match (&issue.closed_at, issue.closed_by_id) {
                (Some(at), Some(by)) => vec![(by, at.as_str(), "closed")],
                _ => Vec::new(),
            };
            ("Issue", derived(events))
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
            ("MergeRequest", derived(events))
        }
        Parent::Epic(_) => {
            let events = store
                .state_events
                .children(eventable)
                .map(|e| (e.id, e.user_id, e.created_at.clone(), e.state.clone()))
                .collect();
            ("Epic", events)
        }
        _ => return Err(ApiError::NoRoute),
    };
    paginate(
        ctx,
        events,
        Keyset::NotOffered,
        |(id, ..)| *id,
        |(id, user, at, state)| {
            json!({
                "id": id,
                "user": super::users::basic(ctx.sim, &store, *user),
                "created_at": at,
                "resource_type": resource_type,
                "resource_id": eventable.id(),
                "state": state,
            })
        },
    )
}

/// `GET /groups/:id/epics/:epic_id/resource_label_events` (by the epic's id), oldest first. The
/// label is rendered as it is now; null once it was deleted, as GitLab does.
pub fn label_events(ctx: &Ctx, scope: &Scope, eventable: Parent) -> Answer {
    let _ = scope;
    if !matches!(eventable, Parent::Epic(_)) {
        return Err(ApiError::NoRoute);
    }
    let store = ctx.sim.read();
    let events: Vec<&LabelEvent> = store.label_events.children(eventable).collect();
    paginate(
        ctx,
        events,
        Keyset::NotOffered,
        |e| e.id,
        |e| {
            let label = store.labels.get(e.label_id).map(|l| {
                json!({
                    "id": l.id,
                    "name": l.name,
                    "color": l.color,
                    "description": l.description,
                })
            });
            json!({
                "id": e.id,
                "user": super::users::basic(ctx.sim, &store, e.user_id),
                "created_at": e.created_at,
                "resource_type": "Epic",
                "resource_id": eventable.id(),
                "label": label,
                "action": e.action,
            })
        },
    )
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

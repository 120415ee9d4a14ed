//! Group and project milestones: list, read, create (a duplicate title is a 400), update
//! (including `state_event=close|activate`). iids count per group or project.
//! It never changes the issues or merge requests that point at a milestone.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Milestone, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, milestone: &Milestone) -> Value {
    let (owner_key, web_url) = match milestone.owner {
        Parent::Group(id) => (
            "group_id",
            store.group(id).map(|g| {
                format!(
                    "{}/groups/{}/-/milestones/{}",
                    sim.base_url, g.full_path, milestone.iid
                )
            }),
        ),
        _ => (
            "project_id",
            store.project(milestone.owner.id()).map(|p| {
                format!(
                    "{}/{}/-/milestones/{}",
                    sim.base_url, p.path_with_namespace, milestone.iid
                )
            }),
        ),
    };
    let today = crate::timestamp::format_date(time::OffsetDateTime::now_utc().date());
    let expired = milestone.state == "active"
        && milestone
            .due_date
            .as_ref()
            .is_some_and(|d| d.as_str() < today.as_str());
    let mut value = json!({
        "id": milestone.id,
        "iid": milestone.iid,
        "title": milestone.title,
        "description": milestone.description,
        "state": milestone.state,
        "created_at": milestone.created_at,
        "updated_at": milestone.updated_at,
        "due_date": milestone.due_date,
        "start_date": milestone.start_date,
        "expired": expired,
        "web_url": web_url,
    });
    super::users::merge(&mut value, json!({ owner_key: milestone.owner.id() }));
    value
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let state = ctx.params.text("state");
    let title = ctx.params.text("title");
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let iids: Vec<u64> = ctx
        .params
        .list("iids")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut owners = vec![scope.parent];
    if ctx.params.bool("include_ancestors")?.unwrap_or(false)
        || ctx
            .params
            .bool("include_parent_milestones")?
            .unwrap_or(false)
    {
        let start = match scope.parent {
            Parent::Project(id) => store.project(id).map(|p| p.namespace_id),
            other => store.group(other.id()).and_then(|g| g.parent_id),
        };
        if let Some(gid) = start {
            owners.extend(store.ancestors(gid).into_iter().map(Parent::Group));
        }
    }
    // GitLab lists milestones newest first (`order_id_desc`).
    let mut milestones: Vec<&Milestone> = owners
        .into_iter()
        .flat_map(|o| store.milestones.children(o))
        .filter(|m| state.as_ref().is_none_or(|s| s == "all" || &m.state == s))
        .filter(|m| title.as_ref().is_none_or(|t| &m.title == t))
        .filter(|m| iids.is_empty() || iids.contains(&m.iid))
        .filter(|m| {
            search.as_ref().is_none_or(|s| {
                m.title.to_lowercase().contains(s) || m.description.to_lowercase().contains(s)
            })
        })
        .collect();
    milestones.sort_by_key(|m| std::cmp::Reverse(m.id));
    paginate(
        ctx,
        milestones,
        Keyset::NotOffered,
        |m| m.id,
        |m| render(ctx.sim, &store, m),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let milestone = raw
        .parse::<u64>()
        .ok()
        .and_then(|id| store.milestones.get(id))
        .filter(|m| m.owner == scope.parent)
        .ok_or(ApiError::NotFound("Milestone"))?;
    Ok(Reply::ok(render(ctx.sim, &store, milestone)))
}

/// GitLab's `uniqueness_of_title`: a project milestone clashes with its own and its groups'
/// milestones; a group milestone with those of its whole hierarchy and the projects in it.
fn title_taken(store: &Store, owner: Parent, title: &str) -> bool {
    let owners: Vec<Parent> = match owner {
        Parent::Project(pid) => {
            let mut owners = vec![owner];
            if let Some(project) = store.project(pid) {
                owners.extend(
                    store
                        .ancestors(project.namespace_id)
                        .into_iter()
                        .map(Parent::Group),
                );
            }
            owners
        }
        other => {
            let gid = other.id();
            let mut groups = store.ancestors(gid);
            groups.extend(store.descendant_groups(gid).iter().map(|g| g.id));
            let projects: Vec<Parent> = store
                .projects
                .values()
                .filter(|p| store.ancestors(p.namespace_id).contains(&gid))
                .map(|p| Parent::Project(p.id))
                .collect();
            groups
                .into_iter()
                .map(Parent::Group)
                .chain(projects)
                .collect()
        }
    };
    owners
        .into_iter()
        .any(|o| store.milestones.children(o).any(|m| m.title == title))
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let title = ctx.params.required("title")?;
    let due_date = ctx.params.date("due_date")?.flatten();
    let start_date = ctx.params.date("start_date")?.flatten();
    let now = ctx.now();
    let mut store = ctx.sim.write();
    if title_taken(&store, scope.parent, &title) {
        return Err(ApiError::bad_request(format!(
            "Failed to create milestone {}",
            super::groups::ruby_errors(&[(
                "title",
                "already being used for another group or project milestone.".into()
            )])
        )));
    }
    let id = store.milestones.next_id();
    let iid = store.milestones.next_iid(scope.parent);
    let milestone = Milestone {
        id,
        iid,
        owner: scope.parent,
        title,
        description: ctx.params.text("description").unwrap_or_default(),
        state: "active".into(),
        due_date,
        start_date,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render(ctx.sim, &store, &milestone);
    store.milestones.insert(milestone);
    Ok(Reply::created(value))
}

pub fn update(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let due_date = ctx.params.date("due_date")?;
    let start_date = ctx.params.date("start_date")?;
    let state_event = ctx.params.text("state_event");
    if let Some(event) = &state_event
        && event != "close"
        && event != "activate"
    {
        return Err(ApiError::Param(
            "state_event does not have a valid value".into(),
        ));
    }
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let id = raw
        .parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .milestones
                .get(*id)
                .is_some_and(|m| m.owner == scope.parent)
        })
        .ok_or(ApiError::NotFound("Milestone"))?;
    let milestone = store
        .milestones
        .get_mut(id)
        .ok_or(ApiError::NotFound("Milestone"))?;
    if let Some(title) = ctx.params.text("title") {
        milestone.title = title;
    }
    if let Some(description) = ctx.params.text("description") {
        milestone.description = description;
    }
    if let Some(due) = due_date {
        milestone.due_date = due;
    }
    if let Some(start) = start_date {
        milestone.start_date = start;
    }
    match state_event.as_deref() {
        Some("close") => milestone.state = "closed".into(),
        Some("activate") => milestone.state = "active".into(),
        _ => {}
    }
    milestone.updated_at = now;
    let milestone = milestone.clone();
    Ok(Reply::ok(render(ctx.sim, &store, &milestone)))
}

pub fn remove(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let mut store = ctx.sim.write();
    let id = raw
        .parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .milestones
                .get(*id)
                .is_some_and(|m| m.owner == scope.parent)
        })
        .ok_or(ApiError::NotFound("Milestone"))?;
    store.milestones.remove(id);
    Ok(Reply::no_content())
}

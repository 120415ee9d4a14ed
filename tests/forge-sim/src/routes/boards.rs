//! Issue boards of groups and projects and their lists (label, milestone or iteration lists,
//! positioned in creation order from 0).
//! It never creates labels, milestones or iterations; a list must name an existing one.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Board, BoardList, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

fn render_list(sim: &Sim, store: &Store, list: &BoardList) -> Value {
    let label = list.label_id.and_then(|id| store.labels.get(id)).map(|l| {
        json!({
            "id": l.id, "name": l.name, "color": l.color, "text_color": l.text_color,
            "description": l.description, "description_html": "",
        })
    });
    let milestone = list
        .milestone_id
        .and_then(|id| store.milestones.get(id))
        .map(|m| super::milestones::render(sim, store, m));
    let iteration = list
        .iteration_id
        .and_then(|id| store.iterations.get(id))
        .map(|i| super::iterations::render(sim, store, i));
    json!({
        "id": list.id,
        "label": label,
        "position": list.position,
        "max_issue_count": 0,
        "max_issue_weight": 0,
        "limit_metric": null,
        "milestone": milestone,
        "iteration": iteration,
        "assignee": null,
        "list_type": list.list_type,
    })
}

pub fn render(sim: &Sim, store: &Store, board: &Board) -> Value {
    let lists: Vec<Value> = store
        .board_lists
        .children(Parent::Board(board.id))
        .map(|l| render_list(sim, store, l))
        .collect();
    let (project, group) = match board.owner {
        Parent::Project(id) => (
            store
                .project(id)
                .map(|p| super::projects::render(sim, store, p, false)),
            None,
        ),
        other => (
            None,
            store.group(other.id()).map(|g| {
                json!({ "id": g.id, "name": g.name, "web_url": format!("{}/groups/{}", sim.base_url, g.full_path) })
            }),
        ),
    };
    let mut value = json!({
        "id": board.id,
        "name": board.name,
        "hide_backlog_list": board.hide_backlog_list,
        "hide_closed_list": board.hide_closed_list,
        "project": project,
        "lists": lists,
        "milestone": null,
        "assignee": null,
        "labels": [],
        "weight": null,
        "iteration": null,
    });
    if let Some(group) = group {
        super::users::merge(&mut value, json!({ "group": group }));
    }
    value
}

fn find(store: &Store, scope: &Scope, raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .boards
                .get(*id)
                .is_some_and(|b| b.owner == scope.parent)
        })
        .ok_or(ApiError::NotFound("Board"))
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let boards: Vec<&Board> = store.boards.children(scope.parent).collect();
    paginate(
        ctx,
        boards,
        Keyset::NotOffered,
        |b| b.id,
        |b| render(ctx.sim, &store, b),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let id = find(&store, scope, raw)?;
    let board = store.boards.get(id).ok_or(ApiError::NotFound("Board"))?;
    Ok(Reply::ok(render(ctx.sim, &store, board)))
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let name = ctx.params.required("name")?;
    let mut store = ctx.sim.write();
    let id = store.boards.next_id();
    let board = Board {
        id,
        owner: scope.parent,
        name,
        hide_backlog_list: ctx.params.bool("hide_backlog_list")?.unwrap_or(false),
        hide_closed_list: ctx.params.bool("hide_closed_list")?.unwrap_or(false),
        created_at: ctx.now(),
    };
    let value = render(ctx.sim, &store, &board);
    store.boards.insert(board);
    Ok(Reply::created(value))
}

pub fn lists(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let id = find(&store, scope, raw)?;
    let mut lists: Vec<&BoardList> = store.board_lists.children(Parent::Board(id)).collect();
    lists.sort_by_key(|l| (l.position, l.id));
    paginate(
        ctx,
        lists,
        Keyset::NotOffered,
        |l| l.id,
        |l| render_list(ctx.sim, &store, l),
    )
}

/// The groups and project whose labels or milestones a board in `scope` may use.
fn available_owners(store: &Store, scope: &Scope) -> Vec<Parent> {
    let (first, group) = match scope.parent {
        Parent::Project(id) => (scope.parent, store.project(id).map(|p| p.namespace_id)),
        other => (other, store.group(other.id()).and_then(|g| g.parent_id)),
    };
    let mut owners = vec![first];
    if let Some(gid) = group {
        owners.extend(store.ancestors(gid).into_iter().map(Parent::Group));
    }
    owners
}

pub fn create_list(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let label_id = ctx.params.u64("label_id")?;
    let milestone_id = ctx.params.u64("milestone_id")?;
    let iteration_id = ctx.params.u64("iteration_id")?;
    let given = [
        label_id,
        milestone_id,
        iteration_id,
        ctx.params.u64("assignee_id")?,
    ]
    .iter()
    .filter(|v| v.is_some())
    .count();
    if given != 1 {
        return Err(ApiError::Param(
            "label_id, milestone_id, iteration_id, assignee_id are mutually exclusive".into(),
        ));
    }
    let mut store = ctx.sim.write();
    let board_id = find(&store, scope, raw)?;
    let owners = available_owners(&store, scope);
    let list_type = if let Some(id) = label_id {
        if !store
            .labels
            .get(id)
            .is_some_and(|l| owners.contains(&l.owner))
        {
            return Err(ApiError::bad_request(json!({ "error": "Label not found" })));
        }
        "label"
    } else if let Some(id) = milestone_id {
        if !store
            .milestones
            .get(id)
            .is_some_and(|m| owners.contains(&m.owner))
        {
            return Err(ApiError::bad_request(
                json!({ "error": "Milestone not found" }),
            ));
        }
        "milestone"
    } else if let Some(id) = iteration_id {
        if !store
            .iterations
            .get(id)
            .is_some_and(|i| owners.contains(&Parent::Group(i.group_id)))
        {
            return Err(ApiError::bad_request(
                json!({ "error": "Iteration not found" }),
            ));
        }
        "iteration"
    } else {
        return Err(ApiError::bad_request(
            json!({ "error": "Assignee lists are not supported" }),
        ));
    };
    let existing: Vec<&BoardList> = store
        .board_lists
        .children(Parent::Board(board_id))
        .collect();
    if existing.iter().any(|l| {
        (label_id.is_some() && l.label_id == label_id)
            || (milestone_id.is_some() && l.milestone_id == milestone_id)
            || (iteration_id.is_some() && l.iteration_id == iteration_id)
    }) {
        return Err(ApiError::bad_request(
            json!({ list_type: ["has already been taken"] }),
        ));
    }
    let position = existing.iter().map(|l| l.position + 1).max().unwrap_or(0);
    let id = store.board_lists.next_id();
    let list = BoardList {
        id,
        board_id,
        list_type: list_type.into(),
        label_id,
        milestone_id,
        iteration_id,
        position,
    };
    let value = render_list(ctx.sim, &store, &list);
    store.board_lists.insert(list);
    Ok(Reply::created(value))
}

pub fn remove(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let mut store = ctx.sim.write();
    let id = find(&store, scope, raw)?;
    let lists: Vec<u64> = store
        .board_lists
        .children(Parent::Board(id))
        .map(|l| l.id)
        .collect();
    for list in lists {
        store.board_lists.remove(list);
    }
    store.boards.remove(id);
    Ok(Reply::no_content())
}

pub fn update(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let hide_backlog = ctx.params.bool("hide_backlog_list")?;
    let hide_closed = ctx.params.bool("hide_closed_list")?;
    let mut store = ctx.sim.write();
    let id = find(&store, scope, raw)?;
    let board = store
        .boards
        .get_mut(id)
        .ok_or(ApiError::NotFound("Board"))?;
    if let Some(name) = ctx.params.text("name") {
        board.name = name;
    }
    if let Some(v) = hide_backlog {
        board.hide_backlog_list = v;
    }
    if let Some(v) = hide_closed {
        board.hide_closed_list = v;
    }
    let board = board.clone();
    Ok(Reply::ok(render(ctx.sim, &store, &board)))
}

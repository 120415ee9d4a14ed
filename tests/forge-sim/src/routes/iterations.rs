//! Group iterations and iteration cadences. Iterations of ancestor groups are listed too
//! (`include_ancestors`, default true), as GitLab does.
//! It never changes issues or boards.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Iteration, IterationCadence, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

fn state_name(state: u8) -> &'static str {
    match state {
        1 => "upcoming",
        2 => "current",
        _ => "closed",
    }
}

pub fn render(sim: &Sim, store: &Store, iteration: &Iteration) -> Value {
    let group_path = store
        .group(iteration.group_id)
        .map(|g| g.full_path.clone())
        .unwrap_or_default();
    json!({
        "id": iteration.id,
        "iid": iteration.iid,
        "sequence": iteration.sequence,
        "group_id": iteration.group_id,
        "title": iteration.title,
        "description": iteration.description,
        "state": iteration.state,
        "created_at": iteration.created_at,
        "updated_at": iteration.updated_at,
        "start_date": iteration.start_date,
        "due_date": iteration.due_date,
        "web_url": format!("{}/groups/{}/-/iterations/{}", sim.base_url, group_path, iteration.id),
        "iteration_cadence_id": iteration.cadence_id,
    })
}

pub fn render_cadence(cadence: &IterationCadence) -> Value {
    json!({
        "id": cadence.id,
        "title": cadence.title,
        "group_id": cadence.group_id,
        "description": cadence.description,
        "start_date": cadence.start_date,
        "duration_in_weeks": cadence.duration_in_weeks,
        "iterations_in_advance": cadence.iterations_in_advance,
        "active": cadence.active,
        "automatic": cadence.automatic,
        "roll_over": cadence.roll_over,
    })
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let state = ctx.params.text("state");
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let groups = if ctx.params.bool("include_ancestors")?.unwrap_or(true) {
        store.ancestors(scope.parent.id())
    } else {
        vec![scope.parent.id()]
    };
    let mut iterations: Vec<&Iteration> = groups
        .into_iter()
        .flat_map(|gid| store.iterations.children(Parent::Group(gid)))
        .filter(|i| match state.as_deref() {
            None | Some("all") => true,
            Some("opened") => i.state != 3,
            Some(s) => state_name(i.state) == s,
        })
        .filter(|i| {
            search.as_ref().is_none_or(|s| {
                i.title
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(s)
            })
        })
        .collect();
    iterations.sort_by(|a, b| a.start_date.cmp(&b.start_date).then(a.id.cmp(&b.id)));
    paginate(
        ctx,
        iterations,
        Keyset::NotOffered,
        |i| i.id,
        |i| render(ctx.sim, &store, i),
    )
}

pub fn cadences(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let cadences: Vec<&IterationCadence> = store.cadences.children(scope.parent).collect();
    paginate(
        ctx,
        cadences,
        Keyset::NotOffered,
        |c| c.id,
        |c| render_cadence(c),
    )
}

pub fn create_cadence(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let title = ctx.params.required("title")?;
    let start_date = ctx
        .params
        .date("start_date")?
        .flatten()
        .ok_or_else(|| ApiError::missing("start_date"))?;
    let mut store = ctx.sim.write();
    let id = store.cadences.next_id();
    let cadence = IterationCadence {
        id,
        group_id: scope.parent.id(),
        title,
        description: ctx.params.text("description"),
        start_date,
        duration_in_weeks: Some(ctx.params.u64("duration_in_weeks")?.unwrap_or(2)),
        iterations_in_advance: Some(ctx.params.u64("iterations_in_advance")?.unwrap_or(2)),
        active: ctx.params.bool("active")?.unwrap_or(true),
        automatic: ctx.params.bool("automatic")?.unwrap_or(false),
        roll_over: ctx.params.bool("roll_over")?.unwrap_or(false),
    };
    let value = render_cadence(&cadence);
    store.cadences.insert(cadence);
    Ok(Reply::created(value))
}

/// Creates an iteration in a cadence of the group (the first one unless
/// `iteration_cadence_id` is given).
pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let start_date = ctx
        .params
        .date("start_date")?
        .flatten()
        .ok_or_else(|| ApiError::missing("start_date"))?;
    let due_date = ctx
        .params
        .date("due_date")?
        .flatten()
        .ok_or_else(|| ApiError::missing("due_date"))?;
    if due_date < start_date {
        return Err(ApiError::bad_request(
            json!({ "due_date": ["must be greater than start date"] }),
        ));
    }
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let first_cadence = store.cadences.children(scope.parent).next().map(|c| c.id);
    let cadence_id = match ctx.params.u64("iteration_cadence_id")? {
        Some(id) => store
            .cadences
            .get(id)
            .filter(|c| Parent::Group(c.group_id) == scope.parent)
            .map(|c| c.id)
            .ok_or(ApiError::NotFound("Iteration Cadence"))?,
        None => match first_cadence {
            Some(cadence) => cadence,
            None => {
                let id = store.cadences.next_id();
                store.cadences.insert(IterationCadence {
                    id,
                    group_id: scope.parent.id(),
                    title: "Iterations".into(),
                    description: None,
                    start_date: start_date.clone(),
                    duration_in_weeks: Some(2),
                    iterations_in_advance: Some(2),
                    active: true,
                    automatic: false,
                    roll_over: false,
                });
                id
            }
        },
    };
    let sequence = store
        .iterations
        .children(scope.parent)
        .filter(|i| i.cadence_id == cadence_id)
        .count() as u64
        + 1;
    let id = store.iterations.next_id();
    let iid = store.iterations.next_iid(scope.parent);
    let today = crate::timestamp::format_date(time::OffsetDateTime::now_utc().date());
    let state = if start_date > today {
        1
    } else if due_date >= today {
        2
    } else {
        3
    };
    let iteration = Iteration {
        id,
        iid,
        sequence,
        group_id: scope.parent.id(),
        cadence_id,
        title: ctx.params.text("title"),
        description: ctx.params.text("description"),
        state,
        start_date,
        due_date,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render(ctx.sim, &store, &iteration);
    store.iterations.insert(iteration);
    Ok(Reply::created(value))
}

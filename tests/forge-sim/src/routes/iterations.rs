//! Group iterations through REST: `GET /groups/:id/iterations`, the only iteration endpoint GitLab's
//! REST API has (iterations of ancestor groups are listed too, `include_ancestors`, default true).
//! The entity is GitLab's `API::Entities::Iteration`, which does not name the cadence. GitLab has
//! no REST endpoint for cadences and creates neither cadences nor iterations over REST:
//! those are GraphQL (`crate::graphql`), so `/groups/:id/iterations_cadences` and `POST
//! /groups/:id/iterations` answer 404 here as there. It never changes issues or boards.

use serde_json::{Value, json};

use super::{Answer, Ctx};
use crate::auth::Scope;
use crate::model::{Iteration, Parent};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

/// GitLab's name of an iteration state (1, 2, 3).
pub fn state_name(state: u8) -> &'static str {
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

//! Namespaces: `/namespaces`, `/namespaces/:id` and `/namespaces/:id/exists`, over groups only
//! (the simulator has no personal namespaces).
//! It never changes anything: every endpoint here is a read.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::error::ApiError;
use crate::model::Group;
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

fn render(sim: &Sim, store: &Store, group: &Group) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "path": group.path,
        "kind": "group",
        "full_path": group.full_path,
        "parent_id": group.parent_id,
        "avatar_url": group.avatar_url(&sim.base_url),
        "web_url": format!("{}/groups/{}", sim.base_url, group.full_path),
        "members_count_with_descendants": store.members.count(crate::model::Parent::Group(group.id)),
        "root_repository_size": 0,
        "projects_count": store.group_projects(group.id).count(),
    })
}

pub fn list(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let admin = store.is_admin(ctx.user_id);
    let groups: Vec<&Group> = store
        .groups
        .values()
        .filter(|g| admin || store.inherited_group_level(ctx.user_id, g.id).is_some())
        .filter(|g| {
            search.as_ref().is_none_or(|s| {
                g.full_path.to_lowercase().contains(s) || g.name.to_lowercase().contains(s)
            })
        })
        .collect();
    paginate(
        ctx,
        groups,
        Keyset::NotOffered,
        |g| g.id,
        |g| render(ctx.sim, &store, g),
    )
}

pub fn get(ctx: &Ctx, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let group = store
        .resolve_group(raw)
        .filter(|id| store.group_access(ctx.user_id, *id).is_some())
        .and_then(|id| store.group(id))
        .ok_or(ApiError::NotFound("Namespace"))?;
    Ok(Reply::ok(render(ctx.sim, &store, group)))
}

/// Whether `path` is taken below `parent_id` (or at the top level), with a suggestion.
pub fn exists(ctx: &Ctx, path: &str) -> Answer {
    let store = ctx.sim.read();
    let prefix = match ctx.params.u64("parent_id")? {
        Some(pid) => match store.group(pid) {
            Some(parent) => format!("{}/", parent.full_path),
            None => return Err(ApiError::NotFound("Namespace")),
        },
        None => String::new(),
    };
    let taken = |p: &str| store.path_taken(&format!("{prefix}{p}"));
    let exists = taken(path);
    let suggests: Vec<String> = if exists {
        (1..100)
            .map(|n| format!("{path}{n}"))
            .find(|p| !taken(p))
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    Ok(Reply::ok(json!({ "exists": exists, "suggests": suggests })))
}

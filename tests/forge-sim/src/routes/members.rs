//! Members of groups and projects: direct (`/members`) and with inherited ones (`/members/all`,
//! highest level per user along the ancestry), add, change level, remove.
//! It never lets a member grant a higher level than their own.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Member, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, member: &Member, viewer_is_admin: bool) -> Value {
    let mut value = super::users::basic(sim, store, member.user_id);
    super::users::merge(
        &mut value,
        json!({
            "access_level": member.access_level,
            "created_at": member.created_at,
            "created_by": member.created_by.map(|id| super::users::basic(sim, store, id)),
            "expires_at": member.expires_at,
            "membership_state": "active",
            "group_saml_identity": null,
            "is_using_seat": true,
        }),
    );
    if viewer_is_admin && let Some(user) = store.user(member.user_id) {
        super::users::merge(&mut value, json!({ "email": user.email }));
    }
    value
}

/// The sources whose members count for `scope`, nearest first.
fn sources(store: &Store, scope: &Scope, inherited: bool) -> Vec<Parent> {
    let mut sources = vec![scope.parent];
    if inherited {
        let group = match scope.parent {
            Parent::Project(id) => store.project(id).map(|p| p.namespace_id),
            other => store.group(other.id()).and_then(|g| g.parent_id),
        };
        if let Some(gid) = group {
            sources.extend(store.ancestors(gid).into_iter().map(Parent::Group));
        }
    }
    sources
}

/// Members of `scope`; with `inherited`, one entry per user with their highest level.
fn members<'s>(store: &'s Store, scope: &Scope, inherited: bool) -> Vec<&'s Member> {
    let mut found: Vec<&Member> = Vec::new();
    for source in sources(store, scope, inherited) {
        for member in store.members.children(source) {
            match found.iter_mut().find(|m| m.user_id == member.user_id) {
                Some(existing) if existing.access_level < member.access_level => *existing = member,
                Some(_) => {}
                None => found.push(member),
            }
        }
    }
    found
}

pub fn list(ctx: &Ctx, scope: &Scope, inherited: bool) -> Answer {
    let store = ctx.sim.read();
    let query = ctx.params.text("query").map(|s| s.to_lowercase());
    let user_ids: Vec<u64> = ctx
        .params
        .list("user_ids")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let admin = store.is_admin(ctx.user_id);
    let mut found = members(&store, scope, inherited);
    found.retain(|m| user_ids.is_empty() || user_ids.contains(&m.user_id));
    found.retain(|m| {
        query.as_ref().is_none_or(|q| {
            store.user(m.user_id).is_some_and(|u| {
                u.username.to_lowercase().contains(q) || u.name.to_lowercase().contains(q)
            })
        })
    });
    found.sort_by_key(|m| m.user_id);
    paginate(
        ctx,
        found,
        Keyset::NotOffered,
        |m| m.user_id,
        |m| render(ctx.sim, &store, m, admin),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw_user: &str, inherited: bool) -> Answer {
    let store = ctx.sim.read();
    let user_id: u64 = raw_user.parse().map_err(|_| ApiError::NotFound("Member"))?;
    let member = members(&store, scope, inherited)
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or(ApiError::NotFound("Member"))?;
    Ok(Reply::ok(render(
        ctx.sim,
        &store,
        member,
        store.is_admin(ctx.user_id),
    )))
}

fn access_level(ctx: &Ctx) -> Result<u8, ApiError> {
    let level = ctx
        .params
        .u64("access_level")?
        .ok_or_else(|| ApiError::missing("access_level"))?;
    match level {
        5 | 10 | 15 | 20 | 30 | 40 | 50 => Ok(level as u8),
        _ => Err(ApiError::Param(
            "access_level does not have a valid value".into(),
        )),
    }
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let username = ctx.params.text("username");
    let given_id = ctx.params.u64("user_id")?;
    if given_id.is_none() && username.is_none() {
        return Err(ApiError::Param(
            "user_id, username are missing, exactly one parameter must be provided".into(),
        ));
    }
    let level = access_level(ctx)?;
    if level > scope.level {
        return Err(ApiError::Forbidden);
    }
    let expires_at = ctx.params.date("expires_at")?.flatten();
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let user_id = match (given_id, &username) {
        (Some(id), _) => store.user(id).map(|u| u.id),
        (None, Some(name)) => store.user_by_username(name).map(|u| u.id),
        (None, None) => None,
    }
    .ok_or(ApiError::NotFound("User"))?;
    if store
        .members
        .children(scope.parent)
        .any(|m| m.user_id == user_id)
    {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            "Member already exists",
        ));
    }
    let id = store.members.next_id();
    let member = Member {
        id,
        source: scope.parent,
        user_id,
        access_level: level,
        created_at: now,
        expires_at,
        created_by: Some(ctx.user_id),
    };
    let value = render(ctx.sim, &store, &member, store.is_admin(ctx.user_id));
    store.members.insert(member);
    Ok(Reply::created(value))
}

pub fn update(ctx: &Ctx, scope: &Scope, raw_user: &str) -> Answer {
    scope.require(access::MAINTAINER)?;
    let level = access_level(ctx)?;
    let user_id: u64 = raw_user.parse().map_err(|_| ApiError::NotFound("Member"))?;
    let mut store = ctx.sim.write();
    let id = store
        .members
        .children(scope.parent)
        .find(|m| m.user_id == user_id)
        .map(|m| m.id)
        .ok_or(ApiError::NotFound("Member"))?;
    let member = store
        .members
        .get_mut(id)
        .ok_or(ApiError::NotFound("Member"))?;
    member.access_level = level;
    let member = member.clone();
    Ok(Reply::ok(render(
        ctx.sim,
        &store,
        &member,
        store.is_admin(ctx.user_id),
    )))
}

pub fn remove(ctx: &Ctx, scope: &Scope, raw_user: &str) -> Answer {
    scope.require(access::MAINTAINER)?;
    let user_id: u64 = raw_user.parse().map_err(|_| ApiError::NotFound("Member"))?;
    let mut store = ctx.sim.write();
    let id = store
        .members
        .children(scope.parent)
        .find(|m| m.user_id == user_id)
        .map(|m| m.id)
        .ok_or(ApiError::NotFound("Member"))?;
    store.members.remove(id);
    Ok(Reply::no_content())
}

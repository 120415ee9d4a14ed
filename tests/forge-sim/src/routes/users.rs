//! Users: `/user`, `/users`, `/users/:id`, and how a user is embedded in other records
//! (`author`, `assignees`, members). Only admins and the user themself see `email`;
//! everybody sees `public_email`, which is what email-based user mapping relies on.
//! It never shows `email` to anyone but admins and the user themself, and never creates users.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::error::ApiError;
use crate::model::User;
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

/// The short form GitLab embeds as `author`, `assignee`, `user` ...
pub fn basic(sim: &Sim, store: &Store, user_id: u64) -> Value {
    match store.user(user_id) {
        Some(user) => basic_of(sim, user),
        None => json!({
            "id": user_id, "username": "ghost", "name": "Ghost User", "state": "active",
            "locked": false, "public_email": "", "avatar_url": null, "web_url": format!("{}/ghost", sim.base_url)
        }),
    }
}

fn basic_of(sim: &Sim, user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": user.state,
        "locked": false,
        "public_email": user.public_email.clone().unwrap_or_default(),
        "avatar_url": format!("https://www.gravatar.com/avatar/{:x}?s=80&d=identicon", user.id * 7919),
        "web_url": format!("{}/{}", sim.base_url, user.username),
    })
}

/// The `/users/:id` form; `email` and admin fields only for admins or the user.
fn full(sim: &Sim, user: &User, viewer_is_admin: bool, is_self: bool) -> Value {
    let mut value = basic_of(sim, user);
    let extra = json!({
        "created_at": user.created_at,
        "bio": user.bio,
        "location": "",
        "public_email": user.public_email.clone().unwrap_or_default(),
        "skype": "", "linkedin": "", "twitter": "", "discord": "",
        "website_url": "", "organization": "", "job_title": "", "pronouns": null,
        "bot": false, "work_information": null, "followers": 0, "following": 0,
        "local_time": null, "is_followed": false,
    });
    merge(&mut value, extra);
    if viewer_is_admin || is_self {
        merge(
            &mut value,
            json!({
                "email": user.email,
                "commit_email": user.email,
                "is_admin": user.is_admin,
                "two_factor_enabled": false,
                "confirmed_at": user.created_at,
                "last_sign_in_at": user.created_at,
                "current_sign_in_at": user.created_at,
                "last_activity_on": user.created_at.get(..10),
                "identities": [],
                "can_create_group": true,
                "can_create_project": true,
                "projects_limit": 100000,
                "external": false,
                "private_profile": false,
                "theme_id": 1, "color_scheme_id": 1,
            }),
        );
    }
    value
}

/// Adds the fields of `extra` (an object) to `value` (an object).
pub fn merge(value: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(source)) = (value, extra) {
        target.extend(source);
    }
}

pub fn current(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    let user = store.user(ctx.user_id).ok_or(ApiError::Unauthorized)?;
    Ok(Reply::ok(full(ctx.sim, user, user.is_admin, true)))
}

pub fn get(ctx: &Ctx, raw_id: &str) -> Answer {
    let store = ctx.sim.read();
    let user = raw_id
        .parse::<u64>()
        .ok()
        .and_then(|id| store.user(id))
        .ok_or(ApiError::NotFound("User"))?;
    let admin = store.is_admin(ctx.user_id);
    Ok(Reply::ok(full(
        ctx.sim,
        user,
        admin,
        user.id == ctx.user_id,
    )))
}

/// `/users?username=`, `?search=` (username, name, public email; admins also match email).
pub fn list(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    let admin = store.is_admin(ctx.user_id);
    let username = ctx.params.text("username");
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let users: Vec<&User> = store
        .users
        .values()
        .filter(|u| {
            username
                .as_ref()
                .is_none_or(|name| u.username.eq_ignore_ascii_case(name))
        })
        .filter(|u| {
            search.as_ref().is_none_or(|s| {
                u.username.to_lowercase().contains(s)
                    || u.name.to_lowercase().contains(s)
                    || u.public_email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(s))
                    || (admin && u.email.eq_ignore_ascii_case(s))
            })
        })
        .collect();
    paginate(
        ctx,
        users,
        Keyset::Offered,
        |u| u.id,
        |u| full(ctx.sim, u, admin, u.id == ctx.user_id),
    )
}

/// `GET /personal_access_tokens/self`: the token used, with the `api` scope.
pub fn token_self(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    let user = store.user(ctx.user_id).ok_or(ApiError::Unauthorized)?;
    Ok(Reply::ok(json!({
        "id": user.id,
        "name": format!("{}-token", user.username),
        "revoked": false,
        "created_at": user.created_at,
        "description": null,
        "scopes": ["api", "read_repository", "write_repository"],
        "user_id": user.id,
        "last_used_at": null,
        "active": true,
        "expires_at": null,
    })))
}

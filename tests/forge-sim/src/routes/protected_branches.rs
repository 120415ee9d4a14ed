//! Protected branches of a project: list and protect (409 when already protected).
//! It never touches the git repository; protection is recorded only.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{ProtectedBranch, access};
use crate::pagination::{Keyset, paginate};

fn level_json(id: u64, level: u8) -> Value {
    let description = match level {
        0 => "No one",
        30 => "Developers + Maintainers",
        40 => "Maintainers",
        60 => "Admins",
        _ => "Maintainers",
    };
    json!([{
        "id": id, "access_level": level, "access_level_description": description,
        "deploy_key_id": null, "user_id": null, "group_id": null,
    }])
}

pub fn render(branch: &ProtectedBranch) -> Value {
    json!({
        "id": branch.id,
        "name": branch.name,
        "push_access_levels": level_json(branch.id * 3, branch.push_access_level),
        "merge_access_levels": level_json(branch.id * 3 + 1, branch.merge_access_level),
        "unprotect_access_levels": [],
        "allow_force_push": branch.allow_force_push,
        "code_owner_approval_required": branch.code_owner_approval_required,
        "inherited": false,
    })
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let store = ctx.sim.read();
    let branches: Vec<&ProtectedBranch> = store.protected_branches.children(scope.parent).collect();
    paginate(ctx, branches, Keyset::NotOffered, |b| b.id, |b| render(b))
}

fn level(ctx: &Ctx, key: &str) -> Result<u8, ApiError> {
    match ctx.params.u64(key)? {
        None => Ok(access::MAINTAINER),
        Some(v @ (0 | 30 | 40 | 60)) => Ok(v as u8),
        Some(_) => Err(ApiError::Param(format!(
            "{key} does not have a valid value"
        ))),
    }
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let name = ctx.params.required("name")?;
    let push = level(ctx, "push_access_level")?;
    let merge = level(ctx, "merge_access_level")?;
    let mut store = ctx.sim.write();
    if store
        .protected_branches
        .children(scope.parent)
        .any(|b| b.name == name)
    {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            format!("Protected branch '{name}' already exists"),
        ));
    }
    let id = store.protected_branches.next_id();
    let branch = ProtectedBranch {
        id,
        project_id: scope.parent.id(),
        name,
        push_access_level: push,
        merge_access_level: merge,
        allow_force_push: ctx.params.bool("allow_force_push")?.unwrap_or(false),
        code_owner_approval_required: ctx
            .params
            .bool("code_owner_approval_required")?
            .unwrap_or(false),
    };
    let value = render(&branch);
    store.protected_branches.insert(branch);
    Ok(Reply::created(value))
}

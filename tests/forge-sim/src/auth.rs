//! Who is calling and what they may touch: tokens from `PRIVATE-TOKEN`, `Authorization: Bearer`
//! or the `private_token`/`access_token` query parameters, and the group or project a request is
//! about together with the caller's access level. A resource the caller cannot see is a 404
//! naming it (`404 Group Not Found`), a role too low is a 403, exactly as GitLab answers.
//! This module decides access only; it never changes the store.

use axum::http::HeaderMap;
use axum::http::StatusCode;

use crate::error::ApiError;
use crate::model::Parent;
use crate::routes::Ctx;
use crate::state::Sim;

/// The group or project a request is scoped to, with the caller's access level on it
/// (0 when visible without membership).
#[derive(Debug, Clone)]
pub struct Scope {
    pub parent: Parent,
    pub level: u8,
    pub full_path: String,
    /// `http://host/group/sub` for groups' and projects' pages.
    pub web_url: String,
}

impl Scope {
    /// Fails with 403 unless the caller has at least `min`.
    pub fn require(&self, min: u8) -> Result<(), ApiError> {
        if self.level >= min {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self.parent, Parent::Group(_))
    }
}

/// The user behind the request's token, or 401.
pub fn authenticate(
    sim: &Sim,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<u64, ApiError> {
    let header_token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|v| v.trim().to_string())
        });
    let token = header_token.or_else(|| {
        query
            .iter()
            .find(|(k, _)| k == "private_token" || k == "access_token")
            .map(|(_, v)| v.clone())
    });
    let user = token
        .and_then(|t| sim.user_for_token(&t))
        .ok_or(ApiError::Unauthorized)?;
    // GitLab's `Sudo` (header or `sudo` parameter): an administrator acts as another user.
    let sudo = headers
        .get("sudo")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k == "sudo")
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|v| !v.is_empty());
    let Some(sudo) = sudo else {
        return Ok(user);
    };
    let store = sim.read();
    if !store.is_admin(user) {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "403 Forbidden - Must be admin to use sudo",
        ));
    }
    let target = sudo
        .parse::<u64>()
        .ok()
        .and_then(|id| store.user(id))
        .or_else(|| store.user_by_username(&sudo));
    target.map(|u| u.id).ok_or_else(|| {
        ApiError::message(
            StatusCode::NOT_FOUND,
            format!("404 User with ID or username '{sudo}' Not Found"),
        )
    })
}

/// The group named by an API `:id`, if the caller can see it.
pub fn group_scope(ctx: &Ctx, raw_id: &str) -> Result<Scope, ApiError> {
    let store = ctx.sim.read();
    let group = store
        .resolve_group(raw_id)
        .and_then(|id| store.group(id))
        .ok_or(ApiError::NotFound("Group"))?;
    let level = store
        .group_access(ctx.user_id, group.id)
        .ok_or(ApiError::NotFound("Group"))?;
    Ok(Scope {
        parent: Parent::Group(group.id),
        level,
        full_path: group.full_path.clone(),
        web_url: format!("{}/groups/{}", ctx.sim.base_url, group.full_path),
    })
}

/// The project named by an API `:id`, if the caller can see it.
pub fn project_scope(ctx: &Ctx, raw_id: &str) -> Result<Scope, ApiError> {
    let store = ctx.sim.read();
    let project = store
        .resolve_project(raw_id)
        .and_then(|id| store.project(id))
        .ok_or(ApiError::NotFound("Project"))?;
    let level = store
        .project_access(ctx.user_id, project.id)
        .ok_or(ApiError::NotFound("Project"))?;
    Ok(Scope {
        parent: Parent::Project(project.id),
        level,
        full_path: project.path_with_namespace.clone(),
        web_url: format!("{}/{}", ctx.sim.base_url, project.path_with_namespace),
    })
}

//! A project's repository rules: protected tags (`GET /projects/:id/protected_tags`) and its push
//! rule (`GET /projects/:id/push_rule`, GitLab Premium), both for maintainers, and the comments on
//! a commit (`GET /projects/:id/repository/commits/:sha/comments`, for whoever reads the code).
//! A maintainer protects a tag (`POST /projects/:id/protected_tags`); the rest is read only, and
//! nothing here touches the git repository except to resolve a commit.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{CommitNote, ProtectedTag, access};
use crate::pagination::{Keyset, paginate};

fn level_description(level: u8) -> &'static str {
    match level {
        0 => "No one",
        30 => "Developers + Maintainers",
        60 => "Admins",
        _ => "Maintainers",
    }
}

pub fn protected_tags(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let store = ctx.sim.read();
    let tags: Vec<&ProtectedTag> = store.protected_tags.children(scope.parent).collect();
    paginate(
        ctx,
        tags,
        Keyset::NotOffered,
        |t| t.id,
        |t| render_protected_tag(t),
    )
}

/// `POST /projects/:id/protected_tags` (`name`, `create_access_level`, default Maintainers):
/// a name the project protects already is refused as GitLab's validation refuses it.
pub fn create_protected_tag(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let name = ctx.params.required("name")?;
    let level = match ctx.params.u64("create_access_level")? {
        None => access::MAINTAINER,
        Some(l @ (0 | 30 | 40 | 60)) => l as u8,
        Some(_) => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "create_access_level does not have a valid value",
            ));
        }
    };
    let mut store = ctx.sim.write();
    if store
        .protected_tags
        .children(scope.parent)
        .any(|t| t.name == name)
    {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["Name has already been taken"]),
        ));
    }
    let id = store.protected_tags.next_id();
    let now = ctx.now();
    let tag = ProtectedTag {
        id,
        project_id: scope.parent.id(),
        name,
        create_access_level: level,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render_protected_tag(&tag);
    store.protected_tags.insert(tag);
    Ok(Reply::created(value))
}

fn render_protected_tag(t: &ProtectedTag) -> Value {
    json!({
        "name": t.name,
        "create_access_levels": [{
            "id": t.id, "access_level": t.create_access_level,
            "access_level_description": level_description(t.create_access_level),
            "deploy_key_id": null, "user_id": null, "group_id": null
        }]
    })
}

/// The project's push rule, or `null` when it has none (as GitLab answers).
pub fn push_rule(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let store = ctx.sim.read();
    let rule = store.push_rules.get(&scope.parent.id()).map(|r| {
        json!({
            "id": r.id, "project_id": scope.parent.id(),
            "commit_message_regex": r.commit_message_regex,
            "commit_message_negative_regex": r.commit_message_negative_regex,
            "branch_name_regex": r.branch_name_regex, "deny_delete_tag": r.deny_delete_tag,
            "created_at": r.created_at, "member_check": r.member_check,
            "prevent_secrets": r.prevent_secrets, "author_email_regex": r.author_email_regex,
            "file_name_regex": r.file_name_regex, "max_file_size": r.max_file_size,
            "commit_committer_check": r.commit_committer_check,
            "commit_committer_name_check": false,
            "reject_unsigned_commits": r.reject_unsigned_commits,
            "reject_non_dco_commits": false
        })
    });
    Ok(Reply::ok(rule.unwrap_or(Value::Null)))
}

/// Comments on the commit `sha` names (a sha, branch or tag), oldest first (GitLab's
/// `CommitNote`: note, path, line, line_type, author, created_at); 404 when it names no commit.
pub fn commit_comments(ctx: &Ctx, scope: &Scope, sha: &str) -> Answer {
    let project_id = scope.parent.id();
    let (full_path, private) = {
        let store = ctx.sim.read();
        let project = store
            .project(project_id)
            .ok_or(ApiError::NotFound("Project"))?;
        (
            project.path_with_namespace.clone(),
            project.visibility == "private",
        )
    };
    if private {
        scope.require(access::REPORTER)?;
    }
    let commit = ctx
        .sim
        .git
        .resolve_commit(&full_path, sha)
        .ok()
        .flatten()
        .ok_or(ApiError::NotFound("Commit"))?;
    let store = ctx.sim.read();
    let notes: Vec<&CommitNote> = store
        .commit_notes
        .children(scope.parent)
        .filter(|n| n.commit_id == commit)
        .collect();
    paginate(
        ctx,
        notes,
        Keyset::NotOffered,
        |n| n.id,
        |n| {
            json!({
                "note": n.body, "path": null, "line": null, "line_type": null,
                "author": super::users::basic(ctx.sim, &store, n.author_id),
                "created_at": n.created_at
            })
        },
    )
}

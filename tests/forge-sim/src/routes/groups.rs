//! Groups: list, read, create, update, subgroups and descendants, with GitLab's attributes
//! and GitLab's rejections (`Failed to save group {:path=>["has already been taken"]}` on create,
//! validation hashes on update). Never touches a group's relations; those have their own files.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Group, Member, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub const NAME_MESSAGE: &str = "can contain only letters, digits, emoji, '_', '.', dash, space, parenthesis. It must start with letter, digit, emoji or '_'.";
pub const PATH_MESSAGE: &str = "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'";

/// GitLab's group JSON (the `Group` entity; `detail` adds the `GroupDetail` fields).
pub fn render(sim: &Sim, group: &Group, detail: bool) -> Value {
    let mut value = json!({
        "id": group.id,
        "web_url": format!("{}/groups/{}", sim.base_url, group.full_path),
        "name": group.name,
        "path": group.path,
        "description": group.description,
        "visibility": group.visibility,
        "share_with_group_lock": group.share_with_group_lock,
        "require_two_factor_authentication": group.require_two_factor_authentication,
        "two_factor_grace_period": group.two_factor_grace_period,
        "project_creation_level": group.project_creation_level,
        "auto_devops_enabled": group.auto_devops_enabled,
        "subgroup_creation_level": group.subgroup_creation_level,
        "emails_disabled": !group.emails_enabled,
        "emails_enabled": group.emails_enabled,
        "mentions_disabled": group.mentions_disabled,
        "lfs_enabled": group.lfs_enabled,
        "math_rendering_limits_enabled": true,
        "lock_math_rendering_limits_enabled": false,
        "default_branch": null,
        "default_branch_protection": group.default_branch_protection,
        "default_branch_protection_defaults": {
            "allowed_to_push": [{ "access_level": 40 }],
            "allow_force_push": false,
            "allowed_to_merge": [{ "access_level": 40 }]
        },
        "avatar_url": group.avatar_url(&sim.base_url),
        "request_access_enabled": group.request_access_enabled,
        "full_name": group.full_name,
        "full_path": group.full_path,
        "created_at": group.created_at,
        "parent_id": group.parent_id,
        "organization_id": 1,
        "shared_runners_setting": "enabled",
        "max_artifacts_size": null,
        "ldap_cn": null,
        "ldap_access": null,
        "wiki_access_level": "enabled",
        "marked_for_deletion_on": null,
    });
    if detail {
        super::users::merge(
            &mut value,
            json!({
                "shared_with_groups": [],
                "prevent_sharing_groups_outside_hierarchy": false,
                "shared_projects": [],
                "file_template_project_id": null,
                "prevent_forking_outside_group": null,
                "membership_lock": false,
                "ip_restriction_ranges": null,
                "unique_project_download_limit": 0,
                "allowed_email_domains_list": null,
            }),
        );
    }
    value
}

/// `/groups`: the caller's groups (admins and `all_available=true` see every visible one).
pub fn list(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    let admin = store.is_admin(ctx.user_id);
    let all_available = ctx.params.bool("all_available")?.unwrap_or(admin);
    let top_level_only = ctx.params.bool("top_level_only")?.unwrap_or(false);
    let owned = ctx.params.bool("owned")?.unwrap_or(false);
    let min_access = ctx.params.u64("min_access_level")?;
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let skip: Vec<u64> = ctx
        .params
        .list("skip_groups")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut groups: Vec<&Group> = store
        .groups
        .values()
        .filter(|g| !top_level_only || g.parent_id.is_none())
        .filter(|g| !skip.contains(&g.id))
        .filter(|g| {
            search.as_ref().is_none_or(|s| {
                g.name.to_lowercase().contains(s) || g.path.to_lowercase().contains(s)
            })
        })
        .filter(|g| {
            let member = store.inherited_group_level(ctx.user_id, g.id);
            if owned {
                member == Some(access::OWNER)
            } else if let Some(min) = min_access {
                let level = if admin { Some(access::OWNER) } else { member };
                level.is_some_and(|l| u64::from(l) >= min)
            } else if all_available {
                store.group_access(ctx.user_id, g.id).is_some()
            } else {
                admin || member.is_some()
            }
        })
        .collect();
    sort_groups(ctx, &mut groups);
    paginate(
        ctx,
        groups,
        Keyset::NotOffered,
        |g| g.id,
        |g| render(ctx.sim, g, false),
    )
}

fn sort_groups(ctx: &Ctx, groups: &mut [&Group]) {
    let order_by = ctx.params.text("order_by").unwrap_or_else(|| "name".into());
    match order_by.as_str() {
        "id" => groups.sort_by_key(|g| g.id),
        "path" => groups.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id))),
        _ => groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
    }
    if ctx.params.text("sort").as_deref() == Some("desc") {
        groups.reverse();
    }
}

pub fn get(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let group = store
        .group(scope.parent.id())
        .ok_or(ApiError::NotFound("Group"))?;
    let mut value = render(ctx.sim, group, true);
    if scope.level >= access::OWNER {
        super::users::merge(
            &mut value,
            json!({ "runners_token": format!("GR1348941sim{}", group.id) }),
        );
    }
    let projects: Vec<Value> = store
        .group_projects(group.id)
        .map(|p| super::projects::render(ctx.sim, &store, p, false))
        .collect();
    super::users::merge(&mut value, json!({ "projects": projects }));
    Ok(Reply::ok(value))
}

/// `/subgroups` (children the caller can see) or `/descendant_groups` (the whole subtree).
pub fn subgroups(ctx: &Ctx, scope: &Scope, descendants: bool) -> Answer {
    let store = ctx.sim.read();
    let gid = scope.parent.id();
    let mut groups: Vec<&Group> = if descendants {
        store.descendant_groups(gid)
    } else {
        store.subgroups(gid).collect()
    };
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    groups.retain(|g| {
        store.group_access(ctx.user_id, g.id).is_some()
            && search.as_ref().is_none_or(|s| {
                g.name.to_lowercase().contains(s) || g.path.to_lowercase().contains(s)
            })
    });
    sort_groups(ctx, &mut groups);
    paginate(
        ctx,
        groups,
        Keyset::NotOffered,
        |g| g.id,
        |g| render(ctx.sim, g, false),
    )
}

fn name_valid(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let emoji = |c: char| ('\u{00A9}'..='\u{1f9ff}').contains(&c);
    (first.is_alphanumeric() || first == '_' || emoji(first))
        && chars.all(|c| {
            c.is_alphanumeric() || emoji(c) || matches!(c, '_' | '-' | '(' | ')' | '.' | ' ')
        })
}

/// GitLab's namespace and project path rule.
pub fn path_valid(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('-')
        && !path.ends_with(".git")
        && !path.ends_with(".atom")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

const LEVELS: [&str; 3] = ["private", "internal", "public"];

fn visibility_rank(v: &str) -> usize {
    LEVELS.iter().position(|l| *l == v).unwrap_or(0)
}

fn check_choice(ctx: &Ctx, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match ctx.params.text(key) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::Param(format!(
            "{key} does not have a valid value"
        ))),
        other => Ok(other),
    }
}

/// Settings accepted by both create and update.
fn apply_settings(ctx: &Ctx, group: &mut Group) -> Result<(), ApiError> {
    let p = &ctx.params;
    if let Some(v) = p.text("description") {
        group.description = v;
    }
    if let Some(v) = check_choice(ctx, "visibility", &LEVELS)? {
        group.visibility = v;
    }
    if let Some(v) = check_choice(
        ctx,
        "project_creation_level",
        &["noone", "owner", "maintainer", "developer", "administrator"],
    )? {
        group.project_creation_level = v;
    }
    if let Some(v) = check_choice(ctx, "subgroup_creation_level", &["owner", "maintainer"])? {
        group.subgroup_creation_level = v;
    }
    if let Some(v) = p.bool("request_access_enabled")? {
        group.request_access_enabled = v;
    }
    if let Some(v) = p.bool("require_two_factor_authentication")? {
        group.require_two_factor_authentication = v;
    }
    if let Some(v) = p.u64("two_factor_grace_period")? {
        group.two_factor_grace_period = v;
    }
    if let Some(v) = p.bool("lfs_enabled")? {
        group.lfs_enabled = v;
    }
    if let Some(v) = p.bool("mentions_disabled")? {
        group.mentions_disabled = Some(v);
    }
    if let Some(v) = p.bool("emails_disabled")? {
        group.emails_enabled = !v;
    }
    if let Some(v) = p.bool("emails_enabled")? {
        group.emails_enabled = v;
    }
    if let Some(v) = p.bool("share_with_group_lock")? {
        group.share_with_group_lock = v;
    }
    if let Some(v) = p.bool("auto_devops_enabled")? {
        group.auto_devops_enabled = Some(v);
    }
    if let Some(v) = p.u64("default_branch_protection")? {
        group.default_branch_protection =
            u8::try_from(v).map_err(|_| ApiError::invalid("default_branch_protection"))?;
    }
    Ok(())
}

/// Ruby's `Hash#inspect` of ActiveModel errors, as GitLab prints them in messages.
pub fn ruby_errors(errors: &[(&str, String)]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|(k, v)| format!(":{k}=>[{}]", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A new group with GitLab's defaults.
pub fn new_group(
    store: &Store,
    id: u64,
    name: &str,
    path: &str,
    parent: Option<&Group>,
    created_at: String,
) -> Group {
    let (full_path, full_name) = match parent {
        Some(p) => (
            format!("{}/{}", p.full_path, path),
            format!("{} / {}", p.full_name, name),
        ),
        None => (path.to_string(), name.to_string()),
    };
    let _ = store;
    Group {
        id,
        name: name.to_string(),
        path: path.to_string(),
        full_name,
        full_path,
        description: String::new(),
        visibility: "private".into(),
        parent_id: parent.map(|p| p.id),
        created_at,
        project_creation_level: "developer".into(),
        subgroup_creation_level: "maintainer".into(),
        request_access_enabled: true,
        require_two_factor_authentication: false,
        two_factor_grace_period: 48,
        lfs_enabled: true,
        mentions_disabled: None,
        emails_enabled: true,
        share_with_group_lock: false,
        auto_devops_enabled: None,
        default_branch_protection: 2,
        avatar: None,
    }
}

/// `POST /groups`.
pub fn create(ctx: &Ctx) -> Answer {
    let name = ctx.params.text("name");
    let path = ctx.params.text("path");
    match (&name, &path) {
        (None, None) => return Err(ApiError::Param("name is missing, path is missing".into())),
        (None, _) => return Err(ApiError::missing("name")),
        (_, None) => return Err(ApiError::missing("path")),
        _ => {}
    }
    let (name, path) = (name.unwrap_or_default(), path.unwrap_or_default());
    let parent_id = ctx.params.u64("parent_id")?;
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let parent = match parent_id {
        Some(pid) => {
            let level = store
                .group_access(ctx.user_id, pid)
                .ok_or(ApiError::NotFound("Group"))?;
            let parent = store.group(pid).ok_or(ApiError::NotFound("Group"))?;
            let needed = if parent.subgroup_creation_level == "owner" {
                access::OWNER
            } else {
                access::MAINTAINER
            };
            if level < needed {
                return Err(ApiError::Forbidden);
            }
            Some(parent.clone())
        }
        None => None,
    };
    let id = store.next_group_id();
    let mut group = new_group(&store, id, &name, &path, parent.as_ref(), now.clone());
    apply_settings(ctx, &mut group)?;
    set_avatar(ctx, &mut group)?;
    let mut errors: Vec<(&str, String)> = Vec::new();
    if name.trim().is_empty() {
        errors.push(("name", "can't be blank".into()));
    } else if !name_valid(&name) {
        errors.push(("name", NAME_MESSAGE.into()));
    }
    if !path_valid(&path) {
        errors.push(("path", PATH_MESSAGE.into()));
    } else if store.path_taken(&group.full_path) {
        errors.push(("path", "has already been taken".into()));
    }
    if let Some(parent) = &parent
        && visibility_rank(&group.visibility) > visibility_rank(&parent.visibility)
    {
        errors.push((
            "visibility_level",
            format!(
                "{} is not allowed since the parent group has a {} visibility.",
                group.visibility, parent.visibility
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Failed to save group {}",
            ruby_errors(&errors)
        )));
    }
    let member_id = store.members.next_id();
    store.members.insert(Member {
        id: member_id,
        source: Parent::Group(id),
        user_id: ctx.user_id,
        access_level: access::OWNER,
        created_at: now,
        expires_at: None,
        created_by: Some(ctx.user_id),
    });
    let value = render(ctx.sim, &group, true);
    store.insert_group(group);
    Ok(Reply::created(value))
}

/// `PUT /groups/:id` (owners only); the path is not moved here, as a transfer would be needed.
pub fn update(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::OWNER)?;
    let mut store = ctx.sim.write();
    let mut group = store
        .group(scope.parent.id())
        .cloned()
        .ok_or(ApiError::NotFound("Group"))?;
    if let Some(name) = ctx.params.text("name") {
        if !name_valid(&name) {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                json!({ "name": [NAME_MESSAGE] }),
            ));
        }
        group.full_name = match group.full_name.rsplit_once(" / ") {
            Some((prefix, _)) => format!("{prefix} / {name}"),
            None => name.clone(),
        };
        group.name = name;
    }
    apply_settings(ctx, &mut group)?;
    set_avatar(ctx, &mut group)?;
    let value = render(ctx.sim, &group, true);
    store.insert_group(group);
    Ok(Reply::ok(value))
}

/// The image formats GitLab's avatar uploader accepts, and its size limit.
const AVATAR_FORMATS: &[&str] = &["png", "jpg", "jpeg", "gif", "bmp", "tiff", "ico", "webp"];
const AVATAR_MAX_BYTES: usize = 200 * 1024;

/// A multipart `avatar` file replaces the group's avatar; `avatar=` (empty) removes it.
fn set_avatar(ctx: &Ctx, group: &mut Group) -> Result<(), ApiError> {
    if let Some(file) = ctx.params.files.iter().find(|f| f.field == "avatar") {
        let filename = file.filename.rsplit('/').next().unwrap_or("avatar");
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let problem = if !AVATAR_FORMATS.contains(&ext.as_str()) {
            Some(format!(
                "file format is not supported. Please try one of the following supported formats: {}",
                AVATAR_FORMATS.join(", ")
            ))
        } else if file.content.len() > AVATAR_MAX_BYTES {
            Some("is too big (should be at most 200 KiB)".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ApiError::bad_request(json!({ "avatar": [problem] })));
        }
        group.avatar = Some((filename.to_string(), file.content.clone()));
    } else if ctx.params.text("avatar").as_deref() == Some("") {
        group.avatar = None;
    }
    Ok(())
}

/// `GET /groups/:id/avatar`: the avatar file itself.
pub fn avatar(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let group = store
        .group(scope.parent.id())
        .ok_or(ApiError::NotFound("Group"))?;
    let (filename, bytes) = group.avatar.clone().ok_or(ApiError::NoRoute)?;
    Ok(super::uploads::file_reply(&filename, bytes))
}

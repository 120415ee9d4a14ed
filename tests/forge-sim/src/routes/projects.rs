//! Projects: `/projects`, `/groups/:id/projects`, `/projects/:id`, create and update.
//! Creating a project also creates its bare repository through the git store; this file never
//! writes git data itself.

use serde_json::{Value, json};

use super::groups::{PATH_MESSAGE, path_valid};
use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Member, Parent, Project, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

/// GitLab's project JSON (`BasicProjectDetails`, or `ProjectDetails` with `detail`).
pub fn render(sim: &Sim, store: &Store, project: &Project, detail: bool) -> Value {
    let base = &sim.base_url;
    let full = &project.path_with_namespace;
    let namespace = store.group(project.namespace_id).map(|g| {
        json!({
            "id": g.id, "name": g.name, "path": g.path, "kind": "group",
            "full_path": g.full_path, "parent_id": g.parent_id, "avatar_url": g.avatar_url(base),
            "web_url": format!("{base}/groups/{}", g.full_path),
        })
    });
    let api = format!("{base}/api/v4/projects/{}", project.id);
    let host = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let mut value = json!({
        "id": project.id,
        "description": project.description,
        "name": project.name,
        "name_with_namespace": project.name_with_namespace,
        "path": project.path,
        "path_with_namespace": full,
        "created_at": project.created_at,
        "default_branch": project.default_branch,
        "tag_list": project.topics,
        "topics": project.topics,
        "ssh_url_to_repo": format!("git@{}:{full}.git", host.split(':').next().unwrap_or(host)),
        "http_url_to_repo": format!("{base}/{full}.git"),
        "web_url": format!("{base}/{full}"),
        "readme_url": format!("{base}/{full}/-/blob/{}/README.md", project.default_branch),
        "forks_count": 0,
        "avatar_url": null,
        "star_count": 0,
        "last_activity_at": project.last_activity_at,
        "namespace": namespace,
        "repository_storage": "default",
    });
    if detail {
        let open_issues = store
            .issues
            .children(Parent::Project(project.id))
            .filter(|i| i.state == "opened")
            .count();
        super::users::merge(
            &mut value,
            json!({
                "container_registry_image_prefix": format!("registry.{host}/{full}"),
                "_links": {
                    "self": api,
                    "issues": format!("{api}/issues"),
                    "merge_requests": format!("{api}/merge_requests"),
                    "repo_branches": format!("{api}/repository/branches"),
                    "labels": format!("{api}/labels"),
                    "events": format!("{api}/events"),
                    "members": format!("{api}/members"),
                    "cluster_agents": format!("{api}/cluster_agents"),
                },
                "marked_for_deletion_at": null,
                "marked_for_deletion_on": null,
                "packages_enabled": true,
                "empty_repo": project.empty_repo,
                "archived": project.archived,
                "visibility": project.visibility,
                "resolve_outdated_diff_discussions": false,
                "repository_object_format": "sha1",
                "issues_enabled": project.issues_enabled,
                "merge_requests_enabled": project.merge_requests_enabled,
                "wiki_enabled": project.wiki_enabled,
                "jobs_enabled": true,
                "snippets_enabled": project.snippets_enabled,
                "container_registry_enabled": true,
                "service_desk_enabled": project.service_desk_enabled,
                "can_create_merge_request_in": true,
                "issues_access_level": if project.issues_enabled { "enabled" } else { "disabled" },
                "repository_access_level": "enabled",
                "merge_requests_access_level": if project.merge_requests_enabled { "enabled" } else { "disabled" },
                "forking_access_level": "enabled",
                "wiki_access_level": if project.wiki_enabled { "enabled" } else { "disabled" },
                "builds_access_level": "enabled",
                "snippets_access_level": if project.snippets_enabled { "enabled" } else { "disabled" },
                "pages_access_level": "private",
                "analytics_access_level": "enabled",
                "container_registry_access_level": "enabled",
                "security_and_compliance_access_level": "private",
                "releases_access_level": "enabled",
                "environments_access_level": "enabled",
                "feature_flags_access_level": "enabled",
                "infrastructure_access_level": "enabled",
                "monitor_access_level": "enabled",
                "model_experiments_access_level": "enabled",
                "model_registry_access_level": "enabled",
                "emails_disabled": false,
                "emails_enabled": true,
                "shared_runners_enabled": true,
                "lfs_enabled": project.lfs_enabled,
                "creator_id": project.creator_id,
                "import_status": super::imports::status_of(store, project.id),
                "open_issues_count": open_issues,
                "description_html": format!("<p dir=\"auto\">{}</p>", project.description),
                "updated_at": project.last_activity_at,
                "ci_config_path": null,
                "public_jobs": true,
                "shared_with_groups": [],
                "only_allow_merge_if_pipeline_succeeds": false,
                "allow_merge_on_skipped_pipeline": null,
                "request_access_enabled": project.request_access_enabled,
                "only_allow_merge_if_all_discussions_are_resolved": false,
                "remove_source_branch_after_merge": true,
                "printing_merge_request_link_enabled": true,
                "merge_method": "merge",
                "squash_option": "default_off",
                "enforce_auth_checks_on_uploads": true,
                "suggestion_commit_message": null,
                "merge_commit_template": null,
                "squash_commit_template": null,
                "issue_branch_template": null,
                "warn_about_potentially_unwanted_characters": true,
                "autoclose_referenced_issues": true,
                "max_artifacts_size": null,
                "external_authorization_classification_label": "",
                "requirements_enabled": false,
                "requirements_access_level": "enabled",
                "security_and_compliance_enabled": false,
                "compliance_frameworks": [],
            }),
        );
    }
    value
}

/// `/projects` (every project the caller can see) or `/groups/:id/projects`.
pub fn list(ctx: &Ctx, group: Option<u64>) -> Answer {
    let store = ctx.sim.read();
    let p = &ctx.params;
    let include_subgroups = p.bool("include_subgroups")?.unwrap_or(false);
    let membership = p.bool("membership")?.unwrap_or(false);
    let owned = p.bool("owned")?.unwrap_or(false);
    let archived = p.bool("archived")?;
    let min_access = p.u64("min_access_level")?;
    let search = p.text("search").map(|s| s.to_lowercase());
    let visibility = p.text("visibility");
    let simple = p.bool("simple")?.unwrap_or(false);
    let mut projects: Vec<&Project> = store
        .projects
        .values()
        .filter(|project| match group {
            None => true,
            Some(gid) if include_subgroups => store.ancestors(project.namespace_id).contains(&gid),
            Some(gid) => project.namespace_id == gid,
        })
        .filter(|project| {
            let Some(level) = store.project_access(ctx.user_id, project.id) else {
                return false;
            };
            (!membership || is_member(&store, ctx.user_id, project))
                && (!owned || project.creator_id == ctx.user_id)
                && min_access.is_none_or(|min| u64::from(level) >= min)
        })
        .filter(|project| archived.is_none_or(|a| project.archived == a))
        .filter(|project| visibility.as_ref().is_none_or(|v| &project.visibility == v))
        .filter(|project| {
            search.as_ref().is_none_or(|s| {
                project.name.to_lowercase().contains(s) || project.path.to_lowercase().contains(s)
            })
        })
        .collect();
    let order_by = p.text("order_by").unwrap_or_else(|| "created_at".into());
    match order_by.as_str() {
        "id" => projects.sort_by_key(|p| p.id),
        "name" => projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        "path" => projects.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id))),
        "last_activity_at" | "updated_at" => projects.sort_by(|a, b| {
            a.last_activity_at
                .cmp(&b.last_activity_at)
                .then(a.id.cmp(&b.id))
        }),
        _ => projects.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))),
    }
    if p.text("sort").as_deref() != Some("asc") {
        projects.reverse();
    }
    paginate(
        ctx,
        projects,
        Keyset::Offered,
        |p| p.id,
        |project| {
            if simple {
                render(ctx.sim, &store, project, false)
            } else {
                render(ctx.sim, &store, project, true)
            }
        },
    )
}

fn is_member(store: &Store, user_id: u64, project: &Project) -> bool {
    store
        .members
        .children(Parent::Project(project.id))
        .any(|m| m.user_id == user_id)
        || store
            .inherited_group_level(user_id, project.namespace_id)
            .is_some()
}

pub fn get(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let project = store
        .project(scope.parent.id())
        .ok_or(ApiError::NotFound("Project"))?;
    let mut value = render(ctx.sim, &store, project, true);
    let project_access = store
        .members
        .children(Parent::Project(project.id))
        .find(|m| m.user_id == ctx.user_id)
        .map(|m| json!({ "access_level": m.access_level, "notification_level": 3 }));
    let group_access = store
        .inherited_group_level(ctx.user_id, project.namespace_id)
        .map(|l| json!({ "access_level": l, "notification_level": 3 }));
    super::users::merge(
        &mut value,
        json!({ "permissions": { "project_access": project_access, "group_access": group_access } }),
    );
    // What only those who administer the project see (GitLab's `admin_project`).
    if scope.level >= access::MAINTAINER {
        super::users::merge(&mut value, admin_fields(&store, project));
    }
    // `statistics=true`: sizes as GitLab reports them (bytes), for members of Reporter and above.
    if ctx.params.bool("statistics")? == Some(true) {
        let repository_size = ctx
            .sim
            .git
            .repo_path(&project.path_with_namespace)
            .map(|p| dir_size(&p))
            .unwrap_or(0);
        let wiki_size = ctx
            .sim
            .git
            .repo_path(&crate::git::wiki_path(&project.path_with_namespace))
            .map(|p| dir_size(&p))
            .unwrap_or(0);
        let lfs_objects_size: u64 = store
            .lfs_objects
            .get(&project.id)
            .map_or(0, |objects| objects.values().map(|b| b.len() as u64).sum());
        super::users::merge(
            &mut value,
            json!({ "statistics": {
                "commit_count": 0,
                "storage_size": repository_size + wiki_size + lfs_objects_size,
                "repository_size": repository_size,
                "wiki_size": wiki_size,
                "lfs_objects_size": lfs_objects_size,
                "job_artifacts_size": 0,
                "uploads_size": 0,
            } }),
        );
    }
    Ok(Reply::ok(value))
}

/// The CI/CD settings `GET /projects/:id` shows a maintainer: the container expiration policy
/// (GitLab's defaults when the project never changed it) and Auto DevOps (off, `continuous`, when
/// the project has no setting of its own and the instance's is off, as here).
fn admin_fields(store: &Store, project: &Project) -> Value {
    let policy = store
        .container_expiration_policies
        .get(&project.id)
        .map_or_else(
            || {
                json!({"cadence": "1d", "enabled": false, "keep_n": 10, "older_than": "90d",
                       "name_regex": ".*", "name_regex_keep": null, "next_run_at": null})
            },
            |c| {
                json!({"cadence": c.cadence, "enabled": c.enabled, "keep_n": c.keep_n,
                       "older_than": c.older_than, "name_regex": c.name_regex,
                       "name_regex_keep": c.name_regex_keep, "next_run_at": c.next_run_at})
            },
        );
    let auto_devops = store.auto_devops.get(&project.id);
    json!({
        "container_expiration_policy": policy,
        "auto_devops_enabled": auto_devops.and_then(|a| a.enabled).unwrap_or(false),
        "auto_devops_deploy_strategy": auto_devops.map_or("continuous", |a| a.deploy_strategy.as_str()),
    })
}

/// Bytes of every file under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// GitLab's `parameterize` for a path derived from a name.
fn path_from_name(name: &str) -> String {
    let mut path = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            path.push(c.to_ascii_lowercase());
        } else if !path.ends_with('-') {
            path.push('-');
        }
    }
    path.trim_matches('-').to_string()
}

fn validation(errors: Vec<(&str, &str)>) -> ApiError {
    let mut map = serde_json::Map::new();
    for (key, message) in errors {
        if let Some(messages) = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
        {
            messages.push(Value::String(message.to_string()));
        }
    }
    ApiError::bad_request(Value::Object(map))
}

/// `POST /projects` with `name` and/or `path`, and `namespace_id` (defaults to the user's
/// namespace, which the simulator does not model, so a group is required).
pub fn create(ctx: &Ctx) -> Answer {
    let p = &ctx.params;
    let name = p.text("name").filter(|s| !s.is_empty());
    let path = p.text("path").filter(|s| !s.is_empty());
    if name.is_none() && path.is_none() {
        return Err(ApiError::Param(
            "name, path are missing, at least one parameter must be provided".into(),
        ));
    }
    let name = name.unwrap_or_else(|| path.clone().unwrap_or_default());
    let path = path.unwrap_or_else(|| path_from_name(&name));
    let namespace = p
        .text("namespace_id")
        .ok_or_else(|| validation(vec![("namespace", "is not valid")]))?;
    let now = ctx.now();
    let project = {
        let mut store = ctx.sim.write();
        let gid = store
            .resolve_group(&namespace)
            .ok_or(ApiError::NotFound("Namespace"))?;
        let level = store
            .group_access(ctx.user_id, gid)
            .ok_or(ApiError::NotFound("Namespace"))?;
        let group = store
            .group(gid)
            .cloned()
            .ok_or(ApiError::NotFound("Namespace"))?;
        let needed = match group.project_creation_level.as_str() {
            "noone" => u8::MAX,
            "maintainer" => access::MAINTAINER,
            "owner" => access::OWNER,
            "administrator" => u8::MAX,
            _ => access::DEVELOPER,
        };
        if level < needed && !store.is_admin(ctx.user_id) {
            return Err(validation(vec![("namespace", "is not valid")]));
        }
        let full_path = format!("{}/{}", group.full_path, path);
        let mut errors = Vec::new();
        if !path_valid(&path) {
            errors.push(("path", PATH_MESSAGE));
        }
        if store.path_taken(&full_path) {
            errors.push(("name", "has already been taken"));
            errors.push(("path", "has already been taken"));
        }
        if !errors.is_empty() {
            return Err(validation(errors));
        }
        let visibility = match p.text("visibility") {
            Some(v) if ["private", "internal", "public"].contains(&v.as_str()) => v,
            Some(_) => {
                return Err(ApiError::Param(
                    "visibility does not have a valid value".into(),
                ));
            }
            None => "private".into(),
        };
        let id = store.next_project_id();
        let project = Project {
            id,
            name: name.clone(),
            path: path.clone(),
            namespace_id: gid,
            path_with_namespace: full_path,
            name_with_namespace: format!("{} / {}", group.full_name, name),
            description: p.text("description").unwrap_or_default(),
            visibility,
            default_branch: p.text("default_branch").unwrap_or_else(|| "main".into()),
            created_at: now.clone(),
            last_activity_at: now.clone(),
            creator_id: ctx.user_id,
            topics: p.list("topics").unwrap_or_default(),
            archived: false,
            issues_enabled: p.bool("issues_enabled")?.unwrap_or(true),
            merge_requests_enabled: p.bool("merge_requests_enabled")?.unwrap_or(true),
            wiki_enabled: p.bool("wiki_enabled")?.unwrap_or(true),
            snippets_enabled: p.bool("snippets_enabled")?.unwrap_or(true),
            lfs_enabled: p.bool("lfs_enabled")?.unwrap_or(true),
            request_access_enabled: p.bool("request_access_enabled")?.unwrap_or(true),
            empty_repo: true,
            service_desk_enabled: false,
        };
        store.insert_project(project.clone());
        if level < access::OWNER || store.is_admin(ctx.user_id) {
            let member_id = store.members.next_id();
            store.members.insert(Member {
                id: member_id,
                source: Parent::Project(id),
                user_id: ctx.user_id,
                access_level: access::MAINTAINER.max(level.min(access::OWNER)),
                created_at: now,
                expires_at: None,
                created_by: Some(ctx.user_id),
            });
        }
        project
    };
    if let Err(error) = ctx.sim.git.create_bare(&project.path_with_namespace) {
        tracing::warn!(project = %project.path_with_namespace, %error, "could not create the bare repository");
    }
    let store = ctx.sim.read();
    Ok(Reply::created(render(ctx.sim, &store, &project, true)))
}

/// `PUT /projects/:id` for the settings a migration writes (maintainers and above).
pub fn update(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let p = &ctx.params;
    let mut store = ctx.sim.write();
    let mut project = store
        .project(scope.parent.id())
        .cloned()
        .ok_or(ApiError::NotFound("Project"))?;
    if let Some(v) = p.text("description") {
        project.description = v;
    }
    if let Some(v) = p.text("default_branch") {
        project.default_branch = v;
    }
    if let Some(v) = p.list("topics") {
        project.topics = v;
    }
    if let Some(v) = p.bool("archived")? {
        project.archived = v;
    }
    if let Some(v) = p.text("visibility") {
        project.visibility = v;
    }
    if let Some(v) = p.bool("issues_enabled")? {
        project.issues_enabled = v;
    }
    if let Some(v) = p.bool("merge_requests_enabled")? {
        project.merge_requests_enabled = v;
    }
    if let Some(v) = p.bool("lfs_enabled")? {
        project.lfs_enabled = v;
    }
    store.insert_project(project.clone());
    Ok(Reply::ok(render(ctx.sim, &store, &project, true)))
}

//! File-based project import: `POST /projects/import`, `GET /projects/:id/import`,
//! `POST /projects/import-relation` and `GET /projects/:id/relation-imports`, with GitLab's
//! parameters, refusals and status JSON. The work runs on its own thread, as GitLab's import
//! worker does: the answer says `scheduled` (or `created`), and clients poll the status.
//! This file checks access and renders; reading archives and restoring records is
//! `crate::project_import`'s, and it never touches git itself.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::groups::{PATH_MESSAGE, path_valid};
use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Member, Parent, Project, ProjectImport, RelationImport, access};
use crate::project_import::{self, SINGLE_RELATIONS};
use crate::state::Store;

/// GitLab's `ProjectImportStatus` entity.
fn render_status(store: &Store, project: &Project) -> Value {
    let state = store.imports.get(&project.id);
    let status = state.map_or("none", |s| s.status.as_str());
    json!({
        "id": project.id,
        "description": project.description,
        "name": project.name,
        "name_with_namespace": project.name_with_namespace,
        "path": project.path,
        "path_with_namespace": project.path_with_namespace,
        "created_at": project.created_at,
        "import_status": status,
        "import_type": state.map(|_| "gitlab_project"),
        "correlation_id": state.map(|s| s.correlation_id.clone()),
        "failed_relations": state.map_or(Vec::new(), |s| s.failed_relations.clone()),
        "import_error": state.and_then(|s| s.error.clone()),
    })
}

/// A project's import status for its JSON (`none` when it was not imported).
pub fn status_of(store: &Store, project_id: u64) -> &str {
    store
        .imports
        .get(&project_id)
        .map_or("none", |s| s.status.as_str())
}

fn archive(ctx: &Ctx) -> Result<Vec<u8>, ApiError> {
    ctx.params
        .files
        .iter()
        .find(|f| f.field == "file")
        .map(|f| f.content.clone())
        .ok_or_else(|| ApiError::missing("file"))
}

fn correlation_id(project_id: u64, now: &str) -> String {
    let digest = Sha256::digest(format!("import/{project_id}/{now}").as_bytes());
    hex::encode(digest)[..26].to_owned()
}

/// `POST /projects/import`: creates the project, schedules the import, answers 201.
pub fn create(ctx: &Ctx) -> Answer {
    let p = &ctx.params;
    // GitLab's API refuses the import outright when GitLab export is not an enabled import source.
    let settings = ctx.sim.read().settings.clone();
    if !settings
        .import_sources
        .iter()
        .any(|s| s == "gitlab_project")
    {
        return Err(ApiError::Forbidden);
    }
    let path = p.required("path")?;
    let file = archive(ctx)?;
    if settings.max_import_size > 0 && file.len() as u64 > settings.max_import_size << 20 {
        return Err(ApiError::message(
            axum::http::StatusCode::BAD_REQUEST,
            format!(
                "File is too big ({:.2} MiB). Please upload files up to {} MiB.",
                file.len() as f64 / (1u64 << 20) as f64,
                settings.max_import_size
            ),
        ));
    }
    let name = p
        .text("name")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| path.clone());
    let overwrite = p.bool("overwrite")?.unwrap_or(false);
    // The simulator has no personal namespaces, so the namespace is required in practice.
    let namespace = p.text("namespace").unwrap_or_default();
    let now = ctx.now();
    let (project, replaced) = {
        let mut store = ctx.sim.write();
        let gid = store
            .resolve_group(&namespace)
            .ok_or(ApiError::NotFound("Namespace"))?;
        let level = store
            .group_access(ctx.user_id, gid)
            .ok_or(ApiError::NotFound("Namespace"))?;
        if level < access::MAINTAINER {
            return Err(ApiError::Forbidden);
        }
        let group = store
            .group(gid)
            .cloned()
            .ok_or(ApiError::NotFound("Namespace"))?;
        if !path_valid(&path) {
            return Err(ApiError::bad_request(format!("Path {PATH_MESSAGE}")));
        }
        let full_path = format!("{}/{}", group.full_path, path);
        // `overwrite` replaces the project at that path; otherwise the path and the name must be
        // free in the namespace (GitLab answers the first of the project's validation errors).
        let existing = store
            .project_by_path(&full_path)
            .map(|p| p.id)
            .filter(|_| overwrite);
        let name_taken = store.projects.values().any(|other| {
            other.namespace_id == gid
                && Some(other.id) != existing
                && other.name.eq_ignore_ascii_case(&name)
        });
        if name_taken {
            return Err(ApiError::bad_request("Name has already been taken"));
        }
        if existing.is_none() && store.path_taken(&full_path) {
            return Err(ApiError::bad_request("Path has already been taken"));
        }
        let replaced = existing.and_then(|id| store.remove_project(id));
        let id = store.next_project_id();
        let project = Project {
            id,
            name: name.clone(),
            path: path.clone(),
            namespace_id: gid,
            path_with_namespace: full_path,
            name_with_namespace: format!("{} / {}", group.full_name, name),
            description: String::new(),
            visibility: "private".into(),
            default_branch: "main".into(),
            created_at: now.clone(),
            last_activity_at: now.clone(),
            creator_id: ctx.user_id,
            topics: Vec::new(),
            archived: false,
            issues_enabled: true,
            merge_requests_enabled: true,
            wiki_enabled: true,
            snippets_enabled: true,
            lfs_enabled: true,
            request_access_enabled: true,
            empty_repo: true,
            service_desk_enabled: false,
        };
        store.insert_project(project.clone());
        // GitLab makes the importer a maintainer of the new project.
        let member_id = store.members.next_id();
        store.members.insert(Member {
            id: member_id,
            source: Parent::Project(id),
            user_id: ctx.user_id,
            access_level: access::MAINTAINER,
            created_at: now.clone(),
            expires_at: None,
            created_by: Some(ctx.user_id),
        });
        store.imports.insert(
            id,
            ProjectImport {
                project_id: id,
                status: "scheduled".into(),
                error: None,
                correlation_id: correlation_id(id, &now),
                failed_relations: Vec::new(),
            },
        );
        (project, replaced)
    };
    if replaced.is_some()
        && let Err(error) = ctx.sim.git.remove(&project.path_with_namespace)
    {
        tracing::warn!(project = %project.path_with_namespace, %error, "could not remove the overwritten repository");
    }
    if let Err(error) = ctx.sim.git.create_bare(&project.path_with_namespace) {
        tracing::warn!(project = %project.path_with_namespace, %error, "could not create the bare repository");
    }
    let body = render_status(&ctx.sim.read(), &project);
    let (sim, importer, id) = (Arc::clone(&ctx.handle), ctx.user_id, project.id);
    let refusals = ctx.refusals.clone();
    std::thread::spawn(move || {
        project_import::run_project_import(sim, id, importer, file, &refusals)
    });
    Ok(Reply::created(body))
}

/// `GET /projects/:id/import`.
pub fn status(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let project = store
        .project(scope.parent.id())
        .ok_or(ApiError::NotFound("Project"))?;
    Ok(Reply::ok(render_status(&store, project)))
}

fn render_relation_import(store: &Store, tracker: &RelationImport) -> Value {
    json!({
        "id": tracker.id,
        "project_path": store
            .project(tracker.project_id)
            .map(|p| p.path_with_namespace.clone()),
        "relation": tracker.relation,
        "status": tracker.status,
        "created_at": tracker.created_at,
        "updated_at": tracker.updated_at,
    })
}

/// `POST /projects/import-relation`: schedules one relation of an archive into an existing
/// project (maintainers and above), answers 201 with the tracker.
pub fn create_relation(ctx: &Ctx) -> Answer {
    let p = &ctx.params;
    let path = p.required("path")?;
    let relation = p.required("relation")?;
    let file = archive(ctx)?;
    if !SINGLE_RELATIONS.contains(&relation.as_str()) {
        return Err(ApiError::Param(
            "relation does not have a valid value".into(),
        ));
    }
    let now = ctx.now();
    let (body, tracker) = {
        let mut store = ctx.sim.write();
        let project = store
            .project_by_path(&path)
            .map(|p| p.id)
            .ok_or(ApiError::NotFound("Project"))?;
        let level = store
            .project_access(ctx.user_id, project)
            .ok_or(ApiError::NotFound("Project"))?;
        if level < access::MAINTAINER {
            return Err(ApiError::Forbidden);
        }
        let busy = store
            .relation_imports
            .iter()
            .any(|t| t.project_id == project && (t.status == "created" || t.status == "started"));
        if busy {
            return Err(ApiError::message(
                StatusCode::CONFLICT,
                "A relation import is already in progress for this project",
            ));
        }
        let tracker = RelationImport {
            id: store.relation_imports.len() as u64 + 1,
            project_id: project,
            relation,
            status: "created".into(),
            created_at: now.clone(),
            updated_at: now,
            failed_relations: Vec::new(),
        };
        let body = render_relation_import(&store, &tracker);
        let id = tracker.id;
        store.relation_imports.push(tracker);
        (body, id)
    };
    let (sim, importer) = (Arc::clone(&ctx.handle), ctx.user_id);
    std::thread::spawn(move || project_import::run_relation_import(sim, tracker, importer, file));
    Ok(Reply::created(body))
}

/// `GET /projects/:id/relation-imports` (maintainers and above).
pub fn relation_imports(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let store = ctx.sim.read();
    let trackers: Vec<Value> = store
        .relation_imports
        .iter()
        .filter(|t| Parent::Project(t.project_id) == scope.parent)
        .map(|t| render_relation_import(&store, t))
        .collect();
    Ok(Reply::ok(Value::Array(trackers)))
}

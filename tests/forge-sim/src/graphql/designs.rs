//! Projects, issues and their design collections through GraphQL: `project(fullPath:)` with
//! `issue(iid:)` and `issues(iids:)`, an issue's `designCollection` with its `designs` and
//! `versions` connections, as GitLab's `DesignCollectionType`, `DesignType` and `VersionType`
//! (`DesignVersion`) answer them. Global ids look like `gid://gitlab/DesignManagement::Design/12`
//! and `gid://gitlab/DesignManagement::Version/3`.
//!
//! GitLab's rules are kept: a collection lists the designs visible at its latest version (or at
//! `atVersion`: changed by some version up to it, and not deleted by the last of those), ordered by
//! relative position then id; versions come newest first; a design's `image` is the raw image URL
//! at the version the collection is seen at (the issue's latest, GitLab's
//! `cached_stateful_version`); `notesCount` counts notes that are not system notes. A confidential
//! issue is seen by reporters and above, its author and its assignees only.

use serde_json::{Map, Value, json};

use super::iterations::gitlab_time;
use super::{Exec, Obj, Resolved, connection};
use crate::model::{Design, DesignEvent, DesignVersion, Issue, Parent, Project, User, access};
use crate::state::Store;

const DESIGN_CLASS: &str = "DesignManagement::Design";
const VERSION_CLASS: &str = "DesignManagement::Version";

/// `gid://gitlab/<class>/<id>`.
fn gid(class: &str, id: u64) -> String {
    format!("gid://gitlab/{class}/{id}")
}

/// The id of a global id of `class`, `None` for any other value.
fn gid_id(value: &Value, class: &str) -> Option<u64> {
    let rest = value.as_str()?.strip_prefix("gid://gitlab/")?;
    let (found, id) = rest.rsplit_once('/')?;
    (found == class).then(|| id.parse().ok()).flatten()
}

/// `project(fullPath:)`: the project, or null when the user cannot see it.
pub fn project(store: &Store, user_id: u64, args: &Map<String, Value>) -> Resolved {
    let path = args.get("fullPath").and_then(Value::as_str).unwrap_or("");
    match store.project_by_path(path) {
        Some(p) if visible_project(store, user_id, p) => {
            Resolved::Object(Obj::Project(Box::new(p.clone())))
        }
        _ => Resolved::Null,
    }
}

fn visible_project(store: &Store, user_id: u64, project: &Project) -> bool {
    store.project_access(user_id, project.id).is_some()
}

/// Whether the user sees an issue of a project they see.
fn visible_issue(store: &Store, user_id: u64, issue: &Issue) -> bool {
    !issue.confidential
        || issue.author_id == user_id
        || issue.assignee_ids.contains(&user_id)
        || store
            .project_access(user_id, issue.project_id)
            .is_some_and(|level| level >= access::REPORTER)
}

pub fn project_field(
    exec: &Exec,
    p: &Project,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Resolved, String> {
    Ok(Resolved::Value(match name {
        "id" => json!(gid("Project", p.id)),
        "name" => json!(p.name),
        "path" => json!(p.path),
        "fullPath" => json!(p.path_with_namespace),
        "webUrl" => json!(format!("{}/{}", exec.sim.base_url, p.path_with_namespace)),
        "issue" => return Ok(issue(exec, p, args)),
        "issues" => return issues(exec, p, args).map(Resolved::Object),
        _ => Value::Null,
    }))
}

/// GitLab takes an iid as a string, and also as a number.
fn iid_arg(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    }
}

/// `issue(iid:)`: null when there is no such issue the user sees.
fn issue(exec: &Exec, p: &Project, args: &Map<String, Value>) -> Resolved {
    let iid = args.get("iid").and_then(iid_arg);
    exec.store
        .issues
        .children(Parent::Project(p.id))
        .find(|i| Some(i.iid) == iid && visible_issue(exec.store, exec.user_id, i))
        .map_or(Resolved::Null, |i| {
            Resolved::Object(Obj::Issue(Box::new(i.clone())))
        })
}

/// `issues(iid:, iids:, state:)`: the issues the user sees, newest first (GitLab's default
/// `created_desc`).
fn issues(exec: &Exec, p: &Project, args: &Map<String, Value>) -> Result<Obj, String> {
    let mut wanted: Option<Vec<u64>> = args
        .get("iids")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(iid_arg).collect());
    if let Some(iid) = args.get("iid").and_then(iid_arg) {
        wanted.get_or_insert_with(Vec::new).push(iid);
    }
    let state = args.get("state").and_then(Value::as_str).unwrap_or("all");
    let mut found: Vec<&Issue> = exec
        .store
        .issues
        .children(Parent::Project(p.id))
        .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.iid)))
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| visible_issue(exec.store, exec.user_id, i))
        .collect();
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    connection(
        "IssueConnection",
        found
            .into_iter()
            .map(|i| Obj::Issue(Box::new(i.clone())))
            .collect(),
        args,
    )
}

pub fn issue_field(exec: &Exec, i: &Issue, name: &str) -> Resolved {
    Resolved::Value(match name {
        "id" => json!(gid("Issue", i.id)),
        "iid" => json!(i.iid.to_string()),
        "title" => json!(i.title),
        "state" => json!(i.state),
        "confidential" => json!(i.confidential),
        "createdAt" => json!(gitlab_time(&i.created_at)),
        "webUrl" => json!(format!(
            "{}/{}/-/issues/{}",
            exec.sim.base_url,
            project_path(exec.store, i.project_id),
            i.iid
        )),
        "designCollection" => return Resolved::Object(Obj::DesignCollection(Box::new(i.clone()))),
        _ => Value::Null,
    })
}

fn project_path(store: &Store, project_id: u64) -> String {
    store
        .project(project_id)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default()
}

pub fn collection_field(
    exec: &Exec,
    issue: &Issue,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Resolved, String> {
    Ok(match name {
        "project" => exec
            .store
            .project(issue.project_id)
            .map_or(Resolved::Null, |p| {
                Resolved::Object(Obj::Project(Box::new(p.clone())))
            }),
        "issue" => Resolved::Object(Obj::Issue(Box::new(issue.clone()))),
        // Set only while GitLab copies a collection between issues (on a move); never here.
        "copyState" => Resolved::Value(json!("READY")),
        "designs" => Resolved::Object(designs(exec.store, issue, args)?),
        "versions" => Resolved::Object(versions(exec.store, issue.id, None, args)?),
        _ => Resolved::Null,
    })
}

/// The issue's versions, oldest first.
fn issue_versions(store: &Store, issue_id: u64) -> Vec<&DesignVersion> {
    let mut versions: Vec<&DesignVersion> = store
        .design_versions
        .children(Parent::Issue(issue_id))
        .collect();
    versions.sort_by_key(|v| v.id);
    versions
}

/// The version a collection is seen at: `atVersion` when given (it must be the issue's), else
/// the issue's latest; `None` when the issue has none.
fn stateful_version<'s>(
    store: &'s Store,
    issue_id: u64,
    at_version: Option<&Value>,
) -> Result<Option<&'s DesignVersion>, String> {
    let versions = issue_versions(store, issue_id);
    match at_version {
        Some(v) if !v.is_null() => {
            let id = gid_id(v, VERSION_CLASS)
                .ok_or_else(|| format!("{v} is not a valid ID for {VERSION_CLASS}."))?;
            Ok(Some(
                versions
                    .into_iter()
                    .find(|ver| ver.id == id)
                    .ok_or_else(|| super::NOT_AVAILABLE.to_string())?,
            ))
        }
        _ => Ok(versions.last().copied()),
    }
}

/// The last event of a design up to and with `version` (by version id), if any.
fn event_up_to(store: &Store, design: &Design, version: &DesignVersion) -> Option<DesignEvent> {
    issue_versions(store, design.issue_id)
        .into_iter()
        .filter(|v| v.id <= version.id)
        .flat_map(|v| v.actions.iter())
        .filter(|(id, _)| *id == design.id)
        .map(|(_, event)| *event)
        .next_back()
}

/// `designs(ids:, filenames:, atVersion:)`: the designs visible at the version.
fn designs(store: &Store, issue: &Issue, args: &Map<String, Value>) -> Result<Obj, String> {
    let version = stateful_version(store, issue.id, args.get("atVersion"))?;
    let ids: Option<Vec<u64>> = args.get("ids").and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(|v| gid_id(v, DESIGN_CLASS))
            .collect()
    });
    let filenames: Option<Vec<&str>> = args
        .get("filenames")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect());
    let mut found: Vec<&Design> = store
        .designs
        .children(Parent::Issue(issue.id))
        .filter(|d| {
            version.is_some_and(|v| {
                event_up_to(store, d, v).is_some_and(|e| e != DesignEvent::Deletion)
            })
        })
        .filter(|d| ids.as_ref().is_none_or(|ids| ids.contains(&d.id)))
        .filter(|d| {
            filenames
                .as_ref()
                .is_none_or(|names| names.contains(&d.filename.as_str()))
        })
        .collect();
    // GitLab's `ordered`: relative position (unset last), then id.
    found.sort_by_key(|d| (d.relative_position.is_none(), d.relative_position, d.id));
    let at = version.map(|v| v.id);
    connection(
        "DesignConnection",
        found
            .into_iter()
            .map(|d| Obj::Design(Box::new(d.clone()), at))
            .collect(),
        args,
    )
}

/// `versions(earlierOrEqualToSha:, earlierOrEqualToId:)` of an issue, or of one design of it:
/// newest first.
fn versions(
    store: &Store,
    issue_id: u64,
    design_id: Option<u64>,
    args: &Map<String, Value>,
) -> Result<Obj, String> {
    let mut found = issue_versions(store, issue_id);
    if let Some(design) = design_id {
        found.retain(|v| v.actions.iter().any(|(id, _)| *id == design));
    }
    let by_sha = args.get("earlierOrEqualToSha").and_then(Value::as_str);
    let by_id = args.get("earlierOrEqualToId").filter(|v| !v.is_null());
    let limit = match (by_sha, by_id) {
        (Some(sha), _) => Some(
            found
                .iter()
                .find(|v| v.sha.starts_with(sha) && !sha.is_empty())
                .map(|v| v.id)
                .ok_or_else(|| super::NOT_AVAILABLE.to_string())?,
        ),
        (None, Some(id)) => Some(
            gid_id(id, VERSION_CLASS)
                .ok_or_else(|| format!("{id} is not a valid ID for {VERSION_CLASS}."))?,
        ),
        (None, None) => None,
    };
    found.retain(|v| limit.is_none_or(|limit| v.id <= limit));
    found.reverse();
    connection(
        "DesignVersionConnection",
        found
            .into_iter()
            .map(|v| Obj::DesignVersion(Box::new(v.clone())))
            .collect(),
        args,
    )
}

/// A field of a design seen at version `at` (by id).
pub fn design_field(
    exec: &Exec,
    d: &Design,
    at: Option<u64>,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Resolved, String> {
    let store = exec.store;
    let issue = store.issues.get(d.issue_id);
    let issue_iid = issue.map_or(0, |i| i.iid);
    let project = project_path(store, d.project_id);
    let version = at.and_then(|id| store.design_versions.get(id));
    Ok(Resolved::Value(match name {
        "id" => json!(gid(DESIGN_CLASS, d.id)),
        "filename" => json!(d.filename),
        "fullPath" => json!(d.full_path(issue_iid)),
        "notesCount" => json!(
            store
                .notes
                .children(Parent::Design(d.id))
                .filter(|n| !n.system)
                .count()
        ),
        "image" => {
            json!(version.map(|v| raw_image_url(&exec.sim.base_url, &project, d.id, &v.sha)))
        }
        // GitLab's resized copy is made by a background job the simulator does not run.
        "imageV432x230" => Value::Null,
        "event" => json!(
            version
                .and_then(|v| v.actions.iter().find(|(id, _)| *id == d.id))
                .map_or("NONE", |(_, e)| e.graphql_name())
        ),
        "description" => Value::Null,
        "webUrl" => json!(format!(
            "{}/{project}/-/issues/{issue_iid}/designs/{}",
            exec.sim.base_url, d.filename
        )),
        "project" => {
            return Ok(store.project(d.project_id).map_or(Resolved::Null, |p| {
                Resolved::Object(Obj::Project(Box::new(p.clone())))
            }));
        }
        "issue" => {
            return Ok(issue.map_or(Resolved::Null, |i| {
                Resolved::Object(Obj::Issue(Box::new(i.clone())))
            }));
        }
        "versions" => {
            return versions(store, d.issue_id, Some(d.id), args).map(Resolved::Object);
        }
        _ => Value::Null,
    }))
}

/// Where GitLab serves a design's image as of a version
/// (`project_design_management_designs_raw_image_url`).
pub fn raw_image_url(base_url: &str, project_path: &str, design_id: u64, sha: &str) -> String {
    format!("{base_url}/{project_path}/-/design_management/designs/{design_id}/{sha}/raw_image")
}

pub fn version_field(exec: &Exec, v: &DesignVersion, name: &str) -> Resolved {
    Resolved::Value(match name {
        "id" => json!(gid(VERSION_CLASS, v.id)),
        "sha" => json!(v.sha),
        "createdAt" => json!(gitlab_time(&v.created_at)),
        "author" => {
            return exec.store.user(v.author_id).map_or(Resolved::Null, |u| {
                Resolved::Object(Obj::User(Box::new(u.clone())))
            });
        }
        _ => Value::Null,
    })
}

pub fn user_field(exec: &Exec, u: &User, name: &str) -> Value {
    match name {
        "id" => json!(gid("User", u.id)),
        "username" => json!(u.username),
        "name" => json!(u.name),
        "webUrl" => json!(format!("{}/{}", exec.sim.base_url, u.username)),
        _ => Value::Null,
    }
}

//! Project snippets: list, read, create. Notes on snippets are served by `notes.rs`.
//! The record keeps `file_name` and `content` (what the API and the export show); each snippet
//! also has a repository (`<project>/snippets/<id>.git`, see `crate::git`), created with the
//! snippet as GitLab does. Like GitLab's API, these answers carry no `content`: it is read with
//! `/raw` (or by cloning `http_url_to_repo`).

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Snippet, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, snippet: &Snippet) -> Value {
    let full_path = store
        .project(snippet.project_id)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default();
    let web_url = format!("{}/{}/-/snippets/{}", sim.base_url, full_path, snippet.id);
    let raw_url = format!(
        "{}/{}/-/snippets/{}/raw",
        sim.base_url, full_path, snippet.id
    );
    let repo_path = crate::git::snippet_repo_path(&full_path, snippet.id);
    let host = sim
        .base_url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let ssh_host = host.split(':').next().unwrap_or(host);
    json!({
        "id": snippet.id,
        "title": snippet.title,
        "description": snippet.description,
        "visibility": snippet.visibility,
        "author": super::users::basic(sim, store, snippet.author_id),
        "created_at": snippet.created_at,
        "updated_at": snippet.updated_at,
        "project_id": snippet.project_id,
        "web_url": web_url,
        "raw_url": raw_url,
        "ssh_url_to_repo": format!("git@{ssh_host}:{repo_path}.git"),
        "http_url_to_repo": format!("{}/{repo_path}.git", sim.base_url),
        "file_name": snippet.file_name,
        "files": [{ "path": snippet.file_name, "raw_url": format!("{}/{}/-/snippets/{}/raw/main/{}", sim.base_url, full_path, snippet.id, snippet.file_name) }],
        "imported": false,
        "imported_from": "none",
        "repository_storage": "default",
    })
}

pub fn find(ctx: &Ctx, scope: &Scope, raw: &str) -> Result<u64, ApiError> {
    let store = ctx.sim.read();
    raw.parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .snippets
                .get(*id)
                .is_some_and(|s| s.project_id == scope.parent.id())
        })
        .ok_or(ApiError::NotFound("Snippet"))
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let snippets: Vec<&Snippet> = store.snippets.children(scope.parent).collect();
    paginate(
        ctx,
        snippets,
        Keyset::NotOffered,
        |s| s.id,
        |s| render(ctx.sim, &store, s),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let id = find(ctx, scope, raw)?;
    let store = ctx.sim.read();
    let snippet = store
        .snippets
        .get(id)
        .ok_or(ApiError::NotFound("Snippet"))?;
    Ok(Reply::ok(render(ctx.sim, &store, snippet)))
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let p = &ctx.params;
    let title = p.required("title")?;
    let (file_name, content) = match p.raw("files") {
        Some(Value::Array(files)) if !files.is_empty() => (
            files[0]["file_path"]
                .as_str()
                .unwrap_or("snippet.txt")
                .to_string(),
            files[0]["content"].as_str().unwrap_or_default().to_string(),
        ),
        _ => (
            p.text("file_name").unwrap_or_else(|| "snippet.txt".into()),
            p.text("content").ok_or_else(|| {
                ApiError::Param(
                    "content, files are missing, exactly one parameter must be provided".into(),
                )
            })?,
        ),
    };
    let visibility = p.text("visibility").unwrap_or_else(|| "private".into());
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let id = store.snippets.next_id();
    let snippet = Snippet {
        id,
        project_id: scope.parent.id(),
        title,
        description: p.text("description"),
        file_name,
        content,
        visibility,
        author_id: ctx.user_id,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render(ctx.sim, &store, &snippet);
    let author = store
        .user(ctx.user_id)
        .map(|u| (u.name.clone(), u.email.clone()))
        .unwrap_or_default();
    let project_path = store
        .project(snippet.project_id)
        .map(|p| p.path_with_namespace.clone());
    let (file_name, content, at) = (
        snippet.file_name.clone(),
        snippet.content.clone(),
        snippet.created_at.clone(),
    );
    store.snippets.insert(snippet);
    drop(store);
    // GitLab commits the new snippet's file to its new repository ("Initial commit" on `main`).
    if let Some(project_path) = project_path {
        let time = crate::timestamp::unix_seconds(&at).unwrap_or(0).max(0);
        if let Err(error) = ctx.sim.git.create_snippet_repository(
            &project_path,
            id,
            &file_name,
            &content,
            (&author.0, &author.1),
            time,
        ) {
            tracing::warn!(snippet = id, %error, "could not create the snippet's repository");
        }
    }
    Ok(Reply::created(value))
}

/// `GET /projects/:id/snippets/:snippet_id/raw`: the content as plain text.
pub fn raw(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let id = find(ctx, scope, raw)?;
    let store = ctx.sim.read();
    let snippet = store
        .snippets
        .get(id)
        .ok_or(ApiError::NotFound("Snippet"))?;
    Ok(Reply {
        status: axum::http::StatusCode::OK,
        body: super::ReplyBody::Bytes {
            content_type: "text/plain; charset=utf-8".into(),
            bytes: snippet.content.clone().into_bytes(),
        },
        headers: Vec::new(),
    })
}

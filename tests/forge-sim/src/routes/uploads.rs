//! Markdown uploads of projects and groups: `POST /projects/:id/uploads` and
//! `POST /groups/:id/uploads` (multipart `file`), the API download
//! `GET /projects/:id/uploads/:secret/:filename`, and the web URLs GitLab puts in markdown
//! (`/<project path>/uploads/<secret>/<file>`, `/-/project/<id>/uploads/...`,
//! `/groups/<path>/-/uploads/...`, `/-/group/<id>/uploads/...`), which need a token that can
//! see the owner. Secrets are derived from the content, so they are deterministic.
//! It never serves an upload to a token that cannot see its group or project.

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Answer, Ctx, Reply, ReplyBody};
use crate::auth::{self, Scope};
use crate::error::ApiError;
use crate::model::{Parent, Upload, access};
use crate::state::{Sim, Store};

fn content_type(filename: &str) -> &'static str {
    let lower = filename.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or_default();
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn is_image(filename: &str) -> bool {
    content_type(filename).starts_with("image/")
}

/// A 32-hex secret from the owner, name and content.
pub fn secret_for(owner: Parent, filename: &str, content: &[u8], nonce: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{owner:?}/{filename}/{nonce}/").as_bytes());
    hasher.update(content);
    hex::encode(hasher.finalize())[..32].to_string()
}

/// The JSON GitLab answers an upload with.
pub fn render(store: &Store, upload: &Upload) -> Value {
    let url = format!("/uploads/{}/{}", upload.secret, upload.filename);
    let alt = upload
        .filename
        .rsplit_once('.')
        .map_or(upload.filename.as_str(), |(stem, _)| stem);
    let full_path = match upload.owner {
        Parent::Group(id) => format!(
            "/-/group/{id}/uploads/{}/{}",
            upload.secret, upload.filename
        ),
        other => match store.project(other.id()) {
            Some(p) => format!(
                "/-/project/{}/uploads/{}/{}",
                p.id, upload.secret, upload.filename
            ),
            None => url.clone(),
        },
    };
    let markdown = if is_image(&upload.filename) {
        format!("![{alt}]({url})")
    } else {
        format!("[{}]({url})", upload.filename)
    };
    json!({
        "id": upload.id,
        "alt": alt,
        "url": url,
        "full_path": full_path,
        "markdown": markdown,
    })
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::GUEST)?;
    let file = ctx
        .params
        .files
        .iter()
        .find(|f| f.field == "file")
        .ok_or_else(|| ApiError::missing("file"))?;
    let now = ctx.now();
    let mut store = ctx.sim.write();
    let id = store.uploads.next_id();
    let filename = file
        .filename
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .to_string();
    let upload = Upload {
        id,
        owner: scope.parent,
        secret: secret_for(scope.parent, &filename, &file.content, id),
        filename,
        content: file.content.clone(),
        created_at: now,
    };
    let value = render(&store, &upload);
    store.uploads.insert(upload);
    Ok(Reply::created(value))
}

/// A file download the way GitLab sends one (type from the name, shown inline).
pub fn file_reply(filename: &str, bytes: Vec<u8>) -> Reply {
    Reply {
        status: axum::http::StatusCode::OK,
        body: ReplyBody::Bytes {
            content_type: content_type(filename).to_string(),
            bytes,
        },
        headers: vec![(
            "Content-Disposition".into(),
            format!("inline; filename=\"{filename}\""),
        )],
    }
}

fn find<'s>(store: &'s Store, owner: Parent, secret: &str, filename: &str) -> Option<&'s Upload> {
    store
        .uploads
        .children(owner)
        .find(|u| u.secret == secret && u.filename == filename)
}

/// `GET /projects/:id/uploads` (GitLab 17.2): the project's markdown uploads, for a maintainer.
pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let store = ctx.sim.read();
    let uploads: Vec<&Upload> = store.uploads.children(scope.parent).collect();
    crate::pagination::paginate(
        ctx,
        uploads,
        crate::pagination::Keyset::NotOffered,
        |u| u.id,
        |u| {
            json!({
                "id": u.id,
                "size": u.content.len(),
                "filename": u.filename,
                "created_at": u.created_at,
            })
        },
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, secret: &str, filename: &str) -> Answer {
    let store = ctx.sim.read();
    let upload =
        find(&store, scope.parent, secret, filename).ok_or(ApiError::NotFound("Upload"))?;
    Ok(file_reply(&upload.filename, upload.content.clone()))
}

/// Web (non-API) upload URLs.
pub fn web(
    sim: &Sim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &[(String, String)],
) -> Answer {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::NoRoute);
    }
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let store = sim.read();
    let (owner, secret, filename) = match segs.as_slice() {
        ["-", "project", id, "uploads", secret, file] => {
            (id.parse().ok().map(Parent::Project), *secret, *file)
        }
        ["-", "group", id, "uploads", secret, file] => {
            (id.parse().ok().map(Parent::Group), *secret, *file)
        }
        ["groups", rest @ .., "-", "uploads", secret, file] => (
            store
                .group_by_path(&rest.join("/"))
                .map(|g| Parent::Group(g.id)),
            *secret,
            *file,
        ),
        [rest @ .., "uploads", secret, file] if rest.len() >= 2 => (
            store
                .project_by_path(&rest.join("/"))
                .map(|p| Parent::Project(p.id)),
            *secret,
            *file,
        ),
        _ => return Err(ApiError::NoRoute),
    };
    let owner = owner.ok_or(ApiError::NoRoute)?;
    drop(store);
    let user_id = auth::authenticate(sim, headers, query).map_err(|_| ApiError::NoRoute)?;
    let store = sim.read();
    let visible = match owner {
        Parent::Group(id) => store.group_access(user_id, id).is_some(),
        other => store.project_access(user_id, other.id()).is_some(),
    };
    if !visible {
        return Err(ApiError::NoRoute);
    }
    let upload = find(&store, owner, secret, filename).ok_or(ApiError::NoRoute)?;
    Ok(file_reply(&upload.filename, upload.content.clone()))
}

//! Git LFS for the simulated projects, as GitLab serves it: the batch API
//! (`POST /<project>.git/info/lfs/objects/batch`, download only) and the object download it
//! points to (`GET /<project>.git/gitlab-lfs/objects/<oid>`), both with git's credentials (HTTP
//! Basic, any username, a token as password). Like GitLab, the batch answer repeats the client's
//! own `Authorization` header in each download action, so a client must not send an action's
//! headers anywhere but the forge. Objects live in the store (`Store::lfs_objects`); those of the
//! wiki and of the design repository are served here too, as GitLab looks objects up among all of
//! the project's (`project.lfs_objects_oids`).
//! It never writes an object: they come from the dataset or a project import.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::git::{basic_credentials, not_found, project_for, unauthorized};
use crate::model::access;
use crate::state::Sim;

const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// Serves the two LFS endpoints; None for any other path.
pub async fn handle_lfs(sim: Arc<Sim>, req: Request) -> Option<Response> {
    let path = req.uri().path().to_owned();
    let (repo, rest) = path.split_once(".git/")?;
    let full_path = percent_decode_str(repo.strip_prefix('/')?)
        .decode_utf8()
        .ok()?
        .into_owned();
    let method = req.method().clone();
    let headers = req.headers().clone();
    match (method, rest) {
        (Method::POST, "info/lfs/objects/batch") => {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.ok()?;
            Some(batch(&sim, &full_path, &headers, &body))
        }
        (Method::GET, rest) => {
            let oid = rest.strip_prefix("gitlab-lfs/objects/")?;
            Some(download(&sim, &full_path, &headers, oid))
        }
        _ => None,
    }
}

/// The project id a git client may download LFS objects of, or the answer that refuses it.
fn authorize(sim: &Sim, full_path: &str, headers: &HeaderMap) -> Result<u64, Box<Response>> {
    let Some((_, token)) = basic_credentials(headers) else {
        return Err(Box::new(unauthorized()));
    };
    let user = sim
        .user_for_token(&token)
        .ok_or_else(|| Box::new(unauthorized()))?;
    let store = sim.read();
    let project = store
        .project_by_path(full_path)
        .or_else(|| project_for(&store, full_path))
        .ok_or_else(|| Box::new(not_found()))?;
    let level = store
        .project_access(user, project.id)
        .ok_or_else(|| Box::new(not_found()))?;
    if project.visibility == "private" && level < access::REPORTER {
        return Err(Box::new(not_found()));
    }
    Ok(project.id)
}

fn lfs_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, LFS_JSON)],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn batch(sim: &Sim, full_path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let project = match authorize(sim, full_path, headers) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return lfs_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid JSON");
    };
    if request["operation"] != "download" {
        return lfs_error(
            StatusCode::FORBIDDEN,
            "Access forbidden. Check your access level.",
        );
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let store = sim.read();
    let kept = store.lfs_objects.get(&project);
    let objects: Vec<Value> = request["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let oid = o["oid"].as_str().unwrap_or("").to_owned();
            let size = o["size"].as_u64().unwrap_or(0);
            match kept.and_then(|k| k.get(&oid)) {
                Some(bytes) if bytes.len() as u64 == size => json!({
                    "oid": oid,
                    "size": size,
                    "authenticated": true,
                    "actions": {
                        "download": {
                            "href": format!("{}/{full_path}.git/gitlab-lfs/objects/{oid}", sim.base_url),
                            "header": { "Authorization": authorization },
                            "expires_in": 3600,
                        }
                    }
                }),
                _ => json!({
                    "oid": oid,
                    "size": size,
                    "error": {
                        "code": 404,
                        "message": "Object does not exist on the server or you don't have permissions to access it",
                    }
                }),
            }
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, LFS_JSON)],
        json!({ "transfer": "basic", "objects": objects }).to_string(),
    )
        .into_response()
}

fn download(sim: &Sim, full_path: &str, headers: &HeaderMap, oid: &str) -> Response {
    let project = match authorize(sim, full_path, headers) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let bytes = sim
        .read()
        .lfs_objects
        .get(&project)
        .and_then(|k| k.get(oid))
        .cloned();
    match bytes {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => not_found(),
    }
}

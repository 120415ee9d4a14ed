//! The web route that serves a design's image as of a version, the URL GitLab's GraphQL `image`
//! field gives: `GET /<project>/-/design_management/designs/<design id>(/<sha>)/raw_image`, with
//! the REST API's authentication (a token in `PRIVATE-TOKEN` or `Authorization: Bearer`).
//! The image is the design's file in the design repository at that commit (the issue's latest
//! version when no sha is given), resolved through the project's LFS objects when it is a pointer,
//! as GitLab's `RawImagesController` sends it. A missing commit, file or object is a 404.
//! It never writes anything.

use axum::http::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode_str;

use super::Answer;
use super::uploads::file_reply;
use crate::auth;
use crate::error::ApiError;
use crate::model::{Parent, access};
use crate::state::Sim;

/// The path segment that marks a design image URL.
pub const MARKER: &str = "/-/design_management/designs/";

fn not_found() -> ApiError {
    ApiError::message(StatusCode::NOT_FOUND, "404 Not Found")
}

/// Serves one raw image request; the path must contain [`MARKER`].
pub fn raw_image(
    sim: &Sim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &[(String, String)],
) -> Answer {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::NoRoute);
    }
    let (project_path, rest) = path.split_once(MARKER).ok_or(ApiError::NoRoute)?;
    let project_path = percent_decode_str(project_path.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let (design_id, sha) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        [id, "raw_image"] => (id.parse::<u64>().ok(), None),
        [id, sha, "raw_image"] => (id.parse::<u64>().ok(), Some((*sha).to_owned())),
        _ => return Err(ApiError::NoRoute),
    };
    let user_id = auth::authenticate(sim, headers, query)?;
    let (repo_path, file, sha) = {
        let store = sim.read();
        let project = store.project_by_path(&project_path).ok_or_else(not_found)?;
        let level = store
            .project_access(user_id, project.id)
            .ok_or_else(not_found)?;
        let design = design_id
            .and_then(|id| store.designs.get(id))
            .filter(|d| d.project_id == project.id)
            .ok_or_else(not_found)?;
        let issue = store.issues.get(design.issue_id).ok_or_else(not_found)?;
        let sees_issue = !issue.confidential
            || level >= access::REPORTER
            || issue.author_id == user_id
            || issue.assignee_ids.contains(&user_id);
        if !sees_issue {
            return Err(not_found());
        }
        let sha = match sha {
            Some(sha) => sha,
            None => store
                .design_versions
                .children(Parent::Issue(issue.id))
                .map(|v| (v.id, v.sha.clone()))
                .max()
                .map(|(_, sha)| sha)
                .ok_or_else(not_found)?,
        };
        (
            crate::git::design_path(&project.path_with_namespace),
            design.full_path(issue.iid),
            sha,
        )
    };
    let blob = sim
        .git
        .file_at_commit(&repo_path, &sha, &file)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(not_found)?;
    let bytes = match lfs_pointer_oid(&blob) {
        Some(oid) => {
            let store = sim.read();
            let project = store.project_by_path(&project_path).ok_or_else(not_found)?;
            store
                .lfs_objects
                .get(&project.id)
                .and_then(|objects| objects.get(&oid))
                .cloned()
                .ok_or_else(not_found)?
        }
        None => blob,
    };
    let filename = file.rsplit('/').next().unwrap_or_default();
    Ok(file_reply(filename, bytes))
}

/// The oid of a Git LFS pointer file, `None` for any other content.
fn lfs_pointer_oid(blob: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(blob).ok()?;
    if !text.starts_with("version https://git-lfs.github.com/spec/") {
        return None;
    }
    text.lines()
        .find_map(|line| line.strip_prefix("oid sha256:"))
        .map(|oid| oid.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_name_their_oid_and_other_blobs_none() {
        let pointer = crate::git::lfs_pointer(b"png bytes");
        assert_eq!(
            lfs_pointer_oid(pointer.as_bytes()),
            Some(crate::git::lfs_oid(b"png bytes"))
        );
        assert_eq!(lfs_pointer_oid(b"\x89PNG\r\n"), None);
    }
}

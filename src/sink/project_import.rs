//! A project created at a live GitLab destination by its own project import, the restorer GitLab's
//! direct transfer and file import use (it keeps iids, dates, merged merge requests and diffs): the
//! package becomes a GitLab export archive (`VERSION`, `tree/project.json`,
//! `tree/project/<relation>.ndjson`, `project.bundle`, `project.wiki.bundle`,
//! `uploads/<secret>/<filename>`, `lfs-objects/<oid>`, `lfs-objects.json`,
//! `snippets/<hexdigest>.bundle`) streamed to disk, sent to `POST /projects/import`, and followed
//! through `GET /projects/:id/import` to its end.
//! A project import is not repeatable: an attempt whose outcome is unknown (or a resume after a crash)
//! looks for the project at its destination path before importing again.

use super::{CreatedProject, ProjectPackage};
use crate::archive::ImportArchive;
use crate::forge::{ForgeError, GitLab, gitlab::encode_path};
use crate::relations::project::failure_text;
use crate::relations::{EntityContext, LoadError};
use serde_json::Value;
use std::time::Duration;

/// How many times a project import whose outcome was unknown (and then found absent) is sent in all.
const UNKNOWN_OUTCOME_ATTEMPTS: u32 = 6;
/// How long the destination may take to import one project.
const IMPORT_DEADLINE: Duration = Duration::from_secs(4 * 3600);

pub async fn create(
    dest: &GitLab,
    ceilings: &Ceilings,
    ctx: &EntityContext,
    package: &ProjectPackage,
    in_doubt: bool,
) -> Result<CreatedProject, LoadError> {
    let full_path = ctx.entity.destination_full_path();
    if in_doubt && let Some(found) = dest.project(&full_path).await? {
        return follow(dest, &found).await;
    }
    let mut attributes = package.attributes.clone();
    clamp_visibility(
        dest,
        ceilings,
        &ctx.entity.destination_namespace,
        &mut attributes,
    )
    .await?;
    let dir = tempfile::tempdir().map_err(|e| LoadError::internal(e.to_string()))?;
    let file = dir.path().join("project.tar.gz");
    write_archive(&file, &attributes, package).await?;
    refuse_oversized(dest, &file).await?;

    let name = attributes
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&ctx.entity.destination_slug)
        .to_string();
    let fields = [
        ("path", ctx.entity.destination_slug.clone()),
        ("namespace", ctx.entity.destination_namespace.clone()),
        ("name", name),
    ];
    // A project import is not repeatable: an attempt whose outcome is unknown (the answer lost, a
    // 500 or 504) is looked for at its path, and only sent again when it is not there.
    let mut attempt = 1;
    let started = loop {
        match dest
            .client
            .post_archive("projects/import", &fields, &file, false)
            .await
        {
            Ok(started) => break started,
            Err(e) => {
                let unknown = matches!(
                    e,
                    ForgeError::Network {
                        maybe_applied: true,
                        ..
                    }
                ) || matches!(e.status(), Some(500) | Some(504));
                if !unknown {
                    return Err(e.into());
                }
                if let Some(found) = dest.project(&full_path).await? {
                    return follow(dest, &found).await;
                }
                if attempt >= UNKNOWN_OUTCOME_ATTEMPTS {
                    return Err(e.into());
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
        }
    };
    follow(dest, &started).await
}

/// An archive larger than the destination's maximum import size is refused before it is sent, saying
/// what to change (GitLab would take the whole upload, then fail the import).
async fn refuse_oversized(dest: &GitLab, archive: &std::path::Path) -> Result<(), LoadError> {
    let Some(limit) = dest.import_settings().await?.and_then(|s| s.max_import_mib) else {
        return Ok(());
    };
    let size = tokio::fs::metadata(archive)
        .await
        .map_err(|e| LoadError::internal(e.to_string()))?
        .len();
    match too_large(size, limit) {
        Some(message) => Err(LoadError {
            class: "Appliance::ImportTooLarge".into(),
            message,
            correlation_id: None,
            unreachable: false,
        }),
        None => Ok(()),
    }
}

/// Why an archive of `size` bytes cannot go to a destination that takes at most `limit_mib` MiB.
fn too_large(size: u64, limit_mib: u64) -> Option<String> {
    let mib = size.div_ceil(1 << 20);
    (size > limit_mib << 20).then(|| {
        format!(
            "the project's import archive is {mib} MiB and the destination accepts at most {limit_mib} MiB (max_import_size): an administrator raises \"Maximum import size\" ({}) to at least {mib} MiB, then retry",
            crate::forge::gitlab::IMPORT_SETTINGS_PLACE
        )
    })
}

/// Gives each member an explicit user map names the mapped destination user's email (GitLab's import
/// maps members, and through them authors, by email). The file is rewritten atomically; records the
/// map does not name are kept byte for byte.
pub async fn map_members(dest: &GitLab, staged: &std::path::Path) -> Result<(), LoadError> {
    let io =
        |e: std::io::Error| LoadError::internal(format!("cannot map the project's members: {e}"));
    let text = tokio::fs::read_to_string(staged).await.map_err(io)?;
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut record: Value = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        let user = record.get("user").cloned().unwrap_or(Value::Null);
        match dest.explicitly_mapped_email(&user).await? {
            Some(email) if record["user"].is_object() => {
                record["user"]["public_email"] = Value::String(email.clone());
                record["user"]["email"] = Value::String(email);
                out.push_str(&record.to_string());
                changed = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if changed {
        let tmp = staged.with_extension("mapped.tmp");
        tokio::fs::write(&tmp, out).await.map_err(io)?;
        tokio::fs::rename(&tmp, staged).await.map_err(io)?;
    }
    Ok(())
}

/// Writes the archive on a blocking thread: the repository bundle may be gigabytes.
async fn write_archive(
    file: &std::path::Path,
    attributes: &Value,
    package: &ProjectPackage,
) -> Result<(), LoadError> {
    let (file, attributes) = (file.to_path_buf(), attributes.clone());
    let relations = package.relations.clone();
    let repositories = package.repositories.clone();
    let uploads = package.uploads.clone();
    let lfs_objects = package.lfs_objects.clone();
    let snippets = package.snippet_repositories.clone();
    let lfs_json = file.with_file_name("lfs-objects.json");
    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut archive = ImportArchive::create(&file)?;
        archive.project(&attributes)?;
        for (relation, staged) in &relations {
            archive.file(&format!("tree/project/{relation}.ndjson"), staged)?;
        }
        for (kind, bundle) in &repositories {
            archive.file(kind.archive_name(), bundle)?;
        }
        for upload in &uploads {
            archive.file(&upload.archive_name(), &upload.path)?;
        }
        // GitLab's SnippetsRepoSaver layout: `snippets/<hexdigest>.bundle`.
        for snippet in &snippets {
            archive.file(&snippet.archive_name(), &snippet.path)?;
        }
        // GitLab's LfsSaver layout: each object as `lfs-objects/<oid>`, and `lfs-objects.json`
        // naming the repository each belongs to.
        if !lfs_objects.is_empty() {
            let types: serde_json::Map<String, Value> = lfs_objects
                .iter()
                .map(|o| (o.oid.clone(), serde_json::json!(o.repositories)))
                .collect();
            std::fs::write(&lfs_json, serde_json::to_vec(&types)?)?;
            archive.file("lfs-objects.json", &lfs_json)?;
            for object in &lfs_objects {
                archive.file(&format!("lfs-objects/{}", object.oid), &object.path)?;
            }
        }
        archive.finish()
    })
    .await
    .map_err(|e| LoadError::internal(e.to_string()))?
    .map_err(|e| LoadError::internal(format!("cannot write the project's import archive: {e}")))?;
    Ok(())
}

/// Issues whose designs are read in one GraphQL query (GitLab's largest page is 100).
const DESIGN_ISSUES_PER_QUERY: usize = 50;
/// Designs listed per issue: GitLab's largest page.
const DESIGNS_PER_ISSUE: usize = 100;

/// The designs of the issues `iids` of project `full_path`, as the destination lists them through
/// GraphQL (`issue.designCollection.designs`: the designs of its latest version, deleted ones not
/// listed), by issue iid, filenames sorted; an issue the destination does not have is absent. An
/// issue with more designs than one page holds has the rest read a page at a time.
pub async fn designs(
    gitlab: &GitLab,
    full_path: &str,
    iids: &[u64],
) -> Result<std::collections::BTreeMap<u64, Vec<String>>, LoadError> {
    designs_paged(gitlab, full_path, iids, DESIGNS_PER_ISSUE).await
}

/// [`designs`], `per_page` designs of an issue at a time.
pub async fn designs_paged(
    gitlab: &GitLab,
    full_path: &str,
    iids: &[u64],
    per_page: usize,
) -> Result<std::collections::BTreeMap<u64, Vec<String>>, LoadError> {
    const QUERY: &str = "query($fullPath: ID!, $iids: [String!], $first: Int, $designs: Int, \
        $after: String) { project(fullPath: $fullPath) { issues(iids: $iids, first: $first) { \
        nodes { iid designCollection { designs(first: $designs, after: $after) { \
        nodes { filename } pageInfo { hasNextPage endCursor } } } } } } }";
    let mut out = std::collections::BTreeMap::new();
    // (iid, cursor) of each issue whose designs go on past the page read.
    let mut more: Vec<(u64, String)> = Vec::new();
    let read = |data: Value,
                out: &mut std::collections::BTreeMap<u64, Vec<String>>,
                more: &mut Vec<(u64, String)>| {
        let nodes = data
            .pointer("/project/issues/nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for issue in nodes {
            // GitLab's GraphQL gives an iid as a string.
            let Some(iid) = issue.get("iid").and_then(|v| match v {
                Value::String(s) => s.parse().ok(),
                other => other.as_u64(),
            }) else {
                continue;
            };
            let designs = issue.pointer("/designCollection/designs");
            let filenames: &mut Vec<String> = out.entry(iid).or_default();
            filenames.extend(
                designs
                    .and_then(|d| d.get("nodes"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.get("filename").and_then(Value::as_str).map(str::to_owned)),
            );
            let page = designs.and_then(|d| d.get("pageInfo"));
            if page
                .and_then(|p| p.get("hasNextPage"))
                .and_then(Value::as_bool)
                == Some(true)
                && let Some(cursor) = page
                    .and_then(|p| p.get("endCursor"))
                    .and_then(Value::as_str)
            {
                more.push((iid, cursor.to_string()));
            }
        }
    };
    for chunk in iids.chunks(DESIGN_ISSUES_PER_QUERY) {
        let variables = serde_json::json!({
            "fullPath": full_path,
            "iids": chunk.iter().map(u64::to_string).collect::<Vec<_>>(),
            "first": chunk.len(),
            "designs": per_page,
        });
        read(gitlab.query(QUERY, variables).await?, &mut out, &mut more);
    }
    while let Some((iid, after)) = more.pop() {
        let variables = serde_json::json!({
            "fullPath": full_path,
            "iids": [iid.to_string()],
            "first": 1,
            "designs": per_page,
            "after": after,
        });
        read(gitlab.query(QUERY, variables).await?, &mut out, &mut more);
    }
    for filenames in out.values_mut() {
        filenames.sort();
    }
    Ok(out)
}

/// The visibility level of each destination group projects were created in, read from the
/// destination once per run (a group's projects all ask for the same one).
#[derive(Default)]
pub struct Ceilings(std::sync::Mutex<std::collections::HashMap<String, u64>>);

/// A project's visibility is at most its destination group's, as GitLab requires.
async fn clamp_visibility(
    dest: &GitLab,
    ceilings: &Ceilings,
    namespace: &str,
    attributes: &mut Value,
) -> Result<(), LoadError> {
    if namespace.is_empty() {
        return Ok(());
    }
    let known = ceilings
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(namespace)
        .copied();
    let ceiling = match known {
        Some(ceiling) => ceiling,
        None => {
            let group = dest
                .client
                .get(&format!("groups/{}", encode_path(namespace)), &[])
                .await?;
            let ceiling = crate::relations::project::visibility_level(
                group
                    .get("visibility")
                    .and_then(Value::as_str)
                    .unwrap_or("private"),
            );
            ceilings
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(namespace.to_string(), ceiling);
            ceiling
        }
    };
    if let Some(level) = attributes.get_mut("visibility_level")
        && level.as_u64().is_some_and(|l| l > ceiling)
    {
        *level = Value::from(ceiling);
    }
    Ok(())
}

/// Follows the import of `project` (as the destination answered it) until it ends.
async fn follow(dest: &GitLab, project: &Value) -> Result<CreatedProject, LoadError> {
    let id = project.get("id").and_then(Value::as_u64).ok_or_else(|| {
        LoadError::internal("the destination answered without a project id".into())
    })?;
    let deadline = tokio::time::Instant::now() + IMPORT_DEADLINE;
    // An import that was just asked for is not done yet: the first look waits too.
    let mut wait = Duration::from_millis(100);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        let status = dest
            .client
            .get(&format!("projects/{id}/import"), &[])
            .await?;
        match status.get("import_status").and_then(Value::as_str) {
            // `none`: a project that was not imported (created some other way) is there as it is.
            Some("finished") | Some("none") => {
                return Ok(CreatedProject {
                    id,
                    failed_relations: failed_relations(&status),
                });
            }
            Some("failed") => {
                return Err(LoadError {
                    class: "Appliance::ImportFailed".into(),
                    message: format!(
                        "the destination's project import failed: {}",
                        failure_text(&status)
                    ),
                    correlation_id: status
                        .get("correlation_id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    unreachable: false,
                });
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(LoadError::internal(format!(
                "the destination did not finish importing project {id} within {} hours",
                IMPORT_DEADLINE.as_secs() / 3600
            )));
        }
    }
}

fn failed_relations(status: &Value) -> Vec<(String, String)> {
    status
        .get("failed_relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f.get("relation_name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                f.get("exception_message")
                    .and_then(Value::as_str)
                    .unwrap_or("failed")
                    .to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_over_the_maximum_import_size_is_refused_naming_the_setting() {
        assert_eq!(too_large(5 << 20, 5), None);
        let why = too_large((5 << 20) + 1, 5).unwrap();
        assert!(why.contains("is 6 MiB"), "{why}");
        assert!(why.contains("at most 5 MiB"), "{why}");
        assert!(why.contains("Maximum import size"), "{why}");
    }
}

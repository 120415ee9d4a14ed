//! Pre-flight (`appliance check`): what a migration request would move and every blocker found,
//! without writing anything anywhere and without recording anything. Each check the real submission
//! makes is made here too (through the same functions), but a blocker is collected instead of ending
//! the check, so one run shows all of them; then the source is measured (counts per relation,
//! repository and LFS sizes) and every member that would not map at the destination is listed.

use super::{Engine, SubmitError, SubmitRequest, refuse_duplicate_destinations};
use crate::forge::{ForgeError, GitLab, base_string, gitlab::encode_path};
use crate::model::{EntityRequest, EntityType};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize)]
pub struct Preflight {
    pub source_url: String,
    pub source_version: Option<String>,
    pub destination_url: String,
    pub destination_version: Option<String>,
    /// Whether the destination token is an administrator's (authors keep their contributions only
    /// then); None when the destination did not answer.
    pub destination_admin: Option<bool>,
    /// What the destination's import settings say (an administrator's token reads them).
    pub destination_import: Option<ImportCheck>,
    pub entities: Vec<EntityCheck>,
    /// Everything that would stop the migration or part of it, with what to change.
    pub blockers: Vec<String>,
    /// What would migrate with less than a user may expect, and why.
    pub warnings: Vec<String>,
    /// Source users with a membership that no destination user maps to (by the user map or email):
    /// their memberships would be skipped. As `appliance check --unmapped-csv` writes them.
    pub unmapped_users: Vec<UnmappedUser>,
}

#[derive(Debug, Serialize)]
pub struct ImportCheck {
    pub accepts_gitlab_exports: bool,
    pub max_import_mib: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct EntityCheck {
    pub entity_type: String,
    pub source_full_path: String,
    pub destination_full_path: String,
    /// Records per relation the source holds: the group's own (`labels`, `milestones`, `epics`,
    /// `members`), its tree's (`subgroups`, `projects`, `issues`, `merge_requests`).
    pub counts: BTreeMap<String, u64>,
    /// Projects (of a group: every project of its tree) with their sizes.
    pub projects: Vec<ProjectCheck>,
}

#[derive(Debug, Default, Serialize)]
pub struct ProjectCheck {
    pub source_full_path: String,
    pub issues: u64,
    pub merge_requests: u64,
    /// Bytes, from the source's project statistics (None when the token may not read them).
    pub repository_size: Option<u64>,
    pub lfs_objects_size: Option<u64>,
    /// The source token's role in the project (GitLab's access level, the higher of its own and
    /// its groups'); None when it has none. GitLab exports a project only to a maintainer (40) or
    /// above, or to an administrator.
    pub source_access_level: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnmappedUser {
    pub username: String,
    pub public_email: String,
}

impl Engine {
    /// Checks `req` as `create` would, measures the source and lists unmapped members; writes nothing.
    pub async fn preflight(&self, req: &SubmitRequest) -> Result<Preflight, SubmitError> {
        let mut out = self.find_blockers(req).await?;
        // One line per blocker, in the order found (two entities may meet the same one).
        let mut seen = std::collections::HashSet::new();
        out.blockers.retain(|b| seen.insert(b.clone()));
        Ok(out)
    }

    async fn find_blockers(&self, req: &SubmitRequest) -> Result<Preflight, SubmitError> {
        let destination = self
            .destination
            .as_ref()
            .ok_or(SubmitError::NoDestination)?
            .clone();
        let destination = destination.with_user_map(crate::user_map::UserMap::new(&req.user_map));
        let mut out = Preflight {
            source_url: req.source_url.clone(),
            destination_url: base_string(destination.client.base()),
            ..Default::default()
        };
        if let Err(e) = refuse_duplicate_destinations(&req.entities) {
            out.blockers.push(e.to_string());
        }
        // The source: reachable, the token accepted, each entity there.
        let url = match self
            .check_source(&req.source_url, &req.source_token, &req.entities)
            .await
        {
            Ok(url) => Some(url),
            Err(e @ SubmitError::SourceEntityNotFound { .. }) => {
                out.blockers.push(e.to_string());
                crate::forge::parse_forge_url(&req.source_url, self.config.allow_http).ok()
            }
            Err(e) => {
                out.blockers.push(e.to_string());
                None
            }
        };
        // The destination: reachable, each namespace there and each path free, imports accepted.
        let deadline = self.config.check_deadline;
        match tokio::time::timeout(deadline, destination.version()).await {
            Ok(Ok(v)) => out.destination_version = Some(v),
            Ok(Err(e)) => {
                out.blockers
                    .push(SubmitError::DestinationUnreachable(e.to_string()).to_string());
                return Ok(out);
            }
            Err(_) => {
                let why = super::no_answer(&destination.client, deadline);
                out.blockers
                    .push(SubmitError::DestinationUnreachable(why).to_string());
                return Ok(out);
            }
        }
        out.destination_admin = tokio::time::timeout(deadline, destination.current_user())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|u| u.get("is_admin").and_then(Value::as_bool).unwrap_or(false));
        if out.destination_admin == Some(false) {
            out.warnings.push(
                "the destination token is not an administrator's: contributions (issues, merge \
                 requests, notes, epics) are written by the importing user, naming their authors, \
                 and project members are not added by the project import"
                    .into(),
            );
        }
        if let Ok(Ok(Some(s))) = tokio::time::timeout(deadline, destination.import_settings()).await
        {
            let creates_projects = req
                .entities
                .iter()
                .any(|e| e.entity_type == EntityType::Project || e.migrate_projects);
            if creates_projects && !s.accepts_gitlab_exports {
                out.blockers
                    .push(SubmitError::ProjectImportsDisabled.to_string());
            }
            out.destination_import = Some(ImportCheck {
                accepts_gitlab_exports: s.accepts_gitlab_exports,
                max_import_mib: s.max_import_mib,
            });
        }
        let source_base = url.as_ref().map(base_string).unwrap_or_default();
        for e in &req.entities {
            if let Err(err) = self
                .check_destination_for(&destination, &source_base, e, req.continue_earlier)
                .await
            {
                out.blockers.push(err.to_string());
            }
        }
        let Some(url) = url else {
            return Ok(out);
        };
        let source = self.source_gitlab(url, req.source_token.clone())?;
        out.source_version = tokio::time::timeout(deadline, source.version())
            .await
            .ok()
            .and_then(Result::ok);
        let source_admin = tokio::time::timeout(deadline, source.current_user())
            .await
            .ok()
            .and_then(Result::ok)
            .is_some_and(|u| u.get("is_admin").and_then(Value::as_bool) == Some(true));
        let mut unmapped = BTreeMap::new();
        // A source that stalls, trickles or rate-limits for long does not hold the check: what
        // could not be measured by then is a blocker that says so.
        let measured_by = tokio::time::Instant::now() + MEASURE_DEADLINE_FACTOR * deadline;
        for e in &req.entities {
            // Every entity the source lacks is a blocker (the submission's check stops at the first).
            let found = async {
                let found = match e.entity_type {
                    EntityType::Group => source.group(&e.source_full_path).await,
                    EntityType::Project => source.project(&e.source_full_path).await,
                };
                match found {
                    Ok(Some(_)) => measure(&source, &destination, e, &mut unmapped)
                        .await
                        .map(Some),
                    Ok(None) => Ok(None),
                    Err(err) => Err(err),
                }
            };
            let found = match tokio::time::timeout_at(measured_by, found).await {
                Ok(found) => found,
                Err(_) => {
                    out.blockers.push(format!(
                        "{} could not be measured at the source: it did not answer within {} s \
                         (it stalls or rate-limits); a migration would wait for it",
                        e.source_full_path,
                        (MEASURE_DEADLINE_FACTOR * deadline).as_secs()
                    ));
                    break;
                }
            };
            if matches!(found, Ok(None)) {
                out.blockers.push(
                    SubmitError::SourceEntityNotFound {
                        entity_type: e.entity_type.as_str(),
                        full_path: e.source_full_path.clone(),
                    }
                    .to_string(),
                );
                continue;
            }
            match found {
                Ok(None) => {}
                Ok(Some(check)) => {
                    for p in &check.projects {
                        if !source_admin && p.source_access_level.unwrap_or(0) < MAINTAINER {
                            out.blockers.push(format!(
                                "the source token is {} of project {}: GitLab exports a project \
                                 (its issues, merge requests, uploads and settings, which only \
                                 an export holds in a form GitLab can import) only to a \
                                 maintainer or owner, or an administrator; give the migration \
                                 such a token",
                                role(p.source_access_level),
                                p.source_full_path,
                            ));
                        }
                    }
                    if let Some(limit) = out
                        .destination_import
                        .as_ref()
                        .and_then(|i| i.max_import_mib)
                    {
                        for p in &check.projects {
                            let size =
                                p.repository_size.unwrap_or(0) + p.lfs_objects_size.unwrap_or(0);
                            if size > limit << 20 {
                                out.blockers.push(format!(
                                    "project {} holds {} MiB of repository and LFS objects, more than the destination's maximum import size of {limit} MiB: an administrator raises \"Maximum import size\" ({})",
                                    p.source_full_path,
                                    size.div_ceil(1 << 20),
                                    crate::forge::gitlab::IMPORT_SETTINGS_PLACE
                                ));
                            }
                        }
                    }
                    out.entities.push(check);
                }
                Err(err) => out.blockers.push(format!(
                    "{} could not be measured at the source: {err}",
                    e.source_full_path
                )),
            }
        }
        out.unmapped_users = unmapped.into_values().collect();
        if !out.unmapped_users.is_empty() {
            out.warnings.push(format!(
                "{} source users with a membership map to no destination user: their memberships \
                 would be skipped (appliance check --unmapped-csv FILE writes them, ready to complete \
                 and pass back with --user-map)",
                out.unmapped_users.len()
            ));
        }
        Ok(out)
    }
}

/// GitLab's Maintainer access level, the least that may export a project.
const MAINTAINER: u64 = 40;

/// A GitLab access level as a role ("a Developer").
fn role(level: Option<u64>) -> &'static str {
    match level {
        None | Some(0) => "not a member",
        Some(5) => "a Minimal Access member",
        Some(10) => "a Guest",
        Some(15) => "a Planner",
        Some(20) => "a Reporter",
        Some(30) => "a Developer",
        Some(40) => "a Maintainer",
        Some(_) => "an Owner",
    }
}

/// How long measuring the source may take, in check deadlines.
const MEASURE_DEADLINE_FACTOR: u32 = 2;

/// How many records a list holds: counted by the source, else listed.
async fn total(source: &GitLab, path: &str, query: &[(&str, String)]) -> Result<u64, ForgeError> {
    match source.count(path, query).await? {
        Some(n) => Ok(n),
        None => Ok(source.list_all(path, query).await?.len() as u64),
    }
}

async fn measure(
    source: &GitLab,
    destination: &GitLab,
    e: &EntityRequest,
    unmapped: &mut BTreeMap<String, UnmappedUser>,
) -> Result<EntityCheck, ForgeError> {
    let path = encode_path(&e.source_full_path);
    let mut check = EntityCheck {
        entity_type: e.entity_type.as_str().to_string(),
        source_full_path: e.source_full_path.clone(),
        destination_full_path: super::destination_full_path(e),
        ..Default::default()
    };
    let projects: Vec<Value> = match e.entity_type {
        EntityType::Group => {
            for (name, list, query) in [
                ("subgroups", "descendant_groups", vec![]),
                (
                    "labels",
                    "labels",
                    vec![("include_ancestor_groups", "false".to_string())],
                ),
                ("milestones", "milestones", vec![]),
                (
                    "epics",
                    "epics",
                    vec![("include_descendant_groups", "false".to_string())],
                ),
                ("members", "members", vec![]),
            ] {
                if let Ok(n) = total(source, &format!("groups/{path}/{list}"), &query).await {
                    check.counts.insert(name.into(), n);
                }
            }
            if e.migrate_memberships {
                note_unmapped(
                    source,
                    destination,
                    &format!("groups/{path}/members"),
                    unmapped,
                )
                .await?;
            }
            if e.migrate_projects {
                source
                    .list_all(
                        &format!("groups/{path}/projects"),
                        &[("include_subgroups", "true".into())],
                    )
                    .await?
            } else {
                Vec::new()
            }
        }
        EntityType::Project => source
            .project(&e.source_full_path)
            .await?
            .into_iter()
            .collect(),
    };
    check
        .counts
        .insert("projects".into(), projects.len() as u64);
    let (mut issues, mut mrs) = (0, 0);
    for p in projects {
        let Some(id) = p.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let read = source
            .client
            .get(
                &format!("projects/{id}"),
                &[("statistics", "true".to_string())],
            )
            .await
            .ok();
        let stats = read.as_ref().and_then(|p| p.get("statistics").cloned());
        let source_access_level = ["project_access", "group_access"]
            .iter()
            .filter_map(|k| {
                read.as_ref()?
                    .pointer(&format!("/permissions/{k}/access_level"))?
                    .as_u64()
            })
            .max();
        let size = |k: &str| {
            stats
                .as_ref()
                .and_then(|s| s.get(k))
                .and_then(Value::as_u64)
        };
        let project = ProjectCheck {
            source_full_path: p
                .get("path_with_namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            issues: total(source, &format!("projects/{id}/issues"), &[]).await?,
            merge_requests: total(source, &format!("projects/{id}/merge_requests"), &[]).await?,
            repository_size: size("repository_size"),
            lfs_objects_size: size("lfs_objects_size"),
            source_access_level,
        };
        issues += project.issues;
        mrs += project.merge_requests;
        note_unmapped(
            source,
            destination,
            &format!("projects/{id}/members"),
            unmapped,
        )
        .await?;
        check.projects.push(project);
    }
    check.counts.insert("issues".into(), issues);
    check.counts.insert("merge_requests".into(), mrs);
    Ok(check)
}

/// Adds the members of a source list that no destination user maps to.
async fn note_unmapped(
    source: &GitLab,
    destination: &GitLab,
    list: &str,
    unmapped: &mut BTreeMap<String, UnmappedUser>,
) -> Result<(), ForgeError> {
    for m in source.list_all(list, &[]).await? {
        let username = m
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if username.is_empty() || unmapped.contains_key(&username) {
            continue;
        }
        // The member's public email, as the migration maps them.
        let user = match m.get("id").and_then(Value::as_u64) {
            Some(id) => source.user(id).await.unwrap_or(m.clone()),
            None => m.clone(),
        };
        let mapped = destination
            .map_user(&user)
            .await
            .map_err(|e| ForgeError::Decode {
                url: destination.client.base().to_string(),
                message: format!("mapping {username}: {e}"),
            })?;
        if mapped.is_none() {
            unmapped.insert(
                username.clone(),
                UnmappedUser {
                    username,
                    public_email: user
                        .get("public_email")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                },
            );
        }
    }
    Ok(())
}

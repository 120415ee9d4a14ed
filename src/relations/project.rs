//! The relations of a project entity. A project is created by the destination's own project import
//! (`crate::engine::project` says the plan): its attributes record comes from here, its smaller
//! relations travel in the import archive that creates it, and the relations GitLab's relation import
//! takes (`milestones`, `issues`, `merge_requests`) load afterwards a page at a time, each page one
//! archive sent to `POST /projects/import-relation`, then read back from the destination so that
//! what counts as imported is what arrived. GitLab's relation import skips what it already imported,
//! so a page loaded twice (a resume, a retry) creates nothing twice.

use super::{EntityContext, Extraction, LoadError, Relation, pick};
use crate::archive::ImportArchive;
use crate::forge::{ForgeError, GitLab};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// The project itself: its attributes and settings, as `tree/project.json` of an export holds them.
pub struct ProjectAttributes;

/// GitLab's visibility levels (`Gitlab::VisibilityLevel`).
pub fn visibility_level(visibility: &str) -> u64 {
    match visibility {
        "public" => 20,
        "internal" => 10,
        _ => 0,
    }
}

#[async_trait]
impl Relation for ProjectAttributes {
    fn name(&self) -> &'static str {
        "project"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Projects::Pipelines::ProjectPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::Single {
            path: format!("projects/{}", ctx.source_id()),
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut out = pick(
            &rest,
            &[
                "id",
                "name",
                "path",
                "path_with_namespace",
                "description",
                "archived",
                "default_branch",
                "topics",
                "request_access_enabled",
                "merge_method",
                "squash_option",
                "only_allow_merge_if_pipeline_succeeds",
                "only_allow_merge_if_all_discussions_are_resolved",
                "remove_source_branch_after_merge",
                "printing_merge_request_link_enabled",
                "autoclose_referenced_issues",
                "ci_config_path",
                "merge_commit_template",
                "squash_commit_template",
                "suggestion_commit_message",
                "issues_template",
                "merge_requests_template",
                "service_desk_enabled",
                "lfs_enabled",
            ],
        );
        let visibility = rest.get("visibility").and_then(Value::as_str).unwrap_or("");
        out.insert(
            "visibility_level".into(),
            json!(visibility_level(visibility)),
        );
        Value::Object(out)
    }
    fn title(&self, record: &Value) -> Option<String> {
        record
            .get("path_with_namespace")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    async fn load(
        &self,
        _dest: &GitLab,
        _ctx: &EntityContext,
        _record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        Err(LoadError::internal(
            "a project is created by its import archive, not record by record".into(),
        ))
    }
}

/// A relation that travels in the archive that creates its project: read from GitLab's relation export
/// as it is, never loaded on its own.
pub struct ArchiveRelation {
    pub name: &'static str,
}

#[async_trait]
impl Relation for ArchiveRelation {
    fn name(&self) -> &'static str {
        self.name
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Projects::Pipelines::ProjectPipeline"
    }
    fn extraction(&self, _ctx: &EntityContext) -> Extraction {
        Extraction::ExportOnly
    }
    fn transform(&self, rest: Value) -> Value {
        rest
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some(self.name)
    }
    async fn load(
        &self,
        _dest: &GitLab,
        _ctx: &EntityContext,
        _record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        Err(LoadError::internal(format!(
            "{} travel in the archive that creates the project",
            self.name
        )))
    }
}

/// A relation GitLab's relation import loads into an existing project, a page at a time.
pub struct ImportedRelation {
    pub name: &'static str,
    pub pipeline_class: &'static str,
    /// The project's web path segment of one record (`issues`, `merge_requests`, `milestones`).
    web_segment: &'static str,
}

pub const MILESTONES: ImportedRelation = ImportedRelation {
    name: "milestones",
    pipeline_class: "BulkImports::Common::Pipelines::MilestonesPipeline",
    web_segment: "milestones",
};
pub const ISSUES: ImportedRelation = ImportedRelation {
    name: "issues",
    pipeline_class: "BulkImports::Projects::Pipelines::IssuesPipeline",
    web_segment: "issues",
};
pub const MERGE_REQUESTS: ImportedRelation = ImportedRelation {
    name: "merge_requests",
    pipeline_class: "BulkImports::Projects::Pipelines::MergeRequestsPipeline",
    web_segment: "merge_requests",
};

/// How long one relation import may take at the destination before the page counts as failed.
const RELATION_IMPORT_DEADLINE: Duration = Duration::from_secs(3600);
/// Records read back per request (GitLab's largest page).
const READ_BACK_PAGE: usize = 100;

fn iid(record: &Value) -> Option<u64> {
    record.get("iid").and_then(Value::as_u64)
}

#[async_trait]
impl Relation for ImportedRelation {
    fn name(&self) -> &'static str {
        self.name
    }
    fn pipeline_class(&self) -> &'static str {
        self.pipeline_class
    }
    fn extraction(&self, _ctx: &EntityContext) -> Extraction {
        Extraction::ExportOnly
    }
    fn transform(&self, rest: Value) -> Value {
        rest
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some(self.name)
    }
    fn source_id(&self, record: &Value) -> String {
        // iids are what GitLab keeps across an import, and what a page is read back by.
        iid(record).map(|i| i.to_string()).unwrap_or_default()
    }
    fn source_url(&self, ctx: &EntityContext, record: &Value) -> Option<String> {
        Some(match iid(record) {
            Some(i) => format!("{}/-/{}/{i}", ctx.source_web_url(), self.web_segment),
            None => ctx.source_web_url(),
        })
    }
    fn loads_in_batches(&self) -> bool {
        true
    }
    async fn load_batch(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        records: &[Value],
        _in_doubt: bool,
    ) -> Result<Vec<Result<u64, LoadError>>, LoadError> {
        let project = ctx.destination_project_id()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let dir = tempfile::tempdir().map_err(|e| LoadError::internal(e.to_string()))?;
        let file = dir.path().join("relation.tar.gz");
        let (name, records_owned) = (self.name, records.to_vec());
        let archive_path = file.clone();
        let members = ctx.project_members.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut archive = ImportArchive::create(&archive_path)?;
            archive.project(&json!({}))?;
            if let Some(members) = members.filter(|m| m.is_file()) {
                // Not imported again: GitLab maps the batch's authors through them.
                archive.file("tree/project/project_members.ndjson", &members)?;
            }
            archive.relation(name, records_owned.iter())?;
            archive.finish()
        })
        .await
        .map_err(|e| LoadError::internal(e.to_string()))?
        .map_err(|e| LoadError::internal(format!("cannot write the import archive: {e}")))?;

        let fields = [
            ("path", ctx.entity.destination_full_path()),
            ("relation", self.name.to_string()),
        ];
        // GitLab skips what a relation import already imported, so sending a page again is safe.
        let send = || {
            dest.client
                .post_archive("projects/import-relation", &fields, &file, true)
        };
        let started = match send().await {
            Ok(started) => started,
            // A project takes one relation import at a time: one an earlier run started (before a
            // crash) may still be running. Once it ends, this page goes.
            Err(e) if e.status() == Some(409) => {
                wait_until_idle(dest, project).await?;
                send().await?
            }
            Err(e) => return Err(e.into()),
        };
        let outcome = wait_relation_import(dest, project, &started, self.name).await?;
        let arrived = read_back(dest, project, self.name, records).await?;
        Ok(records
            .iter()
            .map(|r| match iid(r).and_then(|i| arrived.get(&i)) {
                Some(id) => Ok(*id),
                None => Err(LoadError {
                    class: "Appliance::NotImported".into(),
                    message: match &outcome {
                        Some(why) => format!("GitLab's relation import did not create it: {why}"),
                        None => "GitLab's relation import finished without creating it".into(),
                    },
                    correlation_id: None,
                    unreachable: false,
                }),
            })
            .collect())
    }
    async fn load(
        &self,
        _dest: &GitLab,
        _ctx: &EntityContext,
        _record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        Err(LoadError::internal(format!(
            "{} load through GitLab's relation import, a page at a time",
            self.name
        )))
    }
}

/// Reads `GET /projects/:id/relation-imports` until `done` finds what it waits for in the list,
/// backing off up to 5 s between reads; None past the deadline.
async fn poll_relation_imports<T>(
    dest: &GitLab,
    project: u64,
    done: impl Fn(&[Value]) -> Option<T>,
) -> Result<Option<T>, LoadError> {
    let deadline = tokio::time::Instant::now() + RELATION_IMPORT_DEADLINE;
    let mut wait = Duration::from_millis(25);
    loop {
        let list = dest
            .client
            .get(&format!("projects/{project}/relation-imports"), &[])
            .await?;
        if let Some(found) = done(list.as_array().map(Vec::as_slice).unwrap_or_default()) {
            return Ok(Some(found));
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn status_of(v: &Value) -> Option<&str> {
    v.get("status").and_then(Value::as_str)
}

/// Follows one relation import to its end. Ok(None) when it finished; Ok(Some(why)) when GitLab says
/// it failed (the records that did arrive still count).
async fn wait_relation_import(
    dest: &GitLab,
    project: u64,
    started: &Value,
    relation: &str,
) -> Result<Option<String>, LoadError> {
    let import_id = started.get("id").and_then(Value::as_u64);
    let ended = |v: &Value| match status_of(v) {
        Some("finished") => Some(None),
        Some("failed") => Some(Some(failure_text(v))),
        _ => None,
    };
    if let Some(outcome) = ended(started) {
        return Ok(outcome);
    }
    let outcome = poll_relation_imports(dest, project, |all| {
        all.iter()
            .filter(|r| r.get("relation").and_then(Value::as_str) == Some(relation))
            .find(|r| import_id.is_none() || r.get("id").and_then(Value::as_u64) == import_id)
            .and_then(ended)
    })
    .await?;
    Ok(outcome.unwrap_or_else(|| {
        Some(format!(
            "the destination did not finish importing {relation} within {} minutes",
            RELATION_IMPORT_DEADLINE.as_secs() / 60
        ))
    }))
}

/// Waits until no relation import of `project` is scheduled or running.
async fn wait_until_idle(dest: &GitLab, project: u64) -> Result<(), LoadError> {
    let idle = poll_relation_imports(dest, project, |all| {
        (!all
            .iter()
            .any(|r| matches!(status_of(r), Some("created" | "started"))))
        .then_some(())
    })
    .await?;
    idle.ok_or_else(|| {
        LoadError::internal(format!(
            "a relation import of project {project} did not end within {} minutes",
            RELATION_IMPORT_DEADLINE.as_secs() / 60
        ))
    })
}

/// GitLab's words for why an import failed: its `import_error`, or its failed relations.
pub fn failure_text(status: &Value) -> String {
    if let Some(e) = status.get("import_error").and_then(Value::as_str) {
        return e.to_string();
    }
    let failed: Vec<String> = status
        .get("failed_relations")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.get("relation_name")
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                        f.get("exception_message")
                            .and_then(Value::as_str)
                            .unwrap_or("failed")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if failed.is_empty() {
        "the destination's import failed without saying why".into()
    } else {
        failed.join("; ")
    }
}

/// The destination ids of the page's records that are at the destination, by iid.
async fn read_back(
    dest: &GitLab,
    project: u64,
    relation: &str,
    records: &[Value],
) -> Result<HashMap<u64, u64>, ForgeError> {
    let iids: Vec<u64> = records.iter().filter_map(iid).collect();
    let mut arrived = HashMap::with_capacity(iids.len());
    for chunk in iids.chunks(READ_BACK_PAGE) {
        let mut query: Vec<(&str, String)> =
            chunk.iter().map(|i| ("iids[]", i.to_string())).collect();
        query.push(("per_page", READ_BACK_PAGE.to_string()));
        if relation != "milestones" {
            query.push(("state", "all".into()));
        }
        let found = dest
            .client
            .get(&format!("projects/{project}/{relation}"), &query)
            .await?;
        for item in found.as_array().into_iter().flatten() {
            if let (Some(i), Some(id)) = (iid(item), item.get("id").and_then(Value::as_u64)) {
                arrived.insert(i, id);
            }
        }
    }
    Ok(arrived)
}

//! The relations of a project entity. A project is created by the destination's own project import
//! (`crate::engine::project` says the plan): its attributes record comes from here, its smaller
//! relations travel in the import archive that creates it, and the relations GitLab's relation import
//! takes (`milestones`, `issues`, `merge_requests`) load afterwards a page at a time (unless one page
//! holds them all: that page travels in the creating archive, `Relation::arrived`), each page one
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
/// Records listed per request when a page is read back record by record (GitLab's largest page).
const READ_BACK_PAGE: usize = 100;
/// The longest `iids` filter of one count request, as sent (GitLab reads `iids=1,2,3` as
/// `iids[]=1&iids[]=2&iids[]=3`; each comma goes percent-encoded, `%2C`): a request line within about
/// 6 KiB, short enough for the proxies in front of GitLab (nginx's 8 KiB, Puma's 10 KiB query) and
/// one request for a batch of GitLab's 1,000 records numbered from 1.
const COUNT_FILTER_BYTES: usize = 6000;

/// `iids` cut into runs whose `iids` filter, percent-encoded, is at most `budget` bytes.
fn filter_chunks(iids: &[u64], budget: usize) -> Vec<&[u64]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, iid) in iids.iter().enumerate() {
        let digits = iid.checked_ilog10().unwrap_or(0) as usize + 1;
        let added = if i == start { digits } else { 3 + digits };
        if i > start && bytes + added > budget {
            chunks.push(&iids[start..i]);
            (start, bytes) = (i, digits);
        } else {
            bytes += added;
        }
    }
    if start < iids.len() {
        chunks.push(&iids[start..]);
    }
    chunks
}

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
    fn leave_out(&self, ctx: &EntityContext, record: &mut Value) -> Option<String> {
        if self.name != ISSUES.name {
            return None;
        }
        left_out_designs(record, ctx.design_commits.as_deref())
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
        // The page goes to disk as NDJSON first (a few MiB), rather than as a copy of its parsed
        // records (several times that) handed to the thread that writes the archive.
        let staged = dir.path().join(format!("{}.ndjson", self.name));
        let mut lines = Vec::new();
        for record in records {
            serde_json::to_writer(&mut lines, record)
                .map_err(|e| LoadError::internal(e.to_string()))?;
            lines.push(b'\n');
        }
        tokio::fs::write(&staged, lines)
            .await
            .map_err(|e| LoadError::internal(format!("cannot stage the page: {e}")))?;
        let name = self.name;
        let archive_path = file.clone();
        let members = ctx.project_members.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut archive = ImportArchive::create(&archive_path)?;
            archive.project(&json!({}))?;
            if let Some(members) = members.filter(|m| m.is_file()) {
                // Not imported again: GitLab maps the batch's authors through them.
                archive.file("tree/project/project_members.ndjson", &members)?;
            }
            archive.file(&format!("tree/project/{name}.ndjson"), &staged)?;
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
        self.settle(dest, project, records, "GitLab's relation import", outcome)
            .await
    }
    async fn arrived(
        &self,
        dest: &GitLab,
        project: u64,
        records: &[Value],
        why: Option<String>,
    ) -> Result<Option<Vec<Result<u64, LoadError>>>, LoadError> {
        self.settle(dest, project, records, "GitLab's project import", why)
            .await
            .map(Some)
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

impl ImportedRelation {
    /// Each record's outcome once `how` (an import) ended, `outcome` being what it said if it
    /// failed: read back from the destination by iid, so a record counts as imported only when it is
    /// there.
    async fn settle(
        &self,
        dest: &GitLab,
        project: u64,
        records: &[Value],
        how: &str,
        outcome: Option<String>,
    ) -> Result<Vec<Result<u64, LoadError>>, LoadError> {
        let arrived = read_back(dest, project, self.name, records).await?;
        Ok(records
            .iter()
            .map(|r| match iid(r).and_then(|i| arrived.get(&i)) {
                Some(id) => Ok(*id),
                None => Err(LoadError {
                    class: "Appliance::NotImported".into(),
                    message: match &outcome {
                        Some(why) => format!("{how} did not create it: {why}"),
                        None => format!("{how} finished without creating it"),
                    },
                    correlation_id: None,
                    unreachable: false,
                }),
            })
            .collect())
    }
}

/// How many designs and design versions an issue record holds. Whatever a hostile or odd record
/// holds there counts as one: only an absent, null or empty list is nothing.
fn design_counts(issue: &Value) -> (usize, usize) {
    let count = |v: Option<&Value>| match v {
        None | Some(Value::Null) => 0,
        Some(Value::Array(items)) => items.len(),
        Some(_) => 1,
    };
    (
        count(issue.get("designs")),
        count(issue.get("design_versions")),
    )
}

/// Whether an issue record holds designs or design versions (see [`design_counts`]).
pub fn has_designs(issue: &Value) -> bool {
    design_counts(issue) != (0, 0)
}

/// An issue's designs and their versions, taken out of its record when they would arrive broken:
/// without the design repository that holds their files (`commits` None: the source gave none),
/// with a version that is not one of its commits, or in a shape GitLab's import cannot restore
/// (not lists). What was taken out, when there was any.
fn left_out_designs(
    issue: &mut Value,
    commits: Option<&std::collections::BTreeSet<String>>,
) -> Option<String> {
    let (designs, versions) = design_counts(issue);
    if designs == 0 && versions == 0 {
        return None;
    }
    let object = issue.as_object_mut()?;
    let lists = ["designs", "design_versions"]
        .iter()
        .all(|k| matches!(object.get(*k), None | Some(Value::Null | Value::Array(_))));
    let foreign = match (lists, commits) {
        (true, Some(commits)) => object
            .get("design_versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| {
                v.get("sha")
                    .and_then(Value::as_str)
                    .is_none_or(|sha| !commits.contains(sha))
            })
            .count(),
        _ => 0,
    };
    let why = match commits {
        _ if !lists => "its designs are not lists of records, as GitLab exports them".to_string(),
        None => "the source gave no design repository for this project (GitLab exports it as the \
                 relation `design`), and designs without it would arrive broken"
            .to_string(),
        Some(_) if foreign > 0 => format!(
            "{foreign} of its design versions are not commits of the project's design repository, \
             so their files are not there"
        ),
        Some(_) => return None,
    };
    object.remove("designs");
    object.remove("design_versions");
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    Some(format!(
        "the issue migrated without its {} ({}): {why}; move them by hand",
        plural(designs, "design", "designs"),
        plural(versions, "version", "versions"),
    ))
}

/// Reads `GET /projects/:id/relation-imports` until `done` finds what it waits for in the list,
/// backing off up to 5 s between reads; None past the deadline.
async fn poll_relation_imports<T>(
    dest: &GitLab,
    project: u64,
    done: impl Fn(&[Value]) -> Option<T>,
) -> Result<Option<T>, LoadError> {
    let deadline = tokio::time::Instant::now() + RELATION_IMPORT_DEADLINE;
    // Called right after an import was asked for, which is not done yet: the first look waits too.
    let mut wait = Duration::from_millis(50);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
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

/// The page's records that are at the destination: their iids (GitLab keeps a record's iid through an
/// import, so the destination iid is the source's). For each chunk of iids one request asks the
/// destination how many of them it holds (`X-Total` of the list filtered to those iids, one record
/// per page); only when some are missing (or the count is not given) are they listed, a page of 100
/// at a time, to know which.
async fn read_back(
    dest: &GitLab,
    project: u64,
    relation: &str,
    records: &[Value],
) -> Result<HashMap<u64, u64>, ForgeError> {
    let iids: Vec<u64> = records.iter().filter_map(iid).collect();
    let mut arrived = HashMap::with_capacity(iids.len());
    let path = format!("projects/{project}/{relation}");
    let filter = |chunk: &[u64], per_page: usize| {
        let list = chunk
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut query = vec![("iids", list), ("per_page", per_page.to_string())];
        if relation != "milestones" {
            query.push(("state", "all".to_string()));
        }
        query
    };
    for chunk in filter_chunks(&iids, COUNT_FILTER_BYTES) {
        let counted = dest
            .client
            .list_page(&path, &filter(chunk, 1), None)
            .await?;
        if counted.total == Some(chunk.len() as u64) {
            arrived.extend(chunk.iter().map(|i| (*i, *i)));
            continue;
        }
        for part in chunk.chunks(READ_BACK_PAGE) {
            let found = dest
                .client
                .get(&path, &filter(part, READ_BACK_PAGE))
                .await?;
            for item in found.as_array().into_iter().flatten() {
                if let Some(i) = iid(item).filter(|i| part.contains(i)) {
                    arrived.insert(i, i);
                }
            }
        }
    }
    Ok(arrived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::ForgeClient;

    #[test]
    fn an_issues_designs_stay_only_with_the_repository_that_holds_their_versions() {
        let sha = "5b2d".repeat(10);
        let mut issue = json!({
            "iid": 3, "title": "Logo", "notes": [{"note": "kept"}],
            "designs": [{"iid": 1, "filename": "a.png"}, {"iid": 2, "filename": "b.png"}],
            "design_versions": [{"sha": sha, "actions": []}],
        });
        let with_them = issue.clone();
        let repository: std::collections::BTreeSet<String> = [sha.clone()].into();
        // With the repository that holds their versions they stay, as they are.
        assert_eq!(left_out_designs(&mut issue, Some(&repository)), None);
        assert_eq!(issue, with_them);
        // A repository without that version: their files are not there.
        let other: std::collections::BTreeSet<String> = ["c0ffee".repeat(7)].into();
        let said = left_out_designs(&mut issue, Some(&other)).expect("designs are named");
        assert!(
            said.contains("1 of its design versions are not commits"),
            "{said}"
        );
        assert_eq!(
            issue,
            json!({"iid": 3, "title": "Logo", "notes": [{"note": "kept"}]})
        );
        // No repository at all.
        let mut issue = with_them.clone();
        let said = left_out_designs(&mut issue, None).expect("designs are named");
        assert!(said.contains("2 designs (1 version)"), "{said}");
        assert!(said.contains("no design repository"), "{said}");
        assert!(said.contains("move them by hand"), "{said}");
        assert_eq!(
            issue,
            json!({"iid": 3, "title": "Logo", "notes": [{"note": "kept"}]})
        );
        // Empty lists, as every export has them, are left as they are and say nothing.
        let mut plain = json!({"iid": 4, "designs": [], "design_versions": []});
        let before = plain.clone();
        assert_eq!(left_out_designs(&mut plain, None), None);
        assert_eq!(plain, before);
        // Not a list: taken out all the same, even with the repository.
        let mut odd = json!({"iid": 5, "designs": {"iid": 1}});
        let said = left_out_designs(&mut odd, Some(&repository)).expect("an odd shape is named");
        assert!(said.contains("not lists"), "{said}");
        assert_eq!(odd, json!({"iid": 5}));
        let mut odd = json!({"iid": 6, "designs": [], "design_versions": sha});
        assert!(left_out_designs(&mut odd, Some(&repository)).is_some());
        assert_eq!(odd, json!({"iid": 6}));
        // A version without a sha is not one of the repository's.
        let mut odd = json!({"iid": 7, "design_versions": [{"actions": []}]});
        assert!(left_out_designs(&mut odd, Some(&repository)).is_some());
    }
    use crate::forge::client::RetryPolicy;
    use axum::Router;
    use axum::extract::{Query, State};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A destination whose project 7 holds the issues `present`; it counts the list requests and
    /// answers `iids` (comma-separated or repeated) and `per_page` as GitLab does, with `X-Total`.
    async fn destination(present: Vec<u64>, hits: Arc<AtomicU32>) -> GitLab {
        async fn issues(
            State((present, hits)): State<(Arc<Vec<u64>>, Arc<AtomicU32>)>,
            Query(query): Query<Vec<(String, String)>>,
        ) -> impl IntoResponse {
            hits.fetch_add(1, Ordering::SeqCst);
            let wanted: Vec<u64> = query
                .iter()
                .filter(|(k, _)| k == "iids" || k == "iids[]")
                .flat_map(|(_, v)| {
                    v.split(',')
                        .filter_map(|i| i.parse().ok())
                        .collect::<Vec<_>>()
                })
                .collect();
            let per_page: usize = query
                .iter()
                .find(|(k, _)| k == "per_page")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(20);
            let found: Vec<u64> = present
                .iter()
                .copied()
                .filter(|i| wanted.is_empty() || wanted.contains(i))
                .collect();
            let page: Vec<Value> = found
                .iter()
                .take(per_page)
                .map(|i| json!({"id": 1000 + i, "iid": i}))
                .collect();
            ([("x-total", found.len().to_string())], axum::Json(page))
        }
        let router = Router::new()
            .route("/api/v4/projects/7/issues", get(issues))
            .with_state((Arc::new(present), hits));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let url = url::Url::parse(&format!("http://{addr}")).unwrap();
        let client = ForgeClient::new(
            url,
            secrecy::SecretString::from("t".to_string()),
            2,
            RetryPolicy::default(),
        )
        .unwrap();
        GitLab::new(client)
    }

    fn page(iids: impl Iterator<Item = u64>) -> Vec<Value> {
        iids.map(|i| json!({"iid": i, "title": format!("issue {i}")}))
            .collect()
    }

    #[tokio::test]
    async fn a_page_that_arrived_whole_is_counted_in_one_request_per_6_kib_of_iids() {
        let hits = Arc::new(AtomicU32::new(0));
        let dest = destination((1..=2200).collect(), hits.clone()).await;
        let arrived = read_back(&dest, 7, "issues", &page(1..=1000))
            .await
            .unwrap();
        assert_eq!(arrived.len(), 1000);
        assert!((1..=1000).all(|i| arrived.get(&i) == Some(&i)));
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "GitLab's first batch: one count"
        );
        // Four-digit iids take two.
        let arrived = read_back(&dest, 7, "issues", &page(1001..=2000))
            .await
            .unwrap();
        assert_eq!(arrived.len(), 1000);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            3,
            "the second batch: two counts"
        );
    }

    #[test]
    fn an_iids_filter_is_cut_by_its_length_as_sent() {
        let sent = |chunk: &[u64]| {
            let list = chunk.iter().map(u64::to_string).collect::<Vec<_>>();
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("iids", &list.join(","))
                .finish()
                .len()
                - "iids=".len()
        };
        for iids in [
            (1..=1000).collect::<Vec<u64>>(),
            (1001..=2000).collect(),
            (99_990..=100_500).collect(),
            vec![u64::MAX; 400],
            vec![7],
            vec![],
        ] {
            let chunks = filter_chunks(&iids, COUNT_FILTER_BYTES);
            assert_eq!(chunks.concat(), iids, "every iid once, in order");
            for chunk in &chunks {
                assert!(!chunk.is_empty());
                assert!(sent(chunk) <= COUNT_FILTER_BYTES, "{} bytes", sent(chunk));
            }
            // As few requests as the budget allows: no two neighbours would fit in one.
            for pair in chunks.windows(2) {
                assert!(sent(&[pair[0], &pair[1][..1]].concat()) > COUNT_FILTER_BYTES);
            }
        }
        assert_eq!(
            filter_chunks(&(1..=1000).collect::<Vec<_>>(), 6000).len(),
            1
        );
    }

    #[tokio::test]
    async fn a_page_with_records_missing_is_listed_to_know_which() {
        let hits = Arc::new(AtomicU32::new(0));
        let present: Vec<u64> = (1..=250).filter(|i| i % 7 != 0).collect();
        let dest = destination(present.clone(), hits.clone()).await;
        let arrived = read_back(&dest, 7, "issues", &page(1..=250)).await.unwrap();
        let mut got: Vec<u64> = arrived.keys().copied().collect();
        got.sort_unstable();
        assert_eq!(got, present, "exactly the records at the destination");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1 + 3,
            "a count, then 100 a page"
        );
    }
}

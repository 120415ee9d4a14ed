//! GitLab's file-based project import, behind `POST /projects/import` and
//! `POST /projects/import-relation`: reading an export archive and restoring its records.
//!
//! It owns the archive layout (a `.tar.gz` with `VERSION`, `tree/project.json`,
//! `tree/project/<relation>.ndjson`, `project.bundle`, optional `project.wiki.bundle` and
//! `project.design.bundle`, `snippets/<hexdigest>.bundle`, `uploads/<secret>/<file>`, `lfs-objects/`), the import runs
//! (which move a project's [`ProjectImport`] or a [`RelationImport`] through its states) and the
//! restore itself, under GitLab's rules: ids in the archive are ignored, iids and timestamps are
//! kept, unknown relations and keys are ignored, a record that cannot be restored becomes a failed
//! relation instead of failing the import. Users are mapped by the email of the exported
//! `project_members` when the importer is an administrator; any other author becomes the importer,
//! and a note by someone unmapped gets GitLab's `*By <name> on <time> (imported from GitLab)*`
//! line.
//!
//! It never decides access or renders HTTP (`routes/imports.rs` does), and it writes git data
//! only through [`crate::git::GitStore`]. A wiki (`project.wiki.bundle`) is restored into the
//! project's wiki repository, `project.design.bundle` into its design repository, and LFS objects
//! (`lfs-objects/<oid>`, `lfs-objects.json`) into its LFS storage with the repository types the
//! JSON names, each checked against its oid. An issue's designs, design versions and notes on
//! designs are restored with the issue. Every restored snippet gets its repository back from
//! `snippets/<hexdigest>.bundle` (see [`snippet_hexdigest`]), or one commit of its `file_name` and
//! `content` when the archive has no bundle for it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use serde_json::Value;

use crate::model::{
    AwardEmoji, Badge, Board, BoardList, Design, DesignEvent, DesignVersion, FailedRelation, Issue,
    Label, LfsRepositoryType, Member, MergeRequest, Milestone, Note, Parent, ProtectedBranch,
    Release, ReleaseLink, Snippet, Upload, access,
};

mod settings;
use crate::state::{Sim, Store};

/// The export format version this simulator imports (GitLab's `Gitlab::ImportExport.version`).
pub const VERSION: &str = "0.2.4";

/// Relations `POST /projects/import-relation` accepts.
pub const SINGLE_RELATIONS: &[&str] = &["issues", "merge_requests", "milestones", "ci_pipelines"];

/// The order GitLab restores the relations the simulator keeps; members come first because
/// authors are mapped through them, labels and milestones before what refers to them.
const RESTORE_ORDER: &[&str] = &[
    "project_members",
    "labels",
    "milestones",
    "issues",
    "snippets",
    "releases",
    "merge_requests",
    "external_pull_requests",
    "commit_notes",
    "ci_pipelines",
    "auto_devops",
    "pipeline_schedules",
    "container_expiration_policy",
    "protected_branches",
    "protected_tags",
    "project_badges",
    "boards",
    "service_desk_setting",
    "push_rule",
];

/// The lines of one NDJSON file: each with its number (from 0), parsed or with the parse error.
pub type Lines = Vec<(u64, Result<Value, String>)>;

/// An export archive, read whole into memory.
#[derive(Debug, Default)]
pub struct Archive {
    pub version: Option<String>,
    /// `tree/project.json`.
    pub project: Option<Value>,
    /// `tree/project/<relation>.ndjson`.
    pub relations: BTreeMap<String, Lines>,
    pub bundle: Option<Vec<u8>>,
    /// `project.wiki.bundle`: the wiki's repository.
    pub wiki_bundle: Option<Vec<u8>>,
    /// `project.design.bundle`: the design repository.
    pub design_bundle: Option<Vec<u8>>,
    /// `snippets/<hexdigest>.bundle`: snippets' repositories, by the snippet's
    /// [`snippet_hexdigest`].
    pub snippet_bundles: BTreeMap<String, Vec<u8>>,
    /// `uploads/<secret>/<filename>` with the file's bytes.
    pub uploads: Vec<(String, String, Vec<u8>)>,
    /// `lfs-objects/<oid>` with the object's bytes.
    pub lfs_objects: Vec<(String, Vec<u8>)>,
    /// `lfs-objects.json`: which repositories (`project`, `wiki`, ...) each oid belongs to.
    pub lfs_json: Option<Value>,
}

impl Archive {
    /// Reads a gzipped tar; fails with the message GitLab's import would record.
    pub fn read(gz: &[u8]) -> Result<Archive, String> {
        let undecompressable = |e: std::io::Error| format!("Unable to decompress the archive: {e}");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        let mut archive = Archive::default();
        for entry in tar.entries().map_err(undecompressable)? {
            let mut entry = entry.map_err(undecompressable)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(undecompressable)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(undecompressable)?;
            let segments: Vec<&str> = path.split('/').collect();
            match segments.as_slice() {
                ["VERSION"] => {
                    archive.version = Some(String::from_utf8_lossy(&bytes).trim().to_owned());
                }
                ["tree", "project.json"] => {
                    archive.project = Some(
                        serde_json::from_slice(&bytes)
                            .map_err(|e| format!("Error parsing tree/project.json: {e}"))?,
                    );
                }
                ["tree", "project", file] => {
                    let Some(relation) = file.strip_suffix(".ndjson") else {
                        continue;
                    };
                    let lines = String::from_utf8_lossy(&bytes)
                        .lines()
                        .enumerate()
                        .filter(|(_, line)| !line.trim().is_empty())
                        .map(|(n, line)| {
                            (
                                n as u64,
                                serde_json::from_str(line).map_err(|e| e.to_string()),
                            )
                        })
                        .collect();
                    archive.relations.insert(relation.to_owned(), lines);
                }
                ["project.bundle"] => archive.bundle = Some(bytes),
                ["project.wiki.bundle"] => archive.wiki_bundle = Some(bytes),
                ["project.design.bundle"] => archive.design_bundle = Some(bytes),
                ["snippets", file] => {
                    if let Some(hexdigest) = file.strip_suffix(".bundle") {
                        archive.snippet_bundles.insert(hexdigest.to_owned(), bytes);
                    }
                }
                ["lfs-objects", oid] => archive.lfs_objects.push(((*oid).to_owned(), bytes)),
                ["lfs-objects.json"] => {
                    archive.lfs_json = Some(
                        serde_json::from_slice(&bytes)
                            .map_err(|e| format!("Error parsing lfs-objects.json: {e}"))?,
                    );
                }
                ["uploads", secret, filename] => {
                    archive
                        .uploads
                        .push(((*secret).to_owned(), (*filename).to_owned(), bytes));
                }
                _ => {}
            }
        }
        match archive.version.as_deref() {
            Some(VERSION) => {}
            Some(other) => {
                return Err(format!(
                    "Import version mismatch: Required {VERSION} but was {other}"
                ));
            }
            None => return Err("The archive has no VERSION file".to_owned()),
        }
        if archive.project.is_none() {
            return Err("invalid import format".to_owned());
        }
        Ok(archive)
    }
}

fn now() -> String {
    crate::timestamp::format_time(time::OffsetDateTime::now_utc())
}

/// Runs a whole project import: `started`, then `finished` (possibly with failed relations) or
/// `failed` with the error. The project and its `scheduled` state already exist.
pub fn run_project_import(
    sim: Arc<Sim>,
    project_id: u64,
    importer: u64,
    file: Vec<u8>,
    refusals: &crate::faults::ImportRefusals,
) {
    set_status(&sim, project_id, "started", None, Vec::new());
    let archive = match Archive::read(&file) {
        Ok(archive) => archive,
        Err(error) => return set_status(&sim, project_id, "failed", Some(error), Vec::new()),
    };
    let full_path = {
        let mut store = sim.write();
        let Some(project) = store.projects.get_mut(&project_id) else {
            return;
        };
        if let Some(attrs) = &archive.project {
            apply_project_attributes(project, attrs);
        }
        project.path_with_namespace.clone()
    };
    if let Some(bundle) = &archive.bundle {
        let default_branch = archive
            .project
            .as_ref()
            .and_then(|p| p["default_branch"].as_str())
            .map(str::to_owned);
        if let Err(error) = restore_repository(
            &sim,
            project_id,
            &full_path,
            bundle,
            default_branch.as_deref(),
        ) {
            return set_status(&sim, project_id, "failed", Some(error), Vec::new());
        }
    }
    // GitLab's WikiRestorer: the wiki's refs as they were, HEAD on the bundle's HEAD branch.
    if let Some(bundle) = &archive.wiki_bundle
        && let Err(error) = restore_bundle_file(&sim, &crate::git::wiki_path(&full_path), bundle)
    {
        return set_status(
            &sim,
            project_id,
            "failed",
            Some(format!("Could not restore project.wiki.bundle: {error}")),
            Vec::new(),
        );
    }
    // GitLab's DesignRepoRestorer: the design repository's refs as they were.
    if let Some(bundle) = &archive.design_bundle
        && let Err(error) = restore_bundle_file(&sim, &crate::git::design_path(&full_path), bundle)
    {
        return set_status(
            &sim,
            project_id,
            "failed",
            Some(format!("Could not restore project.design.bundle: {error}")),
            Vec::new(),
        );
    }
    let (mut failures, snippets) = {
        let mut store = sim.write();
        let mut restorer = Restorer::new(&mut store, project_id, importer, &archive);
        restorer.refusals = refusals.clone();
        for relation in RESTORE_ORDER {
            restorer.relation(&archive, relation);
        }
        for (secret, filename, content) in &archive.uploads {
            restorer.upload(secret, filename, content);
        }
        for (oid, bytes) in &archive.lfs_objects {
            restorer.lfs_object(&archive, oid, bytes);
        }
        (restorer.failures, restorer.snippets)
    };
    for (snippet_id, line) in snippets {
        if let Err(message) = restore_snippet_repository(&sim, &full_path, snippet_id, &archive) {
            let id = failures.len() as u64 + 1;
            failures.push(failure(
                id,
                "Gitlab::ImportExport::SnippetRepoRestorer::SnippetRepositoryError",
                &message,
                "SnippetRepoRestorer#restore",
                "snippets",
                line,
            ));
        }
    }
    set_status(&sim, project_id, "finished", None, failures);
}

/// The name GitLab gives a snippet's repository bundle in an export
/// (`snippets/<hexdigest>.bundle`): `Snippet#hexdigest`, the lowercase hex SHA-256 of `title`, `description` (nothing when there
/// is none), `created_at` and `updated_at` run together, each time as Ruby prints a UTC time
/// (`2021-06-18 09:47:37 UTC`, fractional seconds dropped). Times are the stored RFC 3339 ones
/// (`2021-06-18T09:47:37.123Z`); one that does not parse is hashed as given.
pub fn snippet_hexdigest(
    title: &str,
    description: Option<&str>,
    created_at: &str,
    updated_at: &str,
) -> String {
    use sha2::Digest;
    let ruby = |t: &str| crate::timestamp::ruby_utc(t).unwrap_or_else(|| t.to_owned());
    let text = format!(
        "{title}{}{}{}",
        description.unwrap_or_default(),
        ruby(created_at),
        ruby(updated_at)
    );
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// GitLab's `SnippetRepoRestorer` for one restored snippet, after the tree: the archive's
/// `snippets/<hexdigest>.bundle` (hexdigest of the snippet as imported) becomes the repository at
/// `<project>/snippets/<id>` and must pass GitLab's snippet repository checks (see
/// [`crate::git::GitStore::validate_snippet_repository`]), else it is removed again; without a
/// bundle the repository is made from the record (`create_repository_from_db`, what GitLab's
/// restorer long did; the newest GitLab instead records a missing bundle as a `MissingBundleFile`
/// import failure and leaves the snippet without a repository).
/// The error is the message of the failed relation. GitLab fails the whole import when a
/// snippet's bundle is refused; the simulator records it as a failed relation of `snippets` and
/// finishes, so that a client sees it next to the other failures.
fn restore_snippet_repository(
    sim: &Sim,
    project_full_path: &str,
    snippet_id: u64,
    archive: &Archive,
) -> Result<(), String> {
    let (snippet, author) = {
        let store = sim.read();
        let Some(snippet) = store.snippets.get(snippet_id).cloned() else {
            return Ok(());
        };
        let author = store
            .user(snippet.author_id)
            .map(|u| (u.name.clone(), u.email.clone()))
            .unwrap_or_else(|| ("Ghost User".to_owned(), "ghost@forge-sim.test".to_owned()));
        (snippet, author)
    };
    let repo_path = crate::git::snippet_repo_path(project_full_path, snippet_id);
    let hexdigest = snippet_hexdigest(
        &snippet.title,
        snippet.description.as_deref(),
        &snippet.created_at,
        &snippet.updated_at,
    );
    let Some(bundle) = archive.snippet_bundles.get(&hexdigest) else {
        let time = crate::timestamp::unix_seconds(&snippet.updated_at).unwrap_or(0);
        return sim
            .git
            .create_snippet_repository(
                project_full_path,
                snippet_id,
                &snippet.file_name,
                &snippet.content,
                (&author.0, &author.1),
                time.max(0),
            )
            .map_err(|e| {
                let _ = sim.git.remove_repository(&repo_path);
                format!("Error creating repository for snippet with id {snippet_id}: {e}")
            });
    };
    let refused = |detail: String| {
        let _ = sim.git.remove_repository(&repo_path);
        format!("Invalid repository bundle for snippet with id {snippet_id}: {detail}")
    };
    restore_bundle_file(sim, &repo_path, bundle).map_err(refused)?;
    sim.git
        .validate_snippet_repository(&repo_path)
        .map_err(refused)
}

/// Runs one `import-relation` tracker: `started`, then `finished` or `failed`. Records already
/// in the project (same iid) are skipped, so a batch sent twice creates nothing twice.
pub fn run_relation_import(sim: Arc<Sim>, tracker: u64, importer: u64, file: Vec<u8>) {
    let update = |status: &str, failures: Vec<FailedRelation>| {
        let mut store = sim.write();
        if let Some(t) = store.relation_imports.iter_mut().find(|t| t.id == tracker) {
            t.status = status.to_owned();
            t.updated_at = now();
            t.failed_relations.extend(failures);
        }
    };
    let Some((project_id, relation)) = sim
        .read()
        .relation_imports
        .iter()
        .find(|t| t.id == tracker)
        .map(|t| (t.project_id, t.relation.clone()))
    else {
        return;
    };
    update("started", Vec::new());
    let archive = match Archive::read(&file) {
        Ok(archive) => archive,
        Err(error) => {
            let failure = failure(1, "Gitlab::ImportExport::Error", &error, "", &relation, 0);
            return update("failed", vec![failure]);
        }
    };
    let failures = {
        let mut store = sim.write();
        let mut restorer = Restorer::new(&mut store, project_id, importer, &archive);
        restorer.relation(&archive, &relation);
        restorer.failures
    };
    update("finished", failures);
}

fn set_status(
    sim: &Sim,
    project_id: u64,
    status: &str,
    error: Option<String>,
    failures: Vec<FailedRelation>,
) {
    let mut store = sim.write();
    if let Some(state) = store.imports.get_mut(&project_id) {
        state.status = status.to_owned();
        state.error = error;
        state.failed_relations.extend(failures);
    }
}

fn restore_repository(
    sim: &Sim,
    project_id: u64,
    full_path: &str,
    bundle: &[u8],
    default_branch: Option<&str>,
) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new()
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, bundle)?;
            Ok(file)
        })
        .map_err(|e| format!("Could not write project.bundle: {e}"))?;
    sim.git
        .restore_bundle(full_path, file.path(), default_branch)
        .map_err(|e| format!("Could not restore project.bundle: {e}"))?;
    let has_refs = sim.git.refs(full_path).is_ok_and(|refs| !refs.is_empty());
    if let Some(project) = sim.write().projects.get_mut(&project_id) {
        project.empty_repo = !has_refs;
    }
    Ok(())
}

/// Restores a `git bundle` held in memory into the repository at `repo_path`.
fn restore_bundle_file(sim: &Sim, repo_path: &str, bundle: &[u8]) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new()
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, bundle)?;
            Ok(file)
        })
        .map_err(|e| e.to_string())?;
    sim.git
        .restore_bundle(repo_path, file.path(), None)
        .map_err(|e| e.to_string())
}

/// The attributes of `tree/project.json` the simulator keeps (GitLab ignores ids and paths).
fn apply_project_attributes(project: &mut crate::model::Project, attrs: &Value) {
    if let Some(description) = attrs["description"].as_str() {
        project.description = description.to_owned();
    }
    if let Some(level) = attrs["visibility_level"].as_u64() {
        project.visibility = visibility(level).to_owned();
    }
    if let Some(archived) = attrs["archived"].as_bool() {
        project.archived = archived;
    }
    if let Some(branch) = attrs["default_branch"].as_str() {
        project.default_branch = branch.to_owned();
    }
    if let Some(topics) = attrs["topics"].as_array() {
        project.topics = topics
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(on) = attrs["request_access_enabled"].as_bool() {
        project.request_access_enabled = on;
    }
    if let Some(on) = attrs["service_desk_enabled"].as_bool() {
        project.service_desk_enabled = on;
    }
}

fn visibility(level: u64) -> &'static str {
    match level {
        20 => "public",
        10 => "internal",
        _ => "private",
    }
}

fn failure(
    id: u64,
    class: &str,
    message: &str,
    source: &str,
    relation: &str,
    line: u64,
) -> FailedRelation {
    FailedRelation {
        id,
        created_at: now(),
        exception_class: class.to_owned(),
        exception_message: message.to_owned(),
        source: source.to_owned(),
        relation_name: relation.to_owned(),
        line_number: line,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match &v[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A note's text as imported: GitLab's `update_note_for_missing_author` names an author it could
/// not map (the note becomes the importer's).
fn note_body(note: &Value, mapped: bool, updated_at: &str) -> String {
    let mut body = text(note, "note").unwrap_or_default();
    if !mapped {
        if body.trim().is_empty() {
            body = "*Blank note*".to_owned();
        }
        let name = note["author"]["name"].as_str().unwrap_or("Ghost User");
        let at = note["updated_at"]
            .as_str()
            .unwrap_or(updated_at)
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        body = format!("{body}\n\n*By {name} on {at} (imported from GitLab)*");
    }
    body
}

/// A timestamp as GitLab prints it.
fn time(v: &Value, key: &str) -> Option<String> {
    let raw = v[key].as_str()?;
    Some(crate::timestamp::normalize_time(raw).unwrap_or_else(|| raw.to_owned()))
}

fn date(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(|d| d.get(..10).unwrap_or(d).to_owned())
}

fn items<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> + 'v {
    v[key].as_array().into_iter().flatten()
}

/// Restores records into one project.
struct Restorer<'s> {
    store: &'s mut Store,
    project_id: u64,
    namespace_id: u64,
    importer: u64,
    /// Exported user id -> user of this instance.
    users: HashMap<u64, u64>,
    created_at: String,
    failures: Vec<FailedRelation>,
    /// The line of the record being restored in its relation's file.
    line: u64,
    /// Snippets restored (new id, line in `snippets.ndjson`), whose repositories come next.
    snippets: Vec<(u64, u64)>,
    /// The iids the archive's pipelines carry: one without (an older export) never takes them.
    pipeline_iids: std::collections::BTreeSet<u64>,
    /// Records to refuse as invalid (`FaultConfig::import_refusals`).
    refusals: crate::faults::ImportRefusals,
}

impl<'s> Restorer<'s> {
    fn new(
        store: &'s mut Store,
        project_id: u64,
        importer: u64,
        archive: &Archive,
    ) -> Restorer<'s> {
        let namespace_id = store.project(project_id).map_or(0, |p| p.namespace_id);
        let mut users = HashMap::new();
        // GitLab's members mapper: only an administrator's import keeps authors, matched by the
        // email the export carries for each member.
        if store.is_admin(importer) {
            let members = archive
                .relations
                .get("project_members")
                .into_iter()
                .flatten();
            for member in members.filter_map(|(_, r)| r.as_ref().ok()) {
                let user = &member["user"];
                let (Some(old_id), Some(email)) = (
                    user["id"].as_u64().or(member["user_id"].as_u64()),
                    user["public_email"].as_str().or(user["email"].as_str()),
                ) else {
                    continue;
                };
                let local = store.users.values().find(|u| {
                    u.email.eq_ignore_ascii_case(email)
                        || u.public_email
                            .as_deref()
                            .is_some_and(|p| p.eq_ignore_ascii_case(email))
                });
                if let Some(local) = local {
                    users.insert(old_id, local.id);
                }
            }
        }
        Restorer {
            store,
            project_id,
            namespace_id,
            importer,
            users,
            created_at: now(),
            failures: Vec::new(),
            line: 0,
            snippets: Vec::new(),
            pipeline_iids: archive
                .relations
                .get("ci_pipelines")
                .into_iter()
                .flatten()
                .filter_map(|(_, r)| r.as_ref().ok()?["iid"].as_u64())
                .collect(),
            refusals: Default::default(),
        }
    }

    fn scope(&self) -> Parent {
        Parent::Project(self.project_id)
    }

    /// The user an exported id maps to, and whether it mapped.
    fn user(&self, old: &Value) -> (u64, bool) {
        match old.as_u64().and_then(|id| self.users.get(&id)) {
            Some(id) => (*id, true),
            None => (self.importer, false),
        }
    }

    fn relation(&mut self, archive: &Archive, relation: &str) {
        let Some(lines) = archive.relations.get(relation) else {
            return;
        };
        for (line, record) in lines {
            self.line = *line;
            let result = match record {
                // A single record the exporting project did not have (GitLab writes `null`).
                Ok(Value::Null) => continue,
                Ok(v) => match self.refusals.refuses(relation, &v.to_string()) {
                    Some(refused) => Err(refused),
                    None => self.record(relation, v),
                },
                Err(e) => Err(format!("Invalid JSON: {e}")),
            };
            if let Err(message) = result {
                let id = self.failures.len() as u64 + 1;
                self.failures.push(failure(
                    id,
                    "ActiveRecord::RecordInvalid",
                    &message,
                    "process_relation_item!",
                    relation,
                    *line,
                ));
            }
        }
    }

    fn record(&mut self, relation: &str, v: &Value) -> Result<(), String> {
        match relation {
            "project_members" => self.member(v),
            "labels" => self.label(v).map(drop),
            "milestones" => self.milestone(v).map(drop),
            "issues" => self.issue(v),
            "merge_requests" => self.merge_request(v),
            "snippets" => self.snippet(v),
            "releases" => self.release(v),
            "protected_branches" => self.protected_branch(v),
            "project_badges" => self.badge(v),
            "boards" => self.board(v),
            "protected_tags" => self.protected_tag(v),
            "ci_pipelines" => self.pipeline(v),
            "pipeline_schedules" => self.pipeline_schedule(v),
            "external_pull_requests" => self.external_pull_request(v),
            "commit_notes" => self.commit_note(v),
            "auto_devops" => self.auto_devops(v),
            "container_expiration_policy" => self.container_expiration_policy(v),
            "push_rule" => self.push_rule(v),
            "service_desk_setting" => self.service_desk_setting(v),
            _ => Ok(()),
        }
    }

    fn member(&mut self, v: &Value) -> Result<(), String> {
        let old = v["user"]["id"].as_u64().or(v["user_id"].as_u64());
        let Some(user_id) = old.and_then(|id| self.users.get(&id)).copied() else {
            // GitLab drops members it cannot map.
            return Ok(());
        };
        if self
            .store
            .members
            .children(self.scope())
            .any(|m| m.user_id == user_id)
        {
            return Ok(());
        }
        let level = v["access_level"].as_u64().unwrap_or(10).min(50) as u8;
        let id = self.store.members.next_id();
        self.store.members.insert(Member {
            id,
            source: self.scope(),
            user_id,
            access_level: level,
            created_at: time(v, "created_at").unwrap_or_else(|| self.created_at.clone()),
            expires_at: date(v, "expires_at"),
            created_by: Some(self.importer),
        });
        Ok(())
    }

    /// A label of the project or an ancestor group by title, or a new project label from the
    /// exported one. Returns the title.
    fn label(&mut self, v: &Value) -> Result<String, String> {
        let title = text(v, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or("Title can't be blank")?;
        let mut owners = vec![self.scope()];
        owners.extend(
            self.store
                .ancestors(self.namespace_id)
                .into_iter()
                .map(Parent::Group),
        );
        let exists = owners
            .iter()
            .any(|owner| self.store.labels.children(*owner).any(|l| l.name == title));
        if !exists {
            let color = text(v, "color").unwrap_or_else(|| "#6699cc".to_owned());
            let id = self.store.labels.next_id();
            self.store.labels.insert(Label {
                id,
                owner: self.scope(),
                name: title.clone(),
                text_color: crate::routes::labels::text_color(&color),
                color,
                description: text(v, "description"),
                priority: items(v, "priorities").find_map(|p| p["priority"].as_u64()),
                created_at: time(v, "created_at").unwrap_or_else(|| self.created_at.clone()),
            });
        }
        Ok(title)
    }

    /// Restores a milestone (kept iid), or finds it when the project has it; returns its id.
    fn milestone(&mut self, v: &Value) -> Result<u64, String> {
        let title = text(v, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or("Title can't be blank")?;
        let scope = self.scope();
        let iid = v["iid"].as_u64();
        if let Some(existing) = self
            .store
            .milestones
            .children(scope)
            .find(|m| Some(m.iid) == iid || m.title == title)
        {
            return Ok(existing.id);
        }
        let iid = iid.unwrap_or_else(|| self.store.milestones.next_iid(scope));
        let id = self.store.milestones.next_id();
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        self.store.milestones.insert(Milestone {
            id,
            iid,
            owner: scope,
            title,
            description: text(v, "description").unwrap_or_default(),
            state: if v["state"] == "closed" {
                "closed"
            } else {
                "active"
            }
            .to_owned(),
            due_date: date(v, "due_date"),
            start_date: date(v, "start_date"),
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        });
        self.store.milestones.reserve_iid(scope, iid);
        Ok(id)
    }

    fn label_links(&mut self, v: &Value) -> Vec<String> {
        let mut names = Vec::new();
        for link in items(v, "label_links") {
            if let Ok(name) = self.label(&link["label"])
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        names
    }

    fn milestone_of(&mut self, v: &Value) -> Option<u64> {
        let m = &v["milestone"];
        if !m.is_object() {
            return None;
        }
        // A group milestone stays the group's when the destination has it.
        if let Some(title) = m["title"].as_str()
            && m["group_id"].is_u64()
        {
            for gid in self.store.ancestors(self.namespace_id) {
                if let Some(found) = self
                    .store
                    .milestones
                    .children(Parent::Group(gid))
                    .find(|g| g.title == title)
                {
                    return Some(found.id);
                }
            }
        }
        self.milestone(m).ok()
    }

    fn mapped_users(&self, list: impl Iterator<Item = u64>) -> Vec<u64> {
        let mut ids = Vec::new();
        for old in list {
            let (id, _) = self.user(&Value::from(old));
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    fn issue(&mut self, v: &Value) -> Result<(), String> {
        let scope = self.scope();
        let iid = v["iid"].as_u64().ok_or("Iid can't be blank")?;
        let title = text(v, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or("Title can't be blank")?;
        if self.store.issues.children(scope).any(|i| i.iid == iid) {
            return Ok(());
        }
        let labels = self.label_links(v);
        let milestone_id = self.milestone_of(v);
        let assignee_ids =
            self.mapped_users(items(v, "issue_assignees").filter_map(|a| a["user_id"].as_u64()));
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let closed = v["state"] == "closed";
        let id = self.store.issues.next_id();
        let issue = Issue {
            id,
            iid,
            project_id: self.project_id,
            title,
            description: text(v, "description").unwrap_or_default(),
            state: if closed { "closed" } else { "opened" }.to_owned(),
            author_id: self.user(&v["author_id"]).0,
            assignee_ids,
            labels,
            milestone_id,
            epic_id: None,
            iteration_id: None,
            confidential: v["confidential"].as_bool().unwrap_or(false),
            discussion_locked: v["discussion_locked"].as_bool(),
            due_date: date(v, "due_date"),
            weight: v["weight"].as_u64(),
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
            closed_at: if closed { time(v, "closed_at") } else { None },
            closed_by_id: v["closed_by_id"]
                .as_u64()
                .filter(|_| closed)
                .map(|old| self.user(&Value::from(old)).0),
        };
        self.store.issues.insert(issue);
        self.store.issues.reserve_iid(scope, iid);
        self.award_emoji(Parent::Issue(id), v);
        self.notes(Parent::Issue(id), v);
        self.designs(id, v);
        Ok(())
    }

    /// An issue's `designs` (iids kept, each with its notes) and `design_versions` (sha, time and
    /// author, actions linked to the designs by iid). GitLab does not check that a version's sha
    /// is a commit of the design repository, and neither does this.
    fn designs(&mut self, issue_id: u64, v: &Value) {
        let mut by_iid = HashMap::new();
        for design in items(v, "designs") {
            if let Some(id) = self.design(issue_id, design, &mut by_iid) {
                self.notes(Parent::Design(id), design);
            }
        }
        for version in items(v, "design_versions") {
            let Some(sha) = text(version, "sha").filter(|s| !s.trim().is_empty()) else {
                continue;
            };
            let versions = &self.store.design_versions;
            if versions
                .children(Parent::Issue(issue_id))
                .any(|other| other.sha == sha)
            {
                continue;
            }
            let actions = items(version, "actions")
                .filter_map(|action| {
                    let design = self.design(issue_id, &action["design"], &mut by_iid)?;
                    let event = action["event"].as_u64().unwrap_or(1);
                    Some((design, DesignEvent::from_number(event)))
                })
                .collect();
            let id = self.store.design_versions.next_id();
            self.store.design_versions.insert(DesignVersion {
                id,
                issue_id,
                sha,
                author_id: self.user(&version["author_id"]).0,
                created_at: time(version, "created_at").unwrap_or_else(|| self.created_at.clone()),
                actions,
            });
        }
    }

    /// The design an exported one names (by iid) among those restored for this issue, restoring
    /// it when it is new; `None` for one without a filename, or whose iid another issue's design of
    /// the project holds.
    fn design(&mut self, issue_id: u64, v: &Value, by_iid: &mut HashMap<u64, u64>) -> Option<u64> {
        let scope = self.scope();
        let iid = v["iid"].as_u64();
        if let Some(id) = iid.and_then(|iid| by_iid.get(&iid)) {
            return Some(*id);
        }
        let filename = text(v, "filename").filter(|f| !f.trim().is_empty())?;
        if let Some(iid) = iid
            && self
                .store
                .designs
                .all()
                .any(|d| d.project_id == self.project_id && d.iid == iid)
        {
            return None;
        }
        let iid = iid.unwrap_or_else(|| self.store.designs.next_iid(scope));
        let id = self.store.designs.next_id();
        self.store.designs.insert(Design {
            id,
            iid,
            project_id: self.project_id,
            issue_id,
            filename,
            relative_position: v["relative_position"].as_i64(),
        });
        self.store.designs.reserve_iid(scope, iid);
        by_iid.insert(iid, id);
        Some(id)
    }

    fn merge_request(&mut self, v: &Value) -> Result<(), String> {
        let scope = self.scope();
        let iid = v["iid"].as_u64().ok_or("Iid can't be blank")?;
        let title = text(v, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or("Title can't be blank")?;
        let source_branch = text(v, "source_branch").ok_or("Source branch can't be blank")?;
        let target_branch = text(v, "target_branch").ok_or("Target branch can't be blank")?;
        if self
            .store
            .merge_requests
            .children(scope)
            .any(|m| m.iid == iid)
        {
            return Ok(());
        }
        let labels = self.label_links(v);
        let milestone_id = self.milestone_of(v);
        let mut assignees: Vec<u64> = items(v, "merge_request_assignees")
            .filter_map(|a| a["user_id"].as_u64())
            .collect();
        if assignees.is_empty() {
            assignees.extend(v["assignee_id"].as_u64());
        }
        let assignee_ids = self.mapped_users(assignees.into_iter());
        let reviewer_ids = self.mapped_users(
            items(v, "merge_request_reviewers").filter_map(|a| a["user_id"].as_u64()),
        );
        let metrics = &v["metrics"];
        let state = v["state"]
            .as_str()
            .filter(|s| ["closed", "merged", "locked"].contains(s))
            .unwrap_or("opened");
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let updated_at = time(v, "updated_at").unwrap_or_else(|| created_at.clone());
        let merged = state == "merged";
        let merged_by = metrics["merged_by_id"]
            .as_u64()
            .or(v["merge_user_id"].as_u64())
            .filter(|_| merged)
            .map(|old| self.user(&Value::from(old)).0);
        let sha = text(v, "diff_head_sha")
            .or_else(|| text(&v["merge_request_diff"], "head_commit_sha"))
            .or_else(|| text(v, "source_branch_sha"));
        let id = self.store.merge_requests.next_id();
        let mr = MergeRequest {
            id,
            iid,
            project_id: self.project_id,
            draft: v["draft"].as_bool().unwrap_or(false)
                || title.starts_with("Draft:")
                || title.starts_with("WIP:"),
            title,
            description: text(v, "description").unwrap_or_default(),
            state: state.to_owned(),
            author_id: self.user(&v["author_id"]).0,
            assignee_ids,
            reviewer_ids,
            labels,
            milestone_id,
            source_branch,
            target_branch,
            squash: v["squash"].as_bool().unwrap_or(false),
            sha,
            merge_commit_sha: text(v, "merge_commit_sha").filter(|_| merged),
            merged_at: if merged {
                time(metrics, "merged_at").or_else(|| Some(updated_at.clone()))
            } else {
                None
            },
            merged_by_id: merged_by,
            closed_at: if state == "closed" {
                time(metrics, "latest_closed_at").or_else(|| Some(updated_at.clone()))
            } else {
                None
            },
            closed_by_id: metrics["latest_closed_by_id"]
                .as_u64()
                .filter(|_| state == "closed")
                .map(|old| self.user(&Value::from(old)).0),
            created_at,
            updated_at,
        };
        self.store.merge_requests.insert(mr);
        self.store.merge_requests.reserve_iid(scope, iid);
        self.award_emoji(Parent::MergeRequest(id), v);
        self.notes(Parent::MergeRequest(id), v);
        Ok(())
    }

    fn award_emoji(&mut self, awardable: Parent, v: &Value) {
        for award in items(v, "award_emoji") {
            let Some(name) = text(award, "name") else {
                continue;
            };
            let id = self.store.award_emoji.next_id();
            let created_at = time(award, "created_at").unwrap_or_else(|| self.created_at.clone());
            self.store.award_emoji.insert(AwardEmoji {
                id,
                awardable,
                name,
                user_id: self.user(&award["user_id"]).0,
                updated_at: time(award, "updated_at").unwrap_or_else(|| created_at.clone()),
                created_at,
            });
        }
    }

    /// The notes of a noteable, in the archive's order.
    fn notes(&mut self, noteable: Parent, v: &Value) {
        for note in items(v, "notes") {
            let (author_id, mapped) = self.user(&note["author_id"]);
            let created_at = time(note, "created_at").unwrap_or_else(|| self.created_at.clone());
            let updated_at = time(note, "updated_at").unwrap_or_else(|| created_at.clone());
            let body = note_body(note, mapped, &updated_at);
            let kind = note["type"].as_str().unwrap_or_default();
            let id = self.store.notes.next_id();
            self.store.notes.insert(Note {
                id,
                noteable,
                body,
                author_id,
                system: note["system"].as_bool().unwrap_or(false),
                internal: note["internal"].as_bool().unwrap_or(false)
                    || note["confidential"].as_bool().unwrap_or(false),
                resolvable: kind == "DiscussionNote" || kind == "DiffNote",
                resolved: !note["resolved_at"].is_null(),
                position: Some(note["position"].clone())
                    .filter(|p| kind == "DiffNote" && p.is_object()),
                imported_from: "gitlab_project",
                created_at,
                updated_at,
            });
            self.award_emoji(Parent::Note(id), note);
        }
    }

    fn snippet(&mut self, v: &Value) -> Result<(), String> {
        let title = text(v, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or("Title can't be blank")?;
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let id = self.store.snippets.next_id();
        self.store.snippets.insert(Snippet {
            id,
            project_id: self.project_id,
            title,
            description: text(v, "description"),
            file_name: text(v, "file_name").unwrap_or_default(),
            content: text(v, "content").unwrap_or_default(),
            visibility: visibility(v["visibility_level"].as_u64().unwrap_or(0)).to_owned(),
            author_id: self.user(&v["author_id"]).0,
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        });
        self.award_emoji(Parent::Snippet(id), v);
        self.notes(Parent::Snippet(id), v);
        self.snippets.push((id, self.line));
        Ok(())
    }

    fn release(&mut self, v: &Value) -> Result<(), String> {
        let tag = text(v, "tag").ok_or("Tag can't be blank")?;
        if self
            .store
            .releases
            .children(self.scope())
            .any(|r| r.tag_name == tag)
        {
            return Ok(());
        }
        let mut milestones = Vec::new();
        for link in items(v, "milestone_releases") {
            if let Ok(mid) = self.milestone(&link["milestone"])
                && let Some(m) = self.store.milestones.get(mid)
            {
                milestones.push(m.title.clone());
            }
        }
        let mut links = Vec::new();
        for link in items(v, "links") {
            let id = self.store.releases.next_id();
            links.push(ReleaseLink {
                id,
                name: text(link, "name").unwrap_or_default(),
                url: text(link, "url").unwrap_or_default(),
                link_type: text(link, "link_type").unwrap_or_else(|| "other".to_owned()),
            });
        }
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let id = self.store.releases.next_id();
        self.store.releases.insert(Release {
            id,
            project_id: self.project_id,
            name: text(v, "name").unwrap_or_else(|| tag.clone()),
            tag_name: tag,
            description: text(v, "description").unwrap_or_default(),
            author_id: self.user(&v["author_id"]).0,
            milestones,
            links,
            released_at: time(v, "released_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        });
        Ok(())
    }

    fn protected_branch(&mut self, v: &Value) -> Result<(), String> {
        let name = text(v, "name").ok_or("Name can't be blank")?;
        if self
            .store
            .protected_branches
            .children(self.scope())
            .any(|b| b.name == name)
        {
            return Ok(());
        }
        let level = |key: &str| {
            items(v, key)
                .filter_map(|l| l["access_level"].as_u64())
                .min()
                .map_or(access::MAINTAINER, |l| l as u8)
        };
        let id = self.store.protected_branches.next_id();
        self.store.protected_branches.insert(ProtectedBranch {
            id,
            project_id: self.project_id,
            name,
            push_access_level: level("push_access_levels"),
            merge_access_level: level("merge_access_levels"),
            allow_force_push: v["allow_force_push"].as_bool().unwrap_or(false),
            code_owner_approval_required: v["code_owner_approval_required"]
                .as_bool()
                .unwrap_or(false),
        });
        Ok(())
    }

    fn badge(&mut self, v: &Value) -> Result<(), String> {
        let link_url = text(v, "link_url").ok_or("Link url can't be blank")?;
        let image_url = text(v, "image_url").ok_or("Image url can't be blank")?;
        let id = self.store.badges.next_id();
        self.store.badges.insert(Badge {
            id,
            owner: self.scope(),
            name: text(v, "name"),
            link_url,
            image_url,
        });
        Ok(())
    }

    fn board(&mut self, v: &Value) -> Result<(), String> {
        let name = text(v, "name").unwrap_or_else(|| "Development".to_owned());
        let id = self.store.boards.next_id();
        self.store.boards.insert(Board {
            id,
            owner: self.scope(),
            name,
            hide_backlog_list: v["hide_backlog_list"].as_bool().unwrap_or(false),
            hide_closed_list: v["hide_closed_list"].as_bool().unwrap_or(false),
            created_at: time(v, "created_at").unwrap_or_else(|| self.created_at.clone()),
        });
        let mut position = 0;
        for list in items(v, "lists") {
            // Backlog and closed lists are implicit in the simulator, as in GitLab's REST API.
            let (label_id, milestone_id) = match list["list_type"].as_str() {
                Some("label") => {
                    let Ok(title) = self.label(&list["label"]) else {
                        continue;
                    };
                    let label = self
                        .store
                        .labels
                        .children(self.scope())
                        .find(|l| l.name == title)
                        .map(|l| l.id);
                    (label, None)
                }
                Some("milestone") => (None, self.milestone(&list["milestone"]).ok()),
                _ => continue,
            };
            if label_id.is_none() && milestone_id.is_none() {
                continue;
            }
            let list_id = self.store.board_lists.next_id();
            self.store.board_lists.insert(BoardList {
                id: list_id,
                board_id: id,
                list_type: list["list_type"].as_str().unwrap_or_default().to_owned(),
                label_id,
                milestone_id,
                iteration_id: None,
                position: list["position"].as_u64().unwrap_or(position),
            });
            position += 1;
        }
        Ok(())
    }

    /// GitLab's LfsRestorer: each `lfs-objects/<oid>` becomes an LFS object of the project, of
    /// the repositories `lfs-objects.json` names (`null` or `project`, `wiki`, `design`; the
    /// project's when it names none); an object whose bytes do not hash to its oid is a failed
    /// relation.
    fn lfs_object(&mut self, archive: &Archive, oid: &str, bytes: &[u8]) {
        if crate::git::lfs_oid(bytes) != oid {
            let line = self.failures.len() as u64;
            self.failures.push(failure(
                self.failures.len() as u64 + 1,
                "ActiveRecord::RecordInvalid",
                &format!("Validation failed: the bytes of LFS object {oid} do not match its oid"),
                "",
                "lfs_objects",
                line,
            ));
            return;
        }
        // Objects of the wiki and of the design repository are kept too, with their types: the
        // project's LFS API serves them all, as GitLab's `lfs_objects_oids` does.
        let named = archive
            .lfs_json
            .as_ref()
            .and_then(|j| j.get(oid))
            .and_then(Value::as_array);
        let mut types: Vec<LfsRepositoryType> = named
            .into_iter()
            .flatten()
            .filter_map(LfsRepositoryType::from_export)
            .collect();
        if types.is_empty() {
            types.push(LfsRepositoryType::Project);
        }
        for kind in types {
            self.store
                .add_lfs_object(self.project_id, bytes.to_vec(), kind);
        }
    }

    fn upload(&mut self, secret: &str, filename: &str, content: &[u8]) {
        let id = self.store.uploads.next_id();
        self.store.uploads.insert(Upload {
            id,
            owner: self.scope(),
            secret: secret.to_owned(),
            filename: filename.to_owned(),
            content: content.to_vec(),
            created_at: self.created_at.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_hexdigest_hashes_like_gitlab() {
        // printf '%s' 'Example requestExample request.2021-06-18 09:47:37 UTC2021-06-19 10:00:00 UTC' | sha256sum
        assert_eq!(
            snippet_hexdigest(
                "Example request",
                Some("Example request."),
                "2021-06-18T09:47:37.123Z",
                "2021-06-19T10:00:00.000Z",
            ),
            "f29403fa39f5a113d3121dde4d1fc7a2dd22e118afa81e05fd401c5ecd1b2750"
        );
        // No description adds nothing; an offset is turned into UTC first.
        // printf '%s' 'Test snippet title2019-11-05 15:06:06 UTC2019-11-05 15:06:06 UTC' | sha256sum
        assert_eq!(
            snippet_hexdigest(
                "Test snippet title",
                None,
                "2019-11-05T15:06:06.579Z",
                "2019-11-05T16:06:06.579+01:00",
            ),
            "148fc0260b5b131cce7bc8128a53e9b3855b68c354b1503bd45cf47aa0c18c23"
        );
    }

    #[test]
    fn snippet_bundles_are_read_by_hexdigest() {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (path, bytes) in [
            ("VERSION", &b"0.2.4"[..]),
            ("tree/project.json", b"{}"),
            ("snippets/abc123.bundle", b"bundle bytes"),
            ("snippets/notes.txt", b"ignored"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, bytes)
                .expect("tar entry");
        }
        let gz = tar.into_inner().expect("tar").finish().expect("gzip");
        let archive = Archive::read(&gz).expect("archive");
        assert_eq!(
            archive.snippet_bundles.keys().collect::<Vec<_>>(),
            ["abc123"]
        );
        assert_eq!(archive.snippet_bundles["abc123"], b"bundle bytes");
    }
}

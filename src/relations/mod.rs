//! One file per relation. A relation says how its records are listed on a live source (a REST list, a
//! single REST record, or a GraphQL connection), how such a record becomes a record in GitLab's
//! import/export (NDJSON) format, and how that record is loaded into a live destination (a REST POST or
//! a GraphQL mutation) without ever creating it twice. Where records come from (live source or
//! bundle) and where they go (live destination or bundle) is decided by `crate::source` and
//! `crate::sink`, not here.
//! Adding a relation is one file here plus one line in `crate::engine::stages`.

mod authored;
pub mod badges;
pub mod boards;
mod epic_events;
pub mod epic_links;
pub mod epic_order;
pub mod epics;
pub mod excluded;
pub mod group;
pub mod group_files;
pub mod iterations;
pub mod labels;
pub mod members;
pub mod milestones;
pub mod project;
pub mod projects;
pub mod schema;
pub mod top_up;
pub mod uploads;

use crate::forge::graphql::{Connection, gid_id};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
use crate::model::Entity;
use crate::store::{MappingScope, Store};
use async_trait::async_trait;
use serde_json::Value;
use std::future::Future;

/// What a relation needs to know about the entity it works for.
#[derive(Clone, Debug)]
pub struct EntityContext {
    pub entity: Entity,
    /// What this migration already wrote, for relations that link records of another relation.
    pub ids: IdLookup,
    /// The destination id of the group this entity's group is created in (a subgroup's parent), when the
    /// parent was created by this migration; None for a top entity, whose namespace is looked up by path.
    pub destination_parent_id: Option<u64>,
    /// The source instance's base URL, for links in failure rows.
    pub source_base: String,
    /// A project entity's members as staged NDJSON: every archive a project's records travel in
    /// carries them, since GitLab's import maps authors through the archive's member emails.
    pub project_members: Option<std::path::PathBuf>,
    /// The commits of a project entity's design repository, when it travelled with the project:
    /// an issue then keeps its designs when each of its design versions is one of them; without
    /// the repository (None), or with a version it does not hold, they would arrive broken, and
    /// are taken out ([`Relation::leave_out`]).
    pub design_commits: Option<std::sync::Arc<std::collections::BTreeSet<String>>>,
}

impl EntityContext {
    /// The entity's numeric id on the source (known after the group relation ran).
    pub fn source_id(&self) -> String {
        match self.entity.source_xid {
            Some(id) => id.to_string(),
            None => crate::forge::gitlab::encode_path(&self.entity.source_full_path),
        }
    }

    /// The destination group id; only relations after the group stage ask for it.
    pub fn destination_id(&self) -> Result<u64, LoadError> {
        self.entity.namespace_id.ok_or_else(|| LoadError {
            class: "BulkImports::Error".into(),
            message: format!(
                "the destination group `{}` was not created, so its records cannot be loaded",
                self.entity.destination_full_path()
            ),
            correlation_id: None,
            unreachable: false,
        })
    }

    /// The entity as GitLab's relation export addresses it: `groups/<id>` or `projects/<id>`.
    pub fn source_portable(&self) -> String {
        match self.entity.entity_type {
            crate::model::EntityType::Group => format!("groups/{}", self.source_id()),
            crate::model::EntityType::Project => format!("projects/{}", self.source_id()),
        }
    }

    pub fn source_web_url(&self) -> String {
        match self.entity.entity_type {
            crate::model::EntityType::Group => format!(
                "{}/groups/{}",
                self.source_base.trim_end_matches('/'),
                self.entity.source_full_path
            ),
            crate::model::EntityType::Project => format!(
                "{}/{}",
                self.source_base.trim_end_matches('/'),
                self.entity.source_full_path
            ),
        }
    }

    /// The destination project id; only relations after the project stage ask for it.
    pub fn destination_project_id(&self) -> Result<u64, LoadError> {
        self.entity.project_id.ok_or_else(|| {
            LoadError::internal(format!(
                "the destination project `{}` was not created, so its records cannot be loaded",
                self.entity.destination_full_path()
            ))
        })
    }
}

/// Read access to the id map of the entity being migrated (source id -> destination id), and to those
/// of its ancestor entities (a subgroup's epic may have its parent in an ancestor group).
#[derive(Clone)]
pub struct IdLookup {
    store: Store,
    scope: MappingScope,
    /// Ancestor entities nearest first: their mapping scope and destination group id.
    ancestors: Vec<(MappingScope, u64)>,
}

impl IdLookup {
    pub fn new(store: Store, scope: MappingScope, ancestors: Vec<(MappingScope, u64)>) -> IdLookup {
        IdLookup {
            store,
            scope,
            ancestors,
        }
    }

    /// The destination id a record of `relation` with `source_id` became in this entity, if migrated.
    pub async fn get(&self, relation: &str, source_id: &str) -> Result<Option<u64>, LoadError> {
        lookup(&self.store, &self.scope, relation, source_id).await
    }

    /// Like [`IdLookup::get`], but also in the ancestor entities: (destination id, destination group
    /// id, or None when found in this entity).
    pub async fn get_in_tree(
        &self,
        relation: &str,
        source_id: &str,
    ) -> Result<Option<(u64, Option<u64>)>, LoadError> {
        if let Some(id) = self.get(relation, source_id).await? {
            return Ok(Some((id, None)));
        }
        for (scope, group) in &self.ancestors {
            if let Some(id) = lookup(&self.store, scope, relation, source_id).await? {
                return Ok(Some((id, Some(*group))));
            }
        }
        Ok(None)
    }
}

async fn lookup(
    store: &Store,
    scope: &MappingScope,
    relation: &str,
    source_id: &str,
) -> Result<Option<u64>, LoadError> {
    let (store, scope) = (store.clone(), scope.clone());
    let (relation, source_id) = (relation.to_string(), source_id.to_string());
    tokio::task::spawn_blocking(move || store.mapped_id(&scope, &relation, &source_id))
        .await
        .map_err(|e| LoadError::internal(e.to_string()))?
        .map_err(|e| LoadError::internal(e.to_string()))
}

impl std::fmt::Debug for IdLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdLookup")
            .field("scope", &self.scope)
            .finish()
    }
}

/// How the records of a relation are read from a live GitLab source.
pub enum Extraction {
    /// A paginated list endpoint (path under /api/v4, query).
    List {
        path: String,
        query: Vec<(&'static str, String)>,
    },
    /// A single record, such as the group itself.
    Single { path: String },
    /// A GraphQL connection read a page at a time by cursor, for records GitLab serves only through
    /// GraphQL (iteration cadences, and iterations with their cadence); `transform` receives its nodes.
    Connection(Connection),
    /// Only GitLab's relation export has these records in a form a destination can import (a
    /// project's issues with their notes, events and diffs); a source without it cannot give them.
    ExportOnly,
}

/// Why one record could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub class: String,
    pub message: String,
    pub correlation_id: Option<String>,
    /// The destination could not be reached at all: the migration pauses instead of recording a failure.
    pub unreachable: bool,
}

/// The class of a record that was deliberately not loaded (reported, not a failure).
pub const SKIPPED_CLASS: &str = "Appliance::Skipped";
/// The class of a skipped record whose user no destination user maps to (its source title is the
/// source username): the unmapped users of a migration are these rows' titles.
pub const UNMAPPED_USER_CLASS: &str = "Appliance::Skipped::UserNotMapped";

impl LoadError {
    /// A record that is not loaded on purpose, with the reason a user reads in the report.
    pub fn skipped(reason: impl Into<String>) -> LoadError {
        LoadError {
            class: SKIPPED_CLASS.into(),
            message: reason.into(),
            correlation_id: None,
            unreachable: false,
        }
    }

    /// A record skipped because its user maps to no destination user.
    pub fn unmapped_user(reason: impl Into<String>) -> LoadError {
        LoadError {
            class: UNMAPPED_USER_CLASS.into(),
            ..LoadError::skipped(reason)
        }
    }

    pub fn is_skip(&self) -> bool {
        self.class == SKIPPED_CLASS || self.class == UNMAPPED_USER_CLASS
    }

    pub fn internal(message: String) -> LoadError {
        LoadError {
            class: "BulkImports::Error".into(),
            message,
            correlation_id: None,
            unreachable: false,
        }
    }
}

impl From<ForgeError> for LoadError {
    fn from(e: ForgeError) -> Self {
        LoadError {
            class: e.class().to_string(),
            message: e.message(),
            correlation_id: e.correlation_id().map(str::to_string),
            unreachable: e.is_unreachable(),
        }
    }
}

#[async_trait]
pub trait Relation: Send + Sync {
    /// The relation's name in stats, trackers and bundles (`labels`, `milestones` ...).
    fn name(&self) -> &'static str;
    /// GitLab's pipeline class name, reported in failures.
    fn pipeline_class(&self) -> &'static str;
    fn extraction(&self, ctx: &EntityContext) -> Extraction;
    /// Turns a record as the extraction reads it (a REST record, or a GraphQL node) into a record in
    /// GitLab's import/export format.
    fn transform(&self, rest: Value) -> Value;
    /// The relation's name in GitLab's relation export API, when records can be read from it (and
    /// `record_from_export` turns them into this relation's records); None: read through REST only.
    fn export_relation(&self) -> Option<&'static str> {
        None
    }
    /// Turns a record of GitLab's relation export into this relation's record (the same fields the
    /// REST path gives, so both paths load alike).
    fn record_from_export(&self, record: Value) -> Value {
        record
    }
    /// Completes a transformed record with what its list endpoint does not return (nested notes, a
    /// user's public email), reading more from a live source.
    async fn enrich(
        &self,
        _source: &GitLab,
        _ctx: &EntityContext,
        _record: &mut Value,
    ) -> Result<(), ForgeError> {
        Ok(())
    }
    /// Whether a record read through `Extraction::Single` is one to migrate (a group without an avatar
    /// has no avatar record); records for which this is false are not counted at all.
    fn exists(&self, _record: &Value) -> bool {
        true
    }
    /// Takes out of `record` what cannot migrate with it, because it would arrive broken (an
    /// issue's designs when the design repository does not travel), and says what that was. The
    /// record still loads; a skipped row with its URL and title names what it went without. None:
    /// nothing was taken out.
    fn leave_out(&self, _ctx: &EntityContext, _record: &mut Value) -> Option<String> {
        None
    }
    /// Why this relation's records are listed and counted but never loaded (shown in the report); None
    /// for a relation that migrates.
    fn skip_reason(&self) -> Option<&'static str> {
        None
    }
    /// The record's stable source key in the id map.
    fn source_id(&self, record: &Value) -> String {
        record.get("id").map(|v| v.to_string()).unwrap_or_default()
    }
    fn title(&self, record: &Value) -> Option<String> {
        ["title", "name"]
            .iter()
            .find_map(|k| record.get(*k).and_then(Value::as_str).map(str::to_string))
    }
    fn source_url(&self, ctx: &EntityContext, _record: &Value) -> Option<String> {
        Some(ctx.source_web_url())
    }
    /// Whether a live destination takes this relation's records a page at a time
    /// ([`Relation::load_batch`]) rather than one by one ([`Relation::load`]).
    fn loads_in_batches(&self) -> bool {
        false
    }
    /// Loads a page of records into a live destination at once, for relations where
    /// [`Relation::loads_in_batches`]: the outcome of each record, in the page's order, read back from
    /// the destination. Loading the same page again must not create anything twice. An `Err` is the
    /// whole page failing to load (the destination unreachable, or refusing the batch).
    async fn load_batch(
        &self,
        _dest: &GitLab,
        _ctx: &EntityContext,
        records: &[Value],
        _in_doubt: bool,
    ) -> Result<Vec<Result<u64, LoadError>>, LoadError> {
        Ok(records
            .iter()
            .map(|_| {
                Err(LoadError::internal(format!(
                    "{} is not loaded in batches",
                    self.name()
                )))
            })
            .collect())
    }
    /// For a relation that loads in batches: which of `records`, sent to project `project` by
    /// another way (the archive that created the project), are at the destination, as
    /// [`Relation::load_batch`] would say after loading them; `why`: what the destination said of its
    /// import, if it failed. None for a relation that cannot say.
    async fn arrived(
        &self,
        _dest: &GitLab,
        _project: u64,
        _records: &[Value],
        _why: Option<String>,
    ) -> Result<Option<Vec<Result<u64, LoadError>>>, LoadError> {
        Ok(None)
    }
    /// Loads one record into a live destination and returns its destination id. When `in_doubt`, an
    /// earlier attempt may already have created it: look for it before creating.
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError>;
}

/// Creates a record with a POST, never twice: when an earlier attempt may have succeeded (`in_doubt`),
/// or the POST's outcome is unknown, or the destination says the record exists, `find` looks it up.
pub(crate) async fn create_once<F, Fut>(
    dest: &GitLab,
    path: &str,
    body: &Value,
    in_doubt: bool,
    find: F,
) -> Result<u64, LoadError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<u64>, ForgeError>>,
{
    create_once_keyed(dest, path, body, in_doubt, find, id_of, None).await
}

/// [`create_once`] for records addressed by another key than `id` (epics by `iid`): `key` picks it
/// from the created record, and `find` returns the same key. `sudo` writes as that user (GitLab's
/// `Sudo`, for an administrator's token).
pub(crate) async fn create_once_keyed<F, Fut>(
    dest: &GitLab,
    path: &str,
    body: &Value,
    in_doubt: bool,
    find: F,
    key: fn(&Value) -> Option<u64>,
    sudo: Option<&str>,
) -> Result<u64, LoadError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<u64>, ForgeError>>,
{
    let send = || async {
        let created = dest
            .client
            .post_as(path, body, sudo)
            .await
            .map_err(Refusal::Forge)?;
        key(&created).ok_or_else(|| {
            Refusal::Broken(LoadError::internal(format!(
                "POST {path} answered without an id"
            )))
        })
    };
    create_once_with(in_doubt, send, find).await
}

/// Creates a record with a GraphQL mutation (`mutation($input: ...) { <field>(input: $input) {
/// <record> { id } errors } }`), never twice, as [`create_once`] does: the payload's `errors` are the
/// destination refusing the record (a failure with GitLab's words), unless they say it exists, and
/// then `find` looks it up. Returns the numeric id of the record's global id.
pub(crate) async fn create_once_graphql<F, Fut>(
    dest: &GitLab,
    mutation: &str,
    (field, record): (&str, &str),
    input: &Value,
    in_doubt: bool,
    find: F,
) -> Result<u64, LoadError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<u64>, ForgeError>>,
{
    let send = || async {
        let data = dest
            .mutate(mutation, serde_json::json!({ "input": input }))
            .await
            .map_err(Refusal::Forge)?;
        let payload = &data[field];
        if let Some(errors) = crate::forge::graphql::payload_errors(payload) {
            return Err(Refusal::Rejected(errors));
        }
        gid_id(&payload[record]["id"]).ok_or_else(|| {
            Refusal::Broken(LoadError::internal(format!(
                "{field} answered without the {record}'s id"
            )))
        })
    };
    create_once_with(in_doubt, send, find).await
}

/// Why one attempt to create a record did not give its id.
enum Refusal {
    /// The request failed or the forge answered with an HTTP or GraphQL error.
    Forge(ForgeError),
    /// The forge answered and refused the record (a mutation's `errors`).
    Rejected(String),
    /// The forge answered something the appliance cannot use.
    Broken(LoadError),
}

/// The one "never twice" loop behind every create: when an earlier attempt may have succeeded
/// (`in_doubt`), or an attempt's outcome is unknown, or the destination says the record exists, `find`
/// looks it up; an attempt whose outcome is unknown is repeated (after looking) at most twice.
/// How many times a create whose outcome was unknown (and then found absent) is sent in all.
const AMBIGUOUS_ATTEMPTS: u32 = 6;

async fn create_once_with<S, SFut, F, Fut>(
    in_doubt: bool,
    send: S,
    find: F,
) -> Result<u64, LoadError>
where
    S: Fn() -> SFut,
    SFut: Future<Output = Result<u64, Refusal>>,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<u64>, ForgeError>>,
{
    if in_doubt && let Some(id) = find().await? {
        return Ok(id);
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        match send().await {
            Ok(id) => return Ok(id),
            Err(Refusal::Forge(e)) => {
                let ambiguous = matches!(
                    e,
                    ForgeError::Network {
                        maybe_applied: true,
                        ..
                    }
                ) || matches!(e.status(), Some(500) | Some(504));
                let exists = matches!(e.status(), Some(409))
                    || (e.status() == Some(400) && already_exists(&e.message()));
                if (ambiguous || exists)
                    && let Some(id) = find().await?
                {
                    return Ok(id);
                }
                // `find` just showed the record is not there, so sending it again cannot make a
                // second one; a destination that keeps failing gets a few spaced attempts.
                if ambiguous && attempts < AMBIGUOUS_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempts)).await;
                    continue;
                }
                return Err(e.into());
            }
            Err(Refusal::Rejected(message)) => {
                if already_exists(&message)
                    && let Some(id) = find().await?
                {
                    return Ok(id);
                }
                return Err(LoadError {
                    class: "Appliance::DestinationRejected".into(),
                    message,
                    correlation_id: None,
                    unreachable: false,
                });
            }
            Err(Refusal::Broken(e)) => return Err(e),
        }
    }
}

/// GitLab's words for "a record with this key exists" (groups, labels: "has already been taken";
/// milestones, an iteration's title in its cadence: "already being used"; an iteration whose dates are
/// taken in its cadence: "Dates cannot overlap").
fn already_exists(message: &str) -> bool {
    message.contains("already been taken")
        || message.contains("already being used")
        || message.contains("Dates cannot overlap")
}

/// Copies the named fields that are present (and not null) from `from` into a JSON object.
pub(crate) fn pick(from: &Value, fields: &[&str]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for f in fields {
        if let Some(v) = from.get(*f)
            && !v.is_null()
        {
            out.insert((*f).to_string(), v.clone());
        }
    }
    out
}

/// The string value of a field, or "".
pub(crate) fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

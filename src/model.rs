//! The domain vocabulary of a migration, in GitLab's own terms: a bulk import holds entities (groups or
//! projects); each entity runs one pipeline per relation, tracked by a tracker; a record that cannot be
//! migrated becomes a failure. These types are what the store persists and what the API renders.
//! They know nothing of HTTP, redb or any forge.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Stored as an integer so records stay compact and stable in redb.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as Millis
}

/// GitLab's timestamp format for API bodies: `2021-06-18T09:45:55.358Z`.
pub fn format_millis(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// The states GitLab reports for bulk imports, entities and trackers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Started,
    Finished,
    Failed,
    Canceled,
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Started => "started",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Timeout => "timeout",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "started" => Status::Started,
            "finished" => Status::Finished,
            "failed" => Status::Failed,
            "canceled" => Status::Canceled,
            "timeout" => Status::Timeout,
            _ => return None,
        })
    }

    /// A terminal state is never left again: the engine must not overwrite a cancel with "finished".
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Finished | Status::Failed | Status::Canceled | Status::Timeout
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    Group,
    Project,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Group => "group",
            EntityType::Project => "project",
        }
    }
    /// The `source_type` value of a POST /bulk_imports entity.
    pub fn source_type(self) -> &'static str {
        match self {
            EntityType::Group => "group_entity",
            EntityType::Project => "project_entity",
        }
    }
}

/// Where the records of a bulk import come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A live GitLab instance reached over its API (its token is sealed in the store).
    Live { url: String },
    /// A bundle file (or the first volume of a set), replayed into a destination.
    Bundle { path: String },
}

/// Where the records of a bulk import go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationKind {
    /// A live GitLab instance reached over its API.
    Live { url: String },
    /// A bundle file written for offline transfer.
    Bundle { path: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkImport {
    pub id: u64,
    pub status: Status,
    /// Always "gitlab" for direct transfer.
    pub source_type: String,
    /// Source URL without credentials (for a replay, the URL the bundle was exported from).
    pub source_url: String,
    pub source: SourceKind,
    pub destination: DestinationKind,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub has_failures: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: u64,
    pub bulk_import_id: u64,
    pub status: Status,
    pub entity_type: EntityType,
    pub source_full_path: String,
    /// The source's numeric id of the group or project, once known.
    pub source_xid: Option<u64>,
    pub destination_slug: String,
    pub destination_namespace: String,
    /// The entity that discovered this one (a subgroup's parent group entity).
    pub parent_id: Option<u64>,
    /// Destination group id once the group exists there.
    pub namespace_id: Option<u64>,
    pub project_id: Option<u64>,
    pub migrate_projects: bool,
    pub migrate_memberships: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub has_failures: bool,
}

impl Entity {
    pub fn destination_full_path(&self) -> String {
        if self.destination_namespace.is_empty() {
            self.destination_slug.clone()
        } else {
            format!("{}/{}", self.destination_namespace, self.destination_slug)
        }
    }
}

/// What a client asks for when it starts a migration (one entity of POST /bulk_imports).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityRequest {
    pub entity_type: EntityType,
    pub source_full_path: String,
    pub destination_slug: String,
    pub destination_namespace: String,
    pub migrate_projects: bool,
    pub migrate_memberships: bool,
}

/// Per-relation counts, exactly as GitLab's `stats` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationStats {
    pub source: u64,
    pub fetched: u64,
    pub imported: u64,
}

/// Progress of one relation pipeline of one entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    pub entity_id: u64,
    pub relation: String,
    pub stage: u8,
    pub status: Status,
    /// Opaque position of the next page to extract; None before the first page.
    pub cursor: Option<String>,
    /// True while a page is being loaded and not yet committed: after a crash, the records of that page
    /// may already exist at the destination, so the loader must look before it creates.
    pub in_doubt: bool,
    pub stats: RelationStats,
    /// How the records were read: "rest" (list endpoints), "graphql" (connections),
    /// "relation_export", "project_export" (a project exported whole) or "bundle".
    pub extracted_via: Option<String>,
    /// Pages committed so far; the next page's index.
    pub pages: u64,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub entity_id: u64,
    pub relation: String,
    /// extractor, transformer or loader.
    pub step: String,
    pub exception_class: String,
    pub exception_message: String,
    pub correlation_id: String,
    pub source_url: Option<String>,
    pub source_title: Option<String>,
    pub pipeline_class: String,
    pub created_at: Millis,
}

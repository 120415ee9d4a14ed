//! The JSON bodies of the bulk_imports API, field for field as GitLab's `API::Entities::BulkImport`,
//! `BulkImports::Entity` and `BulkImports::EntityFailure` expose them, from the stored records.
//! Struct field order is the order GitLab sends. Nothing here reads the store: callers pass what
//! the store returned.

use crate::model::{BulkImport, Entity, Failure, RelationStats, Tracker, format_millis};
use serde::Serialize;
use std::collections::BTreeMap;

/// GitLab truncates failure messages to 255 characters (Rails' `truncate`, which ends with "...").
const MESSAGE_LIMIT: usize = 255;

#[derive(Debug, Serialize)]
pub struct BulkImportBody {
    pub id: u64,
    pub status: &'static str,
    pub source_type: String,
    pub source_url: String,
    pub created_at: String,
    pub updated_at: String,
    pub has_failures: bool,
}

pub fn bulk_import(b: &BulkImport) -> BulkImportBody {
    BulkImportBody {
        id: b.id,
        status: b.status.as_str(),
        source_type: b.source_type.clone(),
        source_url: b.source_url.clone(),
        created_at: format_millis(b.created_at),
        updated_at: format_millis(b.updated_at),
        has_failures: b.has_failures,
    }
}

/// A failure as the entity body lists it: the newer fields (relation, step, source) and the 14.1
/// ones (pipeline_class, pipeline_step) together, so old and new clients both find theirs.
#[derive(Debug, Serialize)]
pub struct EntityFailureBody {
    pub relation: String,
    pub step: String,
    pub exception_message: String,
    pub exception_class: String,
    pub correlation_id_value: String,
    pub created_at: String,
    pub pipeline_class: String,
    pub pipeline_step: String,
    pub source_url: Option<String>,
    pub source_title: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct EntityBody {
    pub id: u64,
    pub bulk_import_id: u64,
    pub status: &'static str,
    pub entity_type: &'static str,
    pub source_full_path: String,
    pub destination_full_path: String,
    /// Deprecated alias of `destination_slug`, still sent by GitLab.
    pub destination_name: String,
    pub destination_slug: String,
    pub destination_namespace: String,
    pub parent_id: Option<u64>,
    pub namespace_id: Option<u64>,
    pub project_id: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub failures: Vec<EntityFailureBody>,
    pub migrate_projects: bool,
    pub migrate_memberships: bool,
    pub has_failures: bool,
    /// Relation name -> counts, one per tracker.
    pub stats: BTreeMap<String, RelationStats>,
    /// Appliance extension: records not migrated on purpose (an unmapped member, an item GitLab's
    /// migration does not carry, a project left out), each with why; they are not failures.
    pub skipped: Vec<SkippedBody>,
    /// Appliance extension: the kinds of items a migration of this kind of entity leaves out, and
    /// why (`crate::relations::excluded`): named, never left out silently.
    pub excluded: &'static [crate::relations::excluded::Excluded],
}

/// One record not migrated on purpose.
#[derive(Debug, Serialize)]
pub struct SkippedBody {
    pub relation: String,
    pub reason: String,
    pub source_url: Option<String>,
    pub source_title: Option<String>,
    pub created_at: String,
}

impl EntityBody {
    /// The entity with what was not migrated on purpose.
    pub fn with_skipped(mut self, skipped: &[Failure]) -> EntityBody {
        self.skipped = skipped
            .iter()
            .map(|f| SkippedBody {
                relation: f.relation.clone(),
                reason: truncate(&f.exception_message),
                source_url: f.source_url.clone(),
                source_title: f.source_title.clone(),
                created_at: format_millis(f.created_at),
            })
            .collect();
        self
    }
}

/// An entity with the counts of its trackers and its failures.
pub fn entity(e: &Entity, trackers: &[Tracker], failures: &[Failure]) -> EntityBody {
    EntityBody {
        id: e.id,
        bulk_import_id: e.bulk_import_id,
        status: e.status.as_str(),
        entity_type: e.entity_type.as_str(),
        source_full_path: e.source_full_path.clone(),
        destination_full_path: e.destination_full_path(),
        destination_name: e.destination_slug.clone(),
        destination_slug: e.destination_slug.clone(),
        destination_namespace: e.destination_namespace.clone(),
        parent_id: e.parent_id,
        namespace_id: e.namespace_id,
        project_id: e.project_id,
        created_at: format_millis(e.created_at),
        updated_at: format_millis(e.updated_at),
        failures: failures.iter().map(entity_failure).collect(),
        migrate_projects: e.migrate_projects,
        migrate_memberships: e.migrate_memberships,
        has_failures: e.has_failures,
        stats: trackers
            .iter()
            .map(|t| (t.relation.clone(), t.stats))
            .collect(),
        skipped: Vec::new(),
        excluded: crate::relations::excluded::of(e.entity_type),
    }
}

fn entity_failure(f: &Failure) -> EntityFailureBody {
    EntityFailureBody {
        relation: f.relation.clone(),
        step: f.step.clone(),
        exception_message: truncate(&f.exception_message),
        exception_class: f.exception_class.clone(),
        correlation_id_value: f.correlation_id.clone(),
        created_at: format_millis(f.created_at),
        pipeline_class: f.pipeline_class.clone(),
        pipeline_step: f.step.clone(),
        source_url: f.source_url.clone(),
        source_title: f.source_title.clone(),
    }
}

/// An item of `GET /bulk_imports/:id/entities/:entity_id/failures`.
#[derive(Debug, Serialize)]
pub struct FailureBody {
    pub relation: String,
    pub exception_message: String,
    pub exception_class: String,
    pub correlation_id_value: String,
    pub source_url: Option<String>,
    pub source_title: Option<String>,
}

pub fn failure(f: &Failure) -> FailureBody {
    FailureBody {
        relation: f.relation.clone(),
        exception_message: truncate(&f.exception_message),
        exception_class: f.exception_class.clone(),
        correlation_id_value: f.correlation_id.clone(),
        source_url: f.source_url.clone(),
        source_title: f.source_title.clone(),
    }
}

fn truncate(message: &str) -> String {
    if message.chars().count() <= MESSAGE_LIMIT {
        return message.to_string();
    }
    let mut out: String = message.chars().take(MESSAGE_LIMIT - 3).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntityType, Status};
    use serde_json::json;

    fn stored_entity() -> Entity {
        Entity {
            id: 7,
            bulk_import_id: 3,
            status: Status::Finished,
            entity_type: EntityType::Group,
            source_full_path: "source/group".into(),
            source_xid: Some(99),
            destination_slug: "imported".into(),
            destination_namespace: "dest/ns".into(),
            parent_id: None,
            namespace_id: Some(12),
            project_id: None,
            migrate_projects: true,
            migrate_memberships: false,
            created_at: 1_624_009_657_390,
            updated_at: 1_624_009_671_867,
            has_failures: true,
        }
    }

    fn tracker(relation: &str, source: u64, fetched: u64, imported: u64) -> Tracker {
        Tracker {
            entity_id: 7,
            relation: relation.into(),
            stage: 1,
            status: Status::Finished,
            cursor: None,
            in_doubt: false,
            stats: RelationStats {
                source,
                fetched,
                imported,
            },
            extracted_via: Some("rest".into()),
            pages: 1,
            updated_at: 0,
        }
    }

    fn stored_failure(message: &str) -> Failure {
        Failure {
            entity_id: 7,
            relation: "labels".into(),
            step: "loader".into(),
            exception_class: "Appliance::DestinationRejected".into(),
            exception_message: message.into(),
            correlation_id: "dfcf583058ed4508e4c7c617bd7f0edd".into(),
            source_url: Some("https://src.example/groups/source/group/-/labels".into()),
            source_title: Some("bug".into()),
            pipeline_class: "BulkImports::Common::Pipelines::LabelsPipeline".into(),
            created_at: 1_624_530_046_495,
        }
    }

    #[test]
    fn an_entity_renders_every_gitlab_field_with_stats_and_failures() {
        let body = serde_json::to_value(entity(
            &stored_entity(),
            &[tracker("labels", 3, 2, 1), tracker("milestones", 5, 4, 3)],
            &[stored_failure("Title has already been taken")],
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "id": 7,
                "bulk_import_id": 3,
                "status": "finished",
                "entity_type": "group",
                "source_full_path": "source/group",
                "destination_full_path": "dest/ns/imported",
                "destination_name": "imported",
                "destination_slug": "imported",
                "destination_namespace": "dest/ns",
                "parent_id": null,
                "namespace_id": 12,
                "project_id": null,
                "created_at": "2021-06-18T09:47:37.390Z",
                "updated_at": "2021-06-18T09:47:51.867Z",
                "failures": [{
                    "relation": "labels",
                    "step": "loader",
                    "exception_message": "Title has already been taken",
                    "exception_class": "Appliance::DestinationRejected",
                    "correlation_id_value": "dfcf583058ed4508e4c7c617bd7f0edd",
                    "created_at": "2021-06-24T10:20:46.495Z",
                    "pipeline_class": "BulkImports::Common::Pipelines::LabelsPipeline",
                    "pipeline_step": "loader",
                    "source_url": "https://src.example/groups/source/group/-/labels",
                    "source_title": "bug"
                }],
                "migrate_projects": true,
                "migrate_memberships": false,
                "has_failures": true,
                "stats": {
                    "labels": {"source": 3, "fetched": 2, "imported": 1},
                    "milestones": {"source": 5, "fetched": 4, "imported": 3}
                },
                "skipped": [],
                "excluded": [
                    {"item": "CI/CD variables", "why": "sensitive"},
                    {"item": "Deploy tokens", "why": "sensitive"},
                    {"item": "Webhooks", "why": "sensitive"},
                    {"item": "Custom fields", "why": "unsupported"},
                    {"item": "Pending member invitations", "why": "unsupported"},
                    {"item": "Push rules", "why": "unsupported"},
                    {"item": "Epic system notes", "why": "no_api"},
                    {"item": "Epic boards and their lists", "why": "not_yet"},
                    {"item": "Group wiki", "why": "not_yet"}
                ]
            })
        );
    }

    #[test]
    fn an_entity_without_trackers_has_empty_stats() {
        let mut e = stored_entity();
        e.destination_namespace = String::new();
        let body = serde_json::to_value(entity(&e, &[], &[])).unwrap();
        assert_eq!(body["stats"], json!({}));
        assert_eq!(body["failures"], json!([]));
        assert_eq!(body["destination_full_path"], "imported");
    }

    #[test]
    fn a_failure_item_has_the_failures_endpoint_fields_only() {
        let body = serde_json::to_value(failure(&stored_failure("Error!"))).unwrap();
        assert_eq!(
            body,
            json!({
                "relation": "labels",
                "exception_message": "Error!",
                "exception_class": "Appliance::DestinationRejected",
                "correlation_id_value": "dfcf583058ed4508e4c7c617bd7f0edd",
                "source_url": "https://src.example/groups/source/group/-/labels",
                "source_title": "bug"
            })
        );
    }

    #[test]
    fn long_messages_are_truncated_like_rails() {
        let long = "é".repeat(300);
        let body = failure(&stored_failure(&long));
        assert_eq!(body.exception_message.chars().count(), 255);
        assert!(body.exception_message.ends_with("..."));
    }

    #[test]
    fn a_bulk_import_renders_gitlab_fields() {
        let b = BulkImport {
            id: 1,
            status: Status::Started,
            source_type: "gitlab".into(),
            source_url: "https://gitlab.example.com".into(),
            source: crate::model::SourceKind::Live {
                url: "https://gitlab.example.com".into(),
            },
            destination: crate::model::DestinationKind::Live {
                url: "https://dest.example".into(),
            },
            created_at: 1_624_009_555_358,
            updated_at: 1_624_009_587_003,
            has_failures: false,
        };
        assert_eq!(
            serde_json::to_value(bulk_import(&b)).unwrap(),
            json!({
                "id": 1,
                "status": "started",
                "source_type": "gitlab",
                "source_url": "https://gitlab.example.com",
                "created_at": "2021-06-18T09:45:55.358Z",
                "updated_at": "2021-06-18T09:46:27.003Z",
                "has_failures": false
            })
        );
    }
}

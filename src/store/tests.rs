//! Store behaviour the engine relies on: atomic page commits, resumable positions, cancel winning over
//! later status changes, and listings as the API pages them.

use super::*;
use crate::model::{DestinationKind, EntityRequest, EntityType, Failure, SourceKind, Status};

fn request(path: &str) -> EntityRequest {
    EntityRequest {
        entity_type: EntityType::Group,
        source_full_path: path.into(),
        destination_slug: path.rsplit('/').next().unwrap().into(),
        destination_namespace: "imported".into(),
        migrate_projects: true,
        migrate_memberships: true,
    }
}

fn src() -> SourceKind {
    SourceKind::Live {
        url: "https://src.example".into(),
    }
}

fn live() -> DestinationKind {
    DestinationKind::Live {
        url: "https://dest.example".into(),
    }
}

fn failure(entity_id: u64, title: &str) -> Failure {
    Failure {
        entity_id,
        relation: "labels".into(),
        step: "loader".into(),
        exception_class: "Appliance::DestinationRejected".into(),
        exception_message: "Label already exists".into(),
        correlation_id: "abc".into(),
        source_url: None,
        source_title: Some(title.into()),
        pipeline_class: "BulkImports::Common::Pipelines::LabelsPipeline".into(),
        created_at: 5,
    }
}

#[test]
fn a_committed_page_moves_the_tracker_and_maps_ids_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (bulk, entities) = store
        .create_bulk_import(
            "https://src.example",
            src(),
            live(),
            b"sealed",
            &[request("acme")],
            1,
        )
        .unwrap();
    let e = entities[0].id;
    let scope = MappingScope::new(
        "https://src.example",
        "acme",
        "https://dest.example",
        "imported/acme",
    );
    store.ensure_tracker(e, "labels", 1, 2).unwrap();
    let t = store.begin_page(e, "labels", "rest", 3).unwrap();
    assert!(t.in_doubt);
    let page = PageCommit {
        next_cursor: Some("page-2".into()),
        source_total: Some(3),
        fetched: 2,
        imported: vec![("11".into(), 101), ("12".into(), 102)],
        ..Default::default()
    };
    let t = store.commit_page(e, "labels", &scope, page, 4).unwrap();
    assert!(!t.in_doubt);
    assert_eq!(t.cursor.as_deref(), Some("page-2"));
    assert_eq!(
        (t.stats.source, t.stats.fetched, t.stats.imported),
        (3, 2, 2)
    );
    assert_eq!(store.mapped_id(&scope, "labels", "12").unwrap(), Some(102));
    assert_eq!(store.mapped_id(&scope, "milestones", "12").unwrap(), None);

    // Reopening the store (a restart) finds the same position.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let t = store.tracker(e, "labels").unwrap().unwrap();
    assert_eq!(t.cursor.as_deref(), Some("page-2"));
    let last = PageCommit {
        last_page: true,
        fetched: 1,
        failures: vec![failure(e, "bug")],
        ..Default::default()
    };
    let t = store.commit_page(e, "labels", &scope, last, 6).unwrap();
    assert_eq!(t.status, Status::Finished);
    assert_eq!(
        (t.stats.source, t.stats.fetched, t.stats.imported),
        (3, 3, 2)
    );
    assert_eq!(
        store.failures(e).unwrap()[0].source_title.as_deref(),
        Some("bug")
    );
    assert!(store.entity(e).unwrap().has_failures);
    assert!(store.bulk_import(bulk.id).unwrap().has_failures);
    assert_eq!(store.mapped_ids(&scope, "labels").unwrap().len(), 2);
}

#[test]
fn cancel_wins_over_later_status_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (bulk, entities) = store
        .create_bulk_import(
            "https://src.example",
            src(),
            live(),
            b"s",
            &[request("acme")],
            1,
        )
        .unwrap();
    store
        .set_bulk_import_status(bulk.id, Status::Started, 2)
        .unwrap();
    let canceled = store.cancel_bulk_import(bulk.id, 3).unwrap();
    assert_eq!(canceled.status, Status::Canceled);
    assert_eq!(
        store.entity(entities[0].id).unwrap().status,
        Status::Canceled
    );
    let after = store
        .set_bulk_import_status(bulk.id, Status::Finished, 4)
        .unwrap();
    assert_eq!(after.status, Status::Canceled);
    let e = store
        .update_entity(entities[0].id, 5, |e| e.status = Status::Finished)
        .unwrap();
    assert_eq!(e.status, Status::Canceled);
    assert!(store.unfinished_bulk_imports().unwrap().is_empty());
}

#[test]
fn a_rediscovered_subgroup_is_not_added_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (bulk, entities) = store
        .create_bulk_import(
            "https://src.example",
            src(),
            live(),
            b"s",
            &[request("acme")],
            1,
        )
        .unwrap();
    let a = store
        .add_child_entity(bulk.id, entities[0].id, &request("acme/sub"), 2)
        .unwrap();
    let b = store
        .add_child_entity(bulk.id, entities[0].id, &request("acme/sub"), 3)
        .unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(store.entities_of(bulk.id).unwrap().len(), 2);
    assert_eq!(b.parent_id, Some(entities[0].id));
}

#[test]
fn listings_sort_filter_and_page_like_gitlab() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..5 {
        store
            .create_bulk_import(
                "https://src.example",
                src(),
                live(),
                b"s",
                &[request("acme")],
                10 + i,
            )
            .unwrap();
    }
    store
        .set_bulk_import_status(2, Status::Started, 20)
        .unwrap();
    let newest_first = store.list_bulk_imports(&ListQuery::default()).unwrap();
    assert_eq!(newest_first.total, 5);
    assert_eq!(
        newest_first.items.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![5, 4, 3, 2, 1]
    );
    let q = ListQuery {
        sort: SortOrder::Asc,
        page: 2,
        per_page: 2,
        ..Default::default()
    };
    let page = store.list_bulk_imports(&q).unwrap();
    assert_eq!(
        page.items.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let started = ListQuery {
        status: Some(Status::Started),
        ..Default::default()
    };
    assert_eq!(store.list_bulk_imports(&started).unwrap().items[0].id, 2);
    let filter = EntityFilter {
        bulk_import_id: Some(3),
    };
    let entities = store.list_entities(filter, &ListQuery::default()).unwrap();
    assert_eq!(entities.total, 1);
    assert_eq!(entities.items[0].bulk_import_id, 3);
}

#[test]
fn a_store_from_a_newer_appliance_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let tx = store.write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(dir.path())
        .err()
        .expect("newer schema must be refused");
    assert!(err.to_string().contains("upgrade the appliance"), "{err}");
}

#[test]
fn totals_sum_every_entity_by_relation_and_count_bulk_imports_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let empty = store.totals().unwrap();
    assert!(empty.imported.is_empty() && empty.failed.is_empty() && empty.skipped.is_empty());
    assert_eq!(empty.bulk_imports.get("finished"), Some(&0));
    assert_eq!(empty.bulk_imports.values().sum::<u64>(), 0);

    let (first, entities) = store
        .create_bulk_import(
            "https://src.example",
            src(),
            live(),
            b"sealed",
            &[request("acme"), request("beta")],
            1,
        )
        .unwrap();
    store
        .create_bulk_import(
            "https://src.example",
            src(),
            live(),
            b"sealed",
            &[request("gamma")],
            2,
        )
        .unwrap();
    store
        .set_bulk_import_status(first.id, Status::Finished, 3)
        .unwrap();
    let scope = MappingScope::new(
        "https://src.example",
        "acme",
        "https://dest.example",
        "imported/acme",
    );
    for (i, e) in entities.iter().enumerate() {
        store.ensure_tracker(e.id, "labels", 1, 2).unwrap();
        store.ensure_tracker(e.id, "members", 1, 2).unwrap();
        let page = PageCommit {
            last_page: true,
            fetched: 3,
            imported: vec![(format!("{i}1"), 1), (format!("{i}2"), 2)],
            failures: vec![failure(e.id, "bug")],
            ..Default::default()
        };
        store.commit_page(e.id, "labels", &scope, page, 4).unwrap();
        let mut skipped = failure(e.id, "alice");
        skipped.relation = "members".into();
        let page = PageCommit {
            last_page: true,
            fetched: 1,
            skipped: vec![skipped],
            ..Default::default()
        };
        store.commit_page(e.id, "members", &scope, page, 4).unwrap();
    }
    let t = store.totals().unwrap();
    assert_eq!(t.imported.get("labels"), Some(&4));
    assert_eq!(t.imported.get("members"), Some(&0));
    assert_eq!(t.failed.get("labels"), Some(&2));
    assert_eq!(t.failed.get("members"), None);
    assert_eq!(t.skipped.get("members"), Some(&2));
    assert_eq!(t.bulk_imports.get("finished"), Some(&1));
    assert_eq!(t.bulk_imports.get("created"), Some(&1));
    assert_eq!(t.bulk_imports.values().sum::<u64>(), 2);
}

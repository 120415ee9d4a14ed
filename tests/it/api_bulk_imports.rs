//! The bulk_imports API through the real router and a real engine and store: what a GitLab client
//! sees (status codes, bodies, pagination headers) for seeded migrations, and for submissions
//! against a small fake GitLab that stands in for the source and the destination.

use appliance::api::{ApiState, router};
use appliance::engine::{Destination, Engine, EngineConfig};
use appliance::forge::client::RetryPolicy;
use appliance::model::{DestinationKind, EntityRequest, EntityType, Failure, SourceKind, Status};
use appliance::store::{MappingScope, PageCommit};
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const API_TOKEN: &str = "appliance-api-token";
const HOST: &str = "appliance.test:8080";

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    app: Router,
}

fn fixture_with_destination(destination_url: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(
        dir.path().to_path_buf(),
        Some(Destination {
            url: destination_url.parse().unwrap(),
            token: SecretString::from("destination-token".to_string()),
        }),
    );
    config.retry = RetryPolicy {
        max_times: 0,
        ..RetryPolicy::default()
    };
    let engine = Engine::open(config).unwrap();
    let app = router(ApiState {
        engine: engine.clone(),
        token: SecretString::from(API_TOKEN.to_string()),
    });
    Fixture {
        _dir: dir,
        engine,
        app,
    }
}

fn fixture() -> Fixture {
    fixture_with_destination("http://127.0.0.1:9")
}

fn group(source: &str, slug: &str, ns: &str) -> EntityRequest {
    EntityRequest {
        entity_type: EntityType::Group,
        source_full_path: source.into(),
        destination_slug: slug.into(),
        destination_namespace: ns.into(),
        migrate_projects: true,
        migrate_memberships: true,
    }
}

/// Seeds a bulk import created at `at` (milliseconds) with the given entities; returns its id and
/// the ids of its entities.
fn seed(f: &Fixture, at: i64, entities: &[EntityRequest]) -> (u64, Vec<u64>) {
    let (bulk, created) = f
        .engine
        .store()
        .create_bulk_import(
            "https://source.example",
            SourceKind::Live {
                url: "https://source.example".into(),
            },
            DestinationKind::Live {
                url: "http://127.0.0.1:9".into(),
            },
            b"sealed",
            entities,
            at,
        )
        .unwrap();
    (bulk.id, created.iter().map(|e| e.id).collect())
}

fn failure(entity_id: u64, relation: &str, message: &str) -> Failure {
    Failure {
        entity_id,
        relation: relation.into(),
        step: "loader".into(),
        exception_class: "Appliance::DestinationRejected".into(),
        exception_message: message.into(),
        correlation_id: "dfcf583058ed4508e4c7c617bd7f0edd".into(),
        source_url: Some(format!("https://source.example/groups/g/-/{relation}")),
        source_title: Some("a title".into()),
        pipeline_class: "BulkImports::Common::Pipelines::LabelsPipeline".into(),
        created_at: 5_000,
    }
}

/// Gives entity `entity_id` a labels tracker (3 at the source, 2 fetched, 1 imported, with the given
/// failures) and a finished milestones tracker.
fn seed_progress(f: &Fixture, entity_id: u64, failures: Vec<Failure>) {
    let store = f.engine.store();
    let scope = MappingScope::new("https://source.example", "g", "http://127.0.0.1:9", "ns/g");
    store.ensure_tracker(entity_id, "labels", 1, 4_000).unwrap();
    store
        .begin_page(entity_id, "labels", "rest", 4_000)
        .unwrap();
    store
        .commit_page(
            entity_id,
            "labels",
            &scope,
            PageCommit {
                next_cursor: None,
                last_page: true,
                source_total: Some(3),
                fetched: 2,
                imported: vec![("11".into(), 111)],
                failures,
                ..Default::default()
            },
            4_100,
        )
        .unwrap();
    store
        .ensure_tracker(entity_id, "milestones", 1, 4_000)
        .unwrap();
    store
        .begin_page(entity_id, "milestones", "rest", 4_000)
        .unwrap();
    store
        .commit_page(
            entity_id,
            "milestones",
            &scope,
            PageCommit {
                next_cursor: None,
                last_page: true,
                source_total: Some(5),
                fetched: 5,
                imported: vec![("1".into(), 10), ("2".into(), 20)],
                ..Default::default()
            },
            4_200,
        )
        .unwrap();
    store
        .end_tracker(entity_id, "milestones", Status::Finished, None, 4_300)
        .unwrap();
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn ids(&self) -> Vec<u64> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {}", self.raw))
            .iter()
            .map(|v| v["id"].as_u64().unwrap())
            .collect()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

async fn get_as(app: &Router, uri: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(uri).header("host", HOST);
    if let Some(t) = token {
        req = req.header("private-token", t);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

async fn get_ok(app: &Router, uri: &str) -> Reply {
    let r = get_as(app, uri, Some(API_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "GET {uri}: {}", r.raw);
    r
}

async fn post(app: &Router, uri: &str, content_type: Option<&str>, body: &str) -> Reply {
    let mut req = Request::post(uri)
        .header("host", HOST)
        .header("private-token", API_TOKEN);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    send(app, req.body(Body::from(body.to_string())).unwrap()).await
}

const EVERY_ENDPOINT: [(&str, &str); 9] = [
    ("POST", "/api/v4/bulk_imports"),
    ("GET", "/api/v4/bulk_imports"),
    ("GET", "/api/v4/bulk_imports/entities"),
    ("GET", "/api/v4/bulk_imports/1"),
    ("GET", "/api/v4/bulk_imports/1/entities"),
    ("GET", "/api/v4/bulk_imports/1/entities/1"),
    ("GET", "/api/v4/bulk_imports/1/entities/1/failures"),
    ("GET", "/api/v4/bulk_imports/1/unmapped_users"),
    ("POST", "/api/v4/bulk_imports/1/cancel"),
];

#[tokio::test]
async fn every_endpoint_answers_401_without_the_token_and_accepts_both_header_forms() {
    let f = fixture();
    seed(&f, 1_000, &[group("g", "g", "ns")]);
    for (method, uri) in EVERY_ENDPOINT {
        for token in [None, Some("wrong"), Some("appliance-api-token-but-longer")] {
            let mut req = Request::builder()
                .method(method)
                .uri(uri)
                .header("host", HOST);
            if let Some(t) = token {
                req = req.header("private-token", t);
            }
            let r = send(&f.app, req.body(Body::empty()).unwrap()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}"
            );
            assert_eq!(r.body, json!({"message": "401 Unauthorized"}));
        }
    }
    let bearer = Request::get("/api/v4/bulk_imports")
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.app, bearer).await.status, StatusCode::OK);
    assert_eq!(
        get_as(&f.app, "/api/v4/bulk_imports", Some(API_TOKEN))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_like_gitlab() {
    let f = fixture();
    let r = get_as(&f.app, "/api/v4/nothing_here", Some(API_TOKEN)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"error": "404 Not Found"}));
    let req = Request::delete("/api/v4/bulk_imports")
        .header("private-token", API_TOKEN)
        .body(Body::empty())
        .unwrap();
    let r = send(&f.app, req).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body, json!({"error": "405 Not Allowed"}));
}

#[tokio::test]
async fn bulk_imports_are_listed_newest_first_filtered_and_paginated() {
    let f = fixture();
    let (a, _) = seed(&f, 1_000, &[group("a", "a", "ns")]);
    let (b, _) = seed(&f, 2_000, &[group("b", "b", "ns")]);
    let (c, _) = seed(&f, 3_000, &[group("c", "c", "ns")]);
    f.engine
        .store()
        .set_bulk_import_status(b, Status::Finished, 3_500)
        .unwrap();

    let r = get_ok(&f.app, "/api/v4/bulk_imports").await;
    assert_eq!(r.ids(), [c, b, a]);
    assert_eq!(r.header("x-total"), "3");
    assert_eq!(r.header("x-per-page"), "20");
    assert_eq!(r.header("x-next-page"), "");
    assert_eq!(r.header("x-prev-page"), "");
    assert_eq!(
        r.body[2],
        json!({
            "id": a,
            "status": "created",
            "source_type": "gitlab",
            "source_url": "https://source.example",
            "created_at": "1970-01-01T00:00:01.000Z",
            "updated_at": "1970-01-01T00:00:01.000Z",
            "has_failures": false
        })
    );
    assert_eq!(
        get_ok(&f.app, "/api/v4/bulk_imports?sort=asc").await.ids(),
        [a, b, c]
    );
    assert_eq!(
        get_ok(&f.app, "/api/v4/bulk_imports?sort=desc").await.ids(),
        [c, b, a]
    );
    assert_eq!(
        get_ok(&f.app, "/api/v4/bulk_imports?status=finished")
            .await
            .ids(),
        [b]
    );
    assert_eq!(
        get_ok(&f.app, "/api/v4/bulk_imports?status=created&sort=asc")
            .await
            .ids(),
        [a, c]
    );
    assert!(
        get_ok(&f.app, "/api/v4/bulk_imports?status=canceled")
            .await
            .ids()
            .is_empty()
    );

    let first = get_ok(&f.app, "/api/v4/bulk_imports?per_page=2&sort=asc").await;
    assert_eq!(first.ids(), [a, b]);
    assert_eq!(first.header("x-total"), "3");
    assert_eq!(first.header("x-total-pages"), "2");
    assert_eq!(first.header("x-page"), "1");
    assert_eq!(first.header("x-per-page"), "2");
    assert_eq!(first.header("x-next-page"), "2");
    assert_eq!(first.header("x-prev-page"), "");
    let base = format!("http://{HOST}/api/v4/bulk_imports");
    assert_eq!(
        first.header("link"),
        format!(
            "<{base}?page=2&per_page=2&sort=asc>; rel=\"next\", \
             <{base}?page=1&per_page=2&sort=asc>; rel=\"first\", \
             <{base}?page=2&per_page=2&sort=asc>; rel=\"last\""
        )
    );
    let second = get_ok(&f.app, "/api/v4/bulk_imports?per_page=2&page=2&sort=asc").await;
    assert_eq!(second.ids(), [c]);
    assert_eq!(second.header("x-next-page"), "");
    assert_eq!(second.header("x-prev-page"), "1");
    let beyond = get_ok(&f.app, "/api/v4/bulk_imports?per_page=2&page=5").await;
    assert!(beyond.ids().is_empty());
    assert_eq!(
        get_ok(&f.app, "/api/v4/bulk_imports?per_page=1000")
            .await
            .header("x-per-page"),
        "100"
    );
}

#[tokio::test]
async fn invalid_parameters_are_400_in_grape_words() {
    let f = fixture();
    seed(&f, 1_000, &[group("g", "g", "ns")]);
    let cases = [
        (
            "/api/v4/bulk_imports?status=done",
            "status does not have a valid value",
        ),
        (
            "/api/v4/bulk_imports?sort=sideways",
            "sort does not have a valid value",
        ),
        (
            "/api/v4/bulk_imports?per_page=0",
            "per_page has a value not allowed",
        ),
        ("/api/v4/bulk_imports/entities?page=two", "page is invalid"),
        ("/api/v4/bulk_imports/abc", "import_id is invalid"),
        ("/api/v4/bulk_imports/abc/entities", "import_id is invalid"),
        ("/api/v4/bulk_imports/1/entities/x", "entity_id is invalid"),
        (
            "/api/v4/bulk_imports/1/entities?status=nope",
            "status does not have a valid value",
        ),
    ];
    for (uri, message) in cases {
        let r = get_as(&f.app, uri, Some(API_TOKEN)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.raw);
        assert_eq!(r.body, json!({ "error": message }), "{uri}");
    }
}

#[tokio::test]
async fn unknown_ids_are_404_with_gitlabs_messages() {
    let f = fixture();
    let (first, first_entities) = seed(&f, 1_000, &[group("g", "g", "ns")]);
    let (_, other_entities) = seed(&f, 2_000, &[group("h", "h", "ns")]);
    let not_found = [
        "/api/v4/bulk_imports/999".to_string(),
        "/api/v4/bulk_imports/-1".to_string(),
        "/api/v4/bulk_imports/999/entities".to_string(),
        format!("/api/v4/bulk_imports/999/entities/{}", first_entities[0]),
        format!("/api/v4/bulk_imports/{first}/entities/999"),
        // An entity of another bulk import is not found under this one.
        format!(
            "/api/v4/bulk_imports/{first}/entities/{}",
            other_entities[0]
        ),
        format!(
            "/api/v4/bulk_imports/{first}/entities/{}/failures",
            other_entities[0]
        ),
        "/api/v4/bulk_imports/999/entities/1/failures".to_string(),
    ];
    for uri in not_found {
        let r = get_as(&f.app, &uri, Some(API_TOKEN)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.raw);
        assert_eq!(r.body, json!({"message": "404 Not found"}), "{uri}");
    }
    let r = post(&f.app, "/api/v4/bulk_imports/999/cancel", None, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"message": "404 Not Found"}));
}

#[tokio::test]
async fn a_bulk_import_is_shown_with_gitlabs_fields() {
    let f = fixture();
    let (id, _) = seed(&f, 1_624_009_555_358, &[group("g", "g", "ns")]);
    let r = get_ok(&f.app, &format!("/api/v4/bulk_imports/{id}")).await;
    assert_eq!(
        r.body,
        json!({
            "id": id,
            "status": "created",
            "source_type": "gitlab",
            "source_url": "https://source.example",
            "created_at": "2021-06-18T09:45:55.358Z",
            "updated_at": "2021-06-18T09:45:55.358Z",
            "has_failures": false
        })
    );
}

#[tokio::test]
async fn entities_are_rendered_with_stats_and_failures() {
    let f = fixture();
    let (first, entities) = seed(
        &f,
        1_000,
        &[group("src/one", "one", "dest"), group("src/two", "two", "")],
    );
    let (second, second_entities) = seed(&f, 2_000, &[group("src/three", "three", "dest")]);
    seed_progress(
        &f,
        entities[0],
        vec![failure(
            entities[0],
            "labels",
            "Title has already been taken",
        )],
    );

    let r = get_ok(
        &f.app,
        &format!("/api/v4/bulk_imports/{first}/entities/{}", entities[0]),
    )
    .await;
    assert_eq!(r.body["id"], entities[0]);
    assert_eq!(r.body["bulk_import_id"], first);
    assert_eq!(r.body["status"], "created");
    assert_eq!(r.body["entity_type"], "group");
    assert_eq!(r.body["source_full_path"], "src/one");
    assert_eq!(r.body["destination_full_path"], "dest/one");
    assert_eq!(r.body["destination_name"], "one");
    assert_eq!(r.body["destination_slug"], "one");
    assert_eq!(r.body["destination_namespace"], "dest");
    assert_eq!(r.body["parent_id"], Value::Null);
    assert_eq!(r.body["namespace_id"], Value::Null);
    assert_eq!(r.body["project_id"], Value::Null);
    assert_eq!(r.body["migrate_projects"], true);
    assert_eq!(r.body["migrate_memberships"], true);
    assert_eq!(r.body["has_failures"], true);
    assert_eq!(
        r.body["stats"],
        json!({
            "labels": {"source": 3, "fetched": 2, "imported": 1},
            "milestones": {"source": 5, "fetched": 5, "imported": 2}
        })
    );
    let failures = r.body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["relation"], "labels");
    assert_eq!(failures[0]["step"], "loader");
    assert_eq!(failures[0]["pipeline_step"], "loader");
    assert_eq!(
        failures[0]["exception_message"],
        "Title has already been taken"
    );
    assert_eq!(
        failures[0]["exception_class"],
        "Appliance::DestinationRejected"
    );
    assert_eq!(
        failures[0]["correlation_id_value"],
        "dfcf583058ed4508e4c7c617bd7f0edd"
    );
    assert_eq!(failures[0]["created_at"], "1970-01-01T00:00:05.000Z");
    assert_eq!(
        failures[0]["pipeline_class"],
        "BulkImports::Common::Pipelines::LabelsPipeline"
    );

    // The bulk import says it has failures once one of its entities has.
    let b = get_ok(&f.app, &format!("/api/v4/bulk_imports/{first}")).await;
    assert_eq!(b.body["has_failures"], true);

    let own = get_ok(&f.app, &format!("/api/v4/bulk_imports/{first}/entities")).await;
    assert_eq!(own.ids(), [entities[1], entities[0]]);
    assert_eq!(own.header("x-total"), "2");
    assert_eq!(own.body[1]["stats"]["labels"]["fetched"], 2);
    assert_eq!(own.body[0]["stats"], json!({}));
    assert_eq!(own.body[0]["destination_full_path"], "two");
    let asc = get_ok(
        &f.app,
        &format!("/api/v4/bulk_imports/{first}/entities?sort=asc"),
    )
    .await;
    assert_eq!(asc.ids(), [entities[0], entities[1]]);

    let all = get_ok(&f.app, "/api/v4/bulk_imports/entities?sort=asc").await;
    assert_eq!(all.ids(), [entities[0], entities[1], second_entities[0]]);
    assert_eq!(all.header("x-total"), "3");

    f.engine.store().cancel_bulk_import(second, 3_000).unwrap();
    let canceled = get_ok(&f.app, "/api/v4/bulk_imports/entities?status=canceled").await;
    assert_eq!(canceled.ids(), [second_entities[0]]);
    let page = get_ok(
        &f.app,
        "/api/v4/bulk_imports/entities?per_page=1&page=2&sort=asc",
    )
    .await;
    assert_eq!(page.ids(), [entities[1]]);
    assert_eq!(page.header("x-total-pages"), "3");
    assert!(
        page.header("link").contains(&format!(
            "<http://{HOST}/api/v4/bulk_imports/entities?page=3&per_page=1&sort=asc>; rel=\"next\""
        )),
        "{}",
        page.header("link")
    );
}

#[tokio::test]
async fn failures_are_an_array_paginated_in_the_order_they_happened() {
    let f = fixture();
    let (id, entities) = seed(&f, 1_000, &[group("g", "g", "ns")]);
    let e = entities[0];
    seed_progress(
        &f,
        e,
        vec![
            failure(e, "labels", "first"),
            failure(e, "labels", "second"),
            failure(e, "labels", "third"),
        ],
    );
    let uri = format!("/api/v4/bulk_imports/{id}/entities/{e}/failures");
    let all = get_ok(&f.app, &uri).await;
    let messages: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["exception_message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["first", "second", "third"]);
    assert_eq!(
        all.body[0],
        json!({
            "relation": "labels",
            "exception_message": "first",
            "exception_class": "Appliance::DestinationRejected",
            "correlation_id_value": "dfcf583058ed4508e4c7c617bd7f0edd",
            "source_url": "https://source.example/groups/g/-/labels",
            "source_title": "a title"
        })
    );
    let second_page = get_ok(&f.app, &format!("{uri}?per_page=2&page=2")).await;
    assert_eq!(second_page.body.as_array().unwrap().len(), 1);
    assert_eq!(second_page.body[0]["exception_message"], "third");
    assert_eq!(second_page.header("x-total"), "3");
    assert_eq!(second_page.header("x-prev-page"), "1");

    let (clean_import, clean) = seed(&f, 2_000, &[group("h", "h", "ns")]);
    let none = get_ok(
        &f.app,
        &format!(
            "/api/v4/bulk_imports/{clean_import}/entities/{}/failures",
            clean[0]
        ),
    )
    .await;
    assert_eq!(none.body, json!([]));
    assert_eq!(none.header("x-total"), "0");
    assert_eq!(none.header("x-total-pages"), "1");
}

/// The users no destination user maps to come back as a user map to complete: each once, sorted,
/// from every entity of the migration, and nothing skipped for another reason.
#[tokio::test]
async fn unmapped_users_are_a_user_map_to_complete() {
    let f = fixture();
    let (id, entities) = seed(&f, 1_000, &[group("g", "g", "ns"), group("h", "h", "ns")]);
    let store = f.engine.store();
    let skipped = |entity_id: u64, class: &str, who: &str| Failure {
        exception_class: class.into(),
        source_title: Some(who.into()),
        ..failure(entity_id, "members", "no destination user maps to them")
    };
    for (entity_id, rows) in [
        (
            entities[0],
            vec![
                skipped(
                    entities[0],
                    appliance::relations::UNMAPPED_USER_CLASS,
                    "zed",
                ),
                skipped(
                    entities[0],
                    appliance::relations::UNMAPPED_USER_CLASS,
                    "ada",
                ),
                skipped(
                    entities[0],
                    appliance::relations::SKIPPED_CLASS,
                    "not-a-user",
                ),
            ],
        ),
        (
            entities[1],
            vec![skipped(
                entities[1],
                appliance::relations::UNMAPPED_USER_CLASS,
                "ada",
            )],
        ),
    ] {
        let scope = MappingScope::new("https://source.example", "g", "http://127.0.0.1:9", "ns/g");
        store
            .ensure_tracker(entity_id, "members", 1, 4_000)
            .unwrap();
        store
            .begin_page(entity_id, "members", "rest", 4_000)
            .unwrap();
        store
            .commit_page(
                entity_id,
                "members",
                &scope,
                PageCommit {
                    last_page: true,
                    fetched: rows.len() as u64,
                    skipped: rows,
                    ..Default::default()
                },
                4_100,
            )
            .unwrap();
    }
    let r = get_ok(&f.app, &format!("/api/v4/bulk_imports/{id}/unmapped_users")).await;
    assert_eq!(r.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(r.raw, "ada,\nzed,\n");
    // Completed, it is a user map.
    let completed = r
        .raw
        .replace("ada,", "ada,ada.lovelace")
        .replace("zed,", "zed,zed");
    let map = appliance::user_map::UserMap::parse_csv(&completed).unwrap();
    assert_eq!(map.len(), 2);

    let (empty, _) = seed(&f, 2_000, &[group("k", "k", "ns")]);
    let r = get_ok(
        &f.app,
        &format!("/api/v4/bulk_imports/{empty}/unmapped_users"),
    )
    .await;
    assert_eq!(r.raw, "");
    let r = get_as(
        &f.app,
        "/api/v4/bulk_imports/999/unmapped_users",
        Some(API_TOKEN),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
}

#[tokio::test]
async fn cancel_answers_200_and_cancels_the_unfinished_entities() {
    let f = fixture();
    let (id, entities) = seed(&f, 1_000, &[group("a", "a", "ns"), group("b", "b", "ns")]);
    f.engine
        .store()
        .update_entity(entities[1], 1_500, |e| e.status = Status::Finished)
        .unwrap();
    let r = post(
        &f.app,
        &format!("/api/v4/bulk_imports/{id}/cancel"),
        None,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(r.body["source_type"], "gitlab");

    let shown = get_ok(&f.app, &format!("/api/v4/bulk_imports/{id}")).await;
    assert_eq!(shown.body["status"], "canceled");
    let listed = get_ok(
        &f.app,
        &format!("/api/v4/bulk_imports/{id}/entities?sort=asc"),
    )
    .await;
    assert_eq!(listed.body[0]["status"], "canceled");
    assert_eq!(
        listed.body[1]["status"], "finished",
        "an entity that had ended keeps its status"
    );

    // Canceling again is harmless and still reports the canceled import.
    let again = post(
        &f.app,
        &format!("/api/v4/bulk_imports/{id}/cancel"),
        None,
        "",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "canceled");

    let r = post(&f.app, "/api/v4/bulk_imports/abc/cancel", None, "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, json!({"error": "import_id is invalid"}));
}

#[tokio::test]
async fn malformed_and_invalid_bodies_are_400() {
    let f = fixture();
    let uri = "/api/v4/bulk_imports";
    let r = post(
        &f.app,
        uri,
        Some("application/json"),
        "{\"configuration\": ",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("message body does not match declared format"),
        "{}",
        r.raw
    );

    let everything_missing = "configuration is missing, configuration[url] is missing, configuration[access_token] is missing, \
        entities is missing, entities[source_type] is missing, entities[source_full_path] is missing, \
        entities[destination_namespace] is missing, entities[destination_slug], entities[destination_name] are missing, \
        at least one parameter must be provided";
    for (ct, body) in [
        (Some("application/json"), "{}"),
        (Some("application/json"), ""),
        (None, ""),
        (None, "foo=bar"),
    ] {
        let r = post(&f.app, uri, ct, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ct:?} {body}");
        assert_eq!(
            r.body,
            json!({ "error": everything_missing }),
            "{ct:?} {body}"
        );
    }

    let r = post(
        &f.app,
        uri,
        Some("application/x-www-form-urlencoded"),
        "configuration=x&configuration[url]=y",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"error": "expected Hash (got String) for param `configuration'"})
    );

    let form = "configuration[url]=https%3A%2F%2Fsource.example&configuration[access_token]=glpat-form-secret\
        &entities[][source_type]=group_entity&entities[][source_full_path]=src%2Fgroup\
        &entities[][destination_slug]=bad%20slug&entities[][destination_namespace]=dest";
    let r = post(&f.app, uri, Some("application/x-www-form-urlencoded"), form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "entities[0][destination_slug] can only include non-accented letters, digits, '_', '-' and '.'. \
         It must not start with '-', '_', or '.', nor end with '-', '_', '.', '.git', or '.atom'. \
         For example, 'destination_namespace' not 'destination/namespace'"
    );
    assert!(!r.raw.contains("glpat-form-secret"));

    let json_body = json!({
        "configuration": {"url": "https://source.example", "access_token": "t"},
        "entities": [{"source_type": "group_entity", "source_full_path": "g", "destination_namespace": "ns",
                      "destination_slug": "a", "destination_name": "b"}]
    });
    let r = post(
        &f.app,
        uri,
        Some("application/json"),
        &json_body.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"error": "entities[0][destination_slug], entities[0][destination_name] are mutually exclusive"})
    );

    let r = post(&f.app, uri, Some("text/plain"), "hello").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.body,
        json!({"error": "The provided content-type 'text/plain' is not supported."})
    );
    assert!(
        f.engine
            .store()
            .list_bulk_imports(&Default::default())
            .unwrap()
            .items
            .is_empty()
    );
}

/// A fake GitLab for submissions. The first path segment picks its behaviour, so one server plays
/// several instances: `ok` answers like a healthy source, `echo500` and `unauth` put the token they
/// were given into their error bodies, `nogroup` has no groups, `dest` is a destination with group
/// `dest-ns` and nothing below it.
async fn fake_gitlab() -> String {
    async fn version(Path(mode): Path<String>, headers: HeaderMap) -> axum::response::Response {
        let token = headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match mode.as_str() {
            "echo500" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"message": format!("token {token} broke us")})),
            )
                .into_response(),
            "unauth" => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": format!("401 Unauthorized: {token}")})),
            )
                .into_response(),
            _ => axum::Json(json!({"version": "17.5.0", "revision": "abc"})).into_response(),
        }
    }
    async fn group(Path((mode, id)): Path<(String, String)>) -> axum::response::Response {
        let exists = match mode.as_str() {
            "ok" => true,
            "dest" => id == "dest-ns",
            _ => false,
        };
        if exists {
            axum::Json(json!({"id": 42, "full_path": id, "path": id, "name": id})).into_response()
        } else {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "404 Group Not Found"})),
            )
                .into_response()
        }
    }
    let app = Router::new()
        .route("/{mode}/api/v4/version", get(version))
        .route("/{mode}/api/v4/groups/{id}", get(group))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "404 Not Found"})),
            )
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn submission(source_url: &str, token: &str, entity: Value) -> String {
    json!({
        "configuration": {"url": source_url, "access_token": token},
        "entities": [entity]
    })
    .to_string()
}

fn group_entity() -> Value {
    json!({"source_type": "group_entity", "source_full_path": "src/group",
           "destination_slug": "new-group", "destination_namespace": "dest-ns"})
}

#[tokio::test]
async fn refusals_map_to_gitlabs_codes_and_never_repeat_the_source_token() {
    let fake = fake_gitlab().await;
    let f = fixture_with_destination(&format!("{fake}/dest"));
    let unreachable_destination = fixture();
    let secret = "glpat-never-echo-this-0123456789";
    let cases: Vec<(&Fixture, String, Value, StatusCode, String)> = vec![
        (
            &f,
            format!("{fake}/unauth"),
            group_entity(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Check that the source instance base URL and the personal access token meet the necessary requirements."
                .to_string(),
        ),
        (
            &f,
            format!("{fake}/echo500"),
            group_entity(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unable to connect to the source instance".to_string(),
        ),
        (
            &f,
            format!("{fake}/nogroup"),
            group_entity(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Import failed. 'src/group' not found.".to_string(),
        ),
        (
            &f,
            format!("{fake}/ok"),
            json!({"source_type": "group_entity", "source_full_path": "src/group",
                   "destination_slug": "new-group", "destination_namespace": "missing-ns"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Import failed. Destination 'missing-ns' is invalid, or you don't have permission.".to_string(),
        ),
        (
            &f,
            format!("{fake}/ok"),
            json!({"source_type": "group_entity", "source_full_path": "src/group",
                   "destination_slug": "dest-ns", "destination_namespace": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Import failed. 'dest-ns' already exists. Change the destination and try again.".to_string(),
        ),
        (
            &f,
            format!("{fake}/ok"),
            json!({"source_type": "project_entity", "source_full_path": "src/project",
                   "destination_slug": "p", "destination_namespace": "dest-ns"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "src/project".to_string(),
        ),
        (
            &f,
            "ftp://source.example".to_string(),
            group_entity(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid source URL. Enter only the base URL of the source GitLab instance.".to_string(),
        ),
        (
            &unreachable_destination,
            format!("{fake}/ok"),
            group_entity(),
            StatusCode::SERVICE_UNAVAILABLE,
            "Unable to reach the destination instance".to_string(),
        ),
    ];
    for (fixture, url, entity, status, message) in cases {
        let r = post(
            &fixture.app,
            "/api/v4/bulk_imports",
            Some("application/json"),
            &submission(&url, secret, entity),
        )
        .await;
        assert_eq!(r.status, status, "{url}: {}", r.raw);
        let got = r.body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{url}: no message in {}", r.raw));
        assert!(
            got.contains(&message),
            "{url}: expected {message:?} in {got:?}"
        );
        assert!(
            !r.raw.contains(secret),
            "{url}: the token leaked: {}",
            r.raw
        );
        assert!(!format!("{:?}", r.headers).contains(secret));
    }
    assert!(
        f.engine
            .store()
            .list_bulk_imports(&Default::default())
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_valid_form_submission_starts_a_migration_and_the_token_stays_secret() {
    let fake = fake_gitlab().await;
    let f = fixture_with_destination(&format!("{fake}/dest"));
    let secret = "glpat-form-token-abcdef";
    let source = format!("{fake}/ok");
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("configuration[url]", &source)
        .append_pair("configuration[access_token]", secret)
        .append_pair("entities[0][source_type]", "group_entity")
        .append_pair("entities[0][source_full_path]", "src/group")
        .append_pair("entities[0][destination_name]", "new-group")
        .append_pair("entities[0][destination_namespace]", "dest-ns")
        .append_pair("entities[0][migrate_projects]", "false")
        .finish();
    let r = post(
        &f.app,
        "/api/v4/bulk_imports",
        Some("application/x-www-form-urlencoded"),
        &form,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(r.body["status"], "created");
    assert_eq!(r.body["source_type"], "gitlab");
    assert_eq!(r.body["source_url"], source);
    let id = r.body["id"].as_u64().unwrap();

    let entities = get_ok(&f.app, &format!("/api/v4/bulk_imports/{id}/entities")).await;
    assert_eq!(entities.ids().len(), 1);
    let e = &entities.body[0];
    assert_eq!(e["source_full_path"], "src/group");
    assert_eq!(e["destination_slug"], "new-group");
    assert_eq!(e["destination_full_path"], "dest-ns/new-group");
    assert_eq!(e["migrate_projects"], false);
    assert_eq!(e["migrate_memberships"], true);

    // Every body a client can read about this migration is free of the source token.
    let eid = e["id"].as_u64().unwrap();
    for uri in [
        "/api/v4/bulk_imports".to_string(),
        format!("/api/v4/bulk_imports/{id}"),
        "/api/v4/bulk_imports/entities".to_string(),
        format!("/api/v4/bulk_imports/{id}/entities/{eid}"),
        format!("/api/v4/bulk_imports/{id}/entities/{eid}/failures"),
    ] {
        let r = get_ok(&f.app, &uri).await;
        assert!(!r.raw.contains(secret), "{uri} leaked the token: {}", r.raw);
    }
    let r = post(
        &f.app,
        &format!("/api/v4/bulk_imports/{id}/cancel"),
        None,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.raw.contains(secret));
}

#[tokio::test]
async fn serve_answers_over_tcp_and_stops_on_shutdown() {
    let f = fixture();
    let (id, _) = seed(&f, 1_000, &[group("g", "g", "ns")]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = ApiState {
        engine: f.engine.clone(),
        token: SecretString::from(API_TOKEN.to_string()),
    };
    let server = tokio::spawn(appliance::api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET /api/v4/bulk_imports/{id} HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {API_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"created\""), "{response}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// The python-gitlab script the lead's simulator tests use, run here against the served API and the
/// fake GitLab (which has no records, so the script cancels the migration rather than waiting for
/// it to finish). Needs python3 with
/// python-gitlab; without it the test says so and checks nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gitlab_drives_the_api() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let available = std::process::Command::new(&python)
        .args(["-c", "import gitlab"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !available {
        eprintln!(
            "python_gitlab_drives_the_api: skipped, {python} has no python-gitlab (pip install python-gitlab)"
        );
        return;
    }
    let fake = fake_gitlab().await;
    let f = fixture_with_destination(&format!("{fake}/dest"));
    // Earlier imports, so that listing one per page spans several pages.
    seed(&f, 1_000, &[group("old/a", "a", "ns")]);
    seed(&f, 2_000, &[group("old/b", "b", "ns")]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = ApiState {
        engine: f.engine.clone(),
        token: SecretString::from(API_TOKEN.to_string()),
    };
    let server = tokio::spawn(appliance::api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/bulk_imports_check.py"
    );
    let secret = "glpat-python-secret-42";
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg(API_TOKEN)
        .arg(format!("{fake}/ok"))
        .arg(secret)
        .arg("src/group")
        .arg("dest-ns")
        .args([
            "--cancel",
            "--accept",
            "canceled,finished,failed",
            "--timeout",
            "20",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the python-gitlab check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("created bulk import"), "{stdout}");
    assert!(stdout.contains("canceled bulk import"), "{stdout}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// An engine and router whose destination is `sim`, written with its owner's token.
fn fixture_on(sim: &forge_sim::RunningSim) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(
        dir.path().to_path_buf(),
        Some(Destination {
            url: sim.url.parse().unwrap(),
            token: SecretString::from(sim.owner_token.clone()),
        }),
    );
    config.retry = RetryPolicy {
        max_times: 1,
        ..RetryPolicy::default()
    };
    let engine = Engine::open(config).unwrap();
    let app = router(ApiState {
        engine: engine.clone(),
        token: SecretString::from(API_TOKEN.to_string()),
    });
    Fixture {
        _dir: dir,
        engine,
        app,
    }
}

fn group_count(sim: &forge_sim::RunningSim) -> usize {
    sim.sim.read().groups.len()
}

const UNDER_SOURCE: &str = "Import failed: Destination cannot be a subgroup of the source group. \
    Change the destination and try again.";

/// An instance migrating its own group `imported` into `imported` (the adversarial run created 355
/// nested groups in 15 s): refused with GitLab's 422 and words, whatever spelling of the same
/// instance's URL or of the path the request uses, and nothing is created or recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_into_its_own_subtree_is_refused_and_creates_nothing() {
    let sim = forge_sim::RunningSim::start(forge_sim::SimConfig::new(forge_sim::Dataset::Empty, 7))
        .await
        .unwrap();
    let f = fixture_on(&sim);
    let before = group_count(&sim);
    let port = sim.url.rsplit(':').next().unwrap().to_string();
    let localhost = format!("http://localhost:{port}/");
    let cases = [
        (sim.url.clone(), "imported", "imported", "imported"),
        (sim.url.clone(), "imported", "imported", "copy"),
        (localhost.clone(), "Imported", "imported", "copy"),
        (sim.url.clone(), "imported", "", "imported"),
    ];
    for (url, source, namespace, slug) in cases {
        let body = json!({
            "configuration": {"url": url, "access_token": sim.owner_token},
            "entities": [{"source_type": "group_entity", "source_full_path": source,
                          "destination_namespace": namespace, "destination_slug": slug}]
        });
        let r = post(
            &f.app,
            "/api/v4/bulk_imports",
            Some("application/json"),
            &body.to_string(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url} {source} -> {namespace}/{slug}: {}",
            r.raw
        );
        assert_eq!(r.body, json!({ "message": UNDER_SOURCE }));
    }
    assert_eq!(group_count(&sim), before, "a group was created");
    assert!(
        f.engine
            .store()
            .list_bulk_imports(&Default::default())
            .unwrap()
            .items
            .is_empty()
    );
    sim.shutdown().await;
}

/// Defence in depth: a migration recorded without the up-front check (as a bulk import recorded by
/// an older appliance would be) from an instance into a group below the source on the same instance.
/// The subgroups stage finds the group it created among the source's subgroups, skips it and says
/// so, and migrates the others: it ends instead of nesting itself forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subgroups_stage_never_descends_into_a_group_this_migration_created() {
    use appliance::engine::Plan;
    use appliance::model::{DestinationKind, SourceKind};
    let sim = forge_sim::RunningSim::start(forge_sim::SimConfig::new(forge_sim::Dataset::Empty, 7))
        .await
        .unwrap();
    appliance::install_crypto_provider();
    let client = reqwest::Client::new();
    let imported: Value = client
        .get(format!("{}/api/v4/groups/imported", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = client
        .post(format!("{}/api/v4/groups", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .json(&json!({"name": "team", "path": "team", "parent_id": imported["id"]}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());

    let f = fixture_on(&sim);
    let (bulk, _) = f
        .engine
        .record(Plan {
            source_url: sim.url.clone(),
            source: SourceKind::Live {
                url: sim.url.clone(),
            },
            source_token: Some(SecretString::from(sim.owner_token.clone())),
            destination: DestinationKind::Live {
                url: sim.url.clone(),
            },
            entities: vec![group("imported", "copy", "imported")],
            user_map: Vec::new(),
        })
        .await
        .unwrap();
    let ran =
        tokio::time::timeout(std::time::Duration::from_secs(120), f.engine.run(bulk.id)).await;
    let store = f.engine.store();
    let entities = store.entities_of(bulk.id).unwrap();
    let paths: Vec<String> = entities.iter().map(|e| e.destination_full_path()).collect();
    if ran.is_err() {
        let _ = f.engine.cancel(bulk.id).await;
        panic!(
            "the migration did not end within 120 s; it created {} entities, the first {:?}",
            entities.len(),
            &paths[..paths.len().min(4)]
        );
    }
    let done = ran.unwrap().unwrap();
    assert_eq!(done.status, Status::Finished);
    assert_eq!(paths, ["imported/copy", "imported/copy/team"]);
    {
        let state = sim.sim.read();
        assert!(state.group_by_path("imported/copy/team").is_some());
        assert!(state.group_by_path("imported/copy/copy").is_none());
    }
    let skipped = store.skipped(entities[0].id).unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].relation, "subgroups");
    assert_eq!(skipped[0].source_title.as_deref(), Some("imported/copy"));
    assert!(
        skipped[0]
            .exception_message
            .contains("a group this migration creates"),
        "{}",
        skipped[0].exception_message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_export_into_a_bundle_that_exists_is_refused_before_anything_starts() {
    let f = fixture();
    let dir = f.engine.bundle_dir().to_path_buf();
    std::fs::create_dir_all(dir.join("a-directory")).unwrap();
    std::fs::write(dir.join("kept.bundle"), b"an earlier export").unwrap();
    std::fs::write(dir.join("split.bundle.001"), b"a first volume").unwrap();
    for (name, existing) in [
        ("kept.bundle", "kept.bundle"),
        ("split.bundle", "split.bundle.001"),
        ("a-directory", "a-directory"),
    ] {
        let body = json!({
            "configuration": {"url": "http://127.0.0.1:9", "access_token": "source-token"},
            "entities": [group_entity()],
            "export_bundle": name,
        });
        let r = post(
            &f.app,
            "/api/v4/bulk_imports",
            Some("application/json"),
            &body.to_string(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.raw
        );
        assert_eq!(
            r.body["message"],
            format!(
                "Import failed. '{existing}' already exists in the bundle directory. Choose another export_bundle and try again."
            )
        );
    }
    assert_eq!(
        std::fs::read(dir.join("kept.bundle")).unwrap(),
        b"an earlier export"
    );
    let listed = get_ok(&f.app, "/api/v4/bulk_imports").await;
    assert_eq!(listed.body, json!([]), "nothing was recorded");
}

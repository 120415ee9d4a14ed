//! `/-/health` and `/-/readiness` through the real router, engine and store: no token needed, GitLab's
//! paths, and readiness that follows what the engine can do.

use appliance::api::{ApiState, router};
use appliance::engine::{Destination, Engine, EngineConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

fn app(dir: &std::path::Path, destination: bool) -> axum::Router {
    let destination = destination.then(|| Destination {
        url: "http://127.0.0.1:9".parse().unwrap(),
        token: SecretString::from("destination-token".to_string()),
    });
    let engine = Engine::open(EngineConfig::new(dir.to_path_buf(), destination)).unwrap();
    router(ApiState {
        engine,
        token: SecretString::from("api-token".to_string()),
    })
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn health_answers_ok_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), true);
    assert_eq!(
        get(&app, "/-/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    // The probes are outside the token check; the API itself is not.
    let (status, _) = get(&app, "/api/v4/bulk_imports").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn readiness_is_ok_when_the_engine_takes_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), true);
    assert_eq!(
        get(&app, "/-/readiness").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn readiness_is_503_with_the_reason_when_no_migration_could_be_taken() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), false);
    let (status, body) = get(&app, "/-/readiness").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["message"], "no destination instance is configured");
    // Health says only that the process answers.
    assert_eq!(get(&app, "/-/health").await.0, StatusCode::OK);
}

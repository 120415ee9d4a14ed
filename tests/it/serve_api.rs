//! GitLab's bulk_imports API served by the real `appliance serve`, driven as users drive GitLab: curl-style
//! form bodies, JSON, python-gitlab; checked against the destination simulator's own API.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

const API_TOKEN: &str = "test-api-token-0123456789";

/// A running `appliance serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dst: &forge_sim::RunningSim, data: &std::path::Path) -> Server {
    serve_with(dst, data, &[])
}

fn serve_with(dst: &forge_sim::RunningSim, data: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = appliance()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--destination-url",
            &dst.url,
        ])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .env("APPLIANCE_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start appliance serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Server { child, url }
}

async fn api(server: &Server, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}/api/v4/{path}", server.url))
        .header("PRIVATE-TOKEN", API_TOKEN)
}

/// `GET /api/v4/<path>` of the served API, as JSON.
async fn get_json<T: serde::de::DeserializeOwned>(server: &Server, path: &str) -> T {
    api(server, reqwest::Method::GET, path)
        .await
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("a JSON body")
}

/// Starts a migration of `acme` into `imported` with a curl-style form body, as the spec's example does.
async fn start(server: &Server, src: &forge_sim::RunningSim) -> Value {
    let form = [
        ("configuration[url]", src.url.as_str()),
        ("configuration[access_token]", src.owner_token.as_str()),
        ("entities[][source_type]", "group_entity"),
        ("entities[][source_full_path]", "acme"),
        ("entities[][destination_slug]", "acme"),
        ("entities[][destination_namespace]", "imported"),
    ];
    let resp = api(server, reqwest::Method::POST, "bulk_imports")
        .await
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "created");
    assert_eq!(body["source_type"], "gitlab");
    assert!(
        !body.to_string().contains(&src.owner_token),
        "the source token came back"
    );
    body
}

async fn wait_for(server: &Server, id: u64, wanted: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b: Value = get_json(server, &format!("bulk_imports/{id}")).await;
        if b["status"] == wanted {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bulk import {id} stayed {}",
            b["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_started_through_the_api_finishes_with_exact_stats() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let id = start(&server, &src).await["id"].as_u64().unwrap();
    let done = wait_for(&server, id, "finished").await;
    assert_eq!(done["has_failures"], false);

    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);

    let entities: Vec<Value> =
        get_json(&server, &format!("bulk_imports/{id}/entities?sort=asc")).await;
    let (groups, projects): (Vec<&Value>, Vec<&Value>) =
        entities.iter().partition(|e| e["entity_type"] == "group");
    assert_eq!(groups.len(), want.len(), "one entity per group");
    let source_projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(
        projects.len(),
        source_projects.len(),
        "one entity per project"
    );
    for p in &projects {
        // As GitLab shows a project entity: its project at the destination, its group entity.
        assert!(p["project_id"].as_u64().is_some(), "{p}");
        assert!(
            groups.iter().any(|g| g["id"] == p["parent_id"]),
            "a project's parent is its group's entity: {p}"
        );
    }
    assert!(entities.iter().all(|e| e["status"] == "finished"));
    let top = &entities[0];
    assert_eq!(top["source_full_path"], "acme");
    assert_eq!(top["destination_full_path"], "imported/acme");
    let labels = want[""]["labels"].as_array().unwrap().len() as u64;
    assert_eq!(
        top["stats"]["labels"],
        json!({"source": labels, "fetched": labels, "imported": labels})
    );
    let subgroup = entities
        .iter()
        .find(|e| e["source_full_path"] == "acme/backend")
        .expect("subgroup entity");
    assert_eq!(subgroup["parent_id"], top["id"]);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_running_migration_promptly() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&dst, json!({"latency_ms": 200})).await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let id = start(&server, &src).await["id"].as_u64().unwrap();
    wait_for(&server, id, "started").await;
    let resp = api(
        &server,
        reqwest::Method::POST,
        &format!("bulk_imports/{id}/cancel"),
    )
    .await
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "canceled");
    let entities: Vec<Value> = get_json(&server, &format!("bulk_imports/{id}/entities")).await;
    assert!(
        entities.iter().all(|e| e["status"] == "canceled"),
        "{entities:?}"
    );

    // After a moment for requests already in flight, nothing more is written.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        before, after,
        "the destination was still written to after the cancel"
    );
    let b = wait_for(&server, id, "canceled").await;
    assert_eq!(b["status"], "canceled");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_appliance_resumes_the_migration_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&dst, json!({"latency_ms": 150})).await;
    let data = tempfile::tempdir().unwrap();
    let id = {
        let server = serve(&dst, data.path());
        let id = start(&server, &src).await["id"].as_u64().unwrap();
        // Stop it hard once the destination group exists and has some labels.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(g) = get(&dst.url, &dst.owner_token, "groups/imported%2Facme").await
                && !get_all(
                    &dst.url,
                    &dst.owner_token,
                    &format!("groups/{}/labels?include_ancestor_groups=false", g["id"]),
                )
                .await
                .is_empty()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing was written"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        id
    }; // the server is killed here
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let partial = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_ne!(
        counts(&partial),
        counts(&want),
        "the kill landed after the migration was complete"
    );

    set_faults(&dst, json!({})).await;
    let server = serve(&dst, data.path());
    wait_for(&server, id, "finished").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

/// Runs `tests/python/bulk_imports_check.py` (python-gitlab, as a user's script would) against the
/// server with the source's URL and token, then `args`.
async fn python_check(
    server: &Server,
    src: &forge_sim::RunningSim,
    args: &[&str],
) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/bulk_imports_check.py"
    );
    let mut all = vec![
        script.to_string(),
        server.url.clone(),
        API_TOKEN.to_string(),
        src.url.clone(),
        src.owner_token.clone(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || std::process::Command::new("python3").args(&all).output())
        .await
        .unwrap()
        .expect("python3 runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn python_gitlab_drives_the_api_unchanged() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let out = python_check(&server, &src, &["acme", "imported", "--slug", "acme"]).await;
    assert!(
        out.status.success(),
        "python-gitlab check failed (CI installs python-gitlab with pip):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&snapshot(&src.url, &src.owner_token, "acme").await, &got);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_gitlab_migrates_a_project_entity_into_an_existing_group() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let out = python_check(
        &server,
        &src,
        &["acme/backend/api", "imported", "--slug", "api", "--project"],
    )
    .await;
    assert!(
        out.status.success(),
        "python-gitlab check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let issues = |sim: &forge_sim::RunningSim, token: &str, path: &str| {
        let (url, token, path) = (sim.url.clone(), token.to_string(), path.to_string());
        async move {
            let mut iids: Vec<u64> =
                get_all(&url, &token, &format!("projects/{}/issues", enc(&path)))
                    .await
                    .iter()
                    .map(|i| i["iid"].as_u64().unwrap())
                    .collect();
            iids.sort();
            iids
        }
    };
    let want = issues(&src, &src.owner_token, "acme/backend/api").await;
    assert!(!want.is_empty());
    assert_eq!(issues(&dst, &dst.admin_token, "imported/api").await, want);
    let project = get(&dst.url, &dst.admin_token, "projects/imported%2Fapi")
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("(id {} at the destination)", project["id"])),
        "the entity's project_id is the destination project's: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Only the project: no group was created beside it.
    assert!(
        get(&dst.url, &dst.admin_token, "groups/imported%2Fbackend")
            .await
            .is_none()
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn posting_the_same_migration_again_continues_it_without_duplicates() {
    let (src, dst) = (source().await, destination().await);
    let labels = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme%2Fbackend/labels?include_ancestor_groups=false",
    )
    .await;
    let victim = labels[0]["name"].as_str().unwrap().to_string();
    set_faults(
        &dst,
        json!({"reject": [{"method": "POST", "path_contains": "/labels", "body_contains": victim, "status": 422, "message": "Label is invalid"}]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let first = start(&server, &src).await["id"].as_u64().unwrap();
    let done = wait_for(&server, first, "finished").await;
    assert_eq!(done["has_failures"], true);

    set_faults(&dst, json!({})).await;
    let second = start(&server, &src).await["id"].as_u64().unwrap();
    assert_ne!(first, second);
    let done = wait_for(&server, second, "finished").await;
    assert_eq!(done["has_failures"], false, "{done}");
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme").await,
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// An export of several groups through the API makes a bundle with several top-level groups: `verify`
/// accepts it and `replay` loads each into a group of its own, the same as the source.
#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_of_several_groups_verifies_and_replays_each_group() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let export = json!({
        "configuration": {"url": src.url, "access_token": src.owner_token},
        "entities": [
            {"source_type": "group_entity", "source_full_path": "acme/frontend",
             "destination_slug": "frontend", "destination_namespace": "imported"},
            {"source_type": "group_entity", "source_full_path": "acme/backend",
             "destination_slug": "backend", "destination_namespace": "imported"}
        ],
        "export_bundle": "two.bundle"
    });
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .json(&export)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    wait_for(&server, id, "finished").await;
    drop(server);
    let bundle = data.path().join("bundles").join("two.bundle");

    let verified = appliance().arg("verify").arg(&bundle).output().unwrap();
    assert!(verified.status.success(), "{}", explain(&verified));

    let renamed = appliance()
        .args(["replay", "--to", "imported", "--slug", "one"])
        .args(["--destination-url", &dst.url])
        .arg(&bundle)
        .arg("--data")
        .arg(data.path().join("replay"))
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .output()
        .unwrap();
    assert_eq!(renamed.status.code(), Some(1), "{}", explain(&renamed));
    assert!(explain(&renamed).contains("leave --slug out"));

    let replayed = appliance()
        .args(["replay", "--json", "--to", "imported"])
        .args(["--destination-url", &dst.url])
        .arg(&bundle)
        .arg("--data")
        .arg(data.path().join("replay"))
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .output()
        .unwrap();
    assert!(replayed.status.success(), "{}", explain(&replayed));
    for group in ["frontend", "backend"] {
        assert_same_tree(
            &snapshot(&src.url, &src.owner_token, &format!("acme/{group}")).await,
            &snapshot(&dst.url, &dst.owner_token, &format!("imported/{group}")).await,
        );
    }
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_and_replays_run_through_the_same_api() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    // Export: GitLab's request shape plus `export_bundle`.
    let export = json!({
        "configuration": {"url": src.url, "access_token": src.owner_token},
        "entities": [{"source_type": "group_entity", "source_full_path": "acme",
                      "destination_slug": "acme", "destination_namespace": "imported"}],
        "export_bundle": "acme.bundle"
    });
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .json(&export)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    wait_for(&server, id, "finished").await;
    let bundle = data.path().join("bundles").join("acme.bundle");
    assert!(bundle.is_file(), "the export wrote {}", bundle.display());
    // The pages staged for it go once it has finished (they are several times the bundle's size).
    let staged = data.path().join("exports").join(id.to_string());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while staged.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} stays behind",
            staged.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        get(&dst.url, &dst.owner_token, "groups/imported%2Facme")
            .await
            .is_none(),
        "an export writes nothing to the destination"
    );

    // Replay: `configuration[bundle]` instead of a live source, as a form body like curl sends.
    let form = [
        ("configuration[bundle]", "acme.bundle"),
        ("entities[][source_type]", "group_entity"),
        ("entities[][source_full_path]", "acme"),
        ("entities[][destination_slug]", "acme-offline"),
        ("entities[][destination_namespace]", "imported"),
    ];
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let replay = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let done = wait_for(&server, replay, "finished").await;
    assert_eq!(done["has_failures"], false);
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme-offline").await,
    );
    let listed: Vec<Value> = get_json(&server, "bulk_imports?sort=asc").await;
    assert_eq!(listed.len(), 2, "both runs are listed like any migration");

    // A damaged bundle is refused before anything is recorded or written.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(data.path().join("bundles").join("broken.bundle"), bytes).unwrap();
    let broken = [
        ("configuration[bundle]", "broken.bundle"),
        ("entities[][source_type]", "group_entity"),
        ("entities[][source_full_path]", "acme"),
        ("entities[][destination_slug]", "acme-broken"),
        ("entities[][destination_namespace]", "imported"),
    ];
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .form(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let msg = resp.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("cannot be replayed"), "{msg}");
    assert!(
        get(&dst.url, &dst.owner_token, "groups/imported%2Facme-broken")
            .await
            .is_none()
    );
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .json(&json!({"configuration": {"bundle": "../etc/passwd"}, "entities": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        400,
        "a bundle is a file name in the bundle directory, never a path"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_paused_by_an_unreachable_destination_resumes_by_itself() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve_with(
        &dst,
        data.path(),
        &["--http-retries", "1", "--resume-after", "1"],
    );
    set_faults(&dst, json!({"latency_ms": 100})).await;
    let id = start(&server, &src).await["id"].as_u64().unwrap();
    // The destination goes down in the middle of the run.
    set_faults(&dst, json!({"fault_rate": 1.0})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b: Value = get_json(&server, &format!("bulk_imports/{id}")).await;
    assert_eq!(
        b["status"], "started",
        "a paused migration is neither failed nor finished"
    );
    let counts: Value = http()
        .get(format!("{}/-/sim/requests", dst.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        counts["injected"]["server_errors"].as_u64().unwrap_or(0) > 0,
        "{counts}"
    );

    set_faults(&dst, json!({})).await;
    let done = wait_for(&server, id, "finished").await;
    assert_eq!(done["has_failures"], false, "{done}");
    assert_same_tree(
        &snapshot(&src.url, &src.owner_token, "acme").await,
        &snapshot(&dst.url, &dst.owner_token, "imported/acme").await,
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// `appliance migrate` of an instance's group into itself is refused as the API refuses it, before
/// anything is created at the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_a_destination_below_its_source_on_the_same_instance() {
    let sim = destination().await;
    let data = tempfile::tempdir().unwrap();
    let before = sim.sim.read().groups.len();
    let mut child = appliance()
        .args(["migrate", "--group", "imported", "--to", "imported"])
        .args(["--source-url", &sim.url, "--destination-url", &sim.url])
        .arg("--data")
        .arg(data.path())
        .env("APPLIANCE_SOURCE_TOKEN", &sim.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &sim.owner_token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start appliance migrate");
    // A refusal is immediate; a migration nesting itself would never end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "appliance migrate was still running after 60 s ({} groups now)",
                sim.sim.read().groups.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Import failed. Destination cannot be a subgroup of the source group. \
             Change the destination and try again."
        ),
        "{stderr}"
    );
    assert_eq!(sim.sim.read().groups.len(), before, "a group was created");
    sim.shutdown().await;
}

/// `appliance replay` of a bundle exported from an instance's group, into that group on the same
/// instance, is refused as a live migration is, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_a_destination_below_its_source_on_the_same_instance() {
    let sim = destination().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("imported.bundle");
    let mut export = appliance();
    export
        .args(["export", "--group", "imported", "--source-url", &sim.url])
        .arg("--out")
        .arg(&bundle)
        .arg("--data")
        .arg(dir.path().join("export-data"))
        .env("APPLIANCE_SOURCE_TOKEN", &sim.owner_token);
    let out = run(export).await;
    assert!(out.status.success(), "{}", explain(&out));
    let before = sim.sim.read().groups.len();
    let mut replay = appliance();
    replay
        .arg("replay")
        .arg(&bundle)
        .args(["--destination-url", &sim.url, "--to", "imported"])
        .arg("--data")
        .arg(dir.path().join("replay-data"))
        .env("APPLIANCE_DESTINATION_TOKEN", &sim.owner_token);
    let out = run(replay).await;
    assert!(!out.status.success(), "{}", explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Replay failed. Destination cannot be a subgroup of the source group. \
             Change the destination and try again."
        ),
        "{stderr}"
    );
    assert_eq!(sim.sim.read().groups.len(), before, "a group was created");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_says_what_would_move_and_records_nothing() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let body = json!({
        "configuration": {"url": src.url, "access_token": src.owner_token},
        "entities": [{"source_type": "group_entity", "source_full_path": "acme",
                      "destination_slug": "acme", "destination_namespace": "imported"},
                     {"source_type": "group_entity", "source_full_path": "acme/missing",
                      "destination_slug": "m", "destination_namespace": "imported"}],
        "dry_run": true,
    });
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let found: Value = resp.json().await.unwrap();
    assert!(
        !found.to_string().contains(&src.owner_token),
        "the token came back"
    );
    let projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(
        found["entities"][0]["counts"]["projects"],
        projects.len(),
        "{found:#}"
    );
    let blockers = found["blockers"].as_array().unwrap();
    assert_eq!(blockers.len(), 1, "{found:#}");
    assert!(
        blockers[0].as_str().unwrap().contains("acme/missing"),
        "{found:#}"
    );
    // Nothing was recorded, nothing written.
    let listed: Value = api(&server, reqwest::Method::GET, "bulk_imports")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    assert!(
        get(&dst.url, &dst.admin_token, "groups/imported%2Facme")
            .await
            .is_none()
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_was_left_out_on_purpose_is_listed_with_each_entity() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    let body = json!({
        "configuration": {"url": src.url, "access_token": src.owner_token},
        "entities": [{"source_type": "group_entity", "source_full_path": "acme",
                      "destination_slug": "acme", "destination_namespace": "imported",
                      "migrate_projects": false}],
    });
    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    wait_for(&server, id, "finished").await;
    let entities: Value = api(
        &server,
        reqwest::Method::GET,
        &format!("bulk_imports/{id}/entities"),
    )
    .await
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let left_out: Vec<&Value> = entities
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["skipped"].as_array().unwrap())
        .filter(|s| s["relation"] == "projects")
        .collect();
    let projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(left_out.len(), projects.len(), "{entities:#}");
    // Each entity also names the kinds of items a migration leaves out on purpose, with why.
    for e in entities.as_array().unwrap() {
        assert!(
            e["excluded"]
                .as_array()
                .unwrap()
                .contains(&json!({"item": "Webhooks", "why": "sensitive"})),
            "{e:#}"
        );
    }
    for s in left_out {
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .contains("migrate_projects is false")
                && s["source_url"].as_str().unwrap().starts_with(&src.url),
            "{s}"
        );
    }
    src.shutdown().await;
    dst.shutdown().await;
}

//! What an operator watches `appliance serve` with, on the real binary: `/metrics` against a migration
//! between simulators (records counted as the API reports them, requests as the simulators saw them),
//! the OpenAPI document against the router and the running server, request ids and the log formats.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

const API_TOKEN: &str = "observability-api-token-0123456789";

/// A running `appliance serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
    metrics: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `appliance serve` writing into `dst`, with `APPLIANCE_LOG=log`, its standard error into
/// `stderr` (a file) when given.
fn serve(
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    extra: &[&str],
    log: &str,
    stderr: Option<std::fs::File>,
) -> Server {
    let mut cmd = appliance();
    cmd.env("APPLIANCE_LOG", log);
    cmd.args([
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
    .stdout(Stdio::piped());
    match stderr {
        Some(file) => cmd.stderr(file),
        None => cmd.stderr(Stdio::null()),
    };
    let mut child = cmd.spawn().expect("start appliance serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut metrics = None;
    loop {
        let mut line = String::new();
        out.read_line(&mut line).expect("a line from serve");
        let line = line.trim();
        if let Some(at) = line.strip_prefix("metrics on ") {
            metrics = Some(at.to_string());
            continue;
        }
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line: {line:?}"))
            .to_string();
        return Server {
            child,
            url,
            metrics,
        };
    }
}

fn api(server: &Server, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}/api/v4/{path}", server.url))
        .header("PRIVATE-TOKEN", API_TOKEN)
}

async fn get_json(server: &Server, path: &str) -> Value {
    let resp = api(server, reqwest::Method::GET, path)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

fn create_body(src: &forge_sim::RunningSim) -> Value {
    json!({
        "configuration": {"url": src.url, "access_token": src.owner_token},
        "entities": [{
            "source_type": "group_entity",
            "source_full_path": "acme",
            "destination_slug": "acme",
            "destination_namespace": "imported",
            // Projects are listed and reported as skipped: the skipped outcome is counted too.
            "migrate_projects": false,
        }],
    })
}

async fn wait_for_end(server: &Server, id: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let b = get_json(server, &format!("bulk_imports/{id}")).await;
        if b["status"] == "finished" || b["status"] == "failed" {
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

/// The samples of a Prometheus text exposition: (name, labels) -> value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse_metrics(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        out.insert((name, labels), value.parse().expect("a number"));
    }
    out
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_string(), labels)).copied()
}

/// The sum of every sample of `name` whose labels include `having`.
fn sum(samples: &Samples, name: &str, having: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && having
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(server: &Server) -> (String, Samples) {
    let url = server
        .metrics
        .as_ref()
        .expect("serve printed its metrics address");
    let resp = http().get(url).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let samples = parse_metrics(&text);
    (text, samples)
}

/// Requests to a simulator's API (REST and GraphQL) it counted, of every method and path.
async fn sim_api_requests(sim: &forge_sim::RunningSim) -> f64 {
    let counts = sim_requests(sim).await;
    counts["by_request"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            k.split_once(' ')
                .is_some_and(|(_, p)| p.starts_with("/api/"))
        })
        .map(|(_, v)| v.as_u64().unwrap() as f64)
        .sum()
}

fn host_of(sim: &forge_sim::RunningSim) -> String {
    sim.url.strip_prefix("http://").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_records_the_api_reports_and_the_requests_the_forges_saw() {
    let (src, dst) = (source().await, destination().await);
    // One rate-limit wait and one 5xx on the source; one label the destination refuses.
    set_faults(
        &src,
        json!({
            "burst_429": 1,
            "burst_retry_after_secs": 1,
            "reject": [{"method": "GET", "path_contains": "/api/v4/groups/acme", "status": 503,
                        "message": "try again", "times": 1}],
        }),
    )
    .await;
    set_faults(
        &dst,
        json!({"reject": [{"method": "POST", "path_contains": "/labels", "status": 422,
                           "message": "Label is invalid", "times": 1}]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(
        &dst,
        data.path(),
        &["--metrics-listen", "127.0.0.1:0"],
        "warn",
        None,
    );

    // Before any migration: every status at zero, no record.
    let (text, before) = scrape(&server).await;
    assert_eq!(
        sample(&before, "appliance_bulk_imports", &[("status", "finished")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sum(&before, "appliance_records_total", &[]), 0.0, "{text}");

    let resp = api(&server, reqwest::Method::POST, "bulk_imports")
        .json(&create_body(&src))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let done = wait_for_end(&server, id).await;
    assert_eq!(done["status"], "finished", "{done}");
    let (text, after) = scrape(&server).await;
    // Read the simulators' counts before anything else asks them.
    let (src_seen, dst_seen) = (sim_api_requests(&src).await, sim_api_requests(&dst).await);

    // Records: exactly what the API reports, relation by relation (every entity, subgroups too).
    let entities = get_json(&server, &format!("bulk_imports/{id}/entities?per_page=100")).await;
    let entities = entities.as_array().unwrap();
    assert!(entities.len() > 1, "the small dataset has subgroups");
    let mut imported: BTreeMap<String, f64> = BTreeMap::new();
    let mut fetched: BTreeMap<String, f64> = BTreeMap::new();
    let mut failed: BTreeMap<String, f64> = BTreeMap::new();
    for e in entities {
        for (relation, stats) in e["stats"].as_object().unwrap() {
            *imported.entry(relation.clone()).or_default() += stats["imported"].as_f64().unwrap();
            *fetched.entry(relation.clone()).or_default() += stats["fetched"].as_f64().unwrap();
        }
        for f in e["failures"].as_array().unwrap() {
            *failed
                .entry(f["relation"].as_str().unwrap().to_string())
                .or_default() += 1.0;
        }
    }
    assert_eq!(
        failed.get("labels"),
        Some(&1.0),
        "the refused label is a failure"
    );
    assert!(imported["labels"] > 0.0 && imported["epics"] > 0.0);
    for (relation, n) in &imported {
        let got = sample(
            &after,
            "appliance_records_total",
            &[("relation", relation), ("outcome", "imported")],
        );
        assert_eq!(got.unwrap_or(0.0), *n, "{relation} imported\n{text}");
    }
    for (relation, n) in &failed {
        let got = sample(
            &after,
            "appliance_records_total",
            &[("relation", relation), ("outcome", "failed")],
        );
        assert_eq!(got, Some(*n), "{relation} failed\n{text}");
    }
    assert_eq!(
        sum(
            &after,
            "appliance_records_total",
            &[("outcome", "imported")]
        ),
        imported.values().sum::<f64>(),
        "no relation counted that the API does not show\n{text}"
    );
    assert_eq!(
        sum(&after, "appliance_records_total", &[("outcome", "failed")]),
        failed.values().sum::<f64>(),
        "{text}"
    );
    // Every project is listed and skipped (`migrate_projects: false`).
    assert!(fetched["projects"] > 0.0);
    assert_eq!(
        sample(
            &after,
            "appliance_records_total",
            &[("relation", "projects"), ("outcome", "skipped")]
        ),
        Some(fetched["projects"]),
        "{text}"
    );
    assert_eq!(
        sample(&after, "appliance_bulk_imports", &[("status", "finished")]),
        Some(1.0)
    );
    assert_eq!(sum(&after, "appliance_bulk_imports", &[]), 1.0);

    // Requests: every request each simulator's API counted was counted by the appliance, by host.
    let (src_host, dst_host) = (host_of(&src), host_of(&dst));
    assert_eq!(
        sum(
            &after,
            "appliance_forge_requests_total",
            &[("host", &src_host)]
        ),
        src_seen,
        "{text}"
    );
    assert_eq!(
        sum(
            &after,
            "appliance_forge_requests_total",
            &[("host", &dst_host)]
        ),
        dst_seen,
        "{text}"
    );
    assert!(
        sample(
            &after,
            "appliance_forge_requests_total",
            &[("host", &src_host), ("status", "5xx")]
        ) >= Some(1.0)
    );
    assert!(
        sample(
            &after,
            "appliance_forge_requests_total",
            &[("host", &src_host), ("status", "4xx")]
        ) >= Some(1.0)
    );
    assert!(
        sample(
            &after,
            "appliance_forge_requests_total",
            &[("host", &dst_host), ("status", "2xx")]
        ) > Some(10.0)
    );
    assert_eq!(
        sample(
            &after,
            "appliance_forge_retries_total",
            &[("host", &src_host)]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &after,
            "appliance_forge_rate_limit_waits_total",
            &[("host", &src_host)]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &after,
            "appliance_forge_bytes_total",
            &[("host", &src_host), ("direction", "received")]
        ) > Some(1000.0)
    );
    assert!(
        sample(
            &after,
            "appliance_forge_bytes_total",
            &[("host", &dst_host), ("direction", "sent")]
        ) > Some(1000.0)
    );
    // Nothing secret in it.
    for secret in [API_TOKEN, &src.owner_token, &dst.owner_token] {
        assert!(!text.contains(secret));
    }
}

/// The operations of the OpenAPI document: (METHOD, full path).
fn documented_operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let base = doc["servers"][0]["url"].as_str().unwrap();
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.insert((method.to_uppercase(), format!("{base}{path}")), op.clone());
        }
    }
    out
}

#[test]
fn the_openapi_document_has_every_route_of_the_router_and_no_other() {
    let doc: Value = serde_json::from_str(appliance::api::openapi::DOCUMENT).unwrap();
    let documented = documented_operations(&doc);
    let routed: BTreeMap<(String, String), bool> = appliance::api::route_list()
        .into_iter()
        .map(|r| ((r.method.to_string(), r.path.to_string()), r.token))
        .collect();
    let documented_keys: BTreeSet<_> = documented.keys().cloned().collect();
    let routed_keys: BTreeSet<_> = routed.keys().cloned().collect();
    assert_eq!(
        routed_keys.difference(&documented_keys).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes the router serves that src/api/openapi.json does not document"
    );
    assert_eq!(
        documented_keys.difference(&routed_keys).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations src/api/openapi.json documents that the router does not serve"
    );
    // Each operation says whether it needs the token, as the router decides it.
    for (key, token) in routed {
        let public = documented[&key]["security"] == json!([]);
        assert_eq!(
            public, !token,
            "{key:?}: the document and the router disagree on the token"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_answers_on_a_running_server() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path(), &[], "warn", None);
    let served: Value = http()
        .get(format!("{}/api/v4/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(appliance::api::openapi::DOCUMENT).unwrap()
    );
    // A migration, so that bulk import 1 and entity 1 exist.
    let created = api(&server, reqwest::Method::POST, "bulk_imports")
        .json(&create_body(&src))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    wait_for_end(&server, 1).await;

    for ((method, path), op) in documented_operations(&served) {
        let mut concrete = path.clone();
        for p in op["parameters"].as_array().into_iter().flatten() {
            // Parameters are references into components.
            let name = p["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
            let param = &served["components"]["parameters"][name];
            if param["in"] == "path" {
                let example = param["example"].to_string();
                concrete = concrete.replace(&format!("{{{name}}}"), &example);
            }
        }
        assert!(
            !concrete.contains('{'),
            "{concrete}: a path parameter without an example"
        );
        let url = format!("{}{concrete}", server.url);
        let method: reqwest::Method = method.parse().unwrap();
        let mut req = http()
            .request(method.clone(), &url)
            .header("PRIVATE-TOKEN", API_TOKEN);
        if op.get("requestBody").is_some() {
            req = req.json(&create_body(&src));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            !matches!(status, 404 | 405) && status < 500,
            "{method} {concrete} answered {status}: {body}"
        );
        let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert!(
            documented.contains(&&status.to_string()),
            "{method} {concrete} answered {status}, not documented ({documented:?})"
        );
        // Without the token: 401, except for what the document says is public.
        let bare = http()
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let public = op["security"] == json!([]);
        assert_eq!(
            bare == 401,
            !public,
            "{method} {concrete} without a token answered {bare}"
        );
    }
}

fn stderr_file(dir: &std::path::Path) -> (std::path::PathBuf, std::fs::File) {
    let path = dir.join("stderr.log");
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

/// One request that logs inside its handler: a migration refused at once (plain http to a host that
/// is not this machine; nothing is sent there).
async fn refused_request(server: &Server, request_id: Option<&str>) -> String {
    let mut body = create_body_for("http://gitlab.example.invalid");
    body["configuration"]["access_token"] = json!("glpat-source-secret-token");
    let mut req = api(server, reqwest::Method::POST, "bulk_imports").json(&body);
    if let Some(id) = request_id {
        req = req.header("X-Request-Id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 422);
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

fn create_body_for(url: &str) -> Value {
    json!({
        "configuration": {"url": url, "access_token": "t"},
        "entities": [{"source_type": "group_entity", "source_full_path": "acme",
                      "destination_slug": "acme", "destination_namespace": "imported"}],
    })
}

/// Stops the server and returns what it logged.
fn logged(server: Server, path: &std::path::Path) -> String {
    drop(server);
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let (path, file) = stderr_file(data.path());
    let server = serve(
        &dst,
        &data.path().join("d"),
        &["--log-format", "json"],
        "info",
        Some(file),
    );

    let given = refused_request(&server, Some("it-json-1")).await;
    assert_eq!(given, "it-json-1");
    let generated = refused_request(&server, None).await;
    assert_eq!(generated.len(), 32);
    assert!(
        generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    // A request id that could forge log lines is replaced.
    let replaced = refused_request(&server, Some("evil\" id")).await;
    assert_ne!(replaced, "evil\" id");
    assert_eq!(replaced.len(), 32);
    let log = logged(server, &path);

    // Log lines are JSON; what serve says to its operator (where the API token is) stays a sentence.
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.starts_with("API token: "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 6, "{log}");
    for id in [&given, &generated, &replaced] {
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"].as_str() == Some(id.as_str()))
            .collect();
        let messages: Vec<&str> = of_request
            .iter()
            .map(|l| l["fields"]["message"].as_str().unwrap_or(""))
            .collect();
        assert!(
            messages.contains(&"migration refused"),
            "{id}: {messages:?}\n{log}"
        );
        assert!(messages.contains(&"answered"), "{id}: {messages:?}\n{log}");
        assert!(
            of_request
                .iter()
                .all(|l| l["span"]["path"] == "/api/v4/bulk_imports")
        );
    }
    assert!(
        !log.contains("glpat-source-secret-token") && !log.contains(API_TOKEN),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn human_logs_in_a_file_are_plain_and_name_the_request_id() {
    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let (path, file) = stderr_file(data.path());
    let server = serve(&dst, &data.path().join("d"), &[], "info", Some(file));
    refused_request(&server, Some("it-plain-1")).await;
    let log = logged(server, &path);
    assert!(!log.contains('\x1b'), "colour codes in a file: {log:?}");
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("migration refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("request_id=it-plain-1"), "{log}");
    assert!(
        !log.contains("glpat-source-secret-token") && !log.contains(API_TOKEN),
        "{log}"
    );
}

#[test]
fn help_names_the_log_settings() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
    ] {
        let out = appliance().args(args).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("APPLIANCE_LOG"), "{args:?}: {help}");
        assert!(help.contains("--log-format"), "{args:?}: {help}");
    }
    let out = appliance().args(["serve", "--help"]).output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("--metrics-listen")
    );
}

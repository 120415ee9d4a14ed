//! A corpus of malformed requests to the bulk_imports API, each with the answer it must get: GitLab's
//! status code and a GitLab-shaped JSON body (`{"error": ...}` for a parameter Grape refuses,
//! `{"message": ...}` otherwise) that says what is wrong. Never a 500, never plain text, and none of
//! them records a migration. The requests go through the real router with a real engine and store;
//! none of them reaches a forge (every refusal here is decided before one is asked).

use appliance::api::{ApiState, router};
use appliance::engine::{Destination, Engine, EngineConfig};
use appliance::forge::client::RetryPolicy;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

const API_TOKEN: &str = "corpus-api-token";
/// The destination instance. Nothing listens there: a request that got as far as asking it would
/// answer 503, which no case below expects.
const DESTINATION: &str = "http://127.0.0.1:9";
/// The same instance as `DESTINATION`, spelt differently.
const SAME_INSTANCE: &str = "http://localhost:9/";
const SOURCE_TOKEN: &str = "glpat-corpus-source-secret";

#[derive(Clone, Copy)]
enum Auth {
    Token,
    None,
    Header(&'static str, &'static [u8]),
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    auth: Auth,
    content_type: Option<&'static [u8]>,
    body: Vec<u8>,
    status: u16,
    /// `error` (Grape's validation shape), `message` (everything else), or "" for a success.
    key: &'static str,
    /// A substring of the answer's message (or, for a success, of its raw body).
    says: String,
}

const JSON: Option<&[u8]> = Some(b"application/json");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

fn entity() -> Value {
    json!({"source_type": "group_entity", "source_full_path": "src/group",
           "destination_slug": "new-group", "destination_namespace": "dest-ns"})
}

/// A request body in GitLab's shape from `configuration` and `entities`.
fn body(configuration: Value, entities: Value) -> Vec<u8> {
    json!({"configuration": configuration, "entities": entities})
        .to_string()
        .into_bytes()
}

fn configuration(url: &str) -> Value {
    json!({"url": url, "access_token": SOURCE_TOKEN})
}

/// A valid request with one field of its entity replaced (`Value::Null` removes it).
fn with_entity(field: &str, value: Value) -> Vec<u8> {
    let mut e = entity();
    if value.is_null() {
        e.as_object_mut().unwrap().remove(field);
    } else {
        e[field] = value;
    }
    body(configuration("https://source.example"), json!([e]))
}

/// A valid request with its configuration replaced.
fn with_configuration(configuration: Value) -> Vec<u8> {
    body(configuration, json!([entity()]))
}

fn post(what: &'static str, ct: Option<&'static [u8]>, body: Vec<u8>) -> Case {
    Case {
        what,
        method: "POST",
        path: "/api/v4/bulk_imports".into(),
        auth: Auth::Token,
        content_type: ct,
        body,
        status: 400,
        key: "error",
        says: String::new(),
    }
}

fn get(what: &'static str, path: &str) -> Case {
    Case {
        what,
        method: "GET",
        path: path.into(),
        auth: Auth::Token,
        content_type: None,
        body: Vec::new(),
        status: 400,
        key: "error",
        says: String::new(),
    }
}

impl Case {
    fn answers(mut self, status: u16, key: &'static str, says: &str) -> Case {
        self.status = status;
        self.key = key;
        self.says = says.to_string();
        self
    }
    fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
    fn auth(mut self, auth: Auth) -> Case {
        self.auth = auth;
        self
    }
}

const SLUG_RULE: &str = "can only include non-accented letters, digits, '_', '-' and '.'";
const PATH_RULE: &str =
    "must be a relative path and not include protocol, sub-domain, or domain information";
const TOO_LONG: &str = "is expected to have length less than or equal to 255";
const BAD_URL: &str = "Invalid source URL. Enter only the base URL of the source GitLab instance.";
const UNDER_SOURCE: &str = "Import failed: Destination cannot be a subgroup of the source group. \
    Change the destination and try again.";

fn corpus() -> Vec<Case> {
    let form = |s: &str| s.as_bytes().to_vec();
    vec![
        // Who may ask.
        post("no token", JSON, with_entity("x", json!(1)))
            .auth(Auth::None)
            .answers(401, "message", "401 Unauthorized"),
        get("a wrong token", "/api/v4/bulk_imports")
            .auth(Auth::Header("private-token", b"not-the-token"))
            .answers(401, "message", "401 Unauthorized"),
        get("basic auth", "/api/v4/bulk_imports")
            .auth(Auth::Header("authorization", b"Basic Y29ycHVzOnRva2Vu"))
            .answers(401, "message", "401 Unauthorized"),
        get("an empty bearer", "/api/v4/bulk_imports")
            .auth(Auth::Header("authorization", b"Bearer "))
            .answers(401, "message", "401 Unauthorized"),
        get("a token that is not text", "/api/v4/bulk_imports")
            .auth(Auth::Header("private-token", b"\xff\xfe"))
            .answers(401, "message", "401 Unauthorized"),
        // Each required parameter missing.
        post("an empty JSON object", JSON, b"{}".to_vec())
            .answers(400, "error", "configuration is missing, configuration[url] is missing"),
        post(
            "no url",
            JSON,
            with_configuration(json!({"access_token": SOURCE_TOKEN})),
        )
        .answers(400, "error", "configuration[url] is missing"),
        post(
            "no access token",
            JSON,
            with_configuration(json!({"url": "https://source.example"})),
        )
        .answers(400, "error", "configuration[access_token] is missing"),
        post(
            "no entities",
            JSON,
            json!({"configuration": configuration("https://source.example")})
                .to_string()
                .into_bytes(),
        )
        .answers(400, "error", "entities is missing"),
        post(
            "an empty entity list",
            JSON,
            body(configuration("https://source.example"), json!([])),
        )
        .answers(400, "error", "entities is missing"),
        post("no source type", JSON, with_entity("source_type", Value::Null))
            .answers(400, "error", "entities[0][source_type] is missing"),
        post(
            "no source path",
            JSON,
            with_entity("source_full_path", Value::Null),
        )
        .answers(400, "error", "entities[0][source_full_path] is missing"),
        post(
            "no destination namespace",
            JSON,
            with_entity("destination_namespace", Value::Null),
        )
        .answers(400, "error", "entities[0][destination_namespace] is missing"),
        post(
            "neither slug nor name",
            JSON,
            with_entity("destination_slug", Value::Null),
        )
        .answers(400, "error", "are missing, at least one parameter must be provided"),
        post(
            "both slug and name",
            JSON,
            with_entity("destination_name", json!("other")),
        )
        .answers(400, "error", "are mutually exclusive"),
        // Wrong types.
        post("configuration as a string", JSON, with_configuration(json!("x")))
            .answers(400, "error", "configuration is invalid"),
        post(
            "entities as a string",
            JSON,
            body(configuration("https://source.example"), json!("group")),
        )
        .answers(400, "error", "entities is invalid"),
        post(
            "an entity that is a string",
            JSON,
            body(configuration("https://source.example"), json!(["group"])),
        )
        .answers(400, "error", "entities[0] is invalid"),
        post(
            "a url that is an array",
            JSON,
            with_configuration(json!({"url": ["https://a.example"], "access_token": "t"})),
        )
        .answers(400, "error", "configuration[url] is invalid"),
        post(
            "a source path that is a hash",
            JSON,
            with_entity("source_full_path", json!({"a": 1})),
        )
        .answers(400, "error", "entities[0][source_full_path] is invalid"),
        post(
            "a form hash given a string first",
            FORM,
            form("configuration=x&configuration[url]=y"),
        )
        .answers(400, "error", "expected Hash (got String) for param `configuration'"),
        post(
            "a form array given a string first",
            FORM,
            form("entities=x&entities[][source_type]=group_entity"),
        )
        .answers(400, "error", "expected Array (got String) for param `entities'"),
        post(
            "a flag that is not a boolean",
            JSON,
            with_entity("migrate_projects", json!("maybe")),
        )
        .answers(400, "error", "entities[0][migrate_projects] is invalid"),
        post(
            "an unknown source type",
            JSON,
            with_entity("source_type", json!("user_entity")),
        )
        .answers(400, "error", "entities[0][source_type] does not have a valid value"),
        post(
            "a project path without a namespace",
            JSON,
            body(
                configuration("https://source.example"),
                json!([{"source_type": "project_entity", "source_full_path": "lonely",
                        "destination_slug": "p", "destination_namespace": "dest-ns"}]),
            ),
        )
        .answers(400, "error", PATH_RULE),
        post("a JSON array", JSON, b"[1, 2]".to_vec())
            .answers(400, "error", "configuration is missing"),
        // Source URLs the appliance will not send a token to.
        post(
            "a URL without a scheme",
            JSON,
            with_configuration(configuration("gitlab.example.com")),
        )
        .answers(422, "message", BAD_URL),
        post(
            "an ftp URL",
            JSON,
            with_configuration(configuration("ftp://gitlab.example.com")),
        )
        .answers(422, "message", "unsupported scheme `ftp`; use https"),
        post(
            "credentials in the URL",
            JSON,
            with_configuration(configuration("https://root:hunter2@gitlab.example.com")),
        )
        .answers(422, "message", "carries credentials"),
        post(
            "plain http to another host",
            JSON,
            with_configuration(configuration("http://gitlab.example.com")),
        )
        .answers(422, "message", "--allow-http"),
        // Slugs, names and paths.
        post(
            "a slug of 300 characters",
            JSON,
            with_entity("destination_slug", json!("a".repeat(300))),
        )
        .answers(400, "error", &format!("entities[0][destination_slug] {TOO_LONG}")),
        post(
            "a name of 256 characters",
            FORM,
            form(&format!(
                "configuration[url]=https://s.example&configuration[access_token]=t\
                 &entities[][source_type]=group_entity&entities[][source_full_path]=g\
                 &entities[][destination_namespace]=ns&entities[][destination_name]={}",
                "b".repeat(256)
            )),
        )
        .answers(400, "error", &format!("entities[0][destination_name] {TOO_LONG}")),
        post(
            "a slug with a space",
            JSON,
            with_entity("destination_slug", json!("new group")),
        )
        .answers(400, "error", SLUG_RULE),
        post("an empty slug", JSON, with_entity("destination_slug", json!("")))
            .answers(400, "error", SLUG_RULE),
        post(
            "a slug with an accent",
            JSON,
            with_entity("destination_slug", json!("groupé")),
        )
        .answers(400, "error", SLUG_RULE),
        post(
            "a slug ending in .git",
            JSON,
            with_entity("destination_slug", json!("repo.git")),
        )
        .answers(400, "error", SLUG_RULE),
        post(
            "a slug with a NUL byte",
            JSON,
            with_entity("destination_slug", json!("a\u{0}b")),
        )
        .answers(400, "error", SLUG_RULE),
        post(
            "a namespace that is a URL",
            JSON,
            with_entity("destination_namespace", json!("https://example.com/ns")),
        )
        .answers(400, "error", "entities[0][destination_namespace] must be a relative path"),
        post(
            "a namespace with an empty segment",
            JSON,
            with_entity("destination_namespace", json!("a//b")),
        )
        .answers(400, "error", "entities[0][destination_namespace] must be a relative path"),
        post(
            "a source path climbing up",
            JSON,
            with_entity("source_full_path", json!("../../etc")),
        )
        .answers(400, "error", "entities[0][source_full_path] must be a relative path"),
        // Destinations that cannot be written.
        post(
            "a destination under the source on the same instance",
            JSON,
            body(
                configuration(SAME_INSTANCE),
                json!([{"source_type": "group_entity", "source_full_path": "Imported",
                        "destination_slug": "copy", "destination_namespace": "imported/team"}]),
            ),
        )
        .answers(422, "message", UNDER_SOURCE),
        post(
            "the source group itself as the destination",
            FORM,
            form(
                "configuration[url]=http%3A%2F%2F127.0.0.1%3A9&configuration[access_token]=t\
                 &entities[][source_type]=group_entity&entities[][source_full_path]=imported\
                 &entities[][destination_slug]=imported&entities[][destination_namespace]=",
            ),
        )
        .answers(422, "message", UNDER_SOURCE),
        post(
            "two entities with one destination",
            JSON,
            body(
                configuration("https://source.example"),
                json!([entity(), {"source_type": "group_entity", "source_full_path": "other",
                                  "destination_slug": "New-Group", "destination_namespace": "dest-ns"}]),
            ),
        )
        .answers(
            422,
            "message",
            "Import failed. 'dest-ns/New-Group' is the destination of more than one entity.",
        ),
        // Bodies that are not what they claim.
        post("a body over the limit", JSON, {
            let mut b = b"{\"user_map\": \"".to_vec();
            b.resize(3 * 1024 * 1024, b'a');
            b.extend_from_slice(b"\"}");
            b
        })
        .answers(413, "message", "413 Request Entity Too Large"),
        post("JSON cut short", JSON, b"{\"configuration\": ".to_vec())
            .answers(400, "error", "message body does not match declared format"),
        post("a form sent as JSON", JSON, form("configuration[url]=x"))
            .answers(400, "error", "message body does not match declared format"),
        post("a number too large for JSON", JSON, b"{\"page\": 1e999}".to_vec())
            .answers(400, "error", "message body does not match declared format"),
        post(
            "JSON that is not UTF-8",
            JSON,
            b"{\"configuration\": \"\xff\xfe\"}".to_vec(),
        )
        .answers(400, "error", "message body does not match declared format"),
        post("JSON nested 100000 deep", JSON, {
            let mut b = vec![b'['; 100_000];
            b.extend(vec![b']'; 100_000]);
            b
        })
        .answers(400, "error", "recursion limit exceeded"),
        post("a malformed %-escape", FORM, form("configuration[url]=%ZZ"))
            .answers(400, "error", "invalid %-encoding"),
        post(
            "a form value that is not UTF-8",
            FORM,
            b"configuration[access_token]=%FF%FE".to_vec(),
        )
        .answers(400, "error", "invalid byte sequence in UTF-8"),
        post(
            "raw bytes that are not UTF-8 without a content type",
            None,
            b"entities[][source_full_path]=\xc3\x28".to_vec(),
        )
        .answers(400, "error", "invalid byte sequence in UTF-8"),
        post(
            "form keys nested 40 deep",
            FORM,
            form(&format!("a{}=1", "[b]".repeat(40))),
        )
        .answers(400, "error", "the parameters are nested too deeply"),
        post("plain text", Some(b"text/plain"), form("hello"))
            .answers(415, "error", "The provided content-type 'text/plain' is not supported."),
        post(
            "multipart",
            Some(b"multipart/form-data; boundary=x"),
            form("--x--"),
        )
        .answers(415, "error", "is not supported"),
        post(
            "a content type that is not text",
            Some(b"application/\xffjson"),
            b"{}".to_vec(),
        )
        .answers(415, "error", "is not supported"),
        // Extensions: bundle names are file names, never paths.
        post(
            "a replay bundle path climbing up",
            FORM,
            form(
                "configuration[bundle]=../../etc/passwd&entities[][source_type]=group_entity\
                 &entities[][source_full_path]=g&entities[][destination_slug]=g\
                 &entities[][destination_namespace]=ns",
            ),
        )
        .answers(400, "error", "configuration[bundle] is invalid"),
        post("an absolute export bundle path", JSON, {
            let mut b: Value = serde_json::from_slice(&with_entity("x", json!(1))).unwrap();
            b["export_bundle"] = json!("/etc/passwd");
            b.to_string().into_bytes()
        })
        .answers(400, "error", "export_bundle is invalid"),
        post("a user map that is a number", JSON, {
            let mut b: Value = serde_json::from_slice(&with_entity("x", json!(1))).unwrap();
            b["user_map"] = json!(7);
            b.to_string().into_bytes()
        })
        .answers(400, "error", "user_map is invalid"),
        post("a user map entry without a destination", JSON, {
            let mut b: Value = serde_json::from_slice(&with_entity("x", json!(1))).unwrap();
            b["user_map"] = json!([{"source": "ada"}]);
            b.to_string().into_bytes()
        })
        .answers(400, "error", "each entry needs a source and a destination"),
        // Listings and ids.
        get("a page past i64", "/api/v4/bulk_imports?page=99999999999999999999")
            .answers(400, "error", "page is invalid"),
        get("a per_page past i64", "/api/v4/bulk_imports?per_page=99999999999999999999")
            .answers(400, "error", "per_page is invalid"),
        get("per_page zero", "/api/v4/bulk_imports/entities?per_page=0")
            .answers(400, "error", "per_page has a value not allowed"),
        get("a negative page is the first", "/api/v4/bulk_imports?page=-3").answers(200, "", "[]"),
        get(
            "the largest page",
            "/api/v4/bulk_imports?page=9223372036854775807&per_page=100",
        )
        .answers(200, "", "[]"),
        get("an unknown sort", "/api/v4/bulk_imports?sort=sideways")
            .answers(400, "error", "sort does not have a valid value"),
        get("an unknown status", "/api/v4/bulk_imports?status=bogus")
            .answers(400, "error", "status does not have a valid value"),
        get("an unknown bulk import", "/api/v4/bulk_imports/999")
            .answers(404, "message", "404 Not found"),
        get("a negative id", "/api/v4/bulk_imports/-1/entities")
            .answers(404, "message", "404 Not found"),
        get("a non-numeric id", "/api/v4/bulk_imports/abc")
            .answers(400, "error", "import_id is invalid"),
        get("an id past i64", "/api/v4/bulk_imports/99999999999999999999")
            .answers(400, "error", "import_id is invalid"),
        get("a non-numeric entity id", "/api/v4/bulk_imports/1/entities/x/failures")
            .answers(400, "error", "entity_id is invalid"),
        get("an id that is not UTF-8", "/api/v4/bulk_imports/%FF")
            .answers(400, "message", "400 Bad Request"),
        post("cancel an unknown import", None, Vec::new())
            .answers(404, "message", "404 Not Found")
            .path("/api/v4/bulk_imports/12345/cancel"),
        // Routes and methods.
        get("an unknown route", "/api/v4/nothing_here").answers(404, "error", "404 Not Found"),
        get(
            "a path below the deepest route",
            "/api/v4/bulk_imports/1/entities/1/failures/2",
        )
        .answers(404, "error", "404 Not Found"),
        get("DELETE the list", "/api/v4/bulk_imports")
            .method("DELETE")
            .answers(405, "error", "405 Not Allowed"),
        get("PUT an import", "/api/v4/bulk_imports/1")
            .method("PUT")
            .answers(405, "error", "405 Not Allowed"),
        get("GET cancel", "/api/v4/bulk_imports/1/cancel")
            .answers(405, "error", "405 Not Allowed"),
    ]
}

impl Case {
    fn path(mut self, path: &str) -> Case {
        self.path = path.into();
        self
    }
}

#[tokio::test]
async fn every_malformed_request_gets_gitlabs_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(
        dir.path().to_path_buf(),
        Some(Destination {
            url: DESTINATION.parse().unwrap(),
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

    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let mut req = Request::builder()
            .method(case.method)
            .uri(&case.path)
            .header("host", "appliance.test");
        match case.auth {
            Auth::Token => req = req.header("private-token", API_TOKEN),
            Auth::None => {}
            Auth::Header(name, value) => {
                req = req.header(name, HeaderValue::from_bytes(value).unwrap())
            }
        }
        if let Some(ct) = case.content_type {
            req = req.header("content-type", HeaderValue::from_bytes(ct).unwrap());
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(case.body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let said = body
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get(case.key))
            .and_then(Value::as_str);
        let ok = status != StatusCode::INTERNAL_SERVER_ERROR
            && status.as_u16() == case.status
            && content_type.starts_with("application/json")
            && if case.key.is_empty() {
                !body.is_null() && raw.contains(&case.says)
            } else {
                said.is_some_and(|m| m.contains(&case.says))
            }
            && !raw.contains(SOURCE_TOKEN)
            && !raw.contains("hunter2");
        if !ok {
            wrong.push(format!(
                "{}: {} {} -> {status} {content_type} {}",
                case.what,
                case.method,
                case.path,
                raw.chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} answers were not GitLab's:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        engine
            .store()
            .list_bulk_imports(&Default::default())
            .unwrap()
            .items
            .is_empty(),
        "a refused request recorded a migration"
    );
}

//! GitLab's GraphQL API (`POST` or `GET /api/graphql`) for the part of the schema the appliance uses:
//! `group(fullPath:)` with its `iterationCadences` and `iterations` connections (cursor pagination with
//! `first`/`after`, `last`/`before` and `pageInfo`), `project(fullPath:)` with its issues' design
//! collections (`designs.rs`), and the `iterationCadenceCreate` and `iterationCreate` mutations. Not a general GraphQL engine: a document is parsed (`document.rs`),
//! checked against the schema the way graphql-ruby checks it (`schema.rs`), and each field is resolved
//! from the store (`iterations.rs`); the response carries only what was selected.
//!
//! Answers are GitLab's: `{"data": ...}`, `{"errors": [{"message", "locations", "path"}]}` for
//! documents that do not fit the schema (HTTP 200, nothing executed), and mutation payloads whose
//! `errors` list validation failures. A token is required as for REST (`PRIVATE-TOKEN` or
//! `Authorization: Bearer`); the simulator has no anonymous access, so a missing token is refused like
//! a wrong one. It never serves REST and never touches fault injection.

mod designs;
pub mod document;
mod iterations;
pub mod schema;

use axum::http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::auth;
use crate::error::ApiError;
use crate::model::{
    Design, DesignVersion, Group, Issue, Iteration, IterationCadence, Project, User,
};
use crate::routes::request::form_decode;
use crate::routes::{Reply, ReplyBody};
use crate::state::{Sim, Store};
use document::{Field, OperationKind, Pos};
use schema::GraphQlError;

/// GitLab refuses longer documents (`GraphqlController::MAX_QUERY_SIZE`).
const MAX_QUERY_SIZE: usize = 10_000;
/// GitLab's `default_max_page_size`: the most nodes one page of a connection holds.
pub const MAX_PAGE_SIZE: usize = 100;
/// What graphql-ruby says when a resolver finds nothing the user may see.
pub const NOT_AVAILABLE: &str = "The resource that you are attempting to access does not exist or you don't have permission to perform this action";

/// Serves one request to `/api/graphql`.
pub fn handle(
    sim: &Sim,
    method: &Method,
    headers: &HeaderMap,
    query: &[(String, String)],
    body: &[u8],
) -> Reply {
    if method != Method::POST && method != Method::GET {
        return reply(StatusCode::NOT_FOUND, ApiError::NoRoute.body());
    }
    let user_id = match auth::authenticate(sim, headers, query) {
        Ok(user) => user,
        Err(ApiError::Unauthorized) => return failure(StatusCode::UNAUTHORIZED, "Invalid token"),
        Err(other) => return failure(other.status(), &other.to_string()),
    };
    let request = match read_request(method, headers, query, body) {
        Ok(r) => r,
        Err(message) => return failure(StatusCode::UNPROCESSABLE_ENTITY, &message),
    };
    if request.query.chars().count() > MAX_QUERY_SIZE {
        return failure(StatusCode::UNPROCESSABLE_ENTITY, "Query too large");
    }
    let operations = match document::parse(&request.query) {
        Ok(ops) => ops,
        Err(e) => return errors(vec![GraphQlError::at(e.message, e.pos, &[])]),
    };
    let op = match &request.operation_name {
        Some(name) => operations.iter().find(|o| o.name.as_deref() == Some(name)),
        None if operations.len() == 1 => operations.first(),
        None => {
            return errors(vec![GraphQlError {
                message: "An operation name is required".into(),
                pos: None,
                path: Vec::new(),
            }]);
        }
    };
    let Some(op) = op else {
        return errors(vec![GraphQlError {
            message: format!(
                "No operation named \"{}\"",
                request.operation_name.unwrap_or_default()
            ),
            pos: None,
            path: Vec::new(),
        }]);
    };
    if op.kind == OperationKind::Mutation && method == Method::GET {
        return failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Mutations are forbidden in GET requests",
        );
    }
    // Declared defaults stand in for variables the request left out.
    let mut variables = request.variables;
    for var in &op.variables {
        if let (false, Some(default)) = (variables.contains_key(&var.name), &var.default) {
            variables.insert(var.name.clone(), default.resolve(&Map::new()));
        }
    }
    let problems = schema::validate(op, &variables);
    if !problems.is_empty() {
        return errors(problems);
    }
    let mut field_errors = Vec::new();
    let mut data = Map::new();
    let root = match op.kind {
        OperationKind::Query => "query",
        OperationKind::Mutation => "mutation",
    };
    for field in &op.selections {
        let path = vec![field.key().to_string()];
        let args = arguments(field, &variables);
        // A mutation runs to completion (taking the write lock) before anything is read back.
        let resolved = match (op.kind, field.name.as_str()) {
            (_, "__typename") => Ok(Resolved::Value(json!(if root == "query" {
                "Query"
            } else {
                "Mutation"
            }))),
            (OperationKind::Query, "group") => {
                let store = sim.read();
                Ok(iterations::group(&store, user_id, &args))
            }
            (OperationKind::Query, "project") => {
                let store = sim.read();
                Ok(designs::project(&store, user_id, &args))
            }
            (OperationKind::Mutation, "iterationCadenceCreate") => {
                iterations::create_cadence(sim, user_id, input(&args)).map(echo_client_id(&args))
            }
            (OperationKind::Mutation, "iterationCadenceUpdate") => {
                iterations::update_cadence(sim, user_id, input(&args)).map(echo_client_id(&args))
            }
            (OperationKind::Mutation, "iterationCreate") => {
                iterations::create_iteration(sim, user_id, input(&args)).map(echo_client_id(&args))
            }
            (_, other) => Err(format!("Field '{other}' is not served by this simulator")),
        };
        let store = sim.read();
        let exec = Exec {
            sim,
            store: &store,
            user_id,
            variables: &variables,
        };
        let value = match resolved {
            Ok(r) => exec.complete(r, field, &path, &mut field_errors),
            Err(message) => {
                field_errors.push(GraphQlError::at(message, field.pos, &path));
                Value::Null
            }
        };
        data.insert(field.key().to_string(), value);
    }
    let mut body = json!({ "data": data });
    if !field_errors.is_empty() {
        body["errors"] = render_errors(&field_errors);
    }
    reply(StatusCode::OK, body)
}

struct Request {
    query: String,
    variables: Map<String, Value>,
    operation_name: Option<String>,
}

/// The document, variables and operation name from a JSON body, a form body or the query string.
fn read_request(
    method: &Method,
    headers: &HeaderMap,
    query: &[(String, String)],
    body: &[u8],
) -> Result<Request, String> {
    let mut fields: Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    if method == Method::POST && !body.is_empty() {
        if json_body {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => fields.extend(map),
                Ok(Value::Array(_)) => {
                    return Err("Batched queries are not supported by this simulator".into());
                }
                _ => return Err("The request body is not a JSON object".into()),
            }
        } else {
            for pair in String::from_utf8_lossy(body).split('&') {
                if let Some((k, v)) = pair.split_once('=') {
                    fields.insert(form_decode(k), Value::String(form_decode(v)));
                }
            }
        }
    }
    let variables = match fields.remove("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        // GitLab also takes the variables as a JSON string.
        Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
        Some(Value::String(text)) => match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            _ => return Err(format!("Unexpected variables: {text}")),
        },
        Some(other) => return Err(format!("Unexpected variables: {other}")),
    };
    Ok(Request {
        query: fields
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        variables,
        operation_name: fields
            .get("operationName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    })
}

/// A field's arguments, variables resolved.
fn arguments(field: &Field, variables: &Map<String, Value>) -> Map<String, Value> {
    field
        .arguments
        .iter()
        .map(|(k, v)| (k.clone(), v.resolve(variables)))
        .collect()
}

fn input(args: &Map<String, Value>) -> Map<String, Value> {
    args.get("input")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Puts the input's `clientMutationId` into a mutation's payload.
fn echo_client_id(args: &Map<String, Value>) -> impl FnOnce(Resolved) -> Resolved {
    let id = input(args)
        .get("clientMutationId")
        .cloned()
        .unwrap_or(Value::Null);
    move |resolved| match resolved {
        Resolved::Object(Obj::Payload {
            type_name,
            field,
            record,
            errors,
            ..
        }) => Resolved::Object(Obj::Payload {
            type_name,
            field,
            record,
            errors,
            client_mutation_id: id,
        }),
        other => other,
    }
}

fn reply(status: StatusCode, body: Value) -> Reply {
    Reply {
        status,
        body: ReplyBody::Json(body),
        headers: Vec::new(),
    }
}

/// GitLab's controller-level refusals: `{"errors":[{"message":...}]}` with a status.
fn failure(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "errors": [{ "message": message }] }))
}

/// A document that did not pass: errors only, HTTP 200, as graphql-ruby answers.
fn errors(problems: Vec<GraphQlError>) -> Reply {
    reply(
        StatusCode::OK,
        json!({ "errors": render_errors(&problems) }),
    )
}

fn render_errors(problems: &[GraphQlError]) -> Value {
    Value::Array(
        problems
            .iter()
            .map(|e| {
                let mut out = json!({ "message": e.message });
                if let Some(Pos { line, column }) = e.pos {
                    out["locations"] = json!([{ "line": line, "column": column }]);
                }
                if !e.path.is_empty() {
                    out["path"] = json!(e.path);
                }
                out
            })
            .collect(),
    )
}

/// An object a field resolved to; it owns what it shows, so it outlives the lock it was read under.
#[derive(Debug, Clone)]
pub enum Obj {
    Group(Box<Group>),
    Cadence(IterationCadence),
    Iteration(Iteration),
    Project(Box<Project>),
    Issue(Box<Issue>),
    /// An issue's design collection (by the issue).
    DesignCollection(Box<Issue>),
    /// A design as seen at a version (by id; none when its issue has no version).
    Design(Box<Design>, Option<u64>),
    DesignVersion(Box<DesignVersion>),
    User(Box<User>),
    Connection {
        type_name: &'static str,
        edges: Vec<(String, Obj)>,
        page: PageInfo,
    },
    Edge {
        type_name: &'static str,
        cursor: String,
        node: Box<Obj>,
    },
    PageInfo(PageInfo),
    /// A mutation's answer: the record (under `field`) when created, else the reasons why not.
    Payload {
        type_name: &'static str,
        field: &'static str,
        record: Option<Box<Obj>>,
        errors: Vec<String>,
        /// Echoed from the input, as every GitLab mutation does.
        client_mutation_id: Value,
    },
}

#[derive(Debug, Clone, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// What a field resolves to.
pub enum Resolved {
    Value(Value),
    Object(Obj),
    Objects(Vec<Obj>),
    Null,
}

/// Everything resolvers read while the response is completed.
pub struct Exec<'a> {
    pub sim: &'a Sim,
    pub store: &'a Store,
    /// Who asks (what they may see decides some fields).
    pub user_id: u64,
    pub variables: &'a Map<String, Value>,
}

impl Exec<'_> {
    fn complete(
        &self,
        resolved: Resolved,
        field: &Field,
        path: &[String],
        errors: &mut Vec<GraphQlError>,
    ) -> Value {
        match resolved {
            Resolved::Value(v) => v,
            Resolved::Null => Value::Null,
            Resolved::Object(obj) => self.project(&obj, &field.selections, path, errors),
            Resolved::Objects(list) => Value::Array(
                list.iter()
                    .enumerate()
                    .map(|(i, obj)| {
                        let mut at = path.to_vec();
                        at.push(i.to_string());
                        self.project(obj, &field.selections, &at, errors)
                    })
                    .collect(),
            ),
        }
    }

    /// The selected fields of `obj`, in the order asked.
    fn project(
        &self,
        obj: &Obj,
        selections: &[Field],
        path: &[String],
        errors: &mut Vec<GraphQlError>,
    ) -> Value {
        let mut out = Map::new();
        for sel in selections {
            let mut at = path.to_vec();
            at.push(sel.key().to_string());
            let value = if sel.name == "__typename" {
                json!(obj.type_name())
            } else {
                match self.field(obj, &sel.name, &arguments(sel, self.variables)) {
                    Ok(r) => self.complete(r, sel, &at, errors),
                    Err(message) => {
                        errors.push(GraphQlError::at(message, sel.pos, &at));
                        Value::Null
                    }
                }
            };
            out.insert(sel.key().to_string(), value);
        }
        Value::Object(out)
    }

    fn field(&self, obj: &Obj, name: &str, args: &Map<String, Value>) -> Result<Resolved, String> {
        let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
        Ok(match (obj, name) {
            (Obj::Group(g), _) => return iterations::group_field(self, g, name, args),
            (Obj::Cadence(c), _) => Resolved::Value(iterations::cadence_field(c, name)),
            (Obj::Iteration(i), _) => return Ok(iterations::iteration_field(self, i, name)),
            (Obj::Project(p), _) => return designs::project_field(self, p, name, args),
            (Obj::Issue(i), _) => return Ok(designs::issue_field(self, i, name)),
            (Obj::DesignCollection(i), _) => {
                return designs::collection_field(self, i, name, args);
            }
            (Obj::Design(d, at), _) => return designs::design_field(self, d, *at, name, args),
            (Obj::DesignVersion(v), _) => return Ok(designs::version_field(self, v, name)),
            (Obj::User(u), _) => Resolved::Value(designs::user_field(self, u, name)),
            (Obj::Connection { edges, .. }, "nodes") => {
                Resolved::Objects(edges.iter().map(|(_, node)| node.clone()).collect())
            }
            (
                Obj::Connection {
                    type_name, edges, ..
                },
                "edges",
            ) => Resolved::Objects(
                edges
                    .iter()
                    .map(|(cursor, node)| Obj::Edge {
                        type_name: edge_type(type_name),
                        cursor: cursor.clone(),
                        node: Box::new(node.clone()),
                    })
                    .collect(),
            ),
            (Obj::Connection { page, .. }, "pageInfo") => {
                Resolved::Object(Obj::PageInfo(page.clone()))
            }
            (Obj::Edge { cursor, .. }, "cursor") => Resolved::Value(json!(cursor)),
            (Obj::Edge { node, .. }, "node") => Resolved::Object((**node).clone()),
            (Obj::PageInfo(p), "hasNextPage") => Resolved::Value(json!(p.has_next_page)),
            (Obj::PageInfo(p), "hasPreviousPage") => Resolved::Value(json!(p.has_previous_page)),
            (Obj::PageInfo(p), "startCursor") => Resolved::Value(opt(&p.start_cursor)),
            (Obj::PageInfo(p), "endCursor") => Resolved::Value(opt(&p.end_cursor)),
            (Obj::Payload { errors, .. }, "errors") => Resolved::Value(json!(errors)),
            (
                Obj::Payload {
                    client_mutation_id, ..
                },
                "clientMutationId",
            ) => Resolved::Value(client_mutation_id.clone()),
            (
                Obj::Payload {
                    field,
                    record: Some(r),
                    ..
                },
                f,
            ) if f == *field => Resolved::Object((**r).clone()),
            _ => Resolved::Null,
        })
    }
}

fn edge_type(connection: &str) -> &'static str {
    match connection {
        "IterationCadenceConnection" => "IterationCadenceEdge",
        "IssueConnection" => "IssueEdge",
        "DesignConnection" => "DesignEdge",
        "DesignVersionConnection" => "DesignVersionEdge",
        _ => "IterationEdge",
    }
}

impl Obj {
    fn type_name(&self) -> &'static str {
        match self {
            Obj::Group(_) => "Group",
            Obj::Cadence(_) => "IterationCadence",
            Obj::Iteration(_) => "Iteration",
            Obj::Project(_) => "Project",
            Obj::Issue(_) => "Issue",
            Obj::DesignCollection(_) => "DesignCollection",
            Obj::Design(..) => "Design",
            Obj::DesignVersion(_) => "DesignVersion",
            Obj::User(_) => "UserCore",
            Obj::Connection { type_name, .. }
            | Obj::Edge { type_name, .. }
            | Obj::Payload { type_name, .. } => type_name,
            Obj::PageInfo(_) => "PageInfo",
        }
    }
}

/// One page of a connection over `items` (already filtered and ordered), GitLab's offset-based
/// cursors (base64 of the 1-based position, as graphql-ruby encodes them).
pub fn connection(
    type_name: &'static str,
    items: Vec<Obj>,
    args: &Map<String, Value>,
) -> Result<Obj, String> {
    let count = |key: &str| -> Result<Option<usize>, String> {
        match args.get(key).and_then(Value::as_i64) {
            None => Ok(None),
            Some(n) if n < 0 => Err(format!(
                "Argument '{key}' must be greater than or equal to 0"
            )),
            Some(n) => Ok(Some((n as usize).min(MAX_PAGE_SIZE))),
        }
    };
    let cursor = |key: &str| -> Result<Option<usize>, String> {
        match args.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(c) => decode_cursor(c)
                .map(Some)
                .ok_or_else(|| format!("Invalid cursor: {c}")),
        }
    };
    let (first, last) = (count("first")?, count("last")?);
    let len = items.len();
    // Positions are 1-based: `after` N starts at N + 1, `before` N ends at N - 1.
    let mut start = cursor("after")?.unwrap_or(0).min(len);
    let mut end = cursor("before")?
        .map(|b| b.saturating_sub(1))
        .unwrap_or(len)
        .clamp(start, len);
    match (first, last) {
        (Some(n), _) => end = end.min(start + n),
        (None, Some(n)) => start = start.max(end.saturating_sub(n)),
        (None, None) => end = end.min(start + MAX_PAGE_SIZE),
    }
    let edges: Vec<(String, Obj)> = items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end - start)
        .map(|(i, obj)| (encode_cursor(i + 1), obj))
        .collect();
    let page = PageInfo {
        has_next_page: end < len,
        has_previous_page: start > 0,
        start_cursor: edges.first().map(|(c, _)| c.clone()),
        end_cursor: edges.last().map(|(c, _)| c.clone()),
    };
    Ok(Obj::Connection {
        type_name,
        edges,
        page,
    })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding (`Base64.urlsafe_encode64(s, padding: false)`).
fn encode_cursor(position: usize) -> String {
    let bytes = position.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in cursor.trim_end_matches('=').bytes() {
        let v = BASE64.iter().position(|&b| b == c).or(match c {
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        })? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits & 0xff) as u8);
        }
    }
    String::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_graphql_ruby_offsets() {
        assert_eq!(encode_cursor(1), "MQ");
        assert_eq!(encode_cursor(100), "MTAw");
        for n in [1, 2, 99, 100, 101, 12345] {
            assert_eq!(decode_cursor(&encode_cursor(n)), Some(n));
        }
        assert_eq!(decode_cursor("not a cursor!"), None);
    }
}

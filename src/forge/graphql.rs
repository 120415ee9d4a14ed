//! GitLab's GraphQL API as the appliance uses it: queries and mutations through
//! [`ForgeClient::graphql`](super::ForgeClient::graphql) (same token, retries, rate limits and URL
//! policy as REST), connections read a page at a time by cursor, and GitLab's global ids
//! (`gid://gitlab/Iterations::Cadence/12`). It knows no relation's fields.

use super::{ForgeError, GitLab};
use serde_json::{Map, Value};

/// Nodes per page of a connection: GitLab's largest page.
pub const PAGE_SIZE: u64 = 100;

/// A connection to read: a query document that takes `$first: Int` and `$after: String`, its other
/// variables, and where the connection is in `data` (e.g. `["group", "iterationCadences"]`). The
/// document selects `nodes { ... }` and `pageInfo { hasNextPage endCursor }`.
#[derive(Clone, Debug)]
pub struct Connection {
    pub document: &'static str,
    pub variables: Map<String, Value>,
    pub path: &'static [&'static str],
}

/// One page of a connection.
#[derive(Debug, Default)]
pub struct ConnectionPage {
    pub nodes: Vec<Value>,
    /// The cursor of the next page; None on the last one.
    pub next: Option<String>,
}

/// `gid://gitlab/<class>/<id>`.
pub fn gid(class: &str, id: u64) -> String {
    format!("gid://gitlab/{class}/{id}")
}

/// The numeric id of a global id (`gid://gitlab/Iteration/34` -> 34); a bare number is taken too.
pub fn gid_id(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.rsplit('/').next()?.parse().ok(),
        other => other.as_u64(),
    }
}

/// A mutation payload's own `errors` (GitLab's validation messages), joined; None when it has none.
pub fn payload_errors(payload: &Value) -> Option<String> {
    let errors: Vec<&str> = payload["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

impl GitLab {
    /// Runs a query and returns its `data`.
    pub async fn query(&self, document: &str, variables: Value) -> Result<Value, ForgeError> {
        self.client.graphql(document, &variables, true).await
    }

    /// Runs a mutation and returns its `data` (the payload's own `errors` are the caller's to read).
    pub async fn mutate(&self, document: &str, variables: Value) -> Result<Value, ForgeError> {
        self.client.graphql(document, &variables, false).await
    }

    /// Runs a mutation that sets a state (an update: running it twice gives the same result), so it is
    /// retried like a read, even when an attempt may have been applied.
    pub async fn mutate_idempotent(
        &self,
        document: &str,
        variables: Value,
    ) -> Result<Value, ForgeError> {
        self.client.graphql(document, &variables, true).await
    }

    /// The page of `connection` after `after` (the first page when None).
    pub async fn connection_page(
        &self,
        connection: &Connection,
        after: Option<&str>,
    ) -> Result<ConnectionPage, ForgeError> {
        let mut variables = connection.variables.clone();
        variables.insert("first".into(), Value::from(PAGE_SIZE));
        variables.insert(
            "after".into(),
            after.map(Value::from).unwrap_or(Value::Null),
        );
        let data = self
            .query(connection.document, Value::Object(variables))
            .await?;
        let bad = |message: String| ForgeError::Decode {
            url: self.client.graphql_url(),
            message,
        };
        let mut at = &data;
        for (depth, key) in connection.path.iter().enumerate() {
            at = match at.get(key) {
                Some(Value::Null) | None => {
                    // GitLab answers null for what does not exist or the token may not see.
                    return Err(ForgeError::GraphQl {
                        url: self.client.graphql_url(),
                        message: format!(
                            "`{}` is null: it does not exist or this token cannot see it",
                            connection.path[..=depth].join(".")
                        ),
                    });
                }
                Some(v) => v,
            };
        }
        let nodes = at
            .get("nodes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| bad(format!("`{}` has no nodes", connection.path.join("."))))?;
        let page_info = at.get("pageInfo").cloned().unwrap_or_default();
        let next = match page_info.get("hasNextPage").and_then(Value::as_bool) {
            Some(true) => {
                let cursor = page_info
                    .get("endCursor")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a next page without an end cursor".into()))?;
                if after == Some(cursor) {
                    return Err(bad(format!("the cursor {cursor} does not advance")));
                }
                Some(cursor.to_string())
            }
            _ => None,
        };
        Ok(ConnectionPage { nodes, next })
    }

    /// Every node of a connection. For small lookups; pipelines page themselves.
    pub async fn connection_all(&self, connection: &Connection) -> Result<Vec<Value>, ForgeError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.connection_page(connection, after.as_deref()).await?;
            out.extend(page.nodes);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::ForgeClient;
    use crate::forge::client::RetryPolicy;
    use axum::{Json, Router, http::StatusCode as S, response::IntoResponse, routing::post};
    use secrecy::SecretString;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    async fn gitlab(router: Router) -> GitLab {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let retry = RetryPolicy {
            max_times: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        let url = url::Url::parse(&format!("http://{addr}")).unwrap();
        GitLab::new(ForgeClient::new(url, SecretString::from("t".to_string()), 2, retry).unwrap())
    }

    #[test]
    fn global_ids_give_their_number() {
        assert_eq!(
            gid("Iterations::Cadence", 12),
            "gid://gitlab/Iterations::Cadence/12"
        );
        assert_eq!(gid_id(&json!("gid://gitlab/Iteration/34")), Some(34));
        assert_eq!(gid_id(&json!(7)), Some(7));
        assert_eq!(gid_id(&json!("gid://gitlab/Iteration/x")), None);
    }

    #[tokio::test]
    async fn a_connection_is_read_page_by_page_with_its_cursor() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let router = Router::new().route(
            "/api/graphql",
            post(
                move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                    let s = s.clone();
                    async move {
                        assert_eq!(headers["private-token"], "t");
                        let after = body["variables"]["after"].clone();
                        s.lock().unwrap().push(body["variables"].clone());
                        let (nodes, next) = match after.as_str() {
                            None => (json!([{"id": "gid://gitlab/Iteration/1"}]), json!(true)),
                            Some("MQ") => {
                                (json!([{"id": "gid://gitlab/Iteration/2"}]), json!(false))
                            }
                            Some(other) => panic!("unexpected cursor {other}"),
                        };
                        Json(json!({"data": {"group": {"iterations": {
                            "nodes": nodes, "pageInfo": {"hasNextPage": next, "endCursor": "MQ"}
                        }}}}))
                    }
                },
            ),
        );
        let gl = gitlab(router).await;
        let connection = Connection {
            document: "query($fullPath: ID!, $first: Int, $after: String) { ... }",
            variables: Map::from_iter([("fullPath".to_string(), json!("acme"))]),
            path: &["group", "iterations"],
        };
        let all = gl.connection_all(&connection).await.unwrap();
        let ids: Vec<Option<u64>> = all.iter().map(|n| gid_id(&n["id"])).collect();
        assert_eq!(ids, [Some(1), Some(2)]);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            json!({"fullPath": "acme", "first": 100, "after": null})
        );
        assert_eq!(seen[1]["after"], "MQ");
    }

    #[tokio::test]
    async fn graphql_errors_and_null_groups_are_errors_that_say_why() {
        let router = Router::new().route(
            "/api/graphql",
            post(|Json(body): Json<Value>| async move {
                if body["query"].as_str().unwrap().contains("name") {
                    Json(json!({"errors": [{
                        "message": "Field 'name' doesn't exist on type 'IterationCadence'",
                        "locations": [{"line": 1, "column": 9}],
                        "path": ["query", "group", "iterationCadences", "nodes", "name"]
                    }]}))
                } else {
                    Json(json!({"data": {"group": null}}))
                }
            }),
        );
        let gl = gitlab(router).await;
        let err = gl.query("{ name }", json!({})).await.unwrap_err();
        assert!(matches!(err, ForgeError::GraphQl { .. }), "{err:?}");
        assert_eq!(
            err.message(),
            "Field 'name' doesn't exist on type 'IterationCadence' (at query.group.iterationCadences.nodes.name)"
        );
        assert_eq!(err.class(), "Appliance::GraphQLError");
        assert!(!err.is_unreachable());
        let connection = Connection {
            document: "{ group }",
            variables: Map::new(),
            path: &["group", "iterationCadences"],
        };
        let err = gl.connection_page(&connection, None).await.unwrap_err();
        assert!(err.message().contains("`group` is null"), "{err}");
    }

    #[tokio::test]
    async fn a_query_is_retried_like_a_read_and_a_mutation_is_not_sent_twice() {
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let router = Router::new().route(
            "/api/graphql",
            post(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    (
                        S::INTERNAL_SERVER_ERROR,
                        r#"{"errors":[{"message":"Internal server error"}]}"#,
                    )
                        .into_response()
                }
            }),
        );
        let gl = gitlab(router).await;
        let err = gl.query("{ x }", json!({})).await.unwrap_err();
        assert_eq!(hits.swap(0, Ordering::SeqCst), 3, "one try and two retries");
        assert_eq!(err.message(), "Internal server error");
        assert!(
            err.is_unreachable(),
            "a read that keeps failing pauses the run"
        );
        let err = gl.mutate("mutation { x }", json!({})).await.unwrap_err();
        assert_eq!(hits.load(Ordering::SeqCst), 1, "a 500 may have applied it");
        assert!(
            !err.is_unreachable(),
            "a write's 500 is that record's failure"
        );
    }
}

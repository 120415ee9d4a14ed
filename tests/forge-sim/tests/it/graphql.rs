//! The simulator's GraphQL API (`/api/graphql`) as a client sees it: authentication as for REST,
//! GitLab's response shapes, cursor pagination of the iteration connections, both mutations read back
//! through queries, and their validation errors in GitLab's words.

use forge_sim::{Dataset, RunningSim, SimConfig};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn start(dataset: Dataset) -> RunningSim {
    RunningSim::start(SimConfig::new(dataset, 7))
        .await
        .expect("simulator starts")
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

/// POSTs a document with the owner's token; (status, body).
async fn graphql(sim: &RunningSim, query: &str, variables: Value) -> (StatusCode, Value) {
    let resp = client()
        .post(format!("{}/api/graphql", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("POST /api/graphql");
    let status = resp.status();
    (status, resp.json().await.expect("a JSON body"))
}

/// The `data` of a document that must succeed.
async fn data(sim: &RunningSim, query: &str, variables: Value) -> Value {
    let (status, body) = graphql(sim, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

const CADENCES: &str = r#"
query Cadences($fullPath: ID!, $first: Int, $after: String) {
  group(fullPath: $fullPath) {
    iterationCadences(first: $first, after: $after) {
      nodes { id title description automatic startDate durationInWeeks iterationsInAdvance active rollOver }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

const ITERATIONS: &str = r#"
query($fullPath: ID!, $first: Int, $after: String) {
  group(fullPath: $fullPath) {
    iterations(includeAncestors: false, first: $first, after: $after) {
      nodes { id iid sequence title state startDate dueDate createdAt iterationCadence { id title } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

const CREATE_CADENCE: &str = r#"
mutation($input: IterationCadenceCreateInput!) {
  iterationCadenceCreate(input: $input) { iterationCadence { id title automatic durationInWeeks } errors }
}"#;

const CREATE_ITERATION: &str = r#"
mutation($input: iterationCreateInput!) {
  iterationCreate(input: $input) { iteration { id iid title startDate dueDate sequence iterationCadence { id } } errors }
}"#;

#[tokio::test]
async fn graphql_authenticates_like_the_rest_api() {
    let sim = start(Dataset::Small).await;
    let query = json!({ "query": "{ group(fullPath: \"acme\") { fullPath } }" });
    let url = format!("{}/api/graphql", sim.url);
    for token in [None, Some("glpat-not-a-token")] {
        let mut req = client().post(&url).json(&query);
        if let Some(t) = token {
            req = req.header("PRIVATE-TOKEN", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({ "errors": [{ "message": "Invalid token" }] }));
    }
    let resp = client()
        .post(&url)
        .header("Authorization", format!("Bearer {}", sim.owner_token))
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "data": { "group": { "fullPath": "acme" } } }));
    // A group the token cannot see is null, as GitLab answers.
    let other = sim.token_for("chen").expect("chen's token");
    let resp = client()
        .post(&url)
        .header("PRIVATE-TOKEN", other)
        .json(&json!({ "query": "{ group(fullPath: \"no/such/group\") { id } }" }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "data": { "group": null } }));
    sim.shutdown().await;
}

#[tokio::test]
async fn iterations_page_by_cursor_with_their_cadence() {
    let sim = start(Dataset::Small).await;
    let vars = |after: Value| json!({ "fullPath": "acme", "first": 3, "after": after });
    let first = data(&sim, ITERATIONS, vars(Value::Null)).await;
    let page = &first["group"]["iterations"];
    assert_eq!(page["nodes"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].clone();
    assert!(cursor.is_string());
    let second = data(&sim, ITERATIONS, vars(cursor)).await;
    let rest = &second["group"]["iterations"];
    assert_eq!(rest["pageInfo"]["hasNextPage"], false, "{rest}");
    let mut all: Vec<Value> = page["nodes"].as_array().unwrap().clone();
    all.extend(rest["nodes"].as_array().unwrap().iter().cloned());
    // The same iterations as the REST list, in GitLab's GraphQL shapes.
    let rest_list: Value = client()
        .get(format!(
            "{}/api/v4/groups/acme/iterations?include_ancestors=false",
            sim.url
        ))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), rest_list.as_array().unwrap().len());
    for node in &all {
        let id = node["id"].as_str().unwrap();
        let number: u64 = id
            .strip_prefix("gid://gitlab/Iteration/")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a global id: {id}"));
        let r = rest_list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == number)
            .expect("listed by REST too");
        assert_eq!(
            node["iid"],
            json!(r["iid"].to_string()),
            "iid is an ID (a string)"
        );
        assert_eq!(node["startDate"], r["start_date"]);
        assert_eq!(node["dueDate"], r["due_date"]);
        assert_eq!(node["title"], r["title"]);
        let cadence = node["iterationCadence"]["id"].as_str().unwrap();
        assert!(
            cadence.starts_with("gid://gitlab/Iterations::Cadence/"),
            "{cadence}"
        );
        assert_eq!(node["iterationCadence"]["title"], "Two-week sprints");
        let created = node["createdAt"].as_str().unwrap();
        assert!(
            created.ends_with('Z') && !created.contains('.'),
            "{created}"
        );
    }
    let cadences = data(&sim, CADENCES, json!({ "fullPath": "acme", "first": 100 })).await;
    let nodes = cadences["group"]["iterationCadences"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["automatic"], true);
    assert_eq!(nodes[0]["durationInWeeks"], 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn both_mutations_create_what_the_queries_then_read() {
    let sim = start(Dataset::Empty).await;
    let created = data(
        &sim,
        &CREATE_CADENCE.replace("errors }", "errors clientMutationId }"),
        json!({ "input": {
            "clientMutationId": "first",
            "groupPath": "imported", "title": "Sprints", "description": "two weeks",
            "automatic": false, "active": true, "startDate": "2024-01-01",
            "durationInWeeks": 2, "iterationsInAdvance": 1, "rollOver": true
        }}),
    )
    .await;
    let payload = &created["iterationCadenceCreate"];
    assert_eq!(payload["errors"], json!([]));
    assert_eq!(
        payload["clientMutationId"], "first",
        "echoed from the input"
    );
    let cadence = payload["iterationCadence"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cadence.starts_with("gid://gitlab/Iterations::Cadence/"),
        "{cadence}"
    );
    // A manual cadence keeps no scheduling, as in GitLab.
    assert_eq!(payload["iterationCadence"]["durationInWeeks"], Value::Null);

    for (title, start, due) in [
        (Some("Sprint 2"), "2024-01-15", "2024-01-28"),
        (None, "2024-01-01", "2024-01-14"),
    ] {
        let created = data(
            &sim,
            CREATE_ITERATION,
            json!({ "input": {
                "groupPath": "imported", "iterationsCadenceId": cadence,
                "title": title, "startDate": start, "dueDate": due
            }}),
        )
        .await;
        let payload = &created["iterationCreate"];
        assert_eq!(payload["errors"], json!([]), "{payload}");
        assert_eq!(payload["iteration"]["iterationCadence"]["id"], cadence);
        assert_eq!(payload["iteration"]["startDate"], start);
    }

    let read = data(
        &sim,
        ITERATIONS,
        json!({ "fullPath": "imported", "first": 100 }),
    )
    .await;
    let nodes = read["group"]["iterations"]["nodes"].as_array().unwrap();
    let got: Vec<(Value, Value, Value)> = nodes
        .iter()
        .map(|n| {
            (
                n["title"].clone(),
                n["startDate"].clone(),
                n["sequence"].clone(),
            )
        })
        .collect();
    // Sequences follow the start dates, whatever the order of creation.
    assert_eq!(
        got,
        [
            (Value::Null, json!("2024-01-01"), json!(1)),
            (json!("Sprint 2"), json!("2024-01-15"), json!(2)),
        ]
    );
    let cadences = data(&sim, CADENCES, json!({ "fullPath": "imported" })).await;
    let c = &cadences["group"]["iterationCadences"]["nodes"][0];
    assert_eq!(
        (
            &c["title"],
            &c["description"],
            &c["startDate"],
            &c["automatic"],
            &c["rollOver"]
        ),
        (
            &json!("Sprints"),
            &json!("two weeks"),
            &json!("2024-01-01"),
            &json!(false),
            &json!(false)
        )
    );
    sim.shutdown().await;
}

const UPDATE_CADENCE: &str = r#"
mutation($input: IterationCadenceUpdateInput!) {
  iterationCadenceUpdate(input: $input) {
    iterationCadence { id automatic startDate durationInWeeks iterationsInAdvance rollOver }
    errors
  }
}"#;

#[tokio::test]
async fn automatic_cadences_follow_gitlabs_scheduling_rules() {
    let sim = start(Dataset::Empty).await;
    let cadence = |automatic: bool, start: &str| {
        json!({ "input": {
            "groupPath": "imported", "title": format!("Sprints from {start}"),
            "automatic": automatic, "active": true, "startDate": start,
            "durationInWeeks": 2, "iterationsInAdvance": 2, "rollOver": true
        }})
    };
    // An automatic cadence whose first iteration would already be over is refused.
    let past = data(&sim, CREATE_CADENCE, cadence(true, "2023-01-02")).await;
    let errors = &past["iterationCadenceCreate"]["errors"];
    assert!(
        errors[0]
            .as_str()
            .is_some_and(|e| e.starts_with("Start date cannot be in the past")),
        "{errors}"
    );
    // One that starts in the future is accepted, but iterations cannot be added to it by hand.
    let future = data(&sim, CREATE_CADENCE, cadence(true, "2099-01-05")).await;
    let automatic_id = future["iterationCadenceCreate"]["iterationCadence"]["id"].clone();
    assert!(automatic_id.is_string(), "{future}");
    let added = data(
        &sim,
        CREATE_ITERATION,
        json!({ "input": {
            "groupPath": "imported", "iterationsCadenceId": automatic_id,
            "startDate": "2099-01-05", "dueDate": "2099-01-18"
        }}),
    )
    .await;
    assert_eq!(
        added["iterationCreate"]["errors"],
        json!(["Iterations cannot be manually added to cadences that use automatic scheduling"])
    );
    // A manual cadence with past iterations, turned automatic: it starts at its first iteration.
    let manual = data(&sim, CREATE_CADENCE, cadence(false, "2023-01-02")).await;
    let manual_id = manual["iterationCadenceCreate"]["iterationCadence"]["id"].clone();
    for (start, due) in [("2023-01-16", "2023-01-29"), ("2023-01-02", "2023-01-15")] {
        let made = data(
            &sim,
            CREATE_ITERATION,
            json!({ "input": {
                "groupPath": "imported", "iterationsCadenceId": manual_id,
                "startDate": start, "dueDate": due
            }}),
        )
        .await;
        assert_eq!(made["iterationCreate"]["errors"], json!([]), "{made}");
    }
    let incomplete = data(
        &sim,
        UPDATE_CADENCE,
        json!({ "input": { "id": manual_id, "automatic": true } }),
    )
    .await;
    assert_eq!(
        incomplete["iterationCadenceUpdate"]["errors"],
        json!([
            "Duration in weeks can't be blank",
            "Iterations in advance can't be blank"
        ])
    );
    let converted = data(
        &sim,
        UPDATE_CADENCE,
        json!({ "input": {
            "id": manual_id, "automatic": true, "durationInWeeks": 2,
            "iterationsInAdvance": 1, "rollOver": true
        }}),
    )
    .await;
    let payload = &converted["iterationCadenceUpdate"];
    assert_eq!(payload["errors"], json!([]), "{payload}");
    assert_eq!(
        payload["iterationCadence"],
        json!({
            "id": manual_id, "automatic": true, "startDate": "2023-01-02",
            "durationInWeeks": 2, "iterationsInAdvance": 1, "rollOver": true
        })
    );
    let all = data(&sim, CADENCES, json!({ "fullPath": "imported" })).await;
    assert_eq!(
        all["group"]["iterationCadences"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "an update changes the cadence, it adds none"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn validation_failures_are_payload_errors_in_gitlabs_words() {
    let sim = start(Dataset::Empty).await;
    let untitled = data(
        &sim,
        CREATE_CADENCE,
        json!({ "input": { "groupPath": "imported", "automatic": true, "active": true,
                            "durationInWeeks": 9 } }),
    )
    .await;
    assert_eq!(
        untitled["iterationCadenceCreate"],
        json!({ "iterationCadence": null, "errors": [
            "Title can't be blank",
            "Start date can't be blank",
            "Duration in weeks is not included in the list",
            "Iterations in advance can't be blank"
        ]})
    );
    let cadence = data(
        &sim,
        CREATE_CADENCE,
        json!({ "input": { "groupPath": "imported", "title": "C", "automatic": false, "active": true } }),
    )
    .await["iterationCadenceCreate"]["iterationCadence"]["id"]
        .clone();
    let iteration = |title: &str, start: &str, due: &str| {
        json!({ "input": { "groupPath": "imported", "iterationsCadenceId": cadence,
                           "title": title, "startDate": start, "dueDate": due } })
    };
    let first = data(
        &sim,
        CREATE_ITERATION,
        iteration("One", "2024-03-01", "2024-03-14"),
    )
    .await;
    assert_eq!(first["iterationCreate"]["errors"], json!([]));
    let again = data(
        &sim,
        CREATE_ITERATION,
        iteration("One", "2024-03-10", "2024-03-09"),
    )
    .await;
    assert_eq!(
        again["iterationCreate"],
        json!({ "iteration": null, "errors": [
            "Due date must be greater than start date",
            "Dates cannot overlap with other existing Iterations within this iterations cadence",
            "Title already being used for another iteration within this cadence."
        ]})
    );
    // A cadence of another class, and a missing group: GitLab's coercion and resource errors.
    let (status, body) = graphql(
        &sim,
        CREATE_ITERATION,
        json!({ "input": { "groupPath": "imported", "iterationsCadenceId": "gid://gitlab/Iteration/1",
                           "startDate": "2024-04-01", "dueDate": "2024-04-02" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["errors"][0]["message"],
        "\"gid://gitlab/Iteration/1\" does not represent an instance of Iterations::Cadence"
    );
    assert_eq!(body["data"]["iterationCreate"], Value::Null);
    let (_, body) = graphql(
        &sim,
        CREATE_CADENCE,
        json!({ "input": { "groupPath": "nowhere", "title": "x", "automatic": false, "active": true } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"],
        "The resource that you are attempting to access does not exist or you don't have permission to perform this action"
    );
    assert_eq!(body["errors"][0]["path"], json!(["iterationCadenceCreate"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn documents_outside_the_schema_are_refused_before_anything_runs() {
    let sim = start(Dataset::Empty).await;
    let (status, body) = graphql(
        &sim,
        "mutation($input: IterationCadenceCreateInput!) { iterationCadenceCreate(input: $input) { cadence { id } errors } }",
        json!({ "input": { "groupPath": "imported", "title": "Never", "automatic": false, "active": true } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "errors": [{
            "message": "Field 'cadence' doesn't exist on type 'IterationCadenceCreatePayload'",
            "locations": [{ "line": 1, "column": 90 }],
            "path": ["mutation", "iterationCadenceCreate", "cadence"]
        }]})
    );
    let (_, body) = graphql(&sim, "{ projects { nodes { id } } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'projects' doesn't exist on type 'Query'"
    );
    let (_, body) = graphql(
        &sim,
        "query { group(fullPath: \"imported\") { id ",
        json!({}),
    )
    .await;
    assert!(body["errors"][0]["locations"].is_array(), "{body}");
    // Nothing was created by the refused mutation.
    let cadences = data(&sim, CADENCES, json!({ "fullPath": "imported" })).await;
    assert_eq!(cadences["group"]["iterationCadences"]["nodes"], json!([]));
    // GitLab does not run mutations sent with GET.
    let resp = client()
        .get(format!("{}/api/graphql", sim.url))
        .query(&[(
            "query",
            "mutation { iterationCadenceCreate(input: {groupPath: \"imported\", title: \"G\", automatic: false, active: true}) { errors } }",
        )])
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"],
        "Mutations are forbidden in GET requests"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_rest_routes_gitlab_does_not_have_answer_404() {
    let sim = start(Dataset::Small).await;
    let url = |path: &str| format!("{}/api/v4/groups/acme/{path}", sim.url);
    let with_token = |req: reqwest::RequestBuilder| req.header("PRIVATE-TOKEN", &sim.owner_token);
    let cadence = json!({ "title": "REST", "start_date": "2024-01-01" });
    let iteration = json!({ "start_date": "2024-01-01", "due_date": "2024-01-14" });
    for (req, what) in [
        (
            with_token(client().get(url("iterations_cadences"))),
            "GET cadences",
        ),
        (
            with_token(client().post(url("iterations_cadences")).json(&cadence)),
            "POST cadences",
        ),
        (
            with_token(client().post(url("iterations")).json(&iteration)),
            "POST iterations",
        ),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({ "error": "404 Not Found" }), "{what}");
    }
    // Reading iterations is REST in GitLab too, and its entity does not name the cadence.
    let resp = with_token(client().get(url("iterations")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    assert!(listed[0].get("iteration_cadence_id").is_none(), "{listed}");
    sim.shutdown().await;
}

//! Iteration cadences and their iterations, through GitLab's GraphQL API: GitLab has no REST endpoint for
//! cadences, and creates neither cadences nor iterations over REST (`iterationCadenceCreate`,
//! `iterationCreate`). GitLab exports iterations nested in their cadence; here they are two relations,
//! cadences a stage first, so that each page of iterations can be loaded on its own.
//!
//! Records keep the export format (snake_case fields, numeric ids): a node's global id
//! (`gid://gitlab/Iteration/34`) becomes its number, and an iteration names its cadence by source id,
//! which the id map turns into the destination cadence. A cadence in doubt is found again by its title,
//! an iteration by its cadence and start date. An iteration's state (upcoming, current, closed) is
//! derived by GitLab from its dates, and its iid, sequence and timestamps are assigned by the
//! destination: none of them can be set through the API.
//!
//! Automatic cadences: GitLab refuses an automatic cadence whose first iteration would already be
//! over, and refuses iterations added by hand to an automatic cadence. So every cadence is created
//! manual, its iterations are added as the source has them, and `cadence_schedules` (a later stage)
//! turns automatic scheduling back on with the source's duration, iterations in advance and roll over
//! (`iterationCadenceUpdate`); GitLab then starts the cadence where its first iteration starts and
//! schedules upcoming iterations after the migrated ones. An iteration a retry adds to a cadence that
//! is automatic already is added while the cadence is briefly manual, then automatic again with its
//! own settings.

use super::{EntityContext, Extraction, LoadError, Relation, create_once_graphql, text};
use crate::forge::graphql::{Connection, gid, gid_id, payload_errors};
use crate::forge::{ForgeError, GitLab};
use async_trait::async_trait;
use serde_json::{Map, Value, json};

pub struct IterationsCadences;
pub struct Iterations;
pub struct CadenceSchedules;

const CADENCE_CLASS: &str = "Iterations::Cadence";

/// A group's cadences (its own, not its ancestors').
const CADENCES: &str = r#"query($fullPath: ID!, $first: Int, $after: String) {
  group(fullPath: $fullPath) {
    iterationCadences(first: $first, after: $after) {
      nodes { id title description automatic startDate durationInWeeks iterationsInAdvance active rollOver }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

/// A group's iterations (its own: an ancestor's iterations migrate with the ancestor).
const ITERATIONS: &str = r#"query($fullPath: ID!, $first: Int, $after: String) {
  group(fullPath: $fullPath) {
    iterations(includeAncestors: false, first: $first, after: $after) {
      nodes { id iid sequence title description state startDate dueDate createdAt updatedAt iterationCadence { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

/// The iterations of one cadence of a group, to find one again by its start date.
const CADENCE_ITERATIONS: &str = r#"query($fullPath: ID!, $cadence: [IterationsCadenceID!], $first: Int, $after: String) {
  group(fullPath: $fullPath) {
    iterations(includeAncestors: false, iterationCadenceIds: $cadence, first: $first, after: $after) {
      nodes { id startDate iterationCadence { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

const CREATE_CADENCE: &str = r#"mutation($input: IterationCadenceCreateInput!) {
  iterationCadenceCreate(input: $input) { iterationCadence { id } errors }
}"#;

const UPDATE_CADENCE: &str = r#"mutation($input: IterationCadenceUpdateInput!) {
  iterationCadenceUpdate(input: $input) { iterationCadence { id automatic } errors }
}"#;

const CREATE_ITERATION: &str = r#"mutation($input: iterationCreateInput!) {
  iterationCreate(input: $input) { iteration { id } errors }
}"#;

/// The cadence fields a record carries: (record field, GraphQL field).
const CADENCE_FIELDS: &[(&str, &str)] = &[
    ("title", "title"),
    ("description", "description"),
    ("automatic", "automatic"),
    ("start_date", "startDate"),
    ("duration_in_weeks", "durationInWeeks"),
    ("iterations_in_advance", "iterationsInAdvance"),
    ("active", "active"),
    ("roll_over", "rollOver"),
];

/// The iteration fields a record carries as they are: (record field, GraphQL field).
const ITERATION_FIELDS: &[(&str, &str)] = &[
    ("sequence", "sequence"),
    ("title", "title"),
    ("description", "description"),
    ("start_date", "startDate"),
    ("due_date", "dueDate"),
    ("created_at", "createdAt"),
    ("updated_at", "updatedAt"),
];

/// A group's connection of `document`, with `extra` variables.
fn connection(
    document: &'static str,
    path: &'static [&'static str],
    full_path: &str,
    extra: &[(&str, Value)],
) -> Connection {
    let mut variables = Map::from_iter([("fullPath".to_string(), json!(full_path))]);
    variables.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Connection {
        document,
        variables,
        path,
    }
}

fn cadences_of(full_path: &str) -> Connection {
    connection(CADENCES, &["group", "iterationCadences"], full_path, &[])
}

/// How many iteration cadences and iterations the group at `full_path` itself has.
pub async fn count(gitlab: &GitLab, full_path: &str) -> Result<(usize, usize), ForgeError> {
    let cadences = gitlab.connection_all(&cadences_of(full_path)).await?.len();
    let iterations = gitlab
        .connection_all(&connection(
            ITERATIONS,
            &["group", "iterations"],
            full_path,
            &[],
        ))
        .await?
        .len();
    Ok((cadences, iterations))
}

/// GraphQL's `Time` for a date column: `2024-01-02`, or a full time whose date is meant.
fn date(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if s.len() > 10 && s.as_bytes()[10] == b'T' => json!(&s[..10]),
        _ => v.clone(),
    }
}

/// Copies the (record, GraphQL) field pairs that are present and not null from `node`.
fn from_node(node: &Value, fields: &[(&str, &str)], out: &mut Map<String, Value>) {
    for (record, graphql) in fields {
        if let Some(v) = node.get(*graphql).filter(|v| !v.is_null()) {
            let v = if record.ends_with("_date") {
                date(v)
            } else {
                v.clone()
            };
            out.insert((*record).to_string(), v);
        }
    }
}

/// A mutation's input from a record: the named (record, GraphQL) fields that are present.
fn to_input(record: &Value, fields: &[(&str, &str)], input: &mut Map<String, Value>) {
    for (field, graphql) in fields {
        if let Some(v) = record.get(*field).filter(|v| !v.is_null()) {
            input.insert((*graphql).to_string(), v.clone());
        }
    }
}

/// The destination group's cadences.
async fn destination_cadences(
    dest: &GitLab,
    ctx: &EntityContext,
) -> Result<Vec<Value>, ForgeError> {
    dest.connection_all(&cadences_of(&ctx.entity.destination_full_path()))
        .await
}

#[async_trait]
impl Relation for IterationsCadences {
    fn name(&self) -> &'static str {
        "iterations_cadences"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::IterationsCadencesPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::Connection(cadences_of(&ctx.entity.source_full_path))
    }
    fn transform(&self, node: Value) -> Value {
        let mut r = Map::new();
        if let Some(id) = gid_id(&node["id"]) {
            r.insert("id".into(), json!(id));
        }
        from_node(&node, CADENCE_FIELDS, &mut r);
        Value::Object(r)
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        ctx.destination_id()?;
        let title = text(record, "title").to_string();
        let mut input = Map::from_iter([
            (
                "groupPath".to_string(),
                json!(ctx.entity.destination_full_path()),
            ),
            // Both are required by GitLab; a record always has them.
            ("automatic".to_string(), json!(false)),
            ("active".to_string(), json!(true)),
        ]);
        to_input(record, CADENCE_FIELDS, &mut input);
        // Created manual so that past iterations can be added; `cadence_schedules` turns automatic
        // scheduling on once they are there.
        input.insert("automatic".into(), json!(false));
        // Titles are how a group's cadences are told apart.
        create_once_graphql(
            dest,
            CREATE_CADENCE,
            ("iterationCadenceCreate", "iterationCadence"),
            &Value::Object(input),
            in_doubt,
            || async {
                let found = destination_cadences(dest, ctx).await?;
                Ok(found
                    .iter()
                    .find(|c| text(c, "title") == title)
                    .and_then(|c| gid_id(&c["id"])))
            },
        )
        .await
    }
}

#[async_trait]
impl Relation for CadenceSchedules {
    fn name(&self) -> &'static str {
        "cadence_schedules"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::IterationsCadencesPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        IterationsCadences.extraction(ctx)
    }
    fn transform(&self, node: Value) -> Value {
        IterationsCadences.transform(node)
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let source = record.get("id").map(Value::to_string).unwrap_or_default();
        let Some(cadence_id) = ctx.ids.get("iterations_cadences", &source).await? else {
            return Err(LoadError::skipped(format!(
                "the iteration cadence `{}` was not migrated, so its scheduling cannot be set",
                text(record, "title")
            )));
        };
        if record.get("automatic").and_then(Value::as_bool) != Some(true) {
            return Ok(cadence_id);
        }
        // Setting a cadence automatic twice changes nothing, but a converted one is left alone.
        let already = destination_cadences(dest, ctx).await?.iter().any(|c| {
            gid_id(&c["id"]) == Some(cadence_id) && c["automatic"].as_bool() == Some(true)
        });
        if already {
            return Ok(cadence_id);
        }
        let mut settings = Map::from_iter([("automatic".to_string(), json!(true))]);
        to_input(
            record,
            &[
                ("duration_in_weeks", "durationInWeeks"),
                ("iterations_in_advance", "iterationsInAdvance"),
                ("roll_over", "rollOver"),
            ],
            &mut settings,
        );
        set_scheduling(dest, cadence_id, settings).await?;
        Ok(cadence_id)
    }
}

/// GitLab's iteration states as the export format numbers them.
fn state_number(state: &Value) -> Option<u64> {
    match state.as_str()? {
        "upcoming" => Some(1),
        "current" | "started" => Some(2),
        "closed" => Some(3),
        _ => None,
    }
}

#[async_trait]
impl Relation for Iterations {
    fn name(&self) -> &'static str {
        "iterations"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Groups::Pipelines::IterationsPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::Connection(connection(
            ITERATIONS,
            &["group", "iterations"],
            &ctx.entity.source_full_path,
            &[],
        ))
    }
    fn transform(&self, node: Value) -> Value {
        let mut r = Map::new();
        for (field, value) in [
            ("id", gid_id(&node["id"])),
            // An iid is a GraphQL ID: a string of digits.
            ("iid", gid_id(&node["iid"])),
            ("state", state_number(&node["state"])),
            (
                "iterations_cadence_id",
                gid_id(&node["iterationCadence"]["id"]),
            ),
        ] {
            if let Some(v) = value {
                r.insert(field.into(), json!(v));
            }
        }
        from_node(&node, ITERATION_FIELDS, &mut r);
        Value::Object(r)
    }
    fn title(&self, record: &Value) -> Option<String> {
        let title = text(record, "title");
        Some(if title.is_empty() {
            format!(
                "{}..{}",
                text(record, "start_date"),
                text(record, "due_date")
            )
        } else {
            title.to_string()
        })
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        ctx.destination_id()?;
        let full_path = ctx.entity.destination_full_path();
        // Cadences migrate a stage earlier, so the id map knows the cadence's destination id.
        let source_cadence = record
            .get("iterations_cadence_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string())
            .unwrap_or_default();
        let Some(cadence_id) = ctx.ids.get("iterations_cadences", &source_cadence).await? else {
            return Err(LoadError {
                class: "BulkImports::Error".into(),
                message: format!(
                    "the iteration cadence {source_cadence} of this iteration was not migrated \
                     (see the iterations_cadences failures), so the iteration cannot be created"
                ),
                correlation_id: None,
                unreachable: false,
            });
        };
        let cadence = gid(CADENCE_CLASS, cadence_id);
        // An automatic cadence (one a retry finds already switched by `cadence_schedules`).
        let automatic = destination_cadences(dest, ctx)
            .await?
            .into_iter()
            .find(|c| gid_id(&c["id"]) == Some(cadence_id) && c["automatic"] == json!(true));
        let start = text(record, "start_date").to_string();
        let mut input = Map::from_iter([
            ("groupPath".to_string(), json!(full_path)),
            ("iterationsCadenceId".to_string(), json!(cadence)),
            ("startDate".to_string(), json!(start)),
            ("dueDate".to_string(), json!(text(record, "due_date"))),
        ]);
        to_input(
            record,
            &[("title", "title"), ("description", "description")],
            &mut input,
        );
        let of_cadence = connection(
            CADENCE_ITERATIONS,
            &["group", "iterations"],
            &full_path,
            &[("cadence", json!([cadence]))],
        );
        let find = || async {
            let found = dest.connection_all(&of_cadence).await?;
            Ok(found
                .iter()
                .find(|i| {
                    gid_id(&i["iterationCadence"]["id"]) == Some(cadence_id)
                        && date(&i["startDate"]).as_str() == Some(start.as_str())
                })
                .and_then(|i| gid_id(&i["id"])))
        };
        let input = Value::Object(input);
        let create = |in_doubt| {
            create_once_graphql(
                dest,
                CREATE_ITERATION,
                ("iterationCreate", "iteration"),
                &input,
                in_doubt,
                find,
            )
        };
        let Some(node) = automatic else {
            return create(in_doubt).await;
        };
        // GitLab may already have scheduled this iteration in an automatic cadence.
        if let Some(id) = find().await? {
            return Ok(id);
        }
        // It refuses iterations added by hand there: the cadence is manual while this one is added,
        // then automatic again with its own settings.
        set_scheduling(
            dest,
            cadence_id,
            Map::from_iter([("automatic".into(), json!(false))]),
        )
        .await?;
        let created = create(false).await;
        let mut settings = Map::from_iter([("automatic".to_string(), json!(true))]);
        for field in ["durationInWeeks", "iterationsInAdvance", "rollOver"] {
            if !node[field].is_null() {
                settings.insert(field.into(), node[field].clone());
            }
        }
        let restored = set_scheduling(dest, cadence_id, settings).await;
        let id = created?;
        restored?;
        Ok(id)
    }
}

/// Changes a destination cadence's scheduling (`iterationCadenceUpdate` with `settings`).
async fn set_scheduling(
    dest: &GitLab,
    cadence_id: u64,
    mut settings: Map<String, Value>,
) -> Result<(), LoadError> {
    settings.insert("id".into(), json!(gid(CADENCE_CLASS, cadence_id)));
    let data = dest
        .mutate_idempotent(UPDATE_CADENCE, json!({ "input": Value::Object(settings) }))
        .await?;
    let Some(errors) = payload_errors(&data["iterationCadenceUpdate"]) else {
        return Ok(());
    };
    Err(LoadError {
        class: "BulkImports::Error".into(),
        message: format!("the scheduling of the iteration cadence could not be changed: {errors}"),
        correlation_id: None,
        unreachable: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iteration_node_becomes_a_record_that_names_its_cadence_and_keeps_its_dates() {
        let r = Iterations.transform(json!({
            "id": "gid://gitlab/Iteration/9", "iid": "2", "sequence": 2, "title": null,
            "description": null, "state": "closed", "startDate": "2023-01-02",
            "dueDate": "2023-01-15", "createdAt": "2023-01-01T10:00:00Z",
            "updatedAt": "2023-01-01T10:00:00Z",
            "iterationCadence": { "id": "gid://gitlab/Iterations::Cadence/4" }
        }));
        assert_eq!(
            r,
            json!({
                "id": 9, "iid": 2, "sequence": 2, "state": 3, "iterations_cadence_id": 4,
                "start_date": "2023-01-02", "due_date": "2023-01-15",
                "created_at": "2023-01-01T10:00:00Z", "updated_at": "2023-01-01T10:00:00Z"
            })
        );
        assert_eq!(
            Iterations.title(&r).as_deref(),
            Some("2023-01-02..2023-01-15")
        );
    }

    #[test]
    fn a_cadence_node_becomes_a_record_that_keeps_its_scheduling() {
        let r = IterationsCadences.transform(json!({
            "id": "gid://gitlab/Iterations::Cadence/4", "title": "Sprints", "description": "d",
            "startDate": "2023-01-02T00:00:00Z", "durationInWeeks": 2, "iterationsInAdvance": 1,
            "active": true, "automatic": true, "rollOver": false
        }));
        assert_eq!(
            r,
            json!({
                "id": 4, "title": "Sprints", "description": "d", "start_date": "2023-01-02",
                "duration_in_weeks": 2, "iterations_in_advance": 1, "active": true,
                "automatic": true, "roll_over": false
            })
        );
        let mut input = Map::new();
        to_input(&r, CADENCE_FIELDS, &mut input);
        assert_eq!(input["startDate"], "2023-01-02");
        assert_eq!(input["durationInWeeks"], 2);
        assert_eq!(input["rollOver"], false);
        assert!(input.get("start_date").is_none());
    }
}

//! Iteration cadences and their iterations. GitLab exports iterations nested in their cadence; here they
//! are two relations, cadences a stage first, so that each page of iterations can be loaded on its own.
//! An iteration names its cadence by source id, which the id map turns into the destination cadence; a
//! cadence in doubt is found again by its title, an iteration by its cadence and start date. An iteration's state (upcoming, current, closed)
//! is derived by GitLab from its dates, and its iid, sequence and timestamps are assigned by the
//! destination: none of them can be set through the API.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct IterationsCadences;
pub struct Iterations;

const CADENCE_FIELDS: &[&str] = &[
    "title",
    "description",
    "automatic",
    "start_date",
    "duration_in_weeks",
    "iterations_in_advance",
    "active",
    "roll_over",
];

/// The iteration cadences of a destination group.
async fn cadences(dest: &GitLab, group: u64) -> Result<Vec<Value>, ForgeError> {
    dest.list_all(&format!("groups/{group}/iterations_cadences"), &[])
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
        Extraction::List {
            path: format!("groups/{}/iterations_cadences", ctx.source_id()),
            query: vec![],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(&rest, &["id", "created_at", "updated_at"]);
        r.extend(pick(&rest, CADENCE_FIELDS));
        Value::Object(r)
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let group = ctx.destination_id()?;
        let title = text(record, "title").to_string();
        let body = Value::Object(pick(record, CADENCE_FIELDS));
        let path = format!("groups/{group}/iterations_cadences");
        // Titles are how a group's cadences are told apart.
        create_once(dest, &path, &body, in_doubt, || async {
            let found = cadences(dest, group).await?;
            Ok(found
                .iter()
                .find(|c| text(c, "title") == title)
                .and_then(id_of))
        })
        .await
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
        Extraction::List {
            path: format!("groups/{}/iterations", ctx.source_id()),
            // Iterations of ancestors are migrated with the ancestor.
            query: vec![("include_ancestors", "false".into())],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(
            &rest,
            &[
                "id",
                "iid",
                "sequence",
                "title",
                "description",
                "state",
                "start_date",
                "due_date",
                "created_at",
                "updated_at",
            ],
        );
        if let Some(c) = rest
            .get("iteration_cadence_id")
            .or(rest.get("iterations_cadence_id"))
            .filter(|c| !c.is_null())
        {
            r.insert("iterations_cadence_id".into(), c.clone());
        }
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
        let group = ctx.destination_id()?;
        // Cadences migrate a stage earlier, so the id map knows the cadence's destination id.
        let source_cadence = record
            .get("iterations_cadence_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string())
            .unwrap_or_default();
        let cadence_id = match ctx.ids.get("iterations_cadences", &source_cadence).await? {
            Some(id) => id,
            None => {
                return Err(LoadError {
                    class: "BulkImports::Error".into(),
                    message: format!(
                        "the iteration cadence {source_cadence} of this iteration was not migrated \
                         (see the iterations_cadences failures), so the iteration cannot be created"
                    ),
                    correlation_id: None,
                    unreachable: false,
                });
            }
        };
        let automatic = cadences(dest, group).await?.iter().any(|c| {
            id_of(c) == Some(cadence_id)
                && c.get("automatic").and_then(Value::as_bool) == Some(true)
        });
        let start = text(record, "start_date").to_string();
        let mut body = json!({
            "start_date": start,
            "due_date": text(record, "due_date"),
            "iteration_cadence_id": cadence_id,
        });
        for f in ["title", "description"] {
            if let Some(v) = record.get(f).filter(|v| !v.is_null()) {
                body[f] = v.clone();
            }
        }
        // An automatic cadence may already have scheduled this iteration at the destination.
        let path = format!("groups/{group}/iterations");
        create_once(dest, &path, &body, in_doubt || automatic, || async {
            let found = dest
                .list_all(&path, &[("include_ancestors", "false".into())])
                .await?;
            Ok(found
                .iter()
                .find(|i| {
                    i.get("iteration_cadence_id").and_then(Value::as_u64) == Some(cadence_id)
                        && text(i, "start_date") == start
                })
                .and_then(id_of))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iteration_record_names_its_cadence_and_keeps_its_dates() {
        let r = Iterations.transform(json!({
            "id": 9, "iid": 2, "sequence": 2, "group_id": 1, "title": null, "description": null,
            "state": 3, "start_date": "2023-01-02", "due_date": "2023-01-15",
            "web_url": "https://x/groups/a/-/iterations/9", "iteration_cadence_id": 4
        }));
        assert_eq!(r["iterations_cadence_id"], 4);
        assert_eq!(r["start_date"], "2023-01-02");
        assert_eq!(r["state"], 3);
        assert!(r.get("web_url").is_none() && r.get("title").is_none());
        assert_eq!(
            Iterations.title(&r).as_deref(),
            Some("2023-01-02..2023-01-15")
        );
    }

    #[test]
    fn a_cadence_record_keeps_its_scheduling() {
        let r = IterationsCadences.transform(json!({
            "id": 4, "title": "Sprints", "group_id": 1, "description": "d", "start_date": "2023-01-02",
            "duration_in_weeks": 2, "iterations_in_advance": 1, "active": true, "automatic": true,
            "roll_over": false
        }));
        for f in CADENCE_FIELDS {
            assert!(r.get(*f).is_some(), "{f}");
        }
        assert!(r.get("group_id").is_none());
    }
}

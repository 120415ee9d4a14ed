//! Group issue boards and their lists (GitLab's BoardsPipeline). A list points at a label, a milestone or
//! an iteration; ids differ between instances, so the record carries the title (and dates, for an
//! iteration) and the loader resolves it at the destination, in this group or its ancestors. Lists are
//! created in source position order, so the destination keeps their order. GitLab's backlog and closed
//! lists exist on every board and are never created. The board's own scope (milestone, labels,
//! assignee, weight) is not carried.

use super::{EntityContext, Extraction, LoadError, Relation, create_once, pick, text};
use crate::forge::{ForgeError, GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Boards;

/// A REST list (label, milestone or iteration list) in the export format of a board's `lists`.
fn list_record(rest: &Value) -> Value {
    let mut l = pick(
        rest,
        &[
            "id",
            "list_type",
            "position",
            "max_issue_count",
            "max_issue_weight",
        ],
    );
    if let Some(label) = rest.get("label").filter(|v| v.is_object()) {
        let mut r = pick(label, &["id", "color", "description"]);
        r.insert(
            "title".into(),
            label
                .get("name")
                .or(label.get("title"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        r.insert("type".into(), json!("GroupLabel"));
        l.insert(
            "label_id".into(),
            label.get("id").cloned().unwrap_or_default(),
        );
        l.insert("label".into(), Value::Object(r));
    }
    if let Some(m) = rest.get("milestone").filter(|v| v.is_object()) {
        l.insert(
            "milestone_id".into(),
            m.get("id").cloned().unwrap_or_default(),
        );
        l.insert(
            "milestone".into(),
            Value::Object(pick(
                m,
                &["id", "iid", "title", "state", "start_date", "due_date"],
            )),
        );
    }
    if let Some(i) = rest.get("iteration").filter(|v| v.is_object()) {
        l.insert(
            "iteration_id".into(),
            i.get("id").cloned().unwrap_or_default(),
        );
        l.insert(
            "iteration".into(),
            Value::Object(pick(i, &["id", "iid", "title", "start_date", "due_date"])),
        );
    }
    Value::Object(l)
}

/// What a list points at, resolved to a destination id: (the POST field, the destination id).
type Target = (&'static str, u64);

#[async_trait]
impl Relation for Boards {
    fn name(&self) -> &'static str {
        "boards"
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Common::Pipelines::BoardsPipeline"
    }
    fn extraction(&self, ctx: &EntityContext) -> Extraction {
        Extraction::List {
            path: format!("groups/{}/boards", ctx.source_id()),
            query: vec![],
        }
    }
    fn transform(&self, rest: Value) -> Value {
        let mut r = pick(
            &rest,
            &[
                "id",
                "name",
                "hide_backlog_list",
                "hide_closed_list",
                "created_at",
                "updated_at",
            ],
        );
        let mut lists: Vec<Value> = rest
            .get("lists")
            .and_then(Value::as_array)
            .map(|ls| ls.iter().map(list_record).collect())
            .unwrap_or_default();
        lists.sort_by_key(|l| {
            l.get("position")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX)
        });
        r.insert("lists".into(), Value::Array(lists));
        r.insert("labels".into(), json!([]));
        Value::Object(r)
    }
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let group = ctx.destination_id()?;
        let name = text(record, "name").to_string();
        let body = json!({ "name": name });
        let path = format!("groups/{group}/boards");
        // Always looked up first, not only in doubt: GitLab creates a default board when a group's boards
        // are first listed, and a same-named board in a group this migration created is that one or ours.
        let board = create_once(dest, &path, &body, true, || async {
            let found = dest.list_all(&path, &[]).await?;
            Ok(found
                .iter()
                .find(|b| text(b, "name") == name)
                .and_then(id_of))
        })
        .await?;

        // GitLab's create takes only the name; hiding the backlog or closed list is an update.
        let hidden = pick(record, &["hide_backlog_list", "hide_closed_list"]);
        if hidden.values().any(|v| v.as_bool() == Some(true)) {
            dest.client
                .put(&format!("{path}/{board}"), &Value::Object(hidden))
                .await?;
        }

        let lists_path = format!("groups/{group}/boards/{board}/lists");
        let existing = dest.list_all(&lists_path, &[]).await?;
        let mut problems = Vec::new();
        let mut lists: Vec<&Value> = record
            .get("lists")
            .and_then(Value::as_array)
            .map(|ls| ls.iter().collect())
            .unwrap_or_default();
        lists.sort_by_key(|l| {
            l.get("position")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX)
        });
        for list in lists {
            let target = match text(list, "list_type") {
                // Every board has these; GitLab creates them itself.
                "backlog" | "closed" | "" => continue,
                "label" => find_label(dest, group, list).await?,
                "milestone" => find_milestone(dest, group, list).await?,
                "iteration" => find_iteration(dest, group, list).await?,
                other => Err(format!(
                    "{other} lists are not migrated (they need the user mapping)"
                )),
            };
            let (field, id) = match target {
                Ok(t) => t,
                Err(why) => {
                    problems.push(why);
                    continue;
                }
            };
            if existing.iter().any(|l| points_at(l, field, id)) {
                continue;
            }
            create_once(dest, &lists_path, &json!({ field: id }), false, || async {
                let now = dest.list_all(&lists_path, &[]).await?;
                Ok(now.iter().find(|l| points_at(l, field, id)).and_then(id_of))
            })
            .await?;
        }
        if problems.is_empty() {
            Ok(board)
        } else {
            Err(LoadError {
                class: "BulkImports::Error".into(),
                message: format!(
                    "board `{name}` was created without some of its lists: {}",
                    problems.join("; ")
                ),
                correlation_id: None,
                unreachable: false,
            })
        }
    }
}

/// Whether a destination REST list is the list of `field` (`label_id` ...) `id`.
fn points_at(list: &Value, field: &str, id: u64) -> bool {
    let object = field.trim_end_matches("_id");
    list.get(object).and_then(id_of) == Some(id)
        || list.get(field).and_then(Value::as_u64) == Some(id)
}

fn nested<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.get(key).unwrap_or(&Value::Null)
}

type Resolved = Result<Result<Target, String>, ForgeError>;

/// The destination label with the list's label title, in the group or an ancestor.
async fn find_label(dest: &GitLab, group: u64, list: &Value) -> Resolved {
    let title = text(nested(list, "label"), "title");
    let found = dest
        .list_all(
            &format!("groups/{group}/labels"),
            &[
                ("search", title.to_string()),
                ("include_ancestor_groups", "true".into()),
            ],
        )
        .await?;
    Ok(found
        .iter()
        .find(|l| text(l, "name") == title)
        .and_then(id_of)
        .map(|id| ("label_id", id))
        .ok_or_else(|| format!("label `{title}` is not in the destination group or its ancestors")))
}

/// The destination milestone with the list's milestone title, in the group or an ancestor.
async fn find_milestone(dest: &GitLab, group: u64, list: &Value) -> Resolved {
    let title = text(nested(list, "milestone"), "title");
    let found = dest
        .list_all(
            &format!("groups/{group}/milestones"),
            &[
                ("title", title.to_string()),
                ("include_ancestors", "true".into()),
            ],
        )
        .await?;
    Ok(found
        .iter()
        .find(|m| text(m, "title") == title)
        .and_then(id_of)
        .map(|id| ("milestone_id", id))
        .ok_or_else(|| {
            format!("milestone `{title}` is not in the destination group or its ancestors")
        }))
}

/// The destination iteration with the list's iteration dates (an iteration's title may be empty), in
/// the group or an ancestor.
async fn find_iteration(dest: &GitLab, group: u64, list: &Value) -> Resolved {
    let it = nested(list, "iteration");
    let (start, due) = (text(it, "start_date"), text(it, "due_date"));
    let found = dest
        .list_all(
            &format!("groups/{group}/iterations"),
            &[("include_ancestors", "true".into())],
        )
        .await?;
    Ok(found
        .iter()
        .find(|i| {
            text(i, "start_date") == start
                && text(i, "due_date") == due
                && text(i, "title") == text(it, "title")
        })
        .and_then(id_of)
        .map(|id| ("iteration_id", id))
        .ok_or_else(|| {
            format!("iteration {start}..{due} is not in the destination group or its ancestors")
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rest_board_becomes_an_export_record_with_lists_in_position_order() {
        let rest = json!({
            "id": 7, "name": "Development", "hide_backlog_list": false, "hide_closed_list": true,
            "project": null, "milestone": null, "labels": [],
            "lists": [
                { "id": 3, "list_type": "milestone", "position": 2, "label": null,
                  "milestone": { "id": 40, "iid": 2, "title": "v2.0", "state": "active" } },
                { "id": 1, "list_type": "label", "position": 0,
                  "label": { "id": 10, "name": "bug", "color": "#d9534f", "description": "Broken" } },
                { "id": 2, "list_type": "label", "position": 1,
                  "label": { "id": 11, "name": "feature", "color": "#5cb85c", "description": null } }
            ]
        });
        let r = Boards.transform(rest);
        assert_eq!(r["name"], "Development");
        assert_eq!(r["hide_closed_list"], true);
        let lists = r["lists"].as_array().unwrap();
        let order: Vec<_> = lists
            .iter()
            .map(|l| l["position"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(lists[0]["label"]["title"], "bug");
        assert_eq!(lists[0]["label"]["type"], "GroupLabel");
        assert_eq!(lists[0]["label_id"], 10);
        assert_eq!(lists[1]["label"]["title"], "feature");
        assert_eq!(lists[2]["list_type"], "milestone");
        assert_eq!(lists[2]["milestone"]["title"], "v2.0");
        assert_eq!(lists[2]["milestone_id"], 40);
        assert!(lists[0].get("milestone").is_none());
    }

    #[test]
    fn a_list_is_recognised_by_its_object_or_its_id_field() {
        assert!(points_at(&json!({"label": {"id": 4}}), "label_id", 4));
        assert!(points_at(&json!({"milestone_id": 5}), "milestone_id", 5));
        assert!(!points_at(&json!({"label": {"id": 4}}), "milestone_id", 4));
    }
}

//! The history of an epic's state and labels: GitLab's resource state events (closed, reopened) and
//! resource label events (a label added or removed), each by the user who made the change.
//!
//! A live source lists both (`groups/:id/epics/:epic_id/resource_state_events` and
//! `.../resource_label_events`, by the epic's id), and the epic's record carries them as `events`: one
//! list in the source's order (by time, then id), each
//! `{"kind": "state", "state": "closed", "user": {..}, "created_at": ..}` or
//! `{"kind": "label", "action": "add", "label": "<title>", "user": {..}, "created_at": ..}`.
//! Records travel in bundles as they are, so a replay has the same history as a live migration.
//!
//! GitLab has no API that writes events: a destination gets them by doing what made them, in order,
//! each as the event's mapped user under the same rules as notes (`Sudo` with an administrator's
//! token; the importing user otherwise, for an unmapped user, or when GitLab refuses the mapped one):
//! closing or reopening the epic (`state_event`), adding or removing the label (`add_labels`,
//! `remove_labels`). What is kept: the order, the kind (the state, or the label action and title) and
//! the actor after mapping. What is not: the timestamps (known limit: the API cannot set them, so
//! every event is dated when it was replayed) and the ids. Afterwards the epic's labels and state are
//! made equal to the record's, so a history that does not end there (older than GitLab's events, or
//! naming a deleted label) never leaves a wrong final state.
//!
//! Never twice: the history is replayed as GitLab would record it from an epic created open and
//! without labels, so a step that changes nothing (reopening an open epic, adding a label it has) is
//! left out, as GitLab records nothing for it. When the page is in doubt, the destination epic's
//! events are compared with that history per kind (state, or action and label title; never ids or
//! times), and only the steps after the longest prefix it already has are replayed.

use super::authored::{acting_as, refused};
use super::epics::user_of;
use super::{LoadError, text};
use crate::forge::{ForgeError, GitLab};
use serde_json::{Value, json};

/// The epic's events as its record carries them, read from a live source (the epic by its `id`).
pub(super) async fn read(
    source: &GitLab,
    group: &str,
    epic_id: u64,
) -> Result<Vec<Value>, ForgeError> {
    let base = format!("groups/{group}/epics/{epic_id}");
    // (created_at, source id, event): sorted into one history below.
    let mut events: Vec<(String, u64, Value)> = Vec::new();
    for e in listed(source, &format!("{base}/resource_state_events")).await? {
        events.push(event(
            &e,
            json!({ "kind": "state", "state": text(&e, "state") }),
        ));
    }
    for e in listed(source, &format!("{base}/resource_label_events")).await? {
        // A label deleted since has no title to add or remove again: the final labels still arrive.
        let label = text(&e["label"], "name");
        if label.is_empty() {
            continue;
        }
        events.push(event(
            &e,
            json!({ "kind": "label", "action": text(&e, "action"), "label": label }),
        ));
    }
    events.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(events.into_iter().map(|(_, _, e)| e).collect())
}

/// Every item of an event list; none when the source keeps no such events (a GitLab older than
/// them answers 404).
async fn listed(source: &GitLab, path: &str) -> Result<Vec<Value>, ForgeError> {
    match source.list_all(path, &[]).await {
        Err(e) if e.status() == Some(404) => Ok(Vec::new()),
        other => other,
    }
}

fn event(rest: &Value, mut carried: Value) -> (String, u64, Value) {
    let created_at = text(rest, "created_at").to_string();
    carried["user"] = user_of(&rest["user"]);
    carried["created_at"] = json!(created_at);
    let id = rest.get("id").and_then(Value::as_u64).unwrap_or_default();
    (created_at, id, carried)
}

/// What one event changed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// `closed` or `reopened`.
    State(String),
    /// `add` or `remove`, and the label's title.
    Label(String, String),
}

impl Change {
    /// The epic update that makes this event.
    fn request(&self) -> Value {
        match self {
            Change::State(s) if s == "closed" => json!({ "state_event": "close" }),
            Change::State(_) => json!({ "state_event": "reopen" }),
            Change::Label(a, label) if a == "add" => json!({ "add_labels": label }),
            Change::Label(_, label) => json!({ "remove_labels": label }),
        }
    }
}

#[derive(Debug)]
struct Step {
    change: Change,
    user: Value,
}

/// The steps that reproduce a record's history on a new epic.
#[derive(Debug)]
pub(super) struct History {
    steps: Vec<Step>,
    labels: bool,
}

impl History {
    /// The history `record` carries; None for a record without `events` (from an older bundle),
    /// which loads as before events were migrated.
    pub(super) fn of(record: &Value) -> Option<History> {
        let events = record.get("events")?.as_array()?;
        let changes: Vec<(Change, &Value)> = events
            .iter()
            .filter_map(|e| {
                let change = match text(e, "kind") {
                    "state" => match text(e, "state") {
                        s @ ("closed" | "reopened") => Change::State(s.to_string()),
                        _ => return None,
                    },
                    "label" => match (text(e, "action"), text(e, "label")) {
                        (_, "") => return None,
                        (a @ ("add" | "remove"), label) => {
                            Change::Label(a.to_string(), label.to_string())
                        }
                        _ => return None,
                    },
                    _ => return None,
                };
                Some((change, &e["user"]))
            })
            .collect();
        let labels = changes.iter().any(|(c, _)| matches!(c, Change::Label(..)));
        // The epic is created open, and with the record's labels unless the history adds them.
        let mut closed = false;
        let mut has: Vec<String> = if labels {
            Vec::new()
        } else {
            record["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        let mut steps = Vec::new();
        for (change, user) in changes {
            let changes_something = match &change {
                Change::State(s) => {
                    let close = s == "closed";
                    std::mem::replace(&mut closed, close) != close
                }
                Change::Label(a, label) => match (a.as_str(), has.contains(label)) {
                    ("add", false) => {
                        has.push(label.clone());
                        true
                    }
                    ("remove", true) => {
                        has.retain(|l| l != label);
                        true
                    }
                    _ => false,
                },
            };
            if changes_something {
                steps.push(Step {
                    change,
                    user: user.clone(),
                });
            }
        }
        Some(History { steps, labels })
    }

    /// Whether the history adds the epic's labels (then it is created without them).
    pub(super) fn sets_labels(&self) -> bool {
        self.labels
    }

    /// Replays the history on the destination epic (`epics` = `groups/:group/epics`), the steps it
    /// does not have yet when `in_doubt`, then brings its labels and state to the record's.
    pub(super) async fn replay(
        &self,
        dest: &GitLab,
        epics: &str,
        iid: u64,
        id: u64,
        record: &Value,
        in_doubt: bool,
    ) -> Result<(), LoadError> {
        let done = if in_doubt {
            self.applied(dest, &format!("{epics}/{id}")).await?
        } else {
            0
        };
        let epic = format!("{epics}/{iid}");
        for step in &self.steps[done..] {
            let body = step.change.request();
            let by = acting_as(dest, &step.user).await?;
            let by = by.as_deref();
            match dest
                .client
                .put_as(&epic, &body, by)
                .await
                .map_err(LoadError::from)
            {
                // The user cannot change the epic there: the importing user does.
                Err(e) if by.is_some() && refused(&e) => {
                    dest.client.put(&epic, &body).await?;
                }
                other => {
                    other?;
                }
            }
        }
        settle(dest, &epic, record).await
    }

    /// How many steps the destination epic (`epic` = `groups/:group/epics/:id`) already has: the
    /// longest prefix of the history whose state events and label events both begin its own.
    async fn applied(&self, dest: &GitLab, epic: &str) -> Result<usize, LoadError> {
        let states: Vec<Change> = dest
            .list_all(&format!("{epic}/resource_state_events"), &[])
            .await?
            .iter()
            .map(|e| Change::State(text(e, "state").to_string()))
            .collect();
        let labels: Vec<Change> = dest
            .list_all(&format!("{epic}/resource_label_events"), &[])
            .await?
            .iter()
            .map(|e| {
                Change::Label(
                    text(e, "action").to_string(),
                    text(&e["label"], "name").to_string(),
                )
            })
            .collect();
        Ok(applied_prefix(&self.steps, &states, &labels))
    }
}

/// The number of leading `steps` found in order at the start of the destination's `states` and
/// `labels` (each kind is listed on its own, so each is compared on its own).
fn applied_prefix(steps: &[Step], states: &[Change], labels: &[Change]) -> usize {
    let (mut s, mut l) = (0, 0);
    for (n, step) in steps.iter().enumerate() {
        let (have, next) = match step.change {
            Change::State(_) => (states, &mut s),
            Change::Label(..) => (labels, &mut l),
        };
        if have.get(*next) != Some(&step.change) {
            return n;
        }
        *next += 1;
    }
    steps.len()
}

/// Makes the epic's labels and state the record's, by the importing user, where its history did not.
async fn settle(dest: &GitLab, epic: &str, record: &Value) -> Result<(), LoadError> {
    let now = dest.client.get(epic, &[]).await?;
    let names = |v: &Value| -> Vec<String> {
        v["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let want = names(record);
    let mut body = serde_json::Map::new();
    if names(&now) != want {
        body.insert("labels".into(), json!(want.join(",")));
    }
    match (text(record, "state"), text(&now, "state")) {
        ("closed", s) if s != "closed" => {
            body.insert("state_event".into(), json!("close"));
        }
        ("opened", "closed") => {
            body.insert("state_event".into(), json!("reopen"));
        }
        _ => {}
    }
    if !body.is_empty() {
        dest.client.put(epic, &Value::Object(body)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[&str], events: Value) -> Value {
        json!({ "labels": labels, "state": "closed", "events": events })
    }

    fn changes(h: &History) -> Vec<Change> {
        h.steps.iter().map(|s| s.change.clone()).collect()
    }

    fn state(s: &str) -> Change {
        Change::State(s.into())
    }

    fn label(a: &str, l: &str) -> Change {
        Change::Label(a.into(), l.into())
    }

    #[test]
    fn a_record_without_events_has_no_history() {
        assert!(History::of(&json!({ "labels": ["a"], "state": "closed" })).is_none());
        let empty = History::of(&record(&["a"], json!([]))).unwrap();
        assert!(empty.steps.is_empty() && !empty.sets_labels());
    }

    #[test]
    fn steps_that_would_change_nothing_are_left_out() {
        let h = History::of(&record(
            &["b"],
            json!([
                { "kind": "state", "state": "reopened", "user": {"username": "u"} },
                { "kind": "label", "action": "add", "label": "a" },
                { "kind": "label", "action": "add", "label": "a" },
                { "kind": "state", "state": "closed" },
                { "kind": "state", "state": "closed" },
                { "kind": "label", "action": "remove", "label": "c" },
                { "kind": "label", "action": "remove", "label": "a" },
                { "kind": "label", "action": "add", "label": "b" },
                { "kind": "label", "action": "add", "label": "" },
                { "kind": "milestone", "action": "add" },
            ]),
        ))
        .unwrap();
        assert!(h.sets_labels());
        assert_eq!(
            changes(&h),
            vec![
                label("add", "a"),
                state("closed"),
                label("remove", "a"),
                label("add", "b")
            ]
        );
    }

    #[test]
    fn without_label_events_the_record_labels_are_there_from_creation() {
        let h = History::of(&record(
            &["a"],
            json!([{ "kind": "state", "state": "closed" }]),
        ))
        .unwrap();
        assert!(!h.sets_labels());
        assert_eq!(changes(&h), vec![state("closed")]);
    }

    #[test]
    fn the_applied_prefix_is_compared_per_kind() {
        let h = History::of(&record(
            &[],
            json!([
                { "kind": "state", "state": "closed" },
                { "kind": "label", "action": "add", "label": "a" },
                { "kind": "state", "state": "reopened" },
                { "kind": "label", "action": "remove", "label": "a" },
                { "kind": "state", "state": "closed" },
            ]),
        ))
        .unwrap();
        let n = |states: &[Change], labels: &[Change]| applied_prefix(&h.steps, states, labels);
        assert_eq!(n(&[], &[]), 0);
        assert_eq!(n(&[state("closed")], &[]), 1);
        assert_eq!(n(&[state("closed")], &[label("add", "a")]), 2);
        assert_eq!(
            n(&[state("closed"), state("reopened")], &[label("add", "a")]),
            3
        );
        // A label event the destination has beyond the prefix does not skip a missing state event.
        assert_eq!(
            n(
                &[state("closed")],
                &[label("add", "a"), label("remove", "a")]
            ),
            2
        );
        let all = [state("closed"), state("reopened"), state("closed")];
        let both = [label("add", "a"), label("remove", "a")];
        assert_eq!(n(&all, &both), 5);
        // Events the importer added after the history (settling) are not part of it.
        let more = [
            state("closed"),
            state("reopened"),
            state("closed"),
            state("reopened"),
        ];
        assert_eq!(n(&more, &both), 5);
        // A destination whose history differs from the start has none of it.
        assert_eq!(n(&[state("reopened")], &[]), 0);
        assert_eq!(n(&[], &[label("add", "b")]), 0);
    }

    #[test]
    fn each_change_is_made_by_the_update_gitlab_records_it_for() {
        assert_eq!(state("closed").request(), json!({ "state_event": "close" }));
        assert_eq!(
            state("reopened").request(),
            json!({ "state_event": "reopen" })
        );
        assert_eq!(
            label("add", "déjà vu").request(),
            json!({ "add_labels": "déjà vu" })
        );
        assert_eq!(
            label("remove", "x").request(),
            json!({ "remove_labels": "x" })
        );
    }
}

//! Groups, iteration cadences and iterations through GraphQL: the `group` query with its
//! `iterationCadences` and `iterations` connections, and the `iterationCadenceCreate` and
//! `iterationCreate` mutations with the validations of GitLab's `Iterations::Cadence` and `Iteration`
//! models, worded as GitLab words them (`errors` of the payload). Global ids look like
//! `gid://gitlab/Iterations::Cadence/12` and `gid://gitlab/Iteration/34`; times are ISO 8601 without
//! fractions and dates `YYYY-MM-DD`, as GitLab's `Time` type prints them.
//!
//! GitLab's rules for automatic cadences are kept: one whose first iteration would already be over is
//! refused, iterations cannot be added by hand to one, and a manual cadence converted to automatic
//! (`iterationCadenceUpdate`) starts where its first iteration starts. Not simulated: GitLab's
//! background scheduling of upcoming iterations.

use serde_json::{Map, Value, json};

use super::{Exec, NOT_AVAILABLE, Obj, Resolved, connection};
use crate::model::{Group, Iteration, IterationCadence, Parent, access};
use crate::routes::iterations::state_name;
use crate::state::{Sim, Store};
use crate::timestamp::{format_date, format_time};

const CADENCE_CLASS: &str = "Iterations::Cadence";
const ITERATION_CLASS: &str = "Iteration";

/// `gid://gitlab/<class>/<id>`.
fn gid(class: &str, id: u64) -> String {
    format!("gid://gitlab/{class}/{id}")
}

/// The id of a global id of `class`; Err with GitLab's coercion message otherwise.
fn parse_gid(value: &str, class: &str) -> Result<u64, String> {
    let rest = value
        .strip_prefix("gid://gitlab/")
        .ok_or_else(|| format!("\"{value}\" is not a valid Global ID"))?;
    let (found, id) = rest
        .rsplit_once('/')
        .ok_or_else(|| format!("\"{value}\" is not a valid Global ID"))?;
    if found != class {
        return Err(format!(
            "\"{value}\" does not represent an instance of {class}"
        ));
    }
    id.parse()
        .map_err(|_| format!("\"{value}\" is not a valid Global ID"))
}

/// A stored timestamp (`2024-01-02T03:04:05.678Z`) as GitLab's `Time` prints it (no fraction).
pub(super) fn gitlab_time(stored: &str) -> String {
    match stored.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => stored.to_string(),
    }
}

fn today() -> String {
    format_date(time::OffsetDateTime::now_utc().date())
}

/// `group(fullPath:)`: the group, or null when the user cannot see it.
pub fn group(store: &Store, user_id: u64, args: &Map<String, Value>) -> Resolved {
    let path = args.get("fullPath").and_then(Value::as_str).unwrap_or("");
    match store.group_by_path(path) {
        Some(g) if store.group_access(user_id, g.id).is_some() => {
            Resolved::Object(Obj::Group(Box::new(g.clone())))
        }
        _ => Resolved::Null,
    }
}

pub fn group_field(
    exec: &Exec,
    g: &Group,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Resolved, String> {
    Ok(Resolved::Value(match name {
        "id" => json!(gid("Group", g.id)),
        "name" => json!(g.name),
        "path" => json!(g.path),
        "fullPath" => json!(g.full_path),
        "fullName" => json!(g.full_name),
        "webUrl" => json!(format!("{}/groups/{}", exec.sim.base_url, g.full_path)),
        "iterationCadences" => return cadences(exec.store, g, args).map(Resolved::Object),
        "iterations" => return iterations(exec.store, g, args).map(Resolved::Object),
        _ => Value::Null,
    }))
}

/// The group's cadences (and its ancestors' with `includeAncestorGroups`), by title.
fn cadences(store: &Store, g: &Group, args: &Map<String, Value>) -> Result<Obj, String> {
    let groups = if args.get("includeAncestorGroups") == Some(&json!(true)) {
        store.ancestors(g.id)
    } else {
        vec![g.id]
    };
    let id = match args.get("id").and_then(Value::as_str) {
        // GitLab also takes a bare number here.
        Some(raw) => Some(
            raw.parse::<u64>()
                .or_else(|_| parse_gid(raw, CADENCE_CLASS))?,
        ),
        None => None,
    };
    let title = args
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let mut found: Vec<&IterationCadence> = groups
        .into_iter()
        .flat_map(|gid| store.cadences.children(Parent::Group(gid)))
        .filter(|c| id.is_none_or(|id| c.id == id))
        .filter(|c| {
            title
                .as_ref()
                .is_none_or(|t| c.title.to_lowercase().contains(t))
        })
        .filter(|c| {
            args.get("durationInWeeks")
                .and_then(Value::as_u64)
                .is_none_or(|d| c.duration_in_weeks == Some(d))
        })
        .filter(|c| {
            args.get("automatic")
                .and_then(Value::as_bool)
                .is_none_or(|a| c.automatic == a)
        })
        .filter(|c| {
            args.get("active")
                .and_then(Value::as_bool)
                .is_none_or(|a| c.active == a)
        })
        .collect();
    found.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id)));
    connection(
        "IterationCadenceConnection",
        found.into_iter().map(|c| Obj::Cadence(c.clone())).collect(),
        args,
    )
}

/// The group's iterations: with its ancestors' unless `includeAncestors: false` (or an `iid` is
/// asked for), by due date.
fn iterations(store: &Store, g: &Group, args: &Map<String, Value>) -> Result<Obj, String> {
    let iid = args.get("iid").and_then(|v| match v {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    });
    let ancestors = args
        .get("includeAncestors")
        .and_then(Value::as_bool)
        .unwrap_or(iid.is_none());
    let mut groups = if ancestors {
        store.ancestors(g.id)
    } else {
        vec![g.id]
    };
    if args.get("includeDescendants") == Some(&json!(true)) {
        groups.extend(store.descendant_groups(g.id).iter().map(|d| d.id));
    }
    let id = match args.get("id").and_then(Value::as_str) {
        Some(raw) => Some(
            raw.parse::<u64>()
                .or_else(|_| parse_gid(raw, ITERATION_CLASS))?,
        ),
        None => None,
    };
    let cadence_ids = match args.get("iterationCadenceIds").and_then(Value::as_array) {
        Some(ids) => Some(
            ids.iter()
                .map(|v| parse_gid(v.as_str().unwrap_or_default(), CADENCE_CLASS))
                .collect::<Result<Vec<u64>, String>>()?,
        ),
        None => None,
    };
    let state = args.get("state").and_then(Value::as_str).unwrap_or("all");
    let search = args
        .get("search")
        .or(args.get("title"))
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let mut found: Vec<&Iteration> = groups
        .into_iter()
        .flat_map(|gid| store.iterations.children(Parent::Group(gid)))
        .filter(|i| id.is_none_or(|id| i.id == id))
        .filter(|i| iid.is_none_or(|iid| i.iid == iid))
        .filter(|i| {
            cadence_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&i.cadence_id))
        })
        .filter(|i| match state {
            "all" => true,
            "opened" => i.state != 3,
            "started" => i.state == 2,
            s => state_name(i.state) == s,
        })
        .filter(|i| {
            search.as_ref().is_none_or(|s| {
                i.title
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(s)
            })
        })
        .collect();
    found.sort_by(|a, b| {
        a.due_date
            .cmp(&b.due_date)
            .then(a.title.cmp(&b.title))
            .then(a.id.cmp(&b.id))
    });
    if args.get("sort").and_then(Value::as_str) == Some("CADENCE_AND_DUE_DATE_ASC") {
        found.sort_by(|a, b| {
            (a.cadence_id, &a.due_date, a.id).cmp(&(b.cadence_id, &b.due_date, b.id))
        });
    } else if args.get("sort").and_then(Value::as_str) == Some("CADENCE_AND_DUE_DATE_DESC") {
        found.sort_by(|a, b| {
            (b.cadence_id, &b.due_date, b.id).cmp(&(a.cadence_id, &a.due_date, a.id))
        });
    }
    connection(
        "IterationConnection",
        found
            .into_iter()
            .map(|i| Obj::Iteration(i.clone()))
            .collect(),
        args,
    )
}

pub fn cadence_field(c: &IterationCadence, name: &str) -> Value {
    match name {
        "id" => json!(gid(CADENCE_CLASS, c.id)),
        "title" => json!(c.title),
        "description" => json!(c.description),
        "automatic" => json!(c.automatic),
        "startDate" => json!(c.start_date),
        "durationInWeeks" => json!(c.duration_in_weeks),
        "iterationsInAdvance" => json!(c.iterations_in_advance),
        "active" => json!(c.active),
        "rollOver" => json!(c.roll_over),
        _ => Value::Null,
    }
}

pub fn iteration_field(exec: &Exec, i: &Iteration, name: &str) -> Resolved {
    let group_path = exec
        .store
        .group(i.group_id)
        .map(|g| g.full_path.clone())
        .unwrap_or_default();
    let path = format!("/groups/{group_path}/-/iterations/{}", i.id);
    Resolved::Value(match name {
        "id" => json!(gid(ITERATION_CLASS, i.id)),
        "iid" => json!(i.iid.to_string()),
        "sequence" => json!(i.sequence),
        "title" => json!(i.title),
        "description" => json!(i.description),
        "state" => json!(state_name(i.state)),
        "startDate" => json!(i.start_date),
        "dueDate" => json!(i.due_date),
        "createdAt" => json!(gitlab_time(&i.created_at)),
        "updatedAt" => json!(gitlab_time(&i.updated_at)),
        "webPath" => json!(path),
        "webUrl" => json!(format!("{}{path}", exec.sim.base_url)),
        "iterationCadence" => {
            return match exec.store.cadences.get(i.cadence_id) {
                Some(c) => Resolved::Object(Obj::Cadence(c.clone())),
                None => Resolved::Null,
            };
        }
        _ => Value::Null,
    })
}

/// The group a mutation writes to, when the user may create iterations and cadences there.
fn writable_group(store: &Store, user_id: u64, input: &Map<String, Value>) -> Result<u64, String> {
    let path = input
        .get("groupPath")
        .and_then(Value::as_str)
        .ok_or(NOT_AVAILABLE)?;
    let group = store.group_by_path(path).ok_or(NOT_AVAILABLE)?;
    match store.group_access(user_id, group.id) {
        Some(level) if level >= access::REPORTER => Ok(group.id),
        _ => Err(NOT_AVAILABLE.into()),
    }
}

fn text(input: &Map<String, Value>, key: &str) -> Option<String> {
    input.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A `Date` column set from a string: `YYYY-MM-DD` (a longer time keeps its date); anything else is
/// blank, as Rails casts it.
fn date(input: &Map<String, Value>, key: &str) -> Option<String> {
    let raw = input.get(key)?.as_str()?.trim();
    let day = raw.get(..10)?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format).ok().map(format_date)
}

fn payload(
    type_name: &'static str,
    field: &'static str,
    record: Option<Obj>,
    errors: Vec<String>,
) -> Resolved {
    Resolved::Object(Obj::Payload {
        type_name,
        field,
        record: record.map(Box::new),
        errors,
        client_mutation_id: Value::Null,
    })
}

/// `iterationCadenceCreate`: validated as `Iterations::Cadence` is. A manual cadence keeps no
/// scheduling (GitLab clears its duration, iterations in advance and roll over).
pub fn create_cadence(
    sim: &Sim,
    user_id: u64,
    input: Map<String, Value>,
) -> Result<Resolved, String> {
    let mut store = sim.write();
    let group_id = writable_group(&store, user_id, &input)?;
    let start_date = match input.get("startDate").and_then(Value::as_str) {
        Some(raw) => Some(
            date(&input, "startDate").ok_or_else(|| format!("no time information in \"{raw}\""))?,
        ),
        None => None,
    };
    let automatic = input
        .get("automatic")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let number = |key: &str| input.get(key).and_then(Value::as_i64);
    let (mut duration, mut in_advance) = (number("durationInWeeks"), number("iterationsInAdvance"));
    let mut roll_over = input
        .get("rollOver")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !automatic {
        (duration, in_advance, roll_over) = (None, None, false);
    }
    let title = text(&input, "title").filter(|t| !t.trim().is_empty());
    let description = text(&input, "description");
    let mut errors = Vec::new();
    if title.is_none() {
        errors.push("Title can't be blank".to_string());
    }
    if automatic && start_date.is_none() {
        errors.push("Start date can't be blank".into());
    }
    if duration.is_some_and(|d| !(0..=4).contains(&d)) {
        errors.push("Duration in weeks is not included in the list".into());
    }
    if automatic && duration.is_none() {
        errors.push("Duration in weeks can't be blank".into());
    }
    if in_advance.is_some_and(|n| !(0..=10).contains(&n)) {
        errors.push("Iterations in advance is not included in the list".into());
    }
    if automatic && in_advance.is_none() {
        errors.push("Iterations in advance can't be blank".into());
    }
    if automatic
        && let (Some(start), Some(weeks)) = (&start_date, duration)
        && first_iteration_over(start, weeks)
    {
        errors.push(PAST_START.into());
    }
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 5000)
    {
        errors.push("Description is too long (maximum is 5000 characters)".into());
    }
    let (Some(title), true) = (title, errors.is_empty()) else {
        return Ok(payload(
            "IterationCadenceCreatePayload",
            "iterationCadence",
            None,
            errors,
        ));
    };
    let cadence = IterationCadence {
        id: store.cadences.next_id(),
        group_id,
        title,
        description,
        start_date: start_date.unwrap_or_else(today),
        duration_in_weeks: duration.map(|d| d as u64),
        iterations_in_advance: in_advance.map(|n| n as u64),
        active: input.get("active").and_then(Value::as_bool).unwrap_or(true),
        automatic,
        roll_over,
    };
    store.cadences.insert(cadence.clone());
    Ok(payload(
        "IterationCadenceCreatePayload",
        "iterationCadence",
        Some(Obj::Cadence(cadence)),
        Vec::new(),
    ))
}

/// `iterationCreate`: in the given cadence (or the group's first manual one, created when there is
/// none, as GitLab does), validated as `Iteration` is: both dates, the due date not before the start,
/// no overlap with another iteration of the cadence, a title unique within the cadence.
pub fn create_iteration(
    sim: &Sim,
    user_id: u64,
    input: Map<String, Value>,
) -> Result<Resolved, String> {
    let attributes = input
        .keys()
        .filter(|k| !matches!(k.as_str(), "groupPath" | "projectPath" | "clientMutationId"))
        .count();
    if attributes == 0 {
        return Err("The list of iteration attributes is empty".into());
    }
    let cadence_gid = match input.get("iterationsCadenceId").and_then(Value::as_str) {
        Some(raw) => Some(parse_gid(raw, CADENCE_CLASS)?),
        None => None,
    };
    let mut store = sim.write();
    let group_id = writable_group(&store, user_id, &input)?;
    let refused =
        |errors: Vec<String>| Ok(payload("iterationCreatePayload", "iteration", None, errors));
    let start_date = date(&input, "startDate");
    let due_date = date(&input, "dueDate");
    let cadence_id = match cadence_gid {
        Some(id) => match store.cadences.get(id) {
            None => {
                return refused(vec![format!(
                    "Couldn't find Iterations::Cadence with 'id'={id}"
                )]);
            }
            Some(c) if c.group_id != group_id => {
                return refused(vec![
                    "Group is not valid. The iteration group has to match the iteration cadence group."
                        .into(),
                ]);
            }
            Some(c) if c.automatic => {
                return refused(vec![MANUAL_IN_AUTOMATIC.into()]);
            }
            Some(c) => c.id,
        },
        None => default_cadence(&mut store, group_id, start_date.clone()),
    };
    let title = text(&input, "title").filter(|t| !t.trim().is_empty());
    let mut errors = Vec::new();
    if start_date.is_none() {
        errors.push("Start date can't be blank".to_string());
    }
    if due_date.is_none() {
        errors.push("Due date can't be blank".into());
    }
    if let (Some(start), Some(due)) = (&start_date, &due_date) {
        if due < start {
            errors.push("Due date must be greater than start date".into());
        }
        let overlaps = store
            .iterations
            .children(Parent::Group(group_id))
            .any(|i| i.cadence_id == cadence_id && &i.start_date <= due && &i.due_date >= start);
        if overlaps {
            errors.push(
                "Dates cannot overlap with other existing Iterations within this iterations cadence"
                    .into(),
            );
        }
    }
    if let Some(t) = &title {
        let taken = store
            .iterations
            .children(Parent::Group(group_id))
            .any(|i| i.cadence_id == cadence_id && i.title.as_deref() == Some(t));
        if taken {
            errors
                .push("Title already being used for another iteration within this cadence.".into());
        }
    }
    let (Some(start_date), Some(due_date), true) = (start_date, due_date, errors.is_empty()) else {
        return refused(errors);
    };
    let today = today();
    let state = if start_date > today {
        1
    } else if due_date >= today {
        2
    } else {
        3
    };
    let now = format_time(time::OffsetDateTime::now_utc());
    let id = store.iterations.next_id();
    let iteration = Iteration {
        id,
        iid: store.iterations.next_iid(Parent::Group(group_id)),
        sequence: 0,
        group_id,
        cadence_id,
        title,
        description: text(&input, "description"),
        state,
        start_date,
        due_date,
        created_at: now.clone(),
        updated_at: now,
    };
    store.iterations.insert(iteration);
    resequence(&mut store, group_id, cadence_id);
    let created = store.iterations.get(id).cloned().map(Obj::Iteration);
    Ok(payload(
        "iterationCreatePayload",
        "iteration",
        created,
        Vec::new(),
    ))
}

/// `iterationCadenceUpdate`: changes a cadence's settings. Turning a manual cadence automatic makes it
/// start where its first iteration starts (GitLab keeps the iterations it has) and requires the
/// scheduling fields an automatic cadence has.
pub fn update_cadence(
    sim: &Sim,
    user_id: u64,
    input: Map<String, Value>,
) -> Result<Resolved, String> {
    let raw = input
        .get("id")
        .and_then(Value::as_str)
        .ok_or(NOT_AVAILABLE)?;
    let id = parse_gid(raw, CADENCE_CLASS)?;
    let mut store = sim.write();
    let mut cadence = store.cadences.get(id).cloned().ok_or(NOT_AVAILABLE)?;
    match store.group_access(user_id, cadence.group_id) {
        Some(level) if level >= access::REPORTER => {}
        _ => return Err(NOT_AVAILABLE.into()),
    }
    let number = |key: &str| input.get(key).and_then(Value::as_i64);
    let flag = |key: &str| input.get(key).and_then(Value::as_bool);
    let was_automatic = cadence.automatic;
    if let Some(t) = text(&input, "title") {
        cadence.title = t;
    }
    if input.contains_key("description") {
        cadence.description = text(&input, "description");
    }
    if let Some(a) = flag("active") {
        cadence.active = a;
    }
    if let Some(a) = flag("automatic") {
        cadence.automatic = a;
    }
    if let Some(r) = flag("rollOver") {
        cadence.roll_over = r;
    }
    if let Some(d) = number("durationInWeeks") {
        cadence.duration_in_weeks = Some(d.max(0) as u64);
    }
    if let Some(n) = number("iterationsInAdvance") {
        cadence.iterations_in_advance = Some(n.max(0) as u64);
    }
    let mut errors = Vec::new();
    if cadence.title.trim().is_empty() {
        errors.push("Title can't be blank".to_string());
    }
    if cadence.automatic && !was_automatic {
        let first = store
            .iterations
            .children(Parent::Group(cadence.group_id))
            .filter(|i| i.cadence_id == id)
            .map(|i| i.start_date.clone())
            .min();
        match (first, date(&input, "startDate")) {
            (Some(first), _) => cadence.start_date = first,
            (None, Some(start)) => cadence.start_date = start,
            (None, None) => errors.push("Start date can't be blank".into()),
        }
    }
    if cadence.automatic {
        match cadence.duration_in_weeks {
            None => errors.push("Duration in weeks can't be blank".into()),
            Some(d) if d > 4 => errors.push("Duration in weeks is not included in the list".into()),
            Some(_) => {}
        }
        match cadence.iterations_in_advance {
            None => errors.push("Iterations in advance can't be blank".into()),
            Some(n) if n > 10 => {
                errors.push("Iterations in advance is not included in the list".into())
            }
            Some(_) => {}
        }
    } else {
        (
            cadence.duration_in_weeks,
            cadence.iterations_in_advance,
            cadence.roll_over,
        ) = (None, None, false);
    }
    if !errors.is_empty() {
        return Ok(payload(
            "IterationCadenceUpdatePayload",
            "iterationCadence",
            None,
            errors,
        ));
    }
    if let Some(stored) = store.cadences.get_mut(id) {
        *stored = cadence.clone();
    }
    Ok(payload(
        "IterationCadenceUpdatePayload",
        "iterationCadence",
        Some(Obj::Cadence(cadence)),
        Vec::new(),
    ))
}

/// What GitLab says of an automatic cadence whose first iteration would already be over, and of an
/// iteration added by hand to an automatic cadence.
const PAST_START: &str = "Start date cannot be in the past: automatic scheduling would create iterations that are already over";
const MANUAL_IN_AUTOMATIC: &str =
    "Iterations cannot be manually added to cadences that use automatic scheduling";

/// Whether a cadence starting on `start` (YYYY-MM-DD) with iterations of `weeks` weeks has its first
/// iteration over already.
fn first_iteration_over(start: &str, weeks: i64) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(start) = time::Date::parse(start, &format) else {
        return false;
    };
    let end = start + time::Duration::weeks(weeks.max(1));
    end <= time::OffsetDateTime::now_utc().date()
}

/// GitLab's default cadence for an iteration created without one: the group's first manual cadence,
/// else a new one named after the group.
fn default_cadence(store: &mut Store, group_id: u64, start_date: Option<String>) -> u64 {
    if let Some(c) = store
        .cadences
        .children(Parent::Group(group_id))
        .find(|c| !c.automatic)
    {
        return c.id;
    }
    let name = store
        .group(group_id)
        .map(|g| g.name.clone())
        .unwrap_or_default();
    let id = store.cadences.next_id();
    store.cadences.insert(IterationCadence {
        id,
        group_id,
        title: format!("{name} Iterations"),
        description: None,
        start_date: start_date.unwrap_or_else(today),
        duration_in_weeks: Some(2),
        iterations_in_advance: Some(2),
        active: true,
        automatic: false,
        roll_over: false,
    });
    id
}

/// Numbers a cadence's iterations by start date, as GitLab does after each save.
fn resequence(store: &mut Store, group_id: u64, cadence_id: u64) {
    let mut ids: Vec<(String, u64)> = store
        .iterations
        .children(Parent::Group(group_id))
        .filter(|i| i.cadence_id == cadence_id)
        .map(|i| (i.start_date.clone(), i.id))
        .collect();
    ids.sort();
    for (n, (_, id)) in ids.into_iter().enumerate() {
        if let Some(i) = store.iterations.get_mut(id) {
            i.sequence = n as u64 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_name_their_class() {
        assert_eq!(
            gid(CADENCE_CLASS, 12),
            "gid://gitlab/Iterations::Cadence/12"
        );
        assert_eq!(
            parse_gid("gid://gitlab/Iterations::Cadence/12", CADENCE_CLASS),
            Ok(12)
        );
        assert_eq!(
            parse_gid("gid://gitlab/Iteration/12", CADENCE_CLASS),
            Err("\"gid://gitlab/Iteration/12\" does not represent an instance of Iterations::Cadence".into())
        );
        assert!(parse_gid("12", CADENCE_CLASS).is_err());
    }

    #[test]
    fn times_print_without_fractions() {
        assert_eq!(
            gitlab_time("2023-03-23T16:07:38.228Z"),
            "2023-03-23T16:07:38Z"
        );
    }
}

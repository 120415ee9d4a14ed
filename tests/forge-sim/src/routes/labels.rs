//! Group and project labels: list (with ancestor groups' labels, as GitLab does by default),
//! read by id or name, create (409 `Label already exists`), update.
//! It never renames labels on issues or epics that carry them.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Label, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::Store;

/// The text color GitLab picks for a background color.
pub fn text_color(color: &str) -> String {
    let hex = color.trim_start_matches('#');
    let full: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_string()
    };
    let channel =
        |i: usize| u8::from_str_radix(full.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    let luminance = 0.299 * f64::from(channel(0))
        + 0.587 * f64::from(channel(2))
        + 0.114 * f64::from(channel(4));
    if luminance > 186.0 {
        "#1F1E24"
    } else {
        "#FFFFFF"
    }
    .to_string()
}

const NAMED_COLORS: [&str; 12] = [
    "red", "green", "blue", "yellow", "orange", "purple", "black", "white", "gray", "grey", "pink",
    "brown",
];

fn color_valid(color: &str) -> bool {
    match color.strip_prefix('#') {
        Some(hex) => {
            (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => NAMED_COLORS.contains(&color.to_ascii_lowercase().as_str()),
    }
}

/// The label as GitLab's `Label`/`ProjectLabel` entities print it (no counts).
pub fn render(label: &Label) -> Value {
    json!({
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "description_html": label.description.as_deref().map(|d| format!("<p dir=\"auto\">{d}</p>")).unwrap_or_default(),
        "text_color": label.text_color,
        "color": label.color,
        "subscribed": false,
        "priority": label.priority,
        "is_project_label": matches!(label.owner, Parent::Project(_)),
        "archived": false,
    })
}

/// `with_counts=true`: open and closed issues and open merge requests carrying the label,
/// within the group's projects or the project.
fn render_with_counts(store: &Store, scope: &Scope, label: &Label) -> Value {
    let projects: Vec<u64> = match scope.parent {
        Parent::Project(id) => vec![id],
        other => store
            .projects
            .values()
            .filter(|p| store.ancestors(p.namespace_id).contains(&other.id()))
            .map(|p| p.id)
            .collect(),
    };
    let (mut open, mut closed, mut mrs) = (0, 0, 0);
    for pid in projects {
        for issue in store.issues.children(Parent::Project(pid)) {
            if issue.labels.contains(&label.name) {
                if issue.state == "opened" {
                    open += 1;
                } else {
                    closed += 1;
                }
            }
        }
        mrs += store
            .merge_requests
            .children(Parent::Project(pid))
            .filter(|m| m.state == "opened" && m.labels.contains(&label.name))
            .count();
    }
    let mut value = render(label);
    super::users::merge(
        &mut value,
        json!({
            "open_issues_count": open,
            "closed_issues_count": closed,
            "open_merge_requests_count": mrs,
        }),
    );
    value
}

/// Labels visible in a group or project: its own and, optionally, its ancestor groups'.
pub fn available(store: &Store, owner: Parent, ancestors: bool) -> Vec<&Label> {
    let mut owners = vec![owner];
    if ancestors {
        let group = match owner {
            Parent::Project(id) => store.project(id).map(|p| p.namespace_id),
            Parent::Group(id) => store.group(id).and_then(|g| g.parent_id),
            _ => None,
        };
        if let Some(gid) = group {
            owners.extend(store.ancestors(gid).into_iter().map(Parent::Group));
        }
    }
    owners
        .into_iter()
        .flat_map(|o| store.labels.children(o))
        .collect()
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let ancestors = ctx.params.bool("include_ancestor_groups")?.unwrap_or(true);
    let search = ctx.params.text("search").map(|s| s.to_lowercase());
    let mut labels = available(&store, scope.parent, ancestors);
    if ctx
        .params
        .bool("include_descendant_groups")?
        .unwrap_or(false)
    {
        for group in store.descendant_groups(scope.parent.id()) {
            labels.extend(store.labels.children(Parent::Group(group.id)));
        }
    }
    labels.retain(|l| {
        search
            .as_ref()
            .is_none_or(|s| l.name.to_lowercase().contains(s))
    });
    labels.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let with_counts = ctx.params.bool("with_counts")?.unwrap_or(false);
    paginate(
        ctx,
        labels,
        Keyset::NotOffered,
        |l| l.id,
        |l| {
            if with_counts {
                render_with_counts(&store, scope, l)
            } else {
                render(l)
            }
        },
    )
}

fn find<'s>(store: &'s Store, scope: &Scope, raw: &str) -> Result<&'s Label, ApiError> {
    available(store, scope.parent, true)
        .into_iter()
        .find(|l| l.name == raw || raw.parse::<u64>().is_ok_and(|id| id == l.id))
        .ok_or(ApiError::NotFound("Label"))
}

pub fn get(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let label = find(&store, scope, raw)?;
    Ok(Reply::ok(render(label)))
}

fn validate(name: &str, color: &str) -> Result<(), ApiError> {
    let mut errors = serde_json::Map::new();
    if name.contains(',') {
        errors.insert("title".into(), json!(["is invalid"]));
    }
    if !color_valid(color) {
        errors.insert("color".into(), json!(["must be a valid color code"]));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(Value::Object(errors)))
    }
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let name = ctx.params.required("name")?;
    let color = ctx.params.required("color")?;
    validate(&name, &color)?;
    let mut store = ctx.sim.write();
    if available(&store, scope.parent, true)
        .iter()
        .any(|l| l.name == name)
    {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            "Label already exists",
        ));
    }
    let id = store.labels.next_id();
    let label = Label {
        id,
        owner: scope.parent,
        text_color: text_color(&color),
        name,
        color,
        description: ctx.params.text("description"),
        priority: if scope.is_group() {
            None
        } else {
            ctx.params.u64("priority")?
        },
        created_at: ctx.now(),
    };
    let value = render(&label);
    store.labels.insert(label);
    Ok(Reply::created(value))
}

pub fn update(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let mut store = ctx.sim.write();
    let id = store
        .labels
        .children(scope.parent)
        .find(|l| l.name == raw || raw.parse::<u64>().is_ok_and(|id| id == l.id))
        .map(|l| l.id)
        .ok_or(ApiError::NotFound("Label"))?;
    let new_name = ctx.params.text("new_name");
    if let Some(name) = &new_name
        && store
            .labels
            .children(scope.parent)
            .any(|l| &l.name == name && l.id != id)
    {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            "Label already exists",
        ));
    }
    let color = ctx.params.text("color");
    validate(
        new_name.as_deref().unwrap_or(""),
        color.as_deref().unwrap_or("#000000"),
    )?;
    let description = ctx.params.text("description");
    let label = store
        .labels
        .get_mut(id)
        .ok_or(ApiError::NotFound("Label"))?;
    if let Some(name) = new_name {
        label.name = name;
    }
    if let Some(color) = color {
        label.text_color = text_color(&color);
        label.color = color;
    }
    if let Some(description) = description {
        label.description = Some(description);
    }
    let label = label.clone();
    Ok(Reply::ok(render(&label)))
}

pub fn remove(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::REPORTER)?;
    let mut store = ctx.sim.write();
    let id = store
        .labels
        .children(scope.parent)
        .find(|l| l.name == raw || raw.parse::<u64>().is_ok_and(|id| id == l.id))
        .map(|l| l.id)
        .ok_or(ApiError::NotFound("Label"))?;
    store.labels.remove(id);
    Ok(Reply::no_content())
}

/// The deprecated `PUT|DELETE .../labels` with the label in the body (`label_id` or `name`),
/// which python-gitlab still uses.
pub fn by_param(ctx: &Ctx, scope: &Scope, delete: bool) -> Answer {
    let raw = match (ctx.params.text("label_id"), ctx.params.text("name")) {
        (Some(id), _) => id,
        (None, Some(name)) => name,
        (None, None) => {
            return Err(ApiError::Param(
                "label_id, name are missing, exactly one parameter must be provided".into(),
            ));
        }
    };
    if delete {
        remove(ctx, scope, &raw)
    } else {
        update(ctx, scope, &raw)
    }
}

//! What every relation's record must hold, in one table: the keys a record needs and the JSON type of
//! each key it may carry. A bundle is checked against it record by record before a replay writes
//! anything (`crate::bundle::records`), so a record its relation could not load is refused up front,
//! not half-way through a replay. A new relation (projects come next) gets the check by adding a row.

use serde_json::Value;

/// The JSON type a field must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Bool,
    Object,
    Array,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "true or false",
            Kind::Object => "an object",
            Kind::Array => "an array",
        }
    }

    fn holds(self, v: &Value) -> bool {
        match self {
            Kind::String => v.is_string(),
            Kind::Number => v.is_number(),
            Kind::Bool => v.is_boolean(),
            Kind::Object => v.is_object(),
            Kind::Array => v.is_array(),
        }
    }
}

/// One field of a record: `required` fields must be there (and not null); the others, when present
/// and not null, must have the type.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn req(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: true,
    }
}

const fn opt(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: false,
    }
}

use Kind::*;

/// Every relation a bundle may hold, and the fields its records are checked for.
pub const RECORDS: &[(&str, &[Field])] = &[
    (
        "group",
        &[
            req("name", String),
            opt("path", String),
            opt("description", String),
        ],
    ),
    (
        "group_files",
        &[opt("avatar", Object), opt("uploads", Array)],
    ),
    (
        "labels",
        &[
            req("title", String),
            req("color", String),
            opt("description", String),
        ],
    ),
    (
        "milestones",
        &[
            req("title", String),
            opt("description", String),
            opt("uploads", Array),
        ],
    ),
    (
        "badges",
        &[
            req("link_url", String),
            req("image_url", String),
            opt("name", String),
        ],
    ),
    (
        "iterations_cadences",
        &[req("title", String), opt("start_date", String)],
    ),
    (
        "members",
        &[req("user", Object), req("access_level", Number)],
    ),
    ("projects", &[opt("path", String), opt("name", String)]),
    (
        "iterations",
        &[
            req("iterations_cadence_id", Number),
            req("start_date", String),
            req("due_date", String),
        ],
    ),
    (
        "epics",
        &[
            req("iid", Number),
            req("title", String),
            opt("author", Object),
            opt("labels", Array),
            opt("notes", Array),
            opt("award_emoji", Array),
            opt("events", Array),
            opt("uploads", Array),
        ],
    ),
    (
        "boards",
        &[
            req("name", String),
            opt("lists", Array),
            opt("labels", Array),
        ],
    ),
    (
        "epic_links",
        &[req("iid", Number), opt("parent_iid", Number)],
    ),
    (
        "cadence_schedules",
        &[req("title", String), opt("automatic", Bool)],
    ),
    ("epic_order", &[req("iid", Number), req("children", Array)]),
    // A project's records (format version 2), as GitLab's export tree holds them.
    (
        "project",
        &[
            opt("name", String),
            opt("path", String),
            opt("description", String),
            opt("visibility_level", Number),
            opt("default_branch", String),
        ],
    ),
    (
        "project_members",
        &[opt("access_level", Number), opt("user", Object)],
    ),
    ("project_badges", &[opt("link_url", String)]),
    (
        "protected_branches",
        &[
            req("name", String),
            opt("merge_access_levels", Array),
            opt("push_access_levels", Array),
        ],
    ),
    (
        "protected_tags",
        &[req("name", String), opt("create_access_levels", Array)],
    ),
    (
        "releases",
        &[
            req("tag", String),
            opt("description", String),
            opt("links", Array),
        ],
    ),
    ("snippets", &[req("title", String), opt("notes", Array)]),
    (
        "ci_pipelines",
        &[
            opt("ref", String),
            opt("sha", String),
            opt("status", String),
        ],
    ),
    ("pipeline_schedules", &[opt("cron", String)]),
    ("project_feature", &[]),
    ("ci_cd_settings", &[]),
    ("container_expiration_policy", &[]),
    ("auto_devops", &[]),
    ("push_rule", &[]),
    ("service_desk_setting", &[]),
    ("external_pull_requests", &[]),
    ("commit_notes", &[opt("note", String)]),
    // A file the project's markdown links to (`/uploads/<secret>/<filename>`); its bytes are the
    // blob member with this sha256.
    (
        "uploads",
        &[
            req("secret", String),
            req("filename", String),
            req("size", Number),
            req("sha256", String),
        ],
    ),
    // A Git LFS object the project's repository points to; its bytes are the blob whose sha256 is
    // its oid.
    ("lfs_objects", &[req("oid", String), req("size", Number)]),
    // A snippet's repository, as a `git bundle`: the blob with this sha256; GitLab's import finds
    // it by the snippet's hexdigest.
    (
        "snippet_repositories",
        &[
            req("hexdigest", String),
            req("size", Number),
            req("sha256", String),
        ],
    ),
    (
        "issues",
        &[
            req("iid", Number),
            req("title", String),
            opt("description", String),
            opt("notes", Array),
            opt("label_links", Array),
        ],
    ),
    (
        "merge_requests",
        &[
            req("iid", Number),
            req("title", String),
            req("source_branch", String),
            req("target_branch", String),
            opt("notes", Array),
            opt("merge_request_diff", Object),
        ],
    ),
];

/// The fields of `relation`'s records, or None for a relation this build does not know.
pub fn fields(relation: &str) -> Option<&'static [Field]> {
    RECORDS
        .iter()
        .find(|(name, _)| *name == relation)
        .map(|(_, f)| *f)
}

/// Checks one record of `relation`: an object with every required field, each field of its type.
/// The error says what is wrong in a few words, naming the field.
pub fn check(relation: &str, record: &Value) -> Result<(), std::string::String> {
    let fields = fields(relation)
        .ok_or_else(|| format!("`{relation}` is not a relation this appliance knows"))?;
    let Some(object) = record.as_object() else {
        return Err(format!(
            "a record of `{relation}` must be a JSON object, not {}",
            describe(record)
        ));
    };
    for f in fields {
        match object.get(f.key) {
            None | Some(Value::Null) if f.required => {
                return Err(format!(
                    "a record of `{relation}` must have `{}` ({})",
                    f.key,
                    f.kind.name()
                ));
            }
            Some(v) if !v.is_null() && !f.kind.holds(v) => {
                return Err(format!(
                    "`{}` of a record of `{relation}` must be {}, not {}",
                    f.key,
                    f.kind.name(),
                    describe(v)
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_checked_against_their_relation_row() {
        assert!(check("labels", &json!({"title": "bug", "color": "#fff"})).is_ok());
        let e = check("labels", &json!(["bug"])).unwrap_err();
        assert!(e.contains("must be a JSON object, not an array"), "{e}");
        let e = check("labels", &json!({"color": "#fff"})).unwrap_err();
        assert!(e.contains("must have `title`"), "{e}");
        let e = check("labels", &json!({"title": 1, "color": "#fff"})).unwrap_err();
        assert!(
            e.contains("`title` of a record of `labels` must be a string, not a number"),
            "{e}"
        );
        let e = check("wikis", &json!({})).unwrap_err();
        assert!(e.contains("not a relation"), "{e}");
        // Optional fields may be absent or null.
        assert!(check("epics", &json!({"iid": 1, "title": "x", "labels": null})).is_ok());
    }

    #[test]
    fn every_relation_of_the_stages_has_a_row() {
        for (_, name) in crate::engine::stages::group_relation_names() {
            if name != crate::engine::stages::SUBGROUPS {
                assert!(fields(name).is_some(), "no row for `{name}`");
            }
        }
    }
}

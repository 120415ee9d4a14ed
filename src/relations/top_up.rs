//! What of a project's archive relations (those that travel in the archive that creates it) the
//! destination holds, record by record, and how a missing one is added through REST afterwards.
//!
//! GitLab's project import drops a record it cannot restore (it names its relation in
//! `failed_relations`, never which record); a retry finds the project already there, and GitLab's
//! relation import takes only issues, merge requests, milestones and pipelines. So each relation
//! here says how its records are found at the destination (a REST list and a key both sides share)
//! and, where GitLab's REST API can create one with what the export holds, how: labels, badges,
//! protected branches and tags, releases, boards and pipeline schedules. A record the REST API
//! cannot create as the import would (a snippet needs its repository, a pipeline its history) is
//! named as not migrated, with its title and URL.

use super::{EntityContext, Extraction, LoadError, Relation, create_once_keyed, text};
use crate::forge::{GitLab, gitlab::id_of};
use async_trait::async_trait;
use serde_json::{Value, json};

/// One archive relation, as its records are found and topped up at the destination.
pub struct ArchiveTopUp {
    /// The relation's name in GitLab's export tree.
    pub name: &'static str,
    /// The project's REST list that holds its records (`projects/:id/<list>`).
    pub list: &'static str,
    /// Query parameters of that list.
    query: &'static [(&'static str, &'static str)],
    /// Whether the list holds only the project's own records, so that its count says whether
    /// each arrived (a project's labels list shows its groups' labels, its badges list theirs).
    pub counts_exactly: bool,
    /// The key of an exported record, as `dest_key` gives it for a REST record.
    source_key: fn(&Value) -> String,
    dest_key: fn(&Value) -> String,
    /// Whether a REST record belongs to the project (a project's badges list shows its groups').
    own: fn(&Value) -> bool,
    /// What a user reads: the record's title.
    title: fn(&Value) -> String,
    /// The record's page under the project's web URL (`-/releases/v1.0`).
    web: fn(&Value) -> String,
    /// The REST create of a missing record, or why GitLab's REST API cannot create one.
    create: Create,
}

enum Create {
    /// `POST projects/:id/<list>` with this body; `with_lists`: the record is a board, whose
    /// label and milestone lists are added once it exists.
    Post {
        body: fn(&Value) -> Value,
        with_lists: bool,
    },
    Cannot(&'static str),
}

fn always(_: &Value) -> bool {
    true
}

fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The lowest access level of an exported record's `<key>` list (GitLab's export keeps one per
/// role, user or group; the REST create takes one role).
fn lowest_level(v: &Value, key: &str, default: u64) -> u64 {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("access_level").and_then(Value::as_u64))
        .min()
        .unwrap_or(default)
}

pub const TOP_UPS: &[ArchiveTopUp] = &[
    ArchiveTopUp {
        name: "labels",
        list: "labels",
        // A project label the import matched to a label of an ancestor group is that label.
        query: &[("include_ancestor_groups", "true")],
        counts_exactly: false,
        source_key: |v| field(v, "title"),
        dest_key: |v| field(v, "name"),
        own: always,
        title: |v| field(v, "title"),
        web: |_| "-/labels".into(),
        create: Create::Post {
            body: |v| {
                let mut body = json!({ "name": text(v, "title"), "color": text(v, "color") });
                if !text(v, "description").is_empty() {
                    body["description"] = json!(text(v, "description"));
                }
                if let Some(p) = v["priorities"]
                    .as_array()
                    .and_then(|p| p.iter().find_map(|p| p["priority"].as_u64()))
                {
                    body["priority"] = json!(p);
                }
                body
            },
            with_lists: false,
        },
    },
    ArchiveTopUp {
        name: "project_badges",
        list: "badges",
        query: &[],
        counts_exactly: false,
        source_key: |v| format!("{}\n{}", field(v, "link_url"), field(v, "image_url")),
        dest_key: |v| format!("{}\n{}", field(v, "link_url"), field(v, "image_url")),
        own: |v| text(v, "kind") != "group",
        title: |v| {
            let name = field(v, "name");
            if name.is_empty() {
                field(v, "link_url")
            } else {
                name
            }
        },
        web: |_| "-/settings/general".into(),
        create: Create::Post {
            body: |v| {
                let mut body =
                    json!({ "link_url": text(v, "link_url"), "image_url": text(v, "image_url") });
                if !text(v, "name").is_empty() {
                    body["name"] = json!(text(v, "name"));
                }
                body
            },
            with_lists: false,
        },
    },
    ArchiveTopUp {
        name: "protected_branches",
        list: "protected_branches",
        query: &[],
        counts_exactly: true,
        source_key: |v| field(v, "name"),
        dest_key: |v| field(v, "name"),
        own: always,
        title: |v| field(v, "name"),
        web: |_| "-/settings/repository".into(),
        create: Create::Post {
            body: |v| {
                json!({
                    "name": text(v, "name"),
                    "push_access_level": lowest_level(v, "push_access_levels", 40),
                    "merge_access_level": lowest_level(v, "merge_access_levels", 40),
                    "unprotect_access_level": lowest_level(v, "unprotect_access_levels", 40),
                    "allow_force_push": v["allow_force_push"].as_bool().unwrap_or(false),
                    "code_owner_approval_required":
                        v["code_owner_approval_required"].as_bool().unwrap_or(false),
                })
            },
            with_lists: false,
        },
    },
    ArchiveTopUp {
        name: "protected_tags",
        list: "protected_tags",
        query: &[],
        counts_exactly: true,
        source_key: |v| field(v, "name"),
        dest_key: |v| field(v, "name"),
        own: always,
        title: |v| field(v, "name"),
        web: |_| "-/settings/repository".into(),
        create: Create::Post {
            body: |v| {
                json!({
                    "name": text(v, "name"),
                    "create_access_level": lowest_level(v, "create_access_levels", 40),
                })
            },
            with_lists: false,
        },
    },
    ArchiveTopUp {
        name: "releases",
        list: "releases",
        query: &[],
        counts_exactly: true,
        source_key: |v| field(v, "tag"),
        dest_key: |v| field(v, "tag_name"),
        own: always,
        title: |v| {
            let name = field(v, "name");
            if name.is_empty() {
                field(v, "tag")
            } else {
                name
            }
        },
        web: |v| format!("-/releases/{}", field(v, "tag")),
        create: Create::Post {
            body: |v| {
                let mut body = json!({
                    "tag_name": text(v, "tag"),
                    "name": text(v, "name"),
                    "description": text(v, "description"),
                });
                for key in ["released_at", "sha"] {
                    if !text(v, key).is_empty() {
                        body[if key == "sha" { "ref" } else { key }] = json!(text(v, key));
                    }
                }
                let milestones: Vec<&str> = v["milestone_releases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| text(&m["milestone"], "title"))
                    .filter(|t| !t.is_empty())
                    .collect();
                if !milestones.is_empty() {
                    body["milestones"] = json!(milestones);
                }
                let links: Vec<Value> = v["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        let mut link = json!({ "name": text(l, "name"), "url": text(l, "url") });
                        for key in ["link_type", "filepath"] {
                            if !text(l, key).is_empty() {
                                link[key] = json!(text(l, key));
                            }
                        }
                        link
                    })
                    .collect();
                if !links.is_empty() {
                    body["assets"] = json!({ "links": links });
                }
                body
            },
            with_lists: false,
        },
    },
    ArchiveTopUp {
        name: "snippets",
        list: "snippets",
        query: &[],
        counts_exactly: true,
        source_key: |v| field(v, "title"),
        dest_key: |v| field(v, "title"),
        own: always,
        title: |v| field(v, "title"),
        web: |v| format!("-/snippets/{}", field(v, "id")),
        create: Create::Cannot(
            "GitLab's REST API cannot create a snippet with its repository history, notes and dates",
        ),
    },
    ArchiveTopUp {
        name: "boards",
        list: "boards",
        query: &[],
        counts_exactly: true,
        source_key: |v| field(v, "name"),
        dest_key: |v| field(v, "name"),
        own: always,
        title: |v| field(v, "name"),
        web: |v| format!("-/boards/{}", field(v, "id")),
        create: Create::Post {
            body: |v| json!({ "name": text(v, "name") }),
            with_lists: true,
        },
    },
    ArchiveTopUp {
        name: "ci_pipelines",
        list: "pipelines",
        query: &[],
        counts_exactly: true,
        // GitLab's export keeps a pipeline's iid (older ones did not: then its commit, ref and date).
        source_key: pipeline_key,
        dest_key: pipeline_key,
        own: always,
        title: |v| {
            let id = v.get("iid").filter(|i| !i.is_null()).unwrap_or(&v["id"]);
            format!("Pipeline #{id} ({}, {})", field(v, "ref"), field(v, "sha"))
        },
        web: |v| format!("-/pipelines/{}", field(v, "id")),
        create: Create::Cannot(
            "GitLab's REST API cannot create a pipeline with its history (its jobs, statuses and dates)",
        ),
    },
    ArchiveTopUp {
        name: "pipeline_schedules",
        list: "pipeline_schedules",
        query: &[],
        counts_exactly: true,
        source_key: schedule_key,
        dest_key: schedule_key,
        own: always,
        title: |v| field(v, "description"),
        web: |_| "-/pipeline_schedules".into(),
        create: Create::Post {
            body: |v| {
                json!({
                    "description": text(v, "description"),
                    "ref": text(v, "ref"),
                    "cron": text(v, "cron"),
                    "cron_timezone": if text(v, "cron_timezone").is_empty() { "UTC" } else { text(v, "cron_timezone") },
                    // As GitLab's import leaves every schedule: off, so that an imported
                    // project starts no pipeline by itself.
                    "active": false,
                })
            },
            with_lists: false,
        },
    },
];

fn pipeline_key(v: &Value) -> String {
    match v.get("iid").and_then(Value::as_u64) {
        Some(iid) => format!("#{iid}"),
        None => format!("{}\n{}", field(v, "sha"), field(v, "ref")),
    }
}

fn schedule_key(v: &Value) -> String {
    format!(
        "{}\n{}\n{}",
        field(v, "description"),
        field(v, "ref"),
        field(v, "cron")
    )
}

/// The top-up of an archive relation, if it has one.
pub fn find(name: &str) -> Option<&'static ArchiveTopUp> {
    TOP_UPS.iter().find(|t| t.name == name)
}

impl ArchiveTopUp {
    /// The query of the project's REST list.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        self.query
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect()
    }

    /// The key of an exported record.
    pub fn source_key(&self, record: &Value) -> String {
        (self.source_key)(record)
    }

    /// The key of a record the destination lists, when it is the project's own.
    pub fn dest_key(&self, record: &Value) -> Option<String> {
        (self.own)(record).then(|| (self.dest_key)(record))
    }

    /// Why a missing record cannot be added through REST; None when it can.
    pub fn cannot(&self) -> Option<&'static str> {
        match self.create {
            Create::Cannot(why) => Some(why),
            Create::Post { .. } => None,
        }
    }
}

#[async_trait]
impl Relation for ArchiveTopUp {
    fn name(&self) -> &'static str {
        self.name
    }
    fn pipeline_class(&self) -> &'static str {
        "BulkImports::Projects::Pipelines::ProjectPipeline"
    }
    fn extraction(&self, _ctx: &EntityContext) -> Extraction {
        Extraction::ExportOnly
    }
    fn transform(&self, rest: Value) -> Value {
        rest
    }
    fn export_relation(&self) -> Option<&'static str> {
        Some(self.name)
    }
    fn source_id(&self, record: &Value) -> String {
        self.source_key(record)
    }
    fn title(&self, record: &Value) -> Option<String> {
        Some((self.title)(record))
    }
    fn source_url(&self, ctx: &EntityContext, record: &Value) -> Option<String> {
        Some(format!("{}/{}", ctx.source_web_url(), (self.web)(record)))
    }
    /// Creates a record the destination project lacks, found first by its key so that it is never
    /// created twice.
    async fn load(
        &self,
        dest: &GitLab,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let Create::Post { body, with_lists } = &self.create else {
            return Err(LoadError {
                class: "Appliance::NotImported".into(),
                message: self.cannot().unwrap_or_default().into(),
                correlation_id: None,
                unreachable: false,
            });
        };
        let project = ctx.destination_project_id()?;
        let path = format!("projects/{project}/{}", self.list);
        let key = self.source_key(record);
        let query = self.query();
        let id = create_once_keyed(
            dest,
            &path,
            &body(record),
            in_doubt,
            || async {
                let found = dest.list_all(&path, &query).await?;
                Ok(found
                    .iter()
                    .find(|r| self.dest_key(r).as_deref() == Some(key.as_str()))
                    .and_then(record_id))
            },
            record_id,
            None,
        )
        .await?;
        if *with_lists {
            board_lists(dest, project, id, record).await?;
        }
        Ok(id)
    }
}

/// A destination record's id; releases and protected tags have none (GitLab addresses them by
/// their tag or name): 0.
fn record_id(v: &Value) -> Option<u64> {
    id_of(v).or_else(|| v.is_object().then_some(0))
}

/// A board's label and milestone lists, by their titles at the destination (the backlog and
/// closed lists come with every board); a list the board has is not added again.
async fn board_lists(
    dest: &GitLab,
    project: u64,
    board: u64,
    record: &Value,
) -> Result<(), LoadError> {
    let lists_path = format!("projects/{project}/boards/{board}/lists");
    let existing = dest.list_all(&lists_path, &[]).await?;
    let has = |kind: &str, title: &str| {
        existing.iter().any(|l| {
            !l[kind].is_null()
                && text(&l[kind], if kind == "label" { "name" } else { "title" }) == title
        })
    };
    let mut lists: Vec<&Value> = record["lists"].as_array().into_iter().flatten().collect();
    lists.sort_by_key(|l| l["position"].as_u64().unwrap_or(u64::MAX));
    for list in lists {
        let (kind, title) = match text(list, "list_type") {
            "label" => ("label", text(&list["label"], "title")),
            "milestone" => ("milestone", text(&list["milestone"], "title")),
            _ => continue,
        };
        if title.is_empty() || has(kind, title) {
            continue;
        }
        let found = match kind {
            "label" => dest
                .list_all(
                    &format!("projects/{project}/labels"),
                    &[("search", title.to_string())],
                )
                .await?
                .into_iter()
                .find(|l| text(l, "name") == title),
            _ => dest
                .list_all(
                    &format!("projects/{project}/milestones"),
                    &[("title", title.to_string())],
                )
                .await?
                .into_iter()
                .find(|m| text(m, "title") == title),
        };
        let Some(id) = found.as_ref().and_then(id_of) else {
            tracing::warn!(
                board,
                kind,
                title,
                "a board list was not added: the destination project has no such {kind}"
            );
            continue;
        };
        let key = if kind == "label" {
            "label_id"
        } else {
            "milestone_id"
        };
        dest.client.post(&lists_path, &json!({ key: id })).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first record of a relation of the real GitLab export in `shared/fixtures`.
    fn exported(relation: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/gitlab-export/project/tree/project")
            .join(format!("{relation}.ndjson"));
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    fn body(name: &str, record: &Value) -> Value {
        match &find(name).unwrap().create {
            Create::Post { body, .. } => body(record),
            Create::Cannot(why) => panic!("{name} cannot be created: {why}"),
        }
    }

    #[test]
    fn every_top_up_is_an_archive_relation_of_the_project() {
        let archive: Vec<&str> = crate::engine::project::ARCHIVE_RELATIONS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        for t in TOP_UPS {
            assert!(archive.contains(&t.name), "{}", t.name);
        }
    }

    #[test]
    fn a_release_is_created_with_its_tag_notes_date_and_links() {
        let release = exported("releases");
        assert_eq!(
            body("releases", &release),
            json!({
                "tag_name": "release-1.1",
                "name": "release-1.1",
                "description": "Some release notes",
                "released_at": "2019-12-26T10:17:14.615Z",
                "ref": "901de3a8bd5573f4a049b1457d28bc1592ba6bf9",
                "assets": {"links": [{
                    "name": "release-1.1.dmg",
                    "url": "http://localhost/namespace6/project6/-/jobs/140463678/artifacts/download"
                }]}
            })
        );
        let t = find("releases").unwrap();
        // The key both sides share: the export's `tag`, the REST record's `tag_name`.
        assert_eq!(
            t.dest_key(&json!({"tag_name": "release-1.1"})),
            Some(t.source_key(&release))
        );
    }

    #[test]
    fn protected_branches_and_tags_keep_who_may_push_merge_and_create() {
        let branch = exported("protected_branches");
        let b = body("protected_branches", &branch);
        assert_eq!(
            (
                &b["name"],
                &b["push_access_level"],
                &b["merge_access_level"]
            ),
            (&json!("master"), &json!(40), &json!(40))
        );
        let mut open = branch.clone();
        open["push_access_levels"] = json!([{"access_level": 30}, {"access_level": 40}]);
        assert_eq!(body("protected_branches", &open)["push_access_level"], 30);
        let tag = exported("protected_tags");
        assert_eq!(
            body("protected_tags", &tag),
            json!({"name": "v*", "create_access_level": 40})
        );
    }

    #[test]
    fn labels_match_by_title_and_keep_color_description_and_priority() {
        let t = find("labels").unwrap();
        let mut label = exported("labels");
        label["description"] = json!("Broken");
        label["priorities"] = json!([{"priority": 3}]);
        assert_eq!(
            body("labels", &label),
            json!({"name": "test2", "color": "#428bca", "description": "Broken", "priority": 3})
        );
        assert_eq!(
            t.dest_key(&json!({"name": "test2", "id": 9})),
            Some(t.source_key(&label))
        );
    }

    #[test]
    fn a_group_badge_is_not_taken_for_the_projects_own() {
        let t = find("project_badges").unwrap();
        let badge = exported("project_badges");
        let listed =
            json!({"link_url": "http://www.example.com", "image_url": "http://www.example.com"});
        let mut group = listed.clone();
        group["kind"] = json!("group");
        assert_eq!(t.dest_key(&group), None);
        let mut own = listed;
        own["kind"] = json!("project");
        assert_eq!(t.dest_key(&own), Some(t.source_key(&badge)));
    }

    #[test]
    fn a_schedule_is_created_inactive_as_the_import_leaves_it() {
        let schedule = exported("pipeline_schedules");
        assert_eq!(
            body("pipeline_schedules", &schedule),
            json!({"description": "Schedule Description", "ref": "master", "cron": "0 4 * * 0",
                   "cron_timezone": "UTC", "active": false})
        );
    }

    #[test]
    fn pipelines_and_snippets_are_named_not_created() {
        for name in ["ci_pipelines", "snippets"] {
            assert!(find(name).unwrap().cannot().is_some(), "{name}");
        }
        let t = find("ci_pipelines").unwrap();
        let pipeline = exported("ci_pipelines");
        // An export without iids: the commit and ref identify it.
        assert_eq!(
            t.source_key(&pipeline),
            "2ea1f3dec713d940208fb5ce4a38765ecb5d3f73\nmaster"
        );
        assert_eq!(t.source_key(&json!({"iid": 4, "sha": "x"})), "#4");
        assert_eq!(
            t.dest_key(&json!({"iid": 4, "id": 99, "sha": "x", "ref": "main"}))
                .as_deref(),
            Some("#4")
        );
        assert_eq!(
            t.title(&json!({"iid": 4, "id": 99, "sha": "abc", "ref": "main"})),
            Some("Pipeline #4 (main, abc)".into())
        );
    }
}

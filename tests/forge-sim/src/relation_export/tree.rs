//! The records of a relation export, in GitLab's import/export (NDJSON tree) format: one JSON
//! object per top-level record with its nested relations, shaped like GitLab's own exports
//! (`lib/gitlab/import_export/{group,project}/import_export.yml`; see the fixtures under
//! `shared/fixtures/gitlab-export`). It reads the store and never changes it; kinds the simulator
//! does not keep (events, timelogs, diffs) are exported as empty lists, as GitLab does for a
//! record that has none.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{AwardEmoji, Board, Design, Epic, Label, Milestone, Note, Parent};
use crate::state::Store;

mod settings;

/// What one relation of an export holds.
pub enum Content {
    /// `self`: the group's or project's attributes, one JSON document (`self.json`).
    Document(Value),
    /// A collection, one record per NDJSON line; `batchable` ones are split into batches.
    Records {
        records: Vec<Value>,
        batchable: bool,
    },
    /// Files (`uploads`): one `<relation>.tar.gz` of `(path, bytes)` entries, never batched.
    Files(Vec<(String, Vec<u8>)>),
    /// A repository (`design`, GitLab's `RepositoryBundleExportService`): one `<relation>.tar.gz`
    /// holding `<relation>.bundle`, a `git bundle` of every ref of the repository at this
    /// repository path, or nothing when it does not exist; always exported whole.
    Repository(String),
}

/// The relations of a group export, in the order [`group_relations`] renders them.
pub const GROUP_RELATIONS: &[&str] = &[
    "self",
    "milestones",
    "badges",
    "labels",
    "boards",
    "members",
    "namespace_settings",
    "epics",
    "iterations_cadences",
    "user_contributions",
];

/// The relations of a project export, in the order [`project_relations`] renders them.
pub const PROJECT_RELATIONS: &[&str] = &[
    "self",
    "labels",
    "milestones",
    "issues",
    "snippets",
    "releases",
    "project_members",
    "merge_requests",
    "external_pull_requests",
    "commit_notes",
    "ci_pipelines",
    "auto_devops",
    "pipeline_schedules",
    "container_expiration_policy",
    "protected_branches",
    "protected_tags",
    "project_feature",
    "project_badges",
    "ci_cd_settings",
    "boards",
    "service_desk_setting",
    "push_rule",
    "user_contributions",
    "uploads",
    "design",
];

/// Every relation of a group export, in GitLab's order.
pub fn group_relations(store: &Store, group_id: u64) -> Vec<(&'static str, Content)> {
    let owner = Parent::Group(group_id);
    let mut users = Contributors::default();
    let records = |v: Vec<Value>| Content::Records {
        records: v,
        batchable: true,
    };
    let milestones = store
        .milestones
        .children(owner)
        .map(|m| milestone(m, false))
        .collect();
    let badges = store
        .badges
        .children(owner)
        .map(|b| {
            json!({
                "id": b.id, "name": b.name, "link_url": b.link_url, "image_url": b.image_url,
                "project_id": null, "group_id": group_id, "created_at": null, "updated_at": null,
                "type": "GroupBadge"
            })
        })
        .collect();
    let labels = store.labels.children(owner).map(label).collect();
    let boards = store
        .boards
        .children(owner)
        .map(|b| board(store, b))
        .collect();
    let members = store
        .members
        .children(owner)
        .map(|m| {
            users.add(m.user_id);
            member(store, m, "Namespace")
        })
        .collect();
    let epics = store
        .epics
        .children(owner)
        .map(|e| {
            users.add(e.author_id);
            epic(store, e, &mut users)
        })
        .collect();
    let cadences = store
        .cadences
        .children(owner)
        .map(|c| {
            let iterations: Vec<Value> = store
                .iterations
                .children(owner)
                .filter(|i| i.cadence_id == c.id)
                .map(|i| {
                    json!({
                        "iid": i.iid, "created_at": i.created_at, "updated_at": i.updated_at,
                        "start_date": i.start_date, "due_date": i.due_date,
                        "group_id": i.group_id, "description": i.description
                    })
                })
                .collect();
            json!({
                "group_id": c.group_id, "created_at": null, "updated_at": null,
                "start_date": c.start_date, "active": c.active, "roll_over": c.roll_over,
                "title": c.title, "description": c.description, "automatic": c.automatic,
                "duration_in_weeks": c.duration_in_weeks,
                "iterations_in_advance": c.iterations_in_advance,
                "iterations": iterations
            })
        })
        .collect();
    vec![
        ("self", Content::Document(group_self(store, group_id))),
        ("milestones", records(milestones)),
        ("badges", records(badges)),
        ("labels", records(labels)),
        ("boards", records(boards)),
        ("members", records(members)),
        (
            "namespace_settings",
            Content::Records {
                records: vec![json!({"prevent_sharing_groups_outside_hierarchy": false})],
                batchable: false,
            },
        ),
        ("epics", records(epics)),
        ("iterations_cadences", records(cadences)),
        ("user_contributions", records(users.render(store))),
    ]
}

/// Every relation of a project export, in GitLab's order.
pub fn project_relations(store: &Store, project_id: u64) -> Vec<(&'static str, Content)> {
    let owner = Parent::Project(project_id);
    let Some(project) = store.project(project_id) else {
        return Vec::new();
    };
    let mut users = Contributors::default();
    let records = |v: Vec<Value>| Content::Records {
        records: v,
        batchable: true,
    };
    let labels_by_name = visible_labels(store, project.namespace_id, project_id);
    let labels = store.labels.children(owner).map(label).collect();
    let milestones = store
        .milestones
        .children(owner)
        .map(|m| milestone(m, true))
        .collect();
    let issues = store
        .issues
        .children(owner)
        .map(|i| {
            users.add(i.author_id);
            let noteable = Parent::Issue(i.id);
            json!({
                "id": i.id, "title": i.title, "author_id": i.author_id, "project_id": i.project_id,
                "created_at": i.created_at, "updated_at": i.updated_at, "relative_position": null,
                "branch_name": null, "description": i.description, "state": i.state,
                "iid": i.iid, "updated_by_id": null, "confidential": i.confidential,
                "discussion_locked": i.discussion_locked, "due_date": i.due_date,
                "closed_at": i.closed_at, "closed_by_id": i.closed_by_id, "weight": i.weight,
                "time_estimate": 0, "last_edited_at": null, "last_edited_by_id": null,
                "issue_type": "issue", "health_status": null, "external_key": null,
                "issue_assignees": i.assignee_ids.iter().map(|u| json!({"user_id": u})).collect::<Vec<_>>(),
                "award_emoji": award_emoji(store, noteable),
                "label_links": label_links(&labels_by_name, &i.labels, "Issue", &i.created_at),
                "milestone": i.milestone_id.and_then(|m| store.milestones.get(m)).map(|m| milestone(m, true)),
                "notes": notes(store, noteable, Some(project_id), &mut users),
                "epic_issue": i.epic_id.and_then(|e| store.epics.get(e)).map(|e| json!({"epic": epic_core(e)})),
                "resource_label_events": [], "resource_milestone_events": [],
                "resource_state_events": [], "events": [], "timelogs": [],
                "designs": designs(store, i.id, &mut users),
                "design_versions": design_versions(store, i.id, project.namespace_id, &mut users),
                "zoom_meetings": []
            })
        })
        .collect();
    let merge_requests = store
        .merge_requests
        .children(owner)
        .map(|mr| {
            users.add(mr.author_id);
            let noteable = Parent::MergeRequest(mr.id);
            json!({
                "id": mr.id, "target_branch": mr.target_branch, "source_branch": mr.source_branch,
                "source_project_id": mr.project_id, "target_project_id": mr.project_id,
                "author_id": mr.author_id, "assignee_id": mr.assignee_ids.first(),
                "title": mr.title, "created_at": mr.created_at, "updated_at": mr.updated_at,
                "state": mr.state, "merge_status": "can_be_merged", "iid": mr.iid,
                "description": mr.description, "updated_by_id": null, "merge_error": null,
                "draft": mr.draft, "squash": mr.squash,
                "merge_params": {"force_remove_source_branch": null},
                "merge_when_pipeline_succeeds": false, "merge_user_id": mr.merged_by_id,
                "merge_commit_sha": mr.merge_commit_sha, "squash_commit_sha": null,
                "diff_head_sha": mr.sha, "source_branch_sha": mr.sha, "target_branch_sha": null,
                "approvals_before_merge": null, "discussion_locked": null,
                "merge_request_assignees": mr.assignee_ids.iter().map(|u| json!({"user_id": u})).collect::<Vec<_>>(),
                "merge_request_reviewers": mr.reviewer_ids.iter().map(|u| json!({"user_id": u, "state": "unreviewed"})).collect::<Vec<_>>(),
                "metrics": {
                    "merged_at": mr.merged_at, "merged_by_id": mr.merged_by_id,
                    "latest_closed_at": mr.closed_at, "latest_closed_by_id": mr.closed_by_id,
                    "created_at": mr.created_at, "updated_at": mr.updated_at
                },
                "award_emoji": award_emoji(store, noteable),
                "label_links": label_links(&labels_by_name, &mr.labels, "MergeRequest", &mr.created_at),
                "milestone": mr.milestone_id.and_then(|m| store.milestones.get(m)).map(|m| milestone(m, true)),
                "notes": notes(store, noteable, Some(project_id), &mut users),
                "merge_request_diff": {
                    "state": "collected", "created_at": mr.created_at, "updated_at": mr.updated_at,
                    "base_commit_sha": null, "head_commit_sha": mr.sha, "start_commit_sha": null,
                    "real_size": "0", "commits_count": 0, "files_count": 0,
                    "merge_request_diff_commits": [], "merge_request_diff_files": []
                },
                "resource_label_events": [], "resource_milestone_events": [],
                "resource_state_events": [], "events": [], "timelogs": [], "approvals": []
            })
        })
        .collect();
    let releases = store
        .releases
        .children(owner)
        .map(|r| {
            users.add(r.author_id);
            let links: Vec<Value> = r
                .links
                .iter()
                .map(|l| {
                    json!({"id": l.id, "url": l.url, "name": l.name, "link_type": l.link_type,
                           "filepath": null, "created_at": r.created_at, "updated_at": r.created_at})
                })
                .collect();
            let milestone_releases: Vec<Value> = r
                .milestones
                .iter()
                .filter_map(|title| {
                    store
                        .milestones
                        .children(owner)
                        .find(|m| &m.title == title)
                })
                .map(|m| json!({"milestone": milestone(m, true)}))
                .collect();
            json!({
                "id": r.id, "tag": r.tag_name, "description": r.description,
                "project_id": r.project_id, "created_at": r.created_at,
                "updated_at": r.created_at, "author_id": r.author_id, "name": r.name,
                "sha": null, "released_at": r.released_at, "links": links,
                "milestone_releases": milestone_releases
            })
        })
        .collect();
    let snippets = store
        .snippets
        .children(owner)
        .map(|s| {
            users.add(s.author_id);
            let noteable = Parent::Snippet(s.id);
            json!({
                "id": s.id, "title": s.title, "content": s.content, "author_id": s.author_id,
                "project_id": s.project_id, "created_at": s.created_at, "updated_at": s.updated_at,
                "file_name": s.file_name, "visibility_level": visibility_level(&s.visibility),
                "description": s.description,
                "award_emoji": award_emoji(store, noteable),
                "notes": notes(store, noteable, Some(project_id), &mut users)
            })
        })
        .collect();
    // GitLab exports the project's direct members and, as project members, the members it inherits
    // from its groups (nearest group first; a direct membership wins), so that an import maps every
    // author with access (the exporter owns the top-level group here, or is an administrator).
    let mut seen = std::collections::HashSet::new();
    let mut members = Vec::new();
    let inherited = store
        .ancestors(project.namespace_id)
        .into_iter()
        .flat_map(|g| store.members.children(Parent::Group(g)));
    for m in store.members.children(owner).chain(inherited) {
        if seen.insert(m.user_id) {
            users.add(m.user_id);
            let mut record = member(store, m, "Project");
            record["source_id"] = json!(project_id);
            members.push(record);
        }
    }
    let protected_branches = store
        .protected_branches
        .children(owner)
        .map(|b| {
            let level = |l: u8| {
                json!([{"access_level": l, "user_id": null, "group_id": null,
                        "created_at": project.created_at, "updated_at": project.created_at}])
            };
            json!({
                "id": b.id, "project_id": b.project_id, "name": b.name,
                "created_at": project.created_at, "updated_at": project.created_at,
                "allow_force_push": b.allow_force_push,
                "code_owner_approval_required": b.code_owner_approval_required,
                "merge_access_levels": level(b.merge_access_level),
                "push_access_levels": level(b.push_access_level),
                "unprotect_access_levels": []
            })
        })
        .collect();
    let badges = store
        .badges
        .children(owner)
        .map(|b| {
            json!({
                "id": b.id, "created_at": null, "updated_at": null, "project_id": project_id,
                "type": "ProjectBadge", "name": b.name, "link_url": b.link_url,
                "image_url": b.image_url
            })
        })
        .collect();
    let boards = store
        .boards
        .children(owner)
        .map(|b| board(store, b))
        .collect();
    let enabled = |on: bool| if on { 20 } else { 0 };
    let feature = json!({
        "issues_access_level": enabled(project.issues_enabled),
        "merge_requests_access_level": enabled(project.merge_requests_enabled),
        "wiki_access_level": enabled(project.wiki_enabled),
        "snippets_access_level": enabled(project.snippets_enabled),
        "builds_access_level": 20, "repository_access_level": 20, "pages_access_level": 10,
        "forking_access_level": 20, "analytics_access_level": 20,
        "operations_access_level": 20, "security_and_compliance_access_level": 10,
        "container_registry_access_level": 20, "created_at": project.created_at,
        "updated_at": project.last_activity_at
    });
    let single = |v: Value| Content::Records {
        records: vec![v],
        batchable: false,
    };
    let ci = settings::ci_relations(store, project, &mut users);
    // A settings record the project does not have is exported as `null`, as GitLab's does: its
    // serializer writes a missing single record as JSON (`StreamingSerializer#serialize_single_relation`
    // with nil, then `NdjsonWriter#write_relation`).
    let maybe = |v: Option<Value>| Content::Records {
        records: vec![v.unwrap_or(Value::Null)],
        batchable: false,
    };
    vec![
        ("self", Content::Document(project_self(store, project_id))),
        ("labels", records(labels)),
        ("milestones", records(milestones)),
        ("issues", records(issues)),
        ("snippets", records(snippets)),
        ("releases", records(releases)),
        ("project_members", records(members)),
        ("merge_requests", records(merge_requests)),
        ("external_pull_requests", records(ci.external_pull_requests)),
        ("commit_notes", records(ci.commit_notes)),
        ("ci_pipelines", records(ci.pipelines)),
        ("auto_devops", maybe(ci.auto_devops)),
        ("pipeline_schedules", records(ci.pipeline_schedules)),
        (
            "container_expiration_policy",
            maybe(ci.container_expiration_policy),
        ),
        ("protected_branches", records(protected_branches)),
        ("protected_tags", records(ci.protected_tags)),
        ("project_feature", single(feature)),
        ("project_badges", records(badges)),
        (
            "ci_cd_settings",
            single(json!({"group_runners_enabled": true})),
        ),
        ("boards", records(boards)),
        ("service_desk_setting", maybe(ci.service_desk_setting)),
        ("push_rule", maybe(ci.push_rule)),
        ("user_contributions", records(users.render(store))),
        // The files the project's markdown links to, as GitLab's UploadsExporter writes them:
        // `<secret>/<filename>`.
        (
            "uploads",
            Content::Files(
                store
                    .uploads
                    .children(owner)
                    .map(|u| (format!("{}/{}", u.secret, u.filename), u.content.clone()))
                    .collect(),
            ),
        ),
        (
            "design",
            Content::Repository(crate::git::design_path(&project.path_with_namespace)),
        ),
    ]
}

/// A design's own attributes, as an issue's `designs` and a version action's `design` carry them.
fn design_core(d: &Design) -> Value {
    json!({
        "iid": d.iid, "project_id": d.project_id, "filename": d.filename,
        "relative_position": d.relative_position
    })
}

/// An issue's designs with the notes on each.
fn designs(store: &Store, issue_id: u64, users: &mut Contributors) -> Value {
    let designs: Vec<Value> = store
        .designs
        .children(Parent::Issue(issue_id))
        .map(|d| {
            let mut v = design_core(d);
            v["notes"] = notes(store, Parent::Design(d.id), Some(d.project_id), users);
            v
        })
        .collect();
    json!(designs)
}

/// An issue's design versions, oldest first, each with its actions and the design each touched.
fn design_versions(
    store: &Store,
    issue_id: u64,
    namespace_id: u64,
    users: &mut Contributors,
) -> Value {
    let versions: Vec<Value> = store
        .design_versions
        .children(Parent::Issue(issue_id))
        .map(|v| {
            users.add(v.author_id);
            let actions: Vec<Value> = v
                .actions
                .iter()
                .filter_map(|(design_id, event)| {
                    let design = store.designs.get(*design_id)?;
                    Some(json!({"event": *event as u8, "design": design_core(design)}))
                })
                .collect();
            json!({
                "created_at": v.created_at, "sha": v.sha, "author_id": v.author_id,
                "namespace_id": namespace_id, "actions": actions
            })
        })
        .collect();
    json!(versions)
}

fn visibility_level(visibility: &str) -> u8 {
    match visibility {
        "public" => 20,
        "internal" => 10,
        _ => 0,
    }
}

fn group_self(store: &Store, group_id: u64) -> Value {
    let Some(g) = store.group(group_id) else {
        return Value::Null;
    };
    // GitLab stores these two settings as small integers.
    let project_creation_level = match g.project_creation_level.as_str() {
        "noone" => 0,
        "maintainer" => 1,
        "administrator" => 3,
        _ => 2,
    };
    let subgroup_creation_level = if g.subgroup_creation_level == "owner" {
        0
    } else {
        1
    };
    json!({
        "id": g.id, "name": g.name, "path": g.path, "description": g.description,
        "avatar": {"url": g.avatar_url("")}, "membership_lock": false,
        "share_with_group_lock": g.share_with_group_lock,
        "visibility_level": visibility_level(&g.visibility),
        "request_access_enabled": g.request_access_enabled, "lfs_enabled": g.lfs_enabled,
        "parent_id": g.parent_id,
        "require_two_factor_authentication": g.require_two_factor_authentication,
        "two_factor_grace_period": g.two_factor_grace_period,
        "project_creation_level": project_creation_level,
        "subgroup_creation_level": subgroup_creation_level,
        "auto_devops_enabled": g.auto_devops_enabled, "emails_enabled": g.emails_enabled,
        "mentions_disabled": g.mentions_disabled,
        "default_branch_protection": g.default_branch_protection,
        "file_template_project_id": null, "custom_project_templates_group_id": null,
        "max_artifacts_size": null
    })
}

fn project_self(store: &Store, project_id: u64) -> Value {
    let Some(p) = store.project(project_id) else {
        return Value::Null;
    };
    json!({
        "description": p.description, "visibility_level": visibility_level(&p.visibility),
        "archived": p.archived, "default_branch": p.default_branch, "topics": p.topics,
        "request_access_enabled": p.request_access_enabled,
        "service_desk_enabled": p.service_desk_enabled,
        "merge_requests_ff_only_enabled": false, "merge_requests_rebase_enabled": false,
        "only_allow_merge_if_pipeline_succeeds": false,
        "only_allow_merge_if_all_discussions_are_resolved": false,
        "printing_merge_request_link_enabled": true, "remove_source_branch_after_merge": true,
        "squash_option": "default_off", "ci_config_path": null, "approvals_before_merge": 0,
        "issues_template": null, "merge_requests_template": null,
        "autoclose_referenced_issues": true, "suggestion_commit_message": null,
        "merge_commit_template": null, "squash_commit_template": null
    })
}

fn label(l: &Label) -> Value {
    let (project_id, group_id, kind) = match l.owner {
        Parent::Project(id) => (Some(id), None, "ProjectLabel"),
        other => (None, Some(other.id()), "GroupLabel"),
    };
    let priorities: Vec<Value> = match (l.priority, project_id) {
        (Some(priority), Some(project_id)) => vec![json!({
            "project_id": project_id, "priority": priority,
            "created_at": l.created_at, "updated_at": l.created_at
        })],
        _ => Vec::new(),
    };
    let mut v = json!({
        "id": l.id, "title": l.name, "color": l.color, "project_id": project_id,
        "created_at": l.created_at, "updated_at": l.created_at, "template": false,
        "description": l.description, "type": kind, "priorities": priorities
    });
    if let Some(group_id) = group_id {
        v["group_id"] = json!(group_id);
    }
    v
}

fn milestone(m: &Milestone, with_events: bool) -> Value {
    let (project_id, group_id) = match m.owner {
        Parent::Project(id) => (Some(id), None),
        other => (None, Some(other.id())),
    };
    let mut v = json!({
        "id": m.id, "title": m.title, "project_id": project_id, "description": m.description,
        "due_date": m.due_date, "created_at": m.created_at, "updated_at": m.updated_at,
        "state": m.state, "iid": m.iid, "start_date": m.start_date, "group_id": group_id
    });
    if with_events {
        v["events"] = json!([]);
    }
    v
}

fn board(store: &Store, b: &Board) -> Value {
    let (project_id, group_id) = match b.owner {
        Parent::Project(id) => (Some(id), None),
        other => (None, Some(other.id())),
    };
    let core = json!({
        "id": b.id, "project_id": project_id, "created_at": b.created_at,
        "updated_at": b.created_at, "name": b.name, "milestone_id": null, "iteration_id": null,
        "group_id": group_id, "weight": null, "hide_backlog_list": b.hide_backlog_list,
        "hide_closed_list": b.hide_closed_list
    });
    let lists: Vec<Value> = store
        .board_lists
        .children(Parent::Board(b.id))
        .map(|l| {
            let mut list = json!({
                "id": l.id, "board_id": l.board_id, "label_id": l.label_id,
                "list_type": l.list_type, "position": l.position, "created_at": b.created_at,
                "updated_at": b.created_at, "user_id": null, "milestone_id": l.milestone_id,
                "iteration_id": l.iteration_id, "max_issue_count": 0, "max_issue_weight": 0,
                "limit_metric": null, "board": core.clone()
            });
            if let Some(label) = l.label_id.and_then(|id| store.labels.get(id)) {
                list["label"] = self::label(label);
            }
            if let Some(m) = l.milestone_id.and_then(|id| store.milestones.get(id)) {
                list["milestone"] = milestone(m, true);
            }
            list
        })
        .collect();
    let mut v = core;
    v["labels"] = json!([]);
    v["lists"] = json!(lists);
    v
}

fn member(store: &Store, m: &crate::model::Member, source_type: &str) -> Value {
    let user = store.user(m.user_id);
    json!({
        "id": m.id, "access_level": m.access_level, "source_id": m.source.id(),
        "source_type": source_type, "user_id": m.user_id, "notification_level": 3,
        "created_at": m.created_at, "updated_at": m.created_at, "created_by_id": m.created_by,
        "invite_email": null, "invite_token": null, "invite_accepted_at": null,
        "requested_at": null, "expires_at": m.expires_at, "ldap": false, "override": false,
        "user": {
            "id": m.user_id,
            "public_email": user.and_then(|u| u.public_email.clone()),
            "username": user.map(|u| u.username.clone())
        }
    })
}

/// The epic's own columns, as nested under `parent` or an issue's `epic_issue`.
fn epic_core(e: &Epic) -> Value {
    json!({
        "id": e.id, "milestone_id": null, "group_id": e.group_id, "author_id": e.author_id,
        "iid": e.iid, "updated_by_id": null, "last_edited_by_id": null, "lock_version": 0,
        "start_date": e.start_date_fixed, "end_date": e.due_date_fixed, "last_edited_at": null,
        "created_at": e.created_at, "updated_at": e.updated_at, "title": e.title,
        "description": e.description, "start_date_sourcing_milestone_id": null,
        "due_date_sourcing_milestone_id": null, "start_date_fixed": e.start_date_fixed,
        "due_date_fixed": e.due_date_fixed, "start_date_is_fixed": e.start_date_is_fixed,
        "due_date_is_fixed": e.due_date_is_fixed, "closed_by_id": null,
        "closed_at": e.closed_at, "parent_id": e.parent_id, "relative_position": e.relative_position,
        "start_date_sourcing_epic_id": null, "due_date_sourcing_epic_id": null,
        "confidential": e.confidential, "color": e.color, "state": e.state
    })
}

fn epic(store: &Store, e: &Epic, users: &mut Contributors) -> Value {
    let noteable = Parent::Epic(e.id);
    let labels = visible_labels(store, e.group_id, 0);
    let mut v = epic_core(e);
    v["parent"] = json!(e.parent_id.and_then(|p| store.epics.get(p)).map(epic_core));
    v["award_emoji"] = award_emoji(store, noteable);
    v["events"] = json!([]);
    v["label_links"] = label_links(&labels, &e.labels, "Epic", &e.created_at);
    v["notes"] = notes(store, noteable, None, users);
    v["resource_state_events"] = json!([]);
    v
}

/// Labels usable in a project or group, by name: those of the group and its ancestors, then
/// the project's own (which win on a name clash, as in GitLab's label finder).
fn visible_labels(store: &Store, group_id: u64, project_id: u64) -> HashMap<String, &Label> {
    let mut by_name = HashMap::new();
    for gid in store.ancestors(group_id).into_iter().rev() {
        for l in store.labels.children(Parent::Group(gid)) {
            by_name.insert(l.name.clone(), l);
        }
    }
    for l in store.labels.children(Parent::Project(project_id)) {
        by_name.insert(l.name.clone(), l);
    }
    by_name
}

fn label_links(
    labels: &HashMap<String, &Label>,
    names: &[String],
    target_type: &str,
    created_at: &str,
) -> Value {
    let links: Vec<Value> = names
        .iter()
        .filter_map(|name| labels.get(name))
        .map(|l| {
            json!({"target_type": target_type, "created_at": created_at,
                   "updated_at": created_at, "label": label(l)})
        })
        .collect();
    json!(links)
}

fn award_emoji(store: &Store, awardable: Parent) -> Value {
    let awards: Vec<Value> = store
        .award_emoji
        .children(awardable)
        .map(|a: &AwardEmoji| {
            json!({
                "id": a.id, "name": a.name, "user_id": a.user_id,
                "awardable_type": awardable.class_name(), "awardable_id": awardable.id(),
                "created_at": a.created_at, "updated_at": a.updated_at
            })
        })
        .collect();
    json!(awards)
}

/// A stable 40-hex discussion id for a note, like GitLab's SHA-1 ones.
fn discussion_id(note_id: u64) -> String {
    let digest = Sha256::digest(format!("discussion-{note_id}").as_bytes());
    hex::encode(digest)[..40].to_owned()
}

fn notes(
    store: &Store,
    noteable: Parent,
    project_id: Option<u64>,
    users: &mut Contributors,
) -> Value {
    let notes: Vec<Value> = store
        .notes
        .children(noteable)
        .map(|n: &Note| {
            users.add(n.author_id);
            let author = store.user(n.author_id).map(|u| u.name.clone());
            json!({
                "id": n.id, "note": n.body, "noteable_type": noteable.class_name(),
                "author_id": n.author_id, "created_at": n.created_at, "updated_at": n.updated_at,
                "project_id": project_id, "attachment": {"url": null}, "line_code": null,
                "commit_id": null, "noteable_id": noteable.id(), "system": n.system,
                "st_diff": null, "updated_by_id": null, "position": n.position,
                "original_position": n.position,
                "resolved_at": if n.resolved { Some(&n.updated_at) } else { None },
                "resolved_by_id": null, "discussion_id": discussion_id(n.id),
                "change_position": null, "resolved_by_push": null, "confidential": null,
                "internal": n.internal, "last_edited_at": null,
                "type": crate::routes::notes::note_type(n),
                "author": {"name": author},
                "award_emoji": award_emoji(store, Parent::Note(n.id)),
                "events": [],
                "system_note_metadata": if n.system {
                    json!({"commit_count": null, "action": "note", "created_at": n.created_at,
                           "updated_at": n.updated_at})
                } else {
                    Value::Null
                }
            })
        })
        .collect();
    json!(notes)
}

/// The users an export mentions, for `user_contributions` (GitLab's placeholder-user mapping).
#[derive(Default)]
struct Contributors(BTreeSet<u64>);

impl Contributors {
    fn add(&mut self, user_id: u64) {
        self.0.insert(user_id);
    }

    fn render(&self, store: &Store) -> Vec<Value> {
        self.0
            .iter()
            .filter_map(|id| store.user(*id))
            .map(|u| {
                json!({"id": u.id, "public_email": u.public_email, "username": u.username,
                       "name": u.name})
            })
            .collect()
    }
}

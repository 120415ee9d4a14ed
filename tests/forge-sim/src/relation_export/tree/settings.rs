//! A project's CI/CD and repository settings relations in GitLab's export format
//! (`gitlab-import-export-tree.yml`: the attributes each includes, the relations nested under
//! each): pipelines, pipeline schedules, protected tags, external pull requests, commit notes and
//! the single settings records (Auto DevOps, container expiration policy, push rule, Service Desk).

use serde_json::{Value, json};

use super::{Contributors, discussion_id};
use crate::model::{Parent, Project};
use crate::state::Store;

/// The records of these relations for one project.
pub struct CiRelations {
    pub pipelines: Vec<Value>,
    pub pipeline_schedules: Vec<Value>,
    pub protected_tags: Vec<Value>,
    pub external_pull_requests: Vec<Value>,
    pub commit_notes: Vec<Value>,
    pub auto_devops: Option<Value>,
    pub container_expiration_policy: Option<Value>,
    pub push_rule: Option<Value>,
    pub service_desk_setting: Option<Value>,
}

pub fn ci_relations(store: &Store, project: &Project, users: &mut Contributors) -> CiRelations {
    let owner = Parent::Project(project.id);
    let pipelines = store
        .pipelines
        .children(owner)
        .map(|p| {
            if let Some(user) = p.user_id {
                users.add(user);
            }
            json!({
                "id": p.id, "iid": p.iid, "project_id": p.project_id, "ref": p.git_ref,
                "sha": p.sha, "before_sha": p.before_sha, "created_at": p.created_at,
                "updated_at": p.updated_at, "tag": p.tag, "yaml_errors": null,
                "committed_at": null, "status": p.status, "started_at": p.started_at,
                "finished_at": p.finished_at, "duration": p.duration, "user_id": p.user_id,
                "lock_version": 0, "source": p.source, "protected": p.git_ref == "main" || p.tag,
                "config_source": "repository_source", "failure_reason": null,
                "source_sha": null, "target_sha": null,
                // The simulator runs no jobs: a pipeline has no stages to export.
                "stages": [], "external_pull_request": null, "merge_request": null,
                "pipeline_metadata": null
            })
        })
        .collect();
    let pipeline_schedules = store
        .pipeline_schedules
        .children(owner)
        .map(|s| {
            users.add(s.owner_id);
            json!({
                "id": s.id, "description": s.description, "ref": s.git_ref, "cron": s.cron,
                "cron_timezone": s.cron_timezone, "next_run_at": s.next_run_at,
                "project_id": s.project_id, "owner_id": s.owner_id, "active": s.active,
                "created_at": s.created_at, "updated_at": s.updated_at
            })
        })
        .collect();
    let protected_tags = store
        .protected_tags
        .children(owner)
        .map(|t| {
            json!({
                "id": t.id, "project_id": t.project_id, "name": t.name,
                "created_at": t.created_at, "updated_at": t.updated_at,
                "create_access_levels": [{
                    "access_level": t.create_access_level, "user_id": null, "group_id": null,
                    "created_at": t.created_at, "updated_at": t.updated_at
                }]
            })
        })
        .collect();
    let external_pull_requests = store
        .external_pull_requests
        .children(owner)
        .map(|e| {
            json!({
                "id": e.id, "project_id": e.project_id, "pull_request_iid": e.pull_request_iid,
                "source_branch": e.source_branch, "target_branch": e.target_branch,
                "source_repository": e.source_repository,
                "target_repository": e.target_repository, "source_sha": e.source_sha,
                "target_sha": e.target_sha, "status": e.status, "created_at": e.created_at,
                "updated_at": e.updated_at
            })
        })
        .collect();
    let commit_notes = store
        .commit_notes
        .children(owner)
        .map(|n| {
            users.add(n.author_id);
            let author = store.user(n.author_id).map(|u| u.name.clone());
            json!({
                "note": n.body, "noteable_type": "Commit", "author_id": n.author_id,
                "created_at": n.created_at, "updated_at": n.updated_at,
                "project_id": n.project_id, "attachment": {"url": null}, "line_code": null,
                "commit_id": n.commit_id, "system": false, "st_diff": null,
                "updated_by_id": null, "type": null, "position": null,
                "original_position": null, "change_position": null, "resolved_at": null,
                "resolved_by_id": null, "resolved_by_push": null,
                "discussion_id": discussion_id(n.id), "confidential": null,
                "last_edited_at": null, "author": {"name": author}, "events": []
            })
        })
        .collect();
    let auto_devops = store.auto_devops.get(&project.id).map(|a| {
        json!({
            "created_at": a.created_at, "updated_at": a.updated_at, "enabled": a.enabled,
            "deploy_strategy": a.deploy_strategy, "project_id": project.id
        })
    });
    let container_expiration_policy =
        store
            .container_expiration_policies
            .get(&project.id)
            .map(|c| {
                json!({
                    "created_at": c.created_at, "updated_at": c.updated_at,
                    "next_run_at": c.next_run_at, "project_id": project.id,
                    "name_regex": c.name_regex, "cadence": c.cadence, "older_than": c.older_than,
                    "keep_n": c.keep_n, "enabled": c.enabled, "name_regex_keep": c.name_regex_keep
                })
            });
    let push_rule = store.push_rules.get(&project.id).map(|r| {
        json!({
            "commit_message_regex": r.commit_message_regex,
            "author_email_regex": r.author_email_regex, "file_name_regex": r.file_name_regex,
            "branch_name_regex": r.branch_name_regex,
            "commit_message_negative_regex": r.commit_message_negative_regex,
            "max_file_size": r.max_file_size, "deny_delete_tag": r.deny_delete_tag,
            "member_check": r.member_check, "is_sample": false,
            "prevent_secrets": r.prevent_secrets,
            "reject_unsigned_commits": r.reject_unsigned_commits,
            "commit_committer_check": r.commit_committer_check, "regexp_uses_re2": true,
            "reject_non_dco_commits": false
        })
    });
    let service_desk_setting = store.service_desk_settings.get(&project.id).map(|s| {
        json!({
            "project_id": project.id, "issue_template_key": s.issue_template_key,
            "project_key": s.project_key
        })
    });
    CiRelations {
        pipelines,
        pipeline_schedules,
        protected_tags,
        external_pull_requests,
        commit_notes,
        auto_devops,
        container_expiration_policy,
        push_rule,
        service_desk_setting,
    }
}

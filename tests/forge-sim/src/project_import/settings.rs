//! The restore of a project's CI/CD and repository settings relations, under GitLab's rules:
//! pipelines keep their attributes (iid, ref, sha, status, source, times) with their user mapped
//! like any author; pipeline schedules arrive inactive (GitLab's `RelationFactory` deactivates
//! them, so an imported project runs nothing on its own) and owned by their mapped owner; commit
//! notes keep their commit id, and their author is mapped like other notes'; protected tags,
//! external pull requests and the single settings records (Auto DevOps, container expiration
//! policy, push rule, Service Desk) keep what they hold. Records a project already has (same tag
//! name, pipeline iid, pull request iid) are skipped, so a batch sent again creates nothing twice.

use serde_json::Value;

use super::{Restorer, items, note_body, text, time};
use crate::model::{
    AutoDevops, CommitNote, ContainerExpirationPolicy, ExternalPullRequest, Pipeline,
    PipelineSchedule, ProtectedTag, PushRule, ServiceDeskSetting, access,
};

impl Restorer<'_> {
    pub(super) fn protected_tag(&mut self, v: &Value) -> Result<(), String> {
        let name = text(v, "name").ok_or("Name can't be blank")?;
        if self
            .store
            .protected_tags
            .children(self.scope())
            .any(|t| t.name == name)
        {
            return Ok(());
        }
        let level = items(v, "create_access_levels")
            .filter_map(|l| l["access_level"].as_u64())
            .min()
            .map_or(access::MAINTAINER, |l| l as u8);
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let id = self.store.protected_tags.next_id();
        self.store.protected_tags.insert(ProtectedTag {
            id,
            project_id: self.project_id,
            name,
            create_access_level: level,
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        });
        Ok(())
    }

    pub(super) fn pipeline(&mut self, v: &Value) -> Result<(), String> {
        let scope = self.scope();
        let iid = v["iid"].as_u64();
        if iid.is_some_and(|iid| self.store.pipelines.children(scope).any(|p| p.iid == iid)) {
            return Ok(());
        }
        // An export from before pipelines had iids: GitLab gives the next one no other pipeline
        // of the project (or of the archive) has.
        let iid = match iid {
            Some(iid) => iid,
            None => loop {
                let next = self.store.pipelines.next_iid(scope);
                let taken = self.pipeline_iids.contains(&next)
                    || self.store.pipelines.children(scope).any(|p| p.iid == next);
                if !taken {
                    break next;
                }
            },
        };
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let user_id = (!v["user_id"].is_null()).then(|| self.user(&v["user_id"]).0);
        let id = self.store.pipelines.next_id();
        self.store.pipelines.insert(Pipeline {
            id,
            iid,
            project_id: self.project_id,
            git_ref: text(v, "ref").unwrap_or_default(),
            sha: text(v, "sha").unwrap_or_default(),
            before_sha: text(v, "before_sha"),
            tag: v["tag"].as_bool().unwrap_or(false),
            status: text(v, "status").unwrap_or_else(|| "created".to_owned()),
            // GitLab's `unknown` source is a NULL column.
            source: text(v, "source").unwrap_or_else(|| "unknown".to_owned()),
            user_id,
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
            started_at: time(v, "started_at"),
            finished_at: time(v, "finished_at"),
            duration: v["duration"].as_u64(),
        });
        self.store.pipelines.reserve_iid(scope, iid);
        Ok(())
    }

    pub(super) fn pipeline_schedule(&mut self, v: &Value) -> Result<(), String> {
        let cron = text(v, "cron").ok_or("Cron can't be blank")?;
        let git_ref = text(v, "ref").ok_or("Ref can't be blank")?;
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let id = self.store.pipeline_schedules.next_id();
        self.store.pipeline_schedules.insert(PipelineSchedule {
            id,
            project_id: self.project_id,
            description: text(v, "description").unwrap_or_default(),
            git_ref,
            cron,
            cron_timezone: text(v, "cron_timezone").unwrap_or_else(|| "UTC".to_owned()),
            next_run_at: time(v, "next_run_at"),
            active: false,
            owner_id: self.user(&v["owner_id"]).0,
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        });
        Ok(())
    }

    pub(super) fn external_pull_request(&mut self, v: &Value) -> Result<(), String> {
        let iid = v["pull_request_iid"]
            .as_u64()
            .ok_or("Pull request iid can't be blank")?;
        if self
            .store
            .external_pull_requests
            .children(self.scope())
            .any(|e| e.pull_request_iid == iid)
        {
            return Ok(());
        }
        let required = |key: &str, what: &str| text(v, key).ok_or(format!("{what} can't be blank"));
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let id = self.store.external_pull_requests.next_id();
        let record = ExternalPullRequest {
            id,
            project_id: self.project_id,
            pull_request_iid: iid,
            source_branch: required("source_branch", "Source branch")?,
            target_branch: required("target_branch", "Target branch")?,
            source_repository: required("source_repository", "Source repository")?,
            target_repository: required("target_repository", "Target repository")?,
            source_sha: required("source_sha", "Source sha")?,
            target_sha: required("target_sha", "Target sha")?,
            status: text(v, "status").unwrap_or_else(|| "open".to_owned()),
            updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
            created_at,
        };
        self.store.external_pull_requests.insert(record);
        Ok(())
    }

    pub(super) fn commit_note(&mut self, v: &Value) -> Result<(), String> {
        let commit_id = text(v, "commit_id").ok_or("Commit can't be blank")?;
        let (author_id, mapped) = self.user(&v["author_id"]);
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        let updated_at = time(v, "updated_at").unwrap_or_else(|| created_at.clone());
        let id = self.store.commit_notes.next_id();
        self.store.commit_notes.insert(CommitNote {
            id,
            project_id: self.project_id,
            commit_id,
            body: note_body(v, mapped, &updated_at),
            author_id,
            imported_from: "gitlab_project",
            created_at,
            updated_at,
        });
        Ok(())
    }

    pub(super) fn auto_devops(&mut self, v: &Value) -> Result<(), String> {
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        self.store.auto_devops.insert(
            self.project_id,
            AutoDevops {
                enabled: v["enabled"].as_bool(),
                deploy_strategy: text(v, "deploy_strategy")
                    .unwrap_or_else(|| "continuous".to_owned()),
                updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
                created_at,
            },
        );
        Ok(())
    }

    pub(super) fn container_expiration_policy(&mut self, v: &Value) -> Result<(), String> {
        let created_at = time(v, "created_at").unwrap_or_else(|| self.created_at.clone());
        self.store.container_expiration_policies.insert(
            self.project_id,
            ContainerExpirationPolicy {
                cadence: text(v, "cadence").unwrap_or_else(|| "1d".to_owned()),
                enabled: v["enabled"].as_bool().unwrap_or(false),
                keep_n: v["keep_n"].as_u64(),
                older_than: text(v, "older_than"),
                name_regex: text(v, "name_regex"),
                name_regex_keep: text(v, "name_regex_keep"),
                next_run_at: time(v, "next_run_at"),
                updated_at: time(v, "updated_at").unwrap_or_else(|| created_at.clone()),
                created_at,
            },
        );
        Ok(())
    }

    pub(super) fn push_rule(&mut self, v: &Value) -> Result<(), String> {
        let flag = |key: &str| v[key].as_bool().unwrap_or(false);
        let rule = PushRule {
            id: self.store.push_rules.len() as u64 + 1,
            commit_message_regex: text(v, "commit_message_regex"),
            commit_message_negative_regex: text(v, "commit_message_negative_regex"),
            branch_name_regex: text(v, "branch_name_regex"),
            author_email_regex: text(v, "author_email_regex"),
            file_name_regex: text(v, "file_name_regex"),
            max_file_size: v["max_file_size"].as_u64().unwrap_or(0),
            deny_delete_tag: flag("deny_delete_tag"),
            member_check: flag("member_check"),
            prevent_secrets: flag("prevent_secrets"),
            commit_committer_check: flag("commit_committer_check"),
            reject_unsigned_commits: flag("reject_unsigned_commits"),
            created_at: self.created_at.clone(),
        };
        self.store.push_rules.insert(self.project_id, rule);
        Ok(())
    }

    pub(super) fn service_desk_setting(&mut self, v: &Value) -> Result<(), String> {
        self.store.service_desk_settings.insert(
            self.project_id,
            ServiceDeskSetting {
                issue_template_key: text(v, "issue_template_key"),
                project_key: text(v, "project_key"),
            },
        );
        Ok(())
    }
}

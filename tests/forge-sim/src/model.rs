//! Record types of the simulated GitLab: one plain struct per kind of record, as stored.
//! They hold ids, never references, and know nothing about HTTP; the JSON that GitLab
//! returns for them (with nested users, web URLs and links) is rendered in `routes/`.
//! Timestamps are stored already formatted as GitLab prints them (`2024-01-02T03:04:05.678Z`),
//! dates as `YYYY-MM-DD`, so that they sort as strings.

use serde::Serialize;

/// GitLab access levels.
pub mod access {
    pub const NONE: u8 = 0;
    pub const GUEST: u8 = 10;
    pub const REPORTER: u8 = 20;
    pub const DEVELOPER: u8 = 30;
    pub const MAINTAINER: u8 = 40;
    pub const OWNER: u8 = 50;
}

/// What a record belongs to. Every record that is not a user, group or project has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", content = "id")]
pub enum Parent {
    Group(u64),
    Project(u64),
    Issue(u64),
    MergeRequest(u64),
    Epic(u64),
    Snippet(u64),
    Board(u64),
    Note(u64),
    Cadence(u64),
    /// A design of an issue (the noteable of notes on it).
    Design(u64),
}

impl Parent {
    /// GitLab's class name for a noteable or awardable.
    pub fn class_name(self) -> &'static str {
        match self {
            Parent::Group(_) => "Group",
            Parent::Project(_) => "Project",
            Parent::Issue(_) => "Issue",
            Parent::MergeRequest(_) => "MergeRequest",
            Parent::Epic(_) => "Epic",
            Parent::Snippet(_) => "Snippet",
            Parent::Board(_) => "Board",
            Parent::Note(_) => "Note",
            Parent::Cadence(_) => "Iterations::Cadence",
            Parent::Design(_) => "DesignManagement::Design",
        }
    }

    pub fn id(self) -> u64 {
        match self {
            Parent::Group(id)
            | Parent::Project(id)
            | Parent::Issue(id)
            | Parent::MergeRequest(id)
            | Parent::Epic(id)
            | Parent::Snippet(id)
            | Parent::Board(id)
            | Parent::Note(id)
            | Parent::Cadence(id)
            | Parent::Design(id) => id,
        }
    }
}

/// A record kept in a [`crate::state::Table`].
pub trait Record {
    fn id(&self) -> u64;
    fn parent(&self) -> Parent;
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
    /// The confirmed primary email; only admins and the user see it.
    pub email: String,
    pub public_email: Option<String>,
    pub is_admin: bool,
    pub state: String,
    pub created_at: String,
    pub bio: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub full_name: String,
    pub full_path: String,
    pub description: String,
    pub visibility: String,
    pub parent_id: Option<u64>,
    pub created_at: String,
    pub project_creation_level: String,
    pub subgroup_creation_level: String,
    pub request_access_enabled: bool,
    pub require_two_factor_authentication: bool,
    pub two_factor_grace_period: u64,
    pub lfs_enabled: bool,
    pub mentions_disabled: Option<bool>,
    pub emails_enabled: bool,
    pub share_with_group_lock: bool,
    pub auto_devops_enabled: Option<bool>,
    pub default_branch_protection: u8,
    /// The group's avatar (file name and bytes), served at `GET /groups/:id/avatar`.
    #[serde(skip)]
    pub avatar: Option<(String, Vec<u8>)>,
}

impl Group {
    /// GitLab's `avatar_url`: where the web serves the group's avatar.
    pub fn avatar_url(&self, base_url: &str) -> Option<String> {
        self.avatar.as_ref().map(|(filename, _)| {
            format!(
                "{base_url}/uploads/-/system/group/avatar/{}/{filename}",
                self.id
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub namespace_id: u64,
    pub path_with_namespace: String,
    pub name_with_namespace: String,
    pub description: String,
    pub visibility: String,
    pub default_branch: String,
    pub created_at: String,
    pub last_activity_at: String,
    pub creator_id: u64,
    pub topics: Vec<String>,
    pub archived: bool,
    pub issues_enabled: bool,
    pub merge_requests_enabled: bool,
    pub wiki_enabled: bool,
    pub snippets_enabled: bool,
    pub lfs_enabled: bool,
    pub request_access_enabled: bool,
    pub empty_repo: bool,
    /// Service Desk on (a project column; its settings are a [`ServiceDeskSetting`]).
    pub service_desk_enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: u64,
    pub source: Parent,
    pub user_id: u64,
    pub access_level: u8,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub created_by: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub id: u64,
    pub owner: Parent,
    pub name: String,
    pub color: String,
    pub text_color: String,
    pub description: Option<String>,
    pub priority: Option<u64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Milestone {
    pub id: u64,
    pub iid: u64,
    pub owner: Parent,
    pub title: String,
    pub description: String,
    /// `active` or `closed`.
    pub state: String,
    pub due_date: Option<String>,
    pub start_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Badge {
    pub id: u64,
    pub owner: Parent,
    pub name: Option<String>,
    pub link_url: String,
    pub image_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub id: u64,
    pub owner: Parent,
    pub name: String,
    pub hide_backlog_list: bool,
    pub hide_closed_list: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardList {
    pub id: u64,
    pub board_id: u64,
    /// `label`, `milestone` or `iteration`.
    pub list_type: String,
    pub label_id: Option<u64>,
    pub milestone_id: Option<u64>,
    pub iteration_id: Option<u64>,
    pub position: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Epic {
    pub id: u64,
    pub iid: u64,
    pub group_id: u64,
    /// Id of the parent epic.
    pub parent_id: Option<u64>,
    pub title: String,
    pub description: String,
    /// `opened` or `closed`.
    pub state: String,
    pub confidential: bool,
    pub author_id: u64,
    pub labels: Vec<String>,
    pub start_date_is_fixed: bool,
    pub start_date_fixed: Option<String>,
    pub due_date_is_fixed: bool,
    pub due_date_fixed: Option<String>,
    pub color: String,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    /// Order among the parent's children (GitLab's `relative_position`; unset sorts last). Not in the
    /// REST entity: the children list is sorted by it, and the relation export carries it.
    pub relative_position: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IterationCadence {
    pub id: u64,
    pub group_id: u64,
    pub title: String,
    pub description: Option<String>,
    pub start_date: String,
    /// None for a manual cadence (GitLab clears the scheduling fields).
    pub duration_in_weeks: Option<u64>,
    pub iterations_in_advance: Option<u64>,
    pub active: bool,
    pub automatic: bool,
    pub roll_over: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Iteration {
    pub id: u64,
    pub iid: u64,
    pub sequence: u64,
    pub group_id: u64,
    pub cadence_id: u64,
    pub title: Option<String>,
    pub description: Option<String>,
    /// 1 upcoming, 2 current, 3 closed.
    pub state: u8,
    pub start_date: String,
    pub due_date: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    pub description: String,
    /// `opened` or `closed`.
    pub state: String,
    pub author_id: u64,
    pub assignee_ids: Vec<u64>,
    pub labels: Vec<String>,
    pub milestone_id: Option<u64>,
    pub epic_id: Option<u64>,
    pub iteration_id: Option<u64>,
    pub confidential: bool,
    pub discussion_locked: Option<bool>,
    pub due_date: Option<String>,
    pub weight: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub closed_by_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeRequest {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    pub description: String,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: String,
    pub author_id: u64,
    pub assignee_ids: Vec<u64>,
    pub reviewer_ids: Vec<u64>,
    pub labels: Vec<String>,
    pub milestone_id: Option<u64>,
    pub source_branch: String,
    pub target_branch: String,
    pub draft: bool,
    pub squash: bool,
    pub sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub merged_at: Option<String>,
    pub merged_by_id: Option<u64>,
    pub closed_at: Option<String>,
    pub closed_by_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub id: u64,
    /// The issue, merge request, epic or snippet the note is on.
    pub noteable: Parent,
    pub body: String,
    pub author_id: u64,
    pub system: bool,
    pub internal: bool,
    pub resolvable: bool,
    pub resolved: bool,
    /// Where a diff note sits (GitLab's `position`: shas, paths, lines); such a note is a `DiffNote`.
    pub position: Option<serde_json::Value>,
    /// `gitlab_project` for a note restored from an export archive, else `none`.
    pub imported_from: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AwardEmoji {
    pub id: u64,
    pub awardable: Parent,
    pub name: String,
    pub user_id: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A change of an epic's state, recorded when it happens (GitLab's resource state event).
#[derive(Debug, Clone, Serialize)]
pub struct StateEvent {
    pub id: u64,
    /// The epic the state changed on.
    pub eventable: Parent,
    /// Who changed it (the `Sudo` user when an administrator acted for someone).
    pub user_id: u64,
    /// `closed` or `reopened`.
    pub state: String,
    pub created_at: String,
}

/// A label added to or removed from an epic, recorded when it happens (GitLab's resource label
/// event). The label is kept by id, so the event names it as it is now, or not at all once deleted.
#[derive(Debug, Clone, Serialize)]
pub struct LabelEvent {
    pub id: u64,
    pub eventable: Parent,
    pub user_id: u64,
    pub label_id: u64,
    /// `add` or `remove`.
    pub action: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseLink {
    pub id: u64,
    pub name: String,
    pub url: String,
    pub link_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: u64,
    pub project_id: u64,
    pub tag_name: String,
    pub name: String,
    pub description: String,
    pub author_id: u64,
    pub milestones: Vec<String>,
    pub links: Vec<ReleaseLink>,
    pub created_at: String,
    pub released_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snippet {
    pub id: u64,
    pub project_id: u64,
    pub title: String,
    pub description: Option<String>,
    pub file_name: String,
    pub content: String,
    pub visibility: String,
    pub author_id: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProtectedBranch {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub push_access_level: u8,
    pub merge_access_level: u8,
    pub allow_force_push: bool,
    pub code_owner_approval_required: bool,
}

/// A protected tag (name or wildcard) with who may create it (GitLab's `create_access_levels`,
/// one level here).
#[derive(Debug, Clone, Serialize)]
pub struct ProtectedTag {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub create_access_level: u8,
    pub created_at: String,
    pub updated_at: String,
}

/// A CI pipeline as a project keeps it after it ran (no jobs: the simulator runs nothing).
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    /// The branch or tag it ran for (GitLab's `ref`).
    pub git_ref: String,
    pub sha: String,
    pub before_sha: Option<String>,
    pub tag: bool,
    /// `success`, `failed`, `canceled`, `skipped`, `manual`, `running`, ...
    pub status: String,
    /// `push`, `web`, `schedule`, `merge_request_event`, `external_pull_request_event`, ...
    pub source: String,
    pub user_id: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Seconds.
    pub duration: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineSchedule {
    pub id: u64,
    pub project_id: u64,
    pub description: String,
    pub git_ref: String,
    pub cron: String,
    pub cron_timezone: String,
    pub next_run_at: Option<String>,
    pub active: bool,
    pub owner_id: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A pull request of the GitHub repository a CI/CD-for-external-repository project mirrors.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalPullRequest {
    pub id: u64,
    pub project_id: u64,
    pub pull_request_iid: u64,
    pub source_branch: String,
    pub target_branch: String,
    pub source_repository: String,
    pub target_repository: String,
    pub source_sha: String,
    pub target_sha: String,
    /// `open`, `closed` or `merged`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A comment on a commit of the project's repository (a `Note` with `noteable_type: Commit`).
#[derive(Debug, Clone, Serialize)]
pub struct CommitNote {
    pub id: u64,
    pub project_id: u64,
    /// The commented commit's sha.
    pub commit_id: String,
    pub body: String,
    pub author_id: u64,
    pub imported_from: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

/// How the container registry's tags are cleaned up (one per project).
#[derive(Debug, Clone, Serialize)]
pub struct ContainerExpirationPolicy {
    pub cadence: String,
    pub enabled: bool,
    pub keep_n: Option<u64>,
    pub older_than: Option<String>,
    pub name_regex: Option<String>,
    pub name_regex_keep: Option<String>,
    pub next_run_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The project's own Auto DevOps setting (`ProjectAutoDevops`); `enabled: None` follows the
/// instance.
#[derive(Debug, Clone, Serialize)]
pub struct AutoDevops {
    pub enabled: Option<bool>,
    /// `continuous`, `manual` or `timed_incremental`.
    pub deploy_strategy: String,
    pub created_at: String,
    pub updated_at: String,
}

/// The project's push rule (GitLab Premium).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushRule {
    pub id: u64,
    pub commit_message_regex: Option<String>,
    pub commit_message_negative_regex: Option<String>,
    pub branch_name_regex: Option<String>,
    pub author_email_regex: Option<String>,
    pub file_name_regex: Option<String>,
    /// MiB; 0 is no limit.
    pub max_file_size: u64,
    pub deny_delete_tag: bool,
    pub member_check: bool,
    pub prevent_secrets: bool,
    pub commit_committer_check: bool,
    pub reject_unsigned_commits: bool,
    pub created_at: String,
}

/// Service Desk's settings of a project (whether it is on is [`Project::service_desk_enabled`]).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDeskSetting {
    pub issue_template_key: Option<String>,
    /// The custom suffix of the Service Desk address.
    pub project_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    pub id: u64,
    pub owner: Parent,
    pub secret: String,
    pub filename: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub created_at: String,
}

/// A design of an issue (GitLab's `DesignManagement::Design`). Its file lives in the project's
/// design repository at [`Design::full_path`], as a Git LFS pointer; which commits changed it are
/// the actions of its issue's [`DesignVersion`]s. Notes on it are kept in `Store::notes` under
/// [`Parent::Design`].
#[derive(Debug, Clone, Serialize)]
pub struct Design {
    pub id: u64,
    /// Per project, as GitLab numbers designs; kept by an import.
    pub iid: u64,
    pub project_id: u64,
    pub issue_id: u64,
    pub filename: String,
    pub relative_position: Option<i64>,
}

impl Design {
    /// Where the design's file lives in the design repository (GitLab's `Design#full_path`).
    pub fn full_path(&self, issue_iid: u64) -> String {
        format!("designs/issue-{issue_iid}/{}", self.filename)
    }
}

/// What a design version did to one design (GitLab's `DesignManagement::Action` event enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DesignEvent {
    Creation = 0,
    Modification = 1,
    Deletion = 2,
}

impl DesignEvent {
    /// The event from its stored number (unknown numbers are modifications, as any change is).
    pub fn from_number(n: u64) -> DesignEvent {
        match n {
            0 => DesignEvent::Creation,
            2 => DesignEvent::Deletion,
            _ => DesignEvent::Modification,
        }
    }

    /// GitLab's GraphQL `DesignVersionEvent` value.
    pub fn graphql_name(self) -> &'static str {
        match self {
            DesignEvent::Creation => "CREATION",
            DesignEvent::Modification => "MODIFICATION",
            DesignEvent::Deletion => "DELETION",
        }
    }
}

/// One version of an issue's designs (GitLab's `DesignManagement::Version`): a commit of the
/// project's design repository (`sha`) and what it did to which designs.
#[derive(Debug, Clone, Serialize)]
pub struct DesignVersion {
    pub id: u64,
    pub issue_id: u64,
    pub sha: String,
    pub author_id: u64,
    pub created_at: String,
    /// (design id, event), in the order the version made them.
    pub actions: Vec<(u64, DesignEvent)>,
}

/// Which repository of a project an LFS object belongs to (GitLab's
/// `lfs_objects_projects.repository_type`; `null` there is the project's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum LfsRepositoryType {
    Project,
    Wiki,
    Design,
}

impl LfsRepositoryType {
    /// The type `lfs-objects.json` names (`null` or `project`, `wiki`, `design`); `None` for any
    /// other name.
    pub fn from_export(value: &serde_json::Value) -> Option<LfsRepositoryType> {
        match value.as_str() {
            None if value.is_null() => Some(LfsRepositoryType::Project),
            Some("project") => Some(LfsRepositoryType::Project),
            Some("wiki") => Some(LfsRepositoryType::Wiki),
            Some("design") => Some(LfsRepositoryType::Design),
            _ => None,
        }
    }
}

/// One record of an import that could not be restored (GitLab's `ImportFailure`).
#[derive(Debug, Clone, Serialize)]
pub struct FailedRelation {
    pub id: u64,
    pub created_at: String,
    pub exception_class: String,
    pub exception_message: String,
    pub source: String,
    pub relation_name: String,
    pub line_number: u64,
}

/// The import state of a project created by `POST /projects/import` (GitLab's `ProjectImportState`).
#[derive(Debug, Clone, Serialize)]
pub struct ProjectImport {
    pub project_id: u64,
    /// `scheduled`, `started`, `finished` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub correlation_id: String,
    pub failed_relations: Vec<FailedRelation>,
}

/// One `POST /projects/import-relation` (GitLab's `Projects::ImportExport::RelationImportTracker`).
#[derive(Debug, Clone, Serialize)]
pub struct RelationImport {
    pub id: u64,
    pub project_id: u64,
    pub relation: String,
    /// `created`, `started`, `finished` or `failed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub failed_relations: Vec<FailedRelation>,
}

macro_rules! record {
    ($ty:ty, |$r:ident| $parent:expr) => {
        impl Record for $ty {
            fn id(&self) -> u64 {
                self.id
            }
            fn parent(&self) -> Parent {
                let $r = self;
                $parent
            }
        }
    };
}

record!(Member, |r| r.source);
record!(Label, |r| r.owner);
record!(Milestone, |r| r.owner);
record!(Badge, |r| r.owner);
record!(Board, |r| r.owner);
record!(BoardList, |r| Parent::Board(r.board_id));
record!(Epic, |r| Parent::Group(r.group_id));
record!(IterationCadence, |r| Parent::Group(r.group_id));
record!(Iteration, |r| Parent::Group(r.group_id));
record!(Issue, |r| Parent::Project(r.project_id));
record!(MergeRequest, |r| Parent::Project(r.project_id));
record!(Note, |r| r.noteable);
record!(AwardEmoji, |r| r.awardable);
record!(StateEvent, |r| r.eventable);
record!(LabelEvent, |r| r.eventable);
record!(Release, |r| Parent::Project(r.project_id));
record!(Snippet, |r| Parent::Project(r.project_id));
record!(ProtectedBranch, |r| Parent::Project(r.project_id));
record!(Upload, |r| r.owner);
record!(ProtectedTag, |r| Parent::Project(r.project_id));
record!(Pipeline, |r| Parent::Project(r.project_id));
record!(PipelineSchedule, |r| Parent::Project(r.project_id));
record!(ExternalPullRequest, |r| Parent::Project(r.project_id));
record!(CommitNote, |r| Parent::Project(r.project_id));
record!(Design, |r| Parent::Issue(r.issue_id));
record!(DesignVersion, |r| Parent::Issue(r.issue_id));

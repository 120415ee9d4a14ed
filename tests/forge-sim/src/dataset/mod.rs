//! Deterministic datasets: the same (dataset, seed) always gives the same records, ids,
//! timestamps and tokens. Timestamps come from a seeded clock, never the wall clock.
//! `Builder` is the one way records are added here; it never performs I/O (git history is
//! seeded by `lib.rs` from the list of projects the build returns, and for every snippet the
//! store holds, see `GitStore::seed_snippet`).

mod empty;
mod medium;
mod small;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::Dataset;
use crate::model::{
    AutoDevops, AwardEmoji, Badge, Board, BoardList, CommitNote, ContainerExpirationPolicy, Design,
    DesignEvent, DesignVersion, Epic, ExternalPullRequest, Group, Issue, Iteration,
    IterationCadence, Label, Member, MergeRequest, Milestone, Note, Parent, Pipeline,
    PipelineSchedule, Project, ProtectedTag, PushRule, Release, ServiceDeskSetting, Snippet,
    Upload, User,
};
use crate::routes::epics::change_state;
use crate::routes::events::{record_labels, record_state};
use crate::routes::groups::new_group;
use crate::state::Store;
use crate::timestamp::{format_date, format_time};

/// A file kept in Git LFS: its path in the repository and its bytes.
pub type LfsFile = (String, Vec<u8>);

/// A built dataset: the store and who holds which token.
pub struct Seeded {
    pub store: Store,
    pub admin_token: String,
    pub owner_token: String,
    /// Full paths of projects whose repositories get seeded history.
    pub repositories: Vec<String>,
    /// Projects with a wiki: the project's full path and its pages (file path in the wiki
    /// repository, content).
    pub wikis: Vec<(String, Vec<(String, String)>)>,
    /// Projects with LFS files: the project's full path and its files (path in the repository,
    /// bytes), committed as pointers and kept in the project's LFS storage.
    pub lfs: Vec<(String, Vec<LfsFile>)>,
    /// Projects with designs: the commits of each one's design repository, which `lib.rs` seeds,
    /// giving each version its `sha` and keeping each file as an LFS object of type design.
    pub designs: Vec<DesignRepository>,
}

/// The design repository of one project, to seed.
pub struct DesignRepository {
    /// The project's full path.
    pub project: String,
    /// Each design version (by id) with the commit that makes it, in order.
    pub versions: Vec<(u64, crate::git::DesignCommit)>,
}

/// The users every dataset has, in id order: (username, name, email, public email, admin).
/// Destinations (`empty`) have the same users and emails so that mapping by email works.
pub const USERS: [(&str, &str, &str, Option<&str>, bool); 7] = [
    ("root", "Administrator", "admin@forge-sim.test", None, true),
    (
        "ada",
        "Ada Lovelace",
        "ada@forge-sim.test",
        Some("ada@forge-sim.test"),
        false,
    ),
    (
        "bjorn",
        "Björn Ångström",
        "bjorn@forge-sim.test",
        Some("bjorn@forge-sim.test"),
        false,
    ),
    (
        "chen",
        "陈静",
        "chen@forge-sim.test",
        Some("chen@forge-sim.test"),
        false,
    ),
    (
        "dmitri",
        "Дмитрий Петров",
        "dmitri@forge-sim.test",
        Some("dmitri@forge-sim.test"),
        false,
    ),
    ("eve", "Eve Quiet", "eve@forge-sim.test", None, false),
    (
        "farah",
        "Farah Haddad",
        "farah@forge-sim.test",
        Some("farah@forge-sim.test"),
        false,
    ),
];

/// The personal access token of `username` in a dataset started with `seed`.
pub fn token_for(dataset: Dataset, seed: u64, username: &str) -> String {
    let digest = Sha256::digest(format!("{}/{seed}/{username}", dataset.name()).as_bytes());
    format!("glpat-{}", &hex::encode(digest)[..20])
}

pub fn build(dataset: Dataset, seed: u64) -> Seeded {
    match dataset {
        Dataset::Empty => empty::build(seed),
        Dataset::Small => small::build(seed),
        Dataset::Medium => medium::build(seed),
    }
}

/// Adds records with ids, iids and timestamps the way GitLab would have assigned them.
pub struct Builder {
    pub store: Store,
    pub rng: ChaCha8Rng,
    clock: OffsetDateTime,
    dataset: Dataset,
    seed: u64,
    /// Divides the clock's steps, so that big datasets stay within a realistic time span.
    pace: i64,
}

impl Builder {
    pub fn new(dataset: Dataset, seed: u64, first_id: u64) -> Builder {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f0e9_e51a);
        let start = OffsetDateTime::from_unix_timestamp(1_672_650_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            + Duration::days(rng.random_range(0..90));
        Builder {
            store: Store::new(first_id),
            rng,
            clock: start,
            dataset,
            seed,
            pace: 1,
        }
    }

    /// Makes the seeded clock advance `pace` times slower.
    pub fn with_pace(mut self, pace: i64) -> Builder {
        self.pace = pace.max(1);
        self
    }

    /// Advances the seeded clock by up to `max_minutes` and returns the new time.
    pub fn tick(&mut self, max_minutes: i64) -> String {
        let minutes = self.rng.random_range(1..=(max_minutes / self.pace).max(1));
        let millis = self.rng.random_range(0..1000);
        self.clock += Duration::minutes(minutes) + Duration::milliseconds(millis);
        format_time(self.clock)
    }

    /// A date `days` after the current seeded time.
    pub fn date_in(&self, days: i64) -> String {
        format_date((self.clock + Duration::days(days)).date())
    }

    pub fn users(&mut self) {
        for (username, name, email, public_email, is_admin) in USERS {
            let id = self.store.next_user_id();
            let created_at = self.tick(60);
            let token = token_for(self.dataset, self.seed, username);
            self.store.insert_user(
                User {
                    id,
                    username: username.into(),
                    name: name.into(),
                    email: email.into(),
                    public_email: public_email.map(str::to_string),
                    is_admin,
                    state: "active".into(),
                    created_at,
                    bio: String::new(),
                },
                Some(token),
            );
        }
    }

    pub fn user_id(&self, username: &str) -> u64 {
        self.store.user_by_username(username).map_or(1, |u| u.id)
    }

    pub fn token(&self, username: &str) -> String {
        token_for(self.dataset, self.seed, username)
    }

    pub fn group(
        &mut self,
        name: &str,
        path: &str,
        parent: Option<u64>,
        visibility: &str,
        description: &str,
    ) -> u64 {
        let id = self.store.next_group_id();
        let created_at = self.tick(600);
        let parent = parent.and_then(|p| self.store.group(p).cloned());
        let mut group: Group = new_group(&self.store, id, name, path, parent.as_ref(), created_at);
        group.visibility = visibility.into();
        group.description = description.into();
        self.store.insert_group(group);
        id
    }

    pub fn epic_position(&mut self, epic_id: u64, position: i64) {
        if let Some(e) = self.store.epics.get_mut(epic_id) {
            e.relative_position = Some(position);
        }
    }

    pub fn group_avatar(&mut self, group_id: u64, filename: &str, content: Vec<u8>) {
        if let Some(mut group) = self.store.group(group_id).cloned() {
            group.avatar = Some((filename.to_string(), content));
            self.store.insert_group(group);
        }
    }

    pub fn group_description(&mut self, group_id: u64, description: &str) {
        if let Some(mut group) = self.store.group(group_id).cloned() {
            group.description = description.to_string();
            self.store.insert_group(group);
        }
    }

    pub fn project(
        &mut self,
        group_id: u64,
        name: &str,
        path: &str,
        visibility: &str,
        creator: u64,
    ) -> u64 {
        let id = self.store.next_project_id();
        let created_at = self.tick(600);
        let group = self.store.group(group_id).cloned();
        let (full_path, full_name) = match &group {
            Some(g) => (
                format!("{}/{path}", g.full_path),
                format!("{} / {name}", g.full_name),
            ),
            None => (path.to_string(), name.to_string()),
        };
        self.store.insert_project(Project {
            id,
            name: name.into(),
            path: path.into(),
            namespace_id: group_id,
            path_with_namespace: full_path,
            name_with_namespace: full_name,
            description: format!("{name}: part of the simulated forge."),
            visibility: visibility.into(),
            default_branch: "main".into(),
            last_activity_at: created_at.clone(),
            created_at,
            creator_id: creator,
            topics: vec!["simulated".into()],
            archived: false,
            issues_enabled: true,
            merge_requests_enabled: true,
            wiki_enabled: true,
            snippets_enabled: true,
            lfs_enabled: true,
            request_access_enabled: true,
            empty_repo: false,
            service_desk_enabled: false,
        });
        id
    }

    pub fn member(&mut self, source: Parent, user_id: u64, access_level: u8) {
        let id = self.store.members.next_id();
        let created_at = self.tick(30);
        self.store.members.insert(Member {
            id,
            source,
            user_id,
            access_level,
            created_at,
            expires_at: None,
            created_by: Some(1),
        });
    }

    pub fn label(
        &mut self,
        owner: Parent,
        name: &str,
        color: &str,
        description: Option<&str>,
    ) -> u64 {
        let id = self.store.labels.next_id();
        let created_at = self.tick(30);
        self.store.labels.insert(Label {
            id,
            owner,
            name: name.into(),
            color: color.into(),
            text_color: crate::routes::labels::text_color(color),
            description: description.map(str::to_string),
            priority: None,
            created_at,
        });
        id
    }

    pub fn milestone(
        &mut self,
        owner: Parent,
        title: &str,
        closed: bool,
        due_in_days: Option<i64>,
    ) -> u64 {
        let id = self.store.milestones.next_id();
        let iid = self.store.milestones.next_iid(owner);
        let created_at = self.tick(120);
        let due_date = due_in_days.map(|d| self.date_in(d));
        let start_date = due_in_days.map(|d| self.date_in(d - 14));
        self.store.milestones.insert(Milestone {
            id,
            iid,
            owner,
            title: title.into(),
            description: format!("Milestone **{title}**."),
            state: if closed { "closed" } else { "active" }.into(),
            due_date,
            start_date,
            updated_at: created_at.clone(),
            created_at,
        });
        id
    }

    pub fn milestone_description(&mut self, milestone_id: u64, description: &str) {
        if let Some(m) = self.store.milestones.get_mut(milestone_id) {
            m.description = description.to_string();
        }
    }

    pub fn badge(&mut self, owner: Parent, name: &str, link_url: &str, image_url: &str) {
        let id = self.store.badges.next_id();
        self.store.badges.insert(Badge {
            id,
            owner,
            name: Some(name.into()),
            link_url: link_url.into(),
            image_url: image_url.into(),
        });
    }

    /// A board with one list per label id and milestone id, in that order.
    pub fn board(&mut self, owner: Parent, name: &str, labels: &[u64], milestones: &[u64]) {
        let id = self.store.boards.next_id();
        let created_at = self.tick(60);
        self.store.boards.insert(Board {
            id,
            owner,
            name: name.into(),
            hide_backlog_list: false,
            hide_closed_list: false,
            created_at,
        });
        let lists = labels
            .iter()
            .map(|l| (Some(*l), None))
            .chain(milestones.iter().map(|m| (None, Some(*m))));
        for (position, (label_id, milestone_id)) in lists.enumerate() {
            let list_id = self.store.board_lists.next_id();
            self.store.board_lists.insert(BoardList {
                id: list_id,
                board_id: id,
                list_type: if label_id.is_some() {
                    "label"
                } else {
                    "milestone"
                }
                .into(),
                label_id,
                milestone_id,
                iteration_id: None,
                position: position as u64,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn epic(
        &mut self,
        group_id: u64,
        title: &str,
        description: &str,
        author: u64,
        parent_id: Option<u64>,
        labels: &[&str],
        closed: bool,
        confidential: bool,
    ) -> u64 {
        let id = self.store.epics.next_id();
        let iid = self.store.epics.next_iid(Parent::Group(group_id));
        let created_at = self.tick(600);
        let updated_at = self.tick(60);
        let fixed = self.rng.random_bool(0.5);
        let start = self.date_in(-10);
        let due = self.date_in(40);
        self.store.epics.insert(Epic {
            id,
            iid,
            group_id,
            parent_id,
            title: title.into(),
            description: description.into(),
            state: if closed { "closed" } else { "opened" }.into(),
            confidential,
            author_id: author,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            start_date_is_fixed: fixed,
            start_date_fixed: fixed.then_some(start),
            due_date_is_fixed: fixed,
            due_date_fixed: fixed.then_some(due),
            color: "#1068bf".into(),
            created_at: created_at.clone(),
            closed_at: closed.then(|| updated_at.clone()),
            updated_at: updated_at.clone(),
            relative_position: None,
        });
        // What GitLab records for an epic created with labels and later closed by its author.
        let names: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let epic = Parent::Epic(id);
        let group = Parent::Group(group_id);
        record_labels(
            &mut self.store,
            epic,
            group,
            author,
            &[],
            &names,
            &created_at,
        );
        if closed {
            record_state(&mut self.store, epic, author, "closed", &updated_at);
        }
        id
    }

    /// `user` closes (`close`) or reopens (`reopen`) an epic later, as GitLab records it.
    pub fn epic_state(&mut self, epic_id: u64, state_event: &str, user: u64) {
        let at = self.tick(600);
        let Some(epic) = self.store.epics.get_mut(epic_id) else {
            return;
        };
        let Some(state) = change_state(epic, state_event, &at) else {
            return;
        };
        epic.updated_at = at.clone();
        record_state(&mut self.store, Parent::Epic(epic_id), user, state, &at);
    }

    /// `user` adds and removes labels (by name) of an epic later, as GitLab records it.
    pub fn epic_labels(&mut self, epic_id: u64, add: &[&str], remove: &[&str], user: u64) {
        let at = self.tick(600);
        let Some(epic) = self.store.epics.get_mut(epic_id) else {
            return;
        };
        let before = epic.labels.clone();
        for label in add {
            if !epic.labels.iter().any(|l| l == label) {
                epic.labels.push(label.to_string());
            }
        }
        epic.labels.retain(|l| !remove.contains(&l.as_str()));
        epic.updated_at = at.clone();
        let (after, group) = (epic.labels.clone(), Parent::Group(epic.group_id));
        let epic = Parent::Epic(epic_id);
        record_labels(&mut self.store, epic, group, user, &before, &after, &at);
    }

    /// A cadence with `count` two-week iterations, the last ones current and upcoming.
    pub fn iterations(&mut self, group_id: u64, title: &str, count: u64) -> Vec<u64> {
        let cadence_id = self.store.cadences.next_id();
        let start = self.date_in(-(14 * (count as i64 - 2)));
        self.store.cadences.insert(IterationCadence {
            id: cadence_id,
            group_id,
            title: title.into(),
            description: Some(format!("{title} of the simulated forge")),
            start_date: start,
            duration_in_weeks: Some(2),
            iterations_in_advance: Some(1),
            active: true,
            automatic: true,
            roll_over: false,
        });
        let mut ids = Vec::new();
        for n in 0..count {
            let id = self.store.iterations.next_id();
            let iid = self.store.iterations.next_iid(Parent::Group(group_id));
            let offset = 14 * (n as i64 - (count as i64 - 2));
            let created_at = self.tick(30);
            let state = match offset {
                o if o > 0 => 1,
                0 => 2,
                _ => 3,
            };
            self.store.iterations.insert(Iteration {
                id,
                iid,
                sequence: n + 1,
                group_id,
                cadence_id,
                title: (n % 2 == 0).then(|| format!("Sprint {}", n + 1)),
                description: None,
                state,
                start_date: self.date_in(offset),
                due_date: self.date_in(offset + 13),
                updated_at: created_at.clone(),
                created_at,
            });
            ids.push(id);
        }
        ids
    }

    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &mut self,
        project_id: u64,
        title: String,
        description: String,
        author: u64,
        assignees: Vec<u64>,
        labels: Vec<String>,
        milestone_id: Option<u64>,
        closed_by: Option<u64>,
        confidential: bool,
    ) -> u64 {
        let id = self.store.issues.next_id();
        let iid = self.store.issues.next_iid(Parent::Project(project_id));
        let created_at = self.tick(240);
        let updated_at = self.tick(30);
        self.store.issues.insert(Issue {
            id,
            iid,
            project_id,
            title,
            description,
            state: if closed_by.is_some() {
                "closed"
            } else {
                "opened"
            }
            .into(),
            author_id: author,
            assignee_ids: assignees,
            labels,
            milestone_id,
            epic_id: None,
            iteration_id: None,
            confidential,
            discussion_locked: None,
            due_date: None,
            weight: None,
            created_at,
            closed_at: closed_by.map(|_| updated_at.clone()),
            closed_by_id: closed_by,
            updated_at,
        });
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub fn merge_request(
        &mut self,
        project_id: u64,
        title: String,
        description: String,
        author: u64,
        source_branch: String,
        state: &str,
        labels: Vec<String>,
        merged_by: Option<u64>,
    ) -> u64 {
        let id = self.store.merge_requests.next_id();
        let iid = self
            .store
            .merge_requests
            .next_iid(Parent::Project(project_id));
        let created_at = self.tick(240);
        let updated_at = self.tick(60);
        let sha =
            hex::encode(Sha256::digest(format!("{project_id}/{iid}").as_bytes()))[..40].to_string();
        self.store.merge_requests.insert(MergeRequest {
            id,
            iid,
            project_id,
            title,
            description,
            state: state.into(),
            author_id: author,
            assignee_ids: vec![author],
            reviewer_ids: Vec::new(),
            labels,
            milestone_id: None,
            source_branch,
            target_branch: "main".into(),
            draft: false,
            squash: false,
            merge_commit_sha: (state == "merged").then(|| sha.chars().rev().collect()),
            sha: Some(sha),
            created_at,
            merged_at: (state == "merged").then(|| updated_at.clone()),
            merged_by_id: merged_by,
            closed_at: (state == "closed").then(|| updated_at.clone()),
            closed_by_id: (state == "closed").then_some(author),
            updated_at,
        });
        id
    }

    pub fn note(
        &mut self,
        noteable: Parent,
        body: String,
        author: u64,
        system: bool,
        internal: bool,
    ) -> u64 {
        let id = self.store.notes.next_id();
        let created_at = self.tick(90);
        self.store.notes.insert(Note {
            id,
            noteable,
            body,
            author_id: author,
            system,
            internal,
            resolvable: false,
            resolved: false,
            position: None,
            imported_from: "none",
            updated_at: created_at.clone(),
            created_at,
        });
        id
    }

    /// A design of an issue, numbered after the project's other designs and placed after them.
    pub fn design(&mut self, issue_id: u64, filename: &str) -> u64 {
        let Some(project_id) = self.store.issues.get(issue_id).map(|i| i.project_id) else {
            return 0;
        };
        let id = self.store.designs.next_id();
        let iid = self.store.designs.next_iid(Parent::Project(project_id));
        let position = self.store.designs.count(Parent::Issue(issue_id)) as i64 * 1000 + 1000;
        self.store.designs.insert(Design {
            id,
            iid,
            project_id,
            issue_id,
            filename: filename.to_owned(),
            relative_position: Some(position),
        });
        id
    }

    /// A version of an issue's designs by `author`, doing `actions`; its `sha` is the design
    /// repository's commit, filled in once that is seeded.
    pub fn design_version(
        &mut self,
        issue_id: u64,
        author: u64,
        actions: &[(u64, DesignEvent)],
    ) -> u64 {
        let id = self.store.design_versions.next_id();
        let created_at = self.tick(120);
        self.store.design_versions.insert(DesignVersion {
            id,
            issue_id,
            sha: String::new(),
            author_id: author,
            created_at,
            actions: actions.to_vec(),
        });
        id
    }

    /// The design repository commit that makes version `version_id`: by its author at its time,
    /// writing `files` (design id, the image's bytes) at the designs' paths.
    pub fn design_commit(
        &self,
        version_id: u64,
        files: &[(u64, &[u8])],
    ) -> crate::git::DesignCommit {
        let version = self.store.design_versions.get(version_id);
        let author = version
            .and_then(|v| self.store.user(v.author_id))
            .map(|u| (u.name.clone(), u.email.clone()))
            .unwrap_or_default();
        let paths: Vec<(String, Vec<u8>)> = files
            .iter()
            .filter_map(|(design_id, bytes)| {
                let design = self.store.designs.get(*design_id)?;
                let issue = self.store.issues.get(design.issue_id)?;
                Some((design.full_path(issue.iid), bytes.to_vec()))
            })
            .collect();
        crate::git::DesignCommit {
            author,
            unix_time: version
                .and_then(|v| crate::timestamp::unix_seconds(&v.created_at))
                .unwrap_or(0),
            message: format!("Updated {} designs\n", paths.len()),
            files: paths,
        }
    }

    pub fn award(&mut self, awardable: Parent, name: &str, user_id: u64) {
        let id = self.store.award_emoji.next_id();
        let created_at = self.tick(20);
        self.store.award_emoji.insert(AwardEmoji {
            id,
            awardable,
            name: name.into(),
            user_id,
            updated_at: created_at.clone(),
            created_at,
        });
    }

    pub fn release(&mut self, project_id: u64, tag: &str, author: u64, milestones: Vec<String>) {
        let id = self.store.releases.next_id();
        let created_at = self.tick(300);
        self.store.releases.insert(Release {
            id,
            project_id,
            tag_name: tag.into(),
            name: format!("Release {tag}"),
            description: format!("## {tag}\n\n- Fixes and improvements, see the milestone."),
            author_id: author,
            milestones,
            links: Vec::new(),
            released_at: created_at.clone(),
            created_at,
        });
    }

    pub fn snippet(
        &mut self,
        project_id: u64,
        title: &str,
        file_name: &str,
        content: &str,
        author: u64,
    ) {
        let id = self.store.snippets.next_id();
        let created_at = self.tick(100);
        self.store.snippets.insert(Snippet {
            id,
            project_id,
            title: title.into(),
            description: Some(format!("{title}.")),
            file_name: file_name.into(),
            content: content.into(),
            visibility: "private".into(),
            author_id: author,
            updated_at: created_at.clone(),
            created_at,
        });
    }

    pub fn protected_branch(&mut self, project_id: u64, name: &str) {
        let id = self.store.protected_branches.next_id();
        self.store
            .protected_branches
            .insert(crate::model::ProtectedBranch {
                id,
                project_id,
                name: name.into(),
                push_access_level: 40,
                merge_access_level: 40,
                allow_force_push: false,
                code_owner_approval_required: false,
            });
    }

    /// Stores an upload and returns its markdown URL (`/uploads/<secret>/<file>`).
    pub fn upload(&mut self, owner: Parent, filename: &str, content: Vec<u8>) -> String {
        let id = self.store.uploads.next_id();
        let created_at = self.tick(10);
        let secret = crate::routes::uploads::secret_for(owner, filename, &content, id);
        let url = format!("/uploads/{secret}/{filename}");
        self.store.uploads.insert(Upload {
            id,
            owner,
            secret,
            filename: filename.into(),
            content,
            created_at,
        });
        url
    }
}

/// The `n`-th commit from the tip of `main` of a project's seeded repository, as a dataset names it
/// before the repository exists (a stand-in sha); [`resolve_commits`] replaces it with the real
/// commit's once `lib.rs` has seeded the repository.
pub fn commit_placeholder(project_id: u64, n: usize) -> String {
    hex::encode(Sha256::digest(
        format!("commit/{project_id}/{n}").as_bytes(),
    ))[..40]
        .to_string()
}

/// Replaces a project's [`commit_placeholder`]s (pipelines, commit notes, external pull requests)
/// with the commits of its seeded repository, `commits` newest first (`git rev-list main`).
pub fn resolve_commits(store: &mut Store, project_id: u64, commits: &[String]) {
    let real: std::collections::HashMap<String, &String> = commits
        .iter()
        .enumerate()
        .map(|(n, sha)| (commit_placeholder(project_id, n), sha))
        .collect();
    let resolve = |sha: &mut String| {
        if let Some(r) = real.get(sha.as_str()) {
            *sha = (*r).clone();
        }
    };
    let owner = Parent::Project(project_id);
    let ids: Vec<u64> = store.pipelines.children(owner).map(|p| p.id).collect();
    for id in ids {
        if let Some(p) = store.pipelines.get_mut(id) {
            resolve(&mut p.sha);
            if let Some(before) = p.before_sha.as_mut() {
                resolve(before);
            }
        }
    }
    let ids: Vec<u64> = store.commit_notes.children(owner).map(|n| n.id).collect();
    for id in ids {
        if let Some(n) = store.commit_notes.get_mut(id) {
            resolve(&mut n.commit_id);
        }
    }
    let ids: Vec<u64> = store
        .external_pull_requests
        .children(owner)
        .map(|e| e.id)
        .collect();
    for id in ids {
        if let Some(e) = store.external_pull_requests.get_mut(id) {
            resolve(&mut e.source_sha);
            resolve(&mut e.target_sha);
        }
    }
}

/// CI/CD and repository settings records of a project (pipelines, schedules, protected tags, the
/// single settings records), on the same seeded clock.
impl Builder {
    pub fn protected_tag(&mut self, project_id: u64, name: &str, create_access_level: u8) {
        let id = self.store.protected_tags.next_id();
        let created_at = self.tick(30);
        self.store.protected_tags.insert(ProtectedTag {
            id,
            project_id,
            name: name.into(),
            create_access_level,
            updated_at: created_at.clone(),
            created_at,
        });
    }

    /// A pipeline that ran for `git_ref` at the `commit`-th commit from `main`'s tip.
    #[allow(clippy::too_many_arguments)]
    pub fn pipeline(
        &mut self,
        project_id: u64,
        git_ref: &str,
        commit: usize,
        status: &str,
        source: &str,
        user: u64,
        tag: bool,
    ) -> u64 {
        let id = self.store.pipelines.next_id();
        let iid = self.store.pipelines.next_iid(Parent::Project(project_id));
        let created_at = self.tick(120);
        let ran = !matches!(status, "created" | "pending" | "skipped" | "manual");
        let started_at = ran.then(|| self.tick(2));
        let duration = ran.then(|| self.rng.random_range(30..900));
        let finished_at = (ran && status != "running").then(|| self.tick(15));
        self.store.pipelines.insert(Pipeline {
            id,
            iid,
            project_id,
            git_ref: git_ref.into(),
            sha: commit_placeholder(project_id, commit),
            before_sha: Some(commit_placeholder(project_id, commit + 1)),
            tag,
            status: status.into(),
            source: source.into(),
            user_id: Some(user),
            updated_at: finished_at.clone().unwrap_or_else(|| created_at.clone()),
            created_at,
            started_at,
            finished_at,
            duration,
        });
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub fn pipeline_schedule(
        &mut self,
        project_id: u64,
        description: &str,
        git_ref: &str,
        cron: &str,
        cron_timezone: &str,
        active: bool,
        owner: u64,
    ) {
        let id = self.store.pipeline_schedules.next_id();
        let created_at = self.tick(60);
        self.store.pipeline_schedules.insert(PipelineSchedule {
            id,
            project_id,
            description: description.into(),
            git_ref: git_ref.into(),
            cron: cron.into(),
            cron_timezone: cron_timezone.into(),
            next_run_at: active.then(|| format!("{}T04:00:00.000Z", self.date_in(3))),
            active,
            owner_id: owner,
            updated_at: created_at.clone(),
            created_at,
        });
    }

    /// A pull request of the mirrored GitHub repository, between the `source`-th and `target`-th
    /// commits from `main`'s tip.
    #[allow(clippy::too_many_arguments)]
    pub fn external_pull_request(
        &mut self,
        project_id: u64,
        pull_request_iid: u64,
        source_branch: &str,
        target_branch: &str,
        repository: &str,
        (source, target): (usize, usize),
        status: &str,
    ) {
        let id = self.store.external_pull_requests.next_id();
        let created_at = self.tick(60);
        let updated_at = self.tick(30);
        self.store
            .external_pull_requests
            .insert(ExternalPullRequest {
                id,
                project_id,
                pull_request_iid,
                source_branch: source_branch.into(),
                target_branch: target_branch.into(),
                source_repository: repository.into(),
                target_repository: repository.into(),
                source_sha: commit_placeholder(project_id, source),
                target_sha: commit_placeholder(project_id, target),
                status: status.into(),
                created_at,
                updated_at,
            });
    }

    /// A comment on the `commit`-th commit from `main`'s tip.
    pub fn commit_note(&mut self, project_id: u64, commit: usize, body: &str, author: u64) {
        let id = self.store.commit_notes.next_id();
        let created_at = self.tick(90);
        self.store.commit_notes.insert(CommitNote {
            id,
            project_id,
            commit_id: commit_placeholder(project_id, commit),
            body: body.into(),
            author_id: author,
            imported_from: "none",
            updated_at: created_at.clone(),
            created_at,
        });
    }

    pub fn container_expiration_policy(
        &mut self,
        project_id: u64,
        mut policy: ContainerExpirationPolicy,
    ) {
        policy.created_at = self.tick(10);
        policy.updated_at = policy.created_at.clone();
        self.store
            .container_expiration_policies
            .insert(project_id, policy);
    }

    pub fn auto_devops(&mut self, project_id: u64, enabled: bool, deploy_strategy: &str) {
        let created_at = self.tick(10);
        self.store.auto_devops.insert(
            project_id,
            AutoDevops {
                enabled: Some(enabled),
                deploy_strategy: deploy_strategy.into(),
                updated_at: created_at.clone(),
                created_at,
            },
        );
    }

    pub fn push_rule(&mut self, project_id: u64, mut rule: PushRule) {
        rule.id = self.store.push_rules.len() as u64 + 1;
        rule.created_at = self.tick(10);
        self.store.push_rules.insert(project_id, rule);
    }

    /// Turns Service Desk on with these settings.
    pub fn service_desk(&mut self, project_id: u64, setting: ServiceDeskSetting) {
        if let Some(p) = self.store.projects.get_mut(&project_id) {
            p.service_desk_enabled = true;
        }
        self.store.service_desk_settings.insert(project_id, setting);
    }
}

/// A tiny valid PNG (1x1, transparent), so uploads are real images.
pub const PNG_1X1: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

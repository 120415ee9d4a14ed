//! The in-memory store of the simulated instance and the shared `Sim` handle.
//!
//! `Store` owns every record, the id counters (global per kind, as in GitLab) and the iid
//! counters (per group or project). `Sim` wraps it in a lock and adds the git store and the
//! instance's base URL. Neither knows anything about HTTP: routes read and write through the
//! methods here, never keep a lock across an `.await`, and render JSON themselves.
//!
//! Read API for other modules (relation export, git):
//! - `sim.read()` gives a `Store` guard; `store.group(id)`, `store.project(id)`,
//!   `store.group_by_path(path)`, `store.project_by_path(path)`, `store.subgroups(id)`,
//!   `store.descendant_groups(id)`, `store.group_projects(id)`, `store.user(id)`;
//! - every relation is a public [`Table`]: `store.labels.children(Parent::Group(id))`,
//!   `store.issues.children(Parent::Project(id))`, `store.notes.children(Parent::Issue(issue_id))`,
//!   `store.board_lists.children(Parent::Board(board_id))`, `store.award_emoji.children(Parent::Note(id))` ...
//!   in id order;
//! - access: `sim.user_for_token`, `sim.group_access`, `sim.project_access`, `sim.resolve_group`,
//!   `sim.resolve_project`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::git::GitStore;
use crate::model::{
    AutoDevops, AwardEmoji, Badge, Board, BoardList, CommitNote, ContainerExpirationPolicy, Design,
    DesignVersion, Epic, ExternalPullRequest, Group, Issue, Iteration, IterationCadence, Label,
    LabelEvent, LfsRepositoryType, Member, MergeRequest, Milestone, Note, Parent, Pipeline,
    PipelineSchedule, Project, ProjectImport, ProtectedBranch, ProtectedTag, PushRule, Record,
    RelationImport, Release, ServiceDeskSetting, Snippet, StateEvent, Upload, User, access,
};

/// The shared handle every route gets as `State<Arc<Sim>>`.
pub struct Sim {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    pub git: GitStore,
    store: RwLock<Store>,
}

impl Sim {
    pub fn new(base_url: String, git: GitStore, store: Store) -> Sim {
        Sim {
            base_url,
            git,
            store: RwLock::new(store),
        }
    }

    /// A read guard over the whole store. Never hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A write guard over the whole store. Never hold it across an `.await`.
    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The user a personal access token belongs to.
    pub fn user_for_token(&self, token: &str) -> Option<u64> {
        self.read().tokens.get(token).copied()
    }

    /// The user's access level on a project given by full path (case-insensitive);
    /// `Some(0)` when visible without membership, `None` when the user cannot see it.
    pub fn project_access(&self, user_id: u64, project_full_path: &str) -> Option<u8> {
        let store = self.read();
        let project = store.project_by_path(project_full_path)?;
        store.project_access(user_id, project.id)
    }

    /// The user's access level on a group (inherited from ancestors; admins get owner);
    /// `Some(0)` when visible without membership, `None` when the user cannot see it.
    pub fn group_access(&self, user_id: u64, group_id: u64) -> Option<u8> {
        self.read().group_access(user_id, group_id)
    }

    /// A group id from an API `:id` (numeric id or URL-decoded full path).
    pub fn resolve_group(&self, id_or_path: &str) -> Option<u64> {
        self.read().resolve_group(id_or_path)
    }

    /// A project id from an API `:id` (numeric id or URL-decoded full path).
    pub fn resolve_project(&self, id_or_path: &str) -> Option<u64> {
        self.read().resolve_project(id_or_path)
    }
}

/// Records of one kind, by id, with an index by parent and iid counters per scope.
#[derive(Debug)]
pub struct Table<T> {
    rows: BTreeMap<u64, T>,
    by_parent: HashMap<Parent, Vec<u64>>,
    next_id: u64,
    iids: HashMap<Parent, u64>,
}

impl<T: Record> Table<T> {
    fn new(first_id: u64) -> Table<T> {
        Table {
            rows: BTreeMap::new(),
            by_parent: HashMap::new(),
            next_id: first_id,
            iids: HashMap::new(),
        }
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        self.rows.get(&id)
    }

    /// Mutable access; the caller must not change what the record belongs to.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.rows.get_mut(&id)
    }

    /// Records that belong to `parent`, in id order.
    pub fn children(&self, parent: Parent) -> impl Iterator<Item = &T> + '_ {
        self.by_parent
            .get(&parent)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id))
    }

    pub fn count(&self, parent: Parent) -> usize {
        self.by_parent.get(&parent).map_or(0, Vec::len)
    }

    /// Every record, in id order.
    pub fn all(&self) -> impl Iterator<Item = &T> + '_ {
        self.rows.values()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Reserves the next global id.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Reserves the next iid within a group or project.
    pub fn next_iid(&mut self, scope: Parent) -> u64 {
        let iid = self.iids.entry(scope).or_insert(0);
        *iid += 1;
        *iid
    }

    /// Makes sure the next [`Table::next_iid`] in `scope` is above `iid` (a record stored with
    /// an iid it brought along, as an import does).
    pub fn reserve_iid(&mut self, scope: Parent, iid: u64) {
        let next = self.iids.entry(scope).or_insert(0);
        *next = (*next).max(iid);
    }

    /// Stores a record whose id came from [`Table::next_id`].
    pub fn insert(&mut self, row: T) {
        let id = row.id();
        self.by_parent.entry(row.parent()).or_default().push(id);
        self.rows.insert(id, row);
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        let row = self.rows.remove(&id)?;
        if let Some(ids) = self.by_parent.get_mut(&row.parent()) {
            ids.retain(|other| *other != id);
        }
        Some(row)
    }
}

/// The application settings the simulator keeps (GitLab's `GET/PUT /application/settings`): what
/// governs importing GitLab export archives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationSettings {
    /// GitLab's default on a new instance includes `gitlab_project`.
    pub import_sources: Vec<String>,
    /// MiB; 0 means unlimited.
    pub max_import_size: u64,
    /// Records per batch of a batched relation export (GitLab's `relation_export_batch_size`
    /// setting, 1000 unless changed).
    pub relation_export_batch_size: usize,
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        ApplicationSettings {
            import_sources: [
                "github",
                "bitbucket",
                "bitbucket_server",
                "gitlab_project",
                "git",
            ]
            .map(String::from)
            .to_vec(),
            max_import_size: 0,
            relation_export_batch_size: crate::relation_export::BATCH_SIZE,
        }
    }
}

/// How far above `first_id` the ids of records with an iid start.
pub const IID_OFFSET: u64 = 1000;

/// Every record of the instance.
#[derive(Debug)]
pub struct Store {
    pub users: BTreeMap<u64, User>,
    pub tokens: HashMap<String, u64>,
    pub groups: BTreeMap<u64, Group>,
    pub projects: BTreeMap<u64, Project>,
    pub members: Table<Member>,
    pub labels: Table<Label>,
    pub milestones: Table<Milestone>,
    pub badges: Table<Badge>,
    pub boards: Table<Board>,
    pub board_lists: Table<BoardList>,
    pub epics: Table<Epic>,
    pub cadences: Table<IterationCadence>,
    pub iterations: Table<Iteration>,
    pub issues: Table<Issue>,
    pub merge_requests: Table<MergeRequest>,
    pub notes: Table<Note>,
    pub award_emoji: Table<AwardEmoji>,
    /// Resource state and label events of epics, by the epic (`Parent::Epic`).
    pub state_events: Table<StateEvent>,
    pub label_events: Table<LabelEvent>,
    pub releases: Table<Release>,
    pub snippets: Table<Snippet>,
    pub protected_branches: Table<ProtectedBranch>,
    pub uploads: Table<Upload>,
    pub protected_tags: Table<ProtectedTag>,
    pub pipelines: Table<Pipeline>,
    pub pipeline_schedules: Table<PipelineSchedule>,
    pub external_pull_requests: Table<ExternalPullRequest>,
    pub commit_notes: Table<CommitNote>,
    /// Designs and design versions, by their issue (`Parent::Issue`); design iids are per project.
    pub designs: Table<Design>,
    pub design_versions: Table<DesignVersion>,
    /// The project's single settings records, by project id (none: GitLab's defaults).
    pub container_expiration_policies: BTreeMap<u64, ContainerExpirationPolicy>,
    pub auto_devops: BTreeMap<u64, AutoDevops>,
    pub push_rules: BTreeMap<u64, PushRule>,
    pub service_desk_settings: BTreeMap<u64, ServiceDeskSetting>,
    /// Import state of projects created from an export archive, by project id.
    pub imports: HashMap<u64, ProjectImport>,
    /// Every single-relation import, in id order (ids from 1).
    pub relation_imports: Vec<RelationImport>,
    /// The instance's application settings an administrator reads and changes.
    pub settings: ApplicationSettings,
    /// LFS objects by project id, then by oid (the sha256 of the bytes).
    pub lfs_objects: BTreeMap<u64, BTreeMap<String, Vec<u8>>>,
    /// The repositories of the project each of its LFS objects belongs to, by project id and oid
    /// (GitLab links an object once per repository type); an object not named here is the project
    /// repository's. Every object serves through the project's LFS API whatever its type, as
    /// GitLab's `project.lfs_objects_oids` does.
    pub lfs_object_types: BTreeMap<u64, BTreeMap<String, BTreeSet<LfsRepositoryType>>>,
    next_user_id: u64,
    next_group_id: u64,
    next_project_id: u64,
    group_paths: HashMap<String, u64>,
    project_paths: HashMap<String, u64>,
}

impl Store {
    /// An empty store whose ids (except users') start at `first_id`, so that a destination
    /// can be told apart from a source that starts at 1. Records that also have an iid get ids
    /// from `first_id + IID_OFFSET` on, so that a client mixing up id and iid is caught.
    pub fn new(first_id: u64) -> Store {
        let iid_first = first_id + IID_OFFSET;
        Store {
            users: BTreeMap::new(),
            tokens: HashMap::new(),
            groups: BTreeMap::new(),
            projects: BTreeMap::new(),
            members: Table::new(first_id),
            labels: Table::new(first_id),
            milestones: Table::new(iid_first),
            badges: Table::new(first_id),
            boards: Table::new(first_id),
            board_lists: Table::new(first_id),
            epics: Table::new(iid_first),
            cadences: Table::new(first_id),
            iterations: Table::new(iid_first),
            issues: Table::new(iid_first),
            merge_requests: Table::new(iid_first),
            notes: Table::new(first_id),
            award_emoji: Table::new(first_id),
            state_events: Table::new(first_id),
            label_events: Table::new(first_id),
            releases: Table::new(first_id),
            snippets: Table::new(first_id),
            protected_branches: Table::new(first_id),
            uploads: Table::new(first_id),
            protected_tags: Table::new(first_id),
            pipelines: Table::new(iid_first),
            pipeline_schedules: Table::new(first_id),
            external_pull_requests: Table::new(first_id),
            commit_notes: Table::new(first_id),
            designs: Table::new(iid_first),
            design_versions: Table::new(first_id),
            container_expiration_policies: BTreeMap::new(),
            auto_devops: BTreeMap::new(),
            push_rules: BTreeMap::new(),
            service_desk_settings: BTreeMap::new(),
            imports: HashMap::new(),
            relation_imports: Vec::new(),
            settings: ApplicationSettings::default(),
            lfs_objects: BTreeMap::new(),
            lfs_object_types: BTreeMap::new(),
            next_user_id: 1,
            next_group_id: first_id,
            next_project_id: first_id,
            group_paths: HashMap::new(),
            project_paths: HashMap::new(),
        }
    }

    /// Keeps an LFS object of a project as one of `kind`'s repository (an object already kept
    /// gains the type).
    pub fn add_lfs_object(
        &mut self,
        project_id: u64,
        bytes: Vec<u8>,
        kind: LfsRepositoryType,
    ) -> String {
        let oid = crate::git::lfs_oid(&bytes);
        self.lfs_objects
            .entry(project_id)
            .or_default()
            .insert(oid.clone(), bytes);
        self.lfs_object_types
            .entry(project_id)
            .or_default()
            .entry(oid.clone())
            .or_default()
            .insert(kind);
        oid
    }

    /// The repositories an LFS object of a project belongs to (the project's when none is named).
    pub fn lfs_object_types(&self, project_id: u64, oid: &str) -> BTreeSet<LfsRepositoryType> {
        self.lfs_object_types
            .get(&project_id)
            .and_then(|types| types.get(oid))
            .cloned()
            .unwrap_or_else(|| BTreeSet::from([LfsRepositoryType::Project]))
    }

    pub fn next_user_id(&mut self) -> u64 {
        let id = self.next_user_id;
        self.next_user_id += 1;
        id
    }

    pub fn next_group_id(&mut self) -> u64 {
        let id = self.next_group_id;
        self.next_group_id += 1;
        id
    }

    pub fn next_project_id(&mut self) -> u64 {
        let id = self.next_project_id;
        self.next_project_id += 1;
        id
    }

    pub fn insert_user(&mut self, user: User, token: Option<String>) {
        if let Some(token) = token {
            self.tokens.insert(token, user.id);
        }
        self.users.insert(user.id, user);
    }

    /// Stores a group; `full_path` must already be set from its parent.
    pub fn insert_group(&mut self, group: Group) {
        self.group_paths
            .insert(group.full_path.to_lowercase(), group.id);
        self.groups.insert(group.id, group);
    }

    /// Stores a project; `path_with_namespace` must already be set.
    pub fn insert_project(&mut self, project: Project) {
        self.project_paths
            .insert(project.path_with_namespace.to_lowercase(), project.id);
        self.projects.insert(project.id, project);
    }

    /// Forgets a project and its path (its records stay, unreachable); `overwrite` of an import.
    pub fn remove_project(&mut self, id: u64) -> Option<Project> {
        let project = self.projects.remove(&id)?;
        self.project_paths
            .remove(&project.path_with_namespace.to_lowercase());
        self.imports.remove(&id);
        Some(project)
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.get(&id)
    }

    pub fn user_by_username(&self, username: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    pub fn is_admin(&self, user_id: u64) -> bool {
        self.users.get(&user_id).is_some_and(|u| u.is_admin)
    }

    pub fn group(&self, id: u64) -> Option<&Group> {
        self.groups.get(&id)
    }

    pub fn project(&self, id: u64) -> Option<&Project> {
        self.projects.get(&id)
    }

    /// Whether a full path is taken by a group or a project (GitLab compares case-insensitively).
    pub fn path_taken(&self, full_path: &str) -> bool {
        let key = full_path.to_lowercase();
        self.group_paths.contains_key(&key) || self.project_paths.contains_key(&key)
    }

    pub fn group_by_path(&self, full_path: &str) -> Option<&Group> {
        let id = self.group_paths.get(&full_path.to_lowercase())?;
        self.groups.get(id)
    }

    pub fn project_by_path(&self, full_path: &str) -> Option<&Project> {
        let id = self.project_paths.get(&full_path.to_lowercase())?;
        self.projects.get(id)
    }

    pub fn resolve_group(&self, id_or_path: &str) -> Option<u64> {
        match id_or_path.parse::<u64>() {
            Ok(id) => self.groups.contains_key(&id).then_some(id),
            Err(_) => self.group_by_path(id_or_path).map(|g| g.id),
        }
    }

    pub fn resolve_project(&self, id_or_path: &str) -> Option<u64> {
        match id_or_path.parse::<u64>() {
            Ok(id) => self.projects.contains_key(&id).then_some(id),
            Err(_) => self.project_by_path(id_or_path).map(|p| p.id),
        }
    }

    /// Direct subgroups, in id order.
    pub fn subgroups(&self, group_id: u64) -> impl Iterator<Item = &Group> + '_ {
        self.groups
            .values()
            .filter(move |g| g.parent_id == Some(group_id))
    }

    /// All groups below `group_id`, in id order.
    pub fn descendant_groups(&self, group_id: u64) -> Vec<&Group> {
        self.groups
            .values()
            .filter(|g| g.id != group_id && self.ancestors(g.id).contains(&group_id))
            .collect()
    }

    /// Projects directly in a group, in id order.
    pub fn group_projects(&self, group_id: u64) -> impl Iterator<Item = &Project> + '_ {
        self.projects
            .values()
            .filter(move |p| p.namespace_id == group_id)
    }

    /// The group itself and then its ancestors up to the top-level group.
    pub fn ancestors(&self, group_id: u64) -> Vec<u64> {
        let mut chain = Vec::new();
        let mut next = Some(group_id);
        while let Some(id) = next {
            if chain.contains(&id) {
                break;
            }
            chain.push(id);
            next = self.groups.get(&id).and_then(|g| g.parent_id);
        }
        chain
    }

    fn direct_level(&self, source: Parent, user_id: u64) -> Option<u8> {
        self.members
            .children(source)
            .find(|m| m.user_id == user_id)
            .map(|m| m.access_level)
    }

    /// Highest membership on the group or any ancestor, without admin or visibility rules.
    pub fn inherited_group_level(&self, user_id: u64, group_id: u64) -> Option<u8> {
        self.ancestors(group_id)
            .into_iter()
            .filter_map(|id| self.direct_level(Parent::Group(id), user_id))
            .max()
    }

    /// Whether the user is a member of something below the group, which makes a private
    /// group visible to them in GitLab.
    fn member_below(&self, user_id: u64, group_id: u64) -> bool {
        self.members.all().any(|m| {
            m.user_id == user_id
                && match m.source {
                    Parent::Group(id) => id != group_id && self.ancestors(id).contains(&group_id),
                    Parent::Project(id) => self
                        .projects
                        .get(&id)
                        .is_some_and(|p| self.ancestors(p.namespace_id).contains(&group_id)),
                    _ => false,
                }
        })
    }

    /// See [`Sim::group_access`].
    pub fn group_access(&self, user_id: u64, group_id: u64) -> Option<u8> {
        let group = self.groups.get(&group_id)?;
        if self.is_admin(user_id) {
            return Some(access::OWNER);
        }
        if let Some(level) = self.inherited_group_level(user_id, group_id) {
            return Some(level);
        }
        if group.visibility != "private" || self.member_below(user_id, group_id) {
            return Some(access::NONE);
        }
        None
    }

    /// See [`Sim::project_access`]; by project id.
    pub fn project_access(&self, user_id: u64, project_id: u64) -> Option<u8> {
        let project = self.projects.get(&project_id)?;
        if self.is_admin(user_id) {
            return Some(access::OWNER);
        }
        let direct = self.direct_level(Parent::Project(project_id), user_id);
        let inherited = self.inherited_group_level(user_id, project.namespace_id);
        if let Some(level) = direct.max(inherited) {
            return Some(level);
        }
        (project.visibility != "private").then_some(access::NONE)
    }
}

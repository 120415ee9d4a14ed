//! The migration engine: accepts bulk imports, runs their entities stage by stage, resumes what a crash
//! or an unreachable forge interrupted, and stops promptly on cancel. It owns the only path from the
//! sealed source token to a live source client. State lives in the store; this module keeps nothing
//! that a restart would need.

mod endpoints;
mod offline;
mod pipeline;
pub use pipeline::written;
pub mod preflight;
pub mod project;
mod runner;
pub mod stages;
mod top_up;

use crate::forge::client::{RateLimited, RetryPolicy};
use crate::forge::{ForgeClient, ForgeError, GitLab, base_string, parse_forge_url};
use crate::model::{
    BulkImport, DestinationKind, Entity, EntityRequest, EntityType, SourceKind, now_millis,
};
use crate::secret::{Sealer, SecretError};
use crate::store::{MappingScope, Store, StoreError};
use crate::user_map::UserMapping;
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use url::Url;

/// A live destination instance and the token that writes into it.
#[derive(Clone)]
pub struct Destination {
    pub url: Url,
    pub token: SecretString,
}

#[derive(Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// The live destination migrations write into; None for an appliance that only exports bundles.
    pub destination: Option<Destination>,
    pub allow_http: bool,
    /// Where bundles exported and replayed through the API live (`<data>/bundles` by default).
    pub bundle_dir: PathBuf,
    /// Entities migrated at the same time.
    pub entity_concurrency: usize,
    /// Requests in flight at once to one forge instance.
    pub http_concurrency: usize,
    pub retry: RetryPolicy,
    /// A migration paused because a forge stayed unreachable is tried again after this delay,
    /// doubling up to 16 times it (in the background runs of `serve`; the CLI exits instead).
    pub resume_after: std::time::Duration,
    /// How long the checks before a migration starts (the source answers, has the entities; the
    /// destination has the namespace) may take in all, retries and rate-limit waits included: a
    /// stalled forge must not hold `POST /bulk_imports` or `appliance migrate` for minutes.
    pub check_deadline: std::time::Duration,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf, destination: Option<Destination>) -> Self {
        EngineConfig {
            bundle_dir: data_dir.join("bundles"),
            data_dir,
            destination,
            allow_http: false,
            entity_concurrency: 4,
            http_concurrency: 8,
            retry: RetryPolicy::default(),
            resume_after: std::time::Duration::from_secs(30),
            check_deadline: std::time::Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    /// A forge could not be reached even after retries: the migration is left resumable.
    #[error(
        "{0}; the migration is paused and resumes where it stopped when the appliance runs it again"
    )]
    Unreachable(String),
    #[error("the migration was canceled")]
    Canceled,
    /// Ctrl-C or SIGTERM: stopped at a record boundary with everything done so far committed.
    #[error("interrupted: run the same command again to resume")]
    Interrupted,
    /// Something on this machine stands in the way (a directory, a file, a setting): the message says
    /// what and how to fix it. Not a defect of the appliance.
    #[error("{0}")]
    Setup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a new bulk import was refused. The API turns each into GitLab's status code and message.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    InvalidSourceUrl(String),
    #[error("Unable to connect to the source instance {url}: {message}")]
    SourceUnreachable { url: String, message: String },
    #[error("The source instance {url} refused the access token: {message}")]
    SourceUnauthorized { url: String, message: String },
    #[error(
        "Source {entity_type} '{full_path}' was not found, or the access token cannot read it."
    )]
    SourceEntityNotFound {
        entity_type: &'static str,
        full_path: String,
    },
    #[error("Destination '{namespace}' is invalid, or you don't have permission.")]
    DestinationNamespaceInvalid { namespace: String },
    #[error("'{full_path}' already exists. Change the destination and try again.")]
    DestinationExists { full_path: String },
    /// The destination is the source group or below it on the same instance: the migration would
    /// find the groups it creates among the source's subgroups and nest itself forever.
    #[error(
        "Destination cannot be a subgroup of the source group. Change the destination and try again."
    )]
    DestinationUnderSource,
    /// Two entities of one request would be written to the same place.
    #[error(
        "'{full_path}' is the destination of more than one entity. Change the destination and try again."
    )]
    DuplicateDestination { full_path: String },
    #[error(
        "'{full_path}' was migrated here from the same source before; retry to continue it (only what is missing is written)"
    )]
    MigratedBefore { full_path: String },
    #[error("The bundle cannot be replayed: {0}")]
    InvalidBundle(String),
    #[error("Unable to reach the destination instance: {0}")]
    DestinationUnreachable(String),
    #[error(
        "This appliance has no destination instance configured; start it with --destination-url"
    )]
    NoDestination,
    /// A bundle holds each source entity once: an export cannot be asked for an entity inside another
    /// one it is asked for.
    #[error(
        "'{inner}' lies inside '{outer}', which this export is asked for too: a bundle holds each group and project once; leave '{inner}' out (it comes with '{outer}')"
    )]
    NestedExport { inner: String, outer: String },
    /// The destination does not take GitLab export archives, which is how projects are created.
    #[error(
        "The destination does not accept GitLab export imports, which create the projects: an administrator adds \"GitLab export\" to Import sources ({place}; or PUT /api/v4/application/settings with import_sources[]=gitlab_project), or migrate without projects (--skip-projects, migrate_projects: false)",
        place = crate::forge::gitlab::IMPORT_SETTINGS_PLACE
    )]
    ProjectImportsDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A bulk import to record as it is: where from, where to, which entities.
pub struct Plan {
    /// The source URL shown to users (for a replay, the URL the bundle came from).
    pub source_url: String,
    pub source: SourceKind,
    /// The live source's token, sealed before it is stored; None for a bundle source.
    pub source_token: Option<SecretString>,
    pub destination: DestinationKind,
    pub entities: Vec<EntityRequest>,
    pub user_map: Vec<UserMapping>,
}

/// A request to migrate, as POST /bulk_imports or `appliance migrate` give it.
pub struct SubmitRequest {
    pub source_url: String,
    pub source_token: SecretString,
    pub entities: Vec<EntityRequest>,
    /// Explicit user mapping (source username or email -> destination username).
    pub user_map: Vec<UserMapping>,
    /// An entity this appliance migrated into the same destination before is continued (a retry)
    /// instead of being refused as an existing destination.
    pub continue_earlier: bool,
}

pub struct Engine {
    store: Store,
    sealer: Sealer,
    config: EngineConfig,
    destination: Option<GitLab>,
    running: Mutex<HashMap<u64, CancellationToken>>,
    /// The live source client of each running bulk import, so its rate-limit waits can be shown.
    sources: Mutex<HashMap<u64, ForgeClient>>,
}

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            EngineError::Setup(format!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let store = Store::open(&config.data_dir)?;
        let sealer = Sealer::open(&config.data_dir)?;
        let destination = match &config.destination {
            Some(dest) => Some(GitLab::new(ForgeClient::with_role(
                "destination",
                dest.url.clone(),
                dest.token.clone(),
                config.http_concurrency,
                config.retry.clone(),
            )?)),
            None => None,
        };
        Ok(Arc::new(Engine {
            store,
            sealer,
            config,
            destination,
            running: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether a migration submitted now would be taken: the store answers reads, a destination is
    /// configured and no stop was asked for (SIGTERM). The error says which is not so.
    pub fn readiness(&self) -> Result<(), String> {
        if crate::interrupt::requested() {
            return Err("stopping: no new migrations are taken".into());
        }
        if self.destination.is_none() {
            return Err("no destination instance is configured".into());
        }
        self.store
            .check()
            .map_err(|e| format!("the store does not answer: {e}"))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn destination_url(&self) -> Option<&Url> {
        self.config.destination.as_ref().map(|d| &d.url)
    }

    /// The forges of running migrations (their sources, and the destination) that asked to wait,
    /// and until when: every request to such a forge is held until then. For progress output,
    /// e.g. "rate limited by gitlab.example.com until 12:04:31 UTC" (each item's `Display`).
    pub fn rate_limit_waits(&self) -> Vec<RateLimited> {
        let mut waits: Vec<RateLimited> = self
            .sources
            .lock()
            .map(|s| {
                s.values()
                    .filter_map(ForgeClient::rate_limited_until)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(d) = &self.destination {
            waits.extend(d.client.rate_limited_until());
        }
        waits
    }

    /// The directory API requests name bundles in (`export_bundle`, `configuration[bundle]`).
    pub fn bundle_dir(&self) -> &std::path::Path {
        &self.config.bundle_dir
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// Validates a request against the source and the destination, records it, and starts it in the
    /// background. Nothing is stored when validation fails.
    pub async fn submit(
        self: &Arc<Self>,
        req: SubmitRequest,
    ) -> Result<(BulkImport, Vec<Entity>), SubmitError> {
        let (bulk, entities) = self.create(req).await?;
        self.spawn(bulk.id);
        Ok((bulk, entities))
    }

    /// Validates and records a request without starting it (the CLI then runs it in the foreground).
    pub async fn create(
        &self,
        req: SubmitRequest,
    ) -> Result<(BulkImport, Vec<Entity>), SubmitError> {
        let destination = self
            .destination
            .as_ref()
            .ok_or(SubmitError::NoDestination)?;
        // What the request alone shows is refused before any forge is asked. A source URL that does
        // not parse is check_source's to report.
        refuse_duplicate_destinations(&req.entities)?;
        if let Ok(url) = parse_forge_url(&req.source_url, self.config.allow_http) {
            for e in &req.entities {
                refuse_own_subtree(&base_string(&url), destination.client.base().as_str(), e)?;
            }
        }
        let url = self
            .check_source(&req.source_url, &req.source_token, &req.entities)
            .await?;
        for e in &req.entities {
            self.check_destination_for(destination, &base_string(&url), e, req.continue_earlier)
                .await?;
        }
        self.record(Plan {
            source_url: base_string(&url),
            source: SourceKind::Live {
                url: base_string(&url),
            },
            source_token: Some(req.source_token),
            user_map: req.user_map,
            destination: DestinationKind::Live {
                url: base_string(destination.client.base()),
            },
            entities: req.entities,
        })
        .await
    }

    /// The source answers with this token, and has every entity asked for. Returns its parsed URL.
    /// It all happens within `check_deadline`, whatever the source does (stalls, trickles, asks to
    /// wait): past it, the source is "Unable to connect".
    pub(crate) async fn check_source(
        &self,
        source_url: &str,
        token: &SecretString,
        entities: &[EntityRequest],
    ) -> Result<Url, SubmitError> {
        let url = parse_forge_url(source_url, self.config.allow_http)
            .map_err(|e| SubmitError::InvalidSourceUrl(e.to_string()))?;
        let source = self.source_gitlab(url.clone(), token.clone())?;
        let deadline = self.config.check_deadline;
        match tokio::time::timeout(deadline, check_source_has(&source, &url, entities)).await {
            Ok(checked) => checked.map(|()| url),
            Err(_) => Err(SubmitError::SourceUnreachable {
                url: url.to_string(),
                message: no_answer(&source.client, deadline),
            }),
        }
    }

    /// The destination is not the source group or below it on the same instance, its namespace
    /// exists and the new group's path is free, or holds this appliance's earlier migration of the
    /// same source entity (continued when `continue_earlier`).
    pub(crate) async fn check_destination_for(
        &self,
        destination: &GitLab,
        source_base: &str,
        e: &EntityRequest,
        continue_earlier: bool,
    ) -> Result<(), SubmitError> {
        refuse_own_subtree(source_base, destination.client.base().as_str(), e)?;
        let deadline = self.config.check_deadline;
        let checked = tokio::time::timeout(deadline, check_destination(destination, e))
            .await
            .unwrap_or_else(|_| {
                Err(SubmitError::DestinationUnreachable(no_answer(
                    &destination.client,
                    deadline,
                )))
            });
        match checked {
            Err(SubmitError::DestinationExists { full_path }) => {
                let scope = MappingScope::new(
                    source_base,
                    &e.source_full_path,
                    &base_string(destination.client.base()),
                    &full_path,
                );
                let store = self.store.clone();
                let created = match e.entity_type {
                    EntityType::Group => "group",
                    EntityType::Project => "project",
                };
                let earlier = blocking(move || store.mapped_ids(&scope, created)).await?;
                if earlier.is_empty() {
                    return Err(SubmitError::DestinationExists { full_path });
                }
                if !continue_earlier {
                    return Err(SubmitError::MigratedBefore { full_path });
                }
                Ok(())
            }
            other => other,
        }
    }

    /// Records a bulk import exactly as planned, without checking anything remote. Exports and replays
    /// check their own preconditions (the source answers; the bundle verifies) before they call this.
    pub async fn record(&self, plan: Plan) -> Result<(BulkImport, Vec<Entity>), SubmitError> {
        let sealed = plan
            .source_token
            .as_ref()
            .map(|t| self.sealer.seal(t))
            .unwrap_or_default();
        let store = self.store.clone();
        blocking(move || {
            store.create_bulk_import_mapped(
                &plan.source_url,
                plan.source,
                plan.destination,
                &sealed,
                &plan.entities,
                &plan.user_map,
                now_millis(),
            )
        })
        .await
        .map_err(SubmitError::Store)
    }

    /// Cancels a bulk import: the store says canceled at once, and running work stops at its next step.
    pub async fn cancel(&self, id: u64) -> Result<BulkImport, EngineError> {
        let store = self.store.clone();
        let bulk = blocking(move || store.cancel_bulk_import(id, now_millis())).await?;
        if let Some(token) = self.running.lock().ok().and_then(|r| r.get(&id).cloned()) {
            token.cancel();
        }
        Ok(bulk)
    }

    /// Waits until no migration runs here any more (after a stop was asked for), at most `limit`;
    /// false when some still ran then.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.running.lock().map(|r| r.is_empty()).unwrap_or(true);
            if idle {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Starts every bulk import a previous run left unfinished. Returns how many.
    pub fn resume_unfinished(self: &Arc<Self>) -> Result<usize, EngineError> {
        let unfinished = self.store.unfinished_bulk_imports()?;
        for b in &unfinished {
            tracing::info!(bulk_import = b.id, "resuming unfinished migration");
            self.spawn(b.id);
        }
        Ok(unfinished.len())
    }

    fn spawn(self: &Arc<Self>, id: u64) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let mut wait = engine.config.resume_after;
            loop {
                match engine.run(id).await {
                    Ok(b) => {
                        tracing::info!(
                            bulk_import = id,
                            status = b.status.as_str(),
                            has_failures = b.has_failures,
                            "migration ended"
                        );
                        return;
                    }
                    Err(EngineError::Canceled) => {
                        tracing::info!(bulk_import = id, "migration canceled");
                        return;
                    }
                    Err(EngineError::Interrupted) => {
                        tracing::info!(
                            bulk_import = id,
                            "migration stopped; it resumes at the next start"
                        );
                        return;
                    }
                    // Everything done so far is committed: try again later, unless it was canceled.
                    Err(EngineError::Unreachable(why)) => {
                        tracing::warn!(bulk_import = id, error = %why, retry_in_s = wait.as_secs(), "migration paused");
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = crate::interrupt::token().cancelled() => return,
                        }
                        wait = (wait * 2).min(engine.config.resume_after * 16);
                        let store = engine.store.clone();
                        match blocking(move || store.bulk_import(id)).await {
                            Ok(b) if !b.status.is_terminal() => continue,
                            _ => return,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(bulk_import = id, error = %e, "migration stopped");
                        return;
                    }
                }
            }
        });
    }

    pub(crate) fn source_gitlab(
        &self,
        url: Url,
        token: SecretString,
    ) -> Result<GitLab, SubmitError> {
        self.gitlab_as("source", url, token)
    }

    /// A client of the forge at `url` with this engine's limits, named `role` (`source`,
    /// `destination`) in its messages.
    pub(crate) fn gitlab_as(
        &self,
        role: &'static str,
        url: Url,
        token: SecretString,
    ) -> Result<GitLab, SubmitError> {
        ForgeClient::with_role(
            role,
            url,
            token,
            self.config.http_concurrency,
            self.config.retry.clone(),
        )
        .map(GitLab::new)
        .map_err(|e| SubmitError::InvalidSourceUrl(e.to_string()))
    }
}

/// Runs a store call off the async runtime.
pub(crate) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<StoreError>,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(join) => Err(E::from(StoreError::Task(join.to_string()))),
    }
}

/// The source answers with its token, and has every entity. A redirect is the URL's problem (it
/// names the URL to use instead); a 429 is waited out by the client.
async fn check_source_has(
    source: &GitLab,
    url: &Url,
    entities: &[EntityRequest],
) -> Result<(), SubmitError> {
    let failed = |e: ForgeError| match e {
        e @ ForgeError::Redirected { .. } => SubmitError::InvalidSourceUrl(e.to_string()),
        e if matches!(e.status(), Some(401) | Some(403)) => SubmitError::SourceUnauthorized {
            url: url.to_string(),
            message: e.message(),
        },
        e => SubmitError::SourceUnreachable {
            url: url.to_string(),
            message: e.to_string(),
        },
    };
    source.version().await.map_err(failed)?;
    for e in entities {
        let found = match e.entity_type {
            EntityType::Group => source.group(&e.source_full_path).await,
            EntityType::Project => source.project(&e.source_full_path).await,
        };
        let found = found.map_err(|err| match err {
            e @ ForgeError::Redirected { .. } => SubmitError::InvalidSourceUrl(e.to_string()),
            e => SubmitError::SourceUnreachable {
                url: url.to_string(),
                message: e.to_string(),
            },
        })?;
        if found.is_none() {
            return Err(SubmitError::SourceEntityNotFound {
                entity_type: e.entity_type.as_str(),
                full_path: e.source_full_path.clone(),
            });
        }
    }
    Ok(())
}

/// Whether two base URLs name the same instance: same scheme, host and port (the scheme's default when
/// none is given) and the same path prefix. Host names are compared without case, and every loopback
/// address (`localhost`, `127.0.0.0/8`, `::1`) counts as one host. Anything that is not a URL (a
/// bundle's identity) is no instance at all.
pub fn same_instance(a: &str, b: &str) -> bool {
    fn origin(raw: &str) -> Option<(String, String, u16, String)> {
        let url = Url::parse(raw.trim()).ok()?;
        let host = match url.host()? {
            url::Host::Ipv4(ip) if ip.is_loopback() => "loopback".to_string(),
            url::Host::Ipv6(ip) if ip.is_loopback() => "loopback".to_string(),
            url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => "loopback".to_string(),
            host => host.to_string().to_ascii_lowercase(),
        };
        let port = url.port_or_known_default()?;
        let path = url.path().trim_end_matches('/').to_string();
        Some((url.scheme().to_string(), host, port, path))
    }
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

/// Whether `path` is `ancestor` or below it, without case as GitLab compares paths.
pub fn path_is_within(path: &str, ancestor: &str) -> bool {
    let (path, ancestor) = (path.to_lowercase(), ancestor.to_lowercase());
    path == ancestor
        || path
            .strip_prefix(&ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `namespace/slug`, or the slug alone for a top-level group.
fn destination_full_path(e: &EntityRequest) -> String {
    if e.destination_namespace.is_empty() {
        e.destination_slug.clone()
    } else {
        format!("{}/{}", e.destination_namespace, e.destination_slug)
    }
}

/// Refuses a destination that is the source group or below it on the same instance (GitLab's
/// `validate_destination_namespace_ascendency`): its subgroups stage would find every group it
/// creates among the source's subgroups and nest itself forever.
pub fn refuse_own_subtree(
    source_base: &str,
    destination_base: &str,
    e: &EntityRequest,
) -> Result<(), SubmitError> {
    let destination = destination_full_path(e);
    if same_instance(source_base, destination_base)
        && path_is_within(&destination, &e.source_full_path)
    {
        return Err(SubmitError::DestinationUnderSource);
    }
    Ok(())
}

/// Refuses an export asked for an entity that another entity of it already holds (or for one twice).
pub fn refuse_nested_roots(entities: &[EntityRequest]) -> Result<(), SubmitError> {
    for (i, inner) in entities.iter().enumerate() {
        for (j, outer) in entities.iter().enumerate() {
            if i != j && path_is_within(&inner.source_full_path, &outer.source_full_path) {
                return Err(SubmitError::NestedExport {
                    inner: inner.source_full_path.clone(),
                    outer: outer.source_full_path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a request whose entities would be written to the same place (paths compared without case).
pub fn refuse_duplicate_destinations(entities: &[EntityRequest]) -> Result<(), SubmitError> {
    let mut seen = std::collections::HashSet::new();
    for e in entities {
        let full_path = destination_full_path(e);
        if !seen.insert(full_path.to_lowercase()) {
            return Err(SubmitError::DuplicateDestination { full_path });
        }
    }
    Ok(())
}

/// Why a forge counts as unreachable when the checks ran out of time.
fn no_answer(client: &ForgeClient, deadline: std::time::Duration) -> String {
    match client.rate_limited_until() {
        Some(limited) => format!(
            "{limited}, past the {} s the checks may take; try again then",
            deadline.as_secs()
        ),
        None => format!("no answer within {} s", deadline.as_secs()),
    }
}

/// The destination namespace must exist, and the new group's path must not.
async fn check_destination(destination: &GitLab, e: &EntityRequest) -> Result<(), SubmitError> {
    let unreachable = |err: ForgeError| SubmitError::DestinationUnreachable(err.to_string());
    if !e.destination_namespace.is_empty() {
        let ns = destination
            .group(&e.destination_namespace)
            .await
            .map_err(unreachable)?;
        if ns.is_none() {
            return Err(SubmitError::DestinationNamespaceInvalid {
                namespace: e.destination_namespace.clone(),
            });
        }
    }
    let full_path = destination_full_path(e);
    let taken = match e.entity_type {
        EntityType::Group => destination.group(&full_path).await,
        EntityType::Project => destination.project(&full_path).await,
    };
    if taken.map_err(unreachable)?.is_some() {
        return Err(SubmitError::DestinationExists { full_path });
    }
    let creates_projects = e.entity_type == EntityType::Project || e.migrate_projects;
    if creates_projects
        && let Some(settings) = destination.import_settings().await.map_err(unreachable)?
        && !settings.accepts_gitlab_exports
    {
        return Err(SubmitError::ProjectImportsDisabled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(source: &str, namespace: &str, slug: &str) -> EntityRequest {
        EntityRequest {
            entity_type: EntityType::Group,
            source_full_path: source.into(),
            destination_slug: slug.into(),
            destination_namespace: namespace.into(),
            migrate_projects: true,
            migrate_memberships: true,
        }
    }

    #[test]
    fn same_instance_compares_normalized_origins_and_path_prefixes() {
        for (a, b) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000/"),
            ("http://localhost:3000", "http://127.0.0.1:3000"),
            ("http://[::1]:3000", "http://LOCALHOST:3000"),
            (
                "https://GitLab.Example.com",
                "https://gitlab.example.com:443",
            ),
            ("https://x.example/gitlab/", "https://x.example/gitlab"),
        ] {
            assert!(same_instance(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3001"),
            ("http://x.example", "https://x.example"),
            ("https://x.example", "https://y.example"),
            ("https://x.example/a", "https://x.example/b"),
            ("https://x.example", "bundle:/tmp/x.bundle#1"),
        ] {
            assert!(!same_instance(a, b), "{a} {b}");
        }
    }

    #[test]
    fn a_destination_at_or_below_the_source_on_the_same_instance_is_refused() {
        let here = "https://gitlab.example";
        for e in [
            group("imported", "imported", "imported"),
            group("Imported", "imported/deeper", "x"),
        ] {
            assert!(refuse_own_subtree(here, here, &e).is_err(), "{e:?}");
        }
        // The destination is the source's parent, not below it.
        assert!(refuse_own_subtree(here, here, &group("top/sub", "", "top")).is_ok());
        assert!(matches!(
            refuse_own_subtree(here, "https://gitlab.example/", &group("a", "a", "b")),
            Err(SubmitError::DestinationUnderSource)
        ));
        assert!(refuse_own_subtree(here, here, &group("a", "", "a")).is_err());
        // A sibling that only shares a prefix, or another instance, is fine.
        assert!(refuse_own_subtree(here, here, &group("a", "ab", "x")).is_ok());
        assert!(refuse_own_subtree(here, "https://other.example", &group("a", "a", "b")).is_ok());
    }

    #[test]
    fn two_entities_with_one_destination_are_refused() {
        let ok = [group("a", "ns", "a"), group("b", "ns", "b")];
        assert!(refuse_duplicate_destinations(&ok).is_ok());
        let twice = [group("a", "ns", "x"), group("b", "NS", "X")];
        assert!(matches!(
            refuse_duplicate_destinations(&twice),
            Err(SubmitError::DuplicateDestination { full_path }) if full_path == "NS/X"
        ));
    }
}

//! forge-sim: a GitLab simulator (REST API v4, and GraphQL for iteration cadences and iterations)
//! for testing the appliance, both as a source full of deterministic data and as a destination that
//! records what was written.
//!
//! This file owns the public face other code relies on: [`Dataset`], [`SimConfig`],
//! [`RunningSim`] and [`router`]. It wires modules together and must never hold API logic.
//!
//! Every dataset has the users of [`dataset::USERS`] (root is the admin); each has a token
//! derived from (dataset, seed, username), see [`dataset::token_for`] and
//! [`RunningSim::token_for`]. The store behind a running simulator is `RunningSim::sim`
//! (read API documented in [`state`]).

#![recursion_limit = "512"]

pub mod auth;
pub mod dataset;
pub mod error;
pub mod faults;
pub mod git;
pub mod graphql;
pub mod lfs;
pub mod model;
pub mod pagination;
pub mod project_import;
pub mod relation_export;
pub mod routes;
pub mod state;
pub mod timestamp;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{FaultConfig, FaultState};
use crate::git::GitStore;
use crate::state::Sim;

/// Which data the simulator starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// A destination: admin, the shared users, and a top-level group `imported`.
    Empty,
    /// A small source for tests: group tree `acme`, four projects, every relation.
    Small,
    /// A benchmark source: 20 projects, 20,000 issues, 5,000 MRs, 100,000 notes.
    Medium,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Empty => "empty",
            Dataset::Small => "small",
            Dataset::Medium => "medium",
        }
    }
}

impl FromStr for Dataset {
    type Err = String;

    fn from_str(s: &str) -> Result<Dataset, String> {
        match s {
            "empty" => Ok(Dataset::Empty),
            "small" => Ok(Dataset::Small),
            "medium" => Ok(Dataset::Medium),
            other => Err(format!(
                "unknown dataset `{other}`; choose one of: empty, small, medium"
            )),
        }
    }
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub dataset: Dataset,
    pub seed: u64,
    pub faults: FaultConfig,
    /// MiB of incompressible blobs added to the repository of the dataset's first project (lowest
    /// id) at start, for benchmarks of large repositories (`--large-repository-mib`); 0 adds none.
    pub large_repository_mib: u64,
    /// MiB of incompressible LFS objects (64 MiB each, the last smaller) committed as pointers to
    /// the same project's repository, their bytes kept for the LFS API (`--large-lfs-mib`).
    pub large_lfs_mib: u64,
}

impl SimConfig {
    /// Listens on 127.0.0.1 with a free port, without faults.
    pub fn new(dataset: Dataset, seed: u64) -> SimConfig {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dataset,
            seed,
            faults: FaultConfig::default(),
            large_repository_mib: 0,
            large_lfs_mib: 0,
        }
    }
}

/// The whole HTTP face: relation-export routes, then the REST API, GraphQL, uploads and git smart HTTP
/// in the fallback, all behind the fault middleware; only `/-/sim/*` (fault control) bypasses it.
pub fn router(sim: Arc<Sim>, faults: Arc<FaultState>) -> Router {
    let served = Router::new()
        .merge(relation_export::routes(Arc::clone(&faults)))
        .fallback(routes::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&faults),
            faults::middleware,
        ))
        .with_state(sim);
    Router::new()
        .merge(faults::admin_routes(faults))
        .merge(served)
}

/// Commits seeded into each project's repository.
fn seeded_commits(dataset: Dataset) -> usize {
    match dataset {
        Dataset::Medium => 5,
        _ => 12,
    }
}

/// Seeds a project's design repository, gives each design version the sha of its commit and
/// keeps every design file as an LFS object of the project's design repository.
fn seed_designs(sim: &Sim, repository: &dataset::DesignRepository) -> anyhow::Result<()> {
    let path = &repository.project;
    let commits: Vec<git::DesignCommit> = repository
        .versions
        .iter()
        .map(|(_, commit)| commit.clone())
        .collect();
    let shas = sim
        .git
        .seed_designs(path, &commits)
        .map_err(|e| anyhow::anyhow!("seeding the designs of {path}: {e}"))?;
    let mut store = sim.write();
    let id = store
        .project_by_path(path)
        .map(|p| p.id)
        .ok_or_else(|| anyhow::anyhow!("no project {path} for its designs"))?;
    for ((version_id, commit), sha) in repository.versions.iter().zip(shas) {
        if let Some(version) = store.design_versions.get_mut(*version_id) {
            version.sha = sha;
        }
        for (_, bytes) in &commit.files {
            store.add_lfs_object(id, bytes.clone(), model::LfsRepositoryType::Design);
        }
    }
    Ok(())
}

/// A simulator serving in the background of the current runtime.
pub struct RunningSim {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub admin_token: String,
    /// Owns the dataset's top-level groups (`imported` in `empty`).
    pub owner_token: String,
    pub sim: Arc<Sim>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    _git_dir: tempfile::TempDir,
}

impl RunningSim {
    /// Binds, builds the dataset, seeds the repositories and starts serving.
    pub async fn start(cfg: SimConfig) -> anyhow::Result<RunningSim> {
        RunningSim::start_with(cfg, None).await
    }

    /// [`RunningSim::start`] serving https with `tls` (its `url` is `https://127.0.0.1:PORT`), for
    /// tests of a forge whose certificate comes from an internal CA.
    pub async fn start_tls(
        cfg: SimConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> anyhow::Result<RunningSim> {
        RunningSim::start_with(cfg, Some(tls)).await
    }

    async fn start_with(
        cfg: SimConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<RunningSim> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", cfg.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let git_dir = tempfile::Builder::new()
            .prefix("forge-sim-git-")
            .tempdir()
            .context("creating a temporary directory for git repositories (check TMPDIR)")?;
        let (dataset, seed) = (cfg.dataset, cfg.seed);
        let seeded = tokio::task::spawn_blocking(move || dataset::build(dataset, seed))
            .await
            .context("building the dataset")?;
        let git = GitStore::new(git_dir.path().to_path_buf());
        let sim = Arc::new(Sim::new(url.clone(), git, seeded.store));
        let repositories = seeded.repositories;
        let large = (cfg.large_repository_mib > 0 || cfg.large_lfs_mib > 0)
            .then(|| {
                sim.read()
                    .projects
                    .values()
                    .next()
                    .map(|p| p.path_with_namespace.clone())
            })
            .flatten();
        let large_mib = cfg.large_repository_mib;
        let wikis = seeded.wikis;
        let designs = seeded.designs;
        let mut lfs = seeded.lfs;
        if let Some(path) = large.as_ref().filter(|_| cfg.large_lfs_mib > 0) {
            lfs.push((path.clone(), git::large_lfs_files(seed, cfg.large_lfs_mib)));
        }
        // Every snippet of the dataset gets its repository, as every snippet has one in GitLab.
        let snippets: Vec<(String, u64, String, String, String)> = {
            let store = sim.read();
            store
                .snippets
                .all()
                .filter_map(|s| {
                    let project = store.project(s.project_id)?;
                    Some((
                        project.path_with_namespace.clone(),
                        s.id,
                        s.title.clone(),
                        s.file_name.clone(),
                        s.content.clone(),
                    ))
                })
                .collect()
        };
        let seeding = Arc::clone(&sim);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for path in &repositories {
                seeding
                    .git
                    .create_bare(path)
                    .map_err(|e| anyhow::anyhow!("creating repository {path}: {e}"))?;
                seeding
                    .git
                    .seed_history(path, seed, seeded_commits(dataset))
                    .map_err(|e| anyhow::anyhow!("seeding repository {path}: {e}"))?;
            }
            if let Some(path) = large.as_ref().filter(|_| large_mib > 0) {
                seeding
                    .git
                    .add_large_blobs(path, seed, large_mib)
                    .map_err(|e| anyhow::anyhow!("adding large blobs to {path}: {e}"))?;
            }
            for (path, pages) in &wikis {
                let pages: Vec<(&str, &str)> = pages
                    .iter()
                    .map(|(file, content)| (file.as_str(), content.as_str()))
                    .collect();
                seeding
                    .git
                    .seed_wiki(path, seed, &pages)
                    .map_err(|e| anyhow::anyhow!("seeding the wiki of {path}: {e}"))?;
            }
            for (path, id, title, file_name, content) in &snippets {
                seeding
                    .git
                    .seed_snippet(path, *id, seed, title, file_name, content)
                    .map_err(|e| anyhow::anyhow!("seeding the repository of snippet {id}: {e}"))?;
            }
            for (path, files) in &lfs {
                let objects: Vec<(&str, &[u8])> = files
                    .iter()
                    .map(|(file, bytes)| (file.as_str(), bytes.as_slice()))
                    .collect();
                seeding
                    .git
                    .seed_lfs(path, &objects)
                    .map_err(|e| anyhow::anyhow!("seeding the LFS files of {path}: {e}"))?;
                let mut store = seeding.write();
                let id = store
                    .project_by_path(path)
                    .map(|p| p.id)
                    .ok_or_else(|| anyhow::anyhow!("no project {path} for its LFS files"))?;
                let kept = store.lfs_objects.entry(id).or_default();
                for (_, bytes) in files {
                    kept.insert(crate::git::lfs_oid(bytes), bytes.clone());
                }
            }
            for repository in &designs {
                seed_designs(&seeding, repository)?;
            }
            // Pipelines, commit notes and external pull requests name real commits of `main`.
            for path in &repositories {
                let commits = seeding
                    .git
                    .commits_at_head(path)
                    .map_err(|e| anyhow::anyhow!("listing the commits of {path}: {e}"))?;
                let mut store = seeding.write();
                if let Some(id) = store.project_by_path(path).map(|p| p.id) {
                    dataset::resolve_commits(&mut store, id, &commits);
                }
            }
            Ok(())
        })
        .await
        .context("seeding git repositories")??;

        let app = router(Arc::clone(&sim), FaultState::new(cfg.faults, seed));
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stop = async {
                let _ = signal.await;
            };
            match tls {
                Some(tls) => {
                    axum::serve(TlsListener::new(listener, tls), app)
                        .with_graceful_shutdown(stop)
                        .await
                }
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                }
            }
        });
        Ok(RunningSim {
            url,
            admin_token: seeded.admin_token,
            owner_token: seeded.owner_token,
            sim,
            shutdown,
            server,
            _git_dir: git_dir,
        })
    }

    /// The token of any dataset user (`root`, `ada`, `bjorn`, `chen`, `dmitri`, `eve`, `farah`).
    pub fn token_for(&self, username: &str) -> Option<String> {
        let store = self.sim.read();
        let user = store.user_by_username(username)?.id;
        store
            .tokens
            .iter()
            .find(|(_, id)| **id == user)
            .map(|(token, _)| token.clone())
    }

    /// Stops accepting, lets requests in flight finish (at most 5 s) and removes the git data.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(5), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}

/// TCP connections handed to axum once their TLS handshake is done (each in a task of its own).
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    fn new(mut tcp: TcpListener, tls: Arc<rustls::ServerConfig>) -> TlsListener {
        let local = tcp.local_addr().expect("a bound listener's address");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = axum::serve::Listener::accept(&mut tcp).await;
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener {
            ready,
            local,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

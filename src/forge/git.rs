//! How git is run against a forge (project migration will clone and push repositories): with the same
//! rules as the HTTP client. The token goes to git through its environment (`GIT_CONFIG_*`), never on
//! the command line (`ps` shows it) and never in a git config file; it is sent only to the forge's own
//! URL (a URL-scoped `http.<base>/.extraHeader`), and git follows no redirect, so it cannot carry the
//! token to another origin. No prompt, credential helper or other protocol is used.
//!
//! On top of that command: moving repositories ([`mirror_clone`], [`bundle_create`],
//! [`local_refs`], [`push_all`]), each run of git bounded by a deadline and killed when it passes,
//! its stderr captured (the first part only) and scrubbed of the token before it goes into a
//! [`GitError`]. A repository URL must lie under the forge's URL and carry no credentials, so the
//! remote git writes into a clone's config is the plain URL.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use url::Url;

/// How long a clone or push may take in all. Git's own low-speed limit ([`STALL`]) ends a transfer
/// that stopped moving much sooner.
pub const TRANSFER_DEADLINE: Duration = Duration::from_secs(6 * 60 * 60);
/// How long a local operation (a bundle, listing refs) may take.
pub const LOCAL_DEADLINE: Duration = Duration::from_secs(60 * 60);
/// A transfer slower than 1 KiB/s for this many seconds is abandoned by git (`http.lowSpeedTime`).
const STALL: &str = "120";
/// How much of git's stderr is kept for an error; the rest is read and dropped.
const STDERR_KEPT: usize = 64 * 1024;
/// How many lines of git's stderr an error shows, and how much of each.
const STDERR_LINES: usize = 12;
const LINE_CHARS: usize = 400;
/// Namespaces GitLab keeps for itself and refuses in a push ("deny updating a hidden ref"): it
/// creates them from its own records (merge requests, pipelines, environments, kept commits).
pub const GITLAB_HIDDEN_REFS: [&str; 5] = [
    "refs/merge-requests/",
    "refs/pipelines/",
    "refs/environments/",
    "refs/keep-around/",
    "refs/tmp/",
];
/// Variables of the caller's environment that would change what git does with our repositories
/// or print what it sends (the trace variables can print the Authorization header).
const INHERITED_GIT_ENV: [&str; 22] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_SSL_NO_VERIFY",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE2_PERF",
    "GIT_TRACE_CURL",
    "GIT_TRACE_CURL_NO_DATA",
    "GIT_TRACE_PACKET",
    "GIT_TRACE_SETUP",
    "GIT_TRACE_REDACT",
    "GIT_CURL_VERBOSE",
    "GIT_REDACT_COOKIES",
];

/// A `git` command for the forge at `base` with `token`; the caller adds the subcommand and its
/// arguments (e.g. `ls-remote`, `clone --mirror`). Git answers 401 or a redirect with an error.
pub fn git_command(base: &Url, token: &SecretString) -> Command {
    let scope = format!("{}/", super::base_string(base));
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("oauth2:{}", token.expose_secret()));
    let config: [(String, String); 3] = [
        ("http.followRedirects".into(), "false".into()),
        // Only requests under the forge's own URL carry the token.
        (
            format!("http.{scope}.extraHeader"),
            format!("Authorization: Basic {basic}"),
        ),
        // Nothing is asked of a terminal or stored in a credential helper.
        ("credential.helper".into(), String::new()),
    ];
    let mut cmd = plain_git();
    // The CAs and proxy the HTTP client uses (`ca_file`, `proxy`), through the environment only.
    for (name, value) in super::network::installed().git_env() {
        cmd.env(name, value);
    }
    cmd.env("GIT_ALLOW_PROTOCOL", base.scheme())
        .env("GIT_CONFIG_COUNT", config.len().to_string());
    for (i, (key, value)) in config.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
            .env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    cmd
}

/// `git` without a forge: no system config, no prompt, nothing from the caller's git environment.
/// Git's memory, bounded whatever the repository's size: a pack is mapped a window at a time, files
/// over the big-file threshold are streamed and never delta-compressed, and packing's delta windows
/// and cache are capped. Without these, `git bundle create` of a 1 GiB repository peaked at 1 GiB of
/// RSS (its pack mapped whole) and `index-pack` at 68 MiB; with them at 132 MiB and 4 MiB, the same
/// bundle byte for byte.
const MEMORY_BOUNDS: &[&str] = &[
    "core.packedGitWindowSize=16m",
    "core.packedGitLimit=128m",
    "core.bigFileThreshold=16m",
    "pack.windowMemory=64m",
    "pack.deltaCacheSize=16m",
];

fn plain_git() -> Command {
    let mut cmd = Command::new("git");
    for bound in MEMORY_BOUNDS {
        cmd.args(["-c", bound]);
    }
    // Configuration from the environment of whoever started the appliance must not add to ours.
    cmd.env_remove("GIT_CONFIG_PARAMETERS")
        .env_remove("GIT_CONFIG_COUNT")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    for name in INHERITED_GIT_ENV {
        cmd.env_remove(name);
    }
    cmd
}

/// A run of git that did not do what was asked. Its text names the command (repository URLs
/// without credentials, local paths) and the first lines of git's stderr with the token removed;
/// it never contains the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitError {
    /// The arguments were refused before git ran (a URL off the forge, credentials in a URL).
    #[error("{0}")]
    Refused(String),
    #[error("`git {command}` could not be run: {message}")]
    Spawn { command: String, message: String },
    #[error("`git {command}` did not finish within {}s and was stopped", .limit.as_secs())]
    TimedOut { command: String, limit: Duration },
    #[error("`git {command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        /// `exit status: 128`
        status: String,
        /// The first lines of git's stderr, scrubbed.
        stderr: String,
    },
    /// Git succeeded but its output, or a file around it, was not what was expected.
    #[error("`git {command}`: {message}")]
    Unexpected { command: String, message: String },
}

impl GitError {
    /// The forge answered that the repository does not exist (git: "repository '...' not found").
    pub fn is_not_found(&self) -> bool {
        matches!(self, GitError::Failed { stderr, .. } if stderr.contains("not found"))
    }
}

/// Mirror-clones `repo_url` (an https/http URL on `base`'s origin, e.g. `<base>/group/project.git`)
/// into `dest` (a new directory): every branch, tag and merge request ref (`refs/merge-requests/*`),
/// as `git clone --mirror` does. `dest/config` holds the plain URL as `origin`, never the token.
pub async fn mirror_clone(
    base: &Url,
    token: &SecretString,
    repo_url: &Url,
    dest: &Path,
) -> Result<(), GitError> {
    check_repo_url(base, repo_url)?;
    let mut cmd = git_command(base, token);
    transfer_limits(&mut cmd);
    cmd.args(["clone", "--mirror", "--quiet", "--"])
        .arg(repo_url.as_str())
        .arg(dest);
    let what = format!("clone --mirror {} {}", repo_url, dest.display());
    run(cmd, what, TRANSFER_DEADLINE, Some(token)).await?;
    Ok(())
}

/// `git bundle create <out> --all` of a (bare) repository; Ok(false) when the repository has no
/// refs (an empty repository has no bundle; GitLab's archive then has no project.bundle), and
/// `out` is then not written.
pub async fn bundle_create(repo: &Path, out: &Path) -> Result<bool, GitError> {
    if repository_refs(repo).await?.is_empty() {
        return Ok(false);
    }
    let mut cmd = local_git(repo);
    cmd.args(["bundle", "create", "--quiet"])
        .arg(out)
        .arg("--all");
    let what = format!(
        "bundle create {} --all (in {})",
        out.display(),
        repo.display()
    );
    run(cmd, what, LOCAL_DEADLINE, None).await?;
    Ok(true)
}

/// Every ref and its object id (`git ls-remote`-like) of a local repository or a bundle file, for
/// comparisons and tests. `HEAD` is not a ref here (a bundle lists it, a repository's
/// `for-each-ref` does not); an annotated tag gives the tag object's id.
pub async fn local_refs(repo_or_bundle: &Path) -> Result<BTreeMap<String, String>, GitError> {
    if std::fs::metadata(repo_or_bundle).is_ok_and(|m| m.is_file()) {
        bundle_refs(repo_or_bundle).await
    } else {
        repository_refs(repo_or_bundle).await
    }
}

/// File extensions of the markup GitLab's wiki shows as pages (Markdown, RDoc, AsciiDoc, Org);
/// any other file of a wiki repository (an attachment) is not a page.
pub const WIKI_PAGE_EXTENSIONS: [&str; 9] = [
    "md", "markdown", "mdown", "mkd", "mkdn", "rdoc", "adoc", "asciidoc", "org",
];

/// How many pages the wiki in a `git bundle` file holds: the files of its HEAD (else of its first
/// branch) with a page extension ([`WIKI_PAGE_EXTENSIONS`]), as GitLab lists the pages of a wiki.
pub async fn wiki_page_count(bundle: &Path) -> Result<u64, GitError> {
    let unpacked = Unbundled::new(bundle, ".wiki-").await?;
    Ok(unpacked
        .tip_files()
        .await?
        .iter()
        .filter(|name| {
            name.rsplit_once('.').is_some_and(|(stem, ext)| {
                !stem.is_empty()
                    && !stem.ends_with('/')
                    && WIKI_PAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
            })
        })
        .count() as u64)
}

/// What a design repository holds ([`design_contents`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesignContents {
    /// Each design its tip has, as (the issue's iid, the design's filename), from GitLab's layout
    /// `designs/issue-<iid>/<filename>` (a design deleted in a later version is not at the tip,
    /// and GitLab does not list it), sorted.
    pub designs: Vec<(u64, String)>,
    /// The Git LFS objects anywhere in its history (GitLab stores every design's file in LFS).
    pub lfs_pointers: BTreeMap<String, u64>,
    /// Every commit of every ref: each design version is one, by its sha.
    pub commits: std::collections::BTreeSet<String>,
}

/// What the design repository in a `git bundle` file holds.
pub async fn design_contents(bundle: &Path) -> Result<DesignContents, GitError> {
    let unpacked = Unbundled::new(bundle, ".design-").await?;
    let mut designs: Vec<(u64, String)> = unpacked
        .tip_files()
        .await?
        .iter()
        .filter_map(|name| {
            let (issue, filename) = name.strip_prefix("designs/issue-")?.split_once('/')?;
            let iid = issue.parse().ok()?;
            (!filename.is_empty() && !filename.contains('/')).then(|| (iid, filename.to_owned()))
        })
        .collect();
    designs.sort();
    let lfs_pointers = lfs_pointers(&unpacked.repo).await?;
    let mut cmd = local_git(&unpacked.repo);
    cmd.args(["rev-list", "--all"]);
    let what = format!("rev-list --all (in {})", unpacked.repo.display());
    let listing = run(cmd, what, LOCAL_DEADLINE, None).await?;
    let commits = String::from_utf8_lossy(&listing)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    Ok(DesignContents {
        designs,
        lfs_pointers,
        commits,
    })
}

/// A `git bundle` file unpacked into a temporary bare repository beside it, removed when dropped.
struct Unbundled {
    _dir: tempfile::TempDir,
    repo: PathBuf,
}

impl Unbundled {
    async fn new(bundle: &Path, prefix: &str) -> Result<Unbundled, GitError> {
        let parent = match bundle.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .map_err(|e| GitError::Unexpected {
                command: format!("clone --bare {}", bundle.display()),
                message: format!(
                    "cannot make a temporary directory in {}: {e}",
                    parent.display()
                ),
            })?;
        let repo = dir.path().join("unbundled.git");
        let mut cmd = plain_git();
        cmd.env("GIT_ALLOW_PROTOCOL", "file")
            .args(["clone", "--bare", "--quiet", "--"])
            .arg(bundle)
            .arg(&repo);
        let what = format!("clone --bare {} {}", bundle.display(), repo.display());
        run(cmd, what, LOCAL_DEADLINE, None).await?;
        Ok(Unbundled { _dir: dir, repo })
    }

    /// Every file path of its HEAD commit (else of its first branch); none when it has no commit.
    async fn tip_files(&self) -> Result<Vec<String>, GitError> {
        let mut head = local_git(&self.repo);
        head.args(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
        let tip = match run(head, "rev-parse HEAD".into(), LOCAL_DEADLINE, None).await {
            Ok(out) => String::from_utf8_lossy(&out).trim().to_owned(),
            // A bundle without HEAD: its first branch.
            Err(_) => match repository_refs(&self.repo)
                .await?
                .into_iter()
                .find(|(name, _)| name.starts_with("refs/heads/"))
            {
                Some((_, id)) => id,
                None => return Ok(Vec::new()),
            },
        };
        let mut cmd = local_git(&self.repo);
        cmd.args(["ls-tree", "-r", "-z", "--name-only", &tip]);
        let what = format!("ls-tree -r {tip} (in {})", self.repo.display());
        let listing = run(cmd, what, LOCAL_DEADLINE, None).await?;
        Ok(listing
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .filter_map(|name| std::str::from_utf8(name).ok().map(str::to_owned))
            .collect())
    }
}

/// A Git LFS pointer file is smaller than this (the LFS specification's bound).
const LFS_POINTER_MAX: u64 = 1024;

/// The Git LFS objects a repository points to anywhere in its history: every blob smaller than
/// 1 KiB that is an LFS pointer (`version https://git-lfs.github.com/spec/v1`, `oid sha256:<hex>`,
/// `size <n>`), as (oid, size), sorted by oid. Git's output is read as it streams, one object at a
/// time; only the ids of small blobs are held.
pub async fn lfs_pointers(repo: &Path) -> Result<BTreeMap<String, u64>, GitError> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let spawn = |args: &[&str], input: bool| -> Result<tokio::process::Child, GitError> {
        let mut cmd = tokio::process::Command::from(local_git(repo));
        cmd.args(args)
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().map_err(|e| GitError::Spawn {
            command: args.join(" "),
            message: e.to_string(),
        })
    };
    let failed = |what: &str, message: String| GitError::Unexpected {
        command: format!("{what} (in {})", repo.display()),
        message,
    };
    let scan = async {
        // 1. The ids of every blob small enough to be a pointer.
        let check = "--batch-check=%(objecttype) %(objectsize) %(objectname)";
        let mut child = spawn(&["cat-file", "--batch-all-objects", check], false)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| failed("cat-file", "no pipe".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut small = Vec::new();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| failed("cat-file --batch-check", e.to_string()))?
        {
            let mut parts = line.split(' ');
            if let (Some("blob"), Some(size), Some(id)) = (parts.next(), parts.next(), parts.next())
                && size.parse::<u64>().is_ok_and(|s| s < LFS_POINTER_MAX)
            {
                small.push(id.to_owned());
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| failed("cat-file", e.to_string()))?;
        if !status.success() {
            return Err(failed("cat-file --batch-all-objects", status.to_string()));
        }
        // 2. Their contents, one at a time, kept only when they are pointers.
        let mut child = spawn(&["cat-file", "--batch"], true)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| failed("cat-file", "no pipe".into()))?;
        let feed = tokio::spawn(async move {
            for id in small {
                if stdin.write_all(format!("{id}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            let _ = stdin.shutdown().await;
        });
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| failed("cat-file", "no pipe".into()))?;
        let mut out = BufReader::new(stdout);
        let mut pointers = BTreeMap::new();
        let mut header = String::new();
        loop {
            header.clear();
            let n = out
                .read_line(&mut header)
                .await
                .map_err(|e| failed("cat-file --batch", e.to_string()))?;
            if n == 0 {
                break;
            }
            let size = header
                .trim_end()
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|s| *s < LFS_POINTER_MAX)
                .ok_or_else(|| {
                    failed(
                        "cat-file --batch",
                        format!("unexpected `{}`", header.trim_end()),
                    )
                })?;
            let mut body = vec![0u8; size as usize + 1];
            out.read_exact(&mut body)
                .await
                .map_err(|e| failed("cat-file --batch", e.to_string()))?;
            if let Some((oid, size)) = parse_lfs_pointer(&body[..size as usize]) {
                pointers.insert(oid, size);
            }
        }
        let _ = feed.await;
        let status = child
            .wait()
            .await
            .map_err(|e| failed("cat-file", e.to_string()))?;
        if !status.success() {
            return Err(failed("cat-file --batch", status.to_string()));
        }
        Ok(pointers)
    };
    tokio::time::timeout(LOCAL_DEADLINE, scan)
        .await
        .map_err(|_| GitError::TimedOut {
            command: format!("cat-file --batch-all-objects (in {})", repo.display()),
            limit: LOCAL_DEADLINE,
        })?
}

/// (oid, size) of a Git LFS pointer file, or None when `text` is not one.
pub fn parse_lfs_pointer(text: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "version https://git-lfs.github.com/spec/v1" {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        if let Some(hex) = line.strip_prefix("oid sha256:") {
            oid = Some(hex.to_owned());
        } else if let Some(n) = line.strip_prefix("size ") {
            size = n.parse::<u64>().ok();
        }
    }
    let oid = oid.filter(|o| crate::bundle::is_sha256(o))?;
    Some((oid, size?))
}

/// Pushes every ref of a local repository (or bundle) to `repo_url` (mirror push without deleting),
/// token as for clone. Refs that differ are forced to the local value; refs only the destination has
/// stay. GitLab's own namespaces ([`GITLAB_HIDDEN_REFS`], e.g. `refs/merge-requests/*`) are not
/// pushed: GitLab refuses them and makes them itself. A repository without refs pushes nothing.
pub async fn push_all(
    base: &Url,
    token: &SecretString,
    repo: &Path,
    repo_url: &Url,
) -> Result<(), GitError> {
    check_repo_url(base, repo_url)?;
    if std::fs::metadata(repo).is_ok_and(|m| m.is_file()) {
        // A bundle is not something git pushes from: unpack it next to itself first.
        let parent = match repo.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let unpacked = tempfile::Builder::new()
            .prefix(".push-")
            .tempdir_in(&parent)
            .map_err(|e| GitError::Unexpected {
                command: format!("clone --mirror {}", repo.display()),
                message: format!(
                    "cannot make a temporary directory in {}: {e}",
                    parent.display()
                ),
            })?;
        let clone = unpacked.path().join("repo.git");
        let mut cmd = plain_git();
        cmd.env("GIT_ALLOW_PROTOCOL", "file")
            .args(["clone", "--mirror", "--quiet", "--"])
            .arg(repo)
            .arg(&clone);
        let what = format!("clone --mirror {} {}", repo.display(), clone.display());
        run(cmd, what, LOCAL_DEADLINE, None).await?;
        return push_repository(base, token, &clone, repo_url).await;
    }
    push_repository(base, token, repo, repo_url).await
}

async fn push_repository(
    base: &Url,
    token: &SecretString,
    repo: &Path,
    repo_url: &Url,
) -> Result<(), GitError> {
    if repository_refs(repo).await?.is_empty() {
        return Ok(());
    }
    let mut cmd = git_command(base, token);
    cmd.env("GIT_DIR", git_dir(repo));
    transfer_limits(&mut cmd);
    cmd.args(["push", "--quiet", "--no-verify", "--"])
        .arg(repo_url.as_str())
        .arg("+refs/*:refs/*");
    for hidden in GITLAB_HIDDEN_REFS {
        cmd.arg(format!("^{hidden}*"));
    }
    let what = format!("push {} +refs/*:refs/* (from {})", repo_url, repo.display());
    run(cmd, what, TRANSFER_DEADLINE, Some(token)).await?;
    Ok(())
}

/// `git for-each-ref` of a repository.
async fn repository_refs(repo: &Path) -> Result<BTreeMap<String, String>, GitError> {
    let dir = git_dir(repo);
    if !dir.join("HEAD").is_file() {
        return Err(GitError::Refused(format!(
            "{} is not a git repository",
            repo.display()
        )));
    }
    let mut cmd = local_git(repo);
    cmd.args(["for-each-ref", "--format=%(objectname) %(refname)"]);
    let what = format!("for-each-ref (in {})", repo.display());
    let out = run(cmd, what.clone(), LOCAL_DEADLINE, None).await?;
    parse_refs(&what, &out)
}

/// `git bundle list-heads` of a bundle file.
async fn bundle_refs(bundle: &Path) -> Result<BTreeMap<String, String>, GitError> {
    let mut cmd = plain_git();
    cmd.args(["bundle", "list-heads"]).arg(bundle);
    let what = format!("bundle list-heads {}", bundle.display());
    let out = run(cmd, what.clone(), LOCAL_DEADLINE, None).await?;
    parse_refs(&what, &out)
}

/// `<object id> <refname>` lines, `HEAD` left out.
fn parse_refs(what: &str, out: &[u8]) -> Result<BTreeMap<String, String>, GitError> {
    let text = std::str::from_utf8(out).map_err(|_| GitError::Unexpected {
        command: what.to_owned(),
        message: "the ref list is not UTF-8".into(),
    })?;
    let mut refs = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (id, name) = line.split_once(' ').ok_or_else(|| GitError::Unexpected {
            command: what.to_owned(),
            message: format!("unexpected line `{}`", line.escape_debug()),
        })?;
        if name != "HEAD" {
            refs.insert(name.to_owned(), id.to_owned());
        }
    }
    Ok(refs)
}

/// A bare repository is its own git directory; a working tree has `.git`.
fn git_dir(repo: &Path) -> PathBuf {
    let dot_git = repo.join(".git");
    if dot_git.exists() {
        dot_git
    } else {
        repo.to_path_buf()
    }
}

/// Git on one local repository, named explicitly so that git never looks in a parent directory.
fn local_git(repo: &Path) -> Command {
    let mut cmd = plain_git();
    cmd.env("GIT_DIR", git_dir(repo));
    cmd
}

/// A transfer that stalls ends long before the deadline.
fn transfer_limits(cmd: &mut Command) {
    cmd.args(["-c", "http.lowSpeedLimit=1024", "-c"])
        .arg(format!("http.lowSpeedTime={STALL}"));
}

/// A repository URL must be on the forge: the same scheme, host and port as `base`, a path under
/// `base`'s path, and no credentials (git would store them in the clone's config), query or
/// fragment.
fn check_repo_url(base: &Url, repo_url: &Url) -> Result<(), GitError> {
    let shown = {
        let mut u = repo_url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    };
    if !repo_url.username().is_empty() || repo_url.password().is_some() {
        return Err(GitError::Refused(format!(
            "the repository URL {shown} carries credentials; the token is passed to git separately"
        )));
    }
    let under = format!("{}/", super::base_string(base));
    let same_origin =
        repo_url.origin() == base.origin() && matches!(repo_url.scheme(), "http" | "https");
    if !same_origin
        || !repo_url.as_str().starts_with(&under)
        || repo_url.query().is_some()
        || repo_url.fragment().is_some()
    {
        return Err(GitError::Refused(format!(
            "the repository URL {shown} is not under the forge's URL {}",
            super::base_string(base)
        )));
    }
    Ok(())
}

/// Runs `cmd` to its end within `limit` (killed when it passes or when the future is dropped) and
/// returns its stdout; a failure carries the first lines of its stderr, with `token` removed.
async fn run(
    cmd: Command,
    what: String,
    limit: Duration,
    token: Option<&SecretString>,
) -> Result<Vec<u8>, GitError> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| GitError::Spawn {
        command: what.clone(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "the system `git` was not found on PATH; install it (e.g. `apt-get install git`)".into()
        } else {
            e.to_string()
        },
    })?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(GitError::Spawn {
            command: what,
            message: "no pipes to git".into(),
        });
    };
    let finished = tokio::time::timeout(limit, async {
        let mut out = Vec::new();
        let (read_out, err, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            read_capped(stderr),
            child.wait()
        );
        (read_out.map(|_| out), err, status)
    })
    .await;
    let Ok((out, err, status)) = finished else {
        // Dropping the child (kill_on_drop) stops git.
        return Err(GitError::TimedOut {
            command: what,
            limit,
        });
    };
    let io = |e: std::io::Error| GitError::Spawn {
        command: what.clone(),
        message: e.to_string(),
    };
    let status = status.map_err(io)?;
    let err = err.map_err(io)?;
    if !status.success() {
        let mut stderr = scrub(&err, token);
        // Without a prompt, git reports a refused token as a username it could not read.
        if token.is_some()
            && (stderr.contains("could not read Username")
                || stderr.contains("Authentication failed"))
        {
            stderr = format!("the forge refused the token (check it and its scopes): {stderr}");
        }
        return Err(GitError::Failed {
            command: what.clone(),
            status: status.to_string(),
            stderr,
        });
    }
    out.map_err(io)
}

/// The first [`STDERR_KEPT`] bytes of a stream, read to its end.
async fn read_capped(mut stream: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let room = STDERR_KEPT.saturating_sub(kept.len());
        cut |= n > room;
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    if cut {
        // The last line may stop inside a secret that the scrubbing would no longer recognise.
        let whole = kept.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        kept.truncate(whole);
    }
    Ok(kept)
}

/// The first [`STDERR_LINES`] lines of git's stderr, with the token (plain, or inside the Basic
/// credentials) replaced and any line naming an Authorization header dropped.
fn scrub(stderr: &[u8], token: Option<&SecretString>) -> String {
    let text = String::from_utf8_lossy(stderr);
    let secrets: Vec<String> = token
        .map(|t| {
            let plain = t.expose_secret().to_owned();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("oauth2:{plain}"));
            vec![plain, basic]
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.to_ascii_lowercase().contains("authorization"))
        .take(STDERR_LINES)
        .map(|l| {
            let line = secrets
                .iter()
                .fold(l.to_owned(), |line, s| line.replace(s.as_str(), "[token]"));
            match line.char_indices().nth(LINE_CHARS) {
                Some((end, _)) => format!("{}...", &line[..end]),
                None => line,
            }
        })
        .collect();
    if lines.is_empty() {
        "(git said nothing)".into()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    fn env_of(cmd: &Command) -> HashMap<String, String> {
        cmd.get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect()
    }

    #[test]
    fn the_token_is_in_the_environment_scoped_to_the_forge_and_redirects_are_off() {
        let token = SecretString::from("glpat-git-secret".to_string());
        let base = Url::parse("https://gitlab.example.com/gitlab").unwrap();
        let mut cmd = git_command(&base, &token);
        cmd.args([
            "ls-remote",
            "https://gitlab.example.com/gitlab/acme/app.git",
        ]);
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            !argv
                .iter()
                .any(|a| a.contains("glpat") || a.contains("Basic"))
        );
        let env = env_of(&cmd);
        let config: HashMap<&str, &str> = (0..env["GIT_CONFIG_COUNT"].parse::<usize>().unwrap())
            .map(|i| {
                (
                    env[&format!("GIT_CONFIG_KEY_{i}")].as_str(),
                    env[&format!("GIT_CONFIG_VALUE_{i}")].as_str(),
                )
            })
            .collect();
        assert_eq!(config["http.followRedirects"], "false");
        let header = config["http.https://gitlab.example.com/gitlab/.extraHeader"];
        let basic = base64::engine::general_purpose::STANDARD.encode("oauth2:glpat-git-secret");
        assert_eq!(header, format!("Authorization: Basic {basic}"));
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], "https");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
    }

    /// git itself, against a forge that redirects to another origin: it fails, and the other origin
    /// never hears from it.
    #[tokio::test(flavor = "multi_thread")]
    async fn git_follows_no_redirect_to_another_origin() {
        use axum::{Router, http::StatusCode, http::Uri};
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let other = Router::new().fallback(move |uri: Uri| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(uri.to_string());
                StatusCode::NOT_FOUND
            }
        });
        let other_port = serve(other).await;
        let redirecting = Router::new().fallback(move |uri: Uri| async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            (
                StatusCode::FOUND,
                [("location", format!("http://localhost:{other_port}{path}"))],
                "",
            )
        });
        let port = serve(redirecting).await;
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut cmd = git_command(&base, &SecretString::from("glpat-x".to_string()));
        cmd.args(["ls-remote", &format!("{base}acme/app.git")]);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("git runs"))
            .await
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    }

    async fn serve(app: axum::Router) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    #[test]
    fn lfs_pointers_are_recognised_and_nothing_else() {
        let oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
        let pointer =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 12345\n");
        assert_eq!(
            parse_lfs_pointer(pointer.as_bytes()),
            Some((oid.to_string(), 12345))
        );
        for not in [
            "version https://git-lfs.github.com/spec/v1\noid sha256:../x\nsize 1\n".to_string(),
            "version https://git-lfs.github.com/spec/v1\nsize 1\n".to_string(),
            format!("hello\noid sha256:{oid}\nsize 1\n"),
        ] {
            assert_eq!(parse_lfs_pointer(not.as_bytes()), None, "{not}");
        }
    }

    /// Runs git in `dir` with a fixed identity, panicking with its output when it fails.
    fn git_in(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    #[tokio::test]
    async fn a_design_bundle_gives_the_designs_at_its_tip_and_every_lfs_object() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("designs/issue-3")).unwrap();
        std::fs::create_dir_all(work.join("designs/issue-12")).unwrap();
        let pointer = |n: char, size: u64| {
            format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {size}\n",
                n.to_string().repeat(64)
            )
        };
        std::fs::write(work.join("designs/issue-3/mockup.png"), pointer('a', 10)).unwrap();
        std::fs::write(work.join("designs/issue-3/gone.png"), pointer('b', 20)).unwrap();
        git_in(dir.path(), &["init", "-q", "-b", "master", "work"]);
        git_in(&work, &["add", "."]);
        git_in(&work, &["commit", "-q", "-m", "v1"]);
        // A second version: a design changes, one is deleted, another issue gets one.
        std::fs::write(work.join("designs/issue-3/mockup.png"), pointer('c', 30)).unwrap();
        std::fs::remove_file(work.join("designs/issue-3/gone.png")).unwrap();
        std::fs::write(work.join("designs/issue-12/flow.svg"), pointer('d', 40)).unwrap();
        // Not a design: GitLab's layout has nothing else, and a stray file is not counted.
        std::fs::write(work.join("README"), "not a design").unwrap();
        git_in(&work, &["add", "-A"]);
        git_in(&work, &["commit", "-q", "-m", "v2"]);
        let bundle = dir.path().join("project.design.bundle");
        git_in(
            &work,
            &["bundle", "create", "-q", bundle.to_str().unwrap(), "--all"],
        );

        let DesignContents {
            designs,
            lfs_pointers: pointers,
            commits,
        } = design_contents(&bundle).await.unwrap();
        assert_eq!(
            designs,
            vec![(3, "mockup.png".to_string()), (12, "flow.svg".to_string())]
        );
        // Both versions' commits.
        assert_eq!(commits.len(), 2, "{commits:?}");
        assert!(commits.iter().all(|c| c.len() == 40), "{commits:?}");
        // Every version's objects, the deleted design's too: its versions still show them.
        let want: BTreeMap<String, u64> = [('a', 10), ('b', 20), ('c', 30), ('d', 40)]
            .into_iter()
            .map(|(n, size)| (n.to_string().repeat(64), size))
            .collect();
        assert_eq!(pointers, want);
        // Nothing is left beside the bundle.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn stderr_is_scrubbed_and_short() {
        let token = SecretString::from("glpat-scrub-me".to_string());
        let basic = base64::engine::general_purpose::STANDARD.encode("oauth2:glpat-scrub-me");
        let stderr = format!(
            "fatal: token glpat-scrub-me refused\n> Authorization: Basic {basic}\nsent {basic}\n\n{}",
            "more\n".repeat(50)
        );
        let text = scrub(stderr.as_bytes(), Some(&token));
        assert!(
            !text.contains("glpat-scrub-me") && !text.contains(&basic),
            "{text}"
        );
        assert!(text.starts_with("fatal: token [token] refused; sent [token]; more"));
        assert_eq!(text.split("; ").count(), STDERR_LINES);
        assert_eq!(scrub(b"", None), "(git said nothing)");
    }

    #[test]
    fn repository_urls_must_be_on_the_forge_and_carry_no_credentials() {
        let base = Url::parse("https://gitlab.example.com/gitlab").unwrap();
        let ok = |u: &str| check_repo_url(&base, &Url::parse(u).unwrap());
        assert!(ok("https://gitlab.example.com/gitlab/acme/app.git").is_ok());
        for bad in [
            "http://gitlab.example.com/gitlab/acme/app.git",
            "https://gitlab.example.com:8443/gitlab/acme/app.git",
            "https://evil.example.com/gitlab/acme/app.git",
            "https://gitlab.example.com/gitlabx/acme/app.git",
            "https://gitlab.example.com/other/app.git",
            "https://gitlab.example.com/gitlab/acme/app.git?x=1",
            "file:///gitlab/acme/app.git",
        ] {
            assert!(matches!(ok(bad), Err(GitError::Refused(_))), "{bad}");
        }
        let err = ok("https://oauth2:glpat-in-url@gitlab.example.com/gitlab/acme/app.git")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("credentials") && !err.contains("glpat-in-url"),
            "{err}"
        );
    }

    /// Against forge-sim's git smart HTTP (Basic auth, the token as password).
    #[cfg(feature = "demo")]
    mod with_sim {
        use super::*;
        use forge_sim::{Dataset, RunningSim, SimConfig};

        async fn start() -> (RunningSim, Url, SecretString) {
            let sim = RunningSim::start(SimConfig::new(Dataset::Small, 11))
                .await
                .expect("simulator starts");
            let base = Url::parse(&sim.url).unwrap();
            let token = SecretString::from(sim.owner_token.clone());
            (sim, base, token)
        }

        /// A new, empty project `acme/<path>` through the REST API.
        async fn create_project(sim: &RunningSim, path: &str) {
            crate::install_crypto_provider();
            let answer = reqwest::Client::new()
                .post(format!("{}/api/v4/projects", sim.url))
                .header("PRIVATE-TOKEN", &sim.owner_token)
                .json(&serde_json::json!({"name": path, "path": path, "namespace_id": "acme"}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                answer.status().as_u16(),
                201,
                "{}",
                answer.text().await.unwrap()
            );
        }

        fn repo_url(base: &Url, path: &str) -> Url {
            base.join(&format!("{path}.git")).unwrap()
        }

        fn assert_no_token_in(config: &Path, token: &SecretString) {
            let text = std::fs::read_to_string(config).unwrap();
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("oauth2:{}", token.expose_secret()));
            let lower = text.to_ascii_lowercase();
            assert!(!text.contains(token.expose_secret()), "{text}");
            assert!(!text.contains(&basic), "{text}");
            assert!(!lower.contains("extraheader") && !lower.contains("authorization"));
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_repository_moves_by_mirror_clone_bundle_and_push() {
            let (sim, base, token) = start().await;
            let git = &sim.sim.git;
            let source = "acme/backend/api";
            // A merge request's ref, as GitLab keeps one for every merge request.
            let feature = git.refs(source).unwrap()["refs/heads/feature/seeded"].clone();
            let status = Command::new("git")
                .args(["update-ref", "refs/merge-requests/1/head", &feature])
                .env("GIT_DIR", git.repo_path(source).unwrap())
                .status()
                .unwrap();
            assert!(status.success());
            let want = git.refs(source).unwrap();
            assert!(want.contains_key("refs/merge-requests/1/head"));
            assert!(want.contains_key("refs/tags/v1.0.0"));

            let dir = tempfile::tempdir().unwrap();
            let clone = dir.path().join("api.git");
            mirror_clone(&base, &token, &repo_url(&base, source), &clone)
                .await
                .unwrap();
            assert_eq!(local_refs(&clone).await.unwrap(), want);
            assert_no_token_in(&clone.join("config"), &token);
            let config = std::fs::read_to_string(clone.join("config")).unwrap();
            assert!(config.contains(&format!("url = {}", repo_url(&base, source))));

            let bundle = dir.path().join("project.bundle");
            assert!(bundle_create(&clone, &bundle).await.unwrap());
            assert_eq!(local_refs(&bundle).await.unwrap(), want);

            // GitLab makes merge request refs itself and refuses them in a push.
            let pushable: BTreeMap<String, String> = want
                .clone()
                .into_iter()
                .filter(|(name, _)| !name.starts_with("refs/merge-requests/"))
                .collect();
            create_project(&sim, "copy").await;
            let copy = repo_url(&base, "acme/copy");
            push_all(&base, &token, &clone, &copy).await.unwrap();
            assert_eq!(git.refs("acme/copy").unwrap(), pushable);
            // Again: nothing to do, and nothing deleted.
            push_all(&base, &token, &clone, &copy).await.unwrap();
            assert_eq!(git.refs("acme/copy").unwrap(), pushable);

            create_project(&sim, "from-bundle").await;
            let from_bundle = repo_url(&base, "acme/from-bundle");
            push_all(&base, &token, &bundle, &from_bundle)
                .await
                .unwrap();
            assert_eq!(git.refs("acme/from-bundle").unwrap(), pushable);
            // The bundle's unpacked copy is gone.
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 2);
            sim.shutdown().await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn an_empty_repository_has_no_bundle_and_pushes_nothing() {
            let (sim, base, token) = start().await;
            create_project(&sim, "empty").await;
            let dir = tempfile::tempdir().unwrap();
            let clone = dir.path().join("empty.git");
            mirror_clone(&base, &token, &repo_url(&base, "acme/empty"), &clone)
                .await
                .unwrap();
            assert_eq!(local_refs(&clone).await.unwrap(), BTreeMap::new());
            let bundle = dir.path().join("project.bundle");
            assert!(!bundle_create(&clone, &bundle).await.unwrap());
            assert!(!bundle.exists());
            create_project(&sim, "also-empty").await;
            push_all(&base, &token, &clone, &repo_url(&base, "acme/also-empty"))
                .await
                .unwrap();
            assert_eq!(
                sim.sim.git.refs("acme/also-empty").unwrap(),
                BTreeMap::new()
            );
            sim.shutdown().await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_wrong_token_fails_without_showing_the_token() {
            let (sim, base, token) = start().await;
            let wrong = SecretString::from("glpat-wrong-token-4242".to_string());
            let basic =
                base64::engine::general_purpose::STANDARD.encode("oauth2:glpat-wrong-token-4242");
            let dir = tempfile::tempdir().unwrap();
            let clone = dir.path().join("api.git");
            let url = repo_url(&base, "acme/backend/api");
            let err = mirror_clone(&base, &wrong, &url, &clone).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, GitError::Failed { .. }), "{text}");
            assert!(text.contains("git clone --mirror"), "{text}");
            assert!(text.contains("refused the token"), "{text}");
            assert!(
                !text.contains("glpat-wrong-token-4242") && !text.contains(&basic),
                "{text}"
            );
            assert!(!format!("{err:?}").contains("glpat-wrong-token-4242"));
            if clone.join("config").exists() {
                assert_no_token_in(&clone.join("config"), &wrong);
            }

            // A push with the wrong token fails the same way.
            let good = dir.path().join("good.git");
            mirror_clone(&base, &token, &url, &good).await.unwrap();
            let err = push_all(&base, &wrong, &good, &url).await.unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains("git push"), "{text}");
            assert!(
                !text.contains("glpat-wrong-token-4242") && !text.contains(&basic),
                "{text}"
            );
            sim.shutdown().await;
        }
    }
}

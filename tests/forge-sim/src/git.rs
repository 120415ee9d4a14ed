//! Real git repositories for the simulated projects, and git smart HTTP in front of them.
//!
//! It owns: the bare repositories under one root directory (`<root>/<full_path>.git`; a project's
//! wiki at `<root>/<full_path>.wiki.git`, its designs at `<root>/<full_path>.design.git`, its
//! snippets' at `<root>/<full_path>/snippets/<id>.git`, the repository paths GitLab keeps them
//! under; a design repository is never served over HTTP, as GitLab's `GitAccessDesign` refuses), their deterministic seeded history (one
//! `git fast-import` run per repository, so the same seed gives the same commit SHAs on every
//! machine), and the CGI bridge to `git http-backend` with GitLab's authentication rules (HTTP
//! Basic, any username, a token as password).
//! It never writes to the simulated GitLab records except to mark a project's repository as no
//! longer empty after a push, and it never shells out to anything but the system `git`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::percent_decode_str;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::model::access;
use crate::state::Sim;

/// What to tell a user whose machine has no `git`.
const GIT_MISSING: &str = "the system `git` is needed for project repositories but was not found \
     on PATH; install it (e.g. `apt-get install git`)";

/// Bare repositories under one root directory, one per project.
#[derive(Debug)]
pub struct GitStore {
    pub root: PathBuf,
}

impl GitStore {
    pub fn new(root: PathBuf) -> GitStore {
        GitStore { root }
    }

    /// Where a project's bare repository lives (it may not exist yet).
    pub fn repo_path(&self, full_path: &str) -> std::io::Result<PathBuf> {
        check_full_path(full_path)?;
        Ok(self.root.join(format!("{full_path}.git")))
    }

    /// An empty bare repository whose HEAD is `main` and which accepts pushes over HTTP.
    /// Written directly rather than with `git init`, so that datasets with many projects start
    /// fast and need no `git` until a history is seeded; an existing repository is kept.
    pub fn create_bare(&self, full_path: &str) -> std::io::Result<PathBuf> {
        let repo = self.repo_path(full_path)?;
        if repo.join("HEAD").is_file() {
            return Ok(repo);
        }
        for dir in [
            "objects/info",
            "objects/pack",
            "refs/heads",
            "refs/tags",
            "info",
        ] {
            std::fs::create_dir_all(repo.join(dir))?;
        }
        std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n")?;
        std::fs::write(
            repo.join("config"),
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\
             [http]\n\treceivepack = true\n\tuploadpack = true\n",
        )?;
        std::fs::write(repo.join("description"), format!("{full_path}\n"))?;
        Ok(repo)
    }

    /// Give a project a real, deterministic history: `commits` commits on `main`, a branch
    /// `feature/seeded` with two more commits forked from the middle of `main`, a branch `stable`
    /// at an older commit, a lightweight tag `v0.1.0` on the first commit and an annotated tag
    /// `v1.0.0` on the tip of `main`. Files include unicode names and names with spaces.
    /// The same `seed` and `commits` give the same SHAs. Creates the repository when missing.
    pub fn seed_history(&self, full_path: &str, seed: u64, commits: usize) -> std::io::Result<()> {
        let repo = self.create_bare(full_path)?;
        let stream = history_stream(full_path, seed, commits.max(1));
        fast_import(&repo, &stream)
    }

    /// Adds `mib` MiB of incompressible blobs (seeded random bytes, 64 MiB per file, one commit per
    /// file) on top of `main`, for benchmarks of large repositories; never used by the test datasets.
    /// The stream goes to `git fast-import` as it is made (memory stays at one blob) and is stored
    /// uncompressed, since compressing random bytes gains nothing.
    pub fn add_large_blobs(&self, full_path: &str, seed: u64, mib: u64) -> std::io::Result<()> {
        const BLOB: u64 = 64 << 20;
        let repo = self.create_bare(full_path)?;
        let mut child = Command::new("git")
            .args(["-c", "core.compression=0", "-c", "pack.compression=0"])
            .args(["fast-import", "--quiet", "--done"])
            .env("GIT_DIR", &repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(git_spawn_error)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("git fast-import has no stdin"))?;
        let written = (|| -> std::io::Result<()> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_7267_6521);
            let mut blob = vec![0u8; BLOB as usize];
            let (mut left, mut n) = (mib << 20, 0u64);
            let mut from = "refs/heads/main^0".to_string();
            while left > 0 {
                let size = left.min(BLOB);
                rand::RngCore::fill_bytes(&mut rng, &mut blob[..size as usize]);
                n += 1;
                write!(
                    stdin,
                    "commit refs/heads/main\nmark :{n}\ncommitter Bench <bench@example.com> {} +0000\n\
                     data 15\nAdd large blob\n\nfrom {from}\nM 100644 inline large/blob-{n:04}.bin\ndata {size}\n",
                    1_700_000_000 + n
                )?;
                stdin.write_all(&blob[..size as usize])?;
                stdin.write_all(b"\n\n")?;
                from = format!(":{n}");
                left -= size;
            }
            stdin.write_all(b"done\n")
        })();
        drop(stdin);
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "git fast-import of large blobs into {} failed ({}): {}",
                repo.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        written
    }

    /// Every ref of a project's repository with the object it points to
    /// (`refs/heads/main` -> commit SHA; annotated tags give the tag object).
    pub fn refs(&self, full_path: &str) -> std::io::Result<BTreeMap<String, String>> {
        let repo = self.repo_path(full_path)?;
        let output = Command::new("git")
            .args(["for-each-ref", "--format=%(refname) %(objectname)"])
            .env("GIT_DIR", &repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .map_err(git_spawn_error)?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "git for-each-ref in {} failed: {}",
                repo.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, sha)| (name.to_owned(), sha.to_owned()))
            .collect())
    }
}

impl GitStore {
    /// Restores every ref of a `git bundle` file into a project's repository (creating it when
    /// missing), as GitLab's import restores `project.bundle`: `git fetch <bundle> +refs/*:refs/*`.
    /// HEAD then points at `default_branch` when the bundle has it, else at the bundle's HEAD branch.
    pub fn restore_bundle(
        &self,
        full_path: &str,
        bundle: &std::path::Path,
        default_branch: Option<&str>,
    ) -> std::io::Result<()> {
        let repo = self.create_bare(full_path)?;
        let run = |args: &[&std::ffi::OsStr]| -> std::io::Result<String> {
            let output = Command::new("git")
                .args(args)
                .env("GIT_DIR", &repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .map_err(git_spawn_error)?;
            if !output.status.success() {
                return Err(std::io::Error::other(format!(
                    "git {} in {} failed: {}",
                    args.first()
                        .map(|a| a.to_string_lossy())
                        .unwrap_or_default(),
                    repo.display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let heads = run(&["bundle".as_ref(), "list-heads".as_ref(), bundle.as_os_str()])?;
        run(&[
            "fetch".as_ref(),
            "--quiet".as_ref(),
            "--no-write-fetch-head".as_ref(),
            bundle.as_os_str(),
            "+refs/*:refs/*".as_ref(),
        ])?;
        let refs = self.refs(full_path)?;
        let bundle_head = heads
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(_, name)| *name == "HEAD")
            .and_then(|(sha, _)| {
                refs.iter()
                    .find(|(name, target)| name.starts_with("refs/heads/") && *target == sha)
                    .map(|(name, _)| name.clone())
            });
        let head = default_branch
            .map(|b| format!("refs/heads/{b}"))
            .filter(|r| refs.contains_key(r))
            .or(bundle_head);
        if let Some(head) = head {
            run(&["symbolic-ref".as_ref(), "HEAD".as_ref(), head.as_ref()])?;
        }
        Ok(())
    }

    /// Deletes a project's repository, its wiki's, its designs' and its snippets' (an import that
    /// overwrites a project).
    pub fn remove(&self, full_path: &str) -> std::io::Result<()> {
        for repo in [
            self.repo_path(full_path)?,
            self.repo_path(&wiki_path(full_path))?,
            self.repo_path(&design_path(full_path))?,
            // `<root>/<project>/snippets/`: nothing else lives there, since a project's path can
            // be no group's.
            self.root.join(full_path).join("snippets"),
        ] {
            match std::fs::remove_dir_all(repo) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        // The now empty `<root>/<project>/`, if it is; anything else there is left alone.
        let _ = std::fs::remove_dir(self.root.join(full_path));
        Ok(())
    }

    /// Deletes one repository (given by repository path), e.g. a snippet's whose bundle was
    /// refused; a missing one is fine.
    pub fn remove_repository(&self, repo_path: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.repo_path(repo_path)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether a repository (given by repository path) exists.
    pub fn exists(&self, repo_path: &str) -> bool {
        self.repo_path(repo_path)
            .is_ok_and(|repo| repo.join("HEAD").is_file())
    }

    /// Gives a project a wiki: one commit on `main` of its wiki repository (`<full_path>.wiki.git`,
    /// as GitLab keeps it) holding `pages`, each a file path (`home.md`, `guides/Deploy.md`) and
    /// its content; a second commit edits the first page, so the wiki has history. The same
    /// `seed` gives the same SHAs.
    pub fn seed_wiki(
        &self,
        full_path: &str,
        seed: u64,
        pages: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let repo = self.create_bare(&wiki_path(full_path))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3141_5926);
        let mut time = 1_700_000_000 + rng.random_range(0..1000) * 86_400;
        let mut stream = Vec::new();
        let data = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.push(b'\n');
        };
        let (name, email) = AUTHORS[rng.random_range(0..AUTHORS.len())];
        stream.extend_from_slice(
            format!(
                "commit refs/heads/main\nmark :1\nauthor {name} <{email}> {time} +0000\n\
                 committer {name} <{email}> {time} +0000\n"
            )
            .as_bytes(),
        );
        data(&mut stream, b"Create the wiki\n");
        for (path, content) in pages {
            stream.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
            data(&mut stream, content.as_bytes());
        }
        stream.push(b'\n');
        if let Some((path, content)) = pages.first() {
            time += 3600;
            stream.extend_from_slice(
                format!(
                    "commit refs/heads/main\nmark :2\nauthor {name} <{email}> {time} +0000\n\
                     committer {name} <{email}> {time} +0000\n"
                )
                .as_bytes(),
            );
            data(&mut stream, format!("Update {path}\n").as_bytes());
            stream.extend_from_slice(b"from :1\n");
            stream.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
            data(
                &mut stream,
                format!("{content}\n_Edited once._\n").as_bytes(),
            );
            stream.push(b'\n');
        }
        stream.extend_from_slice(b"done\n");
        fast_import(&repo, &stream)
    }

    /// Commits LFS pointer files for `objects` (path, bytes) on top of `main`, with the
    /// `.gitattributes` that routes them through LFS, as `git lfs track` and a push would leave
    /// them; the bytes themselves are not in the repository. Deterministic.
    pub fn seed_lfs(&self, full_path: &str, objects: &[(&str, &[u8])]) -> std::io::Result<()> {
        let repo = self.repo_path(full_path)?;
        let tip = {
            let out = Command::new("git")
                .args(["rev-parse", "--verify", "refs/heads/main"])
                .env("GIT_DIR", &repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .map_err(git_spawn_error)?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "{full_path} has no main branch to add LFS files to"
                )));
            }
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let mut stream = Vec::new();
        let data = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.push(b'\n');
        };
        let (name, email) = AUTHORS[0];
        stream.extend_from_slice(
            format!(
                "commit refs/heads/main\nauthor {name} <{email}> 1700000000 +0000\n\
                 committer {name} <{email}> 1700000000 +0000\n"
            )
            .as_bytes(),
        );
        data(&mut stream, b"Track binaries with Git LFS\n");
        stream.extend_from_slice(format!("from {tip}\n").as_bytes());
        stream.extend_from_slice(b"M 100644 inline .gitattributes\n");
        data(
            &mut stream,
            b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.psd filter=lfs diff=lfs merge=lfs -text\n",
        );
        for (path, bytes) in objects {
            stream.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
            data(&mut stream, lfs_pointer(bytes).as_bytes());
        }
        stream.push(b'\n');
        stream.extend_from_slice(b"done\n");
        fast_import(&repo, &stream)
    }

    /// The pages of a project's wiki as GitLab lists them: every file of the wiki repository's
    /// HEAD with a markup extension GitLab renders, sorted by path, with its content. No wiki
    /// repository, or one without commits, has no pages.
    pub fn wiki_pages(&self, full_path: &str) -> std::io::Result<Vec<WikiPage>> {
        let repo = self.repo_path(&wiki_path(full_path))?;
        if !repo.join("HEAD").is_file() {
            return Ok(Vec::new());
        }
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .env("GIT_DIR", &repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .map_err(git_spawn_error)
        };
        let head = git(&["rev-parse", "--verify", "--quiet", "HEAD^{tree}"])?;
        if !head.status.success() {
            return Ok(Vec::new());
        }
        let listing = git(&["ls-tree", "-r", "-z", "--name-only", "HEAD"])?;
        if !listing.status.success() {
            return Err(std::io::Error::other(format!(
                "git ls-tree in {} failed: {}",
                repo.display(),
                String::from_utf8_lossy(&listing.stderr).trim()
            )));
        }
        let mut pages = Vec::new();
        for path in listing.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let path = String::from_utf8_lossy(path).into_owned();
            let Some((slug, format)) = wiki_slug(&path) else {
                continue;
            };
            let blob = git(&["cat-file", "blob", &format!("HEAD:{path}")])?;
            if !blob.status.success() {
                return Err(std::io::Error::other(format!(
                    "git cat-file of {path} in {} failed",
                    repo.display()
                )));
            }
            pages.push(WikiPage {
                title: slug.rsplit('/').next().unwrap_or(&slug).replace('-', " "),
                slug,
                format,
                content: String::from_utf8_lossy(&blob.stdout).into_owned(),
            });
        }
        pages.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(pages)
    }
}

/// Snippet repositories, and reading any repository's HEAD.
impl GitStore {
    /// Gives a dataset snippet its repository (`<project>/snippets/<id>`, see
    /// [`snippet_repo_path`]): a first commit on `main` ("Initial commit", as GitLab writes it
    /// when a snippet is created) with `file_name` holding `content` and a `NOTES.md` naming the
    /// snippet, then a second commit that edits `NOTES.md`, so the repository has two files and
    /// history. Author and dates come from `seed` and the snippet id, as [`GitStore::seed_wiki`]
    /// does: the same inputs give the same SHAs. An empty `file_name` becomes GitLab's
    /// `snippetfile1.txt`.
    pub fn seed_snippet(
        &self,
        project_full_path: &str,
        snippet_id: u64,
        seed: u64,
        title: &str,
        file_name: &str,
        content: &str,
    ) -> std::io::Result<()> {
        let repo = self.create_bare(&snippet_repo_path(project_full_path, snippet_id))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x736e_6970_7065_7400 ^ snippet_id);
        let time = 1_700_000_000 + rng.random_range(0..1000) * 86_400;
        let author = AUTHORS[rng.random_range(0..AUTHORS.len())];
        let file = snippet_file_name(file_name);
        let notes_file = if file == SNIPPET_NOTES {
            "SNIPPET-NOTES.md"
        } else {
            SNIPPET_NOTES
        };
        let notes = format!(
            "# {title}\n\nNotes on snippet {snippet_id} (`{file}`), seeded by forge-sim.\n"
        );
        let edited = format!("{notes}\n- Reviewed: still accurate.\n");
        let stream = linear_stream(&[
            LinearCommit {
                author,
                time,
                message: "Initial commit\n".to_owned(),
                files: vec![(file, content.as_bytes()), (notes_file, notes.as_bytes())],
            },
            LinearCommit {
                author,
                time: time + 3600,
                message: format!("Update {notes_file}\n"),
                files: vec![(notes_file, edited.as_bytes())],
            },
        ]);
        fast_import(&repo, &stream)
    }

    /// GitLab's `create_repository_from_db` for a snippet (an imported one whose archive has no
    /// bundle for it, or one created through the API): a new repository at
    /// `<project>/snippets/<id>` with one commit on `main`, "Initial commit", holding `file_name`
    /// (GitLab's `snippetfile1.txt` when empty) with `content`, by `author` (name, email) at
    /// `unix_time`. GitLab commits at the current time; callers pass a time of the snippet so that
    /// SHAs stay reproducible.
    pub fn create_snippet_repository(
        &self,
        project_full_path: &str,
        snippet_id: u64,
        file_name: &str,
        content: &str,
        author: (&str, &str),
        unix_time: i64,
    ) -> std::io::Result<()> {
        let repo = self.create_bare(&snippet_repo_path(project_full_path, snippet_id))?;
        let stream = linear_stream(&[LinearCommit {
            author,
            time: unix_time,
            message: "Initial commit\n".to_owned(),
            files: vec![(snippet_file_name(file_name), content.as_bytes())],
        }]);
        fast_import(&repo, &stream)
    }

    /// Checks a snippet repository as GitLab's `Snippets::RepositoryValidationService` does
    /// after restoring a bundle: exactly one branch, which HEAD points to, no tags, and 1 to 10
    /// files at HEAD (the size limit is not checked). The error is GitLab's message.
    pub fn validate_snippet_repository(&self, repo_path: &str) -> Result<(), String> {
        let refs = self.refs(repo_path).map_err(|e| e.to_string())?;
        let branches: Vec<&String> = refs
            .keys()
            .filter(|name| name.starts_with("refs/heads/"))
            .collect();
        if branches.len() != 1 {
            return Err("Repository has more than one branch.".to_owned());
        }
        let repo = self.repo_path(repo_path).map_err(|e| e.to_string())?;
        let head =
            git_output(&repo, &["symbolic-ref", "--quiet", "HEAD"]).map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&head.stdout).trim() != branches[0].as_str() {
            return Err("Repository has an invalid default branch name.".to_owned());
        }
        if refs.keys().any(|name| name.starts_with("refs/tags/")) {
            return Err("Repository has tags.".to_owned());
        }
        let files = self.files_at_head(repo_path).map_err(|e| e.to_string())?;
        if files.len() > SNIPPET_MAX_FILES {
            return Err("Repository files count over the limit".to_owned());
        }
        if files.is_empty() {
            return Err("Repository must contain at least 1 file.".to_owned());
        }
        Ok(())
    }

    /// Every file of a repository's HEAD (given by repository path: a project's full path,
    /// [`wiki_path`] or [`snippet_repo_path`]) with its bytes, by path. A missing repository, or
    /// one without commits, has none.
    pub fn files_at_head(&self, repo_path: &str) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
        let repo = self.repo_path(repo_path)?;
        let mut files = BTreeMap::new();
        if !repo.join("HEAD").is_file() {
            return Ok(files);
        }
        let head = git_output(&repo, &["rev-parse", "--verify", "--quiet", "HEAD^{tree}"])?;
        if !head.status.success() {
            return Ok(files);
        }
        let listing = git_checked(&repo, &["ls-tree", "-r", "-z", "HEAD"])?;
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            // `<mode> <type> <object>\t<path>`
            let Some(tab) = entry.iter().position(|b| *b == b'\t') else {
                continue;
            };
            let meta = String::from_utf8_lossy(&entry[..tab]);
            let mut meta = meta.split(' ');
            let (Some(_mode), Some("blob"), Some(object)) = (meta.next(), meta.next(), meta.next())
            else {
                continue;
            };
            let path = String::from_utf8_lossy(&entry[tab + 1..]).into_owned();
            let bytes = git_checked(&repo, &["cat-file", "blob", object])?;
            files.insert(path, bytes);
        }
        Ok(files)
    }

    /// One file of a repository's HEAD, `None` when HEAD has no such file (or there is no HEAD).
    pub fn file_at_head(&self, repo_path: &str, file: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.files_at_head(repo_path)?.remove(file))
    }

    /// The commit a sha, branch or tag names in a repository (`git rev-parse --verify <rev>^{commit}`);
    /// `None` when it names none (or there is no repository).
    pub fn resolve_commit(&self, repo_path: &str, rev: &str) -> std::io::Result<Option<String>> {
        let repo = self.repo_path(repo_path)?;
        if !repo.join("HEAD").is_file() || rev.starts_with('-') {
            return Ok(None);
        }
        let out = git_output(
            &repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// The commits reachable from a repository's HEAD, newest first (`git rev-list HEAD`); none
    /// for a missing repository or one without commits.
    pub fn commits_at_head(&self, repo_path: &str) -> std::io::Result<Vec<String>> {
        let repo = self.repo_path(repo_path)?;
        if !repo.join("HEAD").is_file() {
            return Ok(Vec::new());
        }
        let out = git_output(&repo, &["rev-list", "HEAD"])?;
        if !out.status.success() {
            return Ok(Vec::new());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// One commit of a project's design repository, as [`GitStore::seed_designs`] writes it.
#[derive(Debug, Clone)]
pub struct DesignCommit {
    /// Name and email.
    pub author: (String, String),
    pub unix_time: i64,
    pub message: String,
    /// Design files added or changed (path in the repository, the image's bytes); each is
    /// committed as its LFS pointer.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Design repositories, and reading any repository at a commit.
impl GitStore {
    /// Gives a project its design repository (`<full_path>.design`, see [`design_path`]): one
    /// commit per entry of `commits` on `master` (the branch GitLab commits designs to), each on
    /// top of the previous, with every design file as its LFS pointer and, in the first, the
    /// `.gitattributes` that routes `designs/` through LFS. Returns the commits' SHAs in order
    /// (the `sha` of each design version). The same input gives the same SHAs.
    pub fn seed_designs(
        &self,
        full_path: &str,
        commits: &[DesignCommit],
    ) -> std::io::Result<Vec<String>> {
        let repo_path = design_path(full_path);
        let repo = self.create_bare(&repo_path)?;
        std::fs::write(repo.join("HEAD"), "ref: refs/heads/master\n")?;
        let mut stream = Vec::new();
        let data = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.push(b'\n');
        };
        for (n, commit) in commits.iter().enumerate() {
            let clean = |s: &str| s.replace(['<', '>', '\n'], "");
            let who = format!(
                "{} <{}> {} +0000",
                clean(&commit.author.0),
                clean(&commit.author.1),
                commit.unix_time
            );
            stream.extend_from_slice(
                format!(
                    "commit refs/heads/master\nmark :{}\nauthor {who}\ncommitter {who}\n",
                    n + 1
                )
                .as_bytes(),
            );
            data(&mut stream, commit.message.as_bytes());
            if n == 0 {
                stream.extend_from_slice(b"M 100644 inline .gitattributes\n");
                data(&mut stream, DESIGN_GITATTRIBUTES.as_bytes());
            } else {
                stream.extend_from_slice(format!("from :{n}\n").as_bytes());
            }
            for (path, bytes) in &commit.files {
                stream.extend_from_slice(
                    format!("M 100644 inline {}\n", quote_path(path)).as_bytes(),
                );
                data(&mut stream, lfs_pointer(bytes).as_bytes());
            }
            stream.push(b'\n');
        }
        stream.extend_from_slice(b"done\n");
        fast_import(&repo, &stream)?;
        let mut shas = Vec::with_capacity(commits.len());
        for n in 1..=commits.len() {
            let back = commits.len() - n;
            let sha = self
                .resolve_commit(&repo_path, &format!("refs/heads/master~{back}"))?
                .ok_or_else(|| std::io::Error::other("a seeded design commit is missing"))?;
            shas.push(sha);
        }
        Ok(shas)
    }

    /// The bytes of `path` in the tree of commit `sha` of a repository (given by repository path);
    /// `None` when there is no such repository, commit or file.
    pub fn file_at_commit(
        &self,
        repo_path: &str,
        sha: &str,
        path: &str,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let Some(commit) = self.resolve_commit(repo_path, sha)? else {
            return Ok(None);
        };
        let repo = self.repo_path(repo_path)?;
        let out = git_output(&repo, &["cat-file", "blob", &format!("{commit}:{path}")])?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// `git bundle create --all` of a repository (given by repository path), as GitLab's
    /// `RepositoryBundleExportService` writes one; `None` when the repository does not exist or
    /// has no refs, for which GitLab writes no bundle.
    pub fn bundle(&self, repo_path: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !self.exists(repo_path) || self.refs(repo_path)?.is_empty() {
            return Ok(None);
        }
        let repo = self.repo_path(repo_path)?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("repository.bundle");
        let file_arg = file.to_string_lossy().into_owned();
        git_checked(&repo, &["bundle", "create", "--quiet", &file_arg, "--all"])?;
        std::fs::read(&file).map(Some)
    }
}

/// The `.gitattributes` of a design repository: every design is kept in Git LFS.
const DESIGN_GITATTRIBUTES: &str = "/designs/** filter=lfs diff=lfs merge=lfs -text\n";

/// The repository path of a project's designs: `<full_path>.design` (`<full_path>.design.git` on
/// disk), as GitLab keeps it.
pub fn design_path(full_path: &str) -> String {
    format!("{full_path}.design")
}

/// The repository path of a project snippet's repository: `<project>/snippets/<id>`
/// (`<project>/snippets/<id>.git` on disk and over HTTP), as GitLab serves it.
pub fn snippet_repo_path(project_full_path: &str, snippet_id: u64) -> String {
    format!("{project_full_path}/snippets/{snippet_id}")
}

/// The second file every seeded snippet repository has.
const SNIPPET_NOTES: &str = "NOTES.md";

/// GitLab's `Snippet.max_file_limit`.
const SNIPPET_MAX_FILES: usize = 10;

/// The file a snippet's content is committed as: its `file_name`, or GitLab's
/// `snippetfile1.txt` when that is empty.
fn snippet_file_name(file_name: &str) -> &str {
    if file_name.trim().is_empty() {
        "snippetfile1.txt"
    } else {
        file_name
    }
}

/// One commit of a history on `main` built by [`linear_stream`].
struct LinearCommit<'a> {
    /// Name and email.
    author: (&'a str, &'a str),
    time: i64,
    message: String,
    /// Files added or changed: path and content.
    files: Vec<(&'a str, &'a [u8])>,
}

/// The `git fast-import` stream of `commits` on `refs/heads/main`, each on top of the previous.
fn linear_stream(commits: &[LinearCommit]) -> Vec<u8> {
    let mut out = Vec::new();
    let data = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        out.push(b'\n');
    };
    for (n, commit) in commits.iter().enumerate() {
        let mark = n + 1;
        // fast-import's ident syntax has no escapes: drop what would end the name or email.
        let clean = |s: &str| s.replace(['<', '>', '\n'], "");
        let who = format!(
            "{} <{}> {} +0000",
            clean(commit.author.0),
            clean(commit.author.1),
            commit.time
        );
        out.extend_from_slice(
            format!("commit refs/heads/main\nmark :{mark}\nauthor {who}\ncommitter {who}\n")
                .as_bytes(),
        );
        data(&mut out, commit.message.as_bytes());
        if mark > 1 {
            out.extend_from_slice(format!("from :{}\n", mark - 1).as_bytes());
        }
        for (path, content) in &commit.files {
            out.extend_from_slice(format!("M 100644 inline {}\n", quote_path(path)).as_bytes());
            data(&mut out, content);
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"done\n");
    out
}

/// A path in fast-import's C-style quoting, which it accepts for any path (so names with quotes,
/// backslashes or line feeds, which come from imported records, cannot break the stream).
fn quote_path(path: &str) -> String {
    let mut quoted = String::with_capacity(path.len() + 2);
    quoted.push('"');
    for c in path.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Runs `git` in the bare repository `repo` without user or system configuration.
fn git_output(repo: &std::path::Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("git")
        .args(args)
        .env("GIT_DIR", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .map_err(git_spawn_error)
}

/// [`git_output`] that must succeed; gives its stdout.
fn git_checked(repo: &std::path::Path, args: &[&str]) -> std::io::Result<Vec<u8>> {
    let out = git_output(repo, args)?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "git {} in {} failed: {}",
            args.first().copied().unwrap_or_default(),
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// One page of a project's wiki.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WikiPage {
    /// The page's path without its extension (`guides/Deploy`).
    pub slug: String,
    /// The last part of the slug, dashes shown as spaces (`Getting started`).
    pub title: String,
    /// `markdown`, `rdoc`, `asciidoc` or `org`.
    pub format: String,
    pub content: String,
}

/// `mib` MiB of incompressible LFS files for a benchmark, 64 MiB each (the last smaller), named
/// `large/object-NNNN.bin`, drawn from `seed`.
pub fn large_lfs_files(seed: u64, mib: u64) -> Vec<crate::dataset::LfsFile> {
    const OBJECT: u64 = 64 << 20;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c66_735f_6c61_7267);
    let (mut left, mut n) = (mib << 20, 0u32);
    let mut out = Vec::new();
    while left > 0 {
        let size = left.min(OBJECT);
        let mut bytes = vec![0u8; size as usize];
        rand::RngCore::fill_bytes(&mut rng, &mut bytes);
        n += 1;
        out.push((format!("large/object-{n:04}.bin"), bytes));
        left -= size;
    }
    out
}

/// The oid of an LFS object: the sha256 of its bytes, lowercase hex.
pub fn lfs_oid(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The pointer file Git LFS commits in place of an object's bytes.
pub fn lfs_pointer(bytes: &[u8]) -> String {
    format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
        lfs_oid(bytes),
        bytes.len()
    )
}

/// The repository path of a project's wiki: `<full_path>.wiki` (`<full_path>.wiki.git` on disk).
pub fn wiki_path(full_path: &str) -> String {
    format!("{full_path}.wiki")
}

/// A wiki file's slug and format, when GitLab shows it as a page (by its markup extension).
fn wiki_slug(path: &str) -> Option<(String, String)> {
    let (slug, ext) = path.rsplit_once('.')?;
    let format = match ext.to_ascii_lowercase().as_str() {
        "md" | "markdown" | "mdown" | "mkd" | "mkdn" => "markdown",
        "rdoc" => "rdoc",
        "adoc" | "asciidoc" => "asciidoc",
        "org" => "org",
        _ => return None,
    };
    (!slug.is_empty() && !slug.ends_with('/')).then(|| (slug.to_owned(), format.to_owned()))
}

/// Runs `git fast-import` with `stream` into `repo`.
fn fast_import(repo: &std::path::Path, stream: &[u8]) -> std::io::Result<()> {
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", "--force", "--done"])
        .env("GIT_DIR", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(git_spawn_error)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("git fast-import has no stdin"))?;
    // A write error here means fast-import died; its stderr below says why.
    let written = stdin.write_all(stream);
    drop(stdin);
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "git fast-import into {} failed ({}): {}",
            repo.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    written
}

fn git_spawn_error(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        std::io::Error::new(std::io::ErrorKind::NotFound, GIT_MISSING)
    } else {
        e
    }
}

/// A project path must stay inside the store root.
fn check_full_path(full_path: &str) -> std::io::Result<()> {
    let bad = full_path.is_empty()
        || full_path.contains(['\\', '\0', '\n'])
        || full_path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{full_path}` is not a valid project path for a repository"),
        ));
    }
    Ok(())
}

const AUTHORS: [(&str, &str); 6] = [
    ("Aiko Tanaka", "aiko.tanaka@example.com"),
    ("Björn Ödegaard", "bjorn.odegaard@example.com"),
    ("Chidi Okafor", "chidi.okafor@example.com"),
    ("Dana Whitfield", "dana.whitfield@example.com"),
    ("Élodie Marchand", "elodie.marchand@example.com"),
    ("Farah Haddad", "farah.haddad@example.com"),
];

const FILES: [&str; 6] = [
    "README.md",
    "src/main.rs",
    "src/parser.rs",
    "docs/ünïcødé notes.md",
    "资料/说明.txt",
    "config/settings with spaces.toml",
];

/// Builds the `git fast-import` stream for [`GitStore::seed_history`]. Everything, timestamps
/// included, comes from `seed`, so the stream (and so every SHA) is a function of its inputs.
struct HistoryWriter {
    out: Vec<u8>,
    rng: ChaCha8Rng,
    time: u64,
    mark: usize,
    files: BTreeMap<&'static str, String>,
}

impl HistoryWriter {
    fn data(&mut self, bytes: &[u8]) {
        self.out
            .extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
        self.out.extend_from_slice(bytes);
        self.out.push(b'\n');
    }

    fn person(&mut self) -> String {
        let (name, email) = AUTHORS[self.rng.random_range(0..AUTHORS.len())];
        self.time += 600 + self.rng.random_range(0..36_000);
        format!("{name} <{email}> {} +0000", self.time)
    }

    /// One commit on `branch` changing `changed` files (contents evolve with each commit).
    fn commit(
        &mut self,
        branch: &str,
        from: Option<usize>,
        message: &str,
        changed: &[&'static str],
    ) -> usize {
        self.mark += 1;
        let mark = self.mark;
        let who = self.person();
        self.out.extend_from_slice(
            format!("commit refs/heads/{branch}\nmark :{mark}\nauthor {who}\ncommitter {who}\n")
                .as_bytes(),
        );
        self.data(message.as_bytes());
        if let Some(from) = from {
            self.out
                .extend_from_slice(format!("from :{from}\n").as_bytes());
        }
        for &path in changed {
            let line = format!("line {mark}: {:016x}\n", self.rng.random::<u64>());
            let content = {
                let entry = self.files.entry(path).or_default();
                entry.push_str(&line);
                entry.clone()
            };
            self.out
                .extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
            self.data(content.as_bytes());
        }
        self.out.push(b'\n');
        mark
    }
}

fn history_stream(full_path: &str, seed: u64, commits: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // 2023-11-14 plus up to ~3 years, whole seconds: fixed for a seed, varied across seeds.
    let time = 1_700_000_000 + rng.random_range(0..1000) * 86_400;
    let mut w = HistoryWriter {
        out: Vec::with_capacity(4096 + commits * 512),
        rng,
        time,
        mark: 0,
        files: BTreeMap::new(),
    };
    w.files.insert(
        "README.md",
        format!("# {full_path}\n\nSeeded by forge-sim.\n"),
    );
    let first = w.commit("main", None, "Initial commit\n", &FILES);
    let mut main_tip = first;
    let fork_at = commits.div_ceil(2);
    let mut fork = first;
    for n in 2..=commits {
        let file = FILES[w.rng.random_range(0..FILES.len())];
        let message = format!("Update {file} (change {n})\n\nPart of the seeded history.\n");
        main_tip = w.commit("main", Some(main_tip), &message, &[file]);
        if n == fork_at {
            fork = main_tip;
        }
    }
    let feature_1 = w.commit(
        "feature/seeded",
        Some(fork),
        "Start the seeded feature\n",
        &["src/feature.rs"],
    );
    w.commit(
        "feature/seeded",
        Some(feature_1),
        "Document the seeded feature ✨\n",
        &["src/feature.rs", "docs/ünïcødé notes.md"],
    );
    w.out
        .extend_from_slice(format!("reset refs/heads/stable\nfrom :{fork}\n\n").as_bytes());
    w.out
        .extend_from_slice(format!("reset refs/tags/v0.1.0\nfrom :{first}\n\n").as_bytes());
    let tagger = w.person();
    w.out
        .extend_from_slice(format!("tag v1.0.0\nfrom :{main_tip}\ntagger {tagger}\n").as_bytes());
    w.data(b"Release 1.0.0\n");
    w.out.extend_from_slice(b"done\n");
    w.out
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP

/// The three smart HTTP endpoints of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

/// A request for a repository: which project, which endpoint (`info/refs` or a service POST).
#[derive(Debug)]
struct GitRequest {
    full_path: String,
    /// The path after `.git`, e.g. `/info/refs` or `/git-upload-pack`.
    suffix: &'static str,
    service: Service,
}

fn parse_git_path(method: &Method, path: &str, query: &str) -> Option<GitRequest> {
    let (repo, suffix) = ["/info/refs", "/git-upload-pack", "/git-receive-pack"]
        .into_iter()
        .find_map(|s| path.strip_suffix(s).map(|repo| (repo, s)))?;
    let repo = repo.strip_suffix(".git")?.strip_prefix('/')?;
    let full_path = percent_decode_str(repo).decode_utf8().ok()?.into_owned();
    check_full_path(&full_path).ok()?;
    let service = match suffix {
        "/info/refs" => {
            if *method != Method::GET && *method != Method::HEAD {
                return None;
            }
            let wanted = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("service="))?;
            match wanted {
                "git-upload-pack" => Service::UploadPack,
                "git-receive-pack" => Service::ReceivePack,
                _ => return None,
            }
        }
        "/git-upload-pack" if *method == Method::POST => Service::UploadPack,
        "/git-receive-pack" if *method == Method::POST => Service::ReceivePack,
        _ => return None,
    };
    Some(GitRequest {
        full_path,
        suffix,
        service,
    })
}

/// Serve git smart HTTP for `/<full_path>.git/info/refs?service=...`,
/// `POST /<full_path>.git/git-upload-pack` and `POST /<full_path>.git/git-receive-pack`.
/// Returns `None` for any other request, so the caller's fallback can go on routing it.
pub async fn handle_git(sim: Arc<Sim>, req: Request) -> Option<Response> {
    let git = parse_git_path(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    )?;
    let user = match authorize(&sim, &git, req.headers()) {
        Ok(user) => user,
        Err(refusal) => return Some(refusal.response()),
    };
    Some(run_http_backend(sim, git, user, req).await)
}

/// Why a git request is refused; each is answered as GitLab answers it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Unauthorized,
    NotFound,
    Forbidden(Service),
    /// A design repository (`<project>.design.git`): GitLab's `GitAccessDesign` refuses every
    /// protocol but its web interface.
    DesignsWebOnly,
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Unauthorized => unauthorized(),
            Refusal::NotFound => not_found(),
            Refusal::Forbidden(service) => forbidden(service),
            Refusal::DesignsWebOnly => (
                StatusCode::FORBIDDEN,
                "Designs are only accessible using the web interface\n",
            )
                .into_response(),
        }
    }
}

/// Who may do what, as GitLab decides it for git over HTTP: returns the username for
/// `REMOTE_USER` (empty when anonymous) or the refusal.
fn authorize(sim: &Sim, git: &GitRequest, headers: &HeaderMap) -> Result<String, Refusal> {
    let credentials = basic_credentials(headers);
    let user_id = match &credentials {
        Some((_, token)) => Some(sim.user_for_token(token).ok_or(Refusal::Unauthorized)?),
        None => None,
    };
    let store = sim.read();
    if let Some(project) = git
        .full_path
        .strip_suffix(".design")
        .filter(|_| store.project_by_path(&git.full_path).is_none())
        .and_then(|p| store.project_by_path(p))
    {
        return refuse_designs(&store, project, user_id);
    }
    let target = Target::resolve(&store, &git.full_path);
    let Some(user_id) = user_id else {
        // Anonymous: only clones of public projects (and of their public snippets); everything
        // else asks for credentials, also for repositories that do not exist, so that their
        // existence does not leak.
        let public = target.as_ref().is_some_and(|t| {
            t.project.visibility == "public" && t.snippet.is_none_or(|s| s.visibility == "public")
        });
        return if public && git.service == Service::UploadPack {
            Ok(String::new())
        } else {
            Err(Refusal::Unauthorized)
        };
    };
    let target = target.ok_or(Refusal::NotFound)?;
    let level = store
        .project_access(user_id, target.project.id)
        .ok_or(Refusal::NotFound)?;
    let username = store
        .user(user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let private = target.project.visibility == "private";
    let allowed = match (target.snippet, git.service) {
        (None, Service::UploadPack) => !private || level >= access::REPORTER,
        (None, Service::ReceivePack) => level >= access::DEVELOPER,
        // A private snippet is for the project's members only; others do not see it at all.
        (Some(s), _) if s.visibility == "private" && level < access::GUEST => {
            return Err(Refusal::NotFound);
        }
        (Some(_), Service::UploadPack) => !private || level >= access::REPORTER,
        // GitLab's `update_snippet`: the snippet's author, or a maintainer of its project.
        (Some(s), Service::ReceivePack) => {
            level >= access::MAINTAINER || (s.author_id == user_id && level >= access::REPORTER)
        }
    };
    if !allowed {
        return Err(Refusal::Forbidden(git.service));
    }
    Ok(username)
}

/// A git request for a project's design repository: who may not see the project is refused as
/// for its repository (credentials asked for, or not found); everyone else hears GitLab's
/// `GitAccessDesign` refusal, since designs are never served over git.
fn refuse_designs(
    store: &crate::state::Store,
    project: &crate::model::Project,
    user_id: Option<u64>,
) -> Result<String, Refusal> {
    let Some(user_id) = user_id else {
        return Err(if project.visibility == "public" {
            Refusal::DesignsWebOnly
        } else {
            Refusal::Unauthorized
        });
    };
    match store.project_access(user_id, project.id) {
        Some(level) if project.visibility != "private" || level >= access::GUEST => {
            Err(Refusal::DesignsWebOnly)
        }
        _ => Err(Refusal::NotFound),
    }
}

/// The project a repository path belongs to: the project itself, or, for `<project>.wiki`, the
/// project whose wiki it is when its wiki is enabled (GitLab serves no wiki of a project that has
/// it turned off). Snippet repositories are [`snippet_for`]'s (they have no LFS, so the LFS
/// endpoints, which use this, do not see them).
pub(crate) fn project_for<'s>(
    store: &'s crate::state::Store,
    full_path: &str,
) -> Option<&'s crate::model::Project> {
    store.project_by_path(full_path).or_else(|| {
        full_path
            .strip_suffix(".wiki")
            .and_then(|project| store.project_by_path(project))
            .filter(|p| p.wiki_enabled)
    })
}

/// The project and snippet of a snippet repository path, `<project>/snippets/<id>` (see
/// [`snippet_repo_path`]): only when that project has that snippet and its snippets feature is
/// enabled, so that ids of other projects' snippets lead nowhere.
pub(crate) fn snippet_for<'s>(
    store: &'s crate::state::Store,
    full_path: &str,
) -> Option<(&'s crate::model::Project, &'s crate::model::Snippet)> {
    let (project_path, raw_id) = full_path.rsplit_once("/snippets/")?;
    let id: u64 = raw_id.parse().ok()?;
    // Only the canonical spelling (no `+7`, no `007`) names the snippet.
    if id.to_string() != raw_id {
        return None;
    }
    let project = store
        .project_by_path(project_path)
        .filter(|p| p.snippets_enabled)?;
    let snippet = store
        .snippets
        .get(id)
        .filter(|s| s.project_id == project.id)?;
    Some((project, snippet))
}

/// What a repository path served over HTTP is: a project's repository or wiki, or one of its
/// snippets'.
struct Target<'s> {
    project: &'s crate::model::Project,
    snippet: Option<&'s crate::model::Snippet>,
}

impl<'s> Target<'s> {
    fn resolve(store: &'s crate::state::Store, full_path: &str) -> Option<Target<'s>> {
        project_for(store, full_path)
            .map(|project| Target {
                project,
                snippet: None,
            })
            .or_else(|| {
                snippet_for(store, full_path).map(|(project, snippet)| Target {
                    project,
                    snippet: Some(snippet),
                })
            })
    }
}

/// `(username, password)` from `Authorization: Basic ...`.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Standard base64 with optional padding; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8]),
            2 => out.push((acc >> 16) as u8),
            _ => return None,
        }
    }
    Some(out)
}

pub(crate) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, r#"Basic realm="GitLab""#)],
        "HTTP Basic: Access denied. If a password was provided for Git authentication, the \
         password was incorrect or you're required to use a token instead of a password.\n",
    )
        .into_response()
}

pub(crate) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "The project you were looking for could not be found or you don't have permission to \
         view it.\n",
    )
        .into_response()
}

fn forbidden(service: Service) -> Response {
    let text = match service {
        Service::ReceivePack => "You are not allowed to push code to this project.\n",
        Service::UploadPack => "You are not allowed to download code from this project.\n",
    };
    (StatusCode::FORBIDDEN, text).into_response()
}

fn backend_error(what: impl std::fmt::Display) -> Response {
    tracing::warn!("git http-backend: {what}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("forge-sim: git http-backend: {what}\n"),
    )
        .into_response()
}

/// Run `git http-backend` as a CGI program: the request body streams into its stdin, its
/// stdout is parsed for CGI headers and then streamed back as the response body.
async fn run_http_backend(sim: Arc<Sim>, git: GitRequest, user: String, req: Request) -> Response {
    match sim.git.repo_path(&git.full_path) {
        Ok(repo) if repo.join("HEAD").is_file() => {}
        // A wiki's repository exists as soon as it is asked for, empty until a page is written
        // (GitLab creates it on first use). A snippet without a repository (its bundle was
        // refused) has none to serve.
        Ok(_)
            if {
                let store = sim.read();
                store.project_by_path(&git.full_path).is_none()
                    && snippet_for(&store, &git.full_path).is_none()
            } =>
        {
            if let Err(e) = sim.git.create_bare(&git.full_path) {
                return backend_error(e);
            }
        }
        // Known to the API but never given a repository (or created under another name).
        _ => return not_found(),
    }
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &sim.git.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &sim.git.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_HTTP_MAX_REQUEST_BUFFER", "1000M")
        .env("PATH_INFO", format!("/{}.git{}", git.full_path, git.suffix))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // git compresses large POST bodies; http-backend inflates them itself when told.
    let encoding = header("content-encoding");
    if !encoding.is_empty() {
        cmd.env("HTTP_CONTENT_ENCODING", encoding);
    }
    let protocol = header("git-protocol");
    if !protocol.is_empty() {
        cmd.env("HTTP_GIT_PROTOCOL", protocol);
    }
    let length = header("content-length");
    if !length.is_empty() {
        cmd.env("CONTENT_LENGTH", length);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return backend_error(git_spawn_error(e)),
    };
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return backend_error("no pipes to the child process");
    };

    // Feed the body in its own task: http-backend may answer before it has read everything.
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let mut stdout = BufReader::new(stdout);
    let (status, headers) = match read_cgi_head(&mut stdout).await {
        Ok(head) => head,
        Err(e) => {
            let _ = child.kill().await;
            let stderr = stderr_task.await.unwrap_or_default();
            return backend_error(format!("{e}; stderr: {}", stderr.trim()));
        }
    };

    let pushed = git.service == Service::ReceivePack && git.suffix == "/git-receive-pack";
    let full_path = git.full_path.clone();
    // Reading to EOF and then waiting for the child in the stream itself keeps the child alive
    // exactly as long as the response, and lets a push update the project before the client
    // hears that it finished.
    let state = Some((stdout, child, stderr_task, sim));
    let stream = futures_util::stream::unfold(state, move |state| {
        let full_path = full_path.clone();
        async move {
            let (mut stdout, mut child, stderr_task, sim) = state?;
            let mut buf = vec![0u8; 64 * 1024];
            match stdout.read(&mut buf).await {
                Ok(0) => {
                    let status = child.wait().await;
                    let ok = status.as_ref().is_ok_and(|s| s.success());
                    if !ok {
                        let stderr = stderr_task.await.unwrap_or_default();
                        tracing::warn!(
                            "git http-backend for {full_path} exited with {status:?}: {}",
                            stderr.trim()
                        );
                    } else if pushed {
                        mark_pushed(&sim, &full_path);
                    }
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok::<Bytes, std::io::Error>(Bytes::from(buf)),
                        Some((stdout, child, stderr_task, sim)),
                    ))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    resp.headers_mut().extend(headers);
    resp
}

/// After a successful push the project's repository is no longer empty.
fn mark_pushed(sim: &Sim, full_path: &str) {
    let mut store = sim.write();
    let Some(id) = store.project_by_path(full_path).map(|p| p.id) else {
        return;
    };
    if let Some(project) = store.projects.get_mut(&id) {
        project.empty_repo = false;
    }
}

/// Parse the CGI response head: `Status: 200 OK` and other `Name: value` lines up to an empty line.
async fn read_cgi_head<R: tokio::io::AsyncBufRead + Unpin>(
    out: &mut R,
) -> std::io::Result<(StatusCode, HeaderMap)> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the CGI output ended before its headers did",
            ));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name), HeaderValue::try_from(value))
        {
            headers.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_credentials() {
        assert_eq!(
            base64_decode("b2F1dGgyOnNlY3JldA==").as_deref(),
            Some(&b"oauth2:secret"[..])
        );
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert!(base64_decode("a$==").is_none());
    }

    #[test]
    fn git_paths_are_recognised_and_others_left_alone() {
        let get = Method::GET;
        let post = Method::POST;
        let r = parse_git_path(&get, "/a/b%20c.git/info/refs", "service=git-upload-pack")
            .expect("info/refs");
        assert_eq!(r.full_path, "a/b c");
        assert_eq!(r.service, Service::UploadPack);
        let r = parse_git_path(&post, "/g/sub/p.git/git-receive-pack", "").expect("push");
        assert_eq!(r.service, Service::ReceivePack);
        assert!(parse_git_path(&get, "/g/p.git/info/refs", "").is_none());
        assert!(parse_git_path(&get, "/api/v4/projects", "").is_none());
        assert!(parse_git_path(&get, "/g/p.git/git-upload-pack", "").is_none());
        assert!(parse_git_path(&post, "/../x.git/git-upload-pack", "").is_none());
    }

    #[test]
    fn invalid_paths_are_refused() {
        let store = GitStore::new(PathBuf::from("/nonexistent"));
        assert!(store.repo_path("a/../b").is_err());
        assert!(store.repo_path("").is_err());
        assert!(store.repo_path("a//b").is_err());
        assert!(store.repo_path("group/proj").is_ok());
    }

    #[test]
    fn history_is_deterministic_and_seed_dependent() {
        let a = history_stream("g/p", 7, 5);
        assert_eq!(a, history_stream("g/p", 7, 5));
        assert_ne!(a, history_stream("g/p", 8, 5));
    }

    #[test]
    fn seeded_repository_has_branches_and_tags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GitStore::new(dir.path().to_path_buf());
        store.seed_history("g/p", 3, 4).expect("seed");
        let refs = store.refs("g/p").expect("refs");
        for name in [
            "refs/heads/main",
            "refs/heads/feature/seeded",
            "refs/heads/stable",
            "refs/tags/v0.1.0",
            "refs/tags/v1.0.0",
        ] {
            assert!(refs.contains_key(name), "{name} missing from {refs:?}");
        }
        let again = tempfile::tempdir().expect("tempdir");
        let other = GitStore::new(again.path().to_path_buf());
        other.seed_history("g/p", 3, 4).expect("seed");
        assert_eq!(refs, other.refs("g/p").expect("refs"));
    }

    #[test]
    fn seeded_snippet_has_two_files_and_two_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GitStore::new(dir.path().to_path_buf());
        let repo = snippet_repo_path("g/p", 9);
        assert_eq!(repo, "g/p/snippets/9");
        store
            .seed_snippet("g/p", 9, 5, "Example", "run me.sh", "echo hi\n")
            .expect("seed");
        assert!(dir.path().join("g/p/snippets/9.git/HEAD").is_file());
        let files = store.files_at_head(&repo).expect("files");
        assert_eq!(
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            ["NOTES.md", "run me.sh"]
        );
        assert_eq!(files["run me.sh"], b"echo hi\n");
        let notes = String::from_utf8_lossy(&files["NOTES.md"]).into_owned();
        assert!(
            notes.contains("Example") && notes.contains("Reviewed"),
            "{notes}"
        );
        assert_eq!(store.commits_at_head(&repo).expect("commits").len(), 2);
        assert_eq!(store.validate_snippet_repository(&repo), Ok(()));

        let again = tempfile::tempdir().expect("tempdir");
        let other = GitStore::new(again.path().to_path_buf());
        other
            .seed_snippet("g/p", 9, 5, "Example", "run me.sh", "echo hi\n")
            .expect("seed");
        assert_eq!(
            store.refs(&repo).expect("refs"),
            other.refs(&repo).expect("refs")
        );
        other.remove("g/p").expect("remove");
        assert!(!other.exists(&repo));
    }

    #[test]
    fn snippet_repository_from_the_record_has_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GitStore::new(dir.path().to_path_buf());
        let author = ("Ada Lovelace", "ada@forge-sim.test");
        let odd = "we\"ird\\na\nme.txt";
        store
            .create_snippet_repository("g/p", 3, odd, "x = 1", author, 1_600_000_000)
            .expect("odd name");
        assert_eq!(
            store.file_at_head("g/p/snippets/3", odd).expect("file"),
            Some(b"x = 1".to_vec())
        );
        store
            .create_snippet_repository("g/p", 4, "", "y", author, 1_600_000_000)
            .expect("no name");
        let files = store.files_at_head("g/p/snippets/4").expect("files");
        assert_eq!(files.keys().collect::<Vec<_>>(), ["snippetfile1.txt"]);
        assert_eq!(
            store.commits_at_head("g/p/snippets/4").expect("log").len(),
            1
        );
        assert_eq!(
            store.file_at_head("g/p/snippets/5", "x").expect("none"),
            None
        );
    }

    #[test]
    fn snippet_repositories_with_tags_or_branches_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GitStore::new(dir.path().to_path_buf());
        store.seed_history("g/p", 1, 2).expect("seed");
        assert_eq!(
            store.validate_snippet_repository("g/p"),
            Err("Repository has more than one branch.".to_owned())
        );
        store.create_bare("g/p/snippets/1").expect("bare");
        assert!(store.validate_snippet_repository("g/p/snippets/1").is_err());
    }
}

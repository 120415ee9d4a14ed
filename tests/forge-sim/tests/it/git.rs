//! Git smart HTTP as the system `git` client sees it: clone with a token, deterministic history,
//! push into a project created through the API, and GitLab's 401/403/404 answers.

use std::path::Path;
use std::time::Duration;

use forge_sim::{Dataset, RunningSim, SimConfig};

const PROJECT: &str = "acme/backend/api";

/// Runs the system git with no user or system configuration and no prompts.
async fn git(home: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("git")
        .args(args)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env_remove("SSH_ASKPASS")
        .output()
        .await
        .expect("the system `git` runs (install git to run these tests)")
}

async fn git_ok(home: &Path, args: &[&str]) -> String {
    let out = git(home, args).await;
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repo_url(sim: &RunningSim, token: &str, full_path: &str) -> String {
    let host = sim.url.trim_start_matches("http://");
    format!("http://oauth2:{token}@{host}/{full_path}.git")
}

fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `refname -> sha` as `git ls-remote` prints them.
async fn ls_remote(home: &Path, url: &str) -> Vec<(String, String)> {
    git_ok(home, &["ls-remote", url])
        .await
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (name.to_owned(), sha.to_owned()))
        .collect()
}

#[tokio::test]
async fn clone_of_a_small_project_has_branches_tags_and_unicode_files() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let home = tempfile::tempdir().expect("tempdir");
    let dest = home.path().join("api");
    let url = repo_url(&sim, &sim.owner_token, PROJECT);
    git_ok(
        home.path(),
        &["clone", "--quiet", &url, dest.to_str().expect("utf-8 path")],
    )
    .await;
    assert!(dest.join("README.md").is_file());
    assert!(dest.join("docs/ünïcødé notes.md").is_file());
    assert!(dest.join("资料/说明.txt").is_file());
    let dest_str = dest.to_str().expect("utf-8 path");
    let count = git_ok(
        home.path(),
        &["-C", dest_str, "rev-list", "--count", "HEAD"],
    )
    .await;
    assert_eq!(
        count.trim(),
        "13",
        "small projects get 12 commits on main, and the API project one more that adds its LFS files"
    );
    // Its LFS files are committed as pointers, routed through LFS by .gitattributes.
    let attributes = std::fs::read_to_string(dest.join(".gitattributes")).expect(".gitattributes");
    assert!(attributes.contains("*.bin filter=lfs"), "{attributes}");
    let pointer = std::fs::read_to_string(dest.join("assets/model.bin")).expect("a pointer");
    assert!(
        pointer.starts_with("version https://git-lfs.github.com/spec/v1\noid sha256:"),
        "{pointer}"
    );
    let refs = ls_remote(home.path(), &url).await;
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "HEAD",
        "refs/heads/main",
        "refs/heads/feature/seeded",
        "refs/heads/stable",
        "refs/tags/v0.1.0",
        "refs/tags/v1.0.0",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    // The API's view of the repository agrees with git's.
    let project: serde_json::Value = client()
        .get(format!("{}/api/v4/projects/acme%2Fbackend%2Fapi", sim.url))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .expect("GET project")
        .json()
        .await
        .expect("json");
    assert_eq!(project["default_branch"], "main");
    assert_eq!(
        project["http_url_to_repo"],
        format!("{}/{PROJECT}.git", sim.url)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn same_seed_gives_the_same_commit_shas() {
    let (a, b, c) = tokio::join!(
        RunningSim::start(SimConfig::new(Dataset::Small, 7)),
        RunningSim::start(SimConfig::new(Dataset::Small, 7)),
        RunningSim::start(SimConfig::new(Dataset::Small, 8)),
    );
    let (a, b, c) = (a.expect("sim a"), b.expect("sim b"), c.expect("sim c"));
    let home = tempfile::tempdir().expect("tempdir");
    let refs_a = ls_remote(home.path(), &repo_url(&a, &a.owner_token, PROJECT)).await;
    let refs_b = ls_remote(home.path(), &repo_url(&b, &b.owner_token, PROJECT)).await;
    let refs_c = ls_remote(home.path(), &repo_url(&c, &c.owner_token, PROJECT)).await;
    assert!(refs_a.len() >= 5, "{refs_a:?}");
    assert_eq!(refs_a, refs_b, "same seed, same SHAs");
    assert_ne!(refs_a, refs_c, "another seed, another history");
    // Also true for what the library reports without HTTP.
    assert_eq!(
        a.sim.git.refs(PROJECT).expect("refs"),
        b.sim.git.refs(PROJECT).expect("refs")
    );
    for sim in [a, b, c] {
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn push_mirrors_into_a_new_project_on_an_empty_destination() {
    let (source, dest) = tokio::join!(
        RunningSim::start(SimConfig::new(Dataset::Small, 7)),
        RunningSim::start(SimConfig::new(Dataset::Empty, 7)),
    );
    let (source, dest) = (source.expect("source"), dest.expect("destination"));
    let c = client();
    let group: serde_json::Value = c
        .get(format!("{}/api/v4/groups/imported", dest.url))
        .header("PRIVATE-TOKEN", &dest.owner_token)
        .send()
        .await
        .expect("GET group")
        .json()
        .await
        .expect("json");
    let created = c
        .post(format!("{}/api/v4/projects", dest.url))
        .header("PRIVATE-TOKEN", &dest.owner_token)
        .json(&serde_json::json!({"name": "API", "path": "api", "namespace_id": group["id"]}))
        .send()
        .await
        .expect("POST project");
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    assert_eq!(created["empty_repo"], true);

    let home = tempfile::tempdir().expect("tempdir");
    let mirror = home.path().join("mirror.git");
    let mirror_str = mirror.to_str().expect("utf-8 path");
    let from = repo_url(&source, &source.owner_token, PROJECT);
    let to = repo_url(&dest, &dest.owner_token, "imported/api");
    git_ok(
        home.path(),
        &["clone", "--quiet", "--mirror", &from, mirror_str],
    )
    .await;
    git_ok(
        home.path(),
        &["-C", mirror_str, "push", "--quiet", "--mirror", &to],
    )
    .await;

    assert_eq!(
        ls_remote(home.path(), &from).await,
        ls_remote(home.path(), &to).await,
        "every branch and tag arrived with the same SHA"
    );
    let project: serde_json::Value = c
        .get(format!("{}/api/v4/projects/imported%2Fapi", dest.url))
        .header("PRIVATE-TOKEN", &dest.owner_token)
        .send()
        .await
        .expect("GET project")
        .json()
        .await
        .expect("json");
    assert_eq!(project["empty_repo"], false, "a push fills the repository");
    source.shutdown().await;
    dest.shutdown().await;
}

#[tokio::test]
async fn gitlab_answers_401_403_404_for_git_over_http() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let c = client();
    let info_refs =
        |service: &str| format!("{}/{PROJECT}.git/info/refs?service=git-{service}", sim.url);

    // No credentials on a private project: ask for them, as GitLab does.
    let resp = c
        .get(info_refs("upload-pack"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Basic realm="GitLab""#
    );
    // A wrong token is also a 401.
    let resp = c
        .get(info_refs("upload-pack"))
        .basic_auth("oauth2", Some("not-a-token"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    // A user who cannot see the project gets a 404, not a hint that it exists.
    let eve = sim.token_for("eve").expect("eve's token");
    let resp = c
        .get(info_refs("upload-pack"))
        .basic_auth("eve", Some(&eve))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    // A reporter may clone but not push.
    let dmitri = sim.token_for("dmitri").expect("dmitri's token");
    let resp = c
        .get(info_refs("upload-pack"))
        .basic_auth("any-name", Some(&dmitri))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/x-git-upload-pack-advertisement"
    );
    let resp = c
        .get(info_refs("receive-pack"))
        .basic_auth("any-name", Some(&dmitri))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    // A project that does not exist is a 404 for a signed-in user.
    let resp = c
        .get(format!(
            "{}/acme/nope.git/info/refs?service=git-upload-pack",
            sim.url
        ))
        .basic_auth("oauth2", Some(&sim.owner_token))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);

    // The git client reports the refusal and does not prompt.
    let home = tempfile::tempdir().expect("tempdir");
    let out = git(
        home.path(),
        &["ls-remote", &repo_url(&sim, "not-a-token", PROJECT)],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Authentication failed") || stderr.contains("401"),
        "{stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn gzip_compressed_upload_pack_requests_are_inflated() {
    use std::io::Write;
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let main = sim.sim.git.refs(PROJECT).expect("refs")["refs/heads/main"].clone();
    // Protocol v0: one want, then done; the same body git sends, compressed the way git does.
    let want = format!("want {main}\n");
    let body = format!("{:04x}{want}0000{:04x}done\n", want.len() + 4, 9);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let resp = client()
        .post(format!("{}/{PROJECT}.git/git-upload-pack", sim.url))
        .basic_auth("oauth2", Some(&sim.owner_token))
        .header("Content-Type", "application/x-git-upload-pack-request")
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/x-git-upload-pack-result"
    );
    let bytes = resp.bytes().await.expect("body");
    assert!(
        bytes.starts_with(b"0008NAK\n"),
        "{:?}",
        &bytes[..bytes.len().min(32)]
    );
    assert!(bytes.windows(4).any(|w| w == b"PACK"), "a pack follows");
    sim.shutdown().await;
}

/// `Authorization: Basic base64(oauth2:<token>)`, for `git -c http.extraHeader=...`.
fn basic_header(token: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("oauth2:{token}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Authorization: Basic {out}")
}

#[tokio::test]
async fn snippet_repositories_clone_with_history_under_the_project_rules() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let c = client();
    let snippets: Vec<serde_json::Value> = c
        .get(format!(
            "{}/api/v4/projects/acme%2Fbackend%2Fapi/snippets",
            sim.url
        ))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .expect("GET snippets")
        .json()
        .await
        .expect("json");
    let snippet = snippets
        .iter()
        .find(|s| s["title"] == "Example request")
        .expect("the API project's snippet");
    let id = snippet["id"].as_u64().expect("id");
    let repo = forge_sim::git::snippet_repo_path(PROJECT, id);
    assert_eq!(
        snippet["http_url_to_repo"],
        format!("{}/{repo}.git", sim.url),
        "the API names the repository it serves"
    );

    // Cloned with the token in a header, as a client that keeps tokens out of URLs does.
    let home = tempfile::tempdir().expect("tempdir");
    let dest = home.path().join("snippet");
    let dest_str = dest.to_str().expect("utf-8 path");
    let header = basic_header(&sim.owner_token);
    let url = format!("{}/{repo}.git", sim.url);
    git_ok(
        home.path(),
        &[
            "-c",
            &format!("http.extraHeader={header}"),
            "clone",
            "--quiet",
            &url,
            dest_str,
        ],
    )
    .await;
    let content = std::fs::read_to_string(dest.join("request.sh")).expect("the snippet's file");
    let raw = c
        .get(format!(
            "{}/api/v4/projects/acme%2Fbackend%2Fapi/snippets/{id}/raw",
            sim.url
        ))
        .header("PRIVATE-TOKEN", &sim.owner_token)
        .send()
        .await
        .expect("GET raw")
        .text()
        .await
        .expect("text");
    assert_eq!(content, raw, "the repository holds the snippet's content");
    let notes = std::fs::read_to_string(dest.join("NOTES.md")).expect("NOTES.md");
    assert!(notes.contains("Example request"), "{notes}");
    let count = git_ok(
        home.path(),
        &["-C", dest_str, "rev-list", "--count", "HEAD"],
    )
    .await;
    assert_eq!(count.trim(), "2");
    let head = git_ok(home.path(), &["-C", dest_str, "rev-parse", "HEAD"]).await;
    let refs = sim.sim.git.refs(&repo).expect("refs");
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs["refs/heads/main"], head.trim());
    assert_eq!(
        sim.sim.git.file_at_head(&repo, "request.sh").expect("read"),
        Some(content.into_bytes())
    );

    // The project's rules: a reporter clones but does not push; strangers see nothing.
    let info_refs = |path: &str, service: &str| {
        format!("{}/{path}.git/info/refs?service=git-{service}", sim.url)
    };
    let dmitri = sim.token_for("dmitri").expect("dmitri's token");
    let eve = sim.token_for("eve").expect("eve's token");
    let web_snippet = sim
        .sim
        .read()
        .snippets
        .all()
        .map(|s| s.id)
        .find(|other| *other != id)
        .expect("another project's snippet");
    for (path, service, token, status) in [
        (repo.as_str(), "upload-pack", Some(&dmitri), 200),
        (repo.as_str(), "receive-pack", Some(&dmitri), 403),
        (repo.as_str(), "receive-pack", Some(&sim.owner_token), 200),
        (repo.as_str(), "upload-pack", Some(&eve), 404),
        (repo.as_str(), "upload-pack", None, 401),
        (
            &forge_sim::git::snippet_repo_path(PROJECT, web_snippet),
            "upload-pack",
            Some(&sim.owner_token),
            404,
        ),
        (
            &forge_sim::git::snippet_repo_path(PROJECT, 999_999),
            "upload-pack",
            Some(&sim.owner_token),
            404,
        ),
    ] {
        let mut req = c.get(info_refs(path, service));
        if let Some(token) = token {
            req = req.basic_auth("oauth2", Some(token));
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), status, "{service} of {path}");
    }
    sim.shutdown().await;
}

/// In a workspace build reqwest's TLS comes without a crypto provider (the appliance picks ring):
/// install it before the first client is built.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

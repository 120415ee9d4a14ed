//! Git LFS objects from a forge: the batch API (`POST <repo>.git/info/lfs/objects/batch`, the
//! `download` operation, `basic` transfer) says where each object is, and each is streamed to disk
//! from there, its size and sha256 (its oid) checked as it arrives.
//!
//! The token goes only to the forge's own origin, as git sends it (HTTP Basic, `oauth2:<token>`). A
//! download on another origin (object storage, a pre-signed URL) gets no `Authorization`, and none
//! of the action's headers that carries the token (GitLab repeats the client's own `Authorization`
//! in every action); it must be https unless the forge itself is plain http or the host is loopback.
//! Redirects are never followed. The token is never logged or put in a URL.

use super::ForgeError;
use super::client::ForgeClient;
use base64::Engine as _;
use futures_util::StreamExt as _;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use url::Url;

const LFS_JSON: &str = "application/vnd.git-lfs+json";
/// Objects asked for in one batch request (GitLab's limit is far above).
const BATCH: usize = 100;
/// Objects downloaded at once (git-lfs's default `lfs.concurrenttransfers` is 8).
const PARALLEL: usize = 8;
/// How long one object may take to download in all (a stalled one ends by the read deadline).
const OBJECT_DEADLINE: Duration = super::client::DOWNLOAD_DEADLINE;

/// An LFS object on disk, checked against its oid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LfsObject {
    /// The sha256 of its bytes, lowercase hex.
    pub oid: String,
    pub size: u64,
    pub path: PathBuf,
    /// The repositories that point to it, by GitLab's names for them in `lfs-objects.json`
    /// (`project`, `design`): GitLab links the object to each, and keeps it only while one does.
    pub repositories: Vec<&'static str>,
}

/// GitLab's name for the project's own repository in `lfs-objects.json`.
pub const PROJECT_REPOSITORY: &str = "project";
/// GitLab's name for the project's design repository in `lfs-objects.json`.
pub const DESIGN_REPOSITORY: &str = "design";

/// The GitLab name of an `lfs-objects.json` repository type this version knows, or None.
pub fn repository_type(name: &str) -> Option<&'static str> {
    [PROJECT_REPOSITORY, DESIGN_REPOSITORY]
        .into_iter()
        .find(|t| *t == name)
}

/// What a download of a repository's LFS objects gave: the objects, and the ones the forge could not
/// give (oid and its reason).
#[derive(Debug, Default)]
pub struct Downloaded {
    pub objects: Vec<LfsObject>,
    pub missing: Vec<(String, String)>,
}

/// Downloads `wanted` (oid, size) of the repository at `repo_url` (`<base>/<path>.git`) into
/// `dir/<oid>`, through the forge's LFS batch API.
pub async fn download(
    client: &ForgeClient,
    repo_url: &Url,
    wanted: &[(String, u64)],
    dir: &Path,
) -> Result<Downloaded, ForgeError> {
    let batch_url = batch_url(client, repo_url)?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| disk(dir, e))?;
    let mut out = Downloaded::default();
    for chunk in wanted.chunks(BATCH) {
        let answer = batch(client, &batch_url, chunk).await?;
        // Where each object is; downloaded several at a time, as git-lfs does.
        let mut fetches = Vec::new();
        for (oid, size) in chunk {
            let object = answer["objects"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["oid"].as_str() == Some(oid.as_str()));
            let action = object.map(|o| &o["actions"]["download"]);
            let href = action.and_then(|a| a["href"].as_str());
            let Some(href) = href else {
                let why = object
                    .and_then(|o| o["error"]["message"].as_str())
                    .unwrap_or("the forge did not say where it is")
                    .to_string();
                out.missing.push((oid.clone(), why));
                continue;
            };
            let href = match Url::parse(href) {
                Ok(href) => href,
                Err(e) => {
                    out.missing
                        .push((oid.clone(), format!("`{href}` is not a URL: {e}")));
                    continue;
                }
            };
            let headers = action
                .and_then(|a| a["header"].as_object())
                .cloned()
                .unwrap_or_default();
            fetches.push((oid.clone(), *size, href, headers));
        }
        let fetched: Vec<_> = futures_util::stream::iter(fetches.into_iter().map(
            |(oid, size, href, headers)| async move {
                let path = dir.join(&oid);
                let got = fetch(client, &href, &headers, &oid, size, &path).await;
                (oid, size, path, got)
            },
        ))
        .buffered(PARALLEL)
        .collect()
        .await;
        for (oid, size, path, got) in fetched {
            match got {
                Ok(()) => out.objects.push(LfsObject {
                    oid,
                    size,
                    path,
                    repositories: vec![PROJECT_REPOSITORY],
                }),
                // The forge or its object storage cannot be reached: the migration pauses.
                Err(e) if e.is_unreachable() => return Err(e),
                // This object only (refused, or its bytes are not what its pointer says): the
                // others still migrate, and its row names it.
                Err(e) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    out.missing.push((oid, e.message()));
                }
            }
        }
    }
    Ok(out)
}

/// How many of `objects` (oid, size) the repository at `repo_url` holds, as its LFS batch API
/// answers a download for them (one request per hundred objects, no object downloaded): what
/// arrived at a destination, counted there.
pub async fn present(
    client: &ForgeClient,
    repo_url: &Url,
    objects: &[(String, u64)],
) -> Result<u64, ForgeError> {
    let batch_url = batch_url(client, repo_url)?;
    let mut present = 0;
    for chunk in objects.chunks(BATCH) {
        let answer = batch(client, &batch_url, chunk).await?;
        present += chunk
            .iter()
            .filter(|(oid, _)| {
                answer["objects"].as_array().into_iter().flatten().any(|o| {
                    o["oid"].as_str() == Some(oid.as_str())
                        && o["actions"]["download"]["href"].is_string()
                })
            })
            .count() as u64;
    }
    Ok(present)
}

/// `<repo_url>/info/lfs/objects/batch`, for a repository of the client's forge only (the token
/// goes nowhere else).
fn batch_url(client: &ForgeClient, repo_url: &Url) -> Result<Url, ForgeError> {
    let base = client.base();
    if repo_url.origin() != base.origin() {
        return Err(ForgeError::Url(format!(
            "the repository {repo_url} is not on the forge {base}"
        )));
    }
    Url::parse(&format!("{repo_url}/info/lfs/objects/batch"))
        .map_err(|e| ForgeError::Url(e.to_string()))
}

/// One batch request for downloads of `chunk` (oid, size): the forge's answer.
async fn batch(
    client: &ForgeClient,
    batch_url: &Url,
    chunk: &[(String, u64)],
) -> Result<Value, ForgeError> {
    let body = json!({
        "operation": "download",
        "transfers": ["basic"],
        "objects": chunk.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
    });
    retrying(client, batch_url, || async {
        let resp = client
            .http()
            .post(batch_url.clone())
            .header("Authorization", basic(client))
            .header("Accept", LFS_JSON)
            .header("Content-Type", LFS_JSON)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| network("POST", batch_url, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| network("POST", batch_url, &e))?;
        if !status.is_success() {
            return Err(status_error("POST", batch_url, status.as_u16(), &bytes));
        }
        serde_json::from_slice::<Value>(&bytes).map_err(|e| ForgeError::Decode {
            url: batch_url.to_string(),
            message: format!("the LFS batch answer is not JSON: {e}"),
        })
    })
    .await
}

/// `Authorization: Basic` of `oauth2:<token>`, as git sends the token.
fn basic(client: &ForgeClient) -> String {
    let pair = format!("oauth2:{}", client.token().expose_secret());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Streams one object from `href` into `path`, checking its size and sha256 against `oid`.
async fn fetch(
    client: &ForgeClient,
    href: &Url,
    action_headers: &serde_json::Map<String, Value>,
    oid: &str,
    size: u64,
    path: &Path,
) -> Result<(), ForgeError> {
    let base = client.base();
    let own_origin = href.origin() == base.origin();
    let loopback = matches!(href.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let transport_ok = href.scheme() == "https"
        || (href.scheme() == "http" && (base.scheme() == "http" || loopback));
    if !transport_ok || !href.username().is_empty() || href.password().is_some() {
        return Err(ForgeError::Url(format!(
            "LFS object {oid} is at {}, which is not an https URL without credentials",
            shown(href)
        )));
    }
    let secret = client.token().expose_secret().to_string();
    let basic = basic(client);
    retrying(client, href, || async {
        let mut req = client.http().get(href.clone()).timeout(OBJECT_DEADLINE);
        if own_origin {
            req = req.header("Authorization", basic.clone());
        } else {
            // Another origin: its own headers only, never one that carries the token.
            for (name, value) in action_headers {
                let Some(value) = value.as_str() else { continue };
                if name.eq_ignore_ascii_case("authorization")
                    || value.contains(&secret)
                    || value.contains(basic.trim_start_matches("Basic "))
                {
                    continue;
                }
                req = req.header(name.as_str(), value);
            }
        }
        let resp = req.send().await.map_err(|e| network("GET", href, &e))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(status_error("GET", href, status.as_u16(), &bytes));
        }
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| disk(path, e))?;
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| network("GET", href, &e))?;
            got += chunk.len() as u64;
            if got > size {
                break;
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| disk(path, e))?;
        }
        file.sync_all().await.map_err(|e| disk(path, e))?;
        let actual = hex::encode(hasher.finalize());
        if got != size || actual != oid {
            return Err(ForgeError::Decode {
                url: shown(href),
                message: format!(
                    "LFS object {oid} arrived as {got} bytes with sha256 {actual}; its pointer says {size} bytes with sha256 {oid}"
                ),
            });
        }
        Ok(())
    })
    .await
}

/// A URL as it may be shown: without its query (a pre-signed URL's signature) or credentials.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

fn disk(path: &Path, e: std::io::Error) -> ForgeError {
    ForgeError::Decode {
        url: path.display().to_string(),
        message: format!("cannot write {}: {e}", path.display()),
    }
}

fn network(method: &str, url: &Url, e: &reqwest::Error) -> ForgeError {
    // reqwest names the URL in its message: shown without a pre-signed URL's signature.
    let mut message = e.to_string();
    if let Some(full) = e.url() {
        message = message.replace(full.as_str(), &shown(full));
    }
    ForgeError::Network {
        method: method.into(),
        url: shown(url),
        message,
        maybe_applied: false,
    }
}

fn status_error(method: &str, url: &Url, status: u16, body: &[u8]) -> ForgeError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    ForgeError::Status {
        method: method.into(),
        url: shown(url),
        status,
        message,
        correlation_id: None,
        retry_after: None,
        read: method == "GET",
    }
}

/// Runs `attempt` under the client's retry policy, retrying a network error or a 5xx.
async fn retrying<T, F, Fut>(client: &ForgeClient, url: &Url, attempt: F) -> Result<T, ForgeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ForgeError>>,
{
    let what = format!("LFS request to {}", shown(url));
    client
        .retry_work(&what, attempt, |e: &ForgeError| {
            matches!(e, ForgeError::Network { .. }) || e.status().is_some_and(|s| s >= 500)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use std::sync::{Arc, Mutex};

    /// A client of the forge on 127.0.0.1:`port`, with a test token; and the forge's base URL.
    fn client_on(port: u16) -> (ForgeClient, Url) {
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        crate::install_crypto_provider();
        let client = ForgeClient::new(
            base.clone(),
            secrecy::SecretString::from("glpat-lfs-secret".to_string()),
            2,
            Default::default(),
        )
        .unwrap();
        (client, base)
    }

    /// A batch answer to `body`: each object asked for, as `answer(index, oid, object)` gives it.
    fn batch_answer(body: &str, answer: impl Fn(usize, &str, &Value) -> Value) -> String {
        let asked: Value = serde_json::from_str(body).unwrap();
        let objects: Vec<Value> = asked["objects"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, o)| answer(i, o["oid"].as_str().unwrap(), o))
            .collect();
        json!({ "objects": objects }).to_string()
    }

    async fn serve(app: Router) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    /// A forge whose batch answer points each object at `storage` (another origin), repeating the
    /// client's Authorization as GitLab does, and a storage that records what it was sent.
    async fn forge_and_storage(
        body: &'static [u8],
    ) -> (ForgeClient, Url, Arc<Mutex<Vec<String>>>, String) {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let storage = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                let mut all: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                    .collect();
                all.push(uri.to_string());
                log.lock().unwrap().push(all.join("\n"));
                (StatusCode::OK, body)
            }
        });
        let storage_port = serve(storage).await;
        let oid = hex::encode(Sha256::digest(b"the object"));
        let forge = Router::new().fallback(move |headers: HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let oid = hex::encode(Sha256::digest(b"the object"));
            let answer = json!({"objects": [{
                "oid": oid, "size": 10,
                "actions": {"download": {
                    // localhost is another origin than 127.0.0.1.
                    "href": format!("http://localhost:{storage_port}/bucket/{oid}?X-Amz-Signature=abc"),
                    "header": {"Authorization": auth, "X-Storage-Hint": "kept"},
                }}
            }]});
            (StatusCode::OK, answer.to_string())
        });
        let port = serve(forge).await;
        let (client, base) = client_on(port);
        let repo = base.join("acme/app.git").unwrap();
        (client, repo, seen, oid)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_download_on_another_origin_gets_no_token() {
        let (client, repo, seen, oid) = forge_and_storage(b"the object").await;
        let dir = tempfile::tempdir().unwrap();
        let got = download(&client, &repo, &[(oid.clone(), 10)], dir.path())
            .await
            .unwrap();
        assert_eq!(got.objects.len(), 1);
        assert_eq!(std::fs::read(&got.objects[0].path).unwrap(), b"the object");
        let seen = seen.lock().unwrap().join("\n---\n");
        let basic = base64::engine::general_purpose::STANDARD.encode("oauth2:glpat-lfs-secret");
        assert!(!seen.is_empty());
        assert!(
            !seen.contains("glpat-lfs-secret")
                && !seen.contains(&basic)
                && !seen.to_ascii_lowercase().contains("authorization"),
            "{seen}"
        );
        assert!(seen.contains("x-storage-hint: kept"), "{seen}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_object_that_does_not_match_its_oid_is_refused() {
        let (client, repo, _, oid) = forge_and_storage(b"not the 10").await;
        let dir = tempfile::tempdir().unwrap();
        let got = download(&client, &repo, &[(oid.clone(), 10)], dir.path())
            .await
            .unwrap();
        assert!(got.objects.is_empty());
        let [(missing, err)] = got.missing.as_slice() else {
            panic!("one object is missing: {:?}", got.missing)
        };
        assert_eq!(missing, &oid);
        assert!(
            err.contains(&format!("its pointer says 10 bytes with sha256 {oid}")),
            "{err}"
        );
        assert!(
            !err.contains("X-Amz-Signature") && !err.contains("glpat"),
            "{err}"
        );
        assert!(!dir.path().join(&oid).exists(), "the bad bytes are removed");
    }

    /// What a repository holds is what its batch API offers to download; nothing is downloaded.
    #[tokio::test(flavor = "multi_thread")]
    async fn present_counts_the_objects_the_forge_offers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().route(
            "/acme/app.git/info/lfs/objects/batch",
            axum::routing::post(move |body: String| async move {
                batch_answer(&body, |i, oid, o| {
                    if i % 3 == 0 {
                        json!({"oid": oid, "size": o["size"],
                               "error": {"code": 404, "message": "Object does not exist"}})
                    } else {
                        json!({"oid": oid, "size": o["size"], "actions": {"download": {
                            "href": format!("http://127.0.0.1:{port}/objects/{oid}")}}})
                    }
                })
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (client, base) = client_on(port);
        // 150 objects: two batch requests (of 100 and 50), every third of each missing.
        let objects: Vec<(String, u64)> = (0..150).map(|i| (format!("{i:064x}"), 1)).collect();
        let repo = base.join("acme/app.git").unwrap();
        assert_eq!(
            present(&client, &repo, &objects).await.unwrap(),
            150 - 34 - 17
        );
        let elsewhere = Url::parse("http://localhost:1/acme/app.git").unwrap();
        assert!(present(&client, &elsewhere, &objects).await.is_err());
    }

    /// Objects download several at a time, each checked, in the order they were asked for.
    #[tokio::test(flavor = "multi_thread")]
    async fn objects_download_several_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let bodies: Vec<Vec<u8>> = (0..12)
            .map(|i| format!("object {i}").into_bytes())
            .collect();
        let wanted: Vec<(String, u64)> = bodies
            .iter()
            .map(|b| (hex::encode(Sha256::digest(b)), b.len() as u64))
            .collect();
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m) = (now.clone(), max.clone());
        let by_oid: std::collections::HashMap<String, Vec<u8>> = wanted
            .iter()
            .map(|(oid, _)| oid.clone())
            .zip(bodies.clone())
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route(
                "/acme/app.git/info/lfs/objects/batch",
                axum::routing::post(move |body: String| async move {
                    batch_answer(&body, |_, oid, o| {
                        json!({"oid": oid, "size": o["size"], "actions": {"download": {
                            "href": format!("http://127.0.0.1:{port}/objects/{oid}")}}})
                    })
                }),
            )
            .route(
                "/objects/{oid}",
                axum::routing::get(
                    move |axum::extract::Path(oid): axum::extract::Path<String>| {
                        let (n, m, body) = (n.clone(), m.clone(), by_oid[&oid].clone());
                        async move {
                            let at_once = n.fetch_add(1, Ordering::SeqCst) + 1;
                            m.fetch_max(at_once, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            n.fetch_sub(1, Ordering::SeqCst);
                            body
                        }
                    },
                ),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (client, base) = client_on(port);
        let dir = tempfile::tempdir().unwrap();
        let got = download(
            &client,
            &base.join("acme/app.git").unwrap(),
            &wanted,
            dir.path(),
        )
        .await
        .unwrap();
        assert!(got.missing.is_empty(), "{:?}", got.missing);
        let oids: Vec<&str> = got.objects.iter().map(|o| o.oid.as_str()).collect();
        let asked: Vec<&str> = wanted.iter().map(|(oid, _)| oid.as_str()).collect();
        assert_eq!(oids, asked);
        for (object, body) in got.objects.iter().zip(&bodies) {
            assert_eq!(&std::fs::read(&object.path).unwrap(), body);
        }
        let at_once = max.load(Ordering::SeqCst);
        assert!(
            (2..=PARALLEL).contains(&at_once),
            "{at_once} downloads at once"
        );
    }
}

//! Issue designs (GitLab's Design Management) as a migration sees them: the relation export's
//! `designs` and `design_versions` of issues and its `design` file relation (a tar of
//! `design.bundle`), git over HTTP refused for design repositories, designs restored by a project
//! import and by an `import-relation` of issues, and read back through GraphQL and the raw image
//! route.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use forge_sim::model::{LfsRepositoryType, Parent};
use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::{Value, json};

use crate::support;
use support::*;

const ENCODED_API: &str = "acme%2Fbackend%2Fapi";

const DESIGNS_OF_ONE: &str = r#"query($path: ID!, $iid: String) {
  project(fullPath: $path) {
    issue(iid: $iid) {
      iid
      designCollection {
        designs { nodes { id filename fullPath notesCount image } }
        versions { nodes { sha createdAt author { username } } }
      }
    }
  }
}"#;

const DESIGNS_OF_MANY: &str = r#"query($path: ID!, $iids: [String!]) {
  project(fullPath: $path) {
    issues(iids: $iids) {
      nodes {
        iid
        designCollection {
          designs { nodes { id filename fullPath notesCount image } }
          versions { nodes { sha createdAt author { username } } }
        }
      }
    }
  }
}"#;

async fn start(dataset: Dataset) -> RunningSim {
    RunningSim::start(SimConfig::new(dataset, 11))
        .await
        .expect("sim")
}

/// The shas of the source issue #2's design versions, oldest first.
fn source_shas(sim: &RunningSim) -> Vec<String> {
    let store = sim.sim.read();
    let project = store.project_by_path(PROJECT_API).expect("api").id;
    let issue = store
        .issues
        .children(Parent::Project(project))
        .find(|i| i.iid == 2)
        .expect("issue 2")
        .id;
    store
        .design_versions
        .children(Parent::Issue(issue))
        .map(|v| v.sha.clone())
        .collect()
}

/// The source project's LFS objects of its design repository: (oid, bytes).
fn design_objects(sim: &RunningSim) -> Vec<(String, Vec<u8>)> {
    let store = sim.sim.read();
    let project = store.project_by_path(PROJECT_API).expect("api").id;
    store.lfs_objects[&project]
        .iter()
        .filter(|(oid, _)| {
            store
                .lfs_object_types(project, oid)
                .contains(&LfsRepositoryType::Design)
        })
        .map(|(oid, bytes)| (oid.clone(), bytes.clone()))
        .collect()
}

/// The design collection of issue `iid` of `path`, as `client` reads it through GraphQL.
async fn collection(client: &Api, path: &str, iid: &str) -> Value {
    let body = client
        .graphql(DESIGNS_OF_ONE, json!({"path": path, "iid": iid}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["project"]["issue"]["designCollection"].clone()
}

/// What must survive a migration of a collection: everything but ids and image URLs.
fn comparable(collection: &Value) -> Value {
    let designs: Vec<Value> = collection["designs"]["nodes"]
        .as_array()
        .expect("designs")
        .iter()
        .map(|d| json!([d["filename"], d["fullPath"], d["notesCount"]]))
        .collect();
    json!({"designs": designs, "versions": collection["versions"]["nodes"]})
}

/// GET of a raw image URL with a token.
async fn raw_image(client: &Api, url: &str) -> (u16, Vec<u8>) {
    let resp = client
        .http
        .get(url)
        .header("PRIVATE-TOKEN", &client.token)
        .send()
        .await
        .expect("raw image");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// The image bytes of every design of a collection, by filename.
async fn images(client: &Api, collection: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for design in collection["designs"]["nodes"].as_array().expect("designs") {
        let url = design["image"].as_str().expect("image url");
        let (status, bytes) = raw_image(client, url).await;
        assert_eq!(status, 200, "{url}");
        out.insert(design["filename"].as_str().unwrap().to_owned(), bytes);
    }
    out
}

fn ndjson(records: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, record).expect("json");
        out.push(b'\n');
    }
    out
}

/// The members and issues #1 and #2 of the source project's export.
async fn exported_issues(source: &RunningSim) -> (Vec<Value>, Vec<Value>) {
    let api = Api::new(source, &source.owner_token);
    let relations = api.export(ENCODED_API).await;
    let issues = relations["issues"]
        .iter()
        .filter(|i| i["iid"] == 1 || i["iid"] == 2)
        .cloned()
        .collect();
    (relations["project_members"].clone(), issues)
}

/// An archive with the source's design repository and design LFS objects (typed `design`).
fn design_files(source: &RunningSim) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4\n".to_vec());
    files.insert("tree/project.json".to_owned(), b"{}".to_vec());
    let bundle = source
        .sim
        .git
        .bundle(&forge_sim::git::design_path(PROJECT_API))
        .expect("bundle")
        .expect("the design repository has refs");
    files.insert("project.design.bundle".to_owned(), bundle);
    let mut types = serde_json::Map::new();
    for (oid, bytes) in design_objects(source) {
        files.insert(format!("lfs-objects/{oid}"), bytes);
        types.insert(oid, json!(["design"]));
    }
    files.insert(
        "lfs-objects.json".to_owned(),
        serde_json::to_vec(&types).expect("json"),
    );
    files
}

#[tokio::test]
async fn the_export_carries_designs_versions_and_the_design_bundle() {
    let sim = start(Dataset::Small).await;
    let api = Api::new(&sim, &sim.owner_token);
    let shas = source_shas(&sim);
    assert_eq!(shas.len(), 2);
    assert!(shas.iter().all(|s| s.len() == 40), "{shas:?}");

    let relations = api.export(ENCODED_API).await;
    for issue in &relations["issues"] {
        if issue["iid"] != 2 {
            assert_eq!(issue["designs"], json!([]), "{}", issue["iid"]);
            assert_eq!(issue["design_versions"], json!([]), "{}", issue["iid"]);
        }
    }
    let issue = relations["issues"]
        .iter()
        .find(|i| i["iid"] == 2)
        .expect("issue 2");
    let designs = issue["designs"].as_array().expect("designs");
    let names: Vec<&str> = designs
        .iter()
        .map(|d| d["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mockup.png", "flow.svg"]);
    assert_eq!(designs[0]["iid"], 1);
    assert_eq!(designs[1]["iid"], 2);
    assert!(designs[0]["relative_position"].is_i64());
    let notes = designs[0]["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["noteable_type"], "DesignManagement::Design");
    assert!(notes[0]["author"]["name"].is_string());
    assert_eq!(designs[1]["notes"], json!([]));

    let versions = issue["design_versions"].as_array().expect("versions");
    let version_shas: Vec<&str> = versions
        .iter()
        .map(|v| v["sha"].as_str().unwrap())
        .collect();
    assert_eq!(version_shas, shas);
    let events = |v: &Value| -> Vec<(i64, String)> {
        v["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["event"].as_i64().unwrap(),
                    a["design"]["filename"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(events(&versions[0]), [(0, "mockup.png".to_owned())]);
    assert_eq!(
        events(&versions[1]),
        [(0, "flow.svg".to_owned()), (1, "mockup.png".to_owned())]
    );
    assert!(versions[0]["author_id"].is_u64() && versions[0]["created_at"].is_string());
    assert_eq!(versions[1]["actions"][1]["design"]["iid"], 1);

    // The `design` relation: exported whole, a tar of `design.bundle`.
    let statuses = api
        .json(&format!("projects/{ENCODED_API}/export_relations/status"))
        .await;
    let status = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "design")
        .expect("a design relation")
        .clone();
    assert_eq!(status["batched"], false);
    let resp = api
        .get(&format!(
            "projects/{ENCODED_API}/export_relations/download?relation=design"
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("design.tar.gz")
    );
    let entries = untar(&resp.bytes().await.unwrap());
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["design.bundle"]);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("design.bundle");
    std::fs::write(&bundle, &entries["design.bundle"]).unwrap();
    let clone = dir.path().join("clone");
    git_ok(
        dir.path(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "master",
            bundle.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let objects = design_objects(&sim);
    for file in ["mockup.png", "flow.svg"] {
        let pointer = std::fs::read_to_string(clone.join("designs/issue-2").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            pointer.starts_with("version https://git-lfs.github.com/spec/v1"),
            "{pointer}"
        );
        let oid = pointer
            .lines()
            .find_map(|l| l.strip_prefix("oid sha256:"))
            .unwrap();
        assert!(objects.iter().any(|(o, _)| o == oid), "{file}: {oid}");
    }
    // mockup.png has two objects over time, flow.svg one.
    assert_eq!(objects.len(), 3);
    let log = git_ok(&clone, &["rev-list", "HEAD"]);
    assert_eq!(log.lines().rev().collect::<Vec<_>>(), shas);

    // A project without designs exports an empty tar; a batched export leaves `design` whole.
    let resp = api
        .http
        .post(format!("{}/projects/acme%2Fdocs/export_relations", api.url))
        .header("PRIVATE-TOKEN", &api.token)
        .query(&[("batched", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let status = wait_relation(&api, "acme%2Fdocs", "design").await;
    assert_eq!(status["batched"], false, "{status}");
    let resp = api
        .get("projects/acme%2Fdocs/export_relations/download?relation=design")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(untar(&resp.bytes().await.unwrap()).is_empty());
    sim.shutdown().await;
}

async fn wait_relation(api: &Api, project: &str, relation: &str) -> Value {
    for _ in 0..500 {
        let status = api
            .json(&format!(
                "projects/{project}/export_relations/status?relation={relation}"
            ))
            .await;
        if status["status"] == 1 {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the export of {relation} did not finish");
}

/// The regular files of a `.tar.gz`, by path.
fn untar(gz: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut files = BTreeMap::new();
    for entry in tar.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    files
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("the system git")
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn design_repositories_are_refused_over_git_and_their_objects_served_by_lfs() {
    let sim = start(Dataset::Small).await;
    let host = sim.url.trim_start_matches("http://");
    let token = sim.owner_token.clone();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://oauth2:{token}@{host}/{PROJECT_API}.design.git");
    let clone = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || git(&dir, &["clone", "--quiet", &url, "design"])
    })
    .await
    .unwrap();
    assert!(!clone.status.success());
    let stderr = String::from_utf8_lossy(&clone.stderr);
    assert!(
        stderr.contains("Designs are only accessible using the web interface"),
        "{stderr}"
    );

    let http = reqwest::Client::new();
    let (user, password) = ("oauth2", Some(token.clone()));
    let resp = http
        .get(format!(
            "{}/{PROJECT_API}.design.git/info/refs?service=git-upload-pack",
            sim.url
        ))
        .basic_auth(user, password.as_ref())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.text().await.unwrap().trim(),
        "Designs are only accessible using the web interface"
    );
    let resp = http
        .post(format!(
            "{}/{PROJECT_API}.design.git/git-upload-pack",
            sim.url
        ))
        .basic_auth(user, password.as_ref())
        .body("0000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A project that does not exist has no design repository to refuse.
    let resp = http
        .get(format!(
            "{}/acme/nope.design.git/info/refs?service=git-upload-pack",
            sim.url
        ))
        .basic_auth(user, password.as_ref())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The project's LFS batch API serves the design objects (GitLab's `lfs_objects_oids`).
    let objects: Vec<Value> = design_objects(&sim)
        .iter()
        .map(|(oid, bytes)| json!({"oid": oid, "size": bytes.len()}))
        .collect();
    let resp = http
        .post(format!(
            "{}/{PROJECT_API}.git/info/lfs/objects/batch",
            sim.url
        ))
        .basic_auth(user, password.as_ref())
        .header("content-type", "application/vnd.git-lfs+json")
        .body(json!({"operation": "download", "objects": objects}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let batch: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let served = batch["objects"].as_array().unwrap();
    assert_eq!(served.len(), 3);
    assert!(
        served
            .iter()
            .all(|o| o["actions"]["download"]["href"].is_string()),
        "{batch}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_imported_archive_gives_the_designs_back() {
    let source = start(Dataset::Small).await;
    let dest = start(Dataset::Empty).await;
    let src = Api::new(&source, &source.owner_token);
    let api = Api::new(&dest, &dest.admin_token);
    let (members, issues) = exported_issues(&source).await;
    let mut files = design_files(&source);
    files.insert(
        "tree/project/project_members.ndjson".to_owned(),
        ndjson(&members),
    );
    files.insert("tree/project/issues.ndjson".to_owned(), ndjson(&issues));
    api.import_archive("with-designs", &files).await;

    let before = collection(&src, PROJECT_API, "2").await;
    let after = collection(&api, "imported/with-designs", "2").await;
    assert_eq!(comparable(&after), comparable(&before));
    let shas: Vec<&str> = after["versions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sha"].as_str().unwrap())
        .collect();
    let mut expected = source_shas(&source);
    expected.reverse();
    assert_eq!(shas, expected, "newest first");
    let notes: Vec<&Value> = after["designs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["notesCount"])
        .collect();
    assert_eq!(notes, [&json!(1), &json!(0)]);
    // Authors mapped by email: the issue's author made the first version, ada the second.
    assert_eq!(after["versions"]["nodes"][1]["author"]["username"], "bjorn");
    assert_eq!(after["versions"]["nodes"][0]["author"]["username"], "ada");

    // Each image URL is GitLab's, at the issue's latest version, and serves the bytes.
    let design = &after["designs"]["nodes"][0];
    let id = design["id"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        design["image"],
        format!(
            "{}/imported/with-designs/-/design_management/designs/{id}/{}/raw_image",
            dest.url, shas[0]
        )
    );
    let originals = images(&src, &before).await;
    assert_eq!(images(&api, &after).await, originals);
    assert!(originals["mockup.png"].starts_with(b"\x89PNG"));
    assert!(originals["flow.svg"].starts_with(b"<svg"));
    // The first mockup.png is still there at the first version.
    let first = design["image"].as_str().unwrap().replace(shas[0], shas[1]);
    let (status, old) = raw_image(&api, &first).await;
    assert_eq!(status, 200);
    assert!(old.starts_with(b"\x89PNG") && old != originals["mockup.png"]);
    // Bearer works as PRIVATE-TOKEN does; no token is refused; an unknown commit is not found.
    let url = design["image"].as_str().unwrap();
    let resp = api
        .http
        .get(url)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = api.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let missing = url.replace(shas[0], &"0".repeat(40));
    assert_eq!(raw_image(&api, &missing).await.0, 404);

    // The same through `issues(iids:)`: issue #1 has no designs.
    let body = api
        .graphql(
            DESIGNS_OF_MANY,
            json!({"path": "imported/with-designs", "iids": ["1", "2"]}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["project"]["issues"]["nodes"]
        .as_array()
        .unwrap();
    let by_iid: BTreeMap<&str, &Value> = nodes
        .iter()
        .map(|n| (n["iid"].as_str().unwrap(), &n["designCollection"]))
        .collect();
    assert_eq!(by_iid.keys().collect::<Vec<_>>(), [&"1", &"2"]);
    assert_eq!(by_iid["1"]["designs"]["nodes"], json!([]));
    assert_eq!(by_iid["1"]["versions"]["nodes"], json!([]));
    assert_eq!(comparable(by_iid["2"]), comparable(&before));

    // The design LFS objects were kept with their type.
    {
        let store = dest.sim.read();
        let project = store.project_by_path("imported/with-designs").unwrap().id;
        for (oid, _) in design_objects(&source) {
            assert_eq!(
                store.lfs_object_types(project, &oid),
                std::collections::BTreeSet::from([LfsRepositoryType::Design])
            );
        }
    }
    source.shutdown().await;
    dest.shutdown().await;
}

#[tokio::test]
async fn an_import_relation_of_issues_brings_their_designs() {
    let source = start(Dataset::Small).await;
    let dest = start(Dataset::Empty).await;
    let src = Api::new(&source, &source.owner_token);
    let api = Api::new(&dest, &dest.admin_token);
    // The project first, with its design repository and objects but no issues.
    api.import_archive("later", &design_files(&source)).await;

    let (members, mut issues) = exported_issues(&source).await;
    // An issue whose version names a commit the design repository does not have.
    let mut stray = issues[0].clone();
    stray["iid"] = json!(50);
    stray["designs"] = json!([{"iid": 7, "project_id": 1, "filename": "ghost.png",
                              "relative_position": null, "notes": []}]);
    stray["design_versions"] = json!([{
        "created_at": "2024-01-02T03:04:05.000Z", "sha": "1".repeat(40), "author_id": 1,
        "namespace_id": 1,
        "actions": [{"event": 0, "design": {"iid": 7, "project_id": 1, "filename": "ghost.png",
                                            "relative_position": null}}]
    }]);
    issues.push(stray);
    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4".to_vec());
    files.insert("tree/project.json".to_owned(), b"{}".to_vec());
    files.insert(
        "tree/project/project_members.ndjson".to_owned(),
        ndjson(&members),
    );
    files.insert("tree/project/issues.ndjson".to_owned(), ndjson(&issues));
    let archive = tar_gz(&files);

    let before = collection(&src, PROJECT_API, "2").await;
    for _round in 0..2 {
        let (status, body) = api
            .post_form(
                "projects/import-relation",
                &[("path", "imported/later"), ("relation", "issues")],
                Some(archive.clone()),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let trackers = api.wait_relation_imports("imported%2Flater").await;
        assert!(
            trackers.iter().all(|t| t["status"] == "finished"),
            "{trackers:?}"
        );
        // A second run skips the imported issues, and so their designs.
        let after = collection(&api, "imported/later", "2").await;
        assert_eq!(comparable(&after), comparable(&before));
        assert_eq!(images(&api, &after).await, images(&src, &before).await);
    }
    let ghost = collection(&api, "imported/later", "50").await;
    let designs = ghost["designs"]["nodes"].as_array().unwrap();
    assert_eq!(designs.len(), 1);
    assert_eq!(designs[0]["filename"], "ghost.png");
    assert_eq!(designs[0]["fullPath"], "designs/issue-50/ghost.png");
    assert_eq!(ghost["versions"]["nodes"][0]["sha"], "1".repeat(40));
    let url = designs[0]["image"].as_str().unwrap();
    assert_eq!(raw_image(&api, url).await.0, 404);
    {
        let store = dest.sim.read();
        assert!(
            store
                .relation_imports
                .iter()
                .all(|t| t.failed_relations.is_empty())
        );
        assert_eq!(store.designs.len(), 3);
        assert_eq!(store.design_versions.len(), 3);
    }
    source.shutdown().await;
    dest.shutdown().await;
}

//! A project's files beside its records: its wiki (pages and the wiki repository's refs), its
//! uploads (the files its issues and notes link to), its Git LFS objects and its snippets'
//! repositories, checked live and through a bundle (export,
//! verify, replay), through both simulators' REST APIs and their git repositories, field by field
//! and byte for byte, as a user would compare them.

use crate::bundle_common;
use crate::common;

use bundle_common::{export, replay_cmd, text, verify};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The projects of the small dataset that have a wiki, and one that has none.
const WITH_WIKI: [&str; 2] = ["acme/backend/api", "acme/docs"];
const WITHOUT_WIKI: &str = "acme/backend/services/billing";

/// A project's wiki pages as a user reads them: the list (with content) and each page by its slug,
/// which must agree; sorted by slug.
async fn wiki_pages(sim: &forge_sim::RunningSim, token: &str, project: &str) -> Vec<Value> {
    let listed = get(
        &sim.url,
        token,
        &format!("projects/{}/wikis?with_content=1", enc(project)),
    )
    .await
    .unwrap_or_else(|| panic!("{project} has a wikis endpoint"));
    let mut pages = Vec::new();
    for page in listed.as_array().expect("a list of pages") {
        let slug = page["slug"].as_str().expect("a slug");
        let one = get(
            &sim.url,
            token,
            &format!("projects/{}/wikis/{}", enc(project), enc(slug)),
        )
        .await
        .unwrap_or_else(|| panic!("{project}: page {slug} reads by its slug"));
        let fields = json!({
            "slug": one["slug"], "title": one["title"], "format": one["format"],
            "content": one["content"],
        });
        assert_eq!(one["content"], page["content"], "{project}: {slug}");
        assert_eq!(one["title"], page["title"], "{project}: {slug}");
        pages.push(fields);
    }
    pages.sort_by(|a, b| a["slug"].as_str().cmp(&b["slug"].as_str()));
    pages
}

/// Every ref of the repository at `repo` (a project's path, `<project>.wiki`,
/// `<project>/snippets/<id>`); none when there is no such repository.
fn repo_refs(sim: &forge_sim::RunningSim, repo: &str) -> BTreeMap<String, String> {
    let path = sim.sim.git.repo_path(repo).unwrap();
    if !path.join("HEAD").is_file() {
        return BTreeMap::new();
    }
    sim.sim.git.refs(repo).expect("read the repository's refs")
}

/// Every ref of a project's wiki repository (none when it has no wiki repository).
fn wiki_refs(sim: &forge_sim::RunningSim, project: &str) -> BTreeMap<String, String> {
    repo_refs(sim, &format!("{project}.wiki"))
}

/// Every ref of a snippet's repository (none when it has none).
fn snippet_refs(sim: &forge_sim::RunningSim, project: &str, id: u64) -> BTreeMap<String, String> {
    repo_refs(sim, &forge_sim::git::snippet_repo_path(project, id))
}

/// Each snippet of the source project arrived with its repository: the same title and content and
/// the same refs at the same commits (restored from its bundle, not remade from its content); the
/// row counts the repositories. Returns how many snippet repositories were compared.
async fn assert_same_snippets(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    entity: &Value,
    src_path: &str,
    dest_path: &str,
) -> usize {
    let list = async |sim: &forge_sim::RunningSim, token: &str, path: &str| {
        let mut s = get_all(&sim.url, token, &format!("projects/{}/snippets", enc(path))).await;
        s.sort_by_key(|s| s["title"].as_str().unwrap_or("").to_string());
        s
    };
    let want = list(src, &src.owner_token, src_path).await;
    let got = list(dst, &dst.admin_token, dest_path).await;
    let titles = |v: &[Value]| -> Vec<Value> { v.iter().map(|s| s["title"].clone()).collect() };
    assert_eq!(titles(&got), titles(&want), "{src_path}: snippets");
    let mut repositories = 0;
    for (w, g) in want.iter().zip(&got) {
        for k in ["title", "description", "file_name", "created_at"] {
            assert_eq!(g[k], w[k], "{src_path}: snippet {k}");
        }
        let source_refs = snippet_refs(src, src_path, w["id"].as_u64().unwrap());
        let dest_refs = snippet_refs(dst, dest_path, g["id"].as_u64().unwrap());
        assert_eq!(
            dest_refs, source_refs,
            "{src_path}: snippet {} refs",
            w["title"]
        );
        if !source_refs.is_empty() {
            repositories += 1;
        }
    }
    assert_row(entity, "snippet_repositories", repositories, src_path);
    repositories
}

/// The `relation` row of `project`'s report entity finished and counts exactly `n` at the source,
/// read and at the destination.
fn assert_row(entity: &Value, relation: &str, n: usize, project: &str) {
    let row = stat(entity, relation);
    assert_eq!(row["status"], "finished", "{project}: {row}");
    for k in ["source", "fetched", "imported"] {
        assert_eq!(row[k], n as u64, "{project}: {relation}.{k}: {row}");
    }
}

/// The source's wiki arrived at `dest_path`: the same pages (slug, title, format, content), the
/// same refs at the same commits, and the `wiki` row counts exactly the pages.
async fn assert_same_wiki(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    entity: &Value,
    src_path: &str,
    dest_path: &str,
) {
    let want = wiki_pages(src, &src.owner_token, src_path).await;
    let got = wiki_pages(dst, &dst.admin_token, dest_path).await;
    assert_eq!(got, want, "{src_path}: wiki pages");
    assert_eq!(
        wiki_refs(dst, dest_path),
        wiki_refs(src, src_path),
        "{src_path}: the wiki's refs and commit ids"
    );
    assert_row(entity, "wiki", want.len(), src_path);
}

/// The upload links of a project's issues and their notes (`/uploads/<secret>/<name>`), sorted.
async fn upload_links(sim: &forge_sim::RunningSim, token: &str, project: &str) -> Vec<String> {
    let mut links = Vec::new();
    for issue in get_all(
        &sim.url,
        token,
        &format!("projects/{}/issues", enc(project)),
    )
    .await
    {
        let iid = issue["iid"].as_u64().unwrap();
        let mut texts = vec![issue["description"].as_str().unwrap_or("").to_string()];
        for note in get_all(
            &sim.url,
            token,
            &format!("projects/{}/issues/{iid}/notes", enc(project)),
        )
        .await
        {
            texts.push(note["body"].as_str().unwrap_or("").to_string());
        }
        for text in texts {
            links.extend(appliance::relations::uploads::links(&text));
        }
    }
    links.sort();
    links.dedup();
    links
}

/// The bytes a project's upload link serves, through the uploads API.
async fn upload_bytes(
    sim: &forge_sim::RunningSim,
    token: &str,
    project: &str,
    link: &str,
) -> Option<Vec<u8>> {
    let rest = link.strip_prefix("/uploads/").unwrap();
    get_bytes(
        &sim.url,
        token,
        &format!("projects/{}/uploads/{rest}", enc(project)),
    )
    .await
}

/// Every file the source project's issues and notes link to is served by the destination under
/// the same link, byte for byte; the destination lists as many uploads as the source; and the
/// `uploads` row counts them exactly. Returns how many links were checked.
async fn assert_same_uploads(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    entity: &Value,
    src_path: &str,
    dest_path: &str,
) -> usize {
    let links = upload_links(src, &src.owner_token, src_path).await;
    assert_eq!(
        upload_links(dst, &dst.admin_token, dest_path).await,
        links,
        "{src_path}: the links arrive unchanged"
    );
    for link in &links {
        let want = upload_bytes(src, &src.owner_token, src_path, link)
            .await
            .unwrap_or_else(|| panic!("{src_path}: the source serves {link}"));
        let got = upload_bytes(dst, &dst.admin_token, dest_path, link).await;
        assert_eq!(
            got.as_ref(),
            Some(&want),
            "{src_path}: {link} at the destination"
        );
    }
    let listed = |sim: &forge_sim::RunningSim, token: &str, path: &str| {
        let (url, token, path) = (sim.url.clone(), token.to_string(), path.to_string());
        async move { get_all(&url, &token, &format!("projects/{}/uploads", enc(&path))).await }
    };
    let want = listed(src, &src.owner_token, src_path).await;
    let got = listed(dst, &dst.admin_token, dest_path).await;
    let names = |v: &[Value]| {
        let mut n: Vec<(String, u64)> = v
            .iter()
            .map(|u| {
                (
                    u["filename"].as_str().unwrap().to_string(),
                    u["size"].as_u64().unwrap(),
                )
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&got),
        names(&want),
        "{src_path}: uploads (name, size)"
    );
    assert_row(entity, "uploads", want.len(), src_path);
    links.len()
}

/// Every LFS object of a project, read as git-lfs would: the batch API (download) with the token
/// as git's Basic password, then each object from where the batch answer points; by oid.
async fn lfs_objects(
    sim: &forge_sim::RunningSim,
    token: &str,
    project: &str,
) -> BTreeMap<String, Vec<u8>> {
    let oids: Vec<(String, u64)> = {
        let store = sim.sim.read();
        let id = store.project_by_path(project).expect("the project").id;
        store
            .lfs_objects
            .get(&id)
            .into_iter()
            .flatten()
            .map(|(oid, bytes)| (oid.clone(), bytes.len() as u64))
            .collect()
    };
    if oids.is_empty() {
        return BTreeMap::new();
    }
    let client = http();
    let answer: Value = client
        .post(format!("{}/{project}.git/info/lfs/objects/batch", sim.url))
        .basic_auth("oauth2", Some(token))
        .header("Accept", "application/vnd.git-lfs+json")
        .json(&json!({
            "operation": "download",
            "objects": oids.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
        }))
        .send()
        .await
        .expect("the batch API answers")
        .json()
        .await
        .expect("the batch answer is JSON");
    let mut out = BTreeMap::new();
    for object in answer["objects"].as_array().expect("objects") {
        let oid = object["oid"].as_str().unwrap().to_string();
        let href = object["actions"]["download"]["href"]
            .as_str()
            .unwrap_or_else(|| panic!("{project}: {oid} can be downloaded: {object}"));
        let bytes = client
            .get(href)
            .basic_auth("oauth2", Some(token))
            .send()
            .await
            .expect("the object downloads")
            .bytes()
            .await
            .unwrap()
            .to_vec();
        assert_eq!(bundle_common::sha256_hex(&bytes), oid, "{project}: {oid}");
        out.insert(oid, bytes);
    }
    out
}

/// The source project's LFS objects arrived at `dest_path`, byte for byte (their pointers came
/// with the repository), and the `lfs_objects` row counts them exactly.
async fn assert_same_lfs(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    entity: &Value,
    src_path: &str,
    dest_path: &str,
) -> usize {
    let want = lfs_objects(src, &src.owner_token, src_path).await;
    let got = lfs_objects(dst, &dst.admin_token, dest_path).await;
    assert_eq!(got, want, "{src_path}: LFS objects");
    // Each linked to the same repositories (its design repository's are GitLab's to keep only
    // while a design points to them).
    let types = |sim: &forge_sim::RunningSim, path: &str| {
        let store = sim.sim.read();
        let id = store.project_by_path(path).expect("the project").id;
        want.keys()
            .map(|oid| {
                (
                    oid.clone(),
                    format!("{:?}", store.lfs_object_types(id, oid)),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        types(dst, dest_path),
        types(src, src_path),
        "{src_path}: the repositories of its LFS objects"
    );
    assert_row(entity, "lfs_objects", want.len(), src_path);
    want.len()
}

/// The project that has designs in the small dataset, and its issue that holds them.
const WITH_DESIGNS: (&str, &str) = ("acme/backend/api", "2");
/// The LFS objects of the API project: two of its repository's, three of its designs' (the first
/// version's mockup, the second's, and the flow diagram).
const API_LFS_OBJECTS: usize = 5;

const DESIGNS_OF_ISSUES: &str = r#"query($path: ID!, $first: Int, $after: String) {
  project(fullPath: $path) {
    issues(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        iid
        designCollection {
          designs { nodes { filename fullPath notesCount image } }
          versions { nodes { sha createdAt author { username } } }
        }
      }
    }
  }
}"#;

/// Each issue's designs as a user reads them through GraphQL (filename, path, note count and the
/// image's bytes, downloaded from the URL GitLab gives), with its versions (sha, date, author);
/// issues without designs left out; by iid.
async fn designs(
    sim: &forge_sim::RunningSim,
    token: &str,
    project: &str,
) -> BTreeMap<String, Value> {
    let issues = graphql_all(
        &sim.url,
        token,
        DESIGNS_OF_ISSUES,
        json!({ "path": project }),
        &["project", "issues"],
    )
    .await;
    let mut out = BTreeMap::new();
    for issue in issues {
        let collection = &issue["designCollection"];
        let mut designs = Vec::new();
        for d in collection["designs"]["nodes"].as_array().unwrap() {
            let image = d["image"].as_str().expect("an image URL");
            assert!(image.starts_with(&sim.url), "{project}: {image}");
            let resp = http()
                .get(image)
                .header("PRIVATE-TOKEN", token)
                .send()
                .await
                .expect("the image answers");
            assert!(
                resp.status().is_success(),
                "{project}: {image}: {}",
                resp.status()
            );
            let bytes = resp.bytes().await.unwrap();
            designs.push(json!({
                "filename": d["filename"],
                "fullPath": d["fullPath"],
                "notesCount": d["notesCount"],
                "image_sha256": bundle_common::sha256_hex(&bytes),
            }));
        }
        let versions = collection["versions"]["nodes"].clone();
        if designs.is_empty() && versions.as_array().is_none_or(|v| v.is_empty()) {
            continue;
        }
        out.insert(
            issue["iid"].as_str().unwrap().to_string(),
            json!({ "designs": designs, "versions": versions }),
        );
    }
    out
}

/// The source project's designs arrived at `dest_path`: on the same issues, with the same files
/// (byte for byte), note counts and versions (shas, dates, mapped authors); the `designs` row counts
/// exactly the designs. How many designs were compared.
async fn assert_same_designs(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    entity: &Value,
    src_path: &str,
    dest_path: &str,
) -> usize {
    let want = designs(src, &src.owner_token, src_path).await;
    let got = designs(dst, &dst.admin_token, dest_path).await;
    // fullPath names the issue (`designs/issue-<iid>/<filename>`), the same at both ends.
    assert_eq!(got, want, "{src_path}: designs");
    let n: usize = want
        .values()
        .map(|c| c["designs"].as_array().unwrap().len())
        .sum();
    assert_row(entity, "designs", n, src_path);
    n
}

fn migrate_projects_cmd(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    data: &std::path::Path,
    projects: &[&str],
) -> std::process::Command {
    let mut cmd = appliance();
    cmd.args(["migrate", "--json", "--to", "imported"]);
    for p in projects {
        cmd.args(["--project", p]);
    }
    cmd.args(["--source-url", &src.url, "--destination-url", &dst.url])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    cmd
}

fn entity<'r>(report: &'r Value, source_path: &str) -> &'r Value {
    report["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source_full_path"] == source_path)
        .unwrap_or_else(|| panic!("{source_path} is in the report: {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_migrates_live_with_its_wiki_uploads_and_lfs_objects() {
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let projects = [WITH_WIKI[0], WITH_WIKI[1], WITHOUT_WIKI];
    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &projects)).await;
    assert!(out.status.success(), "migrate failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");

    for project in WITH_WIKI {
        let e = entity(&r, project);
        let dest_path = e["destination_full_path"].as_str().unwrap();
        let pages = wiki_pages(&src, &src.owner_token, project).await;
        assert!(pages.len() >= 2, "{project} has a wiki: {pages:?}");
        assert!(!wiki_refs(&src, project).is_empty());
        assert_same_wiki(&src, &dst, e, project, dest_path).await;
    }
    // Uploads linked from an issue and from a note arrive under the same links.
    let api = entity(&r, WITH_WIKI[0]);
    let linked = assert_same_uploads(
        &src,
        &dst,
        api,
        WITH_WIKI[0],
        api["destination_full_path"].as_str().unwrap(),
    )
    .await;
    assert!(
        linked >= 3,
        "the issue's and the note's uploads were checked"
    );
    let lfs = assert_same_lfs(
        &src,
        &dst,
        api,
        WITH_WIKI[0],
        api["destination_full_path"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        lfs, API_LFS_OBJECTS,
        "the API project's LFS files were checked"
    );
    // Its issue's designs arrive with their files, versions and notes.
    let designs = assert_same_designs(
        &src,
        &dst,
        api,
        WITH_DESIGNS.0,
        api["destination_full_path"].as_str().unwrap(),
    )
    .await;
    assert_eq!(designs, 2, "the issue's two designs were checked");
    for project in [WITH_WIKI[1], WITHOUT_WIKI] {
        let e = entity(&r, project);
        let dest = e["destination_full_path"].as_str().unwrap();
        assert_same_uploads(&src, &dst, e, project, dest).await;
        assert_eq!(assert_same_lfs(&src, &dst, e, project, dest).await, 0);
    }
    // Snippets arrive with their repositories, commit for commit.
    let mut snippets = 0;
    for project in projects {
        let e = entity(&r, project);
        let dest = e["destination_full_path"].as_str().unwrap();
        snippets += assert_same_snippets(&src, &dst, e, project, dest).await;
    }
    assert!(snippets > 0, "a snippet repository was compared");
    // A project without a wiki gets none, and its row counts nothing.
    let e = entity(&r, WITHOUT_WIKI);
    let dest_path = e["destination_full_path"].as_str().unwrap();
    assert_eq!(
        wiki_pages(&dst, &dst.admin_token, dest_path).await,
        Vec::<Value>::new()
    );
    assert_eq!(wiki_refs(&dst, dest_path), BTreeMap::new());
    assert_row(e, "wiki", 0, WITHOUT_WIKI);
    assert!(
        !explain(&out).contains(&src.owner_token) && !explain(&out).contains(&dst.admin_token),
        "a token was printed"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiki_uploads_and_lfs_objects_travel_through_a_bundle() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("acme.bundle");
    export(&src, &bundle, &dir.path().join("export-data"), &[]).await;
    let v = verify(&[&bundle], &[]).await;
    assert!(v.status.success(), "{}", text(&v));

    // The bundle carries each wiki as a file member, and no wiki for a project without one.
    let mut cmd = appliance();
    cmd.arg("inspect").arg(&bundle).arg("--json");
    let info: Value = serde_json::from_slice(&run(cmd).await.stdout).expect("inspect --json");
    for e in info["entities"].as_array().unwrap() {
        if e["type"] != "project" {
            continue;
        }
        let path = e["source_full_path"].as_str().unwrap();
        let size = e["relations"]["wiki"]["size"].as_u64().unwrap_or(0);
        assert_eq!(size > 0, WITH_WIKI.contains(&path), "{path}: {e}");
    }
    let members: Vec<String> = bundle_common::members(&std::fs::read(&bundle).unwrap())
        .into_iter()
        .map(|m| m.path)
        .filter(|p| p.ends_with(".wiki.bundle"))
        .collect();
    assert_eq!(
        members,
        vec![
            "repositories/acme/backend/api.wiki.bundle".to_string(),
            "repositories/acme/docs.wiki.bundle".to_string()
        ]
    );

    let mut cmd = replay_cmd(&dst, &bundle, &dir.path().join("replay-data"));
    cmd.arg("--json")
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.admin_token);
    let out = run(cmd).await;
    assert!(out.status.success(), "replay failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    for project in WITH_WIKI.iter().chain([&WITHOUT_WIKI]) {
        let e = entity(&r, project);
        assert_eq!(e["status"], "finished", "{e:#}");
        let dest_path = e["destination_full_path"].as_str().unwrap();
        assert_same_wiki(&src, &dst, e, project, dest_path).await;
    }
    // Every project's uploads, by the same links, byte for byte, and its snippets' repositories.
    let (mut linked, mut lfs, mut snippets, mut designs) = (0, 0, 0, 0);
    for e in r["entities"].as_array().unwrap() {
        if e["entity_type"] != "project" {
            continue;
        }
        let src_path = e["source_full_path"].as_str().unwrap();
        let dest_path = e["destination_full_path"].as_str().unwrap();
        linked += assert_same_uploads(&src, &dst, e, src_path, dest_path).await;
        lfs += assert_same_lfs(&src, &dst, e, src_path, dest_path).await;
        snippets += assert_same_snippets(&src, &dst, e, src_path, dest_path).await;
        designs += assert_same_designs(&src, &dst, e, src_path, dest_path).await;
    }
    assert!(snippets > 0, "a snippet repository was compared");
    assert!(linked >= 4, "uploads of two projects were checked");
    assert_eq!(
        lfs, API_LFS_OBJECTS,
        "the API project's LFS objects were checked"
    );
    assert_eq!(designs, 2, "the API project's two designs were checked");
    // Only the project with designs carries a design repository.
    let design_members: Vec<String> = bundle_common::members(&std::fs::read(&bundle).unwrap())
        .into_iter()
        .map(|m| m.path)
        .filter(|p| p.ends_with(".design.bundle"))
        .collect();
    assert_eq!(
        design_members,
        vec![format!("repositories/{}.design.bundle", WITH_DESIGNS.0)]
    );
    // Each distinct file is one blob, named by its sha256; a file two projects hold is stored once.
    let parts = bundle_common::members(&std::fs::read(&bundle).unwrap());
    let blobs: Vec<&bundle_common::RawMember> = parts
        .iter()
        .filter(|m| m.path.starts_with("blobs/sha256/"))
        .collect();
    assert!(!blobs.is_empty());
    for b in &blobs {
        let sha = bundle_common::sha256_hex(&b.data);
        assert_eq!(b.path, format!("blobs/sha256/{}/{sha}", &sha[..2]));
    }
    src.shutdown().await;
    dst.shutdown().await;
}

/// A relation the source fails to export (GitLab's export status -1) is a failure row quoting the
/// source's error, for records (issues) and files (uploads) alike, never an empty relation counted
/// as complete; the rest of the project still arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_relation_the_source_fails_to_export_is_a_failure_not_an_empty_relation() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&src, json!({"failed_exports": ["uploads", "issues"]})).await;
    let data = tempfile::tempdir().unwrap();
    let project = WITH_WIKI[0];
    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &[project])).await;
    let r = report(&out);
    assert_eq!(r["has_failures"], true, "{r:#}");
    let e = entity(&r, project);
    let failures = e["failures"].as_array().unwrap();
    for relation in ["uploads", "issues"] {
        let row = stat(e, relation);
        assert_eq!(row["imported"], 0, "{relation}: {row}");
        let failure = failures
            .iter()
            .find(|f| f["relation"] == relation)
            .unwrap_or_else(|| panic!("a failure row for {relation}: {e:#}"));
        let message = failure["exception_message"].as_str().unwrap();
        assert!(
            message.contains(&format!("could not export the {relation} of {project}"))
                && message.contains("Errno::ENOENT"),
            "{relation}: {message}"
        );
        assert_eq!(failure["source_title"], project, "{failure}");
    }
    // Nothing else is lost: the project, its wiki, its LFS objects and its merge requests arrived.
    let dest = e["destination_full_path"].as_str().unwrap();
    assert_same_wiki(&src, &dst, e, project, dest).await;
    assert_eq!(
        assert_same_lfs(&src, &dst, e, project, dest).await,
        API_LFS_OBJECTS
    );
    let mrs = stat(e, "merge_requests");
    assert!(mrs["imported"].as_u64().unwrap() > 0, "{mrs}");
    assert_eq!(mrs["imported"], mrs["source"], "{mrs}");
    // The designs of an issue that did not arrive did not either: a row of their own, with the
    // issue's URL, says so.
    let designs = failures
        .iter()
        .find(|f| f["relation"] == "designs")
        .unwrap_or_else(|| panic!("a failure row for the designs: {e:#}"));
    assert_eq!(
        designs["source_url"],
        format!("{}/{project}/-/issues/{}", src.url, WITH_DESIGNS.1),
        "{designs}"
    );
    let message = designs["exception_message"].as_str().unwrap();
    assert!(
        message.contains("2 of the issue's designs did not arrive (flow.svg, mockup.png)")
            && message.contains("their issue is not at the destination"),
        "{message}"
    );
    assert_eq!(
        failures.len(),
        3,
        "only the two failed exports and the designs of the issue: {failures:#?}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// GitLab batches a project's uploads in a batched export as it does every collection: each batch a
/// tar of its own. In batches of one, every upload still arrives under its link, and none twice.
#[tokio::test(flavor = "multi_thread")]
async fn uploads_exported_in_several_batches_all_arrive() {
    let (src, dst) = (source().await, destination().await);
    let resp = http()
        .put(format!("{}/api/v4/application/settings", src.url))
        .header("PRIVATE-TOKEN", &src.admin_token)
        .form(&[("relation_export_batch_size", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let data = tempfile::tempdir().unwrap();
    let project = WITH_WIKI[0];
    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &[project])).await;
    assert!(out.status.success(), "migrate failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let e = entity(&r, project);
    let row = stat(e, "uploads");
    assert!(row["source"].as_u64() >= Some(3), "{row}");
    let linked = assert_same_uploads(
        &src,
        &dst,
        e,
        project,
        e["destination_full_path"].as_str().unwrap(),
    )
    .await;
    assert!(
        linked >= 3,
        "the issue's and the note's uploads were checked"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// The simulator's rule that refuses every relation export, as a GitLab from before it answers.
fn refuse_relation_export() -> Value {
    json!({"method": "POST", "path_contains": "/export_relations", "status": 404,
           "message": "404 Not Found"})
}

/// A source without GitLab's relation export (one from before it, or one that refuses it: 404 on
/// `POST /projects/:id/export_relations`) still exports each project whole
/// (`POST /projects/:id/export`): the project arrives from that archive with every record, upload,
/// design and repository, as it does from the relation export, and each row says how it was read.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_without_the_relation_export_exports_each_project_whole() {
    let (src, dst) = (source().await, destination().await);
    set_faults(&src, json!({"reject": [refuse_relation_export()]})).await;
    let data = tempfile::tempdir().unwrap();
    let project = WITH_WIKI[0];
    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &[project])).await;
    assert!(out.status.success(), "migrate failed: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");
    let e = entity(&r, project);
    let dest = e["destination_full_path"].as_str().unwrap();
    assert_every_row_complete(e);
    // Records, field by field.
    for kind in ["issues", "merge_requests", "milestones", "releases"] {
        let fields = [
            "iid",
            "title",
            "description",
            "state",
            "created_at",
            "tag_name",
        ];
        let pick = |items: Vec<Value>| -> Vec<Value> {
            let mut v: Vec<Value> = items
                .iter()
                .map(|i| json!(fields.iter().map(|f| i.get(*f)).collect::<Vec<_>>()))
                .collect();
            v.sort_by_key(|x| x.to_string());
            v
        };
        let (want, got) = lists(&src, &dst, project, dest, kind).await;
        let (want, got) = (pick(want), pick(got));
        assert!(!want.is_empty(), "{kind}: the sample project has some");
        assert_eq!(got, want, "{kind}");
        assert_row(e, kind, want.len(), project);
    }
    assert_same_wiki(&src, &dst, e, project, dest).await;
    let linked = assert_same_uploads(&src, &dst, e, project, dest).await;
    assert!(
        linked >= 3,
        "the issue's and the note's uploads were checked"
    );
    assert_eq!(
        assert_same_lfs(&src, &dst, e, project, dest).await,
        API_LFS_OBJECTS
    );
    assert_eq!(
        assert_same_designs(&src, &dst, e, WITH_DESIGNS.0, dest).await,
        2
    );
    assert!(assert_same_snippets(&src, &dst, e, project, dest).await > 0);
    // Read from the whole export, once, and never from the relation export.
    let vias: Vec<&str> = e["stats"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["extracted_via"].as_str())
        .collect();
    for relation in ["issues", "merge_requests", "labels", "project_members"] {
        let via = &stat(e, relation)["extracted_via"];
        assert_eq!(via, "project_export", "{relation}");
    }
    assert!(!vias.contains(&"relation_export"), "{vias:?}");
    let requests = sim_requests(&src).await;
    let by = requests["by_request"].as_object().unwrap();
    let started: Vec<_> = by
        .iter()
        .filter(|(k, _)| k.starts_with("POST ") && k.ends_with("/export"))
        .collect();
    assert_eq!(started.len(), 1, "{requests:#}");
    assert_eq!(started[0].1, 1, "{requests:#}");
    assert!(
        by.keys().all(|k| !k.contains("export_relations/download")),
        "{requests:#}"
    );
    // The refusal is met once.
    let refused: u64 = by
        .iter()
        .filter(|(k, _)| k.starts_with("POST ") && k.ends_with("/export_relations"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(refused, 1, "{requests:#}");
    // What was unpacked is gone with the run.
    let left = tmp_dirs(data.path());
    assert!(left.is_empty(), "{left:?}");
    src.shutdown().await;
    dst.shutdown().await;
}

/// The destination's designs of an issue are counted however many pages they take: with a page of
/// one design, the issue's two designs are both read (no false "did not arrive" past 100 designs).
#[tokio::test(flavor = "multi_thread")]
async fn designs_past_one_page_are_all_counted() {
    use appliance::forge::{ForgeClient, GitLab};
    let src = source().await;
    let client = ForgeClient::with_role(
        "destination",
        src.url.parse().unwrap(),
        secrecy::SecretString::from(src.owner_token.clone()),
        2,
        Default::default(),
    )
    .unwrap();
    let gitlab = GitLab::new(client);
    let iid: u64 = WITH_DESIGNS.1.parse().unwrap();
    let iids = [iid, 1];
    let designs = |per_page| {
        appliance::sink::project_import::designs_paged(&gitlab, WITH_DESIGNS.0, &iids, per_page)
    };
    let paged = designs(1).await.unwrap();
    assert_eq!(paged[&iid], ["flow.svg", "mockup.png"], "{paged:?}");
    assert_eq!(paged, designs(100).await.unwrap());
    src.shutdown().await;
}

/// A project's `kind` list (`issues`, `releases`, ...) at the source and at the destination.
async fn lists(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    project: &str,
    dest: &str,
    kind: &str,
) -> (Vec<Value>, Vec<Value>) {
    let path = |p: &str| format!("projects/{}/{kind}", enc(p));
    (
        get_all(&src.url, &src.owner_token, &path(project)).await,
        get_all(&dst.url, &dst.admin_token, &path(dest)).await,
    )
}

/// Every row of a report entity finished with as many records at the destination as at the source.
fn assert_every_row_complete(entity: &Value) {
    for row in entity["stats"].as_array().unwrap() {
        assert_eq!(row["status"], "finished", "{row}");
        assert_eq!(row["imported"], row["source"], "{row}");
    }
}

/// The `.tmp*` directories a run left in a data directory.
fn tmp_dirs(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(data)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|d| d.file_name().to_string_lossy().starts_with(".tmp"))
        .map(|d| d.path())
        .collect()
}

/// A kill while a project's whole export downloads: the same command again exports it again and
/// migrates everything once, with no failure; what the killed run left on disk `appliance gc`
/// removes.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_while_the_whole_export_downloads_resumes_and_gc_removes_what_it_left() {
    let (src, dst) = (source().await, destination().await);
    let refuse = refuse_relation_export();
    set_faults(
        &src,
        json!({"reject": [refuse.clone()], "hold": {
            "when": {"method": "POST", "path": "/api/v4/projects/*/export"},
            "after": 1,
            "hold": {"method": "GET", "path": "/api/v4/projects/*/export/download"},
        }}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let project = WITH_WIKI[0];
    let mut child = migrate_projects_cmd(&src, &dst, data.path(), &[project])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start appliance");
    kill_when(&mut child, "the whole export's download", async || {
        sim_requests(&src).await["injected"]["held"].as_u64() >= Some(1)
    })
    .await;
    // The partly downloaded export stays where it was being written (beside the project's staging).
    let left = tmp_dirs(data.path());
    let exports = left
        .iter()
        .filter(|d| d.to_string_lossy().contains(".tmp-project-export-"))
        .count();
    assert_eq!(exports, 1, "{left:?}");
    set_faults(&src, json!({"reject": [refuse]})).await;

    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &[project])).await;
    assert!(out.status.success(), "the resumed run: {}", explain(&out));
    let r = report(&out);
    assert_eq!(r["has_failures"], false, "{r:#}");
    let e = entity(&r, project);
    let dest = e["destination_full_path"].as_str().unwrap();
    assert_every_row_complete(e);
    for kind in ["issues", "merge_requests"] {
        let (want, got) = lists(&src, &dst, project, dest, kind).await;
        assert_eq!(got.len(), want.len(), "{kind}: each once");
    }
    assert!(assert_same_uploads(&src, &dst, e, project, dest).await >= 3);
    assert_eq!(
        assert_same_designs(&src, &dst, e, WITH_DESIGNS.0, dest).await,
        2
    );
    // One project at the destination, imported once.
    let imports = sim_requests(&dst).await["by_request"]["POST /api/v4/projects/import"].clone();
    assert_eq!(imports, 1, "{imports}");

    let mut gc = appliance();
    gc.args(["gc", "--json", "--data"]).arg(data.path());
    let cleaned = run(gc).await;
    assert!(cleaned.status.success(), "{}", explain(&cleaned));
    assert!(tmp_dirs(data.path()).is_empty(), "{}", explain(&cleaned));
    src.shutdown().await;
    dst.shutdown().await;
}

/// A whole export the source could not build (`failed`) is a failure of each relation only an
/// export holds, saying so, never an empty project; the repository still arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_export_the_source_could_not_build_is_a_failure_not_an_empty_project() {
    let (src, dst) = (source().await, destination().await);
    set_faults(
        &src,
        json!({"reject": [refuse_relation_export()],
               "failed_exports": ["issues"]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let project = WITH_WIKI[0];
    let out = run(migrate_projects_cmd(&src, &dst, data.path(), &[project])).await;
    let r = report(&out);
    assert_eq!(r["has_failures"], true, "{r:#}");
    let e = entity(&r, project);
    let failures = e["failures"].as_array().unwrap();
    for relation in ["issues", "merge_requests", "labels", "uploads"] {
        let failure = failures
            .iter()
            .find(|f| f["relation"] == relation)
            .unwrap_or_else(|| panic!("a failure row for {relation}: {e:#}"));
        let message = failure["exception_message"].as_str().unwrap();
        assert!(
            message.contains(&format!("could not export the {relation} of {project}"))
                && message.contains("its export ended without an archive"),
            "{relation}: {message}"
        );
        assert_eq!(stat(e, relation)["imported"], 0, "{relation}");
    }
    // Asked for once, not again for each relation.
    let requests = sim_requests(&src).await;
    let asked: u64 = requests["by_request"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("POST ") && k.ends_with("/export"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(asked, 1, "{requests:#}");
    // Nothing the export was needed for is pretended: the repository is cloned and arrives.
    let dest = e["destination_full_path"].as_str().unwrap();
    assert_eq!(
        repo_refs(&dst, dest)
            .into_iter()
            .filter(|(r, _)| !r.starts_with("refs/merge-requests/"))
            .collect::<BTreeMap<_, _>>(),
        repo_refs(&src, project)
            .into_iter()
            .filter(|(r, _)| !r.starts_with("refs/merge-requests/"))
            .collect::<BTreeMap<_, _>>()
    );
    src.shutdown().await;
    dst.shutdown().await;
}

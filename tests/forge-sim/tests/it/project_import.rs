//! GitLab's file-based project import as a client drives it: pack an export archive (the real
//! GitLab export fixture, or what the simulator's own relation export produced with a `git bundle`
//! of a seeded repository), `POST /projects/import`, poll `GET /projects/:id/import`, and read
//! the project back through the REST API. Also `import-relation` retries and the refusals.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::Value;

use crate::support;
use support::*;

async fn import(api: &Api, path: &str, files: &BTreeMap<String, Vec<u8>>) -> Value {
    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", path), ("namespace", "imported")],
            Some(tar_gz(files)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["import_status"], "scheduled");
    assert_eq!(body["path_with_namespace"], format!("imported/{path}"));
    assert_eq!(body["failed_relations"], serde_json::json!([]));
    assert!(body["import_error"].is_null());
    body
}

#[tokio::test]
async fn the_gitlab_fixture_imports_with_iids_states_dates_and_notes() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 3))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token);
    // The fixture has no diff note; give merge request !1 one, as GitLab exports them.
    let mut files = fixture_files();
    let mut archived_mrs = fixture_records("merge_requests");
    let position = serde_json::json!({
        "base_sha": "ae73cb07c9eeaf35924a10f713b364d32b2dd34f",
        "start_sha": "ae73cb07c9eeaf35924a10f713b364d32b2dd34f",
        "head_sha": "0b4bc9a49b562e85de7cc9e834518ea6828729b9",
        "old_path": "files/ruby/popen.rb", "new_path": "files/ruby/popen.rb",
        "position_type": "text", "old_line": null, "new_line": 14
    });
    for mr in archived_mrs.iter_mut().filter(|mr| mr["iid"] == 1) {
        let notes = mr["notes"].as_array_mut().expect("notes");
        let mut diff_note = notes[0].clone();
        diff_note["note"] = "This line needs a comment".into();
        diff_note["type"] = "DiffNote".into();
        diff_note["position"] = position.clone();
        diff_note["created_at"] = "2016-06-14T15:03:01.000Z".into();
        diff_note["updated_at"] = "2016-06-14T15:03:01.000Z".into();
        notes.push(diff_note);
    }
    let ndjson: Vec<String> = archived_mrs.iter().map(Value::to_string).collect();
    files.insert(
        "tree/project/merge_requests.ndjson".to_owned(),
        ndjson.join("\n").into_bytes(),
    );
    let created = import(&api, "fixture", &files).await;
    let id = &created["id"];
    let status = api.wait_import(id).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    assert_eq!(status["failed_relations"], serde_json::json!([]));

    let project = api.json(&format!("projects/{id}")).await;
    assert_eq!(project["import_status"], "finished");
    assert_eq!(
        project["description"],
        "Nisi et repellendus ut enim quo accusamus vel magnam."
    );
    assert_eq!(project["visibility"], "internal");

    let issues = fixture_records("issues");
    let served = api.list(&format!("projects/{id}/issues")).await;
    assert_eq!(served.len(), issues.len());
    for issue in &issues {
        let got = api
            .json(&format!("projects/{id}/issues/{}", issue["iid"]))
            .await;
        assert_eq!(got["title"], issue["title"]);
        assert_eq!(got["state"], issue["state"]);
        assert_eq!(got["created_at"], issue["created_at"]);
        // No exported member maps to a user here: the importing administrator is the author.
        assert_eq!(got["author"]["username"], "root");

        let notes = api
            .list(&format!(
                "projects/{id}/issues/{}/notes?sort=asc&order_by=created_at",
                issue["iid"]
            ))
            .await;
        let mut expected: Vec<&Value> = issue["notes"].as_array().expect("notes").iter().collect();
        expected.sort_by_key(|n| n["created_at"].as_str().unwrap_or_default().to_owned());
        assert_eq!(
            notes.len(),
            expected.len(),
            "notes of issue {}",
            issue["iid"]
        );
        for (got, note) in notes.iter().zip(expected) {
            let at = note["updated_at"]
                .as_str()
                .expect("updated_at")
                .split('.')
                .next()
                .unwrap();
            let body = format!(
                "{}\n\n*By {} on {at} (imported from GitLab)*",
                note["note"].as_str().expect("note"),
                note["author"]["name"].as_str().expect("author name"),
            );
            assert_eq!(got["body"], body.as_str());
            assert_eq!(got["created_at"], note["created_at"]);
        }
    }
    let issue10 = api.json(&format!("projects/{id}/issues/10")).await;
    assert_eq!(issue10["labels"], serde_json::json!(["test2", "test3"]));
    assert_eq!(issue10["milestone"]["title"], "test milestone");

    let labels: Vec<Value> = api.list(&format!("projects/{id}/labels")).await;
    let names: Vec<&str> = labels.iter().filter_map(|l| l["name"].as_str()).collect();
    for label in fixture_records("labels") {
        assert!(
            names.contains(&label["title"].as_str().unwrap()),
            "{names:?}"
        );
    }
    let milestones = api.list(&format!("projects/{id}/milestones")).await;
    let mut got: Vec<(u64, String)> = milestones
        .iter()
        .map(|m| {
            (
                m["iid"].as_u64().unwrap(),
                m["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(u64, String)> = fixture_records("milestones")
        .iter()
        .map(|m| {
            (
                m["iid"].as_u64().unwrap(),
                m["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let mrs = fixture_records("merge_requests");
    assert_eq!(
        api.list(&format!("projects/{id}/merge_requests"))
            .await
            .len(),
        mrs.len()
    );
    for mr in &mrs {
        let got = api
            .json(&format!("projects/{id}/merge_requests/{}", mr["iid"]))
            .await;
        assert_eq!(got["title"], mr["title"]);
        assert_eq!(got["source_branch"], mr["source_branch"]);
        assert_eq!(got["target_branch"], mr["target_branch"]);
        assert_eq!(got["state"], mr["state"]);
    }
    let notes = api
        .list(&format!("projects/{id}/merge_requests/1/notes?sort=asc"))
        .await;
    let fixture_mr1 = archived_mrs.iter().find(|mr| mr["iid"] == 1).expect("!1");
    assert_eq!(notes.len(), fixture_mr1["notes"].as_array().unwrap().len());
    let diff_note = notes.last().expect("the diff note");
    assert_eq!(diff_note["type"], "DiffNote");
    assert_eq!(diff_note["position"], position);
    assert!(
        diff_note["body"]
            .as_str()
            .unwrap()
            .starts_with("This line needs a comment\n\n*By ")
    );
    assert!(notes[..notes.len() - 1].iter().all(|n| n["type"].is_null()));
    let releases = api.list(&format!("projects/{id}/releases")).await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["tag_name"], "release-1.1");
    assert_eq!(releases[0]["released_at"], "2019-12-26T10:17:14.615Z");
    sim.shutdown().await;
}

/// `git bundle create <file> --all` of a repository of `sim` (given by repository path).
fn bundle_of(sim: &RunningSim, repo_path: &str, dir: &Path) -> Vec<u8> {
    let file = dir.join(format!("{}.bundle", repo_path.replace('/', "_")));
    let out = std::process::Command::new("git")
        .args(["bundle", "create", "--quiet"])
        .arg(&file)
        .arg("--all")
        .env(
            "GIT_DIR",
            sim.sim.git.repo_path(repo_path).expect("repo path"),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git bundle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&file).expect("bundle")
}

/// A snippet's `hexdigest` worked out here from the record's strings, independently of the
/// simulator: SHA-256 of title, description and the two times as Ruby prints them in UTC.
fn hexdigest_by_hand(record: &Value) -> String {
    use sha2::Digest;
    let ruby = |t: &str| format!("{} {} UTC", &t[..10], &t[11..19]);
    let text = format!(
        "{}{}{}{}",
        record["title"].as_str().expect("title"),
        record["description"].as_str().unwrap_or_default(),
        ruby(record["created_at"].as_str().expect("created_at")),
        ruby(record["updated_at"].as_str().expect("updated_at")),
    );
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn snippet_repositories_come_back_from_their_bundles_or_their_records() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token);
    // The export's snippet records carry what the import (and the bundle's name) needs.
    let relations = api.export("acme%2Fbackend%2Fapi").await;
    let exported = relations["snippets"]
        .iter()
        .find(|s| s["title"] == "Example request")
        .expect("the API project's snippet")
        .clone();
    for key in [
        "title",
        "description",
        "file_name",
        "content",
        "created_at",
        "updated_at",
    ] {
        assert!(exported[key].is_string(), "{key} in {exported}");
    }
    let created_at = exported["created_at"].as_str().expect("created_at");
    assert!(
        created_at.len() == 24 && created_at.ends_with('Z') && &created_at[19..20] == ".",
        "RFC 3339 with milliseconds: {created_at}"
    );
    let source_id = exported["id"].as_u64().expect("id");
    let source_repo = forge_sim::git::snippet_repo_path(PROJECT_API, source_id);
    let digest = hexdigest_by_hand(&exported);
    assert_eq!(
        digest,
        forge_sim::project_import::snippet_hexdigest(
            exported["title"].as_str().expect("title"),
            exported["description"].as_str(),
            created_at,
            exported["updated_at"].as_str().expect("updated_at"),
        )
    );

    // Four snippets: one with its repository's bundle, one without a bundle, one whose bundle is
    // not a bundle, one whose bundle is a whole project's (branches and tags: not a snippet's).
    let with_title = |title: &str, file_name: &str, content: &str| {
        let mut record = exported.clone();
        record["title"] = title.into();
        record["file_name"] = file_name.into();
        record["content"] = content.into();
        record["notes"] = serde_json::json!([]);
        record["award_emoji"] = serde_json::json!([]);
        record
    };
    let records = [
        exported.clone(),
        with_title("No bundle", "plain.txt", "just text\n"),
        with_title("Broken bundle", "a.txt", "a"),
        with_title("Project bundle", "b.txt", "b"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4".to_vec());
    files.insert(
        "tree/project.json".to_owned(),
        br#"{"description": "Snippets"}"#.to_vec(),
    );
    let ndjson: Vec<String> = records.iter().map(Value::to_string).collect();
    files.insert(
        "tree/project/snippets.ndjson".to_owned(),
        ndjson.join("\n").into_bytes(),
    );
    let bundle = |name: &str, bytes: Vec<u8>| (format!("snippets/{name}.bundle"), bytes);
    files.extend([
        bundle(&digest, bundle_of(&sim, &source_repo, dir.path())),
        bundle(&hexdigest_by_hand(&records[2]), b"not a bundle".to_vec()),
        bundle(
            &hexdigest_by_hand(&records[3]),
            bundle_of(&sim, "acme/docs", dir.path()),
        ),
    ]);
    let (status, created) = api
        .post_form(
            "projects/import",
            &[("path", "snippet-copy"), ("namespace", "acme")],
            Some(tar_gz(&files)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let status = api.wait_import(&created["id"]).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    let failed = status["failed_relations"].as_array().expect("failures");
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (failure, line, detail) in [
        (&failed[0], 2, "git bundle"),
        (&failed[1], 3, "Repository has more than one branch."),
    ] {
        assert_eq!(failure["relation_name"], "snippets");
        assert_eq!(failure["line_number"], line);
        let message = failure["exception_message"].as_str().expect("message");
        assert!(
            message.starts_with("Invalid repository bundle for snippet with id ")
                && message.contains(detail),
            "{message}"
        );
    }

    let imported = api.list("projects/acme%2Fsnippet-copy/snippets").await;
    let id_of = |title: &str| {
        imported
            .iter()
            .find(|s| s["title"] == title)
            .and_then(|s| s["id"].as_u64())
            .unwrap_or_else(|| panic!("{title} was imported"))
    };
    let repo_of =
        |title: &str| forge_sim::git::snippet_repo_path("acme/snippet-copy", id_of(title));
    let git = &sim.sim.git;
    // From its bundle: the same commits and files under the new id.
    let restored = repo_of("Example request");
    assert_ne!(id_of("Example request"), source_id);
    assert_eq!(
        git.refs(&restored).expect("refs"),
        git.refs(&source_repo).expect("refs")
    );
    assert_eq!(
        git.files_at_head(&restored).expect("files"),
        git.files_at_head(&source_repo).expect("files")
    );
    assert_eq!(git.commits_at_head(&restored).expect("log").len(), 2);
    // From its record: one commit of `file_name` with `content`.
    let from_record = repo_of("No bundle");
    assert_eq!(git.commits_at_head(&from_record).expect("log").len(), 1);
    assert_eq!(
        git.files_at_head(&from_record).expect("files"),
        BTreeMap::from([("plain.txt".to_owned(), b"just text\n".to_vec())])
    );
    // A refused bundle leaves no repository behind.
    assert!(!git.exists(&repo_of("Broken bundle")));
    assert!(!git.exists(&repo_of("Project bundle")));

    // An import that overwrites the project takes its snippets' repositories along.
    let mut bare = files.clone();
    bare.retain(|path, _| !path.starts_with("snippets/"));
    bare.remove("tree/project/snippets.ndjson");
    let (status, created) = api
        .post_form(
            "projects/import",
            &[
                ("path", "snippet-copy"),
                ("namespace", "acme"),
                ("overwrite", "true"),
            ],
            Some(tar_gz(&bare)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        api.wait_import(&created["id"]).await["import_status"],
        "finished"
    );
    assert!(!git.exists(&restored) && !git.exists(&from_record));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_simulator_export_with_its_repository_round_trips() {
    let source = RunningSim::start(SimConfig::new(Dataset::Small, 5))
        .await
        .expect("source");
    let dest = RunningSim::start(SimConfig::new(Dataset::Empty, 5))
        .await
        .expect("dest");
    let src_api = Api::new(&source, &source.admin_token);
    // The project of the small dataset with the most merged merge requests.
    let (project_path, _) = {
        let store = source.sim.read();
        store
            .projects
            .values()
            .map(|p| {
                let merged = store
                    .merge_requests
                    .children(forge_sim::model::Parent::Project(p.id))
                    .filter(|m| m.state == "merged")
                    .count();
                (p.path_with_namespace.clone(), merged)
            })
            .max_by_key(|(_, merged)| *merged)
            .expect("a project")
    };
    let encoded = project_path.replace('/', "%2F");
    let relations = src_api.export(&encoded).await;

    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4\n".to_vec());
    files.insert(
        "tree/project.json".to_owned(),
        serde_json::to_vec(&relations["self"][0]).unwrap(),
    );
    for (relation, records) in &relations {
        if relation == "self" {
            continue;
        }
        let mut ndjson = Vec::new();
        for record in records {
            serde_json::to_writer(&mut ndjson, record).unwrap();
            ndjson.push(b'\n');
        }
        files.insert(format!("tree/project/{relation}.ndjson"), ndjson);
    }
    let bundle_dir = tempfile::tempdir().expect("tempdir");
    let bundle = bundle_dir.path().join("project.bundle");
    let repo = source.sim.git.repo_path(&project_path).expect("repo path");
    let out = std::process::Command::new("git")
        .args(["bundle", "create"])
        .arg(&bundle)
        .arg("--all")
        .env("GIT_DIR", &repo)
        .output()
        .expect("git bundle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files.insert("project.bundle".to_owned(), std::fs::read(&bundle).unwrap());
    files.insert(
        "uploads/0123456789abcdef/notes.txt".to_owned(),
        b"attached".to_vec(),
    );
    files.insert("lfs-objects.json".to_owned(), b"{}".to_vec());

    let api = Api::new(&dest, &dest.admin_token);
    let created = import(&api, "round-trip", &files).await;
    let id = &created["id"];
    let status = api.wait_import(id).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    assert_eq!(status["failed_relations"], serde_json::json!([]));

    let source_refs = source.sim.git.refs(&project_path).expect("source refs");
    assert!(!source_refs.is_empty());
    assert_eq!(
        dest.sim.git.refs("imported/round-trip").expect("refs"),
        source_refs
    );
    let project = api.json(&format!("projects/{id}")).await;
    assert_eq!(project["empty_repo"], false);

    let source_mrs = src_api
        .list(&format!("projects/{encoded}/merge_requests"))
        .await;
    let mrs = api.list(&format!("projects/{id}/merge_requests")).await;
    assert_eq!(mrs.len(), source_mrs.len());
    let merged: Vec<&Value> = source_mrs
        .iter()
        .filter(|m| m["state"] == "merged")
        .collect();
    assert!(!merged.is_empty(), "the source has merged merge requests");
    for mr in merged {
        let got = api
            .json(&format!("projects/{id}/merge_requests/{}", mr["iid"]))
            .await;
        assert_eq!(got["state"], "merged");
        assert_eq!(got["merged_at"], mr["merged_at"]);
        assert_eq!(got["merge_commit_sha"], mr["merge_commit_sha"]);
        assert_eq!(got["created_at"], mr["created_at"]);
    }
    // Authors who are exported members map by email; everyone else becomes the importer.
    let members: Vec<String> = relations["project_members"]
        .iter()
        .filter_map(|m| m["user"]["username"].as_str().map(str::to_owned))
        .collect();
    let source_issues = src_api.list(&format!("projects/{encoded}/issues")).await;
    assert_eq!(
        api.list(&format!("projects/{id}/issues")).await.len(),
        source_issues.len()
    );
    for issue in &source_issues {
        let got = api
            .json(&format!("projects/{id}/issues/{}", issue["iid"]))
            .await;
        assert_eq!(got["title"], issue["title"]);
        assert_eq!(got["state"], issue["state"]);
        let author = issue["author"]["username"].as_str().unwrap().to_owned();
        let expected = if members.contains(&author) {
            author.as_str()
        } else {
            "root"
        };
        assert_eq!(
            got["author"]["username"], expected,
            "issue {}",
            issue["iid"]
        );
    }
    // A non-administrator's import maps nobody: the importer is every author, and each note
    // says whom it was by.
    let owner = Api::new(&dest, &dest.owner_token);
    let me = owner.json("user").await;
    let created = import(&owner, "round-trip-by-owner", &files).await;
    let status = owner.wait_import(&created["id"]).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    let by_owner = owner
        .list(&format!("projects/{}/issues", created["id"]))
        .await;
    assert_eq!(by_owner.len(), source_issues.len());
    assert!(by_owner.iter().all(|i| i["author"]["id"] == me["id"]));
    assert_ne!(me["is_admin"], true);
    let mut seen = 0;
    for issue in &by_owner {
        let notes = owner
            .list(&format!(
                "projects/{}/issues/{}/notes",
                created["id"], issue["iid"]
            ))
            .await;
        seen += notes.len();
        assert!(notes.iter().all(|n| {
            n["author"]["id"] == me["id"]
                && n["body"]
                    .as_str()
                    .unwrap()
                    .ends_with("(imported from GitLab)*")
        }));
    }
    assert!(seen > 0, "the exported issues have notes");

    let upload = reqwest::Client::new()
        .get(format!(
            "{}/api/v4/projects/{id}/uploads/0123456789abcdef/notes.txt",
            dest.url
        ))
        .header("PRIVATE-TOKEN", &dest.admin_token)
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 200);
    assert_eq!(upload.bytes().await.unwrap().as_ref(), b"attached");
    source.shutdown().await;
    dest.shutdown().await;
}

#[tokio::test]
async fn import_relation_retried_with_the_same_batch_creates_nothing_twice() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 3))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token);
    let resp = api
        .http
        .post(format!("{}/projects", api.url))
        .header("PRIVATE-TOKEN", &api.token)
        .json(&serde_json::json!({"path": "target", "namespace_id": "imported"}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 201);
    let archive = tar_gz(&fixture_files());
    let mut counts = Vec::new();
    for round in 1..=2u64 {
        for relation in ["milestones", "issues", "merge_requests"] {
            let (status, body) = api
                .post_form(
                    "projects/import-relation",
                    &[("path", "imported/target"), ("relation", relation)],
                    Some(archive.clone()),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["project_path"], "imported/target");
            assert_eq!(body["relation"], relation);
            assert_eq!(body["status"], "created");
            let trackers = api.wait_relation_imports("imported%2Ftarget").await;
            assert!(
                trackers.iter().all(|t| t["status"] == "finished"),
                "{trackers:?}"
            );
        }
        counts.push((
            api.list("projects/imported%2Ftarget/issues").await.len(),
            api.list("projects/imported%2Ftarget/merge_requests")
                .await
                .len(),
            api.list("projects/imported%2Ftarget/milestones")
                .await
                .len(),
            api.list("projects/imported%2Ftarget/issues/10/notes")
                .await
                .len(),
        ));
        let trackers = api.relation_imports("imported%2Ftarget").await;
        assert_eq!(trackers.len() as u64, 3 * round);
    }
    let expected = (
        fixture_records("issues").len(),
        fixture_records("merge_requests").len(),
        fixture_records("milestones").len(),
        8,
    );
    assert_eq!(counts, vec![expected, expected]);
    sim.shutdown().await;
}

#[tokio::test]
async fn imports_are_refused_as_gitlab_refuses_them() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 3))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.admin_token);
    let archive = tar_gz(&fixture_files());
    let created = import(&api, "taken", &fixture_files()).await;
    assert_eq!(
        api.wait_import(&created["id"]).await["import_status"],
        "finished"
    );

    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", "taken"), ("namespace", "imported")],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            serde_json::json!({"message": "Name has already been taken"})
        )
    );
    let (status, body) = api
        .post_form(
            "projects/import",
            &[
                ("path", "taken"),
                ("name", "Another name"),
                ("namespace", "imported"),
            ],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            serde_json::json!({"message": "Path has already been taken"})
        )
    );
    // With `overwrite`, the project at that path is replaced by a new one.
    let (status, body) = api
        .post_form(
            "projects/import",
            &[
                ("path", "taken"),
                ("namespace", "imported"),
                ("overwrite", "true"),
            ],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["id"], created["id"]);
    assert_eq!(
        api.wait_import(&body["id"]).await["import_status"],
        "finished"
    );
    assert_eq!(
        api.get(&format!("projects/{}", created["id"]))
            .await
            .status(),
        404
    );
    let replacement = api.json("projects/imported%2Ftaken").await;
    assert_eq!(replacement["id"], body["id"]);

    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", "x"), ("namespace", "nowhere")],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            serde_json::json!({"message": "404 Namespace Not Found"})
        )
    );

    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", "x"), ("namespace", "imported")],
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (400, serde_json::json!({"error": "file is missing"}))
    );

    let stranger = Api::new(&sim, &sim.token_for("eve").expect("eve"));
    let (status, _) = stranger
        .post_form(
            "projects/import",
            &[("path", "x"), ("namespace", "imported")],
            Some(archive.clone()),
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");

    let (status, body) = api
        .post_form(
            "projects/import-relation",
            &[("path", "imported/taken"), ("relation", "labels")],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            serde_json::json!({"error": "relation does not have a valid value"})
        )
    );
    let (status, body) = api
        .post_form(
            "projects/import-relation",
            &[("path", "imported/missing"), ("relation", "issues")],
            Some(archive.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (404, serde_json::json!({"message": "404 Project Not Found"}))
    );

    // A corrupt archive is accepted, and the import fails with an error.
    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", "corrupt"), ("namespace", "imported")],
            Some(b"this is not a gzip file".to_vec()),
        )
        .await;
    assert_eq!(status, 201);
    let failed = api.wait_import(&body["id"]).await;
    assert_eq!(failed["import_status"], "failed");
    assert!(
        failed["import_error"]
            .as_str()
            .is_some_and(|e| e.contains("decompress")),
        "{failed}"
    );

    // A record that cannot be restored is a failed relation; the rest of the import finishes.
    let mut broken = fixture_files();
    let mut issues = fixture_records("issues");
    issues[0]["title"] = Value::Null;
    let lines: Vec<String> = issues.iter().map(Value::to_string).collect();
    broken.insert(
        "tree/project/issues.ndjson".to_owned(),
        lines.join("\n").into_bytes(),
    );
    let created = import(&api, "broken", &broken).await;
    let status = api.wait_import(&created["id"]).await;
    assert_eq!(status["import_status"], "finished", "{status}");
    let failed = status["failed_relations"]
        .as_array()
        .expect("failed_relations");
    assert_eq!(failed.len(), 1, "{status}");
    assert_eq!(failed[0]["relation_name"], "issues");
    assert_eq!(failed[0]["exception_message"], "Title can't be blank");
    assert_eq!(failed[0]["line_number"], 0);
    let restored = api
        .list(&format!("projects/{}/issues", created["id"]))
        .await;
    assert_eq!(restored.len(), issues.len() - 1);

    let mut old = fixture_files();
    old.insert("VERSION".to_owned(), b"0.1.0".to_vec());
    let mut gz = Vec::new();
    gz.write_all(&tar_gz(&old)).unwrap();
    let (status, body) = api
        .post_form(
            "projects/import",
            &[("path", "old"), ("namespace", "imported")],
            Some(gz),
        )
        .await;
    assert_eq!(status, 201);
    let failed = api.wait_import(&body["id"]).await;
    assert_eq!(failed["import_status"], "failed");
    assert_eq!(
        failed["import_error"],
        "Import version mismatch: Required 0.2.4 but was 0.1.0"
    );
    sim.shutdown().await;
}

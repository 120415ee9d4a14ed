//! What the simulator's import and export tests share: a REST client of the simulator and the
//! GitLab export fixture.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use forge_sim::RunningSim;
use serde_json::Value;

/// A project of the `small` dataset with a snippet.
pub const PROJECT_API: &str = "acme/backend/api";

pub struct Api {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
    /// Records asked for per page by [`Api::list`].
    per_page: usize,
}

impl Api {
    pub fn new(sim: &RunningSim, token: &str) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            url: format!("{}/api/v4", sim.url),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            per_page: 100,
        }
    }

    /// The same client, listing `per_page` records a page (to walk many pages of a short list).
    pub fn in_pages_of(mut self, per_page: usize) -> Api {
        self.per_page = per_page;
        self
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/{path}", self.url))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("json")
    }

    /// Every page of a list, in the order served.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1.. {
            let items = self
                .json(&format!(
                    "{path}{sep}per_page={}&page={page}",
                    self.per_page
                ))
                .await;
            let items = items.as_array().expect("a list").clone();
            if items.is_empty() {
                break;
            }
            all.extend(items);
        }
        all
    }

    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        if let Some(bytes) = file {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("export.tar.gz"),
            );
        }
        let resp = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("PRIVATE-TOKEN", &self.token)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    /// Polls `GET /projects/:id/import` until it is `finished` or `failed`.
    pub async fn wait_import(&self, id: &Value) -> Value {
        for _ in 0..500 {
            let status = self.json(&format!("projects/{id}/import")).await;
            if status["import_status"] == "finished" || status["import_status"] == "failed" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the import of project {id} did not end");
    }

    /// `GET /projects/:id/relation-imports` (one unpaginated list).
    pub async fn relation_imports(&self, project: &str) -> Vec<Value> {
        let trackers = self
            .json(&format!("projects/{project}/relation-imports"))
            .await;
        trackers.as_array().expect("a list").clone()
    }

    /// Polls `GET /projects/:id/relation-imports` until every tracker ended.
    pub async fn wait_relation_imports(&self, project: &str) -> Vec<Value> {
        for _ in 0..500 {
            let trackers = self.relation_imports(project).await;
            if trackers
                .iter()
                .all(|t| t["status"] == "finished" || t["status"] == "failed")
            {
                return trackers;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the relation imports of {project} did not end");
    }

    /// Every relation of a project's relation export (records; `self` as one record).
    pub async fn export(&self, project: &str) -> BTreeMap<String, Vec<Value>> {
        let resp = self
            .http
            .post(format!("{}/projects/{project}/export_relations", self.url))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .expect("export");
        assert_eq!(resp.status(), 202);
        let mut statuses = Vec::new();
        for _ in 0..500 {
            statuses = self
                .json(&format!("projects/{project}/export_relations/status"))
                .await
                .as_array()
                .expect("statuses")
                .clone();
            if !statuses.is_empty() && statuses.iter().all(|s| s["status"] == 1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut relations = BTreeMap::new();
        for status in statuses {
            let relation = status["relation"].as_str().expect("relation").to_owned();
            if relation == "uploads" || relation == "design" {
                // File relations (a tar of `<secret>/<filename>`, a tar of `design.bundle`), not
                // records.
                continue;
            }
            let resp = self
                .get(&format!(
                    "projects/{project}/export_relations/download?relation={relation}"
                ))
                .await;
            assert_eq!(resp.status(), 200, "{relation}");
            let gz = resp.bytes().await.expect("body");
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .expect("gzip");
            let records = if relation == "self" {
                vec![serde_json::from_str(&text).expect("self")]
            } else {
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str(l).expect("ndjson"))
                    .collect()
            };
            relations.insert(relation, records);
        }
        relations
    }
}

impl Api {
    /// `POST /api/graphql` with this client's token; the whole answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let base = self.url.trim_end_matches("/api/v4");
        let resp = self
            .http
            .post(format!("{base}/api/graphql"))
            .header("PRIVATE-TOKEN", &self.token)
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /api/graphql");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("a JSON body")
    }

    /// `POST /projects/import` of `files` packed as an archive into `imported/<path>`, waited for;
    /// the finished import's status.
    pub async fn import_archive(&self, path: &str, files: &BTreeMap<String, Vec<u8>>) -> Value {
        let (status, body) = self
            .post_form(
                "projects/import",
                &[("path", path), ("namespace", "imported")],
                Some(tar_gz(files)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let status = self.wait_import(&body["id"]).await;
        assert_eq!(status["import_status"], "finished", "{status}");
        status
    }
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gitlab-export/project")
}

/// A `.tar.gz` of the given files.
pub fn tar_gz(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, &bytes[..])
            .expect("tar entry");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// The GitLab fixture's files (`tree/...`) plus `VERSION`.
pub fn fixture_files() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("VERSION".to_owned(), b"0.2.4".to_vec());
    let tree = fixture_dir().join("tree");
    files.insert(
        "tree/project.json".to_owned(),
        std::fs::read(tree.join("project.json")).expect("project.json"),
    );
    for entry in std::fs::read_dir(tree.join("project")).expect("tree/project") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        files.insert(
            format!("tree/project/{name}"),
            std::fs::read(&path).expect("ndjson"),
        );
    }
    files
}

pub fn fixture_records(relation: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(fixture_dir().join(format!("tree/project/{relation}.ndjson")))
            .expect("fixture relation");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture json"))
        .collect()
}

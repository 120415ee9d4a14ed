//! The relation export API as GitLab's direct transfer drives it: start an export, poll its
//! status, download each relation (or each batch), gunzip, parse the NDJSON, and check that the
//! records are the ones the REST API lists.

use std::io::Read;
use std::time::Duration;

use forge_sim::model::{Label, Parent};
use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::Value;

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(sim: &RunningSim, token: &str) -> Api {
        Api {
            url: format!("{}/api/v4", sim.url),
            token: token.to_owned(),
            http: {
                install_crypto_provider();
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("client")
            },
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/{path}", self.url))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/{path}", self.url))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// `X-Total` of a REST list.
    async fn total(&self, path: &str) -> usize {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.headers()["x-total"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number")
    }

    /// Start an export and wait until every relation finished; returns the status array.
    async fn export(&self, portable: &str, batched: bool) -> Vec<Value> {
        let resp = self
            .post(&format!("{portable}/export_relations?batched={batched}"))
            .await;
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["message"], "202 Accepted");
        for _ in 0..200 {
            let statuses: Vec<Value> = self
                .get(&format!("{portable}/export_relations/status"))
                .await
                .json()
                .await
                .expect("status json");
            assert!(!statuses.is_empty());
            assert!(statuses.iter().all(|s| s["status"] != -1), "{statuses:?}");
            if statuses.iter().all(|s| s["status"] == 1) {
                return statuses;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the export of {portable} did not finish");
    }

    /// Download and gunzip one relation, every batch of it when batched.
    async fn records(&self, portable: &str, status: &Value) -> Vec<Value> {
        let relation = status["relation"].as_str().expect("relation name");
        let mut urls = Vec::new();
        if status["batched"] == true {
            for batch in status["batches"].as_array().expect("batches") {
                urls.push(format!(
                    "{portable}/export_relations/download?relation={relation}&batched=true&batch_number={}",
                    batch["batch_number"]
                ));
            }
        } else {
            urls.push(format!(
                "{portable}/export_relations/download?relation={relation}"
            ));
        }
        let mut records = Vec::new();
        for url in urls {
            let resp = self.get(&url).await;
            assert_eq!(resp.status(), 200, "GET {url}");
            assert_eq!(resp.headers()["content-type"], "application/gzip");
            let gz = resp.bytes().await.expect("body");
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .expect("a gzip file");
            if relation == "self" {
                records.push(serde_json::from_str(&text).expect("self.json"));
                continue;
            }
            for line in text.lines() {
                records.push(
                    serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("{relation}: bad NDJSON line {line}: {e}")),
                );
            }
        }
        records
    }
}

fn find<'a>(statuses: &'a [Value], relation: &str) -> &'a Value {
    statuses
        .iter()
        .find(|s| s["relation"] == relation)
        .unwrap_or_else(|| panic!("no status for {relation}: {statuses:?}"))
}

#[tokio::test]
async fn group_export_matches_the_rest_api() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.owner_token);
    let group = "groups/acme";
    let before: Vec<Value> = api
        .get(&format!("{group}/export_relations/status"))
        .await
        .json()
        .await
        .expect("json");
    assert!(before.is_empty(), "no export before the first POST");

    let statuses = api.export(group, true).await;
    for (relation, rest) in [
        ("labels", "groups/acme/labels?include_ancestor_groups=false"),
        ("milestones", "groups/acme/milestones"),
        ("badges", "groups/acme/badges"),
        ("boards", "groups/acme/boards"),
        ("members", "groups/acme/members"),
        ("epics", "groups/acme/epics?include_descendant_groups=false"),
    ] {
        let status = find(&statuses, relation);
        let records = api.records(group, status).await;
        let total = api.total(rest).await;
        assert_eq!(
            records.len(),
            total,
            "{relation}: export vs X-Total of {rest}"
        );
        assert_eq!(status["total_objects_count"], total, "{relation}");
        if total > 0 {
            assert_eq!(status["batched"], true, "{relation}");
            assert_eq!(
                status["batches_count"], 1,
                "{relation}: small data is one batch"
            );
        }
    }
    let labels = api.records(group, find(&statuses, "labels")).await;
    assert!(
        labels
            .iter()
            .all(|l| l["type"] == "GroupLabel" && l["title"].is_string())
    );
    let epics = api.records(group, find(&statuses, "epics")).await;
    assert!(
        epics
            .iter()
            .all(|e| e["notes"].is_array() && e["label_links"].is_array())
    );
    assert!(
        epics.iter().any(|e| e["parent"].is_object()),
        "child epics carry their parent"
    );
    let boards = api.records(group, find(&statuses, "boards")).await;
    assert!(
        boards
            .iter()
            .flat_map(|b| b["lists"].as_array().cloned().unwrap_or_default())
            .any(|l| l["label"]["title"].is_string()),
        "board lists nest their label"
    );
    let members = api.records(group, find(&statuses, "members")).await;
    assert!(members.iter().all(|m| m["user"]["username"].is_string()));

    let own = api.records(group, find(&statuses, "self")).await;
    assert_eq!(own[0]["path"], "acme");
    assert_eq!(own[0]["visibility_level"], 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn project_export_matches_the_rest_api_batched_or_not() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let api = Api::new(&sim, &sim.owner_token);
    let project = "projects/acme%2Fbackend%2Fapi";
    let rest = [
        ("labels", "labels?include_ancestor_groups=false"),
        ("milestones", "milestones?include_ancestors=false"),
        ("issues", "issues?state=all"),
        ("merge_requests", "merge_requests?state=all"),
        ("releases", "releases"),
        ("snippets", "snippets"),
        ("protected_branches", "protected_branches"),
        // GitLab's project export carries inherited members too, as project members.
        ("project_members", "members/all"),
        ("boards", "boards"),
    ];
    for batched in [true, false] {
        let statuses = api.export(project, batched).await;
        for (relation, path) in rest {
            let status = find(&statuses, relation);
            let records = api.records(project, status).await;
            let total = api.total(&format!("{project}/{path}")).await;
            assert_eq!(
                records.len(),
                total,
                "{relation} (batched: {batched}) vs X-Total of {path}"
            );
            // As GitLab: every collection of a batched export is batched, an empty one with no
            // batch and a count of 0.
            assert_eq!(status["batched"], batched, "{relation}");
            if batched {
                assert_eq!(status["total_objects_count"], total, "{relation}");
                assert_eq!(status["batches_count"], total.div_ceil(1000), "{relation}");
            }
        }
        // The REST list of a project's badges includes its groups' badges; the export does not.
        let badges = api
            .records(project, find(&statuses, "project_badges"))
            .await;
        let listed: Vec<Value> = api
            .get(&format!("{project}/badges?per_page=100"))
            .await
            .json()
            .await
            .expect("json");
        let own = listed.iter().filter(|b| b["kind"] == "project").count();
        assert_eq!(
            badges.len(),
            own,
            "project_badges vs badges of kind project"
        );
        let issues = api.records(project, find(&statuses, "issues")).await;
        assert!(!issues.is_empty());
        let notes: usize = issues
            .iter()
            .map(|i| i["notes"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(notes > 0, "issues carry their notes");
        let labelled = issues
            .iter()
            .find(|i| !i["label_links"].as_array().is_none_or(Vec::is_empty))
            .expect("some issue has labels");
        assert!(labelled["label_links"][0]["label"]["title"].is_string());
        let feature = api
            .records(project, find(&statuses, "project_feature"))
            .await;
        assert_eq!(feature.len(), 1);
        assert_eq!(find(&statuses, "project_feature")["batched"], false);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn large_relations_are_split_into_batches_of_1000() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Empty, 7))
        .await
        .expect("sim");
    let group_id = {
        let mut store = sim.sim.write();
        let group_id = store.group_by_path("imported").expect("imported").id;
        for n in 0..2345 {
            let id = store.labels.next_id();
            store.labels.insert(Label {
                id,
                owner: Parent::Group(group_id),
                name: format!("label-{n:04}"),
                color: "#112233".into(),
                text_color: "#FFFFFF".into(),
                description: None,
                priority: None,
                created_at: "2024-01-02T03:04:05.678Z".into(),
            });
        }
        group_id
    };
    let api = Api::new(&sim, &sim.owner_token);
    let group = format!("groups/{group_id}");
    let statuses = api.export(&group, true).await;
    let labels = find(&statuses, "labels");
    assert_eq!(forge_sim::relation_export::BATCH_SIZE, 1000);
    assert_eq!(labels["batches_count"], 3);
    let counts: Vec<u64> = labels["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["objects_count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [1000, 1000, 345]);
    let records = api.records(&group, labels).await;
    assert_eq!(records.len(), 2345);
    assert_eq!(
        records[2344]["title"], "label-2344",
        "batches keep id order"
    );
    // One relation's status on its own, as GitLab's `relation` parameter gives it.
    let one: Value = api
        .get(&format!("{group}/export_relations/status?relation=labels"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["relation"], "labels");
    let missing = api
        .get(&format!(
            "{group}/export_relations/download?relation=labels&batched=true&batch_number=4"
        ))
        .await;
    assert_eq!(missing.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn exports_need_owner_or_maintainer_access() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    // chen is a developer of acme: may see it, may not export it.
    let chen = Api::new(&sim, &sim.token_for("chen").expect("chen"));
    assert_eq!(
        chen.post("groups/acme/export_relations").await.status(),
        403
    );
    assert_eq!(
        chen.get("groups/acme/export_relations/status")
            .await
            .status(),
        403
    );
    assert_eq!(
        chen.post("projects/acme%2Fbackend%2Fapi/export_relations")
            .await
            .status(),
        403
    );
    // bjorn maintains backend, so its projects.
    let bjorn = Api::new(&sim, &sim.token_for("bjorn").expect("bjorn"));
    assert_eq!(
        bjorn
            .post("projects/acme%2Fbackend%2Fapi/export_relations")
            .await
            .status(),
        202
    );
    // Unknown groups are 404s; no token is a 401.
    let owner = Api::new(&sim, &sim.owner_token);
    assert_eq!(
        owner.post("groups/nope/export_relations").await.status(),
        404
    );
    let anonymous = Api::new(&sim, "not-a-token");
    assert_eq!(
        anonymous
            .post("groups/acme/export_relations")
            .await
            .status(),
        401
    );
    // Downloading before exporting is a 404, like GitLab's "Export not found".
    assert_eq!(
        owner
            .get("groups/acme/export_relations/download?relation=labels")
            .await
            .status(),
        404
    );
    sim.shutdown().await;
}

/// In a workspace build reqwest's TLS comes without a crypto provider (the appliance picks ring):
/// install it before the first client is built.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

//! The simulator's REST API as a client sees it: auth codes, `:id` forms, pagination, the
//! `small` group tree, writes on `empty` read back, GitLab's rejections, the CLI line,
//! determinism and the `medium` counts. Every test starts a real server on 127.0.0.1:0.
//! They read the store directly only for a total no endpoint gives (all notes of `medium`).

use forge_sim::{Dataset, RunningSim, SimConfig};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

async fn start(dataset: Dataset, seed: u64) -> RunningSim {
    RunningSim::start(SimConfig::new(dataset, seed))
        .await
        .expect("simulator starts")
}

struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    fn new(sim: &RunningSim, token: &str) -> Api {
        Api {
            client: test_client(),
            base: format!("{}/api/v4", sim.url),
            token: token.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .expect("request")
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json body")
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .put(format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", &self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_string()
}

/// The URL of a `Link` relation, if present.
fn link(response: &Response, rel: &str) -> Option<String> {
    let value = response.headers().get("link")?.to_str().ok()?;
    value.split(", ").find_map(|part| {
        let (url, rest) = part.split_once(">; rel=\"")?;
        (rest.trim_end_matches('"') == rel).then(|| url.trim_start_matches('<').to_string())
    })
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn auth_codes_match_gitlab() {
    let sim = start(Dataset::Small, 7).await;
    let client = test_client();
    let url = format!("{}/api/v4/groups/acme", sim.url);

    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"message": "401 Unauthorized"})
    );
    let wrong = client
        .get(&url)
        .header("PRIVATE-TOKEN", "glpat-nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // eve is a guest of acme/frontend only: backend is invisible, frontend is read-only.
    let eve = Api::new(&sim, &sim.token_for("eve").unwrap());
    let hidden = eve.get("/groups/acme%2Fbackend").await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        hidden.json::<Value>().await.unwrap(),
        json!({"message": "404 Group Not Found"})
    );
    let hidden_project = eve.get("/projects/acme%2Fbackend%2Fapi").await;
    assert_eq!(hidden_project.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        hidden_project.json::<Value>().await.unwrap(),
        json!({"message": "404 Project Not Found"})
    );
    assert_eq!(
        eve.get("/groups/acme%2Ffrontend/labels").await.status(),
        StatusCode::OK
    );
    let (status, body) = eve
        .post(
            "/groups/acme%2Ffrontend/labels",
            json!({"name": "x", "color": "#ffffff"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"message": "403 Forbidden"}));

    // The admin sees everything, including groups nobody made them a member of.
    let admin = Api::new(&sim, &sim.admin_token);
    assert_eq!(
        admin
            .get("/groups/acme%2Fbackend%2Fservices")
            .await
            .status(),
        StatusCode::OK
    );
    let me = admin.json("/user").await;
    assert_eq!(me["username"], "root");
    assert_eq!(me["is_admin"], true);
    sim.shutdown().await;
}

#[tokio::test]
async fn id_and_encoded_path_address_the_same_group_and_project() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let group = api.json("/groups/acme%2Fbackend").await;
    let id = group["id"].as_u64().unwrap();
    assert_eq!(group["full_path"], "acme/backend");
    let by_path = api.json("/groups/acme%2Fbackend/labels").await;
    let by_id = api.json(&format!("/groups/{id}/labels")).await;
    assert_eq!(by_path, by_id);
    assert!(names(&by_id, "name").contains(&"tech debt".to_string()));

    let project = api.json("/projects/acme%2Fbackend%2Fapi").await;
    assert_eq!(project["path_with_namespace"], "acme/backend/api");
    let pid = project["id"].as_u64().unwrap();
    assert_eq!(
        api.json(&format!("/projects/{pid}/milestones")).await,
        api.json("/projects/acme%2Fbackend%2Fapi/milestones").await
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn offset_pagination_has_gitlab_headers_and_links() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let path = "/projects/acme%2Fbackend%2Fapi/issues?state=all&per_page=5&page=2";
    let response = api.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-total"), "12");
    assert_eq!(header(&response, "x-total-pages"), "3");
    assert_eq!(header(&response, "x-page"), "2");
    assert_eq!(header(&response, "x-per-page"), "5");
    assert_eq!(header(&response, "x-next-page"), "3");
    assert_eq!(header(&response, "x-prev-page"), "1");
    let next = link(&response, "next").expect("rel=next");
    assert!(next.starts_with(&sim.url), "absolute link: {next}");
    assert!(
        next.contains("state=all") && next.contains("page=3"),
        "{next}"
    );
    assert!(link(&response, "prev").is_some());
    assert!(link(&response, "first").unwrap().contains("page=1"));
    assert!(link(&response, "last").unwrap().contains("page=3"));

    // Walking rel=next visits every issue exactly once; the last page has empty X-Next-Page.
    let mut url = format!(
        "{}/api/v4/projects/acme%2Fbackend%2Fapi/issues?state=all&per_page=5",
        sim.url
    );
    let mut seen = Vec::new();
    loop {
        let response = api
            .client
            .get(&url)
            .header("PRIVATE-TOKEN", &api.token)
            .send()
            .await
            .unwrap();
        let next = link(&response, "next");
        let last_next_page = header(&response, "x-next-page");
        let page: Value = response.json().await.unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|i| i["iid"].as_u64().unwrap()),
        );
        match next {
            Some(n) => url = n,
            None => {
                assert_eq!(last_next_page, "");
                break;
            }
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=12).collect::<Vec<u64>>());

    // per_page is capped at 100.
    let capped = api
        .get("/projects/acme%2Fbackend%2Fapi/issues?per_page=500")
        .await;
    assert_eq!(header(&capped, "x-per-page"), "100");
    sim.shutdown().await;
}

#[tokio::test]
async fn keyset_pagination_follows_id_after() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.admin_token);
    let mut url = format!(
        "{}/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=3",
        sim.url
    );
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let response = api
            .client
            .get(&url)
            .header("PRIVATE-TOKEN", &api.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers().get("x-total").is_none(),
            "keyset has no totals"
        );
        assert!(link(&response, "prev").is_none() && link(&response, "last").is_none());
        let next = link(&response, "next");
        let page: Value = response.json().await.unwrap();
        ids.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap()),
        );
        pages += 1;
        match next {
            Some(n) => {
                assert!(n.contains("id_after="), "{n}");
                url = n;
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 4);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ascending ids: {ids:?}"
    );
    assert_eq!(pages, 2);

    // Issues offer keyset too; labels do not, as in GitLab.
    let issues = api
        .get("/projects/acme%2Fbackend%2Fapi/issues?pagination=keyset&order_by=id&sort=desc&per_page=10")
        .await;
    assert!(link(&issues, "next").unwrap().contains("id_before="));
    let labels = api.get("/groups/acme/labels?pagination=keyset").await;
    assert_eq!(labels.status(), StatusCode::METHOD_NOT_ALLOWED);
    sim.shutdown().await;
}

#[tokio::test]
async fn small_group_tree_and_relations_read_like_gitlab() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let top = api.json("/groups?top_level_only=true").await;
    assert_eq!(names(&top, "full_path"), vec!["acme"]);
    let acme = api.json("/groups/acme").await;
    for key in [
        "project_creation_level",
        "subgroup_creation_level",
        "request_access_enabled",
        "require_two_factor_authentication",
        "two_factor_grace_period",
        "lfs_enabled",
        "mentions_disabled",
        "emails_disabled",
        "emails_enabled",
        "share_with_group_lock",
        "web_url",
        "avatar_url",
        "created_at",
        "full_name",
    ] {
        assert!(acme.get(key).is_some(), "group attribute {key}");
    }
    let mut subgroups = names(&api.json("/groups/acme/subgroups").await, "full_path");
    subgroups.sort();
    assert_eq!(subgroups, vec!["acme/backend", "acme/frontend"]);
    let mut descendants = names(
        &api.json("/groups/acme/descendant_groups").await,
        "full_path",
    );
    descendants.sort();
    assert_eq!(
        descendants,
        vec!["acme/backend", "acme/backend/services", "acme/frontend"]
    );
    let services = api.json("/groups/acme%2Fbackend%2Fservices").await;
    assert_eq!(
        services["parent_id"],
        api.json("/groups/acme%2Fbackend").await["id"]
    );

    let in_backend = api
        .json("/groups/acme%2Fbackend/projects?include_subgroups=true")
        .await;
    let mut paths = names(&in_backend, "path_with_namespace");
    paths.sort();
    assert_eq!(
        paths,
        vec!["acme/backend/api", "acme/backend/services/billing"]
    );

    // Epics nest through parent_id, including across groups; one is confidential.
    let epics = api
        .json("/groups/acme/epics?include_descendant_groups=false&state=all")
        .await;
    assert_eq!(epics.as_array().unwrap().len(), 4);
    let platform = epics
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == "Platform 2.0")
        .unwrap();
    // Children come in their relative position, and move between siblings.
    let children_path = format!("/groups/acme/epics/{}/epics", platform["iid"]);
    let titles = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_string())
            .collect()
    };
    let children = api.json(&children_path).await;
    assert_eq!(
        titles(&children),
        ["Security hardening", "Billing rewrite", "API v2"]
    );
    let id_of = |title: &str| {
        children
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"] == title)
            .unwrap()["id"]
            .clone()
    };
    let (status, moved) = api
        .put(
            &format!("{children_path}/{}", id_of("Security hardening")),
            json!({ "move_before_id": id_of("API v2") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        titles(&moved),
        ["Billing rewrite", "API v2", "Security hardening"]
    );
    assert_eq!(titles(&api.json(&children_path).await), titles(&moved));
    let (status, _) = api
        .put(
            &format!("{children_path}/{}", id_of("Billing rewrite")),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .put(
            &format!("{children_path}/{}", id_of("Billing rewrite")),
            json!({ "move_after_id": 999_999 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        epics
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["confidential"] == true)
    );
    let epic_notes = api
        .json(&format!("/groups/acme/epics/{}/notes", platform["id"]))
        .await;
    // Epic notes take the epic's id (not its iid), as in GitLab.
    assert_ne!(platform["id"], platform["iid"]);
    assert_eq!(
        api.get(&format!("/groups/acme/epics/{}/notes", platform["iid"]))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(!epic_notes.as_array().unwrap().is_empty());
    assert_eq!(epic_notes[0]["noteable_type"], "Epic");
    let awards = api
        .json(&format!(
            "/groups/acme/epics/{}/award_emoji",
            platform["iid"]
        ))
        .await;
    assert_eq!(awards[0]["name"], "thumbsup");

    let counted = api.json("/groups/acme/labels?with_counts=true").await;
    let bug = counted
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "bug")
        .unwrap();
    let total =
        bug["open_issues_count"].as_u64().unwrap() + bug["closed_issues_count"].as_u64().unwrap();
    assert!(total > 0, "{bug}");
    assert!(
        api.json("/groups/acme/labels").await[0]
            .get("open_issues_count")
            .is_none()
    );
    let iterations = api.json("/groups/acme/iterations").await;
    assert_eq!(iterations.as_array().unwrap().len(), 4);
    let boards = api.json("/groups/acme/boards").await;
    assert_eq!(
        names(&boards[0]["lists"], "list_type"),
        vec!["label", "label", "milestone"]
    );
    let members = api.json("/groups/acme%2Fbackend/members/all").await;
    assert!(names(&members, "username").contains(&"ada".to_string()));
    assert_eq!(
        api.json("/groups/acme%2Fbackend/members")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Project relations, with markdown references and a reachable upload.
    let issue = api.json("/projects/acme%2Fbackend%2Fapi/issues/2").await;
    let description = issue["description"].as_str().unwrap();
    assert!(description.contains("~bug") && description.contains('@'));
    let upload = description
        .split("](")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    let png = api
        .client
        .get(format!("{}/acme/backend/api{upload}", sim.url))
        .header("PRIVATE-TOKEN", &api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(header(&png, "content-type"), "image/png");
    let notes = api
        .json("/projects/acme%2Fbackend%2Fapi/issues/2/notes")
        .await;
    assert!(!notes.as_array().unwrap().is_empty());
    for path in [
        "merge_requests?state=all",
        "releases",
        "snippets",
        "protected_branches",
        "badges",
        "boards",
    ] {
        let list = api
            .json(&format!("/projects/acme%2Fbackend%2Fapi/{path}"))
            .await;
        assert!(!list.as_array().unwrap().is_empty(), "{path} is empty");
    }
    let discussions = api
        .json("/projects/acme%2Fbackend%2Fapi/issues/2/discussions")
        .await;
    assert_eq!(discussions[0]["notes"][0]["noteable_type"], "Issue");
    assert_eq!(discussions[0]["id"].as_str().unwrap().len(), 40);
    let closed = api
        .json("/projects/acme%2Fbackend%2Fapi/issues/3/resource_state_events")
        .await;
    assert_eq!(closed[0]["state"], "closed");
    let approvals = api
        .json("/projects/acme%2Fbackend%2Fapi/merge_requests/1/approvals")
        .await;
    assert_eq!(approvals["approved"], true);
    let group_issues = api.get("/groups/acme/issues?per_page=1").await;
    assert_eq!(header(&group_issues, "x-total"), "31");
    let users = api.json("/users?username=eve").await;
    assert_eq!(users[0]["public_email"], "");
    let ada = api.json("/users?username=ada").await;
    assert_eq!(ada[0]["public_email"], "ada@forge-sim.test");
    sim.shutdown().await;
}

#[tokio::test]
async fn writes_on_empty_read_back() {
    let sim = start(Dataset::Empty, 3).await;
    let api = Api::new(&sim, &sim.owner_token);
    let imported = api.json("/groups/imported").await;
    let parent_id = imported["id"].as_u64().unwrap();

    let (status, group) = api
        .post(
            "/groups",
            json!({
                "name": "Acme Platform", "path": "acme", "parent_id": parent_id,
                "description": "migrated", "visibility": "private", "lfs_enabled": false,
                "project_creation_level": "maintainer", "unknown_param": 1,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["full_path"], "imported/acme");
    assert_eq!(group["lfs_enabled"], false);
    assert_eq!(group["project_creation_level"], "maintainer");
    let gid = group["id"].as_u64().unwrap();
    let g = format!("/groups/{gid}");
    let taken = api
        .json(&format!("/namespaces/acme/exists?parent_id={parent_id}"))
        .await;
    assert_eq!(taken, json!({"exists": true, "suggests": ["acme1"]}));
    assert_eq!(api.json("/namespaces/imported%2Facme").await["id"], gid);

    let (status, label) = api
        .post(
            &format!("{g}/labels"),
            json!({"name": "déjà vu", "color": "#f0ad4e", "description": "Ünïcödé"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{label}");
    let labels = api.json("/groups/imported%2Facme/labels").await;
    assert_eq!(names(&labels, "name"), vec!["déjà vu"]);
    assert_eq!(labels[0]["color"], "#f0ad4e");

    // Form-encoded bodies work as well as JSON.
    let form = api
        .client
        .post(format!("{}{g}/milestones", api.base))
        .header("PRIVATE-TOKEN", &api.token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("title=v2.0&description=due+soon&due_date=2030-01-31&start_date=2030-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::CREATED);
    let milestone: Value = form.json().await.unwrap();
    assert_eq!(milestone["iid"], 1);
    assert_eq!(milestone["due_date"], "2030-01-31");
    let (status, closed) = api
        .put(
            &format!("{g}/milestones/{}", milestone["id"]),
            json!({"state_event": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["state"], "closed");

    let (status, badge) = api
        .post(&format!("{g}/badges"), json!({"name": "ci", "link_url": "https://ci/%{project_path}", "image_url": "https://ci/badge.svg"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{badge}");
    assert_eq!(badge["kind"], "group");

    let (status, board) = api
        .post(&format!("{g}/boards"), json!({"name": "Dev"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, renamed) = api
        .put(
            &format!("{g}/boards/{}", board["id"]),
            json!({"name": "Development"}),
        )
        .await;
    assert_eq!(
        (status, renamed["name"].clone()),
        (StatusCode::OK, json!("Development"))
    );
    let board_lists = format!("{g}/boards/{}/lists", board["id"]);
    let (status, list) = api
        .post(&board_lists, json!({"label_id": label["id"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    let (status, _) = api
        .post(&board_lists, json!({"milestone_id": milestone["id"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let lists = api.json(&board_lists).await;
    assert_eq!(names(&lists, "list_type"), vec!["label", "milestone"]);
    assert_eq!(lists[1]["position"], 1);

    let bjorn = api.json("/users?username=bjorn").await[0]["id"]
        .as_u64()
        .unwrap();
    let (status, member) = api
        .post(
            &format!("{g}/members"),
            json!({"user_id": bjorn, "access_level": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let members = api.json(&format!("{g}/members")).await;
    assert!(names(&members, "username").contains(&"bjorn".to_string()));

    let (status, parent) = api
        .post(
            &format!("{g}/epics"),
            json!({
                "title": "Platform 2.0", "description": "See &2", "labels": "déjà vu,new-label",
                "start_date_is_fixed": true, "start_date_fixed": "2024-01-01",
                "created_at": "2021-05-01T10:00:00Z", "confidential": false,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{parent}");
    assert_eq!(parent["created_at"], "2021-05-01T10:00:00.000Z");
    assert_eq!(parent["start_date"], "2024-01-01");
    let (status, child) = api
        .post(
            &format!("{g}/epics"),
            json!({"title": "Child", "parent_id": parent["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(child["parent_id"], parent["id"]);
    assert_eq!(child["parent_iid"], parent["iid"]);
    let (status, closed) = api
        .put(
            &format!("{g}/epics/{}", child["iid"]),
            json!({"state_event": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["state"], "closed");
    let (status, _) = api
        .post(
            &format!("{g}/epics/{}/notes", parent["id"]),
            json!({"body": "migrated note"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .post(
            &format!("{g}/epics/{}/award_emoji", parent["iid"]),
            json!({"name": "thumbsup"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .post(
            &format!("{g}/epics/{}/award_emoji", parent["iid"]),
            json!({"name": "thumbsup"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a second identical award is refused"
    );
    // Labels given by name to an epic are created in the group when missing.
    let all_labels = names(&api.json(&format!("{g}/labels")).await, "name");
    assert!(all_labels.contains(&"new-label".to_string()));
    let deleted = api
        .client
        .delete(format!("{}{g}/labels/new-label", api.base))
        .header("PRIVATE-TOKEN", &api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let all_labels = names(&api.json(&format!("{g}/labels")).await, "name");
    assert!(!all_labels.contains(&"new-label".to_string()));

    let (status, project) = api
        .post(
            "/projects",
            json!({"name": "API", "path": "api", "namespace_id": gid}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["path_with_namespace"], "imported/acme/api");
    let p = format!("/projects/{}", project["id"]);
    let (status, issue) = api
        .post(
            &format!("{p}/issues"),
            json!({"title": "Imported", "labels": ["déjà vu"], "confidential": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issue}");
    assert_eq!(issue["iid"], 1);
    let (status, _) = api
        .post(&format!("{p}/issues/1/notes"), json!({"body": "hello"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        api.json(&format!("{p}/issues/1/notes")).await[0]["body"],
        "hello"
    );
    let epic_issues = format!("{g}/epics/{}/issues", parent["iid"]);
    let (status, link) = api
        .post(&format!("{epic_issues}/{}", issue["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(api.json(&epic_issues).await[0]["epic_iid"], parent["iid"]);
    let (status, _) = api
        .post(&format!("{epic_issues}/{}", issue["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    sim.shutdown().await;
}

#[tokio::test]
async fn rejections_use_gitlab_codes_and_messages() {
    let sim = start(Dataset::Empty, 3).await;
    let api = Api::new(&sim, &sim.owner_token);
    let imported = api.json("/groups/imported").await["id"].as_u64().unwrap();
    let new_group = json!({"name": "Team", "path": "team", "parent_id": imported});
    assert_eq!(
        api.post("/groups", new_group.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, body) = api.post("/groups", new_group).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"message": "Failed to save group {:path=>[\"has already been taken\"]}"})
    );
    let (status, body) = api
        .post(
            "/groups",
            json!({"name": "Bad", "path": "bad", "parent_id": 999_999}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 Group Not Found"})
        )
    );
    let (status, body) = api.post("/groups", json!({"path": "nameless"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "name is missing"}))
    );
    let (status, body) = api
        .post(
            "/groups",
            json!({"name": "-bad name!", "path": "-bad", "parent_id": imported}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to save group {:name=>"),
        "{body}"
    );
    let (status, body) = api.put("/groups/imported", json!({"name": "!!"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"]["name"].is_array(), "{body}");

    // A user without a role in `imported` cannot create inside it.
    let eve = Api::new(&sim, &sim.token_for("eve").unwrap());
    let (status, _) = eve
        .post(
            "/groups",
            json!({"name": "Sneaky", "path": "sneaky", "parent_id": imported}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "private parent is invisible to eve"
    );

    let labels = "/groups/imported%2Fteam/labels";
    assert_eq!(
        api.post(labels, json!({"name": "bug", "color": "#ff0000"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = api
        .post(labels, json!({"name": "bug", "color": "#00ff00"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            json!({"message": "Label already exists"})
        )
    );
    let (status, body) = api
        .post(labels, json!({"name": "other", "color": "not-a-color"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"]["color"][0], "must be a valid color code");
    let (status, body) = api.post(labels, json!({"color": "#ffffff"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "name is missing"}))
    );

    let milestones = "/groups/imported%2Fteam/milestones";
    assert_eq!(
        api.post(milestones, json!({"title": "v1"})).await.0,
        StatusCode::CREATED
    );
    let (status, body) = api.post(milestones, json!({"title": "v1"})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "Failed to create milestone {:title=>[\"already being used for another group or project milestone.\"]}"})
        )
    );
    let (status, body) = api
        .post(milestones, json!({"title": "v2", "due_date": "soon"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "due_date is invalid"})
        )
    );

    let bjorn = api.json("/users?username=bjorn").await[0]["id"]
        .as_u64()
        .unwrap();
    let members = "/groups/imported%2Fteam/members";
    assert_eq!(
        api.post(members, json!({"user_id": bjorn, "access_level": 30}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = api
        .post(members, json!({"user_id": bjorn, "access_level": 30}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            json!({"message": "Member already exists"})
        )
    );
    let (status, body) = api
        .post(members, json!({"user_id": 424_242, "access_level": 30}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 User Not Found"})
        )
    );

    let (status, body) = api
        .post(
            "/groups/imported%2Fteam/epics",
            json!({"title": "x", "parent_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let missing = api.get("/groups/imported%2Fnope/labels").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let no_route = api.get("/nothing/here").await;
    assert_eq!(no_route.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        no_route.json::<Value>().await.unwrap(),
        json!({"error": "404 Not Found"})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn uploads_return_markdown_and_serve_the_file() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nhello upload\r\n--XyZ--\r\n".to_vec();
    let response = api
        .client
        .post(format!("{}/groups/acme/uploads", api.base))
        .header("PRIVATE-TOKEN", &api.token)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let upload: Value = response.json().await.unwrap();
    let url = upload["url"].as_str().unwrap();
    assert!(
        url.starts_with("/uploads/") && url.ends_with("/notes.txt"),
        "{upload}"
    );
    assert_eq!(upload["markdown"], format!("[notes.txt]({url})"));
    let file = api
        .client
        .get(format!("{}/groups/acme/-{url}", sim.url))
        .header("PRIVATE-TOKEN", &api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.text().await.unwrap(), "hello upload");
    sim.shutdown().await;
}

/// A multipart body with one file part.
fn one_file(field: &str, filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    body
}

#[tokio::test]
async fn a_group_avatar_is_set_served_and_validated() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let put = |filename: &str, content: &[u8]| {
        api.client
            .put(format!("{}/groups/acme%2Fbackend", api.base))
            .header("PRIVATE-TOKEN", &api.token)
            .header("Content-Type", "multipart/form-data; boundary=XyZ")
            .body(one_file("avatar", filename, content))
            .send()
    };
    // The sample's top group has one; a subgroup has none until one is set.
    let top = api.json("/groups/acme").await;
    assert!(
        top["avatar_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/uploads/-/system/group/avatar/1/acme-logo.png")),
        "{top}"
    );
    let none = api.get("/groups/acme%2Fbackend/avatar").await;
    assert_eq!(none.status(), StatusCode::NOT_FOUND);

    let refused = put("logo.exe", b"MZ").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let message: Value = refused.json().await.unwrap();
    assert!(
        message["message"]["avatar"][0]
            .as_str()
            .is_some_and(|m| m.starts_with("file format is not supported")),
        "{message}"
    );
    let too_big = put("big.png", &vec![0u8; 200 * 1024 + 1]).await.unwrap();
    assert_eq!(too_big.status(), StatusCode::BAD_REQUEST);

    let set = put("team.png", b"\x89PNG team").await.unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let group: Value = set.json().await.unwrap();
    assert!(
        group["avatar_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/team.png")),
        "{group}"
    );
    let served = api.get("/groups/acme%2Fbackend/avatar").await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), b"\x89PNG team");
    sim.shutdown().await;
}

#[tokio::test]
async fn same_seed_gives_identical_data() {
    let first = start(Dataset::Small, 11).await;
    let second = start(Dataset::Small, 11).await;
    let other = start(Dataset::Small, 12).await;
    assert_eq!(first.admin_token, second.admin_token);
    assert_eq!(first.owner_token, second.owner_token);
    assert_ne!(first.owner_token, other.owner_token);
    for path in [
        "/groups/1/labels",
        "/groups/1/milestones?state=all",
        "/groups/1/epics?state=all",
    ] {
        let a = Api::new(&first, &first.owner_token).json(path).await;
        let b = Api::new(&second, &second.owner_token).json(path).await;
        // Bodies are equal up to the instance's own URL.
        let a = a.to_string().replace(&first.url, "URL");
        let b = b.to_string().replace(&second.url, "URL");
        assert_eq!(a, b, "{path}");
    }
    let a = Api::new(&first, &first.owner_token)
        .json("/projects/acme%2Fbackend%2Fapi/issues?per_page=100")
        .await;
    let c = Api::new(&other, &other.owner_token)
        .json("/projects/acme%2Fbackend%2Fapi/issues?per_page=100")
        .await;
    assert_ne!(
        a[0]["created_at"], c[0]["created_at"],
        "timestamps follow the seed"
    );
    for sim in [first, second, other] {
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn medium_has_the_advertised_counts() {
    let started = std::time::Instant::now();
    let sim = start(Dataset::Medium, 1).await;
    let startup = started.elapsed();
    let api = Api::new(&sim, &sim.owner_token);
    let projects = api.get("/projects?per_page=100").await;
    assert_eq!(header(&projects, "x-total"), "20");
    let projects: Value = projects.json().await.unwrap();
    let (mut issues, mut merge_requests) = (0u64, 0u64);
    for project in projects.as_array().unwrap() {
        let id = &project["id"];
        let response = api.get(&format!("/projects/{id}/issues?per_page=1")).await;
        issues += header(&response, "x-total").parse::<u64>().unwrap();
        let response = api
            .get(&format!(
                "/projects/{id}/merge_requests?state=all&per_page=1"
            ))
            .await;
        merge_requests += header(&response, "x-total").parse::<u64>().unwrap();
    }
    assert_eq!(issues, 20_000);
    assert_eq!(merge_requests, 5_000);
    let notes = sim.sim.read().notes.len();
    assert_eq!(notes, 100_000);
    assert!(startup.as_secs() < 30, "medium started in {startup:?}");
    sim.shutdown().await;
}

#[test]
fn cli_prints_one_json_line_and_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--dataset",
            "small",
            "--seed",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn forge-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("one line");
    let info: Value = serde_json::from_str(line.trim()).expect("JSON line");
    let url = info["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(info["admin_token"].as_str().is_some_and(|t| !t.is_empty()));
    let owner = info["owner_token"]
        .as_str()
        .expect("owner_token")
        .to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let version: Value = runtime.block_on(async {
        test_client()
            .get(format!("{url}/api/v4/version"))
            .header("PRIVATE-TOKEN", owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(version["version"], "17.6.0");

    // The same seed gives the same tokens as the library.
    let expected = runtime.block_on(async {
        let sim = start(Dataset::Small, 7).await;
        let token = sim.owner_token.clone();
        sim.shutdown().await;
        token
    });
    assert_eq!(info["owner_token"], expected);
    // SIGTERM stops it cleanly.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("forge-sim did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// In a workspace build reqwest's TLS comes without a crypto provider (the appliance picks ring):
/// install it before the first client is built.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn test_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test]
async fn sudo_lets_an_admin_act_as_another_user_and_nobody_else() {
    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .unwrap();
    let c = test_client();
    let me = |token: &str, sudo: Option<&str>| {
        let mut req = c
            .get(format!("{}/api/v4/user", sim.url))
            .header("PRIVATE-TOKEN", token);
        if let Some(s) = sudo {
            req = req.header("Sudo", s);
        }
        req.send()
    };
    let as_ada: Value = me(&sim.admin_token, Some("ada"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_ada["username"], "ada");
    let refused = me(&sim.owner_token, Some("root")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["message"], "403 Forbidden - Must be admin to use sudo");
    let unknown = me(&sim.admin_token, Some("nobody")).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    sim.shutdown().await;
}

/// An epic's state events as (state, username) and its label events as (action, label, username),
/// each in the order the API lists them, and the time of every event.
type History = (
    Vec<(String, String)>,
    Vec<(String, String, String)>,
    Vec<String>,
);

async fn epic_events(api: &Api, group: &str, epic_id: &Value) -> History {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let (mut states, mut labels, mut times) = (Vec::new(), Vec::new(), Vec::new());
    let listed = api
        .json(&format!(
            "{group}/epics/{epic_id}/resource_state_events?per_page=100"
        ))
        .await;
    for e in listed.as_array().unwrap() {
        assert_eq!(e["resource_type"], "Epic");
        assert_eq!(&e["resource_id"], epic_id);
        states.push((text(&e["state"]), text(&e["user"]["username"])));
        times.push(text(&e["created_at"]));
    }
    let listed = api
        .json(&format!(
            "{group}/epics/{epic_id}/resource_label_events?per_page=100"
        ))
        .await;
    for e in listed.as_array().unwrap() {
        assert_eq!(e["resource_type"], "Epic");
        assert!(e["label"]["id"].is_u64() && e["label"]["color"].is_string());
        labels.push((
            text(&e["action"]),
            text(&e["label"]["name"]),
            text(&e["user"]["username"]),
        ));
        times.push(text(&e["created_at"]));
    }
    (states, labels, times)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test]
async fn small_epics_have_a_history_of_state_and_label_events() {
    let sim = start(Dataset::Small, 7).await;
    let api = Api::new(&sim, &sim.owner_token);
    let epic = |group: &'static str, title: &'static str| {
        let api = &api;
        async move {
            let list = api
                .json(&format!(
                    "/groups/{group}/epics?include_descendant_groups=false&state=all"
                ))
                .await;
            list.as_array()
                .unwrap()
                .iter()
                .find(|e| e["title"] == title)
                .unwrap_or_else(|| panic!("epic `{title}` in {group}"))
                .clone()
        }
    };
    let billing = epic("acme", "Billing rewrite").await;
    assert_eq!(billing["state"], "closed");
    let (states, labels, times) = epic_events(&api, "/groups/acme", &billing["id"]).await;
    assert_eq!(
        states,
        pairs(&[("closed", "chen"), ("reopened", "ada"), ("closed", "chen")])
    );
    assert_eq!(
        labels,
        triples(&[
            ("add", "feature", "bjorn"),
            ("add", "priority::high", "bjorn"),
            ("add", "déjà vu", "ada"),
        ])
    );
    // The label was added between the first close and the reopening.
    assert!(times[0] < times[5] && times[5] < times[1], "{times:?}");
    let api_v2 = epic("acme%2Fbackend", "API v2").await;
    assert_eq!(api_v2["labels"], json!(["backend-only"]));
    let (states, labels, _) = epic_events(&api, "/groups/acme%2Fbackend", &api_v2["id"]).await;
    assert!(states.is_empty());
    assert_eq!(
        labels,
        triples(&[
            ("add", "backend-only", "bjorn"),
            ("add", "tech debt", "bjorn"),
            ("remove", "tech debt", "chen"),
        ])
    );
    let old = epic("acme", "Old migration").await;
    let (states, labels, _) = epic_events(&api, "/groups/acme", &old["id"]).await;
    assert_eq!((states, labels.len()), (pairs(&[("closed", "ada")]), 0));
    // Like notes, events address the epic by id: its iid is not an epic id.
    assert_eq!(
        api.get(&format!(
            "/groups/acme/epics/{}/resource_label_events",
            billing["iid"]
        ))
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    // Paginated like every list.
    let first = api
        .get(&format!(
            "/groups/acme/epics/{}/resource_state_events?per_page=2",
            billing["id"]
        ))
        .await;
    assert_eq!(header(&first, "x-total"), "3");
    assert_eq!(header(&first, "x-next-page"), "2");
    sim.shutdown().await;
}

#[tokio::test]
async fn epic_writes_record_events_by_the_acting_user() {
    let sim = start(Dataset::Empty, 3).await;
    // The admin writes as itself (root), then for ada through Sudo.
    let admin = Api::new(&sim, &sim.admin_token);
    let g = format!("/groups/{}", admin.json("/groups/imported").await["id"]);
    let (status, epic) = admin
        .post(
            &format!("{g}/epics"),
            json!({"title": "History", "labels": "one,two"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{epic}");
    let path = format!("{g}/epics/{}", epic["iid"]);
    let put = |body: Value| admin.put(&path, body);
    assert_eq!(put(json!({"state_event": "close"})).await.0, StatusCode::OK);
    // Closing a closed epic and reopening an open one change nothing and record nothing.
    assert_eq!(put(json!({"state_event": "close"})).await.0, StatusCode::OK);
    assert_eq!(
        put(json!({"state_event": "reopen"})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        put(json!({"state_event": "reopen"})).await.0,
        StatusCode::OK
    );
    let (_, after) = put(json!({"add_labels": "three,one", "remove_labels": "two"})).await;
    assert_eq!(after["labels"], json!(["one", "three"]));
    assert_eq!(
        put(json!({"labels": "three"})).await.1["labels"],
        json!(["three"])
    );
    let sudo = test_client()
        .put(format!("{}/api/v4{path}", sim.url))
        .header("PRIVATE-TOKEN", &sim.admin_token)
        .header("Sudo", "ada")
        .json(&json!({"state_event": "close", "add_labels": "four"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sudo.status(), StatusCode::OK);
    let (states, labels, _) = epic_events(&admin, &g, &epic["id"]).await;
    assert_eq!(
        states,
        pairs(&[("closed", "root"), ("reopened", "root"), ("closed", "ada")])
    );
    assert_eq!(
        labels,
        triples(&[
            ("add", "one", "root"),
            ("add", "two", "root"),
            ("add", "three", "root"),
            ("remove", "two", "root"),
            ("remove", "one", "root"),
            ("add", "four", "ada"),
        ])
    );
    sim.shutdown().await;
}

//! Shared support for integration tests: simulators, the real binary, and a field-by-field snapshot of a
//! group tree read through a GitLab API, so a test compares source and destination as a user would.
#![allow(dead_code)]

use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

pub const SEED: u64 = 7;

pub async fn source() -> RunningSim {
    RunningSim::start(SimConfig::new(Dataset::Small, SEED))
        .await
        .expect("start the source simulator")
}

pub async fn destination() -> RunningSim {
    RunningSim::start(SimConfig::new(Dataset::Empty, SEED))
        .await
        .expect("start the destination simulator")
}

/// The appliance binary built for these tests.
pub fn appliance() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_appliance"));
    cmd.env_remove("APPLIANCE_SOURCE_TOKEN")
        .env_remove("APPLIANCE_DESTINATION_TOKEN")
        .env("APPLIANCE_LOG", "warn");
    cmd
}

/// `appliance migrate --json --project PROJECT --to imported` from `src` to `dst`, the source's
/// owner token and `token` at the destination, both in the environment.
pub fn migrate_one_project(
    src: &forge_sim::RunningSim,
    dst: &forge_sim::RunningSim,
    project: &str,
    data: &std::path::Path,
    token: &str,
) -> Command {
    let mut cmd = appliance();
    cmd.args([
        "migrate",
        "--json",
        "--project",
        project,
        "--to",
        "imported",
    ])
    .args(["--source-url", &src.url, "--destination-url", &dst.url])
    .arg("--data")
    .arg(data)
    .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
    .env("APPLIANCE_DESTINATION_TOKEN", token);
    cmd
}

pub fn http() -> reqwest::Client {
    appliance::install_crypto_provider();
    reqwest::Client::new()
}

/// Every item of a GitLab list endpoint, following `X-Next-Page`.
pub async fn get_all(base: &str, token: &str, path: &str) -> Vec<Value> {
    let client = http();
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{base}/api/v4/{path}{sep}per_page=100&page={page}");
        let resp = client
            .get(&url)
            .header("PRIVATE-TOKEN", token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        let next = resp
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let items: Vec<Value> = resp.json().await.expect("a JSON array");
        out.extend(items);
        match next.parse::<u64>() {
            Ok(n) => page = n,
            Err(_) => return out,
        }
    }
}

pub async fn get(base: &str, token: &str, path: &str) -> Option<Value> {
    let body = get_bytes(base, token, path).await?;
    Some(serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}")))
}

/// Every node of a GraphQL connection: `document` takes `$first` and `$after` besides `variables`,
/// and the connection is at `path` in `data` (e.g. `["group", "iterationCadences"]`).
pub async fn graphql_all(
    base: &str,
    token: &str,
    document: &str,
    variables: Value,
    path: &[&str],
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut vars = variables.clone();
        vars["first"] = Value::from(100);
        vars["after"] = after;
        let resp = http()
            .post(format!("{base}/api/graphql"))
            .header("PRIVATE-TOKEN", token)
            .json(&serde_json::json!({ "query": document, "variables": vars }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {base}/api/graphql: {e}"));
        assert!(resp.status().is_success(), "GraphQL: {}", resp.status());
        let body: Value = resp.json().await.expect("a JSON body");
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        let mut at = &body["data"];
        for key in path {
            at = &at[*key];
        }
        out.extend(at["nodes"].as_array().expect("nodes").iter().cloned());
        if at["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = at["pageInfo"]["endCursor"].clone();
    }
}

/// The bytes a GitLab API path serves (a file download), or None for a 404.
pub async fn get_bytes(base: &str, token: &str, path: &str) -> Option<Vec<u8>> {
    let url = format!("{base}/api/v4/{path}");
    let resp = http()
        .get(&url)
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    if resp.status() == 404 {
        return None;
    }
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    Some(resp.bytes().await.expect("a body").to_vec())
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `text` with its upload secrets masked (they differ at every GitLab), and the digests of the files it
/// links to in group `gid`, as a user could compare them.
async fn linked_files(base: &str, token: &str, gid: u64, text: &str) -> (Value, Value) {
    let mut files = Vec::new();
    for link in appliance::relations::uploads::links(text) {
        let bytes = get_bytes(base, token, &format!("groups/{gid}{link}"))
            .await
            .unwrap_or_else(|| panic!("{link}, linked in group {gid}, is served"));
        files.push(Value::String(sha256(&bytes)));
    }
    (
        Value::String(appliance::relations::uploads::masked(text)),
        Value::Array(files),
    )
}

/// A group's avatar, as a digest (null without one).
async fn avatar(base: &str, token: &str, group: &Value) -> Value {
    let gid = group["id"].as_u64().expect("group id");
    match group["avatar_url"].as_str() {
        Some(_) => {
            let bytes = get_bytes(base, token, &format!("groups/{gid}/avatar"))
                .await
                .unwrap_or_else(|| {
                    panic!("group {gid} has an avatar_url, so its avatar is served")
                });
            Value::String(sha256(&bytes))
        }
        None => Value::Null,
    }
}

pub fn enc(path: &str) -> String {
    path.replace('/', "%2F")
}

fn fields(v: &Value, names: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for n in names {
        m.insert((*n).to_string(), v.get(*n).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

fn sorted(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by_key(|v| v.to_string());
    items
}

/// What a user checks after a migration, per group (keyed by its path below the root): the group's
/// attributes, and its labels, milestones and badges with the fields the migration carries.
pub type TreeSnapshot = BTreeMap<String, Value>;

pub async fn snapshot(base: &str, token: &str, root: &str) -> TreeSnapshot {
    let root_group = get(base, token, &format!("groups/{}", enc(root)))
        .await
        .unwrap_or_else(|| panic!("group {root} exists on {base}"));
    let mut groups = vec![root_group.clone()];
    let id = root_group["id"].as_u64().expect("group id");
    groups.extend(get_all(base, token, &format!("groups/{id}/descendant_groups")).await);
    let mut out = BTreeMap::new();
    for g in groups {
        let gid = g["id"].as_u64().expect("group id");
        let full = g["full_path"].as_str().expect("full_path");
        let rel = full
            .strip_prefix(root)
            .unwrap_or(full)
            .trim_start_matches('/')
            .to_string();
        let labels: Vec<Value> = get_all(
            base,
            token,
            &format!("groups/{gid}/labels?include_ancestor_groups=false"),
        )
        .await
        .iter()
        .map(|l| fields(l, &["name", "color", "description"]))
        .collect();
        let mut milestones: Vec<Value> = Vec::new();
        for m in get_all(base, token, &format!("groups/{gid}/milestones")).await {
            let mut f = fields(
                &m,
                &["title", "description", "state", "start_date", "due_date"],
            );
            let text = m["description"].as_str().unwrap_or_default();
            (f["description"], f["description_files"]) = linked_files(base, token, gid, text).await;
            milestones.push(f);
        }
        let badges: Vec<Value> = get_all(base, token, &format!("groups/{gid}/badges"))
            .await
            .iter()
            .map(|b| fields(b, &["name", "link_url", "image_url"]))
            .collect();
        let mut attrs = fields(
            &g,
            &[
                "name",
                "description",
                "visibility",
                "project_creation_level",
                "subgroup_creation_level",
                "request_access_enabled",
                "require_two_factor_authentication",
                "two_factor_grace_period",
                "lfs_enabled",
                "mentions_disabled",
            ],
        );
        let text = g["description"].as_str().unwrap_or_default();
        (attrs["description"], attrs["description_files"]) =
            linked_files(base, token, gid, text).await;
        attrs["avatar_sha256"] = avatar(base, token, &g).await;
        attrs["labels"] = Value::Array(sorted(labels));
        attrs["milestones"] = Value::Array(sorted(milestones));
        attrs["badges"] = Value::Array(sorted(badges));
        out.insert(rel, attrs);
    }
    out
}

/// Asserts two snapshots are equal, naming the first group and field that differ.
pub fn assert_same_tree(source: &TreeSnapshot, dest: &TreeSnapshot) {
    let s_keys: Vec<_> = source.keys().collect();
    let d_keys: Vec<_> = dest.keys().collect();
    assert_eq!(s_keys, d_keys, "the destination has a different group tree");
    for (path, s) in source {
        let d = &dest[path];
        for (field, sv) in s.as_object().expect("object") {
            assert_eq!(
                sv, &d[field],
                "group `{path}`: `{field}` differs between source and destination"
            );
        }
    }
}

/// Counts per relation of the source tree: (labels, milestones, badges, groups).
pub fn counts(t: &TreeSnapshot) -> (usize, usize, usize, usize) {
    let n = |k: &str| {
        t.values()
            .map(|g| g[k].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    (n("labels"), n("milestones"), n("badges"), t.len())
}

/// Asserts the sample tree has what the file comparisons need: an avatar on the top group, and files
/// linked from a subgroup's and a milestone's description (so comparing them can fail).
pub fn assert_has_group_files(t: &TreeSnapshot) {
    assert!(
        t[""]["avatar_sha256"].is_string(),
        "the top group has an avatar: {:?}",
        t[""]
    );
    assert!(
        t.values().any(|g| g["description_files"]
            .as_array()
            .is_some_and(|f| !f.is_empty())),
        "a group's description links a file"
    );
    assert!(
        t.values().any(
            |g| g["milestones"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["description_files"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty()))
        ),
        "a milestone's description links a file"
    );
}

/// Waits until `ready` says so, then kills the child; fails if the child ended first.
pub async fn kill_when(
    child: &mut std::process::Child,
    what: &str,
    mut ready: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} ended before it could be killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Like [`kill_when`], but stops the child with `signal` (`KILL`, `INT` as Ctrl-C sends, `TERM`) and
/// waits up to 30 s for it to end.
pub async fn stop_when(
    child: &mut std::process::Child,
    what: &str,
    signal: &str,
    mut ready: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} ended before it could be stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -s {signal}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not stop within 30 s of SIG{signal}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs a command off the async runtime (the simulators keep serving meanwhile).
pub async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run appliance"))
        .await
        .expect("join")
}

/// `appliance migrate --json --group GROUP --to TO [EXTRA...]` from `src` into `dst`.
pub async fn migrate_group(
    src: &RunningSim,
    dst: &RunningSim,
    data: &std::path::Path,
    group: &str,
    to: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = appliance();
    cmd.args(["migrate", "--json", "--group", group, "--to", to])
        .args(["--source-url", &src.url, "--destination-url", &dst.url])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_SOURCE_TOKEN", &src.owner_token)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token);
    run(cmd).await
}

/// What a command printed, for assertion messages.
pub fn explain(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// The JSON report a `--json` run printed.
pub fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the report is JSON ({e}): {}", explain(out)))
}

/// What a simulator has answered so far (`GET /-/sim/requests`): `total`, `by_request`, `injected`.
pub async fn sim_requests(sim: &RunningSim) -> Value {
    http()
        .get(format!("{}/-/sim/requests", sim.url))
        .send()
        .await
        .expect("GET /-/sim/requests")
        .json()
        .await
        .expect("the request counts are JSON")
}

/// Replaces a simulator's fault configuration (`{}` clears it).
pub async fn set_faults(sim: &RunningSim, cfg: Value) {
    let resp = http()
        .put(format!("{}/-/sim/faults", sim.url))
        .json(&cfg)
        .send()
        .await
        .expect("PUT /-/sim/faults");
    assert!(
        resp.status().is_success(),
        "PUT /-/sim/faults: {}",
        resp.status()
    );
}

/// An epic's history as a user reads it (the epic by its id): its state events and its label events,
/// each list as the API gives it (oldest first), as (what changed, who changed it): `closed`,
/// `reopened`, `add <label title>`, `remove <label title>`, with the user's whole record.
pub async fn epic_events(
    base: &str,
    token: &str,
    group: &str,
    epic_id: u64,
) -> [Vec<(String, Value)>; 2] {
    let events = |kind: &'static str| {
        let path = format!(
            "groups/{}/epics/{epic_id}/resource_{kind}_events",
            enc(group)
        );
        async move { get_all(base, token, &path).await }
    };
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let states = events("state")
        .await
        .iter()
        .map(|e| (text(e, "state"), e["user"].clone()))
        .collect();
    let labels = events("label")
        .await
        .iter()
        .map(|e| {
            let what = format!("{} {}", text(e, "action"), text(&e["label"], "name"));
            (what, e["user"].clone())
        })
        .collect();
    [states, labels]
}

/// Everything a group migration writes, per group of the tree (keyed by its path below `root`), as a
/// user reads it through the API: the [`snapshot`] of each group, its members, its epics (each with its
/// notes, award emoji, history, parent and ordered children), boards with their lists, iteration
/// cadences and iterations. Lists keep every record, so a record written twice or missing shows, and
/// nothing destination-specific (ids, upload secrets, times: GitLab sets an epic's creation time only
/// for an owner or administrator writing it) is kept, so two destinations that
/// received the same migration give equal dumps.
pub async fn destination_dump(base: &str, token: &str, root: &str) -> TreeSnapshot {
    let mut tree = snapshot(base, token, root).await;
    let top = get(base, token, &format!("groups/{}", enc(root)))
        .await
        .expect("the root group");
    let mut groups = vec![top.clone()];
    let id = top["id"].as_u64().expect("group id");
    groups.extend(get_all(base, token, &format!("groups/{id}/descendant_groups")).await);
    for g in groups {
        let full = g["full_path"].as_str().expect("full_path").to_string();
        let rel = full
            .strip_prefix(root)
            .unwrap_or(&full)
            .trim_start_matches('/')
            .to_string();
        let entry = tree.get_mut(&rel).expect("the group is in the snapshot");
        entry["members"] = Value::Array(sorted(
            get_all(base, token, &format!("groups/{}/members", enc(&full)))
                .await
                .iter()
                .map(|m| fields(m, &["username", "access_level"]))
                .collect(),
        ));
        entry["epics"] = Value::Array(epics_dump(base, token, &full).await);
        entry["boards"] = Value::Array(boards_dump(base, token, &full).await);
        let (cadences, iterations) = iterations_dump(base, token, &full).await;
        entry["iterations_cadences"] = cadences;
        entry["iterations"] = iterations;
    }
    tree
}

/// The epics of one group (not its subgroups'), sorted, each with what a user compares.
async fn epics_dump(base: &str, token: &str, group: &str) -> Vec<Value> {
    let g = enc(group);
    let all = get_all(
        base,
        token,
        &format!("groups/{g}/epics?include_descendant_groups=false&state=all"),
    )
    .await;
    let username = |v: &Value| v["username"].clone();
    let mut out = Vec::new();
    for e in &all {
        let (id, iid) = (e["id"].as_u64().unwrap(), e["iid"].as_u64().unwrap());
        let notes: Vec<Value> = get_all(
            base,
            token,
            &format!("groups/{g}/epics/{id}/notes?sort=asc"),
        )
        .await
        .iter()
        .filter(|n| n["system"] != true)
        .map(|n| {
            let body = appliance::relations::uploads::masked(n["body"].as_str().unwrap_or(""));
            serde_json::json!({ "body": body, "author": username(&n["author"]) })
        })
        .collect();
        let emoji = sorted(
            get_all(base, token, &format!("groups/{g}/epics/{iid}/award_emoji"))
                .await
                .iter()
                .map(|a| serde_json::json!({ "name": a["name"], "user": username(&a["user"]) }))
                .collect(),
        );
        let children: Vec<Value> = get_all(base, token, &format!("groups/{g}/epics/{iid}/epics"))
            .await
            .iter()
            .map(|c| c["title"].clone())
            .collect();
        let parent = match e["parent_id"].as_u64() {
            Some(pid) => match all.iter().find(|p| p["id"].as_u64() == Some(pid)) {
                Some(p) => p["title"].clone(),
                None => Value::String("(in another group)".into()),
            },
            None => Value::Null,
        };
        let [states, labels] = epic_events(base, token, group, id).await;
        let history = |events: Vec<(String, Value)>| -> Value {
            events
                .into_iter()
                .map(|(what, user)| serde_json::json!([what, username(&user)]))
                .collect()
        };
        let description =
            appliance::relations::uploads::masked(e["description"].as_str().unwrap_or(""));
        let mut f = fields(
            e,
            &[
                "title",
                "state",
                "confidential",
                "start_date_fixed",
                "due_date_fixed",
                "labels",
            ],
        );
        f["description"] = Value::String(description);
        f["author"] = username(&e["author"]);
        f["parent"] = parent;
        f["children"] = Value::Array(children);
        f["notes"] = Value::Array(notes);
        f["award_emoji"] = Value::Array(emoji);
        f["state_events"] = history(states);
        f["label_events"] = history(labels);
        out.push(f);
    }
    sorted(out)
}

/// The boards of one group with their lists in position order, sorted.
async fn boards_dump(base: &str, token: &str, group: &str) -> Vec<Value> {
    let mut boards = Vec::new();
    for b in get_all(base, token, &format!("groups/{}/boards", enc(group))).await {
        let mut lists: Vec<&Value> = b["lists"].as_array().expect("lists").iter().collect();
        lists.sort_by_key(|l| l["position"].as_u64());
        let lists: Vec<Value> = lists
            .iter()
            .map(|l| {
                serde_json::json!([
                    l["list_type"],
                    l["label"]["name"],
                    l["milestone"]["title"],
                    l["iteration"]["start_date"]
                ])
            })
            .collect();
        boards.push(serde_json::json!({
            "name": b["name"], "hide_backlog_list": b["hide_backlog_list"],
            "hide_closed_list": b["hide_closed_list"], "lists": lists,
        }));
    }
    sorted(boards)
}

/// The iteration cadences and iterations of one group, read through GraphQL as GitLab serves them.
async fn iterations_dump(base: &str, token: &str, group: &str) -> (Value, Value) {
    const CADENCES: &str = "query($fullPath: ID!, $first: Int, $after: String) { group(fullPath: $fullPath) {
      iterationCadences(first: $first, after: $after) {
        nodes { title description automatic startDate durationInWeeks iterationsInAdvance active rollOver }
        pageInfo { hasNextPage endCursor } } } }";
    const ITERATIONS: &str =
        "query($fullPath: ID!, $first: Int, $after: String) { group(fullPath: $fullPath) {
      iterations(includeAncestors: false, first: $first, after: $after) {
        nodes { title description startDate dueDate iterationCadence { title } }
        pageInfo { hasNextPage endCursor } } } }";
    let vars = serde_json::json!({ "fullPath": group });
    let cadences = graphql_all(
        base,
        token,
        CADENCES,
        vars.clone(),
        &["group", "iterationCadences"],
    )
    .await;
    let iterations: Vec<Value> =
        graphql_all(base, token, ITERATIONS, vars, &["group", "iterations"])
            .await
            .iter()
            .map(|i| {
                serde_json::json!([
                    i["title"],
                    i["description"],
                    i["startDate"],
                    i["dueDate"],
                    i["iterationCadence"]["title"]
                ])
            })
            .collect();
    (
        Value::Array(sorted(cadences)),
        Value::Array(sorted(iterations)),
    )
}

/// Asserts two [`destination_dump`]s are equal, naming the first group and field that differ.
pub fn assert_same_dump(what: &str, want: &TreeSnapshot, got: &TreeSnapshot) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: the destination has a different group tree"
    );
    for (path, w) in want {
        for (field, wv) in w.as_object().expect("object") {
            let gv = &got[path][field];
            assert!(
                wv == gv,
                "{what}: group `{path}`: `{field}` differs from a clean run's\n want: {wv:#}\n  got: {gv:#}"
            );
        }
    }
}

/// Per entity (by source path) and relation: status and (source, fetched, imported) counts of a
/// `--json` report, to compare two runs' stats exactly.
pub fn report_stats(report: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in report["entities"].as_array().expect("entities") {
        let path = e["source_full_path"].as_str().expect("source_full_path");
        for s in e["stats"].as_array().expect("stats") {
            out.insert(
                format!("{path} {}", s["relation"].as_str().unwrap_or("")),
                serde_json::json!([s["status"], s["source"], s["fetched"], s["imported"]]),
            );
        }
    }
    out
}

/// The stats row of `relation` of a `--json` report's entity.
pub fn stat(entity: &Value, relation: &str) -> Value {
    entity["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .find(|s| s["relation"] == relation)
        .cloned()
        .unwrap_or_else(|| panic!("no {relation} stats: {entity:#}"))
}

/// Every row of kind `rows` (`failures` or `skipped`) of every entity of a `--json` report.
pub fn report_rows<'a>(report: &'a Value, rows: &str) -> Vec<&'a Value> {
    report["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .flat_map(|e| e[rows].as_array().expect("rows").iter())
        .collect()
}

/// Makes the destination refuse one label of the source group `group` (its first), the way GitLab
/// refuses a record (422 "Label is invalid"), and returns the label's name.
pub async fn refuse_a_label(src: &RunningSim, dst: &RunningSim, group: &str) -> String {
    let victim = get_all(
        &src.url,
        &src.owner_token,
        &format!("groups/{}/labels?include_ancestor_groups=false", enc(group)),
    )
    .await[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    set_faults(
        dst,
        serde_json::json!({"reject": [{"method": "POST", "path_contains": "/labels",
            "body_contains": victim, "status": 422, "message": "Label is invalid"}]}),
    )
    .await;
    victim
}

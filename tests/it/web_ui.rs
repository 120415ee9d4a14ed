//! The web page of `appliance serve` driven in Debian's chromium, headless, through chromedriver
//! (WebDriver): sign in through the form (a wrong token first), start a migration of `acme` from the
//! form, see its status go from Running to Partially completed without reloading (a label the
//! destination refuses), open its errors and its details, verify a bundle and replay it, sign out.
//! It also takes a screenshot of the history with a running, a finished and a partially completed
//! migration (to `$WEB_UI_SCREENSHOT` when set).
//!
//! chromium and chromedriver are Debian's (`apt-get install chromium chromium-driver`, which `.ci/run`
//! does); `CHROMIUM` and `CHROMEDRIVER` name others. Without them the test fails and says so.
//!
//! The WebDriver client is the few commands below over reqwest (already a dependency): W3C WebDriver
//! is JSON over HTTP, and a client crate would add more to build than it saves here.

use crate::common;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const API_TOKEN: &str = "web-ui-api-token-0123456789abcdef";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `appliance serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dst: &forge_sim::RunningSim, data: &Path) -> Server {
    let mut child = appliance()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--destination-url",
            &dst.url,
        ])
        .arg("--data")
        .arg(data)
        .env("APPLIANCE_DESTINATION_TOKEN", &dst.owner_token)
        .env("APPLIANCE_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start appliance serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Server { child, url }
}

/// A program the test needs: `$VAR`, else Debian's path; a clear failure when it is not there.
fn program(var: &str, debian: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(debian));
    assert!(
        path.is_file(),
        "{} is not installed: the web page's browser test needs it (apt-get install -y chromium \
         chromium-driver, as .ci/run does; or set {var} to another one)",
        path.display()
    );
    let _ = package;
    path
}

/// chromedriver and one headless chromium session.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start() -> Browser {
        let chromium = program("CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let http = http();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .map(|v| v["value"]["ready"] == true),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1300",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("POST /session")
            .json()
            .await
            .expect("JSON");
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {resp}"));
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.expect("a WebDriver answer");
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_string()
    }

    async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap().to_string()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()?.first()?[ELEMENT].as_str().map(String::from)
    }

    async fn find(&self, css: &str) -> String {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!("no element {css} in:\n{}", self.source().await),
        }
    }

    /// The text of `css`, or None when it is not there or was replaced while read (the page's script
    /// replaces the live region every two seconds).
    async fn try_text(&self, css: &str) -> Option<String> {
        let el = self.try_find(css).await?;
        let resp = self
            .http
            .get(format!("{}/element/{el}/text", self.session))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json::<Value>().await.ok()?["value"]
            .as_str()
            .map(String::from)
    }

    async fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            if let Some(t) = self.try_text(css).await {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} in:\n{}", self.source().await)
    }

    async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({ "text": text }))
            .await;
    }

    /// Clicks `css`, finding it again if the page's script replaced it in between.
    async fn click(&self, css: &str) {
        for _ in 0..20 {
            let el = self.find(css).await;
            let resp = self
                .http
                .post(format!("{}/element/{el}/click", self.session))
                .json(&json!({}))
                .send()
                .await
                .expect("WebDriver answers");
            if resp.status().is_success() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not click {css}");
    }

    /// Waits until `css`'s text satisfies `ok`; the page is not reloaded meanwhile (only its script
    /// changes it).
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(t) = self.try_text(css).await
                && ok(&t)
            {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never showed {what}; the page:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the page's URL ends with `suffix` (a form post and its redirect are done).
    async fn wait_url(&self, suffix: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {url}, not at ...{suffix}; the page:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The open alert's text, if a script opened one.
    async fn alert(&self) -> Option<String> {
        let resp = self
            .http
            .get(format!("{}/alert/text", self.session))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json::<Value>().await.ok()?["value"]
            .as_str()
            .map(String::from)
    }

    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .expect("base64 PNG")
    }

    async fn quit(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Waits until the destination holds a write (the migration is running and cannot move on).
async fn wait_holding(dst: &forge_sim::RunningSim) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Value = http()
            .get(format!("{}/-/sim/requests", dst.url))
            .send()
            .await
            .expect("GET /-/sim/requests")
            .json()
            .await
            .expect("JSON");
        if counts["injected"]["held"].as_u64() >= Some(1) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the destination never held a write"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills and sends the start form: group `path` of the source into `imported/<slug>`, without its
/// projects (they are then listed as left out, with the reason).
async fn start_from_form(b: &Browser, src: &forge_sim::RunningSim, path: &str, slug: &str) {
    b.fill("#source_url", &src.url).await;
    b.fill("#source_token", &src.owner_token).await;
    b.fill("#source_full_path", path).await;
    b.fill("#destination_namespace", "imported").await;
    b.fill("#destination_slug", slug).await;
    let checkbox = b.find("#migrate_projects").await;
    if b.get(&format!("/element/{checkbox}/selected")).await == true {
        b.click("#migrate_projects").await;
    }
    b.click("form.start button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_signs_in_starts_a_migration_and_shows_its_status_errors_and_details() {
    let b = Browser::start().await;
    let (src, dst) = (source().await, destination().await);
    let data = tempfile::tempdir().unwrap();
    let bundles = data.path().join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("bundles/samples/acme.bundle"),
        bundles.join("acme.bundle"),
    )
    .unwrap();
    let server = serve(&dst, data.path());
    let mut pages = Vec::new();

    // Not signed in: the sign-in form. A wrong token is refused with a message, and not echoed.
    b.goto(&format!("{}/", server.url)).await;
    assert!(b.url().await.ends_with("/login"), "{}", b.url().await);
    b.fill("#token", "not-the-token-xyz").await;
    b.click("form.login button[type=submit]").await;
    let refused = b.text("[role=alert]").await;
    assert!(
        refused.contains("not this appliance's API token"),
        "{refused}"
    );
    assert!(!b.source().await.contains("not-the-token-xyz"));
    b.fill("#token", API_TOKEN).await;
    b.click("form.login button[type=submit]").await;
    b.wait_url(&format!("{}/", server.url)).await;
    assert!(b.text("#history-h").await.contains("Import history"));
    let cookies = b.get("/cookie").await;
    let cookie = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "appliance_token")
        .expect("the session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");

    // A hostile group name comes back as text in the refusal, and runs nothing.
    start_from_form(&b, &src, "<script>alert(1)</script>", "x").await;
    let refusal = b.text("[role=alert]").await;
    assert!(refusal.starts_with("Not done:"), "{refusal}");
    assert_eq!(b.alert().await, None, "a script ran");
    assert!(!b.source().await.contains("<script>alert"));
    pages.push(b.source().await);

    // A migration that the destination holds (running), then lets go with one label refused.
    let labels = get_all(&src.url, &src.owner_token, "groups/acme/labels").await;
    let victim = labels[0]["name"].as_str().unwrap().to_string();
    let reject = json!([{ "method": "POST", "path_contains": "/labels", "body_contains": victim,
                          "status": 400, "message": "{\"title\":[\"is invalid\"]}" }]);
    set_faults(
        &dst,
        json!({ "hold": { "when": { "method": "write" }, "after": 1 }, "reject": reject }),
    )
    .await;
    b.goto(&format!("{}/", server.url)).await;
    start_from_form(&b, &src, "acme", "acme").await;
    assert!(
        b.text("[role=status].notice")
            .await
            .contains("Migration 1 started"),
        "{}",
        b.source().await
    );
    wait_holding(&dst).await;
    b.wait_text("#import-1 .badge", "Running", |t| t.contains("Running"))
        .await;
    assert!(b.text("#import-1").await.contains("acme"));
    set_faults(&dst, json!({ "reject": reject })).await;
    // The page changes by itself (its script), from Running to Partially completed.
    b.wait_text("#import-1 .badge", "Partially completed", |t| {
        t.contains("Partially completed")
    })
    .await;
    b.click("#errors-1 summary").await;
    let errors = b.text("#errors-1").await;
    assert!(errors.contains("is invalid"), "{errors}");
    assert!(errors.contains(&victim), "{errors}");
    pages.push(b.source().await);

    b.click("#import-1 a[href='/imports/1']").await;
    b.wait_url("/imports/1").await;
    let details = b.text("main").await;
    for want in [
        "What moved, by relation",
        "labels",
        "Errors: records the destination did not take",
        "Left out on purpose",
        "Partially completed",
        &victim,
    ] {
        assert!(
            details.contains(want),
            "no {want:?} in the details:\n{details}"
        );
    }
    pages.push(b.source().await);

    // A bundle on disk: verify it from the page, then replay it (a finished migration).
    set_faults(&dst, json!({})).await;
    b.goto(&format!("{}/", server.url)).await;
    assert!(b.text("#bundles").await.contains("Not verified"));
    b.click("#bundles form[action='/bundles/verify'] button")
        .await;
    b.wait_text("#bundles", "Intact", |t| t.contains("Intact"))
        .await;
    b.fill("#replay-ns-0", "imported").await;
    b.fill("#replay-slug-0", "acme-offline").await;
    b.click("form.replay button[type=submit]").await;
    b.wait_text("#import-2 .badge", "the replay's end", |t| {
        t.contains("Finished") || t.contains("Partially completed")
    })
    .await;
    assert!(b.text("#import-2").await.contains("bundle acme.bundle"));

    // A third one held running: the history now shows running, finished and partially completed.
    set_faults(
        &dst,
        json!({ "hold": { "when": { "method": "write" }, "after": 1 } }),
    )
    .await;
    start_from_form(&b, &src, "acme", "acme-live").await;
    wait_holding(&dst).await;
    b.wait_text("#import-3 .badge", "Running", |t| t.contains("Running"))
        .await;
    b.goto(&format!("{}/", server.url)).await;
    let png = b.screenshot().await;
    assert_eq!(&png[1..4], b"PNG");
    if let Some(path) = std::env::var_os("WEB_UI_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap();
    }
    pages.push(b.source().await);

    // The running one's details offer to cancel it; once canceled, they say so and offer it no more.
    b.click("#import-3 a[href='/imports/3']").await;
    b.wait_url("/imports/3").await;
    pages.push(b.source().await);
    b.click("form.cancel button[type=submit]").await;
    b.wait_url("/imports/3").await;
    b.wait_text("h1 .badge", "Canceled", |t| t.contains("Canceled"))
        .await;
    assert_eq!(b.try_find("form.cancel").await, None);

    // No page ever held a token.
    for html in &pages {
        assert!(!html.contains(API_TOKEN), "the API token is in a page");
        assert!(
            !html.contains(&src.owner_token),
            "the source token is in a page"
        );
    }

    // Sign out: the cookie is gone and the history asks to sign in again.
    b.click("form.logout button").await;
    b.wait_url("/login").await;
    b.goto(&format!("{}/", server.url)).await;
    assert!(b.url().await.ends_with("/login"));
    set_faults(&dst, json!({})).await;
    b.quit().await;
}

/// The page's answers without a browser: signed out, a form from another site, a stale form token.
#[tokio::test(flavor = "multi_thread")]
async fn forms_from_elsewhere_and_without_the_session_are_refused() {
    let dst = destination().await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(&dst, data.path());
    appliance::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    let resp = client
        .get(format!("{}/fragments/history", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = client
        .post(format!("{}/login", server.url))
        .form(&[("token", API_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly; SameSite=Strict; Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let resp = client
        .post(format!("{}/login", server.url))
        .header("x-forwarded-proto", "https")
        .form(&[("token", API_TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );

    let page = client
        .get(format!("{}/", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains(API_TOKEN));
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form token")
        .to_string();

    // From another site: refused before anything is read.
    let resp = client
        .post(format!("{}/migrations", server.url))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str()), ("source_url", "http://x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("another site"));
    // Without the form token (or with another session's): refused with what to do.
    let resp = client
        .post(format!("{}/migrations", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", "0000"), ("source_url", "http://x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("Reload the page"));
    // Signed out: to the sign-in form.
    let resp = client
        .post(format!("{}/migrations", server.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // The form, empty: says what to enter, as a page (not an internal error).
    let resp = client
        .post(format!("{}/migrations", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Enter the source GitLab URL")
    );
    // A migration's pages: signed out, to the sign-in form (the fragment: 401); a migration that
    // does not exist, or a path that names none, is "no such migration", not an error.
    for path in ["/imports/1", "/imports/1/unmapped-users.csv"] {
        let resp = client
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], "/login", "{path}");
    }
    let resp = client
        .get(format!("{}/fragments/imports/1", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for path in [
        "/imports/999",
        "/imports/abc",
        "/imports/-1/unmapped-users.csv",
    ] {
        let resp = client
            .get(format!("{}{path}", server.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = client
        .get(format!("{}/imports/%3Cscript%3E", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("There is no migration &lt;script&gt;."),
        "{body}"
    );
    // A wrong token in the sign-in form: 401 with a message, the token not repeated.
    let resp = client
        .post(format!("{}/login", server.url))
        .form(&[("token", "wrong-token-123")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body = resp.text().await.unwrap();
    assert!(body.contains("That is not this appliance"), "{body}");
    assert!(!body.contains("wrong-token-123"));
    // The API is unchanged: JSON errors, its own token check.
    let resp = client
        .get(format!("{}/api/v4/bulk_imports", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the cookie is not an API credential");

    // Cancel: signed out, to the sign-in form whatever the id; signed in, a migration that does
    // not exist is "no such migration"; without the form token, refused.
    for path in ["/imports/1/cancel", "/imports/x/cancel"] {
        let resp = client
            .post(format!("{}{path}", server.url))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], "/login", "{path}");
        let resp = client
            .post(format!("{}{path}", server.url))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.text().await.unwrap().contains("There is no migration"));
    }
    let resp = client
        .post(format!("{}/imports/1/cancel", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Signing out closes the session: the same cookie, kept and sent again, signs in no more.
    let resp = client
        .post(format!("{}/logout", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    let bare = format!("appliance_token={API_TOKEN}");
    for cookie in [cookie.as_str(), bare.as_str()] {
        let resp = client
            .get(format!("{}/", server.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{cookie}");
        assert_eq!(resp.headers()["location"], "/login");
    }
}

//! The web UI's guarantees over HTTP, as a browser would meet them: sessions, CSRF, escaping, the
//! headers that confine pages, bounds. The journeys through the pages run in a real browser
//! (`tests/browser/ui.test.mjs`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;

/// Cookies kept as a browser keeps them, for one site.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: HashMap::new() }
    }

    fn keep(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("ASCII");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Response {
        let response =
            self.app.client.get(self.app.url(path)).header("cookie", self.cookie_header()).send().await.expect("sent");
        self.keep(&response);
        response
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("sent");
        self.keep(&response);
        response
    }

    /// Signs in with `key` through the sign-in form; returns the session's form token.
    async fn sign_in(&mut self, key: &str) -> String {
        let form = self.get("/ui/sign-in").await.text().await.expect("page");
        let token = csrf_of(&form);
        let response = self.post("/ui/sign-in", &[("key", key), ("csrf", &token)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/ui/links");
        let links = self.get("/ui/links").await.text().await.expect("page");
        csrf_of(&links)
    }
}

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a form with a token") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().expect("closing quote").to_owned()
}

#[tokio::test]
async fn signing_in_exchanges_a_key_for_a_confined_session_cookie() {
    let (app, _dir) = spawn_app().await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/ui/links").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "no session: to the sign-in page");
    assert_eq!(page.headers()[LOCATION], "/ui/sign-in");

    let sign_in = browser.get("/ui/sign-in").await;
    let csp = sign_in.headers()[CONTENT_SECURITY_POLICY].to_str().expect("ASCII").to_owned();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"]
    {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "only the page's own origin: {csp}");
    assert_eq!(sign_in.headers()["x-frame-options"], "DENY");
    assert_eq!(sign_in.headers()["x-content-type-options"], "nosniff");
    let token = csrf_of(&sign_in.text().await.expect("page"));

    let wrong = browser.post("/ui/sign-in", &[("key", "kurz_wrong"), ("csrf", &token)]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.expect("page").contains("unknown or revoked"));

    let token = csrf_of(&browser.get("/ui/sign-in").await.text().await.expect("page"));
    let forged = browser.app.client.post(app.url("/ui/sign-in")).form(&[("key", &app.admin_key), ("csrf", &token)]);
    assert_eq!(forged.send().await.expect("sent").status(), StatusCode::FORBIDDEN, "a token without its cookie");

    let signed_in = browser.post("/ui/sign-in", &[("key", &app.admin_key), ("csrf", &token)]).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ASCII"))
        .find(|v| v.starts_with("kurz_session="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "served over plain HTTP here");
    assert!(!session.contains(&app.admin_key), "the key never goes back to the browser");
    let links = browser.get("/ui/links").await;
    assert_eq!(links.status(), StatusCode::OK);
    assert_eq!(links.headers()["cache-control"], "no-store");
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_sessions_token_changes_nothing() {
    let (app, _dir) = spawn_app().await;
    let mut browser = Browser::new(&app);
    let token = browser.sign_in(&app.admin_key).await;
    let target = "https://example.com/csrf";
    for forged in ["", "0000", &"a".repeat(token.len())] {
        let response = browser.post("/ui/links", &[("csrf", forged), ("target_url", target)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {forged:?}");
    }
    let created = browser.post("/ui/links", &[("csrf", &token), ("target_url", target), ("alias", "csrf-ok")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()[LOCATION], "/ui/links/csrf-ok?done=created");
    app.settled().await;
    let listed: serde_json::Value = app.get("/v1/links").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 1, "only the form with the token created a link");
    app.stop().await;
}

#[tokio::test]
async fn what_users_typed_is_shown_as_text() {
    let (app, _dir) = spawn_app().await;
    let payloads = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"];
    let created = app
        .post_json(
            "/v1/links",
            &json!({"target_url": "https://example.com/x", "alias": "xss-tags", "tags": payloads,
                    "enabled": false, "disabled_reason": "<b>bold</b>"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.settled().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_key).await;
    for path in ["/ui/links", "/ui/links/xss-tags", "/ui/links/xss-tags/edit"] {
        let html = browser.get(path).await.text().await.expect("page");
        for raw in ["<script>alert", "<img src=x", "<b>bold"] {
            assert!(!html.contains(raw), "{path} holds {raw:?} unescaped");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path} shows the tag as text");
        // The edit form holds the tags in a `value` attribute: an unescaped quote would end it.
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), "{path} keeps the quote inside");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_code_in_the_path_cannot_reach_another_api_route() {
    let (app, _dir) = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_key).await;
    for path in ["/ui/links/..%2Fkeys", "/ui/links/a.b", "/ui/links/a%3Fb", "/ui/links/ab"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!response.text().await.expect("page").contains("key_id"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_sign_out_and_at_expiry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.ui.session_ttl_secs = 1).await;
    let mut browser = Browser::new(&app);
    let token = browser.sign_in(&app.admin_key).await;
    let copy = browser.cookies.clone();
    assert_eq!(browser.post("/ui/sign-out", &[("csrf", &token)]).await.status(), StatusCode::SEE_OTHER);
    browser.cookies = copy;
    assert_eq!(browser.get("/ui/links").await.status(), StatusCode::SEE_OTHER, "a copy of the cookie is worth nothing");

    browser.sign_in(&app.admin_key).await;
    assert_eq!(browser.get("/ui/links").await.status(), StatusCode::OK);
    // Sessions end on the server's clock, whatever the browser does with its cookie.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(browser.get("/ui/links").await.status(), StatusCode::SEE_OTHER);
    let late = browser.post("/ui/links", &[("csrf", &token), ("target_url", "https://example.com/late")]).await;
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "a form posted after expiry says so");
    app.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_behind_https_and_forms_are_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.http.public_base_url = "https://kurz.example".into()).await;
    let mut browser = Browser::new(&app);
    let sign_in = browser.get("/ui/sign-in").await;
    let cookie = sign_in.headers()[SET_COOKIE].to_str().expect("ASCII").to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = csrf_of(&browser.get("/ui/sign-in").await.text().await.expect("page"));
    let huge = "k".repeat(100 * 1024);
    let response = browser.post("/ui/sign-in", &[("key", &huge), ("csrf", &token)]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn the_ui_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.ui.enabled = false).await;
    assert_eq!(app.client.get(app.url("/ui/sign-in")).send().await.expect("sent").status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn admin_pages_and_stats_panels_answer_only_whom_they_should() {
    let (app, _dir) = spawn_app().await;
    let (_, user_key) = app.create_key("bob", "user").await;
    let mut anonymous = Browser::new(&app);
    assert_eq!(anonymous.get("/ui/stats/panel").await.status(), StatusCode::SEE_OTHER);
    let mut bob = Browser::new(&app);
    bob.sign_in(&user_key).await;
    let links = bob.get("/ui/links").await.text().await.expect("page");
    assert!(!links.contains("/ui/keys"), "no admin pages offered to a user");
    for path in ["/ui/keys", "/ui/orphans"] {
        assert_eq!(bob.get(path).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let panel = bob.get("/ui/stats/panel").await;
    assert_eq!(panel.status(), StatusCode::OK);
    let panel = panel.text().await.expect("fragment");
    assert!(panel.starts_with(r#"<div id="stats-panel" data-live="/ui/stats/panel?"#), "{panel}");
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin_key).await;
    assert!(admin.get("/ui/links").await.text().await.expect("page").contains(r#"href="/ui/keys""#));
    assert_eq!(admin.get("/ui/orphans").await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_import_needs_the_sessions_token_and_answers_a_line_per_row() {
    let (app, _dir) = spawn_app().await;
    let mut browser = Browser::new(&app);
    let token = browser.sign_in(&app.admin_key).await;
    let csv = "target_url,code\nhttps://example.com/1,imp-one\nftp://example.com/2,imp-two\n";
    let send = |token: &str| {
        app.client
            .post(app.url("/ui/import"))
            .header("cookie", browser.cookie_header())
            .header("content-type", "text/csv")
            .header("x-csrf-token", token.to_owned())
            .body(csv)
            .send()
    };
    assert_eq!(send("forged").await.expect("sent").status(), StatusCode::FORBIDDEN);
    let answer = send(&token).await.expect("sent");
    assert_eq!(answer.status(), StatusCode::OK);
    let lines: Vec<serde_json::Value> = answer
        .text()
        .await
        .expect("body")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0], json!({"rows": 2}));
    assert_eq!((lines[1]["row"].clone(), lines[1]["status"].clone()), (json!(1), json!(201)));
    assert_eq!((lines[2]["row"].clone(), lines[2]["status"].clone()), (json!(2), json!(422)));
    assert_eq!(lines[2]["problem"]["field"], "target_url", "the file's row, not the batch's index");
    assert_eq!(lines[3], json!({"done": true, "created": 1, "refused": 1}));
    app.stop().await;
}

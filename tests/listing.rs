//! `GET /v1/links` (lists, searches, filters, scoped to the caller's owner) and
//! `GET /v1/links/{code}/history`, over real HTTP.

mod common;

use std::collections::HashSet;

use common::{TestApp, expect_problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn list(app: &TestApp, key: &str, query: &str) -> Value {
    let response = app.with_key(Method::GET, &format!("/v1/links?{query}"), key).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.expect("json")
}

fn codes(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|l| l["code"].as_str().expect("code").to_owned()).collect()
}

/// Every code a list shows, following `next_cursor` to the end.
async fn walk(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page_query = match &cursor {
            Some(cursor) => format!("{query}&cursor={cursor}"),
            None => query.to_owned(),
        };
        let page = list(app, key, &page_query).await;
        seen.extend(codes(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
    panic!("the list did not end");
}

#[tokio::test]
async fn pages_visit_every_link_exactly_once_while_links_are_created() {
    let (app, _dir) = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..45 {
        app.time.advance(1000);
        created.push(
            app.create(json!({"target_url": format!("https://example.com/{i}")})).await["code"]
                .as_str()
                .expect("code")
                .to_owned(),
        );
    }
    app.settled().await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or("limit=7".to_owned(), |c| format!("limit=7&cursor={c}"));
        let page = list(&app, &app.admin_key, &query).await;
        assert!(codes(&page).len() <= 7);
        seen.extend(codes(&page));
        // Links created between pages are newer than every page still to come.
        app.time.advance(1000);
        app.create(json!({"target_url": "https://example.com/meanwhile"})).await;
        app.settled().await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");

    let first = list(&app, &app.admin_key, "").await;
    assert_eq!(codes(&first).len(), 20, "20 to a page unless asked");
    assert_eq!(first["items"][0]["target_url"], "https://example.com/meanwhile");
    assert_eq!(first["items"][0]["state"], "active");
}

#[tokio::test]
async fn each_filter_keeps_what_it_names() {
    let (app, _dir) = spawn_app().await;
    let link = |alias: &str, target: &str, extra: Value| {
        let mut body = json!({"alias": alias, "target_url": target});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    app.create(link("spring-sale", "https://Shop.example/Spring?x=1", json!({"tags": ["sale", "spring"]}))).await;
    app.create(link("autumn-sale", "https://shop.example/autumn", json!({"tags": ["sale"]}))).await;
    app.create(link("soon-over", "https://blog.example/post", json!({"expires_at": "2026-11-21T01:00:00Z"}))).await;
    app.create(link("switched-off", "https://blog.example/other", json!({}))).await;
    app.create(link("gone", "https://blog.example/gone", json!({}))).await;
    let off = app.patch_json("/v1/links/switched-off", &json!({"enabled": false})).await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(app.delete("/v1/links/gone").await.status(), StatusCode::NO_CONTENT);
    app.time.advance(2 * 3_600_000);
    app.settled().await;

    let key = app.admin_key.clone();
    let sorted = |mut codes: Vec<String>| {
        codes.sort();
        codes
    };
    let of = async |query: &str| sorted(walk(&app, &key, query).await);
    assert_eq!(of("q=spring").await, ["spring-sale"], "a code prefix");
    assert_eq!(of("q=SHOP.example").await, ["autumn-sale", "spring-sale"], "a target substring, any case");
    assert_eq!(of("q=sale").await, Vec::<String>::new(), "codes match by prefix only; no target says sale");
    assert_eq!(of("tag=sale").await, ["autumn-sale", "spring-sale"]);
    assert_eq!(of("tag=spring&q=spring").await, ["spring-sale"]);
    assert_eq!(of("state=expired").await, ["soon-over"]);
    assert_eq!(of("state=disabled").await, ["switched-off"]);
    assert_eq!(of("state=deleted").await, ["gone"]);
    assert_eq!(of("state=active").await, ["autumn-sale", "spring-sale"]);
    assert_eq!(
        of("").await,
        ["autumn-sale", "soon-over", "spring-sale", "switched-off"],
        "deleted links only when asked"
    );
    assert_eq!(of("state=all").await.len(), 5);

    let deleted = list(&app, &key, "state=deleted").await;
    assert_eq!(deleted["items"][0]["state"], "deleted");
    assert!(deleted["items"][0]["deleted_at"].is_string());
}

#[tokio::test]
async fn another_owners_links_never_appear() {
    let (app, _dir) = spawn_app().await;
    let (_, alice) = app.create_key("alice", "user").await;
    let (_, bob) = app.create_key("bob", "user").await;
    for (key, owner) in [(&alice, "alice"), (&bob, "bob"), (&alice, "alice")] {
        let body = json!({"target_url": format!("https://{owner}.example/")});
        let response = app.with_key(Method::POST, "/v1/links", key).json(&body).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    app.settled().await;
    let owners = |page: &Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|l| l["owner"].as_str().expect("owner").to_owned())
            .collect()
    };
    let alices = list(&app, &alice, "").await;
    assert_eq!((codes(&alices).len(), owners(&alices)), (2, HashSet::from(["alice".to_owned()])));
    assert_eq!(owners(&list(&app, &bob, "q=https").await), HashSet::from(["bob".to_owned()]));
    assert_eq!(codes(&list(&app, &alice, "owner=alice").await).len(), 2);
    let foreign = app.with_key(Method::GET, "/v1/links?owner=bob", &alice).send().await.expect("answered");
    expect_problem(foreign, StatusCode::FORBIDDEN).await;

    assert_eq!(codes(&list(&app, &app.admin_key, "").await).len(), 3, "admin lists every owner");
    assert_eq!(owners(&list(&app, &app.admin_key, "owner=bob").await), HashSet::from(["bob".to_owned()]));
    let (_, ingest) = app.create_key("edge", "ingest").await;
    let refused = app.with_key(Method::GET, "/v1/links", &ingest).send().await.expect("answered");
    expect_problem(refused, StatusCode::FORBIDDEN).await;
    let anonymous = app.client.get(app.url("/v1/links")).send().await.expect("answered");
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn bad_list_and_history_parameters_are_problems() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "known"})).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=nonsense", "cursor"),
        ("state=gone", "state"),
        ("owner=a%20b", "owner"),
        (&format!("q={}", "x".repeat(201)), "q"),
        (&format!("tag={}", "t".repeat(65)), "tag"),
    ] {
        let problem =
            expect_problem(app.get(&format!("/v1/links?{query}")).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], field, "{query}");
    }
    expect_problem(app.get("/v1/links?colour=red").await, StatusCode::BAD_REQUEST).await;
    let history = app.get("/v1/links/known/history?cursor=-1").await;
    expect_problem(history, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_problem(app.get("/v1/links/known/history?limit=1001").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_problem(app.get("/v1/links/unknown/history").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn history_tells_every_change_oldest_first() {
    let (app, _dir) = spawn_app().await;
    let (key_id, key) = app.create_key("alice", "user").await;
    let send = async |method: Method, path: &str, body: Option<Value>| {
        let request = app.with_key(method, path, &key);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.expect("answered");
        assert!(response.status().is_success(), "{path}: {}", response.status());
    };
    let create = json!({"alias": "story", "target_url": "https://example.com/a", "tags": ["one"]});
    send(Method::POST, "/v1/links", Some(create)).await;
    app.time.advance(1000);
    send(Method::PATCH, "/v1/links/story", Some(json!({"target_url": "https://example.com/b"}))).await;
    app.time.advance(1000);
    send(Method::PATCH, "/v1/links/story", Some(json!({"tags": ["one", "two"], "max_clicks": 5}))).await;
    app.time.advance(1000);
    send(Method::PATCH, "/v1/links/story", Some(json!({"enabled": false, "disabled_reason": "paused"}))).await;
    app.time.advance(1000);
    send(Method::DELETE, "/v1/links/story", None).await;
    app.settled().await;

    let response = app.with_key(Method::GET, "/v1/links/story/history", &key).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let history: Value = response.json().await.expect("json");
    let items = history["items"].as_array().expect("items");
    let events: Vec<&str> = items.iter().map(|i| i["event"].as_str().expect("event")).collect();
    assert_eq!(events, ["created", "updated", "updated", "disabled", "deleted"]);
    assert!(items.iter().all(|i| i["key_id"] == key_id.as_str()), "{history}");
    assert_eq!(items[0]["at"], "2026-11-21T00:00:00.000Z");
    assert_eq!(items[0]["changes"]["target_url"], "https://example.com/a");
    assert_eq!(items[0]["changes"]["enabled"], true);
    assert_eq!(items[1]["changes"], json!({"target_url": "https://example.com/b"}));
    assert_eq!(items[2]["changes"], json!({"tags": ["one", "two"], "max_clicks": 5}));
    assert_eq!(items[3]["changes"], json!({"enabled": false, "disabled_reason": "paused"}));
    assert_eq!(items[4]["changes"], json!({}));
    assert_eq!(items[4]["at"], "2026-11-21T00:00:04.000Z");
    assert_eq!(history["next_cursor"], Value::Null);

    // In pages of two, the same changes.
    let mut paged = Vec::new();
    let mut path = "/v1/links/story/history?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path).await.json().await.expect("json");
        paged.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/links/story/history?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(&paged, items);

    let (_, bob) = app.create_key("bob", "user").await;
    let foreign = app.with_key(Method::GET, "/v1/links/story/history", &bob).send().await.expect("answered");
    expect_problem(foreign, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn an_export_streams_the_callers_links_as_csv_or_ndjson() {
    let (app, _dir) = spawn_app().await;
    let (_, alice) = app.create_key("alice", "user").await;
    for (key, target) in [(&alice, "https://alice.example/a,b"), (&app.admin_key, "https://admin.example/")] {
        let body = json!({"target_url": target});
        let response = app.with_key(Method::POST, "/v1/links", key).json(&body).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    app.settled().await;
    let csv = app.with_key(Method::GET, "/v1/links/export", &alice).send().await.expect("answered");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("body");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("code,short_url,target_url,owner,state"), "{text}");
    assert_eq!(lines.len(), 2, "alice's link alone: {text}");
    assert!(lines[1].contains(r#""https://alice.example/a,b""#), "quoted: {text}");

    let ndjson = app.get("/v1/links/export?format=ndjson").await;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let exported: Vec<Value> =
        ndjson.text().await.expect("body").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(exported.len(), 2, "admin exports every owner's");
    let problem = expect_problem(app.get("/v1/links/export?format=xml").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "format");
    let foreign = app.with_key(Method::GET, "/v1/links/export?owner=admin", &alice).send().await.expect("answered");
    expect_problem(foreign, StatusCode::FORBIDDEN).await;
}

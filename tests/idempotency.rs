//! `Idempotency-Key` on `POST /v1/links`: a retry answers the first 201 and appends nothing; the
//! same key with another request is refused; keys belong to their owner.

mod common;

use common::{expect_problem, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn create_with_key(app: &common::TestApp, key: &str, body: &Value, api_key: &str) -> reqwest::RequestBuilder {
    app.with_key(reqwest::Method::POST, "/v1/links", api_key).header("idempotency-key", key).json(body)
}

#[tokio::test]
async fn a_retry_answers_the_first_201_and_makes_no_second_link() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/order/42", "tags": ["checkout"]});
    let first = create_with_key(&app, "order-42", &body, &app.admin_key).send().await.expect("answered");
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");

    // Later, with the same request written differently (key order), the answer is the same link,
    // made at the first request's time: nothing new was created.
    app.time.advance(60_000);
    let reordered = json!({"tags": ["checkout"], "target_url": "https://example.com/order/42"});
    let retry = create_with_key(&app, "order-42", &reordered, &app.admin_key).send().await.expect("answered");
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], format!("/v1/links/{}", first["code"].as_str().expect("code")));
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry, first);

    // Without the key, the same body makes a new link.
    let other = app.create(body.clone()).await;
    assert_ne!(other["code"], first["code"]);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/a"});
    assert_eq!(
        create_with_key(&app, "k-1", &body, &app.admin_key).send().await.expect("ok").status(),
        StatusCode::CREATED
    );
    let other = json!({"target_url": "https://example.com/b"});
    let refused = create_with_key(&app, "k-1", &other, &app.admin_key).send().await.expect("answered");
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().expect("detail").contains("Idempotency-Key"), "{problem}");
}

#[tokio::test]
async fn keys_belong_to_their_owner() {
    let (app, _dir) = spawn_app().await;
    let (_, alice) = app.create_key("alice", "user").await;
    let (_, bob) = app.create_key("bob", "user").await;
    let body = json!({"target_url": "https://example.com/shared"});
    let mut codes = Vec::new();
    for key in [&alice, &bob] {
        let response = create_with_key(&app, "same-key", &body, key).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get("idempotent-replayed").is_none());
        codes.push(response.json::<Value>().await.expect("json")["code"].clone());
    }
    assert_ne!(codes[0], codes[1]);
}

#[tokio::test]
async fn a_chosen_alias_is_kept_by_its_key_and_refused_to_others() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/launch", "alias": "launch-day"});
    for _ in 0..2 {
        let response = create_with_key(&app, "launch", &body, &app.admin_key).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.json::<Value>().await.expect("json")["code"], "launch-day");
    }
    // Another key (and so another request) for a taken alias: the usual conflict, every time.
    for _ in 0..2 {
        let response = create_with_key(&app, "another", &body, &app.admin_key).send().await.expect("answered");
        expect_problem(response, StatusCode::CONFLICT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_retries_make_one_link() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/race"});
    let racing: Vec<_> = (0..16).map(|_| create_with_key(&app, "race", &body, &app.admin_key).send()).collect();
    let mut codes = std::collections::BTreeSet::new();
    for response in futures_util::future::join_all(racing).await {
        let response = response.expect("answered");
        match response.status() {
            StatusCode::CREATED => {
                codes.insert(response.json::<Value>().await.expect("json")["code"].as_str().expect("code").to_owned());
            }
            // The first is still appending: the problem says to retry, and when.
            StatusCode::CONFLICT => {
                assert_eq!(response.headers()["retry-after"], "1");
                expect_problem(response, StatusCode::CONFLICT).await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let settled = create_with_key(&app, "race", &body, &app.admin_key).send().await.expect("answered");
    assert_eq!(settled.status(), StatusCode::CREATED);
    codes.insert(settled.json::<Value>().await.expect("json")["code"].as_str().expect("code").to_owned());
    assert_eq!(codes.len(), 1, "one link: {codes:?}");
}

#[tokio::test]
async fn a_malformed_key_is_a_400() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/"});
    for key in ["", &"k".repeat(256)] {
        let response = create_with_key(&app, key, &body, &app.admin_key).send().await.expect("answered");
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn a_retry_after_the_link_changed_still_answers_that_link() {
    let (app, _dir) = spawn_app().await;
    let body = json!({"target_url": "https://example.com/v1"});
    let first = create_with_key(&app, "changes", &body, &app.admin_key).send().await.expect("answered");
    let code = first.json::<Value>().await.expect("json")["code"].as_str().expect("code").to_owned();
    let moved = app.patch_json(&format!("/v1/links/{code}"), &json!({"target_url": "https://example.com/v2"})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let retry = create_with_key(&app, "changes", &body, &app.admin_key).send().await.expect("answered");
    assert_eq!(retry.status(), StatusCode::CREATED);
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(
        (retry["code"].as_str(), retry["target_url"].as_str()),
        (Some(code.as_str()), Some("https://example.com/v2"))
    );
}

fn clicks_with_key(app: &common::TestApp, key: &str, body: &Value) -> reqwest::RequestBuilder {
    app.with_key(reqwest::Method::POST, "/v1/clicks", &app.admin_key).header("idempotency-key", key).json(body)
}

#[tokio::test]
async fn a_retried_click_batch_counts_once() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/reported").await;
    // No `clicked_at`: each attempt would stamp its own time, yet a retry is the same batch.
    let batch = json!({"clicks": [
        {"code": code, "referrer": "https://news.example/a", "visitor_id": "v1"},
        {"code": code, "visitor_id": "v2"},
    ]});
    let first = clicks_with_key(&app, "upload-7", &batch).send().await.expect("answered");
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(first.json::<Value>().await.expect("json"), json!({"accepted": 2}));

    app.time.advance(60_000);
    for _ in 0..3 {
        let retry = clicks_with_key(&app, "upload-7", &batch).send().await.expect("answered");
        assert_eq!(retry.status(), StatusCode::ACCEPTED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.expect("json"), json!({"accepted": 2}));
    }
    app.settled().await;
    assert_eq!(app.stats(&code).await["total_clicks"], 2, "the retries appended nothing");

    // The same key for another batch is refused; another key, or none, records it.
    let other = json!({"clicks": [{"code": code, "visitor_id": "v3"}]});
    let refused = clicks_with_key(&app, "upload-7", &other).send().await.expect("answered");
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().expect("detail").contains("Idempotency-Key"), "{problem}");
    assert_eq!(clicks_with_key(&app, "upload-8", &other).send().await.expect("sent").status(), StatusCode::ACCEPTED);
    assert_eq!(app.post_json("/v1/clicks", &other).await.status(), StatusCode::ACCEPTED);
    app.settled().await;
    assert_eq!(app.stats(&code).await["total_clicks"], 4);
}

#[tokio::test]
async fn a_refused_click_batch_leaves_its_key_free() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/reported").await;
    let unknown = json!({"clicks": [{"code": code}, {"code": "no-such-link"}]});
    let refused = clicks_with_key(&app, "upload-9", &unknown).send().await.expect("answered");
    expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Nothing was appended, so the key is free for the corrected batch.
    let fixed = json!({"clicks": [{"code": code}]});
    let accepted = clicks_with_key(&app, "upload-9", &fixed).send().await.expect("answered");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(accepted.headers().get("idempotent-replayed").is_none());
    // A key used for a create is another key when used for clicks.
    let created = create_with_key(&app, "upload-9", &json!({"target_url": "https://example.com/x"}), &app.admin_key);
    assert_eq!(created.send().await.expect("answered").status(), StatusCode::CREATED);
    app.settled().await;
    assert_eq!(app.stats(&code).await["total_clicks"], 1);
}

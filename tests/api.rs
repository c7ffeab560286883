//! Every endpoint and every error status, over real HTTP.

mod common;

use common::{expect_problem, location, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_answers_201_with_location_and_the_documented_body() {
    let (app, _dir) = spawn_app().await;
    let response = app
        .post_json(
            "/v1/links",
            &json!({
                "target_url": "HTTPS://Example.COM:443/docs?q=1",
                "alias": "launch-notes",
                "expires_at": "2027-01-01T00:00:00Z",
                "max_clicks": 5,
                "redirect_status": 307,
                "tags": ["launch", "launch", "mail"],
                "metadata": {"owner": "growth"}
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{:?}", response.text().await);
    assert_eq!(location(&response), "/v1/links/launch-notes");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "launch-notes");
    assert_eq!(body["short_url"], format!("{}/launch-notes", app.base));
    assert_eq!(body["target_url"], "https://example.com/docs?q=1");
    assert_eq!(body["created_at"], "2026-11-21T00:00:00.000Z");
    assert_eq!(body["expires_at"], "2027-01-01T00:00:00.000Z");
    assert_eq!(body["max_clicks"], 5);
    assert_eq!(body["redirect_status"], 307);
    assert_eq!(body["tags"], json!(["launch", "mail"]));
    assert_eq!(body["metadata"], json!({"owner": "growth"}));
}

#[tokio::test]
async fn generated_codes_are_seven_base62_characters_and_distinct() {
    let (app, _dir) = spawn_app().await;
    let mut codes = std::collections::HashSet::new();
    for _ in 0..50 {
        let code = app.create_to("https://example.com/").await;
        assert_eq!(code.len(), 7);
        assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
        assert!(codes.insert(code));
    }
}

#[tokio::test]
async fn redirects_answer_with_the_links_status_and_location() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/a", "alias": "perm", "redirect_status": 301})).await;
    let code = app.create_to("https://example.com/b").await;
    let response = app.get("/perm").await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(&response), "https://example.com/a");
    let response = app.get(&format!("/{code}")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/b");
    let head = app.client.head(app.url(&format!("/{code}"))).send().await.expect("request");
    assert_eq!(head.status(), StatusCode::FOUND);
    assert_eq!(location(&head), "https://example.com/b");
}

#[tokio::test]
async fn unknown_and_malformed_codes_are_404_problems() {
    let (app, _dir) = spawn_app().await;
    expect_problem(app.get("/nosuchcode").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/no.such").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/v1/links/nosuchcode").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/v1/links/nosuchcode/stats").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.patch_json("/v1/links/nosuchcode", &json!({"tags": []})).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.delete("/v1/links/nosuchcode").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/a/b/c").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn get_link_returns_it_and_410_once_deleted() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "shown", "tags": ["x"]})).await;
    let response = app.get("/v1/links/shown").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!((body["code"].as_str(), body["tags"].clone()), (Some("shown"), json!(["x"])));
    assert_eq!(app.delete("/v1/links/shown").await.status(), StatusCode::NO_CONTENT);
    expect_problem(app.get("/v1/links/shown").await, StatusCode::GONE).await;
    // Its stats go with it (its history stays: the deletion is part of it).
    expect_problem(app.get("/v1/links/shown/stats").await, StatusCode::GONE).await;
    assert_eq!(app.get("/v1/links/shown/history").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn patch_updates_fields_and_null_clears_them() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://old.example/", "alias": "moving", "max_clicks": 3, "expires_at": "2027-01-01T00:00:00Z"}))
        .await;
    let response = app
        .patch_json(
            "/v1/links/moving",
            &json!({"target_url": "https://new.example/", "max_clicks": null, "tags": ["t"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["target_url"], "https://new.example/");
    assert_eq!(body["max_clicks"], json!(null));
    assert_eq!(body["expires_at"], "2027-01-01T00:00:00.000Z", "absent fields stay");
    assert_eq!(body["tags"], json!(["t"]));
    let response = app.get("/moving").await;
    assert_eq!(location(&response), "https://new.example/", "the redirect follows the update at once");
}

#[tokio::test]
async fn delete_answers_204_then_the_redirect_is_gone() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    assert_eq!(app.get(&format!("/{code}")).await.status(), StatusCode::FOUND);
    assert_eq!(app.delete(&format!("/v1/links/{code}")).await.status(), StatusCode::NO_CONTENT);
    expect_problem(app.get(&format!("/{code}")).await, StatusCode::GONE).await;
    assert_eq!(app.delete(&format!("/v1/links/{code}")).await.status(), StatusCode::NO_CONTENT, "DELETE is idempotent");
    let problem =
        expect_problem(app.patch_json(&format!("/v1/links/{code}"), &json!({"tags": []})).await, StatusCode::GONE)
            .await;
    assert!(problem["detail"].as_str().expect("detail").contains("deleted"));
}

#[tokio::test]
async fn an_alias_is_taken_once_even_after_deletion() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "mine"})).await;
    let body = json!({"target_url": "https://other.example/", "alias": "mine"});
    let problem = expect_problem(app.post_json("/v1/links", &body).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["field"], "alias");
    app.delete("/v1/links/mine").await;
    expect_problem(app.post_json("/v1/links", &body).await, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn invalid_values_are_422_naming_the_field() {
    let (app, _dir) = spawn_app().await;
    let cases = [
        (json!({"target_url": "javascript:alert(1)"}), "target_url"),
        (json!({"target_url": "data:text/html,hi"}), "target_url"),
        (json!({"target_url": "file:///etc/passwd"}), "target_url"),
        (json!({"target_url": "/relative"}), "target_url"),
        (json!({"target_url": format!("https://example.com/{}", "a".repeat(9000))}), "target_url"),
        (json!({"target_url": "https://example.com/", "alias": "ab"}), "alias"),
        (json!({"target_url": "https://example.com/", "alias": "has space"}), "alias"),
        (json!({"target_url": "https://example.com/", "alias": "metrics"}), "alias"),
        (json!({"target_url": "https://example.com/", "redirect_status": 200}), "redirect_status"),
        (json!({"target_url": "https://example.com/", "max_clicks": 0}), "max_clicks"),
        (json!({"target_url": "https://example.com/", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"target_url": "https://example.com/", "expires_at": "2020-01-01T00:00:00Z"}), "expires_at"),
        (json!({"target_url": "https://example.com/", "tags": [""]}), "tags"),
        (json!({"target_url": 42}), "target_url"),
    ];
    for (body, field) in cases {
        let problem = expect_problem(app.post_json("/v1/links", &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], field, "{body}");
    }
    expect_problem(app.post_json("/v1/links", &json!({"alias": "nourl"})).await, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    expect_problem(
        app.post_json("/v1/links", &json!({"target_url": "https://e.com", "colour": "red"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn malformed_oversized_and_mistyped_bodies_are_400_413_415() {
    let (app, _dir) = spawn_app().await;
    let malformed = app.post_raw("/v1/links", "application/json", "{\"target_url\": ").await;
    expect_problem(malformed, StatusCode::BAD_REQUEST).await;
    let plain = app.post_raw("/v1/links", "text/plain", "{}").await;
    expect_problem(plain, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let huge = json!({"target_url": "https://example.com/", "metadata": {"k": "v".repeat(300_000)}});
    expect_problem(app.post_json("/v1/links", &huge).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    let wrong_method = app.client.put(app.url("/v1/links")).json(&json!({})).send().await.expect("request");
    expect_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn reported_clicks_are_accepted_as_a_batch_and_counted() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let batch = json!({"clicks": [
        {"code": code, "clicked_at": "2026-11-20T10:00:00Z", "referrer": "https://news.example/x", "visitor_id": "a"},
        {"code": code, "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1", "visitor_id": "b"}
    ]});
    let response = app.post_json("/v1/clicks", &batch).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["accepted"], 2);
    app.settled().await;
    let stats = app.stats(&code).await;
    assert_eq!(stats["total_clicks"], 2);
    assert_eq!(stats["unique_visitors"], 2);
    assert_eq!(
        stats["clicks_by_day"],
        json!([{"date": "2026-11-20", "clicks": 1}, {"date": "2026-11-21", "clicks": 1}])
    );
    assert_eq!(stats["devices"], json!([{"name": "Mobile", "clicks": 1}, {"name": "Unknown", "clicks": 1}]));

    let unknown = json!({"clicks": [{"code": code}, {"code": "nosuchcode"}]});
    let problem = expect_problem(app.post_json("/v1/clicks", &unknown).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "clicks[1].code");
    expect_problem(app.post_json("/v1/clicks", &json!({"clicks": []})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let bad_time = json!({"clicks": [{"code": code, "clicked_at": "noon"}]});
    let problem = expect_problem(app.post_json("/v1/clicks", &bad_time).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "clicks[0].clicked_at");
    // The test clock stands at 2026-11-21T00:00:00Z.
    let skewed = json!({"clicks": [{"code": code, "clicked_at": "2026-11-21T00:04:00Z"}]});
    assert_eq!(
        app.post_json("/v1/clicks", &skewed).await.status(),
        StatusCode::ACCEPTED,
        "a little clock skew is fine"
    );
    let future = json!({"clicks": [{"code": code}, {"code": code, "clicked_at": "2026-11-22T00:00:00Z"}]});
    let problem = expect_problem(app.post_json("/v1/clicks", &future).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "clicks[1].clicked_at");
    app.settled().await;
    assert_eq!(app.stats(&code).await["total_clicks"], 3, "refused batches record nothing");
}

#[tokio::test]
async fn stats_filter_by_date_and_refuse_bad_ranges() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let clicks: Vec<_> =
        ["2026-11-01T12:00:00Z", "2026-11-02T12:00:00Z", "2026-11-02T13:00:00Z", "2026-11-05T00:00:00Z"]
            .iter()
            .map(|at| json!({"code": code, "clicked_at": at, "visitor_id": at}))
            .collect();
    assert_eq!(app.post_json("/v1/clicks", &json!({"clicks": clicks})).await.status(), StatusCode::ACCEPTED);
    app.settled().await;
    let response = app.get(&format!("/v1/links/{code}/stats?from=2026-11-02&to=2026-11-04")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stats: serde_json::Value = response.json().await.expect("json");
    assert_eq!((stats["from"].as_str(), stats["to"].as_str()), (Some("2026-11-02"), Some("2026-11-04")));
    assert_eq!(stats["total_clicks"], 2);
    assert_eq!(stats["unique_visitors"], 2);
    assert_eq!(stats["last_clicked_at"], "2026-11-02T13:00:00.000Z");
    assert_eq!(stats["clicks_by_day"], json!([{"date": "2026-11-02", "clicks": 2}]));
    let problem = expect_problem(
        app.get(&format!("/v1/links/{code}/stats?from=2026-11-05&to=2026-11-01")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["field"], "from");
    let problem = expect_problem(
        app.get(&format!("/v1/links/{code}/stats?from=yesterday")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["field"], "from");
    expect_problem(app.get(&format!("/v1/links/{code}/stats?since=2026-11-01")).await, StatusCode::BAD_REQUEST).await;
}

/// `forward_query`: the short URL's query string reaches the target, joined to its own query and
/// placed before its fragment; links without it redirect to their target alone.
#[tokio::test]
async fn a_link_that_forwards_the_query_passes_it_on_to_its_target() {
    let (app, _dir) = spawn_app().await;
    let forwarding =
        app.create(json!({"target_url": "https://example.com/landing?ref=kurz#top", "forward_query": true})).await;
    assert_eq!(forwarding["forward_query"], true);
    let code = forwarding["code"].as_str().expect("code").to_owned();
    let plain = app.create(json!({"target_url": "https://example.com/plain"})).await;
    assert_eq!(plain["forward_query"], false);
    let plain = plain["code"].as_str().expect("code").to_owned();

    let redirect = async |path: &str| app.client.get(app.url(path)).send().await.expect("answered");
    let response = redirect(&format!("/{code}?utm_source=news&utm_medium=mail")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/landing?ref=kurz&utm_source=news&utm_medium=mail#top");
    let response = redirect(&format!("/{code}")).await;
    assert_eq!(location(&response), "https://example.com/landing?ref=kurz#top");
    let response = redirect(&format!("/{plain}?utm_source=news")).await;
    assert_eq!(location(&response), "https://example.com/plain");

    // Switched off by an update, the query stays behind.
    let updated = app.patch_json(&format!("/v1/links/{code}"), &json!({"forward_query": false})).await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.json::<serde_json::Value>().await.expect("json")["forward_query"], false);
    app.settled().await;
    let response = redirect(&format!("/{code}?utm_source=news")).await;
    assert_eq!(location(&response), "https://example.com/landing?ref=kurz#top");

    let wrong =
        app.post_json("/v1/links", &json!({"target_url": "https://example.com/", "forward_query": "yes"})).await;
    let problem = expect_problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem.to_string().contains("forward_query"), "{problem}");
}

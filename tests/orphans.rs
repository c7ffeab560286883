//! Orphan visits: requests for codes that name no live link, counted per day for admins.

mod common;

use common::{expect_problem, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn requests_for_codes_without_a_live_link_are_counted_by_day_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |config: &mut kurz::Config| config.limits.unknown_codes_per_address_per_minute = 100_000;
    let app = spawn_app_with(dir.path(), config).await;
    app.create(json!({"target_url": "https://example.com/", "alias": "dead"})).await;
    assert_eq!(app.delete("/v1/links/dead").await.status(), StatusCode::NO_CONTENT);
    app.create(json!({"target_url": "https://example.com/", "alias": "paused"})).await;
    app.patch_json("/v1/links/paused", &json!({"enabled": false})).await;
    app.create(json!({"target_url": "https://example.com/", "alias": "once", "max_clicks": 1})).await;
    app.create(json!({"target_url": "https://example.com/", "alias": "live"})).await;
    assert_eq!(app.get("/once").await.status(), StatusCode::FOUND);

    let visit = |path: String, referrer: Option<&'static str>| {
        let mut request = app.client.get(app.url(&path));
        if let Some(referrer) = referrer {
            request = request.header("referer", referrer);
        }
        async move { request.send().await.expect("answered").status() }
    };
    // A small flood of codes tried once, a scanner's favourite, and each kind of dead link.
    for i in 0..1_500 {
        assert_eq!(visit(format!("/r{i:05}x"), None).await, StatusCode::NOT_FOUND);
    }
    for _ in 0..30 {
        assert_eq!(visit("/wp-login.php".into(), Some("https://scanner.example/probe")).await, StatusCode::NOT_FOUND);
    }
    for (path, times) in [("/dead", 3), ("/paused", 2), ("/once", 4)] {
        for _ in 0..times {
            assert_eq!(visit(path.into(), None).await, StatusCode::GONE);
        }
    }
    assert_eq!(visit("/live".into(), None).await, StatusCode::FOUND, "a live link is no orphan");
    let head = app.client.head(app.url("/never-was")).send().await.expect("answered");
    assert_eq!(head.status(), StatusCode::NOT_FOUND, "a HEAD is answered, and not counted");

    let orphans = |app: &common::TestApp, query: &'static str| {
        let request = app.with_key(Method::GET, &format!("/v1/orphan-visits{query}"), &app.admin_key);
        async move {
            let response = request.send().await.expect("answered");
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.expect("json")
        }
    };
    let expect_counts = |body: &Value| {
        assert_eq!(body["visits"], 1_500 + 30 + 3 + 2 + 4, "{body}");
        assert_eq!(
            body["reasons"],
            json!([
                {"name": "unknown", "visits": 1_530},
                {"name": "exhausted", "visits": 4},
                {"name": "deleted", "visits": 3},
                {"name": "disabled", "visits": 2},
            ])
        );
        let codes = body["codes"].as_array().expect("codes");
        assert_eq!(codes.len(), 20, "the top 20 of 1,534 codes");
        assert_eq!(
            codes[..3],
            [
                json!({"name": "wp-login.php", "visits": 30}),
                json!({"name": "once", "visits": 4}),
                json!({"name": "dead", "visits": 3})
            ]
        );
        assert_eq!(body["referrers"][1], json!({"name": "scanner.example", "visits": 30}));
        let days = body["days"].as_array().expect("days");
        assert_eq!((days.len(), &days[0]["date"], &days[0]["visits"]), (1, &json!("2026-11-21"), &json!(1_539)));
        assert_eq!(days[0]["codes"].as_array().expect("codes").len(), 10);
    };
    let counted = orphans(&app, "").await;
    assert_eq!((&counted["from"], &counted["to"]), (&json!("2026-10-23"), &json!("2026-11-21")), "the last 30 days");
    expect_counts(&counted);
    assert_eq!(orphans(&app, "?from=2026-11-22&to=2026-11-30").await["visits"], 0);

    let (_, user) = app.create_key("alice", "user").await;
    let refused = app.with_key(Method::GET, "/v1/orphan-visits", &user).send().await.expect("answered");
    expect_problem(refused, StatusCode::FORBIDDEN).await;
    let long = app.with_key(Method::GET, "/v1/orphan-visits?from=2026-01-01&to=2026-11-21", &app.admin_key);
    expect_problem(long.send().await.expect("answered"), StatusCode::UNPROCESSABLE_ENTITY).await;

    // What was counted in memory is stored when Kurz stops.
    app.stop().await;
    let restarted = spawn_app_with(dir.path(), config).await;
    expect_counts(&orphans(&restarted, "?from=2026-11-21&to=2026-11-21").await);
}

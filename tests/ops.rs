//! Operations endpoints. In a test binary of its own: metrics are process-wide, and only the first
//! app in a process shows whether its handles were taken before the recorder existed.

mod common;

use common::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let (app, _dir) = spawn_app().await;
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<serde_json::Value>().await.expect("json")["checks"],
        json!({"event_log": "ok", "disk": "ok", "read_store": "ok"})
    );
    // Metrics are process-wide and other tests run alongside: compare before and after.
    let sample = |metrics: &str, name: &str| -> u64 {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
    };
    let before = app.get("/metrics").await.text().await.expect("text");
    let code = app.create_to("https://example.com/").await;
    app.get(&format!("/{code}")).await;
    app.get("/nosuchcode").await;
    app.settled().await;
    let after = app.get("/metrics").await.text().await.expect("text");
    for name in [
        "links_created_total",
        "redirects_total{outcome=\"redirect\"}",
        "redirects_total{outcome=\"not_found\"}",
        "link_cache_total{result=\"miss\"}",
        "clicks_appended_total",
        "projector_records_applied_total",
    ] {
        assert!(sample(&after, name) > sample(&before, name), "{name} did not move");
    }
    assert!(after.contains("http_request_duration_seconds_bucket"), "request latency histogram missing");
    for help in ["# HELP http_requests_total ", "# HELP redirects_total ", "# HELP links_created_total "] {
        assert!(after.contains(help), "{help} missing");
    }
    assert!(after.contains("build_info{version=\""), "build_info missing");
    assert!(after.contains("le=\"30\""), "buckets reach the 30 s broker timeout");
    for process in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
        assert!(after.contains(process), "{process} missing");
    }
}

/// Every answer carries an `X-Request-Id`: the caller's when it sent a usable one, else a new one.
#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let anonymous = common::client();
    let requests = [
        anonymous.get(app.url(&format!("/{code}"))),
        anonymous.get(app.url("/no-such-code")),
        anonymous.get(app.url("/health")),
        anonymous.get(app.url("/v1/links")),
        anonymous.put(app.url("/health")),
        anonymous.post(app.url("/v1/links")).header("content-type", "application/json").body("{"),
    ];
    let mut ids = std::collections::HashSet::new();
    for request in requests {
        let response = request.send().await.expect("answered");
        let status = response.status();
        let id = response.headers().get("x-request-id").unwrap_or_else(|| panic!("{status} without an id"));
        assert_eq!(id.len(), 32, "{status}: {id:?}");
        assert!(ids.insert(id.to_str().expect("ascii").to_owned()), "ids differ");
    }
    let echoed =
        anonymous.get(app.url(&format!("/{code}"))).header("x-request-id", "abc-123").send().await.expect("ok");
    assert_eq!(echoed.status(), StatusCode::FOUND);
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

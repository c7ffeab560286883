//! A request's id and trace reach every log line written while serving it, and the access log
//! (`log.access`) writes one line per request; checked on the JSON logs of the real binary.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The next log line (parsed) that `matches`, within ten seconds.
fn next_line(kurz: &common::RunningKurz, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = kurz.logs.recv_timeout(left) else { break };
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if matches(&parsed) {
            return parsed;
        }
        seen.push(line);
    }
    panic!("no such log line within 10 s; saw {seen:#?}");
}

#[tokio::test]
async fn a_requests_id_and_trace_are_on_its_log_lines_and_its_access_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kurz = common::start_kurz_binary(dir.path(), &[("KURZ_LOG__ACCESS", "true")]);
    let key = std::fs::read_to_string(dir.path().join("admin.key")).expect("admin key").trim().to_owned();

    let response = common::client()
        .post(format!("{}/v1/keys", kurz.base))
        .bearer_auth(&key)
        .header("x-request-id", "onboarding-42")
        .header("traceparent", TRACEPARENT)
        .json(&json!({"owner": "team-a", "role": "user"}))
        .send()
        .await
        .expect("created");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    assert_eq!(response.headers()["x-request-id"], "onboarding-42");

    // A line the handler writes while serving the request.
    let created = next_line(&kurz, |line| line["fields"]["message"] == "api key created");
    assert_eq!(created["request_id"], "onboarding-42", "{created}");
    assert_eq!(created["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{created}");
    assert_eq!(created["parent_id"], "00f067aa0ba902b7", "{created}");

    let access = next_line(&kurz, |line| line["target"] == "kurz::access");
    assert_eq!(access["request_id"], "onboarding-42", "{access}");
    assert_eq!(access["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{access}");
    let fields = &access["fields"];
    assert_eq!(
        (&fields["method"], &fields["path"], &fields["route"]),
        (&json!("POST"), &json!("/v1/keys"), &json!("/v1/keys"))
    );
    assert_eq!(fields["status"], 201, "{access}");
    assert!(fields["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{access}");

    // Without ids of its own, a request gets a fresh id, returned to it and logged; the access
    // line names the path asked for (no query string: it may carry secrets).
    let response =
        common::client().get(format!("{}/no-such-code?token=secret", kurz.base)).send().await.expect("answered");
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let id = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let access = next_line(&kurz, |line| line["target"] == "kurz::access" && line["request_id"] == id.as_str());
    assert_eq!(access["fields"]["path"], "/no-such-code", "{access}");
    assert_eq!(access["fields"]["status"], 404, "{access}");
    assert!(access.get("trace_id").is_none(), "no trace without traceparent: {access}");

    kurz.child.kill().expect("stopped");
    kurz.child.wait().expect("reaped");
}

#[tokio::test]
async fn without_log_access_there_is_no_access_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kurz = common::start_kurz_binary(dir.path(), &[]);
    let response = common::client().get(format!("{}/health", kurz.base)).send().await.expect("answered");
    assert!(response.headers().contains_key("x-request-id"));
    // The process logs nothing per request, so a second, logged event (a stray variable is not
    // one: it is logged at start) cannot be awaited; stop it and read everything it wrote.
    kurz.child.kill().expect("stopped");
    kurz.child.wait().expect("reaped");
    let lines: Vec<String> = kurz.logs.iter().collect();
    assert!(!lines.iter().any(|line| line.contains("kurz::access")), "{lines:#?}");
}

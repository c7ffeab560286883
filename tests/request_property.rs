//! 10^5 generated requests (methods, paths, headers, bodies) through the whole router of the
//! all-in-one process, which holds every handler of the command API, the query API and the ops
//! routes: never a panic, never a 5xx, and every error is problem+json.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request};
use futures_util::StreamExt as _;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use tower::ServiceExt as _;

const REQUESTS: usize = 110_000;
const IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
struct Generated {
    method: Method,
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        8 => prop::sample::select(vec![Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::HEAD]),
        1 => prop::sample::select(vec![Method::PUT, Method::OPTIONS, Method::TRACE]),
        1 => "[A-Z]{1,12}".prop_map(|m| Method::from_bytes(m.as_bytes()).expect("token")),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["known".to_owned(), "abc".into(), "v1".into(), "health".into()]),
        2 => "[A-Za-z0-9_-]{1,70}",
        1 => "(%[0-9A-Fa-f]{2}|[a-z.~!$&'()*+,;=:@]){0,20}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => segment().prop_map(|code| format!("/{code}")),
        3 => Just("/v1/links".to_owned()),
        3 => segment().prop_map(|code| format!("/v1/links/{code}")),
        2 => (segment(), "(from=[0-9-]{0,12}|to=[0-9-]{0,12}|[a-z]{1,5}=[^&#]{0,10})?")
            .prop_map(|(code, query)| format!("/v1/links/{code}/stats?{query}")),
        2 => Just("/v1/clicks".to_owned()),
        1 => Just("/v1/keys".to_owned()),
        1 => segment().prop_map(|id| format!("/v1/keys/{id}")),
        1 => prop::sample::select(vec!["/health".to_owned(), "/ready".into(), "/metrics".into(), "/".into()]),
        1 => "(/[A-Za-z0-9%._~-]{0,12}){1,4}",
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "\\PC{0,40}".prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "https://example.com/x",
            "http://127.0.0.1/",
            "javascript:alert(1)",
            "2026-11-21T00:00:00Z",
            "9999-12-31T23:59:59-01:00",
            "admin",
            "user",
            "ingest",
            "known",
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "target_url",
                    "alias",
                    "expires_at",
                    "max_clicks",
                    "redirect_status",
                    "tags",
                    "metadata",
                    "owner",
                    "enabled",
                    "disabled_reason",
                    "clicks",
                    "code",
                    "clicked_at",
                    "referrer",
                    "user_agent",
                    "visitor_id",
                    "role",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("serialises")),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(Vec::new()),
    ]
}

fn request(admin_key: String) -> impl Strategy<Value = Generated> {
    let key = prop_oneof![
        6 => Just(Some(admin_key)),
        1 => Just(None),
        1 => "[ -~]{0,60}".prop_map(Some),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,30}".prop_map(Some),
    ];
    (method(), path(), key, content_type, body()).prop_map(|(method, path, key, content_type, body)| Generated {
        method,
        path,
        key,
        content_type,
        body,
    })
}

fn http_request(generated: &Generated) -> Option<Request<Body>> {
    let mut builder = Request::builder().method(generated.method.clone()).uri(generated.path.as_str());
    if let Some(key) = &generated.key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    if let Some(content_type) = &generated.content_type {
        builder = builder.header("content-type", content_type.as_str());
    }
    // Some generated paths or header values are not valid HTTP: a client could not send them.
    builder.body(Body::from(generated.body.clone())).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_panic_and_never_answer_5xx() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = common::spawn_app_with(dir.path(), |config| {
        // Limits answer 429, a 4xx like any other; without them more requests reach the handlers.
        config.limits.writes_per_key_per_second = 0;
    })
    .await;
    app.create(serde_json::json!({"target_url": "https://example.com/", "alias": "known"})).await;
    let router = app.router.clone();
    let mut runner = TestRunner::deterministic();
    let strategy = request(app.admin_key.clone());
    let requests: Vec<Generated> =
        (0..REQUESTS).map(|_| strategy.new_tree(&mut runner).expect("generates").current()).collect();
    let sent = Arc::new(AtomicUsize::new(0));
    let failures: Vec<String> = futures_util::stream::iter(requests)
        .map(|generated| {
            let (router, sent) = (router.clone(), sent.clone());
            async move {
                let request = http_request(&generated)?;
                sent.fetch_add(1, Ordering::Relaxed);
                let response = tokio::spawn(router.oneshot(request)).await;
                let response = match response {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(panic) => return Some(format!("{generated:?} panicked: {panic}")),
                };
                let status = response.status();
                let problem = response.headers().get("content-type").is_some_and(|t| t == "application/problem+json");
                if status.is_server_error() {
                    return Some(format!("{generated:?} answered {status}"));
                }
                if status.is_client_error() && !problem {
                    return Some(format!("{generated:?} answered {status} without problem+json"));
                }
                None
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("request property: {sent} requests sent, {} failures", failures.len());
    assert!(sent >= 100_000, "only {sent} of the generated requests were valid HTTP");
    assert!(failures.is_empty(), "{} failures, first: {:#?}", failures.len(), &failures[..failures.len().min(5)]);
}

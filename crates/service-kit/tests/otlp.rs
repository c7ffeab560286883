//! With `log.otlp_endpoint`, request spans go to an OTLP/HTTP collector, continuing the caller's
//! trace (`traceparent`). A collector of the test's own records what arrives.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use kurz_service_kit::config::LogConfig;
use kurz_service_kit::request_context::RequestContext;
use kurz_service_kit::telemetry;

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let recorded = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            recorded.lock().expect("not poisoned").push((content_type, body));
            std::future::ready("")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_in_the_callers_trace() {
    let (url, received) = collector().await;
    let config = LogConfig { otlp_endpoint: Some(url), ..LogConfig::default() };
    telemetry::init_logging(&config).expect("logging with OTLP");

    let mut headers = HeaderMap::new();
    headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().expect("value"));
    headers.insert("x-request-id", "otlp-test-1".parse().expect("value"));
    let context = RequestContext::of(&headers);
    let span = context.span();
    span.in_scope(|| tracing::info!("served"));
    drop(span);
    // The batch processor sends on its own thread; flushing waits for it.
    tokio::task::spawn_blocking(telemetry::flush).await.expect("flushed");

    let received = received.lock().expect("not poisoned").clone();
    assert!(!received.is_empty(), "the collector got the span");
    let (content_type, body) = &received[0];
    assert_eq!(content_type, "application/x-protobuf");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|window| window == needle);
    // Protobuf keeps bytes and strings as they are: the caller's trace id and span id (now this
    // span's parent), the span's name and its request id.
    assert!(contains(&hex("4bf92f3577b34da6a3ce929d0e0e4736")), "the caller's trace id");
    assert!(contains(&hex("00f067aa0ba902b7")), "the caller's span as parent");
    assert!(contains(b"request") && contains(b"otlp-test-1"), "the request span with its id");
}

//! `/health`, `/ready` and `/metrics`, the same on every service, plus request metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Checks one dependency; `Err` says what is wrong, for the `/ready` body.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Checks(Arc<Vec<(&'static str, ReadinessCheck)>>);

/// Routes for liveness (`/health`: the process answers), readiness (`/ready`: every dependency
/// answers) and Prometheus metrics (`/metrics`).
pub fn routes(checks: Vec<(&'static str, ReadinessCheck)>) -> Router {
    let prometheus = crate::telemetry::metrics();
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready).with_state(Checks(Arc::new(checks))))
        .route("/metrics", get(move || std::future::ready(prometheus.render())))
}

async fn ready(State(Checks(checks)): State<Checks>) -> Response {
    let mut report = serde_json::Map::new();
    let mut all_ready = true;
    for (name, check) in checks.iter() {
        let status = match check().await {
            Ok(()) => "ok".to_owned(),
            Err(reason) => {
                all_ready = false;
                reason
            }
        };
        report.insert((*name).to_owned(), json!(status));
    }
    let status = if all_ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": if all_ready { "ready" } else { "not ready" }, "checks": report});
    (status, axum::Json(body)).into_response()
}

/// Counts requests and their latency by route and status (`http_requests_total`,
/// `http_request_duration_seconds`).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

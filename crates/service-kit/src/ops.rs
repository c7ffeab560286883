//! `/health`, `/ready` and `/metrics`, the same on every service, plus request metrics.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram};

use crate::request_context::{RequestContext, X_REQUEST_ID};

/// Checks one dependency; `Err` says what is wrong, for the `/ready` body.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Ready while the event log answers (it lists its partitions' ends).
pub fn event_log_ready(log: Arc<dyn kurz_ports::EventLog>) -> ReadinessCheck {
    Arc::new(move || {
        let log = Arc::clone(&log);
        Box::pin(async move { log.end_offsets().await.map(drop).map_err(|e| e.to_string()) })
    })
}

/// Ready while the read store answers (it reads a checkpoint).
pub fn read_store_ready(store: Arc<dyn kurz_ports::ReadStore>) -> ReadinessCheck {
    Arc::new(move || {
        let store = Arc::clone(&store);
        Box::pin(async move { store.checkpoints(1).await.map(drop).map_err(|e| e.to_string()) })
    })
}

#[derive(Clone)]
struct Checks(Arc<Vec<(&'static str, ReadinessCheck)>>);

/// Routes for liveness (`/health`: the process answers), readiness (`/ready`: every dependency
/// answers) and Prometheus metrics (`/metrics`).
pub fn routes(checks: Vec<(&'static str, ReadinessCheck)>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready).with_state(Checks(Arc::new(checks))))
        .route("/metrics", get(metrics).with_state(crate::telemetry::metrics()))
}

/// The ops routes' operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, ready, metrics))]
struct OpsDoc;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Whether the service and each dependency answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready` or `not ready`.
    status: &'static str,
    /// Each dependency's state: `ok`, or what is wrong.
    checks: std::collections::BTreeMap<&'static str, String>,
}

/// A service's routers: one for its main listener and, with `http.admin_listen`, one for the admin
/// listener.
#[derive(Debug)]
pub struct ServiceRouters {
    pub main: Router,
    pub admin: Option<Router>,
}

/// A service's whole routing: `public` (redirects) and `api` (`/v1/…`, keyed) routes, the ops
/// routes, problem+json answers for unknown routes and methods, and request metrics on everything.
/// With `separate_admin`, the API, `/ready` and `/metrics` move to a router of their own, so the
/// main listener can face the internet with redirects alone.
///
/// Every route but the public ones answers 503 after `http.request_timeout_ms`. A redirect sets no
/// timer for that (it is the hot path): it bounds its own waits on stores instead.
///
/// `doc` holds the operations of `public` and `api`: completed with the ops routes' and served at
/// `/openapi.json` and `/docs` beside the API (a service without an API passes `None`).
pub fn service(
    public: Router,
    api: Router,
    doc: Option<utoipa::openapi::OpenApi>,
    checks: Vec<(&'static str, ReadinessCheck)>,
    http: &crate::config::HttpConfig,
) -> ServiceRouters {
    let finish = |router: Router| {
        router
            .fallback(crate::problem::no_route)
            .method_not_allowed_fallback(crate::problem::method_not_allowed)
            .layer(axum::middleware::from_fn(track_requests))
    };
    let timeout = Duration::from_millis(http.request_timeout_ms.max(1));
    let mut api = api.layer(axum::middleware::from_fn_with_state(timeout, within));
    if let Some(mut doc) = doc {
        doc.merge(<OpsDoc as utoipa::OpenApi>::openapi());
        api = api.merge(crate::api_doc::routes(crate::api_doc::document(doc)));
    }
    let routes = |checks| routes(checks).layer(axum::middleware::from_fn_with_state(timeout, within));
    if http.admin_listen.is_some() {
        let health = || Router::new().route("/health", get(health));
        ServiceRouters { main: finish(public.merge(health())), admin: Some(finish(api.merge(routes(checks)))) }
    } else {
        ServiceRouters { main: finish(public.merge(api).merge(routes(checks))), admin: None }
    }
}

/// Answers 503 when the request is not answered within `timeout` (body upload included).
async fn within(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "The request took too long",
            "no answer within the request timeout (http.request_timeout_ms); retry",
        )
        .into_response(),
    }
}

#[utoipa::path(get, path = "/health", tag = "ops", operation_id = "health",
    responses((status = 200, description = "The process answers", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/ready", tag = "ops", operation_id = "ready",
    responses(
        (status = 200, description = "Every dependency answers", body = Readiness),
        (status = 503, description = "A dependency does not answer", body = Readiness),
    ))]
async fn ready(State(Checks(checks)): State<Checks>) -> Response {
    let mut report = std::collections::BTreeMap::new();
    let mut all_ready = true;
    for (name, check) in checks.iter() {
        let status = match check().await {
            Ok(()) => "ok".to_owned(),
            Err(reason) => {
                all_ready = false;
                reason
            }
        };
        report.insert(*name, status);
    }
    let status = if all_ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Readiness { status: if all_ready { "ready" } else { "not ready" }, checks: report };
    (status, axum::Json(body)).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain")))]
async fn metrics(State(prometheus): State<metrics_exporter_prometheus::PrometheusHandle>) -> String {
    prometheus.render()
}

/// Serves a request as its own (request id and trace, see [`crate::request_context`]), returns
/// its `X-Request-Id`, counts it and its latency by route and status (`http_requests_total`,
/// `http_request_duration_seconds`), and writes its access line when `log.access` is on.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let context = RequestContext::of(request.headers());
    let id = context.id.clone();
    let access = crate::telemetry::access_log().then(|| (request.uri().path().to_owned(), context.clone()));
    #[cfg(feature = "otlp")]
    let span = crate::telemetry::exporting_traces().then(|| context.span());
    let serving = context.scope(next.run(request));
    #[cfg(feature = "otlp")]
    let mut response = match span {
        Some(span) => tracing::Instrument::instrument(serving, span).await,
        None => serving.await,
    };
    #[cfg(not(feature = "otlp"))]
    let mut response = serving.await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    record_request(route, &method, status, elapsed.as_secs_f64());
    if let Some((path, context)) = access {
        context.in_scope(|| {
            tracing::info!(
                target: "kurz::access",
                method = method.as_str(),
                path = path.as_str(),
                route,
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request answered"
            );
        });
    }
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Metric handles per (route, method, status), resolved once per thread: labelling a metric on
/// every request would allocate the labels and look them up in the registry each time.
struct RouteMetrics {
    route: Box<str>,
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

thread_local! {
    static ROUTE_METRICS: RefCell<HashMap<u64, Vec<RouteMetrics>>> = RefCell::new(HashMap::new());
}

/// The standard methods keep their name in metrics; any other is `OTHER`, so invented methods
/// cannot add series without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

fn record_request(route: &str, method: &Method, status: u16, seconds: f64) {
    let method = method_label(method);
    let mut hasher = DefaultHasher::new();
    (route, method, status).hash(&mut hasher);
    ROUTE_METRICS.with_borrow_mut(|by_hash| {
        let same_hash = by_hash.entry(hasher.finish()).or_default();
        let position = same_hash.iter().position(|m| &*m.route == route && m.method == method && m.status == status);
        let metrics = if let Some(index) = position {
            &same_hash[index]
        } else {
            let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
            same_hash.push(RouteMetrics {
                route: route.into(),
                method,
                status,
                requests: metrics::counter!("http_requests_total", &labels),
                duration: metrics::histogram!("http_request_duration_seconds", &labels),
            });
            same_hash.last().expect("just pushed")
        };
        metrics.requests.increment(1);
        metrics.duration.record(seconds);
    });
}

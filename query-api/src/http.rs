//! The query API over HTTP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kurz_domain::stats::LinkStats;
use kurz_domain::{Code, Day, DayRange};
use kurz_service_kit::Problem;
use kurz_service_kit::representation::LinkBody;
use kurz_service_kit::time_format::{format_date, format_millis, parse_date};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::redirect::{Outcome, RedirectService, Visit};

#[derive(Debug, Clone)]
pub struct RoutesConfig {
    pub public_base_url: Arc<str>,
    /// Take the visitor's address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
}

#[derive(Clone)]
struct AppState {
    service: Arc<RedirectService>,
    config: RoutesConfig,
}

pub fn routes(service: Arc<RedirectService>, config: RoutesConfig) -> Router {
    Router::new()
        .route("/{code}", get(redirect))
        .route("/v1/links/{code}", get(link))
        .route("/v1/links/{code}/stats", get(stats))
        .with_state(AppState { service, config })
}

fn not_found(raw: &str) -> Problem {
    Problem::not_found(format!("no link has code {raw}"))
}

async fn redirect(State(state): State<AppState>, request: Request) -> Response {
    // The route has one segment: the path is the code (a code never needs percent-decoding).
    let raw = request.uri().path().trim_start_matches('/');
    let headers = request.headers();
    let visit = (request.method() != Method::HEAD).then(|| Visit {
        referrer: header_text(headers, header::REFERER),
        user_agent: header_text(headers, header::USER_AGENT),
        address: client_address(&request, state.config.trust_forwarded_for),
    });
    match state.service.redirect(raw, visit).await {
        Ok(Outcome::Redirect { status, location, cacheable }) => {
            let status = StatusCode::from_u16(status.code()).expect("redirect statuses are valid");
            // Browsers must come back for limited or expiring links, so every visit is counted.
            let cache_control = if cacheable { "private, max-age=60" } else { "no-store" };
            (status, [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static(cache_control))])
                .into_response()
        }
        Ok(Outcome::NotFound) => not_found(raw).into_response(),
        Ok(Outcome::Gone(reason)) => {
            Problem::gone(format!("link {raw} is no longer available: {reason}")).into_response()
        }
        Err(error) => Problem::unavailable(&error).into_response(),
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn client_address(request: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = header_text(request.headers(), header::HeaderName::from_static("x-forwarded-for"))
            .and_then(|list| list.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

async fn link(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Json<LinkBody>, Problem> {
    let code = Code::parse(&raw).map_err(|_| not_found(&raw))?;
    match state.service.link(&code).await {
        Ok(Some(link)) if link.deleted_at.is_some() => Err(Problem::gone(format!("link {raw} has been deleted"))),
        Ok(Some(link)) => Ok(Json(LinkBody::new(&link, &state.config.public_base_url))),
        Ok(None) => Err(not_found(&raw)),
        Err(error) => Err(Problem::unavailable(&error)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn stats(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    params: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(query) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let code = Code::parse(&raw).map_err(|_| not_found(&raw))?;
    let day = |field: &str, raw: &Option<String>| {
        raw.as_deref()
            .map(|text| parse_date(text).map(Day::from_days_since_epoch).map_err(|e| Problem::invalid_field(field, e)))
            .transpose()
    };
    let range = DayRange { from: day("from", &query.from)?, to: day("to", &query.to)? };
    if range.is_empty() {
        return Err(Problem::invalid_field("from", "must not be after to"));
    }
    if state.service.link(&code).await.map_err(|e| Problem::unavailable(&e))?.is_none() {
        return Err(not_found(&raw));
    }
    let link_stats = state.service.stats(&code, range).await.map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(stats_body(&code, range, &link_stats)))
}

fn stats_body(code: &Code, range: DayRange, stats: &LinkStats) -> Value {
    let named = |values: &[(String, u64)]| -> Vec<Value> {
        values.iter().map(|(name, clicks)| json!({"name": name, "clicks": clicks})).collect()
    };
    json!({
        "code": code.as_str(),
        "from": range.from.map(|d| format_date(d.days_since_epoch())),
        "to": range.to.map(|d| format_date(d.days_since_epoch())),
        "total_clicks": stats.total_clicks,
        "unique_visitors": stats.unique_visitors,
        "last_clicked_at": stats.last_clicked_at.map(|at| format_millis(at.as_millis())),
        "clicks_by_day": stats.clicks_by_day.iter()
            .map(|(day, clicks)| json!({"date": format_date(day.days_since_epoch()), "clicks": clicks}))
            .collect::<Vec<_>>(),
        "top_referrers": named(&stats.top_referrers),
        "browsers": named(&stats.browsers),
        "operating_systems": named(&stats.operating_systems),
        "devices": named(&stats.devices),
    })
}

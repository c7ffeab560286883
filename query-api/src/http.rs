//! The query API over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use kurz_domain::{Code, Link, Permission};
use kurz_service_kit::Problem;
use kurz_service_kit::auth::Caller;
use kurz_service_kit::gate::client_address;
use kurz_service_kit::limits::Limits;
use kurz_service_kit::path::Segment;
use kurz_service_kit::representation::LinkBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::listing::{self, Catalogue};
use crate::qr::{self, QrQuery};
use crate::redirect::{Existence, Outcome, RedirectService, Visit};
use crate::stats;

#[derive(Debug, Clone)]
pub struct RoutesConfig {
    pub public_base_url: Arc<str>,
    /// Take the visitor's address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// The unknown-code (enumeration) and global limits of the redirect path.
    pub limits: Arc<Limits>,
    /// The link directory and histories, for lists and history.
    pub catalogue: Catalogue,
}

/// The query side's routes: `public` serves redirects (no key), `api` the `/v1/…` reads, which
/// need an API key ([`kurz_service_kit::gate::ApiGate`]); `doc` documents both.
pub struct Routes {
    pub public: Router,
    pub api: Router,
    pub doc: utoipa::openapi::OpenApi,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("public", &self.public).field("api", &self.api).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) service: Arc<RedirectService>,
    /// Behind one `Arc`: axum clones the state for every request.
    pub(crate) config: Arc<RoutesConfig>,
    pub(crate) catalogue: Arc<Catalogue>,
}

pub fn routes(service: Arc<RedirectService>, config: RoutesConfig) -> Routes {
    let catalogue = Arc::new(config.catalogue.clone());
    let state = AppState { service, config: Arc::new(config), catalogue };
    let (public, mut doc) = OpenApiRouter::new()
        .routes(routes!(redirect))
        .routes(routes!(qr_code))
        .with_state(state.clone())
        .split_for_parts();
    let (api, api_doc) = OpenApiRouter::new()
        .routes(routes!(listing::list))
        .routes(routes!(listing::export))
        .routes(routes!(link))
        .routes(routes!(listing::history))
        .routes(routes!(stats::link_stats))
        .routes(routes!(stats::overview))
        .routes(routes!(stats::orphan_visits))
        .with_state(state)
        .split_for_parts();
    doc.merge(api_doc);
    Routes { public, api, doc }
}

fn not_found(raw: &str) -> Problem {
    Problem::not_found(format!("no link has code {raw}"))
}

/// The redirect: to the link's target (its query string appended when the link forwards it).
/// `HEAD` answers the same without counting a click.
#[utoipa::path(
    get, path = "/{code}", tag = "redirects", operation_id = "redirect",
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 301, description = "Moved permanently (the link's `redirect_status`)", headers(("Location" = String))),
        (status = 302, description = "Found (the default)", headers(("Location" = String))),
        (status = 307, description = "Temporary redirect", headers(("Location" = String))),
        (status = 308, description = "Permanent redirect", headers(("Location" = String))),
        (status = 200, description = "A link preview (Slack, WhatsApp, Teams, …) of a link with `max_clicks`: \
            a page without the target, and no click taken", content_type = "text/html", body = String),
        (status = 404, description = "No link has this code"),
        (status = 410, description = "The link expired, reached its `max_clicks`, was switched off or deleted"),
        (status = 503, description = "The link could not be read in time; retry"),
    )
)]
async fn redirect(State(state): State<AppState>, request: Request) -> Response {
    // The route has one segment: the path is the code (a code never needs percent-decoding).
    let raw = request.uri().path().trim_start_matches('/');
    let headers = request.headers();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().copied();
    let address = || client_address(headers, peer.as_ref(), state.config.trust_forwarded_for);
    let limits = &state.config.limits;
    if let Err(refusal) = limits.global().and_then(|()| limits.penalty(address)) {
        return refusal.into_response();
    }
    let counts = request.method() != Method::HEAD;
    let visit = Visit {
        referrer: header_text(headers, header::REFERER),
        user_agent: header_text(headers, header::USER_AGENT),
        address: if counts { address() } else { None },
        accept_language: headers.get(header::ACCEPT_LANGUAGE),
        counts,
    };
    match state.service.redirect(raw, request.uri().query(), visit).await {
        Ok(Outcome::Redirect { status, location, cacheable }) => {
            let status = StatusCode::from_u16(status.code()).expect("redirect statuses are valid");
            // Browsers must come back for limited or expiring links, so every visit is counted.
            let cache_control = if cacheable { "private, max-age=60" } else { "no-store" };
            (status, [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static(cache_control))])
                .into_response()
        }
        Ok(Outcome::Withheld) => withheld_page(),
        Ok(Outcome::NotFound) => match limits.unknown_code(address()) {
            Ok(()) => not_found(raw).into_response(),
            Err(refusal) => refusal.into_response(),
        },
        Ok(Outcome::Gone(reason)) => {
            Problem::gone(format!("link {raw} is no longer available: {reason}")).into_response()
        }
        Err(error) => Problem::unavailable(&error).into_response(),
    }
}

/// What a link preview of a limited link gets: a page that names no target, kept out of caches
/// and search indexes, so that the card a chat shows says only that this is a short link.
fn withheld_page() -> Response {
    const PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <meta name=\"robots\" content=\"noindex\"><title>Short link</title></head>\
        <body><p>Open this link in a browser to follow it.</p></body></html>";
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (HeaderName::from_static("x-robots-tag"), HeaderValue::from_static("noindex")),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /{code}/qr`: the short URL as a QR code (public, like the redirect: printed codes are
/// for everyone). Unknown codes count against the same enumeration limit as redirects.
#[utoipa::path(
    get, path = "/{code}/qr", tag = "redirects", operation_id = "qrCode",
    params(("code" = String, Path, description = "The link's code"), QrQuery),
    responses(
        (status = 200, description = "The short URL as a QR code (cacheable for a day)",
            content((Vec<u8> = "image/png"), (String = "image/svg+xml"))),
        (status = 404, description = "No link has this code"),
        (status = 410, description = "The link was deleted"),
        (status = 422, description = "`size` or `margin` is out of range, or leaves no room for the code"),
        (status = 503, description = "The link could not be read; retry"),
    )
)]
async fn qr_code(
    State(state): State<AppState>,
    Segment(raw): Segment,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    params: Result<Query<QrQuery>, QueryRejection>,
) -> Response {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>();
    let address = || client_address(&headers, peer, state.config.trust_forwarded_for);
    let limits = &state.config.limits;
    if let Err(refusal) = limits.global().and_then(|()| limits.penalty(address)) {
        return refusal.into_response();
    }
    let query = match params {
        Ok(Query(query)) => query,
        Err(rejection) => return Problem::bad_request(rejection.body_text()).into_response(),
    };
    // The request's own faults first: they do not depend on the link.
    if let Err(error) = query.check() {
        return Problem::invalid_field(error.field(), error.to_string()).into_response();
    }
    match state.service.existence(&raw).await {
        Ok(Existence::Exists) => {}
        Ok(Existence::Unknown) => {
            return match limits.unknown_code(address()) {
                Ok(()) => not_found(&raw).into_response(),
                Err(refusal) => refusal.into_response(),
            };
        }
        Ok(Existence::Deleted) => return Problem::gone(format!("link {raw} has been deleted")).into_response(),
        Err(error) => return Problem::unavailable(&error).into_response(),
    }
    let url = format!("{}/{raw}", state.config.public_base_url);
    let layout = match qr::Layout::new(&url, &query) {
        Ok(layout) => layout,
        Err(error) => return Problem::invalid_field(error.field(), error.to_string()).into_response(),
    };
    // The image depends on the short URL alone, which never changes for a code.
    let cache_control = (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    match query.format {
        qr::Format::Png => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("image/png")), cache_control], layout.png())
                .into_response()
        }
        qr::Format::Svg => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")), cache_control], layout.svg())
                .into_response()
        }
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The link `caller` may read: another owner's link is answered as missing.
pub(crate) async fn readable_link(state: &AppState, caller: &Caller, raw: &str) -> Result<Link, Problem> {
    let actor = caller.require(Permission::ReadLinks)?;
    let code = Code::parse(raw).map_err(|_| not_found(raw))?;
    match state.service.link(&code).await {
        Ok(Some(link)) if actor.sees(&link.owner) => Ok(link),
        Ok(_) => Err(not_found(raw)),
        Err(error) => Err(Problem::unavailable(&error)),
    }
}

/// As [`readable_link`], and 410 once the link is deleted (only its history outlives it).
pub(crate) async fn live_link(state: &AppState, caller: &Caller, raw: &str) -> Result<Link, Problem> {
    let link = readable_link(state, caller, raw).await?;
    if link.deleted_at.is_some() {
        return Err(Problem::gone(format!("link {raw} has been deleted")));
    }
    Ok(link)
}

#[utoipa::path(
    get, path = "/v1/links/{code}", tag = "links", operation_id = "getLink",
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 200, description = "The link", body = LinkBody),
        (status = 403, description = "The key may not read links"),
        (status = 404, description = "No link of the key's owner has this code"),
        (status = 410, description = "The link was deleted"),
    )
)]
async fn link(State(state): State<AppState>, caller: Caller, Segment(raw): Segment) -> Result<Json<LinkBody>, Problem> {
    let link = live_link(&state, &caller, &raw).await?;
    Ok(Json(LinkBody::new(&link, &state.config.public_base_url)))
}

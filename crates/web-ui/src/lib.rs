//! Kurz's web UI: pages rendered on the server under `/ui` (a reserved word, so it never shadows a
//! short code), with a little of the project's own JavaScript and no third-party code at run time.
//!
//! Signing in exchanges an API key for a session cookie; every page then acts through the JSON API
//! with that key ([`upstream`]), so the UI can do exactly what the key may, no more.

mod admin;
mod assets;
mod chart;
mod guard;
mod links;
mod page;
pub mod session;
mod stats;
mod transfer;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::session::Sessions;
use crate::upstream::Upstream;

/// The `ui` settings, the same in every binary that serves the UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Serve the UI at all (`false`: `/ui` answers 404 like any unknown path).
    pub enabled: bool,
    /// How long a sign-in lasts; the cookie and the server's session end together.
    pub session_ttl_secs: u64,
    /// Sessions held at once; beyond, the one closest to expiry ends.
    pub max_sessions: usize,
    /// Distributed mode: the query API's URL, where the UI (served by the command API) reads links
    /// and stats, e.g. `http://query-api:8080`. Without it the command API serves no UI. The
    /// all-in-one ignores it (everything is in-process).
    pub query_api_url: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { enabled: true, session_ttl_secs: 8 * 3600, max_sessions: 10_000, query_api_url: None }
    }
}

/// What every page handler shares.
#[derive(Debug, Clone)]
struct Ui {
    sessions: Arc<Sessions>,
    upstream: Upstream,
    /// Mark cookies `Secure`: the public origin is HTTPS.
    https: bool,
    /// Also mark them `Secure` when a trusted proxy says the browser spoke HTTPS.
    trust_forwarded: bool,
}

/// The largest form the UI reads; link forms are a few KB at most (a target is at most 8 KiB).
const FORM_LIMIT: usize = 64 * 1024;

/// The UI's routes, acting through `upstream`. `public_base_url` tells whether it is served over
/// HTTPS; with `trust_forwarded`, a proxy's `X-Forwarded-Proto` does too.
pub fn routes(config: &UiConfig, upstream: Upstream, public_base_url: &str, trust_forwarded: bool) -> Router {
    if !config.enabled {
        return Router::new();
    }
    let ui = Ui {
        sessions: Arc::new(Sessions::new(Duration::from_secs(config.session_ttl_secs.max(1)), config.max_sessions)),
        upstream,
        https: public_base_url.starts_with("https://"),
        trust_forwarded,
    };
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/links") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/links") }))
        .route("/ui/assets/app.css", get(assets::css))
        .route("/ui/assets/app.js", get(assets::js))
        .route("/ui/sign-in", get(guard::sign_in_page).post(guard::sign_in))
        .route("/ui/sign-out", post(guard::sign_out))
        .route("/ui/links", get(links::list).post(links::create))
        .route("/ui/links/new", get(links::new))
        .route("/ui/links/{code}", get(links::show))
        .route("/ui/links/{code}/edit", get(links::edit).post(links::update))
        .route("/ui/links/{code}/enabled", post(links::switch))
        .route("/ui/links/{code}/delete", get(links::confirm_delete).post(links::delete))
        .route("/ui/links/{code}/qr", get(links::qr))
        .route("/ui/links/{code}/stats", get(stats::link))
        .route("/ui/links/{code}/stats/panel", get(stats::link_panel))
        .route(
            "/ui/import",
            get(transfer::page).post(transfer::run).layer(DefaultBodyLimit::max(transfer::MAX_IMPORT_BYTES)),
        )
        .route("/ui/export", get(transfer::export))
        .route("/ui/keys", get(admin::keys).post(admin::create_key))
        .route("/ui/keys/{id}/revoke", post(admin::revoke_key))
        .route("/ui/orphans", get(admin::orphans))
        .route("/ui/stats", get(stats::overview))
        .route("/ui/stats/panel", get(stats::overview_panel))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(ui)
}

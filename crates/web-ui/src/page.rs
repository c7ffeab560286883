//! The frame every page shares, and the pages that say something went wrong. Everything inserted
//! into a page goes through maud, which escapes it: what a user typed stays text.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::upstream::{Answer, UpstreamError};

/// What the header offers.
#[derive(Debug, Clone, Copy)]
pub enum Nav<'a> {
    SignedOut,
    /// Signing out is a form (a link would let any page sign a person out).
    SignedIn {
        csrf: &'a str,
        /// Whether to offer the admin pages.
        admin: bool,
    },
}

/// A page that says why a request cannot go on, in place of the page asked for. Boxed: a
/// `Response` is large, and handlers pass this up with `?`.
#[derive(Debug)]
pub struct Stop(Box<Response>);

impl From<Response> for Stop {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl From<UpstreamError> for Stop {
    fn from(failure: UpstreamError) -> Self {
        upstream_error(&failure).into()
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// `?done=…` on the page a form redirected to: which of its known messages to show.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    #[serde(default)]
    pub done: String,
}

/// What a page handler answers: its page, or the page that says why not.
pub type Page = Result<Response, Stop>;

#[expect(clippy::needless_pass_by_value, reason = "callers build the body for this call: `html! { … }`")]
pub fn render(status: StatusCode, title: &str, nav: Nav<'_>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kurz" }
                link rel="stylesheet" href="/ui/assets/app.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/links" { "Kurz" }
                    @if let Nav::SignedIn { csrf, admin } = nav {
                        nav aria-label="Main" {
                            a href="/ui/links" { "Links" }
                            a href="/ui/links/new" { "New link" }
                            a href="/ui/stats" { "Stats" }
                            a href="/ui/import" { "Import" }
                            @if admin {
                                a href="/ui/keys" { "Keys" }
                                a href="/ui/orphans" { "Orphan visits" }
                            }
                            form.inline method="post" action="/ui/sign-out" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

pub fn error(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = html! {
        p.error role="alert" { (detail) }
        p { a href="/ui/links" { "Back to your links" } }
    };
    render(status, title, Nav::SignedOut, body)
}

/// An API answer the page cannot go on with: its status and the API's own words.
pub fn api_error(answer: &Answer) -> Response {
    let problem = answer.problem();
    let title = if problem.title.is_empty() { "Something went wrong".to_owned() } else { problem.title };
    let detail =
        if problem.detail.is_empty() { format!("The API answered {}.", answer.status) } else { problem.detail };
    error(answer.status, &title, &detail)
}

pub fn upstream_error(failure: &UpstreamError) -> Response {
    tracing::error!(error = %failure, "the UI could not use the API");
    error(StatusCode::BAD_GATEWAY, "Something went wrong", "Kurz could not complete this; try again shortly.")
}

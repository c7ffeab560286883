//! Who may see a page: signing in and out, the session every page needs, the CSRF token every form
//! carries, and the headers that keep pages from being framed, sniffed or made to run others' code.

use std::time::Duration;

use axum::Form;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use crate::Ui;
use crate::page::{self, Nav, Stop};
use crate::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, Session, random_token, same_secret, set_cookie};
use crate::upstream::{Answer, Client};

/// Only the page's own origin: no inline script or style, no other site's code, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages hold a person's links: no shared cache keeps them, and Back after signing out shows nothing.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A signed-in request: its session and what the API must know of the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub id: String,
    pub session: Session,
    pub client: Client,
}

impl SignedIn {
    /// Calls the API with this session's key. A key the API no longer takes (revoked since
    /// signing in) ends the session, and the person is sent to sign in again.
    pub async fn call(&self, ui: &Ui, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, Stop> {
        let answer = ui.upstream.call(&self.client, &self.session.key, method, path, body).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            ui.sessions.end(&self.id);
            return Err(Redirect::to("/ui/sign-in").into_response().into());
        }
        Ok(answer)
    }

    pub fn nav(&self) -> Nav<'_> {
        Nav::SignedIn { csrf: &self.session.csrf, admin: self.session.admin }
    }

    /// Refuses a form whose token is not this session's: another site cannot make a signed-in
    /// browser post one (SameSite=Strict already keeps the cookie away; this holds without it).
    pub fn check(&self, token: &str) -> Result<(), Stop> {
        if same_secret(token, &self.session.csrf) { Ok(()) } else { Err(forbidden().into()) }
    }
}

fn forbidden() -> Response {
    page::error(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is not from your current session. Go back, reload the page and try again.",
    )
}

impl FromRequestParts<Ui> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        let client = Client::from_request_parts(parts, ui).await.unwrap_or_else(|never| match never {});
        match ui.sessions.of(&parts.headers) {
            Some((id, session)) => Ok(Self { id, session, client }),
            None if parts.method == Method::GET => Err(Redirect::to("/ui/sign-in").into_response()),
            // A form posted after the session ended: say so rather than lose it silently.
            None => Err(page::error(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended. Sign in again, then repeat what you were doing.",
            )),
        }
    }
}

impl Ui {
    fn secure(&self, headers: &HeaderMap) -> bool {
        self.https
            || (self.trust_forwarded && headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https"))
    }
}

pub async fn sign_in_page(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if ui.sessions.of(&headers).is_some() {
        return Redirect::to("/ui/links").into_response();
    }
    sign_in_form(&ui, &headers, StatusCode::OK, None)
}

/// The form, with a fresh token in a cookie of its own and in the form (double submit).
fn sign_in_form(ui: &Ui, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let token = random_token();
    let body = html! {
        form.card method="post" action="/ui/sign-in" {
            input type="hidden" name="csrf" value=(token);
            @if let Some(error) = error {
                p.error role="alert" id="key-error" { (error) }
            }
            label for="key" { "API key" }
            input #key type="password" name="key" required autocomplete="current-password"
                aria-describedby=[error.map(|_| "key-error")] aria-invalid=[error.map(|_| "true")];
            p.hint { "The key you were given (the first admin key is in " code { "data/admin.key" } ")." }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = page::render(status, "Sign in", Nav::SignedOut, body);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, &token, Duration::from_hours(1), ui.secure(headers)));
    response
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    key: String,
    csrf: String,
}

/// Keys are at most a few dozen characters; anything longer is not one.
const MAX_KEY_LEN: usize = 256;

pub async fn sign_in(
    State(ui): State<Ui>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, expected) {
        return forbidden();
    }
    let key = form.key.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return sign_in_form(&ui, &headers, StatusCode::UNAUTHORIZED, Some("That is not an API key."));
    }
    // The key is checked by the API itself, with its limits on failed attempts per address.
    let answer = match ui.upstream.call(&client, key, Method::GET, "/v1/links?limit=1", None).await {
        Ok(answer) => answer,
        Err(error) => return page::upstream_error(&error),
    };
    match answer.status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => {
            return sign_in_form(&ui, &headers, StatusCode::UNAUTHORIZED, Some("That key is unknown or revoked."));
        }
        StatusCode::TOO_MANY_REQUESTS => {
            let detail = answer.problem().detail;
            return sign_in_form(&ui, &headers, StatusCode::TOO_MANY_REQUESTS, Some(&detail));
        }
        _ => return page::api_error(&answer),
    }
    // Admin keys may manage keys; the UI only uses this to show admin pages.
    let admin = ui.upstream.call(&client, key, Method::GET, "/v1/keys", None).await.is_ok_and(|a| a.is_success());
    let id = ui.sessions.start(key, admin);
    let secure = ui.secure(&headers);
    let mut response = Redirect::to("/ui/links").into_response();
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, ui.sessions.ttl(), secure));
    cookies.append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", Duration::ZERO, secure));
    response
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

impl CsrfForm {
    pub fn token(&self) -> &str {
        &self.csrf
    }
}

pub async fn sign_out(
    State(ui): State<Ui>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed_in.check(&form.csrf) {
        return refused.into_response();
    }
    ui.sessions.end(&signed_in.id);
    let mut response = Redirect::to("/ui/sign-in").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Duration::ZERO, ui.secure(&headers)));
    response
}

//! Link pages: the list with search and pages, creating, one link's page (short URL, QR code,
//! history), editing, switching off and on, deleting.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kurz_domain::Code;
use maud::html;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::Ui;
use crate::guard::{CsrfForm, SignedIn};
use crate::page::{self, Done, Page, Stop};
use crate::upstream::Answer;

/// A link as the API describes it (list items add `state`).
#[derive(Debug, Deserialize)]
struct LinkView {
    code: String,
    short_url: String,
    target_url: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    disabled_reason: Option<String>,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    max_clicks: Option<u64>,
    #[serde(default)]
    redirect_status: Option<u16>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    forward_query: bool,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LinkPage {
    items: Vec<LinkView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HistoryPage {
    items: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    at: String,
    event: String,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    changes: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    cursor: String,
}

const STATES: [(&str, &str); 6] = [
    ("", "All but deleted"),
    ("active", "Active"),
    ("disabled", "Disabled"),
    ("expired", "Expired"),
    ("deleted", "Deleted"),
    ("all", "All"),
];

pub async fn list(State(ui): State<Ui>, signed_in: SignedIn, Query(params): Query<ListParams>) -> Page {
    let mut query = vec![("limit", "20")];
    for (name, value) in [("q", &params.q), ("state", &params.state), ("tag", &params.tag), ("cursor", &params.cursor)]
    {
        if !value.is_empty() {
            query.push((name, value.as_str()));
        }
    }
    let answer = api(&ui, &signed_in, Method::GET, &format!("/v1/links?{}", encode_query(&query)), None).await?;
    let page: LinkPage = answer.json()?;
    let next = page.next_cursor.as_deref().map(|cursor| {
        let mut query = vec![("cursor", cursor)];
        query.extend(
            [("q", params.q.as_str()), ("state", params.state.as_str()), ("tag", params.tag.as_str())]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
        );
        format!("/ui/links?{}", encode_query(&query))
    });
    let body = html! {
        form.search role="search" method="get" action="/ui/links" {
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(params.q) placeholder="code or target";
            }
            div.field {
                label for="tag" { "Tag" }
                input #tag type="text" name="tag" value=(params.tag);
            }
            div.field {
                label for="state" { "State" }
                select #state name="state" {
                    @for (value, label) in STATES {
                        option value=(value) selected[params.state == value] { (label) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        p { a.button href="/ui/links/new" { "New link" } }
        @if page.items.is_empty() {
            @if params.cursor.is_empty() && params.q.is_empty() && params.tag.is_empty() && params.state.is_empty() {
                p #empty { "No links here yet." }
            } @else {
                p #empty { "No more links match." }
            }
        } @else {
            div.scroll {
                table #links {
                    caption.visually-hidden { "Your links, newest first" }
                    thead { tr { th scope="col" { "Short link" } th scope="col" { "Target" } th scope="col" { "State" } th scope="col" { "Tags" } th scope="col" { "Created" } } }
                    tbody {
                        @for link in &page.items {
                            tr {
                                td { a href=(format!("/ui/links/{}", link.code)) { "/" (link.code) } }
                                td.target { (link.target_url) }
                                td { (link.state.as_deref().unwrap_or(if link.enabled { "active" } else { "disabled" })) }
                                td { (link.tags.join(", ")) }
                                td { (date(&link.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a rel="next" href=(next) { "Next page" } }
        }
    };
    Ok(page::render(StatusCode::OK, "Links", signed_in.nav(), body))
}

/// The link form as posted: every field as typed, so a refused form comes back as the person left it.
#[derive(Debug, Default, Deserialize)]
pub struct LinkForm {
    csrf: String,
    #[serde(default)]
    target_url: String,
    #[serde(default)]
    alias: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    max_clicks: String,
    #[serde(default)]
    redirect_status: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    forward_query: Option<String>,
}

/// A message for one field of the form, or for the whole form (`field` empty).
#[derive(Debug, Default)]
struct FormError {
    field: String,
    message: String,
}

const FORM_FIELDS: [&str; 6] = ["target_url", "alias", "expires_at", "max_clicks", "redirect_status", "tags"];

impl FormError {
    fn on(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }

    /// The API's problem, placed next to the input its `field` names (`tags[3]` is the tags input).
    fn from_answer(answer: &Answer) -> Self {
        let problem = answer.problem();
        let message = if problem.detail.is_empty() { problem.title } else { problem.detail };
        let named = problem.field.as_deref().unwrap_or_default();
        let field = named.split(['[', '.']).next().unwrap_or_default();
        Self { field: if FORM_FIELDS.contains(&field) { field.to_owned() } else { String::new() }, message }
    }

    fn for_field(&self, field: &str) -> Option<&str> {
        (self.field == field).then_some(self.message.as_str())
    }
}

impl LinkForm {
    /// The API request body. Creating leaves out what is empty; editing clears it (`null`).
    fn to_json(&self, creating: bool) -> Result<Value, FormError> {
        let mut body = Map::new();
        body.insert("target_url".into(), json!(self.target_url.trim()));
        if creating && !self.alias.trim().is_empty() {
            body.insert("alias".into(), json!(self.alias.trim()));
        }
        let expires = self.expires_at.trim();
        if !expires.is_empty() {
            // A datetime-local input has no zone and may leave out the seconds: the form says UTC.
            let instant = match expires.len() {
                16 => format!("{expires}:00Z"),
                19 => format!("{expires}Z"),
                _ => expires.to_owned(),
            };
            body.insert("expires_at".into(), json!(instant));
        } else if !creating {
            body.insert("expires_at".into(), Value::Null);
        }
        let max_clicks = self.max_clicks.trim();
        if !max_clicks.is_empty() {
            let clicks: u64 =
                max_clicks.parse().map_err(|_| FormError::on("max_clicks", "Enter a whole number, 1 or more."))?;
            body.insert("max_clicks".into(), json!(clicks));
        } else if !creating {
            body.insert("max_clicks".into(), Value::Null);
        }
        if !self.redirect_status.is_empty() {
            let status: u16 = self
                .redirect_status
                .parse()
                .map_err(|_| FormError::on("redirect_status", "Choose a redirect status."))?;
            body.insert("redirect_status".into(), json!(status));
        }
        let tags: Vec<&str> = self.tags.split(',').map(str::trim).filter(|tag| !tag.is_empty()).collect();
        body.insert("tags".into(), json!(tags));
        body.insert("forward_query".into(), json!(self.forward_query.is_some()));
        Ok(Value::Object(body))
    }

    fn of(link: &LinkView) -> Self {
        Self {
            target_url: link.target_url.clone(),
            alias: link.code.clone(),
            // `2027-06-01T00:00:00.000Z` → the datetime-local input's `2027-06-01T00:00`.
            expires_at: link.expires_at.as_deref().map(|at| at.chars().take(16).collect()).unwrap_or_default(),
            max_clicks: link.max_clicks.map(|n| n.to_string()).unwrap_or_default(),
            redirect_status: link.redirect_status.unwrap_or(302).to_string(),
            tags: link.tags.join(", "),
            forward_query: link.forward_query.then(String::new),
            csrf: String::new(),
        }
    }
}

pub async fn new(signed_in: SignedIn) -> Response {
    let form = LinkForm { redirect_status: "302".into(), ..LinkForm::default() };
    form_page(&signed_in, StatusCode::OK, "New link", "/ui/links", &form, &FormError::default(), true)
}

pub async fn create(State(ui): State<Ui>, signed_in: SignedIn, Form(form): Form<LinkForm>) -> Page {
    signed_in.check(&form.csrf)?;
    let refused =
        |status, error: FormError| Ok(form_page(&signed_in, status, "New link", "/ui/links", &form, &error, true));
    let body = match form.to_json(true) {
        Ok(body) => body,
        Err(error) => return refused(StatusCode::UNPROCESSABLE_ENTITY, error),
    };
    let answer = signed_in.call(&ui, Method::POST, "/v1/links", Some(&body)).await?;
    if answer.status == StatusCode::CREATED {
        let link: LinkView = answer.json()?;
        return Ok(Redirect::to(&format!("/ui/links/{}?done=created", link.code)).into_response());
    }
    if answer.status.is_client_error() {
        return refused(answer.status, FormError::from_answer(&answer));
    }
    Err(page::api_error(&answer).into())
}

fn form_page(
    signed_in: &SignedIn,
    status: StatusCode,
    title: &str,
    action: &str,
    form: &LinkForm,
    error: &FormError,
    creating: bool,
) -> Response {
    let described = |field: &str| error.for_field(field).map(|_| format!("{field}-error"));
    let invalid = |field: &str| error.for_field(field).map(|_| "true");
    let message = |field: &str| {
        html! { @if let Some(message) = error.for_field(field) { p.error id=(format!("{field}-error")) { (message) } } }
    };
    let body = html! {
        form.card method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(signed_in.session.csrf);
            @if error.field.is_empty() && !error.message.is_empty() {
                p.error role="alert" { (error.message) }
            }
            div.field {
                label for="target_url" { "Target URL" }
                input #target_url type="url" name="target_url" value=(form.target_url) required maxlength="8192"
                    placeholder="https://example.com/page" aria-describedby=[described("target_url")] aria-invalid=[invalid("target_url")];
                (message("target_url"))
            }
            @if creating {
                div.field {
                    label for="alias" { "Alias (optional)" }
                    input #alias type="text" name="alias" value=(form.alias) maxlength="64" pattern="[A-Za-z0-9_-]{3,64}"
                        aria-describedby=(described("alias").unwrap_or_else(|| "alias-hint".into())) aria-invalid=[invalid("alias")];
                    p.hint #alias-hint { "3–64 letters, digits, _ or -. Left empty, Kurz picks a code." }
                    (message("alias"))
                }
            }
            div.field {
                label for="expires_at" { "Expires (UTC, optional)" }
                input #expires_at type="datetime-local" name="expires_at" value=(form.expires_at)
                    aria-describedby=[described("expires_at")] aria-invalid=[invalid("expires_at")];
                (message("expires_at"))
            }
            div.field {
                label for="max_clicks" { "Maximum clicks (optional)" }
                input #max_clicks type="number" name="max_clicks" min="1" inputmode="numeric" value=(form.max_clicks)
                    aria-describedby=[described("max_clicks")] aria-invalid=[invalid("max_clicks")];
                (message("max_clicks"))
            }
            div.field {
                label for="redirect_status" { "Redirect status" }
                select #redirect_status name="redirect_status" aria-describedby=[described("redirect_status")] {
                    @for (status, label) in [("302", "302 Found (default)"), ("301", "301 Moved Permanently"), ("307", "307 Temporary Redirect"), ("308", "308 Permanent Redirect")] {
                        option value=(status) selected[form.redirect_status == status] { (label) }
                    }
                }
                (message("redirect_status"))
            }
            div.field {
                label for="tags" { "Tags (comma-separated, optional)" }
                input #tags type="text" name="tags" value=(form.tags) aria-describedby=[described("tags")] aria-invalid=[invalid("tags")];
                (message("tags"))
            }
            div.field.check {
                input #forward_query type="checkbox" name="forward_query" checked[form.forward_query.is_some()];
                label for="forward_query" { "Pass the short URL's query string on to the target" }
            }
            button type="submit" { @if creating { "Create link" } @else { "Save changes" } }
        }
    };
    page::render(status, title, signed_in.nav(), body)
}

pub async fn show(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Query(done): Query<Done>,
) -> Page {
    let code = parse_code(&code)?;
    let link: LinkView = api(&ui, &signed_in, Method::GET, &format!("/v1/links/{code}"), None).await?.json()?;
    let history: HistoryPage =
        api(&ui, &signed_in, Method::GET, &format!("/v1/links/{code}/history"), None).await?.json()?;
    let history = history.items;
    let done = match done.done.as_str() {
        "created" => Some("Link created."),
        "updated" => Some("Changes saved."),
        "enabled" => Some("Link switched on."),
        "disabled" => Some("Link switched off: it answers 410 until switched on again."),
        _ => None,
    };
    let qr = format!("/ui/links/{}/qr", link.code);
    let body = html! {
        @if let Some(done) = done { p.done role="status" { (done) } }
        section.card aria-labelledby="short-heading" {
            h2 #short-heading { "Short URL" }
            p.short {
                a #short-url href=(link.short_url) { (link.short_url) }
                " "
                button.copy type="button" data-copy=(link.short_url) { "Copy" }
                span.copied role="status" aria-live="polite" {}
            }
            div.qr {
                img #qr src=(format!("{qr}?format=svg")) width="200" height="200" alt=(format!("QR code for {}", link.short_url));
                p { "Download the QR code: "
                    a href=(format!("{qr}?format=svg")) download=(format!("{}.svg", link.code)) { "SVG" } ", "
                    a href=(format!("{qr}?format=png&size=600")) download=(format!("{}.png", link.code)) { "PNG" } }
            }
        }
        section.card aria-labelledby="details-heading" {
            h2 #details-heading { "Details" }
            dl.details {
                dt { "Target" } dd #target { (link.target_url) }
                dt { "State" } dd #state { @if link.enabled { "active" } @else { "disabled" @if let Some(reason) = &link.disabled_reason { " (" (reason) ")" } } }
                dt { "Owner" } dd { (link.owner) }
                dt { "Created" } dd { (link.created_at) }
                dt { "Expires" } dd { (link.expires_at.as_deref().unwrap_or("never")) }
                dt { "Maximum clicks" } dd { (link.max_clicks.map_or_else(|| "no limit".to_owned(), |n| n.to_string())) }
                dt { "Redirect status" } dd { (link.redirect_status.unwrap_or(302)) }
                dt { "Tags" } dd #tags { (link.tags.join(", ")) }
                dt { "Query string" } dd { @if link.forward_query { "passed on" } @else { "dropped" } }
            }
            div.actions {
                a.button href=(format!("/ui/links/{}/stats", link.code)) { "Stats" }
                a.button href=(format!("/ui/links/{}/edit", link.code)) { "Edit" }
                form.inline method="post" action=(format!("/ui/links/{}/enabled", link.code)) {
                    input type="hidden" name="csrf" value=(signed_in.session.csrf);
                    input type="hidden" name="enabled" value=(if link.enabled { "false" } else { "true" });
                    button type="submit" { @if link.enabled { "Switch off" } @else { "Switch on" } }
                }
                a.button.danger href=(format!("/ui/links/{}/delete", link.code)) { "Delete" }
            }
        }
        section.card aria-labelledby="history-heading" {
            h2 #history-heading { "History" }
            @if history.is_empty() {
                p.hint { "Nothing recorded yet: a change shows here within a second of being made." }
            }
            ol.history {
                @for change in &history {
                    li {
                        strong { (change.event) } " " time { (change.at) }
                        @if let Some(key) = &change.key_id { " by key " code { (key) } }
                        @if !change.changes.is_empty() {
                            ul { @for (field, value) in &change.changes { li { code { (field) } ": " (shown(value)) } } }
                        }
                    }
                }
            }
        }
    };
    Ok(page::render(StatusCode::OK, &format!("/{}", link.code), signed_in.nav(), body))
}

pub async fn edit(State(ui): State<Ui>, signed_in: SignedIn, Path(code): Path<String>) -> Page {
    let code = parse_code(&code)?;
    let link: LinkView = api(&ui, &signed_in, Method::GET, &format!("/v1/links/{code}"), None).await?.json()?;
    let (title, action) = (format!("Edit /{code}"), format!("/ui/links/{code}/edit"));
    let form = LinkForm::of(&link);
    Ok(form_page(&signed_in, StatusCode::OK, &title, &action, &form, &FormError::default(), false))
}

pub async fn update(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Form(form): Form<LinkForm>,
) -> Page {
    signed_in.check(&form.csrf)?;
    let code = parse_code(&code)?;
    let (title, action) = (format!("Edit /{code}"), format!("/ui/links/{code}/edit"));
    let refused = |status, error: FormError| Ok(form_page(&signed_in, status, &title, &action, &form, &error, false));
    let body = match form.to_json(false) {
        Ok(body) => body,
        Err(error) => return refused(StatusCode::UNPROCESSABLE_ENTITY, error),
    };
    let path = format!("/v1/links/{code}");
    let answer = signed_in.call(&ui, Method::PATCH, &path, Some(&body)).await?;
    match answer.status {
        status if status.is_success() => Ok(Redirect::to(&format!("/ui/links/{code}?done=updated")).into_response()),
        StatusCode::UNPROCESSABLE_ENTITY => refused(answer.status, FormError::from_answer(&answer)),
        _ => Err(page::api_error(&answer).into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    csrf: String,
    enabled: String,
}

pub async fn switch(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Form(form): Form<SwitchForm>,
) -> Page {
    signed_in.check(&form.csrf)?;
    let code = parse_code(&code)?;
    let enabled = form.enabled == "true";
    let body = json!({ "enabled": enabled });
    api(&ui, &signed_in, Method::PATCH, &format!("/v1/links/{code}"), Some(&body)).await?;
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(Redirect::to(&format!("/ui/links/{code}?done={done}")).into_response())
}

pub async fn confirm_delete(signed_in: SignedIn, Path(code): Path<String>) -> Page {
    let code = parse_code(&code)?;
    let body = html! {
        form.card method="post" action=(format!("/ui/links/{code}/delete")) {
            input type="hidden" name="csrf" value=(signed_in.session.csrf);
            p { "Delete " strong { "/" (code) } "? Its short URL answers 410 from then on, and the code is never issued again. Its history stays." }
            div.actions {
                button.danger type="submit" { "Delete for good" }
                a.button href=(format!("/ui/links/{code}")) { "Cancel" }
            }
        }
    };
    Ok(page::render(StatusCode::OK, &format!("Delete /{code}?"), signed_in.nav(), body))
}

pub async fn delete(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    signed_in.check(form.token())?;
    let code = parse_code(&code)?;
    api(&ui, &signed_in, Method::DELETE, &format!("/v1/links/{code}"), None).await?;
    Ok(Redirect::to("/ui/links").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct QrParams {
    #[serde(default)]
    format: String,
    #[serde(default)]
    size: Option<u16>,
}

/// The link's QR code, from the public QR route: served from the UI's own origin, so the page's CSP
/// (images from itself only) holds in distributed mode too, where short links live elsewhere.
pub async fn qr(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Query(params): Query<QrParams>,
) -> Page {
    let code = parse_code(&code)?;
    let format = if params.format == "png" { "png" } else { "svg" };
    let size = params.size.unwrap_or(300).to_string();
    let path = format!("/{code}/qr?{}", encode_query(&[("format", format), ("size", &size)]));
    let response = ui.upstream.stream(&signed_in.client, &signed_in.session.key, &path).await?;
    if !response.status().is_success() {
        return Err(page::error(response.status(), "No QR code", "This link has no QR code (deleted?).").into());
    }
    Ok(response)
}

/// Calls the API; an answer that is not a success becomes the page that says why.
pub(crate) async fn api(
    ui: &Ui,
    signed_in: &SignedIn,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, Stop> {
    let answer = signed_in.call(ui, method, path, body).await?;
    if answer.is_success() { Ok(answer) } else { Err(page::api_error(&answer).into()) }
}

/// A code from the path, before it goes into an API path: anything else is no link.
pub(crate) fn parse_code(code: &str) -> Result<Code, Stop> {
    Code::parse(code)
        .map_err(|_| page::error(StatusCode::NOT_FOUND, "No such link", "There is no link with that code.").into())
}

/// `2026-11-30T10:00:00.000Z` → `2026-11-30`.
fn date(timestamp: &str) -> &str {
    timestamp.get(..10).unwrap_or(timestamp)
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

/// `application/x-www-form-urlencoded` for a query string.
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_whatever_was_typed() {
        assert_eq!(encode_query(&[("q", "a b&c=d/é"), ("limit", "20")]), "q=a%20b%26c%3Dd%2F%C3%A9&limit=20");
    }

    #[test]
    fn an_edit_clears_what_was_emptied_and_a_create_leaves_it_out() {
        let form = LinkForm { target_url: " https://example.com ".into(), tags: "a, ,b".into(), ..LinkForm::default() };
        let edit = form.to_json(false).expect("valid");
        assert_eq!(edit["expires_at"], Value::Null);
        assert_eq!(edit["max_clicks"], Value::Null);
        assert_eq!(edit["tags"], json!(["a", "b"]));
        assert_eq!(edit["target_url"], "https://example.com");
        let create = form.to_json(true).expect("valid");
        assert!(create.get("expires_at").is_none() && create.get("max_clicks").is_none());
        let timed = LinkForm { expires_at: "2027-06-01T08:30".into(), max_clicks: "x".into(), ..LinkForm::default() };
        assert_eq!(timed.to_json(true).map_err(|e| e.field).expect_err("not a number"), "max_clicks");
        let timed = LinkForm { max_clicks: "5".into(), ..timed };
        assert_eq!(timed.to_json(true).expect("valid")["expires_at"], "2027-06-01T08:30:00Z");
    }
}

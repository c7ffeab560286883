//! Admin pages: API keys (create, shown once; revoke) and orphan visits. The API refuses them to
//! other keys; the UI only leaves them out of other people's navigation.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use kurz_domain::KeyId;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::Ui;
use crate::chart::{self, Bar};
use crate::guard::{CsrfForm, SignedIn};
use crate::links::{api, encode_query};
use crate::page::{self, Done, Page};
use crate::stats::ranking;

#[derive(Debug, Deserialize)]
struct KeyView {
    id: String,
    owner: String,
    role: String,
    created_at: String,
    #[serde(default)]
    revoked_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KeyList {
    items: Vec<KeyView>,
}

#[derive(Debug, Deserialize)]
struct CreatedKey {
    id: String,
    key: String,
    owner: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyForm {
    csrf: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    role: String,
}

pub async fn keys(State(ui): State<Ui>, signed_in: SignedIn, Query(done): Query<Done>) -> Page {
    let message = (done.done == "revoked").then_some("Key revoked: it is refused from now on.");
    keys_page(&ui, &signed_in, StatusCode::OK, message, None, None).await
}

pub async fn create_key(State(ui): State<Ui>, signed_in: SignedIn, Form(form): Form<KeyForm>) -> Page {
    signed_in.check(&form.csrf)?;
    let body = json!({ "owner": form.owner.trim(), "role": form.role });
    let answer = signed_in.call(&ui, Method::POST, "/v1/keys", Some(&body)).await?;
    if answer.status == StatusCode::CREATED {
        let created: CreatedKey = answer.json()?;
        // Shown in this answer only (not behind a redirect, where it would be in a URL or a second
        // request): the API keeps nothing but its digest.
        return keys_page(&ui, &signed_in, StatusCode::CREATED, None, Some(&created), None).await;
    }
    if answer.status == StatusCode::UNPROCESSABLE_ENTITY {
        let problem = answer.problem();
        return keys_page(&ui, &signed_in, answer.status, None, None, Some(&problem.detail)).await;
    }
    Err(page::api_error(&answer).into())
}

pub async fn revoke_key(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    signed_in.check(form.token())?;
    // The domain's rule for a key id, before it goes into an API path: anything else is no key.
    let id = KeyId::parse(&id)
        .map_err(|_| page::error(StatusCode::NOT_FOUND, "No such key", "There is no key with that id."))?;
    api(&ui, &signed_in, Method::DELETE, &format!("/v1/keys/{id}"), None).await?;
    Ok(Redirect::to("/ui/keys?done=revoked").into_response())
}

async fn keys_page(
    ui: &Ui,
    signed_in: &SignedIn,
    status: StatusCode,
    message: Option<&str>,
    created: Option<&CreatedKey>,
    error: Option<&str>,
) -> Page {
    let list: KeyList = api(ui, signed_in, Method::GET, "/v1/keys", None).await?.json()?;
    let csrf = &signed_in.session.csrf;
    let body = html! {
        @if let Some(message) = message { p.done role="status" { (message) } }
        @if let Some(created) = created {
            section.card.created role="status" aria-labelledby="new-key" {
                h2 #new-key { "New key for " (created.owner) " (" (created.role) ")" }
                p { "Copy it now: it is shown this once, and Kurz keeps only its digest." }
                p.short { code #created-key { (created.key) } " "
                    button.copy type="button" data-copy=(created.key) { "Copy" }
                    span.copied role="status" aria-live="polite" {} }
                p.hint { "Its id is " code { (created.id) } "." }
            }
        }
        form.card method="post" action="/ui/keys" {
            h2 { "Create a key" }
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(error) = error { p.error role="alert" id="owner-error" { (error) } }
            div.field {
                label for="owner" { "Owner" }
                input #owner type="text" name="owner" required maxlength="64" pattern="[A-Za-z0-9._@-]{1,64}"
                    aria-describedby=(if error.is_some() { "owner-error" } else { "owner-hint" }) aria-invalid=[error.map(|_| "true")];
                p.hint #owner-hint { "Whose links the key manages: letters, digits, . _ @ -" }
            }
            div.field {
                label for="role" { "Role" }
                select #role name="role" {
                    option value="user" selected { "user: its owner's links" }
                    option value="admin" { "admin: everything" }
                    option value="ingest" { "ingest: only reports clicks" }
                }
            }
            button type="submit" { "Create key" }
        }
        div.scroll {
            table #keys {
                caption { "Keys" }
                thead { tr { th scope="col" { "Id" } th scope="col" { "Owner" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "State" } } }
                tbody {
                    @for key in &list.items {
                        tr {
                            td { code { (key.id) } }
                            td { (key.owner) }
                            td { (key.role) }
                            td { (key.created_at.get(..10).unwrap_or(&key.created_at)) }
                            td {
                                @if let Some(revoked) = &key.revoked_at { "revoked " (revoked.get(..10).unwrap_or(revoked)) }
                                @else if key.id == "bootstrap" { "from its file" }
                                @else {
                                    form.inline method="post" action=(format!("/ui/keys/{}/revoke", key.id)) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" aria-label=(format!("Revoke key {}", key.id)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::render(status, "API keys", signed_in.nav(), body))
}

#[derive(Debug, Deserialize)]
struct Count {
    name: String,
    visits: u64,
}

#[derive(Debug, Deserialize)]
struct OrphanDay {
    date: String,
    visits: u64,
}

#[derive(Debug, Deserialize)]
struct Orphans {
    from: String,
    to: String,
    visits: u64,
    #[serde(default)]
    reasons: Vec<Count>,
    #[serde(default)]
    codes: Vec<Count>,
    #[serde(default)]
    referrers: Vec<Count>,
    #[serde(default)]
    days: Vec<OrphanDay>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RangeParams {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub async fn orphans(State(ui): State<Ui>, signed_in: SignedIn, Query(range): Query<RangeParams>) -> Page {
    let query: Vec<(&str, &str)> =
        [("from", range.from.as_str()), ("to", range.to.as_str())].into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let orphans: Orphans =
        api(&ui, &signed_in, Method::GET, &format!("/v1/orphan-visits?{}", encode_query(&query)), None)
            .await?
            .json()?;
    let mut days: Vec<&OrphanDay> = orphans.days.iter().collect();
    days.sort_by(|a, b| a.date.cmp(&b.date));
    let bars: Vec<Bar> = days.iter().map(|day| Bar { label: day.date.clone(), value: day.visits }).collect();
    let tables: [(&str, &[Count]); 3] =
        [("Why", &orphans.reasons), ("Codes tried most", &orphans.codes), ("Referrers", &orphans.referrers)];
    let body = html! {
        p { "Requests for codes that name no live link (unknown, deleted, expired, disabled, exhausted, blocked), "
            (orphans.from) " to " (orphans.to) ": " strong #orphan-visits { (orphans.visits) } "." }
        form.search method="get" action="/ui/orphans" {
            div.field { label for="from" { "From" } input #from type="date" name="from" value=(orphans.from); }
            div.field { label for="to" { "To" } input #to type="date" name="to" value=(orphans.to); }
            button type="submit" { "Show" }
        }
        @if !bars.is_empty() {
            figure.card { (chart::bars("Orphan visits per day", &bars)) figcaption { "Orphan visits per day (days with visits)" } }
        }
        div.breakdowns {
            @for (title, counts) in tables {
                section.card aria-label=(title) {
                    h2 { (title) }
                    @if counts.is_empty() { p.hint { "None." } }
                    @else { (ranking(&counts.iter().map(|c| (c.name.as_str(), c.visits)).collect::<Vec<_>>(), false)) }
                }
            }
        }
    };
    Ok(page::render(StatusCode::OK, "Orphan visits", signed_in.nav(), body))
}

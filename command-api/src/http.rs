//! The command API over HTTP: JSON in, problems out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use kurz_domain::aggregate::LinkChanges;
use kurz_domain::link::{MaxClicks, Metadata, RedirectStatus, Tags};
use kurz_domain::{Code, LinkClicked, LinkSpec, Rejection, TargetUrl, Timestamp};
use kurz_service_kit::representation::LinkBody;
use kurz_service_kit::time_format::parse_millis;
use kurz_service_kit::{ApiJson, Problem};
use serde::{Deserialize, Deserializer};

use crate::service::{CommandError, CommandService, NewLink};

/// Larger than any valid link (8 KiB URL, 32 tags, 32 metadata entries) with room to spare.
const LINK_BODY_LIMIT: usize = 128 * 1024;
const CLICKS_BODY_LIMIT: usize = 2 * 1024 * 1024;
pub const MAX_CLICKS_PER_BATCH: usize = 1000;
/// Reported clicks happened already; this much allows for the reporter's clock running ahead.
const CLICK_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct RoutesConfig {
    /// Where short links are served, for `short_url` (e.g. `https://kurz.example`).
    pub public_base_url: Arc<str>,
}

#[derive(Clone)]
struct AppState {
    service: Arc<CommandService>,
    config: RoutesConfig,
}

pub fn routes(service: Arc<CommandService>, config: RoutesConfig) -> Router {
    let state = AppState { service, config };
    Router::new()
        .route("/v1/links", post(create).layer(DefaultBodyLimit::max(LINK_BODY_LIMIT)))
        .route("/v1/links/{code}", patch(update).delete(delete).layer(DefaultBodyLimit::max(LINK_BODY_LIMIT)))
        .route("/v1/clicks", post(record_clicks).layer(DefaultBodyLimit::max(CLICKS_BODY_LIMIT)))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLinkBody {
    target_url: String,
    alias: Option<String>,
    expires_at: Option<String>,
    max_clicks: Option<i64>,
    redirect_status: Option<u16>,
    tags: Option<Vec<String>>,
    metadata: Option<BTreeMap<String, String>>,
}

/// JSON Merge Patch (RFC 7396): an absent field stays, `null` clears an optional one.
#[expect(clippy::option_option, reason = "absent, null and a value are three different requests")]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateLinkBody {
    target_url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    max_clicks: Option<Option<i64>>,
    redirect_status: Option<u16>,
    tags: Option<Vec<String>>,
    metadata: Option<BTreeMap<String, String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
#[expect(clippy::option_option, reason = "see UpdateLinkBody")]
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClicksBody {
    clicks: Vec<ReportedClick>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportedClick {
    code: String,
    clicked_at: Option<String>,
    referrer: Option<String>,
    user_agent: Option<String>,
    visitor_id: Option<String>,
}

fn target(field: &str, raw: &str) -> Result<TargetUrl, Problem> {
    TargetUrl::parse(raw).map_err(|e| Problem::invalid_field(field, e))
}

fn timestamp(field: &str, raw: &str) -> Result<Timestamp, Problem> {
    parse_millis(raw).map(Timestamp::from_millis).map_err(|e| Problem::invalid_field(field, e))
}

fn max_clicks(raw: i64) -> Result<MaxClicks, Problem> {
    MaxClicks::new(i128::from(raw)).map_err(|e| Problem::invalid_field("max_clicks", e))
}

fn redirect_status(raw: u16) -> Result<RedirectStatus, Problem> {
    RedirectStatus::from_code(raw).map_err(|e| Problem::invalid_field("redirect_status", e))
}

fn tags(raw: Vec<String>) -> Result<Tags, Problem> {
    Tags::parse(raw).map_err(|e| Problem::invalid_field("tags", e))
}

fn metadata(raw: BTreeMap<String, String>) -> Result<Metadata, Problem> {
    Metadata::parse(raw).map_err(|e| Problem::invalid_field("metadata", e))
}

impl TryFrom<CreateLinkBody> for NewLink {
    type Error = Problem;

    fn try_from(body: CreateLinkBody) -> Result<Self, Problem> {
        let alias =
            body.alias.map(|a| Code::parse_alias(&a).map_err(|e| Problem::invalid_field("alias", e))).transpose()?;
        let spec = LinkSpec {
            target: target("target_url", &body.target_url)?,
            expires_at: body.expires_at.map(|raw| timestamp("expires_at", &raw)).transpose()?,
            max_clicks: body.max_clicks.map(max_clicks).transpose()?,
            redirect_status: body.redirect_status.map(redirect_status).transpose()?.unwrap_or_default(),
            tags: body.tags.map(tags).transpose()?.unwrap_or_default(),
            metadata: body.metadata.map(metadata).transpose()?.unwrap_or_default(),
        };
        Ok(Self { alias, spec })
    }
}

impl TryFrom<UpdateLinkBody> for LinkChanges {
    type Error = Problem;

    fn try_from(body: UpdateLinkBody) -> Result<Self, Problem> {
        Ok(Self {
            target: body.target_url.map(|raw| target("target_url", &raw)).transpose()?,
            expires_at: body.expires_at.map(|v| v.map(|raw| timestamp("expires_at", &raw)).transpose()).transpose()?,
            max_clicks: body.max_clicks.map(|v| v.map(max_clicks).transpose()).transpose()?,
            redirect_status: body.redirect_status.map(redirect_status).transpose()?,
            tags: body.tags.map(tags).transpose()?,
            metadata: body.metadata.map(metadata).transpose()?,
        })
    }
}

fn problem_for(error: CommandError) -> Problem {
    match error {
        CommandError::Rejected(rejection) => match rejection {
            Rejection::AlreadyExists(code) => {
                let mut problem = Problem::conflict(format!("the alias {code} is already taken"));
                problem.field = Some("alias".into());
                problem
            }
            Rejection::NotFound(code) => Problem::not_found(format!("no link has code {code}")),
            Rejection::Deleted(code) => Problem::gone(format!("link {code} has been deleted")),
            Rejection::ExpiryNotInFuture => Problem::invalid_field("expires_at", "must be in the future"),
        },
        CommandError::Infra(error) => Problem::unavailable(&error),
    }
}

/// A path segment that is not a valid code names no link.
fn path_code(raw: &str) -> Result<Code, Problem> {
    Code::parse(raw).map_err(|_| Problem::not_found(format!("no link has code {raw}")))
}

async fn create(State(state): State<AppState>, ApiJson(body): ApiJson<CreateLinkBody>) -> Result<Response, Problem> {
    let new = NewLink::try_from(body)?;
    let link = state.service.create(new).await.map_err(problem_for)?;
    let location = format!("/v1/links/{}", link.code);
    let body = LinkBody::new(&link, &state.config.public_base_url);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<UpdateLinkBody>,
) -> Result<Json<LinkBody>, Problem> {
    let code = path_code(&code)?;
    let changes = LinkChanges::try_from(body)?;
    let link = state.service.update(code, changes).await.map_err(problem_for)?;
    Ok(Json(LinkBody::new(&link, &state.config.public_base_url)))
}

async fn delete(State(state): State<AppState>, Path(code): Path<String>) -> Result<StatusCode, Problem> {
    let code = path_code(&code)?;
    state.service.delete(code).await.map_err(problem_for)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn record_clicks(State(state): State<AppState>, ApiJson(body): ApiJson<ClicksBody>) -> Result<Response, Problem> {
    if body.clicks.is_empty() || body.clicks.len() > MAX_CLICKS_PER_BATCH {
        return Err(Problem::invalid_field("clicks", format!("must hold 1 to {MAX_CLICKS_PER_BATCH} clicks")));
    }
    let now = state.service.now();
    let codes: Vec<String> = body.clicks.iter().map(|c| c.code.clone()).collect();
    let mut clicks = Vec::with_capacity(body.clicks.len());
    for (i, click) in body.clicks.into_iter().enumerate() {
        let code = Code::parse(&click.code).map_err(|e| Problem::invalid_field(format!("clicks[{i}].code"), e))?;
        let clicked_at = match &click.clicked_at {
            Some(raw) => {
                let field = format!("clicks[{i}].clicked_at");
                let at = timestamp(&field, raw)?;
                if at.as_millis() > now.as_millis() + CLICK_CLOCK_SKEW_MS {
                    return Err(Problem::invalid_field(field, "lies in the future"));
                }
                at
            }
            None => now,
        };
        clicks.push(LinkClicked::new(
            code,
            clicked_at,
            click.referrer.as_deref(),
            click.user_agent.as_deref(),
            click.visitor_id.as_deref(),
        ));
    }
    let accepted = state.service.record_clicks(clicks).await.map_err(|error| match error {
        CommandError::Rejected(Rejection::NotFound(code)) => {
            let index = codes.iter().position(|c| c == code.as_str()).unwrap_or_default();
            Problem::invalid_field(format!("clicks[{index}].code"), format!("names no link ({code})"))
        }
        other => problem_for(other),
    })?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "accepted": accepted }))).into_response())
}

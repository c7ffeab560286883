//! The command API over HTTP: JSON in, problems out.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use kurz_domain::aggregate::LinkChanges;
use kurz_domain::link::{
    DisabledReason, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN, MAX_TAG_LEN, MAX_TAGS,
    MaxClicks, RedirectStatus,
};
use kurz_domain::{
    ClickDetails, Code, KeyId, LinkClicked, LinkSpec, Owner, Permission, Rejection, Role, TargetUrl, Timestamp,
};
use kurz_service_kit::auth::{BOOTSTRAP_ID, Caller, Keys};
use kurz_service_kit::path::Segment;
use kurz_service_kit::representation::LinkBody;
use kurz_service_kit::time_format::{format_millis, parse_millis};
use kurz_service_kit::{ApiJson, Problem, api_doc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

use crate::bounded::{RequestMetadata, RequestTags};
use crate::service::{CommandError, CommandService, Created, NewLink, RecordedClicks};

/// Larger than any valid link (8 KiB URL, 32 tags, 32 metadata entries) with room to spare.
const LINK_BODY_LIMIT: usize = 128 * 1024;
/// A batch of up to [`MAX_BATCH`] links: 8 KiB a link on average.
const BATCH_BODY_LIMIT: usize = 8 * 1024 * 1024;
pub const MAX_BATCH: usize = 1000;
/// Links of a batch created at once: enough to fill a group commit, few enough to leave room.
const BATCH_CONCURRENCY: usize = 32;
const CLICKS_BODY_LIMIT: usize = 2 * 1024 * 1024;
const KEY_BODY_LIMIT: usize = 4 * 1024;
pub const MAX_CLICKS_PER_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct RoutesConfig {
    /// Where short links are served, for `short_url` (e.g. `https://kurz.example`).
    pub public_base_url: Arc<str>,
    /// A batch counts each of its links against its key's write limit.
    pub limits: Arc<kurz_service_kit::limits::Limits>,
}

#[derive(Clone)]
struct AppState {
    service: Arc<CommandService>,
    keys: Arc<Keys>,
    config: RoutesConfig,
}

/// The command side's `/v1/…` routes, and the operations they document. Every one needs an API
/// key: put them behind [`kurz_service_kit::gate::ApiGate`].
pub fn routes(
    service: Arc<CommandService>,
    keys: Arc<Keys>,
    config: RoutesConfig,
) -> (Router, utoipa::openapi::OpenApi) {
    let state = AppState { service, keys, config };
    let limit = DefaultBodyLimit::max;
    OpenApiRouter::new()
        .routes(routes!(create).layer(limit(LINK_BODY_LIMIT)))
        .routes(routes!(create_batch).layer(limit(BATCH_BODY_LIMIT)))
        .routes(routes!(update, delete_link).layer(limit(LINK_BODY_LIMIT)))
        .routes(routes!(record_clicks).layer(limit(CLICKS_BODY_LIMIT)))
        .routes(routes!(create_key, list_keys).layer(limit(KEY_BODY_LIMIT)))
        .routes(routes!(revoke_key))
        .with_state(state)
        .split_for_parts()
}

/// A new link. Only `target_url` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateLinkBody {
    /// An absolute `http` or `https` URL of at most 8 KiB, to a public host.
    #[schema(
        format = "uri",
        max_length = 8192,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://",
        example = "https://example.com/a/long/path"
    )]
    target_url: String,
    /// A code of your choosing (3–64 of `A-Z a-z 0-9 _ -`, not a reserved word); else one is made.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,64}$")]
    alias: Option<String>,
    /// When the link stops redirecting (RFC 3339, in the future).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Redirects served before the link answers 410.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_992_i64)]
    max_clicks: Option<i64>,
    /// 301, 302, 307 or 308 (default 302).
    #[schema(schema_with = redirect_statuses)]
    redirect_status: Option<u16>,
    /// At most 32 tags of 1–64 printable characters (repeats count once).
    #[schema(schema_with = tags_schema)]
    tags: Option<RequestTags>,
    /// At most 32 entries; keys of 1–64 printable characters, values of at most 1024.
    #[schema(schema_with = metadata_schema)]
    metadata: Option<RequestMetadata>,
    /// Whom the link belongs to: the key's own owner unless an admin names another.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    owner: Option<String>,
    /// `false` creates the link switched off.
    enabled: Option<bool>,
    /// Why the link is off (with `"enabled": false`), at most 256 printable characters.
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    disabled_reason: Option<String>,
    /// Pass the short URL's query string on to the target.
    forward_query: Option<bool>,
}

/// At most 32 tags of 1–64 printable characters (a field's schema: the domain's `Tags` reads it).
fn tags_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .max_items(Some(MAX_TAGS))
        .items(api_doc::printable(1, MAX_TAG_LEN))
        .build()
}

/// At most 32 entries: keys of 1–64, values of at most 1024 printable characters.
fn metadata_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(MAX_METADATA_ENTRIES))
        .property_names(Some(api_doc::printable(1, MAX_METADATA_KEY_LEN)))
        .additional_properties(Some(api_doc::printable(0, MAX_METADATA_VALUE_LEN)))
        .build()
}

/// 301, 302, 307 or 308, or `null` (a field's schema: the domain's `RedirectStatus` reads it).
fn redirect_statuses() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some([json!(301), json!(302), json!(307), json!(308), Value::Null]))
        .build()
}

/// JSON Merge Patch (RFC 7396): an absent field stays, `null` clears an optional one.
#[expect(clippy::option_option, reason = "absent, null and a value are three different requests")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateLinkBody {
    #[schema(format = "uri", max_length = 8192, pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    target_url: Option<String>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<String>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 9_007_199_254_740_992_i64)]
    max_clicks: Option<Option<i64>>,
    #[schema(schema_with = redirect_statuses)]
    redirect_status: Option<u16>,
    /// Replaces the tags.
    #[schema(schema_with = tags_schema)]
    tags: Option<RequestTags>,
    /// Replaces the metadata.
    #[schema(schema_with = metadata_schema)]
    metadata: Option<RequestMetadata>,
    /// `false` switches the link off (410 until switched on again), `true` on.
    enabled: Option<bool>,
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    disabled_reason: Option<String>,
    forward_query: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
#[expect(clippy::option_option, reason = "see UpdateLinkBody")]
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Clicks seen elsewhere (an app, an edge server), counted as the redirects' are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClicksBody {
    #[schema(min_items = 1, max_items = 1000)]
    clicks: Vec<ReportedClick>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportedClick {
    #[schema(pattern = "^[A-Za-z0-9_-]{3,64}$")]
    code: String,
    /// When the click happened (at most 400 days ago); now if absent.
    #[schema(format = DateTime)]
    clicked_at: Option<String>,
    referrer: Option<String>,
    user_agent: Option<String>,
    /// A visitor pseudonym of yours, for unique visitors (counted within your key).
    visitor_id: Option<String>,
}

impl ClicksBody {
    /// A digest of the batch as sent (before defaults such as `clicked_at`), which a retry repeats.
    fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        for click in &self.clicks {
            let fields = [&click.clicked_at, &click.referrer, &click.user_agent, &click.visitor_id];
            for field in std::iter::once(Some(&click.code)).chain(fields.into_iter().map(Option::as_ref)) {
                match field {
                    Some(text) => {
                        digest.update([1]);
                        digest.update((text.len() as u64).to_le_bytes());
                        digest.update(text.as_bytes());
                    }
                    None => digest.update([0]),
                }
            }
        }
        digest.finalize().into()
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct Accepted {
    /// Clicks appended.
    accepted: usize,
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

/// `enabled` and `disabled_reason` as a change of the link's switch: `None` leaves it as it is.
#[expect(clippy::option_option, reason = "unchanged, switched on, switched off with a reason")]
fn switch(enabled: Option<bool>, reason: Option<String>) -> Result<Option<Option<DisabledReason>>, Problem> {
    match (enabled, reason) {
        (None, None) => Ok(None),
        (Some(true), None) => Ok(Some(None)),
        (Some(false), reason) => DisabledReason::parse(reason.unwrap_or_default())
            .map(|reason| Some(Some(reason)))
            .map_err(|e| Problem::invalid_field("disabled_reason", e)),
        (_, Some(_)) => Err(Problem::invalid_field("disabled_reason", "is only taken with \"enabled\": false")),
    }
}

impl NewLink {
    fn parse(body: CreateLinkBody, caller: &Caller) -> Result<Self, Problem> {
        let alias =
            body.alias.map(|a| Code::parse_alias(&a).map_err(|e| Problem::invalid_field("alias", e))).transpose()?;
        let requested_owner =
            body.owner.map(|o| Owner::parse(&o).map_err(|e| Problem::invalid_field("owner", e))).transpose()?;
        let owner = caller.0.owner_for_new_link(requested_owner).map_err(|e| forbidden(&e.to_string()))?;
        let spec = LinkSpec {
            target: target("target_url", &body.target_url)?,
            expires_at: body.expires_at.map(|raw| timestamp("expires_at", &raw)).transpose()?,
            max_clicks: body.max_clicks.map(max_clicks).transpose()?,
            redirect_status: body.redirect_status.map(redirect_status).transpose()?.unwrap_or_default(),
            tags: body.tags.map(|t| t.0).unwrap_or_default(),
            metadata: body.metadata.map(|m| m.0).unwrap_or_default(),
            disabled: switch(body.enabled, body.disabled_reason)?.flatten(),
            forward_query: body.forward_query.unwrap_or(false),
        };
        Ok(Self { alias, owner, spec })
    }
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "The key's role does not allow this", detail)
}

impl TryFrom<UpdateLinkBody> for LinkChanges {
    type Error = Problem;

    fn try_from(body: UpdateLinkBody) -> Result<Self, Problem> {
        Ok(Self {
            target: body.target_url.map(|raw| target("target_url", &raw)).transpose()?,
            expires_at: body.expires_at.map(|v| v.map(|raw| timestamp("expires_at", &raw)).transpose()).transpose()?,
            max_clicks: body.max_clicks.map(|v| v.map(max_clicks).transpose()).transpose()?,
            redirect_status: body.redirect_status.map(redirect_status).transpose()?,
            tags: body.tags.map(|t| t.0),
            metadata: body.metadata.map(|m| m.0),
            disabled: switch(body.enabled, body.disabled_reason)?,
            forward_query: body.forward_query,
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
            Rejection::ClickTimeOutOfRange => Problem::invalid_field("clicked_at", rejection),
            Rejection::TargetRefused(refusal) => Problem::invalid_field("target_url", refusal),
        },
        CommandError::Infra(error) => Problem::unavailable(&error),
        CommandError::InBatch { index, rejection } => Problem::invalid_field(format!("items[{index}]"), rejection),
        CommandError::IdempotencyKeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was first sent with a different request; use a new key for a new request",
        ),
        CommandError::IdempotentRequestInProgress => Problem {
            retry_after: Some(1),
            ..Problem::conflict("the first request with this Idempotency-Key is still being served; retry in a moment")
        },
    }
}

/// A path segment that is not a valid code names no link.
fn path_code(raw: &str) -> Result<Code, Problem> {
    Code::parse(raw).map_err(|_| Problem::not_found(format!("no link has code {raw}")))
}

/// The longest `Idempotency-Key` taken (a UUID is 36 characters).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An `Idempotency-Key` header: 1–255 visible ASCII characters.
struct IdempotencyKey(String);

impl IdempotencyKey {
    fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, Problem> {
        let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
            let detail = format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters");
            return Err(Problem::bad_request(detail));
        }
        Ok(Some(Self(String::from_utf8_lossy(bytes).into_owned())))
    }

    /// The key within its owner (two owners may pick the same key), as a fixed-length name.
    fn scoped(&self, owner: &Owner) -> String {
        self.scoped_with(owner, b"")
    }

    /// As [`Self::scoped`], for click batches: apart from creates, so that one key string used for
    /// both is two keys.
    fn scoped_for_clicks(&self, owner: &Owner) -> String {
        self.scoped_with(owner, b"\0clicks")
    }

    fn scoped_with(&self, owner: &Owner, purpose: &[u8]) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::new()
            .chain_update(owner.as_str())
            .chain_update([0])
            .chain_update(&self.0)
            .chain_update(purpose)
            .finalize();
        hex::encode(digest)
    }
}

/// The event id of a keyed batch's `index`-th click: the same on every retry, so that consumers
/// deduplicating on event ids count a batch appended twice (see `record_clicks_idempotently`) once.
fn batch_event_id(scoped_key: &str, index: usize) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new().chain_update(scoped_key).chain_update((index as u64).to_le_bytes()).finalize();
    hex::encode(&digest[..16])
}

#[utoipa::path(
    post, path = "/v1/links", tag = "links", operation_id = "createLink",
    request_body = CreateLinkBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
        description = "1–255 visible ASCII characters. A retry with the same key and body within 24 h answers the first 201 (with `Idempotent-Replayed: true`) and creates nothing")),
    responses(
        (status = 201, description = "The link was created", body = LinkBody,
            headers(("Location" = String, description = "The link's resource"),
                ("Idempotent-Replayed" = Option<String>, description = "`true` when this answers an earlier request"))),
        (status = 403, description = "The key may not create links, or not for that owner"),
        (status = 409, description = "The alias is taken, or the first request with this Idempotency-Key is still being served"),
        (status = 422, description = "A field is invalid, or the Idempotency-Key was first sent with another request"),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateLinkBody>,
) -> Result<Response, Problem> {
    caller.require(Permission::WriteLinks)?;
    let idempotency = IdempotencyKey::from_headers(&headers)?;
    let new = NewLink::parse(body, &caller)?;
    let key_id = Some(caller.0.key_id.clone());
    let created = match idempotency {
        Some(key) => {
            let scoped = key.scoped(&new.owner);
            state.service.create_idempotently(new, key_id, &scoped).await.map_err(problem_for)?
        }
        None => Created { link: state.service.create(new, key_id).await.map_err(problem_for)?, replayed: false },
    };
    let location = format!("/v1/links/{}", created.link.code);
    let body = LinkBody::new(&created.link, &state.config.public_base_url);
    let mut response = (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response();
    if created.replayed {
        response.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// Each a `CreateLinkBody`, read on its own: an item that is not a valid one is answered
    /// with its own problem in `results`, and the others are created.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000,
        example = json!([{"target_url": "https://example.com/a"}, {"target_url": "https://example.com/b", "tags": ["spring"]}]))]
    links: Vec<Value>,
}

/// Each link's answer, in request order.
#[derive(Debug, Serialize, ToSchema)]
struct BatchResults {
    results: Vec<BatchResult>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum BatchResult {
    /// `status` 201.
    Created { status: u16, link: LinkBody },
    /// `status` 4xx (or 503), and why.
    Refused { status: u16, problem: Problem },
}

/// `POST /v1/links/batch`: up to 1000 creates, each answered on its own in request order (207).
#[utoipa::path(
    post, path = "/v1/links/batch", tag = "links", operation_id = "createLinks",
    request_body = BatchBody,
    responses(
        (status = 207, description = "Each link's answer, in request order; a batch counts as one write per link against the key's limit", body = BatchResults),
        (status = 403, description = "The key may not create links"),
    )
)]
async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, Problem> {
    caller.require(Permission::WriteLinks)?;
    let count = body.links.len();
    if count == 0 || count > MAX_BATCH {
        return Err(Problem::invalid_field("links", format!("must hold 1 to {MAX_BATCH} links")));
    }
    // The gate counted the request as one write; the batch is `count`.
    let extra = u32::try_from(count - 1).expect("at most MAX_BATCH");
    if let Err(refusal) = state.config.limits.more_writes(&caller.0.key_id, extra) {
        return Ok(refusal.into_response());
    }
    let results: Vec<BatchResult> = futures_util::stream::iter(body.links.into_iter().enumerate())
        .map(|(index, item)| {
            let (state, caller) = (&state, &caller);
            async move {
                let outcome = async {
                    let new = batch_item(index, item, caller)?;
                    let key_id = Some(caller.0.key_id.clone());
                    state.service.create(new, key_id).await.map_err(|error| in_batch(index, problem_for(error)))
                };
                match outcome.await {
                    Ok(link) => BatchResult::Created {
                        status: StatusCode::CREATED.as_u16(),
                        link: LinkBody::new(&link, &state.config.public_base_url),
                    },
                    Err(problem) => BatchResult::Refused { status: problem.status, problem },
                }
            }
        })
        .buffered(BATCH_CONCURRENCY)
        .collect()
        .await;
    Ok((StatusCode::MULTI_STATUS, Json(BatchResults { results })).into_response())
}

/// One item of a batch, read as a create: a problem names it (`links[3].target_url`).
fn batch_item(index: usize, item: Value, caller: &Caller) -> Result<NewLink, Problem> {
    let body: CreateLinkBody = serde_path_to_error::deserialize(item).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { format!("links[{index}]") } else { format!("links[{index}].{path}") };
        Problem::invalid_field(field, error.into_inner())
    })?;
    NewLink::parse(body, caller).map_err(|problem| in_batch(index, problem))
}

/// A batch item's problem names the item.
fn in_batch(index: usize, mut problem: Problem) -> Problem {
    problem.field = Some(match problem.field.take() {
        Some(field) => format!("links[{index}].{field}"),
        None => format!("links[{index}]"),
    });
    problem
}

/// A JSON Merge Patch (RFC 7396) of the link: absent fields stay, `null` clears an optional one.
#[utoipa::path(
    patch, path = "/v1/links/{code}", tag = "links", operation_id = "updateLink",
    params(("code" = String, Path, description = "The link's code")),
    request_body = UpdateLinkBody,
    responses(
        (status = 200, description = "The link as changed", body = LinkBody),
        (status = 403, description = "The key may not change links"),
        (status = 404, description = "No link of the key's owner has this code"),
        (status = 410, description = "The link was deleted"),
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Segment(code): Segment,
    ApiJson(body): ApiJson<UpdateLinkBody>,
) -> Result<Json<LinkBody>, Problem> {
    let by = caller.require(Permission::WriteLinks)?.clone();
    let code = path_code(&code)?;
    let changes = LinkChanges::try_from(body)?;
    let link = state.service.update(code, changes, by).await.map_err(problem_for)?;
    Ok(Json(LinkBody::new(&link, &state.config.public_base_url)))
}

#[utoipa::path(
    delete, path = "/v1/links/{code}", tag = "links", operation_id = "deleteLink",
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 204, description = "The link is deleted (or already was): its short URL answers 410 and the code is never given again"),
        (status = 403, description = "The key may not delete links"),
        (status = 404, description = "No link of the key's owner has this code"),
    )
)]
async fn delete_link(
    State(state): State<AppState>,
    caller: Caller,
    Segment(code): Segment,
) -> Result<StatusCode, Problem> {
    let by = caller.require(Permission::WriteLinks)?.clone();
    let code = path_code(&code)?;
    state.service.delete(code, by).await.map_err(problem_for)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A reporter's visitor ids count within its own key's namespace, so they can neither collide
/// with the pseudonyms of redirects' visitors nor with another reporter's.
fn reported_visitor(key_id: &KeyId, visitor_id: Option<&str>) -> Option<String> {
    visitor_id.map(str::trim).filter(|v| !v.is_empty()).map(|v| format!("{key_id}:{v}"))
}

fn parse_clicks(body: ClicksBody, key_id: &KeyId, now: Timestamp) -> Result<Vec<LinkClicked>, Problem> {
    if body.clicks.is_empty() || body.clicks.len() > MAX_CLICKS_PER_BATCH {
        return Err(Problem::invalid_field("clicks", format!("must hold 1 to {MAX_CLICKS_PER_BATCH} clicks")));
    }
    let mut clicks = Vec::with_capacity(body.clicks.len());
    for (i, click) in body.clicks.into_iter().enumerate() {
        let code = Code::parse(&click.code).map_err(|e| Problem::invalid_field(format!("clicks[{i}].code"), e))?;
        let clicked_at = match &click.clicked_at {
            Some(raw) => timestamp(&format!("clicks[{i}].clicked_at"), raw)?,
            None => now,
        };
        clicks.push(LinkClicked::new(
            code,
            clicked_at,
            click.referrer.as_deref(),
            click.user_agent.as_deref(),
            reported_visitor(key_id, click.visitor_id.as_deref()).as_deref(),
        ));
    }
    Ok(clicks)
}

#[utoipa::path(
    post, path = "/v1/clicks", tag = "clicks", operation_id = "recordClicks",
    request_body = ClicksBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
        description = "1–255 visible ASCII characters. A retry with the same key and body within 24 h answers the first 202 (with `Idempotent-Replayed: true`) and appends nothing: the batch counts once")),
    responses(
        (status = 202, description = "The clicks were appended to the event log", body = Accepted,
            headers(("Idempotent-Replayed" = Option<String>, description = "`true` when this answers an earlier request"))),
        (status = 403, description = "The key may not record clicks"),
        (status = 409, description = "The first request with this Idempotency-Key is still being served"),
        (status = 422, description = "A click is invalid, or the Idempotency-Key was first sent with another batch"),
    )
)]
async fn record_clicks(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ClicksBody>,
) -> Result<Response, Problem> {
    let actor = caller.require(Permission::RecordClicks)?;
    let idempotency = IdempotencyKey::from_headers(&headers)?;
    let fingerprint = body.fingerprint();
    let clicks = parse_clicks(body, &actor.key_id, state.service.now())?;
    let recorded = match idempotency {
        Some(key) => {
            let scoped = key.scoped_for_clicks(&actor.owner);
            let clicks = clicks
                .into_iter()
                .enumerate()
                .map(|(index, click)| {
                    let details = ClickDetails {
                        event_id: Some(batch_event_id(&scoped, index).into()),
                        ..ClickDetails::default()
                    };
                    click.with_details(details)
                })
                .collect();
            state.service.record_clicks_idempotently(clicks, &scoped, fingerprint).await
        }
        None => state.service.record_clicks(clicks).await.map(|accepted| RecordedClicks { accepted, replayed: false }),
    };
    let recorded = recorded.map_err(|error| match error {
        CommandError::InBatch { index, rejection: Rejection::NotFound(code) } => {
            Problem::invalid_field(format!("clicks[{index}].code"), format!("names no link ({code})"))
        }
        CommandError::InBatch { index, rejection } => {
            Problem::invalid_field(format!("clicks[{index}].clicked_at"), rejection)
        }
        other => problem_for(other),
    })?;
    let mut response = (StatusCode::ACCEPTED, Json(Accepted { accepted: recorded.accepted })).into_response();
    if recorded.replayed {
        response.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    /// Whose links the key manages.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    owner: String,
    /// `admin`, `user` (its owner's links) or `ingest` (only records clicks).
    #[schema(value_type = RoleName)]
    role: String,
}

/// What a key may do.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "a schema only: the domain's Role parses the text")]
enum RoleName {
    Admin,
    User,
    Ingest,
}

/// An API key (never the secret, but when it is created).
#[derive(Debug, Serialize, ToSchema)]
struct KeyBody {
    id: String,
    owner: String,
    #[schema(value_type = RoleName)]
    role: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

/// A new key, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct CreatedKey {
    id: String,
    owner: String,
    #[schema(value_type = RoleName)]
    role: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
    /// Send it as `Authorization: Bearer <key>`.
    key: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct KeyList {
    items: Vec<KeyBody>,
    /// Whether a bootstrap key file (`auth.bootstrap_key_file`) is in use.
    bootstrap_key: bool,
}

impl CreateKeyBody {
    fn parse(self) -> Result<(Owner, Role), Problem> {
        let owner = Owner::parse(&self.owner).map_err(|e| Problem::invalid_field("owner", e))?;
        let role = Role::parse(&self.role).map_err(|e| Problem::invalid_field("role", e))?;
        Ok((owner, role))
    }
}

fn key_body(key: &kurz_ports::StoredKey) -> KeyBody {
    KeyBody {
        id: key.id.as_str().to_owned(),
        owner: key.owner.as_str().to_owned(),
        role: key.role.as_str(),
        created_at: format_millis(key.created_at.as_millis()),
        revoked_at: key.revoked_at.map(|at| format_millis(at.as_millis())),
    }
}

#[utoipa::path(
    post, path = "/v1/keys", tag = "keys", operation_id = "createKey",
    request_body = CreateKeyBody,
    responses(
        (status = 201, description = "The key, with its secret (shown this once)", body = CreatedKey,
            headers(("Location" = String, description = "The key's resource"))),
        (status = 403, description = "Only admin keys manage keys"),
    )
)]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<Response, Problem> {
    caller.require(Permission::ManageKeys)?;
    let (owner, role) = body.parse()?;
    let (stored, key) = state
        .keys
        .create(owner, role, state.service.now())
        .await
        .map_err(|e| Problem::unavailable(e.as_ref() as &dyn std::error::Error))?;
    tracing::info!(key_id = %stored.id, owner = %stored.owner, role = role.as_str(), by = %caller.0.key_id, "api key created");
    let KeyBody { id, owner, role, created_at, revoked_at: _ } = key_body(&stored);
    let body = CreatedKey { id, owner, role, created_at, key };
    let location = format!("/v1/keys/{}", stored.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
}

#[utoipa::path(
    get, path = "/v1/keys", tag = "keys", operation_id = "listKeys",
    responses(
        (status = 200, description = "Every key, revoked ones too", body = KeyList),
        (status = 403, description = "Only admin keys manage keys"),
    )
)]
async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<Json<KeyList>, Problem> {
    caller.require(Permission::ManageKeys)?;
    let keys = state.keys.list().await.map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(KeyList { items: keys.iter().map(key_body).collect(), bootstrap_key: state.keys.has_bootstrap() }))
}

#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "keys", operation_id = "revokeKey",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "The key is revoked: it is refused from now on"),
        (status = 403, description = "Only admin keys manage keys"),
        (status = 404, description = "No key has this id"),
        (status = 409, description = "The bootstrap key comes from a file and is changed there"),
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment,
) -> Result<StatusCode, Problem> {
    caller.require(Permission::ManageKeys)?;
    if id == BOOTSTRAP_ID {
        return Err(Problem::conflict(
            "the bootstrap key comes from a file (auth.bootstrap_key_file); replace the file and restart to change it",
        ));
    }
    let not_found = || Problem::not_found(format!("no API key has id {id}"));
    let key_id = KeyId::parse(&id).map_err(|_| not_found())?;
    match state.keys.revoke(&key_id, state.service.now()).await.map_err(|e| Problem::unavailable(&e))? {
        Some(_) => {
            tracing::info!(key_id = %key_id, by = %caller.0.key_id, "api key revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(not_found()),
    }
}

/// The request bodies of the command API, for fuzzing their parsing.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum BodyRoute {
    CreateLink,
    UpdateLink,
    RecordClicks,
    CreateKey,
    CreateBatch,
}

/// Parses `body` as `route` does before the command service sees it; `Err` is the problem the
/// client would be answered. For fuzzing: every refusal must be a problem, never a panic.
#[doc(hidden)]
pub fn parse_body(route: BodyRoute, body: &[u8], caller: &Caller) -> Result<(), Problem> {
    let json = |e: serde_json::Error| Problem::bad_request(e.to_string());
    match route {
        BodyRoute::CreateLink => NewLink::parse(serde_json::from_slice(body).map_err(json)?, caller).map(drop),
        BodyRoute::UpdateLink => {
            LinkChanges::try_from(serde_json::from_slice::<UpdateLinkBody>(body).map_err(json)?).map(drop)
        }
        BodyRoute::RecordClicks => {
            parse_clicks(serde_json::from_slice(body).map_err(json)?, &caller.0.key_id, Timestamp::from_millis(0))
                .map(drop)
        }
        BodyRoute::CreateKey => serde_json::from_slice::<CreateKeyBody>(body).map_err(json)?.parse().map(drop),
        // The batch itself is bounded by its route's body limit; each item fails alone.
        BodyRoute::CreateBatch => {
            let batch: BatchBody = serde_json::from_slice(body).map_err(json)?;
            for (index, item) in batch.links.into_iter().enumerate() {
                batch_item(index, item, caller)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_batch_has_the_same_event_ids_on_every_retry() {
        let owner = Owner::admin();
        let key = IdempotencyKey("upload-7".to_owned());
        let scoped = key.scoped_for_clicks(&owner);
        assert_eq!(batch_event_id(&scoped, 0), batch_event_id(&key.scoped_for_clicks(&owner), 0));
        assert_ne!(batch_event_id(&scoped, 0), batch_event_id(&scoped, 1), "one id per click");
        let other = IdempotencyKey("upload-8".to_owned()).scoped_for_clicks(&owner);
        assert_ne!(batch_event_id(&scoped, 0), batch_event_id(&other, 0), "one set of ids per key");
        assert_ne!(scoped, key.scoped(&owner), "a key for clicks is another than the same key for a create");
        let id = batch_event_id(&scoped, 0);
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "128 bits in hex: {id}");
    }

    #[test]
    fn a_batch_is_fingerprinted_as_sent() {
        let body = |json: &str| serde_json::from_str::<ClicksBody>(json).expect("a batch");
        let sent = body(r#"{"clicks": [{"code": "abc", "visitor_id": "v1"}]}"#);
        assert_eq!(sent.fingerprint(), body(r#"{"clicks": [{"visitor_id": "v1", "code": "abc"}]}"#).fingerprint());
        // A field moved to another field is another batch.
        assert_ne!(sent.fingerprint(), body(r#"{"clicks": [{"code": "abc", "referrer": "v1"}]}"#).fingerprint());
        assert_ne!(sent.fingerprint(), body(r#"{"clicks": [{"code": "abc"}]}"#).fingerprint());
    }
}

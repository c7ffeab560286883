//! `GET /v1/links` (a page of the caller's links, searched and filtered) and
//! `GET /v1/links/{code}/history` (a link's changes, oldest first).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kurz_domain::history::HistoryTeller;
use kurz_domain::listing::{DEFAULT_PAGE, ListFilter, ListPosition, MAX_PAGE, Search, StateFilter};
use kurz_domain::{Owner, Permission};
use kurz_ports::listing::{ListQuery, page};
use kurz_ports::{LinkDirectory, LinkHistory};
use kurz_service_kit::Problem;
use kurz_service_kit::auth::Caller;
use kurz_service_kit::path::Segment;
use kurz_service_kit::representation::{HistoryPage, LinkPage, ListedLink, history_item};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::export::{self, ExportFormat};
use crate::http::{AppState, readable_link};

/// The read models the management endpoints read, besides the read store.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub directory: Arc<dyn LinkDirectory>,
    pub history: Arc<dyn LinkHistory>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Links per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(pattern = "^[0-9a-f]{1,15}\\.[A-Za-z0-9_-]{3,64}$")]
    cursor: Option<String>,
    /// A code prefix, or a case-insensitive part of the target (at most 200 characters).
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// Only links with this tag.
    #[param(min_length = 1, max_length = 64)]
    tag: Option<String>,
    /// `active`, `expired`, `disabled`, `deleted` or `all`; all but deleted by default.
    #[param(value_type = Option<StateFilterName>, inline)]
    state: Option<String>,
    /// Whose links (admin keys only; others list their own owner's).
    #[param(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    owner: Option<String>,
}

/// Which links a list shows.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "a schema only: the domain parses the text")]
enum StateFilterName {
    Active,
    Expired,
    Disabled,
    Deleted,
    All,
}

fn limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, Problem> {
    let Some(raw) = raw else { return Ok(default) };
    raw.parse::<usize>()
        .ok()
        .filter(|limit| (1..=max).contains(limit))
        .ok_or_else(|| Problem::invalid_field("limit", format!("must be a whole number from 1 to {max}")))
}

/// Whose links and which of them a list or an export shows.
fn scope_and_filter(
    actor: &kurz_domain::Actor,
    q: Option<&str>,
    tag: Option<&str>,
    state: Option<&str>,
    owner: Option<&str>,
) -> Result<(Option<Owner>, ListFilter), Problem> {
    let search = q.map(Search::parse).transpose().map_err(|e| Problem::invalid_field("q", e))?;
    let tag = tag.map(ListFilter::parse_tag).transpose().map_err(|e| Problem::invalid_field("tag", e))?;
    let state = state.map(StateFilter::parse).transpose().map_err(|e| Problem::invalid_field("state", e))?;
    let owner = owner_scope(actor, owner)?;
    Ok((owner, ListFilter { search, tag, state: state.unwrap_or_default() }))
}

/// Whose links a request reads: the `owner` asked for (admins only), else the key's owner (every
/// owner's for an admin).
pub(crate) fn owner_scope(actor: &kurz_domain::Actor, owner: Option<&str>) -> Result<Option<Owner>, Problem> {
    let owner = owner.map(Owner::parse).transpose().map_err(|e| Problem::invalid_field("owner", e))?;
    actor.list_scope(owner).map_err(|e| {
        Problem::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "The key's role does not allow this",
            e.to_string(),
        )
    })
}

/// `GET /v1/links`: newest first, `limit` ≤ 100, `cursor` from the previous page's `next_cursor`.
/// A search reads at most 10,000 links per request: a page may come back short, with a cursor.
#[utoipa::path(
    get, path = "/v1/links", tag = "links", operation_id = "listLinks",
    params(ListParams),
    responses(
        (status = 200, description = "A page of links, newest first", body = LinkPage),
        (status = 403, description = "The key may not read links, or not another owner's"),
        (status = 422, description = "A parameter is invalid (named in `field`)"),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<LinkPage>, Problem> {
    let actor = caller.require(Permission::ReadLinks)?;
    let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = limit(params.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let after = params
        .cursor
        .as_deref()
        .map(ListPosition::parse_cursor)
        .transpose()
        .map_err(|e| Problem::invalid_field("cursor", e))?;
    let (owner, filter) = scope_and_filter(
        actor,
        params.q.as_deref(),
        params.tag.as_deref(),
        params.state.as_deref(),
        params.owner.as_deref(),
    )?;
    let now = state.service.now();
    let query = ListQuery { owner, after, filter, limit };
    let page = page(&*state.catalogue.directory, &query, now).await.map_err(|e| Problem::unavailable(&e))?;
    let base = &state.config.public_base_url;
    let items: Vec<ListedLink> = page.items.iter().map(|link| ListedLink::new(link, base, now)).collect();
    Ok(Json(LinkPage { items, next_cursor: page.next.map(|next| next.to_string()) }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// `csv` (the default) or `ndjson`.
    #[param(value_type = Option<ExportFormatName>, inline)]
    format: Option<String>,
    /// A code prefix, or a case-insensitive part of the target (at most 200 characters).
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// Only links with this tag.
    #[param(min_length = 1, max_length = 64)]
    tag: Option<String>,
    /// `active`, `expired`, `disabled`, `deleted` or `all`; all but deleted by default.
    #[param(value_type = Option<StateFilterName>, inline)]
    state: Option<String>,
    /// Whose links (admin keys only; others list their own owner's).
    #[param(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    owner: Option<String>,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "a schema only: the domain parses the text")]
enum ExportFormatName {
    Csv,
    Ndjson,
}

/// Links read from the directory per step of an export.
const EXPORT_CHUNK: usize = 1000;

/// `GET /v1/links/export?format=csv|ndjson`: every link the same query would list, streamed a
/// chunk at a time (memory stays flat however many links there are). CSV is the default.
#[utoipa::path(
    get, path = "/v1/links/export", tag = "links", operation_id = "exportLinks",
    params(ExportParams),
    responses(
        (status = 200, description = "Every link the same list would show, newest first: CSV with a header row (tags and metadata as JSON cells), or one JSON link per line",
            content((String = "text/csv"), (ListedLink = "application/x-ndjson"))),
        (status = 403, description = "The key may not read links, or not another owner's"),
        (status = 422, description = "A parameter is invalid (named in `field`)"),
    )
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let actor = caller.require(Permission::ReadLinks)?;
    let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let format = match params.format.as_deref() {
        None | Some("csv") => ExportFormat::Csv,
        Some("ndjson") => ExportFormat::Ndjson,
        Some(_) => return Err(Problem::invalid_field("format", "must be csv or ndjson")),
    };
    let (owner, filter) = scope_and_filter(
        actor,
        params.q.as_deref(),
        params.tag.as_deref(),
        params.state.as_deref(),
        params.owner.as_deref(),
    )?;
    let start = ListQuery { owner, after: None, filter, limit: EXPORT_CHUNK };
    let header = match format {
        ExportFormat::Csv => Some(export::csv_header()),
        ExportFormat::Ndjson => None,
    };
    // Each step reads one page; `None` as the query means the last page was sent.
    let chunks = futures_util::stream::unfold(Some(start), move |query| {
        let state = state.clone();
        async move {
            let mut query = query?;
            let now = state.service.now();
            match page(&*state.catalogue.directory, &query, now).await {
                Ok(page) => {
                    let base = &state.config.public_base_url;
                    let bytes = export::encode(format, &page.items, base, now);
                    let next = page.next.map(|next| {
                        query.after = Some(next);
                        query
                    });
                    Some((Ok::<_, std::io::Error>(bytes), next))
                }
                Err(error) => {
                    // Mid-stream, only a cut connection can say it failed: the client sees no
                    // clean end (no final newline-terminated chunk, a short body).
                    tracing::error!(%error, "export failed part-way");
                    Some((Err(std::io::Error::other(error.to_string())), None))
                }
            }
        }
    });
    let stream = futures_util::stream::iter(header.map(Ok)).chain(chunks);
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "attachment; filename=\"kurz-links.csv\""),
        ExportFormat::Ndjson => ("application/x-ndjson", "attachment; filename=\"kurz-links.ndjson\""),
    };
    Ok((
        [(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, file)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryParams {
    /// Changes per page, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,19}$")]
    cursor: Option<String>,
}

pub const DEFAULT_HISTORY_PAGE: usize = 100;
pub const MAX_HISTORY_PAGE: usize = 1000;

/// `GET /v1/links/{code}/history`: oldest first; a page's `next_cursor` is the log offset of its
/// last change, from which the next page reads (that change again, to know what the next one
/// changed, then onwards).
#[utoipa::path(
    get, path = "/v1/links/{code}/history", tag = "links", operation_id = "linkHistory",
    params(("code" = String, Path, description = "The link's code"), HistoryParams),
    responses(
        (status = 200, description = "The link's changes, oldest first, deleted links too", body = HistoryPage),
        (status = 403, description = "The key may not read links"),
        (status = 404, description = "No link of the key's owner has this code"),
        (status = 422, description = "A parameter is invalid (named in `field`)"),
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Segment(raw): Segment,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryPage>, Problem> {
    let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = limit(params.limit.as_deref(), DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE)?;
    let cursor = params
        .cursor
        .as_deref()
        .map(|raw| {
            raw.parse::<u64>().map_err(|_| Problem::invalid_field("cursor", "is not a cursor this server handed out"))
        })
        .transpose()?;
    let link = readable_link(&state, &caller, &raw).await?;
    // After a cursor, the change it points at comes first again: it tells the next what changed.
    let skip = usize::from(cursor.is_some());
    let events = state
        .catalogue
        .history
        .events(&link.code, cursor.unwrap_or(0), limit + skip + 1)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let mut teller = HistoryTeller::default();
    let mut items = Vec::with_capacity(limit);
    let mut last_offset = None;
    for (index, (offset, event)) in events.iter().enumerate() {
        let change = teller.tell(event);
        if index < skip || items.len() == limit {
            continue;
        }
        if let Some(change) = change {
            items.push(history_item(&change));
            last_offset = Some(*offset);
        }
    }
    let more = events.len() > limit + skip;
    Ok(Json(HistoryPage {
        code: link.code.as_str().to_owned(),
        items,
        next_cursor: if more { last_offset.map(|offset| offset.to_string()) } else { None },
    }))
}

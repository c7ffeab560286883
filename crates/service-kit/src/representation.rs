//! How a link looks in JSON, the same from the command and the query side.

use kurz_domain::Link;
use serde::Serialize;
use utoipa::ToSchema;

use crate::time_format::format_millis;

/// A link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkBody {
    #[schema(example = "a1B2c3D")]
    pub code: String,
    #[schema(format = "uri", example = "https://kurz.example/a1B2c3D")]
    pub short_url: String,
    #[schema(format = "uri", example = "https://example.com/a/long/path")]
    pub target_url: String,
    pub owner: String,
    /// `false` while the link is switched off: its short URL answers 410.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// How many redirects the link serves before it answers 410.
    #[schema(minimum = 1)]
    pub max_clicks: Option<u64>,
    #[schema(minimum = 301, maximum = 308)]
    pub redirect_status: u16,
    pub tags: Vec<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The short URL's query string is appended to the target's.
    pub forward_query: bool,
}

impl LinkBody {
    pub fn new(link: &Link, public_base_url: &str) -> Self {
        Self {
            code: link.code.to_string(),
            short_url: short_url(public_base_url, link.code.as_str()),
            target_url: link.spec.target.to_string(),
            owner: link.owner.to_string(),
            enabled: link.spec.disabled.is_none(),
            disabled_reason: link.spec.disabled.as_ref().map(|r| r.as_str().to_owned()).filter(|r| !r.is_empty()),
            created_at: format_millis(link.created_at.as_millis()),
            updated_at: format_millis(link.updated_at.as_millis()),
            expires_at: link.spec.expires_at.map(|at| format_millis(at.as_millis())),
            max_clicks: link.spec.max_clicks.map(kurz_domain::MaxClicks::get),
            redirect_status: link.spec.redirect_status.code(),
            tags: link.spec.tags.as_slice().to_vec(),
            metadata: link.spec.metadata.as_map().clone(),
            forward_query: link.spec.forward_query,
        }
    }
}

pub fn short_url(public_base_url: &str, code: &str) -> String {
    format!("{}/{code}", public_base_url.trim_end_matches('/'))
}

/// A link in a list: as [`LinkBody`], with its state and when it was deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedLink {
    #[serde(flatten)]
    pub link: LinkBody,
    /// Whether the link redirects now, and if not, why.
    #[schema(value_type = StateName)]
    pub state: &'static str,
    #[schema(format = DateTime)]
    pub deleted_at: Option<String>,
}

/// The states a link is listed in (`LinkState` of the domain).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum StateName {
    Active,
    Expired,
    Disabled,
    Deleted,
}

/// A page of links, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkPage {
    pub items: Vec<ListedLink>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// What happened to a link.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum EventName {
    Created,
    Updated,
    Disabled,
    Enabled,
    Deleted,
}

/// One change in a link's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    #[schema(format = DateTime)]
    pub at: String,
    #[schema(value_type = EventName)]
    pub event: &'static str,
    /// The API key that made the change (`null` for changes made before keys, or by Kurz).
    pub key_id: Option<String>,
    /// Each field the change set, named as in a link's JSON, with its new value.
    #[schema(value_type = Object)]
    pub changes: serde_json::Map<String, serde_json::Value>,
}

/// A page of a link's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub code: String,
    pub items: Vec<HistoryItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl ListedLink {
    pub fn new(link: &Link, public_base_url: &str, now: kurz_domain::Timestamp) -> Self {
        Self {
            link: LinkBody::new(link, public_base_url),
            state: kurz_domain::listing::LinkState::of(link, now).as_str(),
            deleted_at: link.deleted_at.map(|at| format_millis(at.as_millis())),
        }
    }
}

/// One change in a link's history, the fields named as in a link's JSON.
pub fn history_item(change: &kurz_domain::history::Change) -> HistoryItem {
    use kurz_domain::history::FieldChange;
    use serde_json::{Value, json};
    let mut changes = serde_json::Map::new();
    for field in &change.fields {
        let mut put = |name: &str, value: Value| changes.insert(name.to_owned(), value);
        match field {
            FieldChange::Target(target) => put("target_url", json!(target.as_str())),
            FieldChange::ExpiresAt(at) => put("expires_at", json!(at.map(|at| format_millis(at.as_millis())))),
            FieldChange::MaxClicks(max) => put("max_clicks", json!(max.map(kurz_domain::MaxClicks::get))),
            FieldChange::RedirectStatus(status) => put("redirect_status", json!(status.code())),
            FieldChange::Tags(tags) => put("tags", json!(tags.as_slice())),
            FieldChange::Metadata(metadata) => put("metadata", json!(metadata.as_map())),
            FieldChange::Disabled(reason) => {
                put("enabled", json!(reason.is_none()));
                put(
                    "disabled_reason",
                    json!(reason.as_ref().map(kurz_domain::DisabledReason::as_str).filter(|r| !r.is_empty())),
                )
            }
            FieldChange::ForwardQuery(forward) => put("forward_query", json!(forward)),
        };
    }
    HistoryItem {
        at: format_millis(change.at.as_millis()),
        event: change.kind.as_str(),
        key_id: change.key_id.as_ref().map(|id| id.as_str().to_owned()),
        changes,
    }
}

//! How a link looks in JSON, the same from the command and the query side.

use kurz_domain::Link;
use serde::Serialize;

use crate::time_format::format_millis;

#[derive(Debug, Serialize)]
pub struct LinkBody {
    pub code: String,
    pub short_url: String,
    pub target_url: String,
    pub owner: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    pub max_clicks: Option<u64>,
    pub redirect_status: u16,
    pub tags: Vec<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
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
#[derive(Debug, Serialize)]
pub struct ListedLink {
    #[serde(flatten)]
    pub link: LinkBody,
    /// `active`, `expired`, `disabled` or `deleted`.
    pub state: &'static str,
    pub deleted_at: Option<String>,
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

/// One change in a link's history: `{"at", "event", "key_id", "changes": {field: new value}}`,
/// the fields named as in a link's JSON.
pub fn history_item(change: &kurz_domain::history::Change) -> serde_json::Value {
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
    json!({
        "at": format_millis(change.at.as_millis()),
        "event": change.kind.as_str(),
        "key_id": change.key_id.as_ref().map(kurz_domain::KeyId::as_str),
        "changes": changes,
    })
}

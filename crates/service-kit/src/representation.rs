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

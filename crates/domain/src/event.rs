//! What happened to links. Events are facts: they are never validated again once appended.

use serde::{Deserialize, Serialize};

use crate::access::{KeyId, Owner};
use crate::code::{Code, CodeRef};
use crate::link::LinkSpec;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Created(LinkCreated),
    Updated(LinkUpdated),
    Deleted(LinkDeleted),
    Clicked(LinkClicked),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCreated {
    pub code: Code,
    pub owner: Owner,
    pub spec: LinkSpec,
    pub custom_alias: bool,
    pub created_at: Timestamp,
    /// The API key that created the link (`None` for links from before keys existed).
    pub key_id: Option<KeyId>,
}

/// Carries the whole specification after the change, so a consumer never has to fold history to
/// know where a link points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUpdated {
    pub code: Code,
    pub spec: LinkSpec,
    pub updated_at: Timestamp,
    pub key_id: Option<KeyId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDeleted {
    pub code: Code,
    pub deleted_at: Timestamp,
    pub key_id: Option<KeyId>,
}

pub const MAX_REFERRER_LEN: usize = 2048;
pub const MAX_USER_AGENT_LEN: usize = 512;
pub const MAX_VISITOR_ID_LEN: usize = 64;

/// A click's free text. Held inline up to 24 bytes (visitor keys, languages, countries, most cities
/// and many referrers), so that decoding a click from the log allocates for little beyond its
/// user agent: a rebuild decodes every click ever recorded.
pub type ClickText = compact_str::CompactString;

/// One redirect served (or reported by an edge). Free-text fields are truncated, never refused:
/// a click is a fact and a long header must not lose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClicked {
    pub code: Code,
    pub clicked_at: Timestamp,
    pub referrer: Option<ClickText>,
    pub user_agent: Option<ClickText>,
    /// A pseudonymous visitor key (a keyed hash, never an IP address).
    pub visitor_id: Option<ClickText>,
    /// What the redirecting service learnt besides the headers above: absent from clicks recorded
    /// before `LinkClicked` v2 and from clicks an edge reports.
    pub details: ClickDetails,
}

/// A click's details resolved off the request path (`LinkClicked` v2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClickDetails {
    /// Unique per click: a consumer that reads a click twice (an append retried after a lost
    /// acknowledgement) counts it once.
    pub event_id: Option<ClickText>,
    /// The primary subtag of the visitor's preferred language (`de` for `de-DE`), lower-case.
    pub language: Option<ClickText>,
    /// Where the visitor's address was, by the operator's GeoIP database: ISO 3166-1 country
    /// code, region and city names (English). The address itself is never kept.
    pub country: Option<ClickText>,
    pub region: Option<ClickText>,
    pub city: Option<ClickText>,
    /// Whether the agent was a bot by the list of the build that served the click. Stats classify
    /// the `user_agent` again when folded, so a better list corrects past clicks on a rebuild.
    pub bot: Option<bool>,
}

pub const MAX_EVENT_ID_LEN: usize = 64;
pub const MAX_PLACE_LEN: usize = 128;

impl ClickDetails {
    /// Bounded like every free text of a click: trimmed, truncated, blank means absent; the
    /// language reduced to its primary subtag.
    #[must_use]
    pub fn cleaned(self) -> Self {
        let text = |value: Option<ClickText>, max| clean(value.as_deref(), max);
        Self {
            event_id: text(self.event_id, MAX_EVENT_ID_LEN),
            language: self.language.as_deref().and_then(crate::analytics::primary_language).map(ClickText::from),
            country: text(self.country, MAX_PLACE_LEN),
            region: text(self.region, MAX_PLACE_LEN),
            city: text(self.city, MAX_PLACE_LEN),
            bot: self.bot,
        }
    }
}

impl LinkClicked {
    pub fn new(
        code: Code,
        clicked_at: Timestamp,
        referrer: Option<&str>,
        user_agent: Option<&str>,
        visitor_id: Option<&str>,
    ) -> Self {
        Self {
            code,
            clicked_at,
            referrer: clean(referrer, MAX_REFERRER_LEN),
            user_agent: clean(user_agent, MAX_USER_AGENT_LEN),
            visitor_id: clean(visitor_id, MAX_VISITOR_ID_LEN),
            details: ClickDetails::default(),
        }
    }

    #[must_use]
    pub fn with_details(self, details: ClickDetails) -> Self {
        Self { details: details.cleaned(), ..self }
    }

    pub fn fields(&self) -> ClickFields<'_> {
        let details = &self.details;
        ClickFields {
            code: self.code.as_code_ref(),
            clicked_at: self.clicked_at,
            referrer: self.referrer.as_deref(),
            user_agent: self.user_agent.as_deref(),
            visitor_id: self.visitor_id.as_deref(),
            event_id: details.event_id.as_deref(),
            language: details.language.as_deref(),
            country: details.country.as_deref(),
            region: details.region.as_deref(),
            city: details.city.as_deref(),
            bot: details.bot,
        }
    }
}

/// A click's fields, borrowed: from a [`LinkClicked`], or straight from a log record's bytes, so
/// that folding a click into statistics need not make owned texts for it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickFields<'a> {
    pub code: CodeRef<'a>,
    pub clicked_at: Timestamp,
    pub referrer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub visitor_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub language: Option<&'a str>,
    pub country: Option<&'a str>,
    pub region: Option<&'a str>,
    pub city: Option<&'a str>,
    pub bot: Option<bool>,
}

impl ClickFields<'_> {
    /// The click as an event, its texts as they are (as decoding a record makes it).
    pub fn to_event(&self) -> LinkClicked {
        let text = |text: Option<&str>| text.map(ClickText::from);
        LinkClicked {
            code: self.code.to_code(),
            clicked_at: self.clicked_at,
            referrer: text(self.referrer),
            user_agent: text(self.user_agent),
            visitor_id: text(self.visitor_id),
            details: ClickDetails {
                event_id: text(self.event_id),
                language: text(self.language),
                country: text(self.country),
                region: text(self.region),
                city: text(self.city),
                bot: self.bot,
            },
        }
    }
}

fn clean(text: Option<&str>, max_bytes: usize) -> Option<ClickText> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(ClickText::from(&text[..end]))
}

impl Event {
    pub fn code(&self) -> &Code {
        match self {
            Self::Created(e) => &e.code,
            Self::Updated(e) => &e.code,
            Self::Deleted(e) => &e.code,
            Self::Clicked(e) => &e.code,
        }
    }

    pub fn occurred_at(&self) -> Timestamp {
        match self {
            Self::Created(e) => e.created_at,
            Self::Updated(e) => e.updated_at,
            Self::Deleted(e) => e.deleted_at,
            Self::Clicked(e) => e.clicked_at,
        }
    }

    /// The event's name in the public contract (the Avro record name).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created(_) => "LinkCreated",
            Self::Updated(_) => "LinkUpdated",
            Self::Deleted(_) => "LinkDeleted",
            Self::Clicked(_) => "LinkClicked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_text_is_trimmed_truncated_on_char_boundaries_and_blank_means_absent() {
        let code = Code::parse("abc").expect("valid");
        let long_ua = "é".repeat(MAX_USER_AGENT_LEN);
        let click = LinkClicked::new(code, Timestamp::from_millis(1), Some("  "), Some(&long_ua), Some(" v1 "));
        assert_eq!(click.referrer, None);
        let ua = click.user_agent.expect("kept");
        assert!(ua.len() <= MAX_USER_AGENT_LEN && ua.chars().all(|c| c == 'é'));
        assert_eq!(click.visitor_id.as_deref(), Some("v1"));
    }
}

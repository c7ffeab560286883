//! A short link and the values it is made of.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::access::Owner;
use crate::code::Code;
use crate::target_url::TargetUrl;
use crate::time::Timestamp;

/// The HTTP status a redirect answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RedirectStatus {
    MovedPermanently,
    #[default]
    Found,
    TemporaryRedirect,
    PermanentRedirect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be one of 301, 302, 307, 308, got {0}")]
pub struct RedirectStatusError(pub u16);

impl RedirectStatus {
    pub fn from_code(code: u16) -> Result<Self, RedirectStatusError> {
        match code {
            301 => Ok(Self::MovedPermanently),
            302 => Ok(Self::Found),
            307 => Ok(Self::TemporaryRedirect),
            308 => Ok(Self::PermanentRedirect),
            other => Err(RedirectStatusError(other)),
        }
    }

    pub const fn code(self) -> u16 {
        match self {
            Self::MovedPermanently => 301,
            Self::Found => 302,
            Self::TemporaryRedirect => 307,
            Self::PermanentRedirect => 308,
        }
    }
}

/// How many redirects a link serves before it is gone; `1` makes a one-time link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MaxClicks(NonZeroU64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and {max}, got {0}", max = MaxClicks::MAX)]
pub struct MaxClicksError(pub i128);

impl MaxClicks {
    pub const MAX: u64 = 1 << 53;

    pub fn new(value: i128) -> Result<Self, MaxClicksError> {
        u64::try_from(value)
            .ok()
            .filter(|v| *v <= Self::MAX)
            .and_then(NonZeroU64::new)
            .map(Self)
            .ok_or(MaxClicksError(value))
    }

    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_LEN: usize = 64;

/// Free-form labels for grouping links: at most 32, each 1–64 printable characters, no duplicates
/// (the first occurrence wins, order kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tags(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagsError {
    #[error("at most {MAX_TAGS} tags are allowed, got at least {0}")]
    TooMany(usize),
    #[error("tag {0:?} must be 1 to {MAX_TAG_LEN} printable characters")]
    Invalid(String),
}

impl Tags {
    pub fn parse(tags: Vec<String>) -> Result<Self, TagsError> {
        let mut builder = TagsBuilder::default();
        for tag in tags {
            builder.push(tag)?;
        }
        Ok(builder.build())
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Tags taken one at a time and refused at the first that breaks a rule, so that a parser fed
/// straight from a request body stops there: a flood of tags costs no more than 33 of them.
#[derive(Debug, Default)]
pub struct TagsBuilder(Vec<String>);

impl TagsBuilder {
    pub fn push(&mut self, tag: String) -> Result<(), TagsError> {
        if !is_printable(&tag, MAX_TAG_LEN) {
            return Err(TagsError::Invalid(tag.chars().take(MAX_TAG_LEN + 1).collect()));
        }
        if !self.0.contains(&tag) {
            if self.0.len() == MAX_TAGS {
                return Err(TagsError::TooMany(MAX_TAGS + 1));
            }
            self.0.push(tag);
        }
        Ok(())
    }

    pub fn build(self) -> Tags {
        Tags(self.0)
    }
}

pub const MAX_METADATA_ENTRIES: usize = 32;
pub const MAX_METADATA_KEY_LEN: usize = 64;
pub const MAX_METADATA_VALUE_LEN: usize = 1024;

/// A small string map that travels with the link (campaign ids, owners, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Metadata(BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("at most {MAX_METADATA_ENTRIES} entries are allowed, got at least {0}")]
    TooMany(usize),
    #[error("key {0:?} must be 1 to {MAX_METADATA_KEY_LEN} printable characters")]
    Key(String),
    #[error("value of {0:?} must be at most {MAX_METADATA_VALUE_LEN} printable characters")]
    Value(String),
}

impl Metadata {
    pub fn parse(entries: BTreeMap<String, String>) -> Result<Self, MetadataError> {
        if entries.len() > MAX_METADATA_ENTRIES {
            return Err(MetadataError::TooMany(entries.len()));
        }
        let mut builder = MetadataBuilder::default();
        for (key, value) in entries {
            builder.insert(key, value)?;
        }
        Ok(builder.build())
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

pub const MAX_DISABLED_REASON_LEN: usize = 256;

/// Why a link's owner or an operator switched it off (may be empty: no reason given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct DisabledReason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at most {MAX_DISABLED_REASON_LEN} printable characters")]
pub struct DisabledReasonError;

impl DisabledReason {
    pub fn parse(reason: String) -> Result<Self, DisabledReasonError> {
        if reason.is_empty() || is_printable(&reason, MAX_DISABLED_REASON_LEN) {
            Ok(Self(reason))
        } else {
            Err(DisabledReasonError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Metadata taken one entry at a time and refused at the first that breaks a rule (as
/// [`TagsBuilder`]). A key given twice keeps its last value, as in a JSON object.
#[derive(Debug, Default)]
pub struct MetadataBuilder(BTreeMap<String, String>);

impl MetadataBuilder {
    pub fn insert(&mut self, key: String, value: String) -> Result<(), MetadataError> {
        if !is_printable(&key, MAX_METADATA_KEY_LEN) {
            return Err(MetadataError::Key(key.chars().take(MAX_METADATA_KEY_LEN + 1).collect()));
        }
        if !(value.is_empty() || is_printable(&value, MAX_METADATA_VALUE_LEN)) {
            return Err(MetadataError::Value(key));
        }
        if !self.0.contains_key(&key) && self.0.len() == MAX_METADATA_ENTRIES {
            return Err(MetadataError::TooMany(MAX_METADATA_ENTRIES + 1));
        }
        self.0.insert(key, value);
        Ok(())
    }

    pub fn build(self) -> Metadata {
        Metadata(self.0)
    }
}

fn is_printable(text: &str, max_chars: usize) -> bool {
    let len = text.chars().count();
    (1..=max_chars).contains(&len) && !text.chars().any(char::is_control)
}

/// Everything about a link that its owner chooses (and may later change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub target: TargetUrl,
    pub expires_at: Option<Timestamp>,
    pub max_clicks: Option<MaxClicks>,
    pub redirect_status: RedirectStatus,
    pub tags: Tags,
    pub metadata: Metadata,
    /// `Some` while the link is switched off: it answers 410 until switched on again.
    pub disabled: Option<DisabledReason>,
    /// The short URL's query string goes on to the target (a visitor's `?utm_source=x` reaches
    /// it), see [`TargetUrl::with_query`].
    pub forward_query: bool,
}

impl LinkSpec {
    pub fn new(target: TargetUrl) -> Self {
        Self {
            target,
            expires_at: None,
            max_clicks: None,
            redirect_status: RedirectStatus::default(),
            tags: Tags::default(),
            metadata: Metadata::default(),
            disabled: None,
            forward_query: false,
        }
    }
}

/// A link as folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub code: Code,
    pub owner: Owner,
    pub spec: LinkSpec,
    pub custom_alias: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// Whether a link may redirect at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Active,
    Deleted,
    /// Its target's domain is on the operator's blocklist.
    Blocked,
    Disabled,
    Expired,
    /// Every one of its `max_clicks` has been used.
    Exhausted,
}

impl Availability {
    /// Why a link that may not redirect is gone, in words for a problem's detail.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
            Self::Blocked => "its target is blocked",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::Exhausted => "out of clicks",
        }
    }
}

/// What decides whether a link may redirect. A redirect's packed cache entry and a stored [`Link`]
/// both answer through this one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[expect(clippy::struct_excessive_bools, reason = "independent facts, each read by the one rule below")]
pub struct RedirectFacts {
    pub deleted: bool,
    pub blocked: bool,
    pub disabled: bool,
    pub expires_at: Option<Timestamp>,
    /// The click quota has refused a click already.
    pub exhausted: bool,
    /// It has `max_clicks`: each redirect takes one.
    pub limited: bool,
}

/// What a visitor of an active link gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The target; a limited link's redirect takes one of its clicks.
    Redirect,
    /// A link preview (Slack, WhatsApp, …) of a limited link gets neither the target nor a click:
    /// an unfurl must not use up a one-time link or hand its target to a chat server.
    Withheld,
}

impl RedirectFacts {
    #[inline]
    pub fn availability(&self, now: Timestamp) -> Availability {
        if self.deleted {
            Availability::Deleted
        } else if self.blocked {
            Availability::Blocked
        } else if self.disabled {
            Availability::Disabled
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Availability::Expired
        } else if self.exhausted {
            Availability::Exhausted
        } else {
            Availability::Active
        }
    }

    /// What a visitor of an active link gets. `is_preview` is asked only when the answer depends on
    /// it (a limited link), so that other redirects never classify their agent.
    pub fn admit(&self, is_preview: impl FnOnce() -> bool) -> Admission {
        if self.limited && is_preview() { Admission::Withheld } else { Admission::Redirect }
    }
}

impl Link {
    /// `blocked`: whether the operator's blocklist covers the target (see `TargetPolicy::blocked`).
    pub fn redirect_facts(&self, blocked: bool) -> RedirectFacts {
        RedirectFacts {
            deleted: self.deleted_at.is_some(),
            blocked,
            disabled: self.spec.disabled.is_some(),
            expires_at: self.spec.expires_at,
            exhausted: false,
            limited: self.spec.max_clicks.is_some(),
        }
    }

    pub fn availability(&self, now: Timestamp, blocked: bool) -> Availability {
        self.redirect_facts(blocked).availability(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_of_a_limited_link_gets_neither_its_target_nor_a_click() {
        let limited = RedirectFacts { limited: true, ..RedirectFacts::default() };
        assert_eq!(limited.admit(|| true), Admission::Withheld);
        assert_eq!(limited.admit(|| false), Admission::Redirect);
        // Other links never ask who is visiting: a redirect without a limit classifies nothing.
        let open = RedirectFacts::default();
        assert_eq!(open.admit(|| panic!("an unlimited link asked for the agent")), Admission::Redirect);
    }

    #[test]
    fn redirect_status_accepts_only_redirects() {
        for code in [301, 302, 307, 308] {
            assert_eq!(RedirectStatus::from_code(code).map(RedirectStatus::code), Ok(code));
        }
        for code in [200, 300, 303, 304, 404] {
            assert_eq!(RedirectStatus::from_code(code), Err(RedirectStatusError(code)));
        }
        assert_eq!(RedirectStatus::default().code(), 302);
    }

    #[test]
    fn max_clicks_is_positive_and_bounded() {
        assert_eq!(MaxClicks::new(1).map(MaxClicks::get), Ok(1));
        assert!(MaxClicks::new(0).is_err());
        assert!(MaxClicks::new(-3).is_err());
        assert!(MaxClicks::new(i128::from(MaxClicks::MAX) + 1).is_err());
    }

    #[test]
    fn tags_are_deduplicated_in_order_and_bounded() {
        let tags = Tags::parse(vec!["b".into(), "a".into(), "b".into()]).expect("valid");
        assert_eq!(tags.as_slice(), ["b", "a"]);
        assert!(matches!(Tags::parse(vec![String::new()]), Err(TagsError::Invalid(_))));
        assert!(matches!(Tags::parse(vec!["a\nb".into()]), Err(TagsError::Invalid(_))));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert_eq!(Tags::parse(many), Err(TagsError::TooMany(MAX_TAGS + 1)));
        let repeated: Vec<String> = (0..1000).map(|i| (i % MAX_TAGS).to_string()).collect();
        assert_eq!(Tags::parse(repeated).map(|t| t.as_slice().len()), Ok(MAX_TAGS));
    }

    #[test]
    fn metadata_keys_and_values_are_bounded() {
        let ok = BTreeMap::from([("campaign".to_owned(), "spring".to_owned()), ("empty".to_owned(), String::new())]);
        assert!(Metadata::parse(ok).is_ok());
        let bad_key = BTreeMap::from([(String::new(), "x".to_owned())]);
        assert!(matches!(Metadata::parse(bad_key), Err(MetadataError::Key(_))));
        let long_value = BTreeMap::from([("k".to_owned(), "v".repeat(MAX_METADATA_VALUE_LEN + 1))]);
        assert!(matches!(Metadata::parse(long_value), Err(MetadataError::Value(_))));
    }

    #[test]
    fn availability_follows_deletion_then_expiry() {
        let mut link = Link {
            code: Code::parse("abc").expect("valid"),
            owner: Owner::admin(),
            spec: LinkSpec::new(TargetUrl::parse("https://example.com").expect("valid")),
            custom_alias: true,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            deleted_at: None,
        };
        let at = Timestamp::from_millis;
        assert_eq!(link.availability(at(10), false), Availability::Active);
        link.spec.expires_at = Some(at(10));
        assert_eq!(link.availability(at(9), false), Availability::Active);
        assert_eq!(link.availability(at(10), false), Availability::Expired);
        link.spec.disabled = Some(DisabledReason::default());
        assert_eq!(link.availability(at(10), false), Availability::Disabled);
        assert_eq!(link.availability(at(10), true), Availability::Blocked);
        link.deleted_at = Some(at(5));
        assert_eq!(link.availability(at(9), true), Availability::Deleted);
        let used_up = RedirectFacts { exhausted: true, ..RedirectFacts::default() };
        assert_eq!(used_up.availability(at(0)), Availability::Exhausted);
    }
}

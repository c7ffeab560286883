//! Listing links: the order a list comes in, where a page ends, and which links a query keeps.
//!
//! A list is newest first: by creation time, then by code, both descending. A page ends at a
//! [`ListPosition`], which the next page starts strictly after, so links created while a client
//! pages never shift the pages it has not read yet (they sort before the first).

use std::fmt;

use crate::code::Code;
use crate::link::{Availability, Link, MAX_TAG_LEN};
use crate::time::Timestamp;

/// A link's place in the newest-first order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListPosition {
    pub created_at: Timestamp,
    pub code: Code,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a cursor this server handed out")]
pub struct CursorError;

impl ListPosition {
    pub fn of(link: &Link) -> Self {
        Self { created_at: link.created_at, code: link.code.clone() }
    }

    /// Reads a cursor written by [`fmt::Display`]: the creation time in hexadecimal milliseconds, a
    /// dot, the code.
    pub fn parse_cursor(cursor: &str) -> Result<Self, CursorError> {
        let (millis, code) = cursor.split_once('.').ok_or(CursorError)?;
        if millis.is_empty() || millis.len() > 16 {
            return Err(CursorError);
        }
        let millis = u64::from_str_radix(millis, 16).ok().and_then(|m| i64::try_from(m).ok()).ok_or(CursorError)?;
        let code = Code::parse(code).map_err(|_| CursorError)?;
        Ok(Self { created_at: Timestamp::from_millis(millis), code })
    }

    /// The position as a key that sorts ascending in newest-first order: the creation time
    /// subtracted from the largest, big-endian, then the code's bytes in descending order (each
    /// byte inverted, then a terminator that sorts a code before its own extensions). Stores that
    /// keep rows ordered by bytes (redb, Redis's lexicographic sorted sets) page with it.
    pub fn sort_key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(8 + self.code.as_str().len() + 1);
        let millis = u64::try_from(self.created_at.as_millis()).unwrap_or(0);
        key.extend_from_slice(&(u64::MAX - millis).to_be_bytes());
        key.extend(self.code.as_str().bytes().map(|b| !b));
        key.push(0xff);
        key
    }
}

impl ListPosition {
    /// The position a [`ListPosition::sort_key`] was made from.
    pub fn from_sort_key(key: &[u8]) -> Option<Self> {
        let (millis, code) = key.split_first_chunk::<8>()?;
        let millis = i64::try_from(u64::MAX - u64::from_be_bytes(*millis)).ok()?;
        let (0xff, code) = code.split_last()? else { return None };
        let code: Vec<u8> = code.iter().map(|b| !b).collect();
        let code = Code::parse(std::str::from_utf8(&code).ok()?).ok()?;
        Some(Self { created_at: Timestamp::from_millis(millis), code })
    }
}

impl fmt::Display for ListPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.created_at.as_millis().max(0), self.code)
    }
}

/// What a listed link's state is: the redirect rule's answer, without the blocklist and the click
/// quota (which are the redirect's to ask, at the moment of the visit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Active,
    Expired,
    Disabled,
    Deleted,
}

impl LinkState {
    pub fn of(link: &Link, now: Timestamp) -> Self {
        match link.availability(now, false) {
            Availability::Deleted => Self::Deleted,
            Availability::Disabled => Self::Disabled,
            Availability::Expired => Self::Expired,
            Availability::Active | Availability::Blocked | Availability::Exhausted => Self::Active,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
}

/// Which states a list shows. Unless asked for, deleted links are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    NotDeleted,
    Only(LinkState),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of active, expired, disabled, deleted, all")]
pub struct StateFilterError;

impl StateFilter {
    pub fn parse(input: &str) -> Result<Self, StateFilterError> {
        Ok(match input {
            "active" => Self::Only(LinkState::Active),
            "expired" => Self::Only(LinkState::Expired),
            "disabled" => Self::Only(LinkState::Disabled),
            "deleted" => Self::Only(LinkState::Deleted),
            "all" => Self::All,
            _ => return Err(StateFilterError),
        })
    }

    fn keeps(self, state: LinkState) -> bool {
        match self {
            Self::NotDeleted => state != LinkState::Deleted,
            Self::Only(wanted) => state == wanted,
            Self::All => true,
        }
    }
}

pub const MAX_SEARCH_LEN: usize = 200;

/// A search: a link matches when its code starts with the text, or its target contains it,
/// ignoring case. 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    text: String,
    lowercase: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_SEARCH_LEN} characters")]
pub struct SearchError;

impl Search {
    pub fn parse(input: &str) -> Result<Self, SearchError> {
        if !(1..=MAX_SEARCH_LEN).contains(&input.chars().count()) {
            return Err(SearchError);
        }
        Ok(Self { text: input.to_owned(), lowercase: input.to_lowercase() })
    }

    pub fn matches(&self, link: &Link) -> bool {
        link.code.as_str().starts_with(&self.text) || contains_ignoring_case(link.spec.target.as_str(), &self.lowercase)
    }
}

/// Whether `haystack` contains `needle` (already lowercase), ignoring case, without allocating for
/// the common ASCII case.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
        return haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(needle)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_TAG_LEN} characters")]
pub struct TagFilterError;

/// Which links a list keeps, besides whose they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub search: Option<Search>,
    pub tag: Option<String>,
    pub state: StateFilter,
}

impl ListFilter {
    pub fn parse_tag(input: &str) -> Result<String, TagFilterError> {
        if (1..=MAX_TAG_LEN).contains(&input.chars().count()) { Ok(input.to_owned()) } else { Err(TagFilterError) }
    }

    pub fn keeps(&self, link: &Link, now: Timestamp) -> bool {
        self.state.keeps(LinkState::of(link, now))
            && self.tag.as_ref().is_none_or(|tag| link.spec.tags.as_slice().contains(tag))
            && self.search.as_ref().is_none_or(|search| search.matches(link))
    }
}

pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 20;

/// How many links one list request may read, matching or not: a search that matches little ends
/// its page early, with a cursor to go on from, rather than reading a whole list.
pub const SCAN_BUDGET: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{DisabledReason, LinkSpec, Tags};
    use crate::{Owner, TargetUrl};

    fn link(code: &str, created_at: i64, target: &str) -> Link {
        Link {
            code: Code::parse(code).expect("valid"),
            owner: Owner::admin(),
            spec: LinkSpec::new(TargetUrl::parse(target).expect("valid")),
            custom_alias: true,
            created_at: Timestamp::from_millis(created_at),
            updated_at: Timestamp::from_millis(created_at),
            deleted_at: None,
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_was_not_handed_out() {
        let position = ListPosition::of(&link("promo-1", 1_767_225_600_123, "https://example.com"));
        assert_eq!(ListPosition::parse_cursor(&position.to_string()), Ok(position));
        for bad in ["", ".", "zz.abc", "1.", "12345678901234567.abc", "1.a b", "abc"] {
            assert_eq!(ListPosition::parse_cursor(bad), Err(CursorError), "{bad}");
        }
    }

    #[test]
    fn sort_keys_order_newest_first_then_code_descending() {
        let positions = [
            ListPosition::of(&link("bbb", 20, "https://a.example")),
            ListPosition::of(&link("bbba", 10, "https://a.example")),
            ListPosition::of(&link("bbb", 10, "https://a.example")),
            ListPosition::of(&link("aaaa", 10, "https://a.example")),
            ListPosition::of(&link("aaa", 10, "https://a.example")),
            ListPosition::of(&link("zzz", 0, "https://a.example")),
        ];
        let mut keys: Vec<Vec<u8>> = positions.iter().map(ListPosition::sort_key).collect();
        let back: Vec<ListPosition> = keys.iter().filter_map(|key| ListPosition::from_sort_key(key)).collect();
        assert_eq!(back, positions);
        assert_eq!(ListPosition::from_sort_key(&[1, 2, 3]), None);
        let in_order = keys.clone();
        keys.sort();
        assert_eq!(keys, in_order);
    }

    #[test]
    fn filters_combine_state_tag_and_search() {
        let now = Timestamp::from_millis(1000);
        let mut promo = link("Promo", 1, "https://Shop.example/Spring");
        promo.spec.tags = Tags::parse(vec!["spring".into()]).expect("valid");
        let search =
            |text: &str| ListFilter { search: Some(Search::parse(text).expect("valid")), ..ListFilter::default() };
        assert!(search("Pro").keeps(&promo, now));
        assert!(!search("pro").keeps(&promo, now), "codes are case-sensitive");
        assert!(search("shop.EXAMPLE/spr").keeps(&promo, now));
        assert!(!search("autumn").keeps(&promo, now));
        let tag = |t: &str| ListFilter { tag: Some(t.to_owned()), ..ListFilter::default() };
        assert!(tag("spring").keeps(&promo, now) && !tag("Spring").keeps(&promo, now));

        let state = |s: &str| ListFilter { state: StateFilter::parse(s).expect("valid"), ..ListFilter::default() };
        assert!(state("active").keeps(&promo, now) && ListFilter::default().keeps(&promo, now));
        promo.spec.expires_at = Some(now);
        assert!(state("expired").keeps(&promo, now) && !state("active").keeps(&promo, now));
        promo.spec.disabled = Some(DisabledReason::default());
        assert!(state("disabled").keeps(&promo, now));
        promo.deleted_at = Some(now);
        assert!(state("deleted").keeps(&promo, now) && state("all").keeps(&promo, now));
        assert!(!ListFilter::default().keeps(&promo, now), "deleted links are left out unless asked for");
        assert_eq!(StateFilter::parse("gone"), Err(StateFilterError));
    }

    #[test]
    fn searches_and_tags_are_bounded() {
        assert!(Search::parse("").is_err() && Search::parse(&"x".repeat(MAX_SEARCH_LEN + 1)).is_err());
        assert!(Search::parse(&"é".repeat(MAX_SEARCH_LEN)).is_ok());
        assert!(ListFilter::parse_tag("").is_err() && ListFilter::parse_tag(&"t".repeat(MAX_TAG_LEN + 1)).is_err());
    }

    #[test]
    fn non_ascii_searches_ignore_case_too() {
        let link = link("abc", 1, "https://example.com/%C3%A9t%C3%A9");
        assert!(Search::parse("%c3%a9T").expect("valid").matches(&link));
        let search = Search::parse("É").expect("valid");
        assert!(contains_ignoring_case("Été", &search.lowercase));
    }
}

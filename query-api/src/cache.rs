//! The in-process link cache: the first level of every lookup, negative entries included.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kurz_domain::link::{MaxClicks, RedirectFacts, RedirectStatus};
use kurz_domain::{Code, Link, Timestamp};
use kurz_ports::LinkChangeListener;

/// What a redirect needs of a link, and no more, in one allocation: two flags bytes, the expiry
/// and click limit when the link has them, then the target URL. A million cached links must fit in
/// 150 MB, and the URL is most of each.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedLink(Arc<[u8]>);

const STATUS_BITS: u8 = 0b0000_0011;
const DELETED: u8 = 0b0000_0100;
/// The quota refused a click: later requests answer 410 without asking it again.
const EXHAUSTED: u8 = 0b0000_1000;
const HAS_EXPIRY: u8 = 0b0001_0000;
const HAS_LIMIT: u8 = 0b0010_0000;
const DISABLED: u8 = 0b0100_0000;
/// The operator's blocklist covered the target when the entry was made; a new blocklist clears the
/// cache.
const BLOCKED: u8 = 0b1000_0000;
/// In the second flags byte: the visitor's query string goes on to the target.
const FORWARD_QUERY: u8 = 0b0000_0001;
/// Flags bytes before the fields.
const HEAD: usize = 2;
const STATUSES: [RedirectStatus; 4] = [
    RedirectStatus::MovedPermanently,
    RedirectStatus::Found,
    RedirectStatus::TemporaryRedirect,
    RedirectStatus::PermanentRedirect,
];

impl CachedLink {
    fn flags(&self) -> u8 {
        self.0[0]
    }

    pub fn status(&self) -> RedirectStatus {
        STATUSES[usize::from(self.flags() & STATUS_BITS)]
    }

    /// What the domain decides a redirect on ([`RedirectFacts::availability`]).
    #[inline]
    pub fn facts(&self) -> RedirectFacts {
        let flags = self.flags();
        RedirectFacts {
            deleted: flags & DELETED != 0,
            blocked: flags & BLOCKED != 0,
            disabled: flags & DISABLED != 0,
            expires_at: self.expires_at(),
            exhausted: flags & EXHAUSTED != 0,
            limited: flags & HAS_LIMIT != 0,
        }
    }

    /// Whether the short URL's query string goes on to the target
    /// ([`kurz_domain::target_url::with_forwarded_query`]).
    pub fn forward_query(&self) -> bool {
        self.0[1] & FORWARD_QUERY != 0
    }

    fn field(&self, index: usize) -> i64 {
        let start = HEAD + 8 * index;
        i64::from_le_bytes(self.0[start..start + 8].try_into().expect("eight bytes"))
    }

    pub fn expires_at(&self) -> Option<Timestamp> {
        (self.flags() & HAS_EXPIRY != 0).then(|| Timestamp::from_millis(self.field(0)))
    }

    pub fn max_clicks(&self) -> Option<MaxClicks> {
        if self.flags() & HAS_LIMIT == 0 {
            return None;
        }
        let index = usize::from(self.flags() & HAS_EXPIRY != 0);
        MaxClicks::new(i128::from(self.field(index))).ok()
    }

    /// The target URL's bytes (ASCII: targets are normalised URLs).
    pub fn target(&self) -> &[u8] {
        let fields = usize::from(self.flags() & HAS_EXPIRY != 0) + usize::from(self.flags() & HAS_LIMIT != 0);
        &self.0[HEAD + 8 * fields..]
    }

    /// The same link, marked as out of clicks.
    #[must_use]
    pub fn exhaust(&self) -> Self {
        let mut bytes = self.0.to_vec();
        bytes[0] |= EXHAUSTED;
        Self(bytes.into())
    }
}

impl CachedLink {
    /// `blocked`: whether the operator's blocklist covers the link's target.
    pub fn new(link: &Link, blocked: bool) -> Self {
        let status =
            u8::try_from(STATUSES.iter().position(|s| *s == link.spec.redirect_status).expect("a known status"))
                .expect("four statuses");
        let mut flags = status;
        let mut bytes = vec![0, 0];
        if link.deleted_at.is_some() {
            flags |= DELETED;
        }
        if link.spec.disabled.is_some() {
            flags |= DISABLED;
        }
        if blocked {
            flags |= BLOCKED;
        }
        if let Some(at) = link.spec.expires_at {
            flags |= HAS_EXPIRY;
            bytes.extend_from_slice(&at.as_millis().to_le_bytes());
        }
        if let Some(max) = link.spec.max_clicks {
            flags |= HAS_LIMIT;
            bytes.extend_from_slice(&i64::try_from(max.get()).expect("bounded by MaxClicks::MAX").to_le_bytes());
        }
        bytes[0] = flags;
        if link.spec.forward_query {
            bytes[1] |= FORWARD_QUERY;
        }
        bytes.extend_from_slice(link.spec.target.as_str().as_bytes());
        Self(bytes.into())
    }
}

impl std::fmt::Debug for CachedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLink")
            .field("target", &String::from_utf8_lossy(self.target()))
            .field("status", &self.status())
            .field("expires_at", &self.expires_at())
            .field("max_clicks", &self.max_clicks())
            .field("forward_query", &self.forward_query())
            .field("facts", &self.facts())
            .finish()
    }
}

/// `None` caches "no such link", so a flood of unknown codes does not reach the store.
pub type Entry = Option<CachedLink>;

/// What an entry costs besides its own heap bytes: the cache's slot (key, value pointer, hash,
/// links) and its share of the index. Deliberately high: `kurz-loadtest cache-memory` measures ~60,
/// so a byte budget is an upper bound on what the cache holds.
pub const ENTRY_OVERHEAD: u64 = 96;
/// The bytes of an `Arc`'s counts before its data.
const ARC_HEADER: u64 = 16;
/// Codes up to this many bytes live inside the key itself.
const INLINE_CODE: usize = 24;
/// An ordinary link's weight, to size the cache's table: a 60-byte target.
pub const TYPICAL_ENTRY: u64 = ENTRY_OVERHEAD + ARC_HEADER + 2 + 60;

/// Weighs an entry by the bytes it holds, so the cache is bounded in memory, not in links: 10^6
/// links with 8 KiB targets weigh what they cost, not what 10^6 short ones do.
#[derive(Debug, Clone, Copy)]
struct Bytes;

impl quick_cache::Weighter<Code, Entry> for Bytes {
    fn weight(&self, code: &Code, entry: &Entry) -> u64 {
        let key = if code.as_str().len() > INLINE_CODE { code.as_str().len() as u64 } else { 0 };
        ENTRY_OVERHEAD + key + entry.as_ref().map_or(0, |link| ARC_HEADER + link.0.len() as u64)
    }
}

#[derive(Debug)]
pub struct LinkCache {
    entries: quick_cache::sync::Cache<Code, Entry, Bytes>,
    /// Moves on every invalidation; see [`LinkCache::insert_unless_changed`].
    generation: AtomicU64,
}

impl LinkCache {
    /// A cache holding at most `capacity_bytes` of links and unknown codes.
    pub fn new(capacity_bytes: u64) -> Self {
        let capacity_bytes = capacity_bytes.max(TYPICAL_ENTRY);
        let estimated = usize::try_from(capacity_bytes / TYPICAL_ENTRY).unwrap_or(usize::MAX);
        let entries = quick_cache::sync::Cache::with_weighter(estimated, capacity_bytes, Bytes);
        Self { entries, generation: AtomicU64::new(0) }
    }

    /// The bytes the entries weigh now (at most the capacity).
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }

    pub fn get(&self, code: &str) -> Option<Entry> {
        self.entries.get(code)
    }

    /// Read before loading from the store, and handed back to [`Self::insert_unless_changed`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches what the store said, unless some link changed since `generation` was read: the store
    /// answer may then predate the change, and caching it would outlive the invalidation.
    pub fn insert_unless_changed(&self, code: &Code, entry: Entry, generation: u64) {
        if self.generation() != generation {
            return;
        }
        self.entries.insert(code.clone(), entry);
        // An invalidation may have slipped between the check and the insert.
        if self.generation() != generation {
            self.entries.remove(code);
        }
    }

    /// Forgets everything: for when invalidations may have been missed (a lost subscription).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl LinkChangeListener for LinkCache {
    fn links_changed(&self, codes: &[Code]) {
        if codes.is_empty() {
            return;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        for code in codes {
            self.entries.remove(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use kurz_domain::{LinkSpec, TargetUrl};

    use super::*;

    fn code() -> Code {
        Code::parse("abc").expect("valid")
    }

    fn link() -> Link {
        Link {
            code: code(),
            owner: kurz_domain::Owner::admin(),
            spec: LinkSpec::new(TargetUrl::parse("https://example.com").expect("valid")),
            custom_alias: false,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            deleted_at: None,
        }
    }

    fn cached() -> CachedLink {
        CachedLink::new(&link(), false)
    }

    #[test]
    fn a_cached_link_keeps_every_field_a_redirect_needs() {
        let mut full = link();
        full.spec.redirect_status = RedirectStatus::PermanentRedirect;
        full.spec.expires_at = Some(Timestamp::from_millis(-5));
        full.spec.max_clicks = Some(MaxClicks::new(MaxClicks::MAX.into()).expect("valid"));
        full.deleted_at = Some(Timestamp::from_millis(1));
        full.spec.disabled = Some(kurz_domain::DisabledReason::default());
        full.spec.forward_query = true;
        for (link, blocked) in [(link(), false), (full, true)] {
            let cached = CachedLink::new(&link, blocked);
            assert_eq!(cached.facts(), link.redirect_facts(blocked));
            assert_eq!(cached.target(), link.spec.target.as_str().as_bytes());
            assert_eq!(cached.status(), link.spec.redirect_status);
            assert_eq!(cached.expires_at(), link.spec.expires_at);
            assert_eq!(cached.max_clicks(), link.spec.max_clicks);
            assert_eq!(cached.forward_query(), link.spec.forward_query);
            assert_eq!(cached.facts().deleted, link.deleted_at.is_some());
            assert!(!cached.facts().exhausted && cached.exhaust().facts().exhausted);
            assert_eq!(cached.exhaust().target(), cached.target());
        }
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_cached() {
        let cache = LinkCache::new(10_000);
        let before = cache.generation();
        cache.links_changed(&[code()]);
        cache.insert_unless_changed(&code(), None, before);
        assert!(cache.get("abc").is_none(), "a stale negative entry would hide the new link");
        cache.insert_unless_changed(&code(), Some(cached()), cache.generation());
        assert!(matches!(cache.get("abc"), Some(Some(_))));
    }

    #[test]
    fn changes_evict_entries() {
        let cache = LinkCache::new(10_000);
        cache.insert_unless_changed(&code(), None, cache.generation());
        assert!(matches!(cache.get("abc"), Some(None)));
        cache.links_changed(&[code()]);
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn a_million_ordinary_links_fit_the_default_budget() {
        let cache = LinkCache::new(kurz_service_kit::config::CacheConfig::default().capacity_bytes);
        let mut link = link();
        for i in 0..1_000_000 {
            link.code = Code::parse(&format!("c{i:07}")).expect("valid");
            link.spec.target = TargetUrl::parse(&format!(
                "https://shop.example.com/products/c{i:07}?utm_source=kurz&utm_campaign=winter"
            ))
            .expect("valid");
            cache.insert_unless_changed(&link.code, Some(CachedLink::new(&link, false)), cache.generation());
        }
        assert!(cache.len() >= 990_000, "only {} of 10^6 links stayed", cache.len());
    }
}

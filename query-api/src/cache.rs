//! The in-process link cache: the first level of every lookup, negative entries included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kurz_domain::link::{MaxClicks, RedirectStatus};
use kurz_domain::{Code, Link, Timestamp};
use kurz_ports::LinkChangeListener;

/// What a redirect needs of a link, and no more.
#[derive(Debug)]
pub struct CachedLink {
    pub target: Arc<str>,
    pub status: RedirectStatus,
    pub expires_at: Option<Timestamp>,
    pub max_clicks: Option<MaxClicks>,
    pub deleted: bool,
    /// Set once the quota refused a click, so later requests answer 410 without asking it again.
    pub exhausted: AtomicBool,
}

impl From<&Link> for CachedLink {
    fn from(link: &Link) -> Self {
        Self {
            target: link.spec.target.as_str().into(),
            status: link.spec.redirect_status,
            expires_at: link.spec.expires_at,
            max_clicks: link.spec.max_clicks,
            deleted: link.deleted_at.is_some(),
            exhausted: AtomicBool::new(false),
        }
    }
}

/// `None` caches "no such link", so a flood of unknown codes does not reach the store.
pub type Entry = Option<Arc<CachedLink>>;

#[derive(Debug)]
pub struct LinkCache {
    entries: quick_cache::sync::Cache<Code, Entry>,
    /// Moves on every invalidation; see [`LinkCache::insert_unless_changed`].
    generation: AtomicU64,
}

impl LinkCache {
    pub fn new(capacity: usize) -> Self {
        Self { entries: quick_cache::sync::Cache::new(capacity.max(1)), generation: AtomicU64::new(0) }
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

    fn cached() -> Arc<CachedLink> {
        let link = Link {
            code: code(),
            spec: LinkSpec::new(TargetUrl::parse("https://example.com").expect("valid")),
            custom_alias: false,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            deleted_at: None,
        };
        Arc::new(CachedLink::from(&link))
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_cached() {
        let cache = LinkCache::new(10);
        let before = cache.generation();
        cache.links_changed(&[code()]);
        cache.insert_unless_changed(&code(), None, before);
        assert!(cache.get("abc").is_none(), "a stale negative entry would hide the new link");
        cache.insert_unless_changed(&code(), Some(cached()), cache.generation());
        assert!(matches!(cache.get("abc"), Some(Some(_))));
    }

    #[test]
    fn changes_evict_entries() {
        let cache = LinkCache::new(10);
        cache.insert_unless_changed(&code(), None, cache.generation());
        assert!(matches!(cache.get("abc"), Some(None)));
        cache.links_changed(&[code()]);
        assert!(cache.get("abc").is_none());
    }
}

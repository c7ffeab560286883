//! Deciding a redirect: cache, then store; expiry, deletion and click limits.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderValue;
use kurz_domain::analytics;
use kurz_domain::link::RedirectStatus;
use kurz_domain::orphans::{OrphanDay, OrphanReason};
use kurz_domain::stats::{Bots, DayStats, LinkStats};
use kurz_domain::target_url::with_forwarded_query;
use kurz_domain::{Admission, Availability, Code, DayRange, Link, LinkClicked};
use kurz_ports::{ClickQuota, InfraError, ReadStore};
use kurz_service_kit::Clock;
use kurz_service_kit::targets::TargetRules;
use siphasher::sip::SipHasher13;

use crate::cache::{CachedLink, Entry, LinkCache};
use crate::click_details::QueuedClick;
use crate::clicks::ClickRecorder;
use crate::metrics::RedirectMetrics;
use crate::orphans::OrphanVisits;

/// The key that turns a visitor's address and agent into a pseudonymous id. Kept stable across
/// restarts so unique-visitor counts stay comparable.
#[derive(Clone)]
pub struct VisitorKey(pub [u8; 16]);

impl std::fmt::Debug for VisitorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorKey(<redacted>)")
    }
}

#[derive(Debug)]
pub struct RedirectServiceParts {
    pub store: Arc<dyn ReadStore>,
    pub quota: Arc<dyn ClickQuota>,
    pub cache: Arc<LinkCache>,
    /// Where redirects' clicks go; `None` records none.
    pub clicks: Option<ClickRecorder>,
    pub clock: Clock,
    pub visitor_key: VisitorKey,
    /// The operator's blocklist: a link whose target it covers does not redirect.
    pub targets: Arc<TargetRules>,
    /// Where requests for codes that name no live link are counted; `None` counts none.
    pub orphans: Option<Arc<OrphanVisits>>,
    /// The longest a redirect waits on a store (a lookup on a cache miss, a click limit's take):
    /// answered 503 after that. Hits wait on nothing and set no timer.
    pub store_timeout: std::time::Duration,
}

#[derive(Debug)]
pub struct RedirectService {
    parts: RedirectServiceParts,
    metrics: RedirectMetrics,
}

/// What `GET /{code}` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Redirect {
        status: RedirectStatus,
        location: HeaderValue,
        cacheable: bool,
    },
    /// A link preview of a limited link: answered without the target ([`Admission::Withheld`]).
    Withheld,
    NotFound,
    Gone(&'static str),
}

/// Whether a code names a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    Exists,
    Unknown,
    Deleted,
}

/// The request facts a redirect is decided on and its click records.
#[derive(Debug, Default)]
pub struct Visit<'a> {
    pub referrer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub address: Option<IpAddr>,
    pub accept_language: Option<&'a HeaderValue>,
    /// A `GET`: it takes a click from a limited link and records one. A `HEAD` does neither.
    pub counts: bool,
}

impl RedirectService {
    pub fn new(parts: RedirectServiceParts) -> Self {
        Self { parts, metrics: RedirectMetrics::new() }
    }

    /// Resolves a redirect for the code in a request path. `query` is the request's query string,
    /// passed on to a link that forwards it.
    pub async fn redirect(&self, code: &str, query: Option<&str>, visit: Visit<'_>) -> Result<Outcome, InfraError> {
        let generation = self.parts.cache.generation();
        let Some(link) = self.lookup(code, generation).await? else {
            self.metrics.not_found.increment(1);
            self.orphan(code, OrphanReason::Unknown, &visit);
            return Ok(Outcome::NotFound);
        };
        let now = self.parts.clock.now();
        let facts = link.facts();
        let availability = facts.availability(now);
        if let Some(reason) = OrphanReason::of(availability) {
            self.metrics.gone.increment(1);
            self.orphan(code, reason, &visit);
            return Ok(Outcome::Gone(availability.reason()));
        }
        // A preview's HEAD is answered as its GET would be: without the target.
        let is_preview = || visit.user_agent.is_some_and(analytics::is_preview);
        if facts.admit(is_preview) == Admission::Withheld {
            self.metrics.withheld.increment(1);
            return Ok(Outcome::Withheld);
        }
        if visit.counts {
            // Only codes that parse are ever cached or stored.
            let code = Code::parse(code).expect("a found link has a valid code");
            let click = |code: Code| QueuedClick {
                click: LinkClicked::new(
                    code,
                    now,
                    visit.referrer,
                    visit.user_agent,
                    visit.address.map(|ip| self.visitor_id(ip, visit.user_agent)).as_deref(),
                ),
                address: visit.address,
                accept_language: visit.accept_language.cloned(),
            };
            if let Some(max) = link.max_clicks() {
                // Served only once counted: the click is durable with the take of its quota.
                let quota = &*self.parts.quota;
                let taken = match &self.parts.clicks {
                    Some(clicks) => {
                        self.bounded(clicks.take_and_record(quota, &code, max, click(code.clone()))).await?
                    }
                    None => self.bounded(quota.take(&code, max)).await?,
                };
                if !taken {
                    self.parts.cache.insert_unless_changed(&code, Some(link.exhaust()), generation);
                    self.metrics.gone.increment(1);
                    self.orphan(code.as_str(), OrphanReason::Exhausted, &visit);
                    return Ok(Outcome::Gone(Availability::Exhausted.reason()));
                }
            } else if let Some(clicks) = &self.parts.clicks {
                clicks.record(click(code));
            }
        }
        self.metrics.redirected.increment(1);
        let cacheable = link.max_clicks().is_none() && link.expires_at().is_none();
        let location = match query.filter(|_| link.forward_query()) {
            Some(query) => {
                let target = std::str::from_utf8(link.target()).map_err(|e| InfraError::new("cached target", e))?;
                HeaderValue::try_from(with_forwarded_query(target, query))
                    .map_err(|e| InfraError::new("forwarded query", e))?
            }
            None => HeaderValue::from_bytes(link.target()).map_err(|e| InfraError::new("cached target", e))?,
        };
        Ok(Outcome::Redirect { status: link.status(), location, cacheable })
    }

    /// Whether `code` names a link that still exists (for its QR code), from the cache like a
    /// redirect: a disabled or expired link keeps its QR code, a deleted one does not.
    pub async fn existence(&self, code: &str) -> Result<Existence, InfraError> {
        let generation = self.parts.cache.generation();
        Ok(match self.lookup(code, generation).await? {
            None => Existence::Unknown,
            Some(link) if link.facts().availability(self.parts.clock.now()) == Availability::Deleted => {
                Existence::Deleted
            }
            Some(_) => Existence::Exists,
        })
    }

    /// The link as the read store has it (not cached: this is the management view).
    pub async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError> {
        self.parts.store.link(code).await
    }

    pub fn now(&self) -> kurz_domain::Timestamp {
        self.parts.clock.now()
    }

    pub async fn stats(&self, code: &Code, range: DayRange, bots: Bots) -> Result<LinkStats, InfraError> {
        self.parts.store.stats(code, range, bots).await
    }

    /// Links' click rows on the days in `range`, in the order of `codes`.
    pub async fn click_days_of(
        &self,
        codes: &[Code],
        range: DayRange,
    ) -> Result<Vec<Vec<(kurz_domain::Day, DayStats)>>, InfraError> {
        self.parts.store.click_days_of(codes, range).await
    }

    /// The cached entry, or the store's answer cached unless a link changed since `generation`.
    async fn lookup(&self, raw: &str, generation: u64) -> Result<Entry, InfraError> {
        if let Some(entry) = self.parts.cache.get(raw) {
            self.metrics.cache_hit.increment(1);
            return Ok(entry);
        }
        // Text that is no code names no link; there is nothing to ask the store or to cache.
        let Ok(code) = Code::parse(raw) else { return Ok(None) };
        self.metrics.cache_miss.increment(1);
        let entry = self.bounded(self.parts.store.link(&code)).await?.map(|link| {
            let blocked = self.parts.targets.current().blocked(&link.spec.target).is_some();
            CachedLink::new(&link, blocked)
        });
        self.parts.cache.insert_unless_changed(&code, entry.clone(), generation);
        Ok(entry)
    }

    /// Counts a request (not a `HEAD`) for a code that names no live link.
    fn orphan(&self, code: &str, reason: OrphanReason, visit: &Visit<'_>) {
        if let Some(orphans) = self.parts.orphans.as_ref().filter(|_| visit.counts) {
            orphans.record(self.parts.clock.now().day(), code, reason, visit.referrer);
        }
    }

    /// The orphan visits on the days in `range` (none when they are not counted).
    pub async fn orphan_days(&self, range: DayRange) -> Result<Vec<(kurz_domain::Day, OrphanDay)>, InfraError> {
        match &self.parts.orphans {
            Some(orphans) => orphans.days(range).await,
            None => Ok(Vec::new()),
        }
    }

    async fn bounded<T>(&self, wait: impl Future<Output = Result<T, InfraError>>) -> Result<T, InfraError> {
        tokio::time::timeout(self.parts.store_timeout, wait)
            .await
            .unwrap_or_else(|elapsed| Err(InfraError::new("a redirect waited too long on a store", elapsed)))
    }

    fn visitor_id(&self, address: IpAddr, user_agent: Option<&str>) -> String {
        let mut hasher = SipHasher13::new_with_key(&self.parts.visitor_key.0);
        match address {
            IpAddr::V4(ip) => hasher.write(&ip.octets()),
            IpAddr::V6(ip) => hasher.write(&ip.octets()),
        }
        hasher.write(user_agent.unwrap_or_default().as_bytes());
        hex(hasher.finish())
    }
}

/// `format!("{:016x}")` without the formatting machinery, which cost ~500 instructions on every
/// recorded redirect (callgrind).
fn hex(value: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..16)
        .rev()
        .map(|nibble| char::from(DIGITS[usize::try_from((value >> (nibble * 4)) & 0xf).unwrap_or(0)]))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_spells_what_formatting_spells() {
        for value in [0, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(super::hex(value), format!("{value:016x}"));
        }
    }
}

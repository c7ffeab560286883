//! Abuse limits (governor's GCRA): per key on writes, per client address on API requests without a
//! valid key (key guessing) and on redirect lookups of unknown codes (enumeration), and an optional
//! global limit. Each instance counts for itself; behind a load balancer of n instances a client
//! gets up to n times the limit.
//!
//! An address over one of its limits is refused everything that limit guards (every API request,
//! or every redirect) until its next allowance, without a lookup: a prober learns nothing more and
//! costs the stores nothing more.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use kurz_domain::KeyId;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::Problem;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// API requests (`/v1/…`) without a valid key, per client address and minute (0: no limit).
    /// Keyed requests are counted per key instead.
    pub failed_keys_per_address_per_minute: u32,
    /// Writes (anything but GET and HEAD on `/v1/…`) per API key and second (0: no limit).
    pub writes_per_key_per_second: u32,
    /// Redirect lookups of codes that name no link, per client address and minute (0: no limit).
    /// An address over it gets 429 for every redirect until its window frees up.
    pub unknown_codes_per_address_per_minute: u32,
    /// Requests per second to the whole instance (0: no limit).
    pub global_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            failed_keys_per_address_per_minute: 100,
            writes_per_key_per_second: 5000,
            unknown_codes_per_address_per_minute: 100,
            global_per_second: 0,
        }
    }
}

/// A request over a limit: answered 429 with `Retry-After` and the IETF draft's `RateLimit-Policy`
/// and `RateLimit` headers.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub policy: &'static str,
    pub quota: u32,
    pub window_secs: u32,
    pub retry_after: Duration,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let seconds = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            format!(
                "the {} limit ({} per {} s) is used up; retry in {seconds} s",
                self.policy, self.quota, self.window_secs
            ),
        )
        .into_response();
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set(header::RETRY_AFTER.as_str(), seconds.to_string());
        set("ratelimit-policy", format!("\"{}\";q={};w={}", self.policy, self.quota, self.window_secs));
        set("ratelimit", format!("\"{}\";r=0;t={seconds}", self.policy));
        metrics::counter!("rate_limited_total", "policy" => self.policy).increment(1);
        response
    }
}

struct Keyed<K: std::hash::Hash + Eq + Clone> {
    policy: &'static str,
    quota: u32,
    window_secs: u32,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    fn new(policy: &'static str, quota: u32, window_secs: u32) -> Option<Self> {
        let count = NonZeroU32::new(quota)?;
        let period = Duration::from_secs(u64::from(window_secs)) / quota;
        let rate = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(count);
        Some(Self { policy, quota, window_secs, limiter: RateLimiter::dashmap(rate) })
    }

    /// Takes `n` at once (a batch of `n` writes): refused whole when they are not all there.
    fn check_n(&self, key: &K, n: u32) -> Result<(), Refusal> {
        let Some(n) = NonZeroU32::new(n) else { return Ok(()) };
        let refusal = |retry_after| Refusal {
            policy: self.policy,
            quota: self.quota,
            window_secs: self.window_secs,
            retry_after,
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refusal(not_until.wait_time_from(DefaultClock::default().now()))),
            // More than the whole allowance: never possible at once.
            Err(_) => Err(refusal(Duration::from_secs(u64::from(self.window_secs)))),
        }
    }

    fn check(&self, key: &K) -> Result<(), Refusal> {
        self.limiter.check_key(key).map_err(|not_until| Refusal {
            policy: self.policy,
            quota: self.quota,
            window_secs: self.window_secs,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }
}

/// An address as limits count it: IPv6 clients usually hold a whole /64, so it counts as one.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// A per-address allowance whose overdraft bars the address for a while (see the module's notes).
struct Strikes {
    keyed: Keyed<IpAddr>,
    /// Addresses over the limit, until when.
    barred: quick_cache::sync::Cache<IpAddr, Instant>,
    /// When the last address was barred (ms since `started`): while nobody was barred in the last
    /// window, checks skip the lookup.
    last_barred_ms: AtomicU64,
    started: Instant,
}

const NOBODY: u64 = u64::MAX;

impl Strikes {
    fn new(policy: &'static str, per_minute: u32) -> Option<Self> {
        Some(Self {
            keyed: Keyed::new(policy, per_minute, 60)?,
            barred: quick_cache::sync::Cache::new(100_000),
            last_barred_ms: AtomicU64::new(NOBODY),
            started: Instant::now(),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NOBODY - 1)
    }

    fn strike(&self, ip: IpAddr) -> Result<(), Refusal> {
        let key = address_key(ip);
        let refusal = self.keyed.check(&key).err();
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                self.barred.insert(key, Instant::now() + refusal.retry_after);
                self.last_barred_ms.store(self.elapsed_ms(), Ordering::Relaxed);
                Err(refusal)
            }
        }
    }

    #[inline]
    fn barred(&self, ip: impl FnOnce() -> Option<IpAddr>) -> Result<(), Refusal> {
        let last = self.last_barred_ms.load(Ordering::Relaxed);
        if last == NOBODY {
            return Ok(());
        }
        self.barred_slow(ip(), last)
    }

    #[cold]
    fn barred_slow(&self, ip: Option<IpAddr>, last_barred_ms: u64) -> Result<(), Refusal> {
        let Some(ip) = ip else { return Ok(()) };
        if self.elapsed_ms().saturating_sub(last_barred_ms) > u64::from(self.keyed.window_secs) * 1000 {
            return Ok(());
        }
        match self.barred.get(&address_key(ip)) {
            Some(until) if until > Instant::now() => Err(Refusal {
                policy: self.keyed.policy,
                quota: self.keyed.quota,
                window_secs: self.keyed.window_secs,
                retry_after: until - Instant::now(),
            }),
            _ => Ok(()),
        }
    }
}

pub struct Limits {
    failed_keys: Option<Strikes>,
    writes: Option<Keyed<KeyId>>,
    unknown_codes: Option<Strikes>,
    global: Option<(u32, DefaultDirectRateLimiter)>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Arc<Self> {
        let global =
            NonZeroU32::new(config.global_per_second).map(|n| (n.get(), RateLimiter::direct(Quota::per_second(n))));
        Arc::new(Self {
            failed_keys: Strikes::new("failed-keys-per-address", config.failed_keys_per_address_per_minute),
            writes: Keyed::new("writes-per-key", config.writes_per_key_per_second, 1),
            unknown_codes: Strikes::new("unknown-codes-per-address", config.unknown_codes_per_address_per_minute),
            global,
        })
    }

    pub fn global(&self) -> Result<(), Refusal> {
        let Some((quota, limiter)) = &self.global else { return Ok(()) };
        limiter.check().map_err(|not_until| Refusal {
            policy: "global",
            quota: *quota,
            window_secs: 1,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// A refusal for an address barred for presenting invalid keys; checked before a key is.
    pub fn key_penalty(&self, client: impl FnOnce() -> Option<IpAddr>) -> Result<(), Refusal> {
        self.failed_keys.as_ref().map_or(Ok(()), |strikes| strikes.barred(client))
    }

    /// Counts an API request without a valid key against its address.
    pub fn failed_key(&self, client: Option<IpAddr>) -> Result<(), Refusal> {
        match (&self.failed_keys, client) {
            (Some(strikes), Some(ip)) => strikes.strike(ip),
            _ => Ok(()),
        }
    }

    pub fn write(&self, key: &KeyId) -> Result<(), Refusal> {
        self.writes.as_ref().map_or(Ok(()), |limit| limit.check(key))
    }

    /// Counts `n` more writes of one request (a batch) against its key.
    pub fn more_writes(&self, key: &KeyId, n: u32) -> Result<(), Refusal> {
        self.writes.as_ref().map_or(Ok(()), |limit| limit.check_n(key, n))
    }

    /// Counts a redirect lookup of a code that names no link against its address.
    pub fn unknown_code(&self, client: Option<IpAddr>) -> Result<(), Refusal> {
        match (&self.unknown_codes, client) {
            (Some(strikes), Some(ip)) => strikes.strike(ip),
            _ => Ok(()),
        }
    }

    /// A refusal for an address barred for looking up unknown codes. Costs one atomic load while no
    /// address was barred in the last window: this is on every redirect.
    #[inline]
    pub fn penalty(&self, client: impl FnOnce() -> Option<IpAddr>) -> Result<(), Refusal> {
        self.unknown_codes.as_ref().map_or(Ok(()), |strikes| strikes.barred(client))
    }

    /// Forgets addresses and keys whose limits are back to full every minute, so a flood of
    /// addresses does not grow memory without end.
    pub fn start_upkeep(self: &Arc<Self>, stop: CancellationToken) {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_mins(1)) => {}
                }
                let Some(limits) = limits.upgrade() else { return };
                for strikes in [&limits.failed_keys, &limits.unknown_codes].into_iter().flatten() {
                    strikes.keyed.limiter.retain_recent();
                    strikes.keyed.limiter.shrink_to_fit();
                }
                if let Some(writes) = &limits.writes {
                    writes.limiter.retain_recent();
                    writes.limiter.shrink_to_fit();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn unknown_codes_are_limited_per_address_and_then_every_redirect_waits() {
        let limits = Limits::new(&LimitsConfig { unknown_codes_per_address_per_minute: 3, ..LimitsConfig::default() });
        assert!(limits.penalty(|| Some(ip("192.0.2.1"))).is_ok(), "nobody penalised yet");
        for _ in 0..3 {
            assert!(limits.unknown_code(Some(ip("192.0.2.1"))).is_ok());
        }
        let refusal = limits.unknown_code(Some(ip("192.0.2.1"))).expect_err("over the limit");
        assert!(refusal.retry_after > Duration::ZERO && refusal.retry_after <= Duration::from_secs(20));
        assert!(limits.penalty(|| Some(ip("192.0.2.1"))).is_err(), "penalised for every redirect now");
        assert!(limits.penalty(|| Some(ip("192.0.2.2"))).is_ok(), "another address is not");
        assert!(limits.unknown_code(Some(ip("192.0.2.2"))).is_ok());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_prefix() {
        let limits = Limits::new(&LimitsConfig { failed_keys_per_address_per_minute: 2, ..LimitsConfig::default() });
        assert!(limits.failed_key(Some(ip("2001:db8:1:2::1"))).is_ok());
        assert!(limits.failed_key(Some(ip("2001:db8:1:2::ffff"))).is_ok());
        assert!(limits.failed_key(Some(ip("2001:db8:1:2:aaaa::1"))).is_err());
        assert!(limits.key_penalty(|| Some(ip("2001:db8:1:2::7"))).is_err(), "the whole /64 is barred");
        assert!(limits.failed_key(Some(ip("2001:db8:1:3::1"))).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = Limits::new(&LimitsConfig {
            failed_keys_per_address_per_minute: 0,
            writes_per_key_per_second: 0,
            unknown_codes_per_address_per_minute: 0,
            global_per_second: 0,
        });
        for _ in 0..10_000 {
            assert!(limits.failed_key(Some(ip("192.0.2.9"))).is_ok());
            assert!(limits.unknown_code(Some(ip("192.0.2.9"))).is_ok());
            assert!(limits.global().is_ok());
        }
    }
}

//! Abuse limits (governor's GCRA): per client address on the API, per key on writes, per client
//! address on lookups of unknown codes (enumeration), and an optional global limit. Each instance
//! counts for itself; behind a load balancer of n instances a client gets up to n times the limit.

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
    /// API requests (`/v1/…`) per client address and minute (0: no limit).
    pub api_per_address_per_minute: u32,
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
            api_per_address_per_minute: 3000,
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

pub struct Limits {
    api: Option<Keyed<IpAddr>>,
    writes: Option<Keyed<KeyId>>,
    unknown_codes: Option<Keyed<IpAddr>>,
    global: Option<(u32, DefaultDirectRateLimiter)>,
    /// Addresses over the unknown-code limit, until when.
    penalised: quick_cache::sync::Cache<IpAddr, Instant>,
    /// When the last address was penalised (ms since `started`): while nobody was in the last
    /// window, redirects skip the penalty lookup.
    last_penalty_ms: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

const NO_PENALTY: u64 = u64::MAX;

impl Limits {
    pub fn new(config: &LimitsConfig) -> Arc<Self> {
        let global =
            NonZeroU32::new(config.global_per_second).map(|n| (n.get(), RateLimiter::direct(Quota::per_second(n))));
        Arc::new(Self {
            api: Keyed::new("api-per-address", config.api_per_address_per_minute, 60),
            writes: Keyed::new("writes-per-key", config.writes_per_key_per_second, 1),
            unknown_codes: Keyed::new("unknown-codes-per-address", config.unknown_codes_per_address_per_minute, 60),
            global,
            penalised: quick_cache::sync::Cache::new(100_000),
            last_penalty_ms: AtomicU64::new(NO_PENALTY),
            started: Instant::now(),
        })
    }

    /// No limits at all (tools, and tests of other things).
    pub fn unlimited() -> Arc<Self> {
        Self::new(&LimitsConfig {
            api_per_address_per_minute: 0,
            writes_per_key_per_second: 0,
            unknown_codes_per_address_per_minute: 0,
            global_per_second: 0,
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

    pub fn api_request(&self, client: Option<IpAddr>) -> Result<(), Refusal> {
        match (&self.api, client) {
            (Some(limit), Some(ip)) => limit.check(&address_key(ip)),
            _ => Ok(()),
        }
    }

    pub fn write(&self, key: &KeyId) -> Result<(), Refusal> {
        self.writes.as_ref().map_or(Ok(()), |limit| limit.check(key))
    }

    /// Counts a lookup of a code that names no link; over the limit, the address is penalised for
    /// every redirect until its window frees up.
    pub fn unknown_code(&self, client: Option<IpAddr>) -> Result<(), Refusal> {
        let (Some(limit), Some(ip)) = (&self.unknown_codes, client) else { return Ok(()) };
        let key = address_key(ip);
        let refusal = limit.check(&key).err();
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                self.penalised.insert(key, Instant::now() + refusal.retry_after);
                let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
                self.last_penalty_ms.store(now_ms, Ordering::Relaxed);
                Err(refusal)
            }
        }
    }

    /// A refusal for an address that is penalised for looking up unknown codes. Costs one atomic
    /// load while no address was penalised in the last window.
    #[inline]
    pub fn penalty(&self, client: impl FnOnce() -> Option<IpAddr>) -> Result<(), Refusal> {
        let last = self.last_penalty_ms.load(Ordering::Relaxed);
        if last == NO_PENALTY {
            return Ok(());
        }
        self.penalty_slow(client(), last)
    }

    #[cold]
    fn penalty_slow(&self, client: Option<IpAddr>, last_penalty_ms: u64) -> Result<(), Refusal> {
        let (Some(limit), Some(ip)) = (&self.unknown_codes, client) else { return Ok(()) };
        let window_ms = u64::from(limit.window_secs) * 1000;
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        if now_ms.saturating_sub(last_penalty_ms) > window_ms {
            return Ok(());
        }
        let key = address_key(ip);
        match self.penalised.get(&key) {
            Some(until) if until > Instant::now() => Err(Refusal {
                policy: limit.policy,
                quota: limit.quota,
                window_secs: limit.window_secs,
                retry_after: until - Instant::now(),
            }),
            _ => Ok(()),
        }
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
                for keyed in [&limits.api, &limits.unknown_codes].into_iter().flatten() {
                    keyed.limiter.retain_recent();
                    keyed.limiter.shrink_to_fit();
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
        let limits = Limits::new(&LimitsConfig { api_per_address_per_minute: 2, ..LimitsConfig::default() });
        assert!(limits.api_request(Some(ip("2001:db8:1:2::1"))).is_ok());
        assert!(limits.api_request(Some(ip("2001:db8:1:2::ffff"))).is_ok());
        assert!(limits.api_request(Some(ip("2001:db8:1:2:aaaa::1"))).is_err());
        assert!(limits.api_request(Some(ip("2001:db8:1:3::1"))).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = Limits::unlimited();
        for _ in 0..10_000 {
            assert!(limits.api_request(Some(ip("192.0.2.9"))).is_ok());
            assert!(limits.unknown_code(Some(ip("192.0.2.9"))).is_ok());
            assert!(limits.global().is_ok());
        }
    }
}

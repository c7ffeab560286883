//! Redis as the second cache level for link lookups, in front of the read store (ScyllaDB at
//! scale): every query-api instance shares it, so a link read from the store once serves every
//! instance's misses, and unknown codes are remembered too (for a shorter while).
//!
//! Writers (command side, projector) go through the same decorator: after the store has a change,
//! the link's cache entry is dropped and its epoch moves. A reader fills the cache only if the epoch
//! is still the one it saw before reading the store, so an answer read before a change is never
//! cached after it. Hot links — cached when they changed — are read back from the store and cached
//! again at once by the writer, so a popular link never falls through to the store after an update. Redis failing or slow only costs the cache: every lookup then goes to the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::stats::DayStats;
use kurz_domain::{Code, Day, DayRange, Link};
use kurz_ports::{InfraError, LogRecord, ReadStore};
use redis::Script;

use crate::connection::{RedisConnection, redis_error};

/// Longest a cache request may take before the store is asked instead.
const CACHE_TIMEOUT: Duration = Duration::from_millis(100);
/// Epochs outlive any read that could race with them.
const EPOCH_TTL_SECONDS: u64 = 86_400;

#[derive(Debug, Clone, Copy)]
pub struct LinkCacheOptions {
    pub ttl: Duration,
    /// How long "no such link" is remembered.
    pub negative_ttl: Duration,
}

impl Default for LinkCacheOptions {
    fn default() -> Self {
        Self { ttl: Duration::from_hours(1), negative_ttl: Duration::from_secs(30) }
    }
}

#[derive(Debug)]
pub struct CachedReadStore {
    redis: RedisConnection,
    inner: Arc<dyn ReadStore>,
    options: LinkCacheOptions,
    fill: Script,
    invalidate: Script,
}

impl CachedReadStore {
    pub fn new(redis: RedisConnection, inner: Arc<dyn ReadStore>, options: LinkCacheOptions) -> Self {
        let fill = Script::new(
            r"if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
                redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
              end
              return 1",
        );
        // Returns, per link, its new epoch if it was cached (hot), else 0.
        let invalidate = Script::new(
            r"local hot = {}
              for i = 1, #KEYS, 2 do
                local epoch = redis.call('INCR', KEYS[i + 1])
                redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
                hot[#hot + 1] = redis.call('DEL', KEYS[i]) == 1 and epoch or 0
              end
              return hot",
        );
        Self { redis, inner, options, fill, invalidate }
    }

    fn keys(&self, code: &Code) -> (String, String) {
        (self.redis.key("cache:link", Some(code.as_str())), self.redis.key("cache:epoch", Some(code.as_str())))
    }

    /// The cached entry (`Some(None)`: known not to exist) and the epoch seen; `Err` when Redis did
    /// not answer in time.
    async fn cached(&self, code: &Code) -> Result<(Option<Option<Link>>, Option<String>), ()> {
        let (value, epoch) = self.keys(code);
        let mut connection = self.redis.manager();
        let mut command = redis::cmd("MGET");
        command.arg(&value).arg(&epoch);
        let read = command.query_async::<(Option<Vec<u8>>, Option<String>)>(&mut connection);
        let (entry, epoch) = match tokio::time::timeout(CACHE_TIMEOUT, read).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                metrics::counter!("link_cache_redis_errors_total").increment(1);
                tracing::debug!(%error, "link cache unavailable; reading the store");
                return Err(());
            }
            Err(_) => {
                metrics::counter!("link_cache_redis_errors_total").increment(1);
                return Err(());
            }
        };
        let entry = match entry {
            None => None,
            Some(bytes) if bytes.is_empty() => Some(None),
            Some(bytes) => kurz_ports::rows::decode_link(&bytes).ok().map(Some),
        };
        Ok((entry, epoch))
    }

    async fn fill(&self, code: &Code, link: Option<&Link>, epoch: Option<String>) {
        let (value, epoch_key) = self.keys(code);
        let (bytes, ttl) = match link {
            Some(link) => (kurz_ports::rows::encode_link(link), self.options.ttl),
            None => (Vec::new(), self.options.negative_ttl),
        };
        let mut invocation = self.fill.key(value);
        invocation.key(epoch_key).arg(epoch.unwrap_or_else(|| "0".into())).arg(bytes).arg(ttl.as_secs().max(1));
        let mut connection = self.redis.manager();
        let write = invocation.invoke_async::<i64>(&mut connection);
        if !matches!(tokio::time::timeout(CACHE_TIMEOUT, write).await, Ok(Ok(_))) {
            metrics::counter!("link_cache_redis_errors_total").increment(1);
        }
    }

    /// Drops changed links from the cache, then caches hot ones (those that were cached) afresh from
    /// the store. A failure is logged, not returned: the change is in the store, and the entry
    /// expires by itself.
    async fn invalidate(&self, codes: &[Code]) {
        if codes.is_empty() {
            return;
        }
        let mut invocation = self.invalidate.prepare_invoke();
        for code in codes {
            let (value, epoch) = self.keys(code);
            invocation.key(value).key(epoch);
        }
        invocation.arg(EPOCH_TTL_SECONDS);
        let epochs = match invocation.invoke_async::<Vec<i64>>(&mut self.redis.manager()).await {
            Ok(epochs) => epochs,
            Err(error) => {
                metrics::counter!("link_cache_redis_errors_total").increment(1);
                let error = redis_error("link cache")(error);
                tracing::warn!(%error, codes = codes.len(), "cannot drop changed links from the Redis cache; they expire by themselves");
                return;
            }
        };
        for (code, epoch) in codes.iter().zip(epochs).filter(|(_, epoch)| *epoch > 0) {
            if let Ok(link) = self.inner.link(code).await {
                self.fill(code, link.as_ref(), Some(epoch.to_string())).await;
                metrics::counter!("link_cache_redis_rewarmed_total").increment(1);
            }
        }
    }
}

#[async_trait]
impl ReadStore for CachedReadStore {
    async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError> {
        let epoch = match self.cached(code).await {
            Ok((Some(entry), _)) => {
                metrics::counter!("link_cache_redis_total", "result" => "hit").increment(1);
                return Ok(entry);
            }
            Ok((None, epoch)) => Some(epoch),
            Err(()) => None,
        };
        metrics::counter!("link_cache_redis_total", "result" => "miss").increment(1);
        let link = self.inner.link(code).await?;
        if let Some(epoch) = epoch {
            self.fill(code, link.as_ref(), epoch).await;
        }
        Ok(link)
    }

    async fn click_days(&self, code: &Code, range: DayRange) -> Result<Vec<(Day, DayStats)>, InfraError> {
        self.inner.click_days(code, range).await
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.inner.checkpoints(partitions).await
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        let changed = self.inner.apply(records).await?;
        self.invalidate(&changed).await;
        Ok(changed)
    }

    async fn apply_link_events(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        let changed = self.inner.apply_link_events(records).await?;
        self.invalidate(&changed).await;
        Ok(changed)
    }
}

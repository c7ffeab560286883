//! The Redis link cache in front of a read store keeps every read-store promise: the read-store
//! conformance suite, through the cache, with writes going through it as the services do.

use std::sync::Arc;

use async_trait::async_trait;
use kurz_ports::ReadStore;
use kurz_ports::conformance::Storage;
use kurz_redis::testing::{self, TestRedis};
use kurz_redis::{CachedReadStore, LinkCacheOptions, RedisConnection, RedisReadStore};

struct CachedFreshPrefix(TestRedis);

#[async_trait]
impl Storage<dyn ReadStore> for CachedFreshPrefix {
    async fn open(&self) -> Arc<dyn ReadStore> {
        let redis = RedisConnection::connect(&self.0.config).await.expect("connects to the test Redis");
        let inner = Arc::new(RedisReadStore::new(redis.clone()));
        Arc::new(CachedReadStore::new(redis, inner, LinkCacheOptions::default()))
    }
}

macro_rules! cached_fresh_prefix {
    () => {
        match testing::redis_or_skip() {
            Some(redis) => CachedFreshPrefix(redis),
            None => return,
        }
    };
}

kurz_ports::read_store_conformance!(cached_fresh_prefix!());

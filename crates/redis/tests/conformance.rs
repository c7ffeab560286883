//! The Redis adapters pass every conformance suite of their ports, against a real Redis.

use std::sync::Arc;

use async_trait::async_trait;
use kurz_ports::conformance::Storage;
use kurz_ports::{
    ApiKeyStore, ClickQuota, CodeRegistry, IdempotencyStore, LinkDirectory, LinkHistory, OrphanVisitStore, ReadStore,
};
use kurz_redis::testing::{self, TestRedis};
use kurz_redis::{
    RedisClickQuota, RedisCodeRegistry, RedisConnection, RedisDirectory, RedisHistory, RedisIdempotency, RedisKeyStore,
    RedisOrphanVisits, RedisReadStore,
};

/// A fresh key prefix per test; `open` connects again, as a restarted process would.
struct FreshPrefix(TestRedis);

impl FreshPrefix {
    async fn connect(&self) -> RedisConnection {
        RedisConnection::connect(&self.0.config).await.expect("connects to the test Redis")
    }
}

#[async_trait]
impl Storage<dyn ReadStore> for FreshPrefix {
    async fn open(&self) -> Arc<dyn ReadStore> {
        Arc::new(RedisReadStore::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn ClickQuota> for FreshPrefix {
    async fn open(&self) -> Arc<dyn ClickQuota> {
        Arc::new(RedisClickQuota::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn CodeRegistry> for FreshPrefix {
    async fn open(&self) -> Arc<dyn CodeRegistry> {
        Arc::new(RedisCodeRegistry::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn ApiKeyStore> for FreshPrefix {
    async fn open(&self) -> Arc<dyn ApiKeyStore> {
        Arc::new(RedisKeyStore::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn IdempotencyStore> for FreshPrefix {
    async fn open(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(RedisIdempotency::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn LinkDirectory> for FreshPrefix {
    async fn open(&self) -> Arc<dyn LinkDirectory> {
        Arc::new(RedisDirectory::new(self.connect().await))
    }
}

#[async_trait]
impl Storage<dyn LinkHistory> for FreshPrefix {
    async fn open(&self) -> Arc<dyn LinkHistory> {
        Arc::new(RedisHistory::new(self.connect().await))
    }
}

macro_rules! fresh_prefix {
    () => {
        match testing::redis_or_skip() {
            Some(redis) => FreshPrefix(redis),
            None => return,
        }
    };
}

kurz_ports::read_store_conformance!(fresh_prefix!());
kurz_ports::click_quota_conformance!(fresh_prefix!());
kurz_ports::code_registry_conformance!(fresh_prefix!());
kurz_ports::api_key_store_conformance!(fresh_prefix!());
kurz_ports::idempotency_store_conformance!(fresh_prefix!());

mod orphan_visits {
    use super::*;
    kurz_ports::orphan_visit_store_conformance!(fresh_prefix!());
}

#[async_trait]
impl Storage<dyn OrphanVisitStore> for FreshPrefix {
    async fn open(&self) -> Arc<dyn OrphanVisitStore> {
        Arc::new(RedisOrphanVisits::new(self.connect().await))
    }
}

mod link_directory {
    use super::*;
    kurz_ports::link_directory_conformance!(fresh_prefix!());
}

mod link_history {
    use super::*;
    kurz_ports::link_history_conformance!(fresh_prefix!());
}

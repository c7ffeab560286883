//! Kurz on Redis: the read models (links, per-day click statistics, projection checkpoints), the
//! write-side registries (alias claims, code-sequence leases, click quotas), the shared second cache
//! level for link lookups and the invalidation channel that reaches every query-api instance.
//!
//! All keys of one deployment start with a configurable prefix. The read models need a single
//! Redis (not Cluster): a projection write spans a partition's checkpoint and many links' keys in
//! one atomic script.

mod changes;
mod connection;
mod directory;
mod history;
mod idempotency;
mod keys;
mod link_cache;
mod orphans;
mod projection_write;
mod quota;
mod registry;
mod store;

pub use changes::{LinkChangePublisher, follow_link_changes};
pub use connection::{RedisConfig, RedisConnection};
pub use directory::RedisDirectory;
pub use history::RedisHistory;
pub use idempotency::RedisIdempotency;
pub use keys::RedisKeyStore;
pub use link_cache::{CachedReadStore, LinkCacheOptions};
pub use orphans::RedisOrphanVisits;
pub use quota::RedisClickQuota;
pub use registry::RedisCodeRegistry;
pub use store::{READ_LAYOUT, RedisReadStore};

#[cfg(feature = "testing")]
pub mod testing;

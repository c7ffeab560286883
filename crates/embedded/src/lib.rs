//! The embedded default: everything Kurz stores, in two redb files, with no server to run.
//!
//! - `events.redb`: the event log (the source of truth) and the write-side state beside it: code claims,
//!   sequence leases, click quotas. Never derived, never deleted.
//! - `store.redb`: the read models. Derived from the log: delete it and the projector rebuilds it.
//! - `keys.redb`: API keys (digests, owners, roles). Never derived, never deleted.
//!
//! Each file has one writer thread that commits in groups: it takes every queued write, applies them
//! in one transaction and answers all callers after one fsync, so durability costs one disk flush per
//! group rather than per request.

mod claims;
mod group_commit;
mod idempotency;
mod keys;
mod log;
mod rows;
mod small_db;
mod store;

pub use idempotency::EmbeddedIdempotency;
pub use keys::EmbeddedKeyStore;
pub use log::{EmbeddedLog, LogOptions};
pub use store::EmbeddedStore;

/// Why an embedded file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open {path}: {source}")]
    Database { path: String, source: redb::DatabaseError },
    #[error("cannot prepare {path}: {source}")]
    Setup { path: String, source: redb::Error },
    #[error(
        "{path} was created with {stored} partitions, configured {configured}; the partition count of a log cannot change"
    )]
    Partitions { path: String, stored: u32, configured: u32 },
}

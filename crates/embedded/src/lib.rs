//! The embedded default: everything Kurz stores, in two redb files, with no server to run.
//!
//! - `events.redb`: the event log (the source of truth) and the write-side state beside it: code claims,
//!   sequence leases, click quotas. Never derived, never deleted.
//! - `store.redb`: the read models. Derived from the log: delete it and the projector rebuilds it.
//! - `keys.redb`: API keys (digests, owners, roles). Never derived, never deleted.
//! - `directory.redb`, `history.redb`: the link directory (lists and searches) and link
//!   histories, each a projection with its own checkpoints. Derived, like `store.redb`.
//!
//! Each file has one writer thread that commits in groups: it takes every queued write, applies them
//! in one transaction and answers all callers after one fsync, so durability costs one disk flush per
//! group rather than per request.

mod claims;
mod directory;
mod group_commit;
mod history;
mod idempotency;
mod keys;
mod log;
mod projection_file;
mod rows;
mod small_db;
mod store;

pub use directory::EmbeddedDirectory;
pub use history::EmbeddedHistory;
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

/// The derived files of a data directory: the read store, the link directory, link histories.
#[derive(Debug, Clone)]
pub struct ReadModelFiles {
    pub store: std::sync::Arc<EmbeddedStore>,
    pub directory: std::sync::Arc<EmbeddedDirectory>,
    pub history: std::sync::Arc<EmbeddedHistory>,
}

impl ReadModelFiles {
    const NAMES: [&str; 3] = ["store.redb", "directory.redb", "history.redb"];

    pub fn open(data_dir: &std::path::Path) -> Result<Self, OpenError> {
        Ok(Self {
            store: std::sync::Arc::new(EmbeddedStore::open(&data_dir.join(Self::NAMES[0]))?),
            directory: std::sync::Arc::new(EmbeddedDirectory::open(&data_dir.join(Self::NAMES[1]))?),
            history: std::sync::Arc::new(EmbeddedHistory::open(&data_dir.join(Self::NAMES[2]))?),
        })
    }

    /// Deletes the files, for a rebuild from offset 0 (the log and the keys stay).
    pub fn remove(data_dir: &std::path::Path) -> std::io::Result<()> {
        for name in Self::NAMES {
            match std::fs::remove_file(data_dir.join(name)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// The read models besides the read store.
    pub fn projections(&self) -> Vec<std::sync::Arc<dyn kurz_ports::Projection>> {
        vec![self.directory.clone(), self.history.clone()]
    }
}

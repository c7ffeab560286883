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
mod orphans;
mod page_cache;
mod projection_file;
mod reopen;
mod rows;
mod small_db;
mod store;

pub use directory::EmbeddedDirectory;
pub use history::EmbeddedHistory;
pub use idempotency::EmbeddedIdempotency;
pub use keys::EmbeddedKeyStore;
pub use log::{EmbeddedLog, LogOptions};
pub use orphans::EmbeddedOrphanVisits;
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

impl OpenError {
    /// redb found the file damaged (truncated, corrupt) or in a format it cannot read.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            Self::Database {
                source: redb::DatabaseError::Storage(redb::StorageError::Corrupted(_))
                    | redb::DatabaseError::UpgradeRequired(_),
                ..
            }
        )
    }
}

/// Opens a derived file; one redb finds damaged is moved aside to `<name>.damaged` (replacing an
/// older one) and a new, empty one is made, which the projector fills from the log.
fn open_derived<T>(
    path: &std::path::Path,
    open: impl Fn(&std::path::Path) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    open_or_set_aside(path, open, "a read model is damaged; it was moved aside and is rebuilt from the event log")
}

/// Opens a file that may be started afresh; one redb finds damaged is moved aside to
/// `<name>.damaged` (replacing an older one), `consequence` is logged, and a new one is made.
fn open_or_set_aside<T>(
    path: &std::path::Path,
    open: impl Fn(&std::path::Path) -> Result<T, OpenError>,
    consequence: &'static str,
) -> Result<T, OpenError> {
    match open(path) {
        Err(error) if error.is_damaged() => {
            let aside = path.with_extension("redb.damaged");
            std::fs::rename(path, &aside).map_err(|source| OpenError::Database {
                path: path.display().to_string(),
                source: redb::DatabaseError::Storage(redb::StorageError::Io(source)),
            })?;
            tracing::error!(file = %path.display(), moved_to = %aside.display(), %error, "{consequence}");
            open(path)
        }
        opened => opened,
    }
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

    /// Opens the files; a damaged one is moved aside and rebuilt (they are derived from the log).
    pub fn open(data_dir: &std::path::Path) -> Result<Self, OpenError> {
        Self::open_with_bot_rules(data_dir, &std::sync::Arc::default())
    }

    /// As [`Self::open`], the store telling bots apart with the operator's markers too.
    pub fn open_with_bot_rules(
        data_dir: &std::path::Path,
        bots: &std::sync::Arc<kurz_domain::analytics::BotRules>,
    ) -> Result<Self, OpenError> {
        let open_store = |path: &std::path::Path| EmbeddedStore::open_with_bot_rules(path, bots.clone());
        Ok(Self {
            store: std::sync::Arc::new(open_derived(&data_dir.join(Self::NAMES[0]), open_store)?),
            directory: std::sync::Arc::new(open_derived(&data_dir.join(Self::NAMES[1]), EmbeddedDirectory::open)?),
            history: std::sync::Arc::new(open_derived(&data_dir.join(Self::NAMES[2]), EmbeddedHistory::open)?),
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

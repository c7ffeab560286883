//! A redb file that can be closed and opened again. After one I/O error (a full disk, say) redb
//! answers every later write with `PreviousIo` until the database is reopened; Kurz reopens it by
//! itself, at most once a second, so it recovers when the space comes back. A transaction that
//! failed was never acknowledged, and reopening recovers the file to its last commit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

/// How often a failing file is opened again.
const REOPEN_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// How long a reopen waits for reads in flight to let go of the old handle.
const READERS_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Reopenable {
    path: PathBuf,
    cache_bytes: usize,
    /// `None` while the file is being (or could not be) opened again.
    current: RwLock<Option<Arc<Database>>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl Reopenable {
    /// `db` was opened with [`crate::page_cache::create`] and `cache_bytes`: a reopen keeps its budget.
    pub(crate) fn new(db: Database, path: &Path, cache_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            cache_bytes,
            current: RwLock::new(Some(Arc::new(db))),
            last_attempt: Mutex::new(None),
        })
    }

    /// The open database, or `DatabaseClosed` while it cannot be had.
    pub(crate) fn get(&self) -> Result<Arc<Database>, redb::Error> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| redb::StorageError::DatabaseClosed.into())
    }

    /// Whether `error` leaves redb refusing writes until the file is opened again.
    pub(crate) fn needs_reopen(error: &redb::Error) -> bool {
        matches!(error, redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed)
    }

    /// Closes the file and opens it again, unless that was tried less than a second ago. Blocks
    /// (briefly) until reads in flight let go of the old handle: call it off the async threads.
    /// `true` when a freshly opened database is in place.
    pub(crate) fn reopen(&self) -> bool {
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < REOPEN_AT_MOST_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let taken = self.current.write().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut old) = taken {
            // redb holds a lock on the file: the old handle must be gone before a new one opens.
            let deadline = Instant::now() + READERS_GRACE;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(shared) if Instant::now() < deadline => {
                        old = shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(shared) => {
                        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(shared);
                        return false;
                    }
                }
            }
        }
        match crate::page_cache::create(&self.path, self.cache_bytes) {
            Ok(db) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
                metrics::counter!("embedded_reopens_total").increment(1);
                tracing::warn!(file = %self.path.display(), "reopened after an I/O error");
                true
            }
            Err(error) => {
                tracing::error!(file = %self.path.display(), %error, "cannot reopen after an I/O error; retrying");
                false
            }
        }
    }
}

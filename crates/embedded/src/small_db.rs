//! A small redb file of rows that change rarely (API keys, idempotency keys): each write is its
//! own durable transaction, run on the blocking pool.

use std::path::Path;
use std::sync::Arc;

use kurz_ports::InfraError;
use kurz_ports::rows::RowError;
use redb::{Database, WriteTransaction};

use crate::OpenError;
use crate::reopen::Reopenable;

#[derive(Debug, Clone)]
pub(crate) struct SmallDb {
    db: Arc<Reopenable>,
    /// What the file holds, for errors (`embedded key store`).
    context: &'static str,
}

/// Why work on a small file failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Storage(#[from] redb::Error),
    #[error(transparent)]
    Row(#[from] RowError),
}

macro_rules! storage_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Self::Storage(e.into())
            }
        }
    )+};
}
storage_errors!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

impl SmallDb {
    /// Opens (or creates) the file, making its tables in `setup`.
    pub(crate) fn open(
        path: &Path,
        context: &'static str,
        cache_bytes: usize,
        setup: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<Self, OpenError> {
        let name = path.display().to_string();
        let db = crate::page_cache::create(path, cache_bytes)
            .map_err(|source| OpenError::Database { path: name.clone(), source })?;
        let prepare = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            setup(&txn)?;
            txn.commit()?;
            Ok(())
        };
        prepare().map_err(|source| OpenError::Setup { path: name, source })?;
        Ok(Self { db: Reopenable::new(db, path, cache_bytes), context })
    }

    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, InfraError> {
        let (file, context) = (Arc::clone(&self.db), self.context);
        tokio::task::spawn_blocking(move || {
            let worked = file.get().map_err(Failure::from).and_then(|db| work(&db));
            // After an I/O error redb refuses writes until the file is opened again.
            if let Err(Failure::Storage(error)) = &worked
                && Reopenable::needs_reopen(error)
            {
                file.reopen();
            }
            worked
        })
        .await
        .map_err(|e| InfraError::new(context, e))?
        .map_err(|e| InfraError::new(context, e))
    }
}

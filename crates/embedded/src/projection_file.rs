//! A redb file that holds one projection: its rows, its checkpoints and the layout they were
//! written in. Derived from the log, so a file of another layout is emptied and folded again.

use std::path::Path;

use kurz_ports::{InfraError, LinkEvents, LogRecord, Unapplied};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use crate::OpenError;
use crate::small_db::{Failure, SmallDb};

const CHECKPOINTS: TableDefinition<u32, u64> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";

#[derive(Debug, Clone)]
pub(crate) struct ProjectionFile {
    pub(crate) db: SmallDb,
    layout: Layout,
}

/// The layout of a projection's file: its version, and how to make its tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) format: u64,
    pub(crate) create_tables: fn(&WriteTransaction) -> Result<(), redb::TableError>,
}

impl ProjectionFile {
    pub(crate) fn open(
        path: &Path,
        context: &'static str,
        layout: Layout,
        cache_bytes: usize,
    ) -> Result<Self, OpenError> {
        let db = SmallDb::open(path, context, cache_bytes, |txn| {
            let stored = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| v.value());
            if stored.is_some_and(|stored| stored != layout.format) {
                let current = layout.format;
                tracing::warn!(?stored, current, file = context, "projection has another layout; folding it again");
                empty(txn, layout)
            } else {
                prepare(txn, layout)
            }
        })?;
        Ok(Self { db, layout })
    }

    pub(crate) async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.db
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(CHECKPOINTS)?;
                (0..partitions).map(|p| Ok(table.get(p)?.map_or(0, |v| v.value()))).collect()
            })
            .await
    }

    /// Applies a batch in one durable transaction (see [`apply_link_events`]).
    pub(crate) async fn apply(
        &self,
        records: &[LogRecord],
        apply: impl FnOnce(&WriteTransaction, &[LogRecord]) -> Result<(), Failure> + Send + 'static,
    ) -> Result<(), InfraError> {
        let batch = LinkEvents::of(records);
        if batch.is_empty() {
            return Ok(());
        }
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                apply_link_events(&txn, batch, |events| apply(&txn, events))?;
                txn.commit()?;
                Ok(())
            })
            .await
    }

    pub(crate) async fn clear(&self) -> Result<(), InfraError> {
        let layout = self.layout;
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                empty(&txn, layout)?;
                txn.commit()?;
                Ok(())
            })
            .await
    }
}

/// Drops every table, then makes them again, empty.
fn empty(txn: &WriteTransaction, layout: Layout) -> Result<(), redb::Error> {
    let tables: Vec<_> = txn.list_tables()?.collect();
    for table in tables {
        tracing::debug!(table = table.name(), "dropping");
        txn.delete_table(table)?;
    }
    prepare(txn, layout)
}

fn prepare(txn: &WriteTransaction, layout: Layout) -> Result<(), redb::Error> {
    txn.open_table(META)?.insert(FORMAT_KEY, layout.format)?;
    txn.open_table(CHECKPOINTS)?;
    (layout.create_tables)(txn)?;
    Ok(())
}

/// Folds a batch's link events in one transaction: `apply` gets the events not applied yet, then
/// the checkpoints move.
fn apply_link_events(
    txn: &WriteTransaction,
    batch: LinkEvents,
    apply: impl FnOnce(&[LogRecord]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let Unapplied { events, moved } = {
        let table = txn.open_table(CHECKPOINTS)?;
        batch.unapplied(|partition| Ok::<_, Failure>(table.get(partition)?.map_or(0, |v| v.value())))?
    };
    apply(&events)?;
    write_checkpoints(txn, moved)
}

fn write_checkpoints(txn: &WriteTransaction, checkpoints: impl IntoIterator<Item = (u32, u64)>) -> Result<(), Failure> {
    let mut table = txn.open_table(CHECKPOINTS)?;
    for (partition, next) in checkpoints {
        table.insert(partition, next)?;
    }
    Ok(())
}

//! The embedded read store (`store.redb`): derived from the log, safe to delete.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::analytics::BotRules;
use kurz_domain::stats::DayStats;
use kurz_domain::{Code, Day, DayRange, Link};
use kurz_ports::fold::{DayIncrement, Folding, LinkRow, fold_classified};
use kurz_ports::{InfraError, LogRecord, ReadStore};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::OpenError;
use crate::group_commit::{Answer, GroupCommitter, Priority, Reply, Writes, reply_with};
use crate::page_cache;
use crate::reopen::Reopenable;

const CONTEXT: &str = "embedded store";
/// [`LinkRow`]s by code. Codes are keyed as bytes: redb checks a `&str` key's UTF-8 on every
/// comparison, which cost a tenth of a projection's time.
const LINKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("links");
/// One row per link and day with clicks: a stats read costs one row per day in range.
const DAYS: TableDefinition<(&[u8], i32), &[u8]> = TableDefinition::new("click_days");
const CHECKPOINTS: TableDefinition<u32, u64> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";
/// The layout of the rows above. A store of another layout is dropped and rebuilt from the log: it
/// holds nothing the log does not.
/// 7: day rows keep people's and bots' clicks apart. 8: and their clicks by hour. 9: and browser
/// versions.
const FORMAT: u64 = 9;

#[derive(Debug)]
pub struct EmbeddedStore {
    writer: GroupCommitter<StoreOp>,
    db: Arc<Reopenable>,
}

enum StoreOp {
    /// Shared with the caller, who frees the records once the write is done (see [`EmbeddedStore::apply`]).
    Apply {
        records: Arc<Vec<LogRecord>>,
        answer: Answer<Vec<Code>>,
    },
    ApplyLinkEvents {
        records: Vec<LogRecord>,
        answer: Answer<Vec<Code>>,
    },
}

/// A link row as stored ([`LinkRow`], postcard).
#[derive(Debug, Deserialize)]
struct StoredRow {
    link: Link,
    last_offset: u64,
}

/// The same layout, serialised from a borrowed row.
#[derive(Serialize)]
struct StoredRowRef<'a> {
    link: &'a Link,
    last_offset: u64,
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with_bot_rules(path, Arc::default())
    }

    /// Tells bots apart with the operator's markers too, besides the maintained lists.
    pub fn open_with_bot_rules(path: &Path, bots: Arc<BotRules>) -> Result<Self, OpenError> {
        let name = path.display().to_string();
        let db = page_cache::create(path, page_cache::STORE)
            .map_err(|source| OpenError::Database { path: name.clone(), source })?;
        create_tables(&db).map_err(|source| OpenError::Setup { path: name, source })?;
        let db = Reopenable::new(db, path, page_cache::STORE);
        let writer =
            GroupCommitter::start("kurz-store-writer", Arc::clone(&db), StoreWrites { bots }, Priority::Background);
        Ok(Self { writer, db })
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreFailure> + Send + 'static,
    ) -> Result<T, InfraError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.get().and_then(|db| db.begin_read().map_err(redb::Error::from)).inspect_err(|error| {
                if Reopenable::needs_reopen(error) {
                    db.reopen();
                }
            });
            txn.map_err(StoreFailure::from).and_then(|txn| query(&txn))
        })
        .await
        .map_err(|e| InfraError::new("reading the embedded store", e))?
        .map_err(|e| InfraError::new("reading the embedded store", e))
    }
}

fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    let stored = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| v.value());
    if stored.is_some_and(|format| format != FORMAT) || (stored.is_none() && holds_rows(&txn)?) {
        tracing::warn!(?stored, current = FORMAT, "read store has another layout; rebuilding it from the event log");
        txn.delete_table(LINKS)?;
        txn.delete_table(DAYS)?;
        txn.delete_table(CHECKPOINTS)?;
    }
    txn.open_table(LINKS)?;
    txn.open_table(DAYS)?;
    txn.open_table(CHECKPOINTS)?;
    txn.open_table(META)?.insert(FORMAT_KEY, FORMAT)?;
    txn.commit()?;
    Ok(())
}

/// Whether a store without a format mark (the first layout) has anything in it.
fn holds_rows(txn: &WriteTransaction) -> Result<bool, redb::Error> {
    Ok(txn.open_table(CHECKPOINTS)?.first()?.is_some())
}

/// Storage errors and rows that no longer deserialise.
#[derive(Debug, thiserror::Error)]
enum StoreFailure {
    #[error(transparent)]
    Storage(#[from] redb::Error),
    #[error("stored row does not deserialise: {0}")]
    Row(#[from] postcard::Error),
}

macro_rules! storage_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for StoreFailure {
            fn from(e: $t) -> Self {
                Self::Storage(e.into())
            }
        }
    )+};
}
storage_errors!(redb::TransactionError, redb::TableError, redb::StorageError);

struct StoreWrites {
    bots: Arc<BotRules>,
}

/// Every projection reads and writes all three.
struct StoreTables<'txn> {
    checkpoints: Table<'txn, u32, u64>,
    links: Table<'txn, &'static [u8], &'static [u8]>,
    days: Table<'txn, (&'static [u8], i32), &'static [u8]>,
}

impl Writes for StoreWrites {
    type Op = StoreOp;
    type Tables<'txn> = StoreTables<'txn>;

    /// Projections are replayed from the log after a crash (the checkpoint commits with them).
    fn needs_fsync(_: &StoreOp) -> bool {
        false
    }

    fn open_tables(txn: &WriteTransaction) -> Result<StoreTables<'_>, redb::Error> {
        Ok(StoreTables {
            checkpoints: txn.open_table(CHECKPOINTS)?,
            links: txn.open_table(LINKS)?,
            days: txn.open_table(DAYS)?,
        })
    }

    fn apply(&mut self, tables: &mut StoreTables<'_>, op: StoreOp) -> Result<Reply, (redb::Error, Reply)> {
        let (projected, answer) = match op {
            StoreOp::Apply { records, answer } => (project(tables, &records, Folding::Projection, &self.bots), answer),
            StoreOp::ApplyLinkEvents { records, answer } => {
                (project(tables, &records, Folding::Commanded, &self.bots), answer)
            }
        };
        match projected {
            Ok(changed) => Ok(reply_with(CONTEXT, answer, changed)),
            Err(StoreFailure::Storage(e)) => Err((e, reply_with(CONTEXT, answer, Vec::new()))),
            // A row that does not deserialise would fail every retry: stop the projector loudly.
            Err(e @ StoreFailure::Row(_)) => Ok(Box::new(move |_| {
                let _ = answer.send(Err(InfraError::new(CONTEXT, e)));
            })),
        }
    }

    fn reject(op: StoreOp) -> Reply {
        match op {
            StoreOp::Apply { answer, .. } | StoreOp::ApplyLinkEvents { answer, .. } => {
                reply_with(CONTEXT, answer, Vec::new())
            }
        }
    }

    fn rolled_back(&mut self, _: &Database) {}
}

/// Folds records into the read models ([`fold`]) and writes the outcome in the group's transaction.
fn project(
    tables: &mut StoreTables<'_>,
    records: &[LogRecord],
    folding: Folding,
    bots: &Arc<BotRules>,
) -> Result<Vec<Code>, StoreFailure> {
    let StoreTables { checkpoints, links, days } = tables;
    let folded = fold_classified(
        records,
        folding,
        bots,
        |partition| Ok::<_, StoreFailure>(checkpoints.get(partition)?.map_or(0, |v| v.value())),
        |code| load_row(links, code),
    )?;
    // Rows are written in key order: each insert then lands in or beside the B-tree leaf the
    // previous one dirtied, instead of copying a random leaf per row (the fold's order is a hash
    // order). A link's days come together, so links are sorted, then each link's few days.
    let mut row = Vec::new();
    let mut link_order: Vec<&(Code, LinkRow)> = folded.links.iter().collect();
    link_order.sort_unstable_by(|(a, _), (b, _)| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    for (code, link) in link_order {
        row.clear();
        row = postcard::to_extend(&StoredRowRef { link: &link.link, last_offset: link.last_offset }, row)?;
        links.insert(code.as_str().as_bytes(), row.as_slice())?;
    }
    for (partition, offset) in &folded.checkpoints {
        checkpoints.insert(*partition, *offset)?;
    }
    let mut link_days: Vec<&[DayIncrement]> = folded.days.chunk_by(|a, b| a.code == b.code).collect();
    link_days.sort_unstable_by(|a, b| a[0].code.as_str().as_bytes().cmp(b[0].code.as_str().as_bytes()));
    let mut day_order: Vec<&DayIncrement> = Vec::new();
    for increments in link_days {
        day_order.clear();
        day_order.extend(increments);
        day_order.sort_unstable_by_key(|increment| increment.day);
        for increment in &day_order {
            let key = (increment.code.as_str().as_bytes(), increment.day.days_since_epoch());
            let mut stats = match days.get(key)? {
                Some(stored) => postcard::from_bytes::<DayStats>(stored.value())?,
                None => DayStats::default(),
            };
            stats.add(&increment.stats);
            row.clear();
            row = postcard::to_extend(&stats, row)?;
            days.insert(key, row.as_slice())?;
        }
    }
    Ok(folded.changed)
}

fn load_row(links: &Table<&[u8], &[u8]>, code: &Code) -> Result<Option<LinkRow>, StoreFailure> {
    let row =
        links.get(code.as_str().as_bytes())?.map(|row| postcard::from_bytes::<StoredRow>(row.value())).transpose()?;
    Ok(row.map(|row| LinkRow { link: row.link, last_offset: row.last_offset }))
}

#[async_trait]
impl ReadStore for EmbeddedStore {
    /// A point lookup takes microseconds in cached pages: done in place, because handing it to the
    /// blocking pool would cost more than the lookup on every cache miss.
    async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError> {
        let lookup = || -> Result<Option<Link>, StoreFailure> {
            let txn = self.db.get()?.begin_read()?;
            let links = txn.open_table(LINKS)?;
            let row: Option<StoredRow> =
                links.get(code.as_str().as_bytes())?.map(|row| postcard::from_bytes(row.value())).transpose()?;
            Ok(row.map(|row| row.link))
        };
        lookup().map_err(|e| InfraError::new("reading the embedded store", e))
    }

    async fn click_days(&self, code: &Code, range: DayRange) -> Result<Vec<(Day, DayStats)>, InfraError> {
        let mut rows = self.click_days_of(std::slice::from_ref(code), range).await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// In one read transaction, on one blocking thread: an overview's chunk of links costs one
    /// hand-off, not one per link.
    async fn click_days_of(&self, codes: &[Code], range: DayRange) -> Result<Vec<Vec<(Day, DayStats)>>, InfraError> {
        if range.is_empty() {
            return Ok(vec![Vec::new(); codes.len()]);
        }
        let codes = codes.to_vec();
        self.read(move |txn| {
            let days = txn.open_table(DAYS)?;
            let from = range.from.map_or(i32::MIN, Day::days_since_epoch);
            let to = range.to.map_or(i32::MAX, Day::days_since_epoch);
            codes
                .iter()
                .map(|code| {
                    days.range((code.as_str().as_bytes(), from)..=(code.as_str().as_bytes(), to))?
                        .map(|entry| {
                            let (key, row) = entry?;
                            let day = Day::from_days_since_epoch(key.value().1);
                            Ok((day, postcard::from_bytes::<DayStats>(row.value())?))
                        })
                        .collect::<Result<Vec<_>, StoreFailure>>()
                })
                .collect()
        })
        .await
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.read(move |txn| {
            let checkpoints = txn.open_table(CHECKPOINTS)?;
            (0..partitions).map(|p| Ok(checkpoints.get(p)?.map_or(0, |v| v.value()))).collect()
        })
        .await
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let records = Arc::new(records);
        let applied = self.writer.ask(CONTEXT, |answer| StoreOp::Apply { records: Arc::clone(&records), answer }).await;
        // The writer let go of the batch before answering. Freeing a batch of decoded records was 9%
        // of the writer's instructions: done here instead, off the one writer thread that every
        // projection and command waits on (and off the async workers).
        tokio::task::spawn_blocking(move || drop(records));
        applied
    }

    async fn apply_link_events(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.writer.ask(CONTEXT, |answer| StoreOp::ApplyLinkEvents { records, answer }).await
    }
}

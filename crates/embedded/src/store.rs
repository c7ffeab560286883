//! The embedded read store (`store.redb`): derived from the log, safe to delete.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::analytics::BotRules;
use kurz_domain::stats::DayStats;
use kurz_domain::{Code, Day, DayRange, Link};
use kurz_ports::fold::{DayIncrement, Fold, Folded, Folding, LinkRow};
use kurz_ports::{Chunk, Chunks, ChunksAbandoned, ChunksWritten, InfraError, LogRecord, ReadStore};
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
/// One row per link and day with clicks: a stats read costs one row per day in range. Keyed by
/// [`day_key`].
const DAYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("click_days");
const CHECKPOINTS: TableDefinition<u32, u64> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";
/// The layout of the rows above. A store of another layout is dropped and rebuilt from the log: it
/// holds nothing the log does not.
/// 7: day rows keep people's and bots' clicks apart. 8: and their clicks by hour. 9: and browser
/// versions. 10: day rows keyed by bytes ([`day_key`]).
const FORMAT: u64 = 10;

#[derive(Debug)]
pub struct EmbeddedStore {
    writer: GroupCommitter<StoreOp>,
    db: Arc<Reopenable>,
    /// Where a write of chunks ends ([`MAX_ROWS_PER_WRITE`] unless told otherwise).
    rows_per_write: usize,
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
    /// Records folded as their chunks arrive, written once the last has; each chunk is handed to
    /// `runtime`'s blocking pool to be freed once folded.
    ApplyChunks {
        chunks: Chunks,
        runtime: tokio::runtime::Handle,
        max_rows: usize,
        answer: Answer<ChunksWritten>,
    },
}

/// The rows (links, and links' days with clicks) at which the store ends a write of chunks: the
/// fold's memory grows with its rows, not its records (about 800 bytes a row: 200,000 hold about
/// 160 MB), while larger writes rewrite each stats row once for more clicks. Checked after each
/// chunk, so a write may hold one chunk's rows more.
const MAX_ROWS_PER_WRITE: usize = 200_000;

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
        Ok(Self { writer, db, rows_per_write: MAX_ROWS_PER_WRITE })
    }

    /// Ends each write of chunks once its fold holds `rows` rows (tests make many small writes).
    #[must_use]
    pub fn with_rows_per_write(mut self, rows: usize) -> Self {
        self.rows_per_write = rows.max(1);
        self
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
    #[error("a stored day row's key is not one this layout writes")]
    Key,
    #[error(transparent)]
    Abandoned(#[from] ChunksAbandoned),
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
    days: Table<'txn, &'static [u8], &'static [u8]>,
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
        match op {
            StoreOp::Apply { records, answer } => {
                answer_with(project(tables, &records, Folding::Projection, &self.bots), answer)
            }
            StoreOp::ApplyLinkEvents { records, answer } => {
                answer_with(project(tables, &records, Folding::Commanded, &self.bots), answer)
            }
            StoreOp::ApplyChunks { chunks, runtime, max_rows, answer } => {
                answer_with(project_chunks(tables, chunks, &runtime, &self.bots, max_rows), answer)
            }
        }
    }

    fn reject(op: StoreOp) -> Reply {
        match op {
            StoreOp::Apply { answer, .. } | StoreOp::ApplyLinkEvents { answer, .. } => {
                reply_with(CONTEXT, answer, Vec::new())
            }
            StoreOp::ApplyChunks { answer, .. } => reply_with(CONTEXT, answer, ChunksWritten::default()),
        }
    }

    fn rolled_back(&mut self, _: &Database) {}
}

/// The reply to a projection: its outcome once the group commits, or its failure.
fn answer_with<T: Default + Send + 'static>(
    projected: Result<T, StoreFailure>,
    answer: Answer<T>,
) -> Result<Reply, (redb::Error, Reply)> {
    match projected {
        Ok(outcome) => Ok(reply_with(CONTEXT, answer, outcome)),
        Err(StoreFailure::Storage(e)) => Err((e, reply_with(CONTEXT, answer, T::default()))),
        // A row that does not deserialise would fail every retry: stop the projector loudly.
        // An abandoned stream wrote nothing: its sender hears why.
        Err(e @ (StoreFailure::Row(_) | StoreFailure::Key | StoreFailure::Abandoned(_))) => Ok(Box::new(move |_| {
            let _ = answer.send(Err(InfraError::new(CONTEXT, e)));
        })),
    }
}

/// Folds records into the read models ([`Fold`]) and writes the outcome in the group's transaction.
fn project(
    tables: &mut StoreTables<'_>,
    records: &[LogRecord],
    folding: Folding,
    bots: &Arc<BotRules>,
) -> Result<Vec<Code>, StoreFailure> {
    let mut fold = Fold::new(folding, bots);
    fold_in(&mut fold, tables, records)?;
    write_folded(tables, fold.finish())
}

/// As [`project`], for records that arrive in chunks: each is folded and let go before the next.
/// Once the fold holds `max_rows` rows, the write ends there (the chunks after it are the next
/// write's).
fn project_chunks(
    tables: &mut StoreTables<'_>,
    mut chunks: Chunks,
    runtime: &tokio::runtime::Handle,
    bots: &Arc<BotRules>,
    max_rows: usize,
) -> Result<ChunksWritten, StoreFailure> {
    let mut fold = Fold::new(Folding::Projection, bots);
    let mut taken = 0;
    let ended_after = loop {
        if fold.rows() >= max_rows {
            break Some(taken);
        }
        taken += 1;
        match chunks.blocking_recv() {
            Some(Chunk::Records(records)) => {
                fold_in(&mut fold, tables, &records)?;
                // Freed off the one writer thread that every projection and command waits on.
                runtime.spawn_blocking(move || drop(records));
            }
            Some(Chunk::Encoded(records)) => {
                let StoreTables { checkpoints, links, .. } = tables;
                let checkpoint =
                    |partition| Ok::<_, StoreFailure>(checkpoints.get(partition)?.map_or(0, |v| v.value()));
                fold.add_encoded(&records, checkpoint, |code| load_row(links, code))?;
                runtime.spawn_blocking(move || drop(records));
            }
            Some(Chunk::End) => break None,
            None => return Err(ChunksAbandoned.into()),
        }
    };
    // Chunks sent after the last one taken are dropped unread; their sender hears the write ended.
    drop(chunks);
    Ok(ChunksWritten { changed: write_folded(tables, fold.finish())?, ended_after })
}

/// Adds records to a fold, with the checkpoints and link rows the write's transaction holds.
fn fold_in(fold: &mut Fold, tables: &StoreTables<'_>, records: &[LogRecord]) -> Result<(), StoreFailure> {
    let StoreTables { checkpoints, links, .. } = tables;
    let checkpoint = |partition| Ok::<_, StoreFailure>(checkpoints.get(partition)?.map_or(0, |v| v.value()));
    fold.add(records, checkpoint, |code| load_row(links, code))
}

/// Writes a fold's link rows, checkpoints and day rows.
fn write_folded(tables: &mut StoreTables<'_>, folded: Folded) -> Result<Vec<Code>, StoreFailure> {
    let StoreTables { checkpoints, links, days } = tables;
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
    let (mut stored, mut key) = (Vec::new(), Vec::new());
    for (code, mut increments) in links_in_key_order(folded.days) {
        increments.sort_unstable_by_key(|increment| increment.day);
        let (Some(first), Some(last)) = (increments.first(), increments.last()) else { continue };
        // All of the link's deltas read at once, their cache misses overlapping (`DayDelta::warm`).
        std::hint::black_box(increments.iter().fold(0, |warm, increment| warm ^ increment.stats.warm()));
        // The link's stored rows in the batch's days, in one walk of the tree rather than a lookup
        // per day: a rebuild's batch holds days of most links, and most of those rows are new.
        stored.clear();
        for entry in days.range(day_key(&code, first.day).as_slice()..=day_key(&code, last.day).as_slice())? {
            let (stored_key, row) = entry?;
            let day = day_of(stored_key.value()).ok_or(StoreFailure::Key)?;
            if increments.binary_search_by_key(&day, |increment| increment.day).is_ok() {
                stored.push((day, postcard::from_bytes::<DayStats>(row.value())?));
            }
        }
        // Both in day order. Stored rows are large: they are updated where they lie.
        let mut stored_days = stored.iter_mut().peekable();
        for DayIncrement { day, stats: delta, .. } in increments {
            row.clear();
            match stored_days.next_if(|(stored_day, _)| *stored_day == day) {
                Some((_, stats)) => {
                    stats.add(*delta);
                    stats.write_row(&mut row);
                }
                None => delta.write_new_row(&mut row),
            }
            key.clear();
            write_day_key(&mut key, &code, day);
            days.insert(key.as_slice(), row.as_slice())?;
        }
    }
    Ok(folded.changed)
}

/// A fold's increments by link, links in the order of their day keys. A fold gives a link's
/// increments one after another, so a link's run is found by a walk, and only the runs are sorted.
fn links_in_key_order(increments: Vec<DayIncrement>) -> Vec<(Code, Vec<DayIncrement>)> {
    let mut links: Vec<(Code, Vec<DayIncrement>)> = Vec::new();
    for increment in increments {
        match links.last_mut() {
            Some((code, run)) if *code == increment.code => run.push(increment),
            _ => links.push((increment.code.clone(), vec![increment])),
        }
    }
    links.sort_unstable_by(|(a, _), (b, _)| code_order(a.as_str(), b.as_str()));
    links
}

fn load_row(links: &Table<&[u8], &[u8]>, code: &Code) -> Result<Option<LinkRow>, StoreFailure> {
    let row =
        links.get(code.as_str().as_bytes())?.map(|row| postcard::from_bytes::<StoredRow>(row.value())).transpose()?;
    Ok(row.map(|row| LinkRow { link: row.link, last_offset: row.last_offset }))
}

/// A day row's key: the code, a byte no code holds, then the day (sign bit flipped, big-endian), so
/// that keys sort by code, then day, as raw bytes (a tuple key cost a decode per comparison), and a
/// code's rows never interleave with a longer code's that starts alike.
fn day_key(code: &Code, day: Day) -> Vec<u8> {
    let mut key = Vec::with_capacity(code.as_str().len() + 5);
    write_day_key(&mut key, code, day);
    key
}

fn write_day_key(key: &mut Vec<u8>, code: &Code, day: Day) {
    key.extend_from_slice(code.as_str().as_bytes());
    key.push(DAY_KEY_SEPARATOR);
    key.extend_from_slice(&sortable_day(day.days_since_epoch()).to_be_bytes());
}

/// The order of codes in day keys: a code sorts after the longer codes it begins.
fn code_order(a: &str, b: &str) -> std::cmp::Ordering {
    // As the keys' bytes compare, without making them: the separator is greater than any byte of
    // a code, so of two codes that agree as far as the shorter goes, the shorter sorts after.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.len().min(b.len());
    a[..common].cmp(&b[..common]).then_with(|| b.len().cmp(&a.len()))
}

/// Greater than every byte of a code (codes are ASCII).
const DAY_KEY_SEPARATOR: u8 = 0xff;

fn sortable_day(day: i32) -> u32 {
    day.cast_unsigned() ^ 0x8000_0000
}

/// The day of a key [`day_key`] wrote.
fn day_of(key: &[u8]) -> Option<Day> {
    let (head, day) = key.split_last_chunk::<4>()?;
    (head.last() == Some(&DAY_KEY_SEPARATOR))
        .then(|| Day::from_days_since_epoch((u32::from_be_bytes(*day) ^ 0x8000_0000).cast_signed()))
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
            let from = range.from.unwrap_or(Day::from_days_since_epoch(i32::MIN));
            let to = range.to.unwrap_or(Day::from_days_since_epoch(i32::MAX));
            codes
                .iter()
                .map(|code| {
                    days.range(day_key(code, from).as_slice()..=day_key(code, to).as_slice())?
                        .map(|entry| {
                            let (key, row) = entry?;
                            let day = day_of(key.value()).ok_or(StoreFailure::Key)?;
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

    /// Folded on the writer thread as the chunks arrive, in the transaction that writes them: a
    /// rebuild holds a chunk of records at a time, however large its writes.
    async fn apply_chunks(&self, chunks: Chunks) -> Result<ChunksWritten, InfraError> {
        let (runtime, max_rows) = (tokio::runtime::Handle::current(), self.rows_per_write);
        self.writer.ask(CONTEXT, |answer| StoreOp::ApplyChunks { chunks, runtime, max_rows, answer }).await
    }

    /// Its writes of chunks end at a number of rows (see [`MAX_ROWS_PER_WRITE`]).
    fn ends_its_writes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Code {
        Code::parse(text).expect("valid")
    }

    #[test]
    fn day_keys_sort_by_code_then_day_and_a_codes_range_holds_its_rows_alone() {
        let days = [i32::MIN, -1, 0, 1, 20_000, i32::MAX].map(Day::from_days_since_epoch);
        let mut keys: Vec<(Vec<u8>, &str, Day)> = Vec::new();
        for text in ["ab-", "abc", "abcA", "abc_", "abd", "ZZZ"] {
            for day in days {
                keys.push((day_key(&code(text), day), text, day));
            }
        }
        keys.sort();
        let in_key_order: Vec<(&str, Day)> = keys.iter().map(|(_, text, day)| (*text, *day)).collect();
        let mut by_code_then_day = in_key_order.clone();
        by_code_then_day.reverse();
        by_code_then_day.sort_by(|(a, a_day), (b, b_day)| code_order(a, b).then(a_day.cmp(b_day)));
        assert_eq!(in_key_order, by_code_then_day);
        let (from, to) = (day_key(&code("abc"), days[0]), day_key(&code("abc"), days[5]));
        let in_range: Vec<&str> =
            keys.iter().filter(|(key, _, _)| (&from..=&to).contains(&key)).map(|(_, text, _)| *text).collect();
        assert_eq!(in_range, ["abc"; 6]);
        for (key, _, day) in &keys {
            assert_eq!(day_of(key), Some(*day));
        }
    }
}

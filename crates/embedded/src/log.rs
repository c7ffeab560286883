//! The embedded event log and the write-side state beside it (`events.redb`): code claims, sequence
//! leases and click quotas. None of it is derived, so none of it is ever deleted for a rebuild.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::link::MaxClicks;
use kurz_domain::{Code, Event};
use kurz_ports::{
    ClickQuota, CodeRegistry, CreationLog, EncodedRecords, EventLog, InfraError, LogRecord, PartitionRead, Position,
    partition_for,
};
use kurz_schemas::{Catalog, Codec};

use redb::{
    Database, Key, ReadableDatabase, ReadableTable, Table, TableDefinition, TableHandle, Value, WriteTransaction,
};
use tokio::sync::watch;

use crate::OpenError;
use crate::claims::{self, CLAIMED_THROUGH, CLAIMS, ClaimTable, Claims};
use crate::group_commit::{Answer, GroupCommitter, Priority, Reply, Writes, reply_with};
use crate::page_cache;
use crate::reopen::Reopenable;
use crate::rows::{self, EVENT_ROWS, PendingRows, RowTable};

const CONTEXT: &str = "embedded event log";
/// The layout before [`EVENT_ROWS`]: one record per row, keyed by (partition, offset). A log found
/// in it is moved into the current layout when opened.
const RECORD_PER_ROW: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("events");
/// Records moved out of [`RECORD_PER_ROW`] between writes of the rows they fill, so that a large
/// log is not held in memory whole.
const MOVED_PER_WRITE: u64 = 16_384;
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Clicks taken against `max_clicks`: taken before the click's event is appended, so not derivable.
const QUOTAS: TableDefinition<&str, u64> = TableDefinition::new("click_quotas");
const PARTITIONS_KEY: &str = "partitions";
const NEXT_SEQUENCE_KEY: &str = "next_sequence";
/// Bumped by every readiness probe: a write the log takes only when it can take appends.
const PROBE_KEY: &str = "probe";

#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    pub partitions: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self { partitions: 8 }
    }
}

#[derive(Debug)]
pub struct EmbeddedLog {
    writer: GroupCommitter<LogOp>,
    db: Arc<Reopenable>,
    codec: Arc<Codec>,
    partitions: u32,
    ends: watch::Receiver<Vec<u64>>,
}

enum LogOp {
    Append {
        records: Vec<(u32, Vec<u8>)>,
        answer: Answer<Vec<Position>>,
    },
    /// A link's creation: its code's claim and its events in one transaction.
    Create {
        code: Code,
        records: Vec<(u32, Vec<u8>)>,
        answer: Answer<Option<Vec<Position>>>,
    },
    Claim {
        code: Code,
        answer: Answer<bool>,
    },
    Release {
        code: Code,
        answer: Answer<()>,
    },
    Lease {
        count: u64,
        answer: Answer<Range<u64>>,
    },
    TakeClick {
        code: Code,
        max: MaxClicks,
        answer: Answer<bool>,
    },
    /// A limited link's click: taken from its quota and appended in one transaction.
    TakeAndAppend {
        code: Code,
        max: MaxClicks,
        records: Vec<(u32, Vec<u8>)>,
        answer: Answer<bool>,
    },
    /// A durable write of nothing that matters, for readiness: it succeeds only when appends can.
    Probe {
        answer: Answer<()>,
    },
}

impl EmbeddedLog {
    /// How many of the records `reads` asks for are committed.
    fn committed(&self, reads: &[PartitionRead]) -> usize {
        let ends = self.ends.borrow();
        let committed = |read: &PartitionRead| {
            let end = ends.get(read.partition as usize).map_or(0, |end| end.saturating_sub(read.from));
            usize::try_from(end).unwrap_or(usize::MAX).min(read.max)
        };
        reads.iter().map(committed).fold(0, usize::saturating_add)
    }

    /// Hands every record `reads` asks for to `take`, partition after partition, in one read
    /// transaction off the async threads; returns what `take` made of them.
    async fn scan_partitions<T: Send + 'static>(
        &self,
        reads: &[PartitionRead],
        mut into: T,
        mut take: impl FnMut(&mut T, Position, &[u8]) + Send + 'static,
    ) -> Result<T, InfraError> {
        let db = Arc::clone(&self.db);
        let reads = reads.to_vec();
        let file = Arc::clone(&db);
        let read = move || -> Result<T, redb::Error> {
            let txn = db.get()?.begin_read()?;
            let table = txn.open_table(EVENT_ROWS)?;
            for PartitionRead { partition, from, max } in reads.iter().copied() {
                let mut left = max;
                rows::scan(&table, partition, from, |offset, record| {
                    if left == 0 {
                        return false;
                    }
                    left -= 1;
                    take(&mut into, Position { partition, offset }, record);
                    true
                })?;
            }
            Ok(into)
        };
        // A quiet log (no write to fail and reopen it) must still come back for its readers.
        let read_or_reopen = move || {
            read().inspect_err(|error| {
                if Reopenable::needs_reopen(error) {
                    file.reopen();
                }
            })
        };
        tokio::task::spawn_blocking(read_or_reopen)
            .await
            .map_err(|e| InfraError::new("reading the embedded event log", e))?
            .map_err(|e| InfraError::new("reading the embedded event log", e))
    }

    pub fn open(path: &Path, options: LogOptions) -> Result<Self, OpenError> {
        let name = path.display().to_string();
        let db = page_cache::create(path, page_cache::LOG)
            .map_err(|source| OpenError::Database { path: name.clone(), source })?;
        let partitions = prepare(&db, options.partitions, &name)?;
        let setup = |source: redb::Error| OpenError::Setup { path: name.clone(), source };
        let next = next_offsets(&db, partitions).map_err(setup)?;
        let next_sequence = read_meta(&db, NEXT_SEQUENCE_KEY).map_err(setup)?.unwrap_or(0);
        let codec = Arc::new(Codec::local(Catalog::shipped()));
        let claims = db.begin_read().map_err(redb::Error::from).and_then(|txn| claims::recover(&txn, &codec, &next));
        let claims = claims.map_err(setup)?;
        let (ends_sender, ends) = watch::channel(next.clone());
        let db = Reopenable::new(db, path, page_cache::LOG);
        let state = LogWrites { next, pending: PendingRows::default(), claims, next_sequence, ends: ends_sender };
        let writer = GroupCommitter::start("kurz-log-writer", Arc::clone(&db), state, Priority::Normal);
        Ok(Self { writer, db, codec, partitions, ends })
    }

    /// Whether the log takes durable writes now: a small write through the writer, committed and
    /// synced like an append (a full disk fails it; so does a file that must be reopened first).
    pub async fn probe(&self) -> Result<(), InfraError> {
        self.writer.ask(CONTEXT, |answer| LogOp::Probe { answer }).await
    }

    /// Framed Avro records with their partitions, encoded before they reach the writer thread.
    fn records(&self, events: &[Event]) -> Result<Vec<(u32, Vec<u8>)>, InfraError> {
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let bytes = self.codec.encode(event).map_err(|e| InfraError::new("encoding an event", e))?;
            records.push((partition_for(event.code(), self.partitions), bytes));
        }
        Ok(records)
    }
}

fn prepare(db: &Database, configured: u32, path: &str) -> Result<u32, OpenError> {
    let setup = |e: redb::Error| OpenError::Setup { path: path.to_owned(), source: e };
    let txn = db.begin_write().map_err(|e| setup(e.into()))?;
    let stored = {
        txn.open_table(EVENT_ROWS).map_err(|e| setup(e.into()))?;
        txn.open_table(CLAIMS).map_err(|e| setup(e.into()))?;
        txn.open_table(QUOTAS).map_err(|e| setup(e.into()))?;
        let mut meta = txn.open_table(META).map_err(|e| setup(e.into()))?;
        let stored = meta.get(PARTITIONS_KEY).map_err(|e| setup(e.into()))?.map(|v| v.value());
        if stored.is_none() {
            meta.insert(PARTITIONS_KEY, u64::from(configured)).map_err(|e| setup(e.into()))?;
        }
        stored
    };
    match stored.map(|s| u32::try_from(s).unwrap_or(u32::MAX)) {
        Some(stored) if stored != configured => {
            Err(OpenError::Partitions { path: path.to_owned(), stored, configured })
        }
        _ => {
            let moved = move_to_shared_rows(&txn).map_err(setup)?;
            let ends = ends_of(&txn.open_table(EVENT_ROWS).map_err(|e| setup(e.into()))?, configured).map_err(setup)?;
            claims::mark_covered_if_unmarked(&txn, &ends).map_err(setup)?;
            txn.commit().map_err(|e| setup(e.into()))?;
            if moved > 0 {
                tracing::info!(path, records = moved, "moved the event log to shared rows");
            }
            Ok(configured)
        }
    }
}

/// Moves a log written one record per row into shared rows, in the transaction that opens it, and
/// returns how many records moved.
fn move_to_shared_rows(txn: &WriteTransaction) -> Result<u64, redb::Error> {
    if !txn.list_tables()?.any(|table| table.name() == RECORD_PER_ROW.name()) {
        return Ok(0);
    }
    let mut moved = 0;
    {
        let old = txn.open_table(RECORD_PER_ROW)?;
        let mut rows = txn.open_table(EVENT_ROWS)?;
        let mut pending = PendingRows::default();
        for entry in old.iter()? {
            let (key, value) = entry?;
            let (partition, offset) = key.value();
            pending.push(partition, offset, value.value());
            moved += 1;
            if moved % MOVED_PER_WRITE == 0 {
                pending.write(&mut rows)?;
            }
        }
        pending.write(&mut rows)?;
    }
    txn.delete_table(RECORD_PER_ROW)?;
    Ok(moved)
}

fn next_offsets(db: &Database, partitions: u32) -> Result<Vec<u64>, redb::Error> {
    ends_of(&db.begin_read()?.open_table(EVENT_ROWS)?, partitions)
}

fn ends_of(table: &impl ReadableTable<(u32, u64), &'static [u8]>, partitions: u32) -> Result<Vec<u64>, redb::Error> {
    (0..partitions)
        .map(|p| {
            let Some((key, row)) = table.range((p, 0)..=(p, u64::MAX))?.next_back().transpose()? else {
                return Ok(0);
            };
            let records = rows::records(row.value()).collect::<Result<Vec<_>, _>>()?;
            Ok(key.value().1 + records.len() as u64)
        })
        .collect()
}

fn read_meta(db: &Database, key: &str) -> Result<Option<u64>, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(key)?.map(|v| v.value()))
}

struct LogWrites {
    next: Vec<u64>,
    pending: PendingRows,
    claims: Claims,
    next_sequence: u64,
    ends: watch::Sender<Vec<u64>>,
}

/// The log's tables, each opened by the first op of a group that needs it.
pub struct LogTables<'txn> {
    txn: &'txn WriteTransaction,
    rows: Option<RowTable<'txn>>,
    claims: Option<ClaimTable<'txn>>,
    claimed_through: Option<Table<'txn, u32, u64>>,
    quotas: Option<Table<'txn, &'static str, u64>>,
    meta: Option<Table<'txn, &'static str, u64>>,
}

impl<'txn> LogTables<'txn> {
    fn claims(&mut self) -> Result<&mut ClaimTable<'txn>, redb::TableError> {
        opened(&mut self.claims, self.txn, CLAIMS)
    }

    fn quotas(&mut self) -> Result<&mut Table<'txn, &'static str, u64>, redb::TableError> {
        opened(&mut self.quotas, self.txn, QUOTAS)
    }

    fn meta(&mut self) -> Result<&mut Table<'txn, &'static str, u64>, redb::TableError> {
        opened(&mut self.meta, self.txn, META)
    }
}

fn opened<'t, 'txn, K: Key + 'static, V: Value + 'static>(
    slot: &'t mut Option<Table<'txn, K, V>>,
    txn: &'txn WriteTransaction,
    definition: TableDefinition<K, V>,
) -> Result<&'t mut Table<'txn, K, V>, redb::TableError> {
    if slot.is_none() {
        *slot = Some(txn.open_table(definition)?);
    }
    Ok(slot.as_mut().expect("opened above"))
}

impl Writes for LogWrites {
    type Op = LogOp;
    type Tables<'txn> = LogTables<'txn>;

    /// A claim or lease becomes durable with the append that follows it (commits are ordered); if
    /// the process dies before that append, nothing was acknowledged and forgetting the claim is
    /// right. An append, and a click taken against a quota, are answered only once on disk.
    fn needs_fsync(op: &LogOp) -> bool {
        matches!(
            op,
            LogOp::Append { .. }
                | LogOp::Create { .. }
                | LogOp::TakeClick { .. }
                | LogOp::TakeAndAppend { .. }
                | LogOp::Probe { .. }
        )
    }

    fn open_tables(txn: &WriteTransaction) -> Result<LogTables<'_>, redb::Error> {
        Ok(LogTables { txn, rows: None, claims: None, claimed_through: None, quotas: None, meta: None })
    }

    fn apply(&mut self, tables: &mut LogTables<'_>, op: LogOp) -> Result<Reply, (redb::Error, Reply)> {
        match op {
            LogOp::Append { records, answer } => Ok(reply_with(CONTEXT, answer, self.append(&records))),
            LogOp::Create { code, records, answer } => {
                let created = (|| -> Result<Option<Vec<Position>>, redb::Error> {
                    if !self.claims.claim_for_creation(tables.claims()?, &code)? {
                        return Ok(None);
                    }
                    Ok(Some(self.append(&records)))
                })();
                match created {
                    Ok(positions) => Ok(reply_with(CONTEXT, answer, positions)),
                    Err(e) => Err((e, reply_with(CONTEXT, answer, None))),
                }
            }
            LogOp::Claim { code, answer } => {
                let claimed =
                    (|| -> Result<bool, redb::Error> { Ok(self.claims.claim_alone(tables.claims()?, &code)?) })();
                match claimed {
                    Ok(claimed) => Ok(reply_with(CONTEXT, answer, claimed)),
                    Err(e) => Err((e, reply_with(CONTEXT, answer, false))),
                }
            }
            LogOp::Release { code, answer } => {
                let released = (|| -> Result<(), redb::Error> {
                    self.claims.release(tables.claims()?, &code)?;
                    Ok(())
                })();
                match released {
                    Ok(()) => Ok(reply_with(CONTEXT, answer, ())),
                    Err(e) => Err((e, reply_with(CONTEXT, answer, ()))),
                }
            }
            LogOp::Lease { count, answer } => {
                let range = self.next_sequence..self.next_sequence.saturating_add(count);
                let leased = (|| -> Result<(), redb::Error> {
                    tables.meta()?.insert(NEXT_SEQUENCE_KEY, range.end)?;
                    Ok(())
                })();
                self.next_sequence = range.end;
                match leased {
                    Ok(()) => Ok(reply_with(CONTEXT, answer, range)),
                    Err(e) => Err((e, reply_with(CONTEXT, answer, range))),
                }
            }
            LogOp::TakeClick { code, max, answer } => match take_click(tables, &code, max) {
                Ok(granted) => Ok(reply_with(CONTEXT, answer, granted)),
                Err(e) => Err((e, reply_with(CONTEXT, answer, false))),
            },
            LogOp::TakeAndAppend { code, max, records, answer } => match take_click(tables, &code, max) {
                Ok(granted) => {
                    if granted {
                        self.append(&records);
                    }
                    Ok(reply_with(CONTEXT, answer, granted))
                }
                Err(e) => Err((e, reply_with(CONTEXT, answer, false))),
            },
            LogOp::Probe { answer } => {
                let probed = (|| -> Result<(), redb::Error> {
                    let count = tables.meta()?.get(PROBE_KEY)?.map_or(0, |v| v.value());
                    tables.meta()?.insert(PROBE_KEY, count.wrapping_add(1))?;
                    Ok(())
                })();
                match probed {
                    Ok(()) => Ok(reply_with(CONTEXT, answer, ())),
                    Err(e) => Err((e, reply_with(CONTEXT, answer, ()))),
                }
            }
        }
    }

    fn reject(op: LogOp) -> Reply {
        match op {
            LogOp::Append { answer, .. } => reply_with(CONTEXT, answer, Vec::new()),
            LogOp::Create { answer, .. } => reply_with(CONTEXT, answer, None),
            LogOp::Claim { answer, .. } | LogOp::TakeClick { answer, .. } | LogOp::TakeAndAppend { answer, .. } => {
                reply_with(CONTEXT, answer, false)
            }
            LogOp::Release { answer, .. } | LogOp::Probe { answer } => reply_with(CONTEXT, answer, ()),
            LogOp::Lease { answer, .. } => reply_with(CONTEXT, answer, 0..0),
        }
    }

    fn before_commit(&mut self, tables: &mut LogTables<'_>) -> Result<(), redb::Error> {
        if !self.pending.is_empty() {
            self.pending.write(opened(&mut tables.rows, tables.txn, EVENT_ROWS)?)?;
        }
        if self.claims.writes_chunk() {
            let claimed = opened(&mut tables.claims, tables.txn, CLAIMS)?;
            let through = opened(&mut tables.claimed_through, tables.txn, CLAIMED_THROUGH)?;
            self.claims.write_chunk(claimed, through)?;
        }
        Ok(())
    }

    fn committed(&mut self) {
        self.claims.committed(&self.next);
        self.ends.send_if_modified(|ends| {
            let moved = *ends != self.next;
            ends.clone_from(&self.next);
            moved
        });
    }

    fn rolled_back(&mut self, db: &Database) {
        self.pending.clear();
        self.claims.rolled_back();
        let partitions = u32::try_from(self.next.len()).expect("partition count fits u32");
        match (next_offsets(db, partitions), read_meta(db, NEXT_SEQUENCE_KEY)) {
            (Ok(next), Ok(sequence)) => {
                self.next = next;
                self.next_sequence = sequence.unwrap_or(0);
            }
            (Err(e), _) | (_, Err(e)) => tracing::error!(error = %e, "cannot reload log positions after a rollback"),
        }
    }
}

impl LogWrites {
    /// Gives the records their offsets and leaves them pending, for [`Writes::before_commit`] to
    /// write in rows shared with the rest of the group's records. On an error the whole group rolls
    /// back, and [`Writes::rolled_back`] reloads the offsets advanced here.
    fn append(&mut self, records: &[(u32, Vec<u8>)]) -> Vec<Position> {
        records
            .iter()
            .map(|(partition, bytes)| {
                let offset = self.next[*partition as usize];
                self.pending.push(*partition, offset, bytes);
                self.next[*partition as usize] += 1;
                Position { partition: *partition, offset }
            })
            .collect()
    }
}

fn take_click(tables: &mut LogTables<'_>, code: &Code, max: MaxClicks) -> Result<bool, redb::Error> {
    let quotas = tables.quotas()?;
    let taken = quotas.get(code.as_str())?.map_or(0, |v| v.value());
    if taken >= max.get() {
        return Ok(false);
    }
    quotas.insert(code.as_str(), taken + 1)?;
    Ok(true)
}

#[async_trait]
impl EventLog for EmbeddedLog {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn append(&self, events: &[Event]) -> Result<Vec<Position>, InfraError> {
        let records = self.records(events)?;
        self.writer.ask(CONTEXT, |answer| LogOp::Append { records, answer }).await
    }

    async fn read(&self, partition: u32, from: u64, max: usize) -> Result<Vec<LogRecord>, InfraError> {
        self.read_partitions(&[PartitionRead { partition, from, max }]).await
    }

    /// In one read transaction, into one vector sized for the records committed.
    async fn read_partitions(&self, reads: &[PartitionRead]) -> Result<Vec<LogRecord>, InfraError> {
        let codec = Arc::clone(&self.codec);
        let read = Vec::with_capacity(self.committed(reads));
        self.scan_partitions(reads, read, move |read, position, record| {
            read.push(LogRecord::decode(&codec, position, record));
        })
        .await
    }

    async fn read_encoded(&self, reads: &[PartitionRead]) -> Result<Option<EncodedRecords>, InfraError> {
        let read = EncodedRecords::with_capacity(Arc::clone(&self.codec), self.committed(reads));
        let read = self.scan_partitions(reads, read, EncodedRecords::push).await?;
        Ok(Some(read.finish()))
    }

    async fn end_offsets(&self) -> Result<Vec<u64>, InfraError> {
        Ok(self.ends.borrow().clone())
    }

    async fn wait_for_records(&self, seen: &[u64], timeout: Duration) {
        let mut ends = self.ends.clone();
        let has_new = |ends: &Vec<u64>| ends.iter().zip(seen).any(|(end, seen)| end > seen);
        let _ = tokio::time::timeout(timeout, ends.wait_for(has_new)).await;
    }
}

#[async_trait]
impl CodeRegistry for EmbeddedLog {
    async fn claim(&self, code: &Code) -> Result<bool, InfraError> {
        let code = code.clone();
        self.writer.ask(CONTEXT, |answer| LogOp::Claim { code, answer }).await
    }

    async fn release(&self, code: &Code) -> Result<(), InfraError> {
        let code = code.clone();
        self.writer.ask(CONTEXT, |answer| LogOp::Release { code, answer }).await
    }

    async fn lease_sequences(&self, count: u64) -> Result<Range<u64>, InfraError> {
        self.writer.ask(CONTEXT, |answer| LogOp::Lease { count, answer }).await
    }
}

#[async_trait]
impl CreationLog for EmbeddedLog {
    async fn claim_and_append(&self, code: &Code, events: &[Event]) -> Result<Option<Vec<Position>>, InfraError> {
        let records = self.records(events)?;
        let code = code.clone();
        self.writer.ask(CONTEXT, |answer| LogOp::Create { code, records, answer }).await
    }
}

#[async_trait]
impl ClickQuota for EmbeddedLog {
    async fn take(&self, code: &Code, max_clicks: MaxClicks) -> Result<bool, InfraError> {
        let code = code.clone();
        self.writer.ask(CONTEXT, |answer| LogOp::TakeClick { code, max: max_clicks, answer }).await
    }

    /// The quota and the log are one file here: the take and its click are one commit.
    async fn take_and_append(
        &self,
        code: &Code,
        max_clicks: MaxClicks,
        events: &[Event],
    ) -> Result<Option<bool>, InfraError> {
        let records = self.records(events)?;
        let code = code.clone();
        let taken =
            self.writer.ask(CONTEXT, |answer| LogOp::TakeAndAppend { code, max: max_clicks, records, answer }).await?;
        Ok(Some(taken))
    }
}

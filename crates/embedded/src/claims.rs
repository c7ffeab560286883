//! Which codes are taken.
//!
//! A code claimed by a link's creation is made durable by the `LinkCreated` record appended in the
//! same commit, so the claim is first kept in memory and written to the claims table later, with
//! thousands of others in key order. Inserting each random code on its own copied and rebuilt a whole
//! B-tree leaf per creation (about a fifth of a create's instructions); in key order, the inserts of
//! one batch that fall in the same leaf share one copy. The table records, per partition, the offset
//! up to which it holds every creation's claim: after a restart, the claims since then are found
//! again in the log.
//!
//! A claim made on its own (a registry claim, with no record behind it) is written to the table at
//! once, as before.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kurz_domain::{Code, Event};
use kurz_schemas::{Codec, EventKind};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::rows::{self, EVENT_ROWS};

pub const CLAIMS: TableDefinition<&str, ()> = TableDefinition::new("claimed_codes");
/// Per partition: every creation appended below this offset has its claim in [`CLAIMS`].
pub const CLAIMED_THROUGH: TableDefinition<u32, u64> = TableDefinition::new("claims_written_through");
/// Claims gathered in memory before they are set aside as a batch to write.
const BATCH_CLAIMS: usize = 16_384;
/// Claims of the batch each group commit writes, at least: a whole batch in one commit stalled the
/// creations committed with it for tens of milliseconds. A group writes at least twice the claims it
/// adds, so that claims never pile up in memory faster than they are written.
const CHUNK_CLAIMS: usize = 1_024;
/// A batch is also set aside this often while the log grows, which bounds how much of the log a
/// restart reads to find the claims not yet written.
const BATCH_AT_LEAST_EVERY: Duration = Duration::from_secs(10);

pub type ClaimTable<'txn> = Table<'txn, &'static str, ()>;

#[derive(Debug)]
pub struct Claims {
    /// Claimed by creations whose records are in the log, not yet set aside in a batch.
    gathering: HashSet<Code, foldhash::fast::RandomState>,
    /// Added to `gathering` by the group being committed, forgotten if it rolls back.
    in_group: Vec<Code>,
    batch: Option<Batch>,
    /// What the table covers, per partition.
    written_through: Vec<u64>,
    last_batch: Instant,
}

/// Claims being written to the table, a chunk per group commit, in key order.
#[derive(Debug)]
struct Batch {
    codes: Vec<Code>,
    /// `codes[..written]` are in the table.
    written: usize,
    /// `codes[..writing]` will be, once the group being committed commits.
    writing: usize,
    /// What the table covers once the whole batch is in it.
    through: Vec<u64>,
}

impl Claims {
    pub fn is_claimed(&self, table: &ClaimTable<'_>, code: &Code) -> Result<bool, redb::StorageError> {
        Ok(self.gathering.contains(code)
            || self.batch.as_ref().is_some_and(|batch| batch.position(code).is_ok())
            || table.get(code.as_str())?.is_some())
    }

    /// Claims `code` for a creation whose records are appended in this group; `false` if taken.
    pub fn claim_for_creation(&mut self, table: &ClaimTable<'_>, code: &Code) -> Result<bool, redb::StorageError> {
        if self.is_claimed(table, code)? {
            return Ok(false);
        }
        self.gathering.insert(code.clone());
        self.in_group.push(code.clone());
        Ok(true)
    }

    /// Claims `code` with no record behind it: written to the table in this group.
    pub fn claim_alone(&self, table: &mut ClaimTable<'_>, code: &Code) -> Result<bool, redb::StorageError> {
        if self.gathering.contains(code) || self.batch.as_ref().is_some_and(|batch| batch.position(code).is_ok()) {
            return Ok(false);
        }
        Ok(table.insert(code.as_str(), ())?.is_none())
    }

    pub fn release(&mut self, table: &mut ClaimTable<'_>, code: &Code) -> Result<(), redb::StorageError> {
        self.gathering.remove(code);
        if let Some(batch) = &mut self.batch {
            batch.remove(code);
        }
        table.remove(code.as_str())?;
        Ok(())
    }

    /// Writes the next chunk of the batch, if one is being written, in the group's transaction.
    pub fn write_chunk(
        &mut self,
        table: &mut ClaimTable<'_>,
        through: &mut Table<'_, u32, u64>,
    ) -> Result<(), redb::StorageError> {
        let Some(batch) = &mut self.batch else {
            return Ok(());
        };
        let chunk = CHUNK_CLAIMS.max(2 * self.in_group.len());
        let end = (batch.written + chunk).min(batch.codes.len());
        for code in &batch.codes[batch.written..end] {
            table.insert(code.as_str(), ())?;
        }
        if end == batch.codes.len() {
            for (partition, offset) in (0u32..).zip(&batch.through) {
                through.insert(partition, offset)?;
            }
        }
        batch.writing = end;
        Ok(())
    }

    pub fn writes_chunk(&self) -> bool {
        self.batch.is_some()
    }

    /// The group committed; `next` are the offsets after its records. Sets a batch aside when due.
    pub fn committed(&mut self, next: &[u64]) {
        self.in_group.clear();
        if let Some(batch) = &mut self.batch {
            batch.written = batch.writing;
            if batch.written == batch.codes.len() {
                self.written_through = std::mem::take(&mut batch.through);
                self.batch = None;
            }
        }
        let due = self.gathering.len() >= BATCH_CLAIMS
            || (self.written_through != next && self.last_batch.elapsed() >= BATCH_AT_LEAST_EVERY);
        if self.batch.is_none() && due {
            let mut codes: Vec<Code> = self.gathering.drain().collect();
            codes.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            self.batch = Some(Batch { codes, written: 0, writing: 0, through: next.to_vec() });
            self.last_batch = Instant::now();
        }
    }

    /// The group's claims are not in the log after all, and its chunk is not in the table.
    pub fn rolled_back(&mut self) {
        for code in self.in_group.drain(..) {
            self.gathering.remove(&code);
        }
        if let Some(batch) = &mut self.batch {
            batch.writing = batch.written;
        }
    }
}

impl Batch {
    fn position(&self, code: &Code) -> Result<usize, usize> {
        self.codes.binary_search_by(|held| held.as_str().cmp(code.as_str()))
    }

    fn remove(&mut self, code: &Code) {
        if let Ok(index) = self.position(code) {
            self.codes.remove(index);
            if index < self.written {
                self.written -= 1;
            }
            self.writing = self.written;
        }
    }
}

/// Opening: marks a log whose every claim is in the table (one written before claims were held in
/// memory, or a new one) as covered up to `ends`.
pub fn mark_covered_if_unmarked(txn: &WriteTransaction, ends: &[u64]) -> Result<(), redb::Error> {
    let mut through = txn.open_table(CLAIMED_THROUGH)?;
    if through.first()?.is_none() {
        for (partition, offset) in (0u32..).zip(ends) {
            through.insert(partition, offset)?;
        }
    }
    Ok(())
}

/// The claims of creations appended after what the table covers, read back from the log.
pub fn recover(txn: &redb::ReadTransaction, codec: &Codec, ends: &[u64]) -> Result<Claims, redb::Error> {
    let through_table = txn.open_table(CLAIMED_THROUGH)?;
    let records = txn.open_table(EVENT_ROWS)?;
    let mut gathering = HashSet::default();
    let mut written_through = Vec::with_capacity(ends.len());
    for (partition, end) in (0u32..).zip(ends) {
        let from = through_table.get(partition)?.map_or(0, |v| v.value());
        written_through.push(from);
        if from >= *end {
            continue;
        }
        rows::scan(&records, partition, from, |_, record| {
            // Nearly every record is a click: told apart by its schema id, it is not decoded.
            if codec.kind(record) == Some(EventKind::LinkCreated)
                && let Ok(Event::Created(created)) = codec.decode(record)
            {
                gathering.insert(created.code);
            }
            true
        })?;
    }
    Ok(Claims { gathering, in_group: Vec::new(), batch: None, written_through, last_batch: Instant::now() })
}

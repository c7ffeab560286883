//! How the log keeps records on disk: the records of one partition that were appended together share
//! one row, keyed by the offset of the first, each record behind its length (`u32`, little-endian).
//!
//! A row per record cost one B-tree insert per click, which was 95% of the log writer's work; a row
//! per partition and group commit costs one insert per hundreds of clicks, and a rebuild reads a few
//! large rows instead of many small ones. Kafka stores record batches for the same reason.

use redb::{ReadableTable, Table, TableDefinition};

/// Framed Avro records, the same bytes a Kafka topic would hold, in rows of records appended
/// together, keyed by (partition, offset of the row's first record).
pub const EVENT_ROWS: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("event_rows");

/// Rows are cut at about this size, so that a reader starting mid-row skips little.
const MAX_ROW_BYTES: usize = 32 << 10;
const LENGTH_BYTES: usize = size_of::<u32>();
/// Buffers of written rows kept for the next transaction's rows; one huge group keeps no more.
const MAX_SPARE_ROWS: usize = 16;

pub type RowTable<'txn> = Table<'txn, (u32, u64), &'static [u8]>;

/// A stored row whose framing is cut short: the file was damaged outside redb's checks.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a row of the embedded event log is cut short")]
pub struct Damaged;

impl From<Damaged> for redb::Error {
    fn from(damaged: Damaged) -> Self {
        Self::Corrupted(damaged.to_string())
    }
}

/// Hands `each` the records of `partition` from offset `from` on, in order, while it returns `true`.
pub fn scan(
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    partition: u32,
    from: u64,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), redb::Error> {
    let row_holding_from = table.range((partition, 0)..=(partition, from))?.next_back().transpose()?;
    let start = row_holding_from.map_or(from, |(key, _)| key.value().1);
    for entry in table.range((partition, start)..=(partition, u64::MAX))? {
        let (key, row) = entry?;
        for (offset, record) in (key.value().1..).zip(records(row.value())) {
            let record = record?;
            if offset >= from && !each(offset, record) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The records of one stored row, in offset order.
pub fn records(row: &[u8]) -> Records<'_> {
    Records { rest: row }
}

#[derive(Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], Damaged>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let record = (|| {
            let (length, rest) = self.rest.split_first_chunk::<LENGTH_BYTES>()?;
            let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
            rest.split_at_checked(length)
        })();
        let Some((record, rest)) = record else {
            self.rest = &[];
            return Some(Err(Damaged));
        };
        self.rest = rest;
        Some(Ok(record))
    }
}

/// Records appended within one transaction, gathered into one row per partition, written just
/// before it commits.
#[derive(Debug, Default)]
pub struct PendingRows {
    open: Vec<Row>,
    full: Vec<(u32, Row)>,
    spare: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Row {
    first: u64,
    next: u64,
    bytes: Vec<u8>,
}

impl PendingRows {
    /// Adds the record at `offset` to its partition's row, starting a new row when the record would
    /// not follow on (the row is full, or the offset is not the next one).
    ///
    /// Records must be shorter than 4 GiB, as every redb value is.
    pub fn push(&mut self, partition: u32, offset: u64, record: &[u8]) {
        let length = u32::try_from(record.len()).expect("records are shorter than 4 GiB");
        let index = partition as usize;
        if index >= self.open.len() {
            self.open.resize_with(index + 1, Row::default);
        }
        let row = &mut self.open[index];
        let follows = row.next == offset && row.bytes.len() + LENGTH_BYTES + record.len() <= MAX_ROW_BYTES;
        if !row.bytes.is_empty() && !follows {
            let bytes = std::mem::replace(&mut row.bytes, self.spare.pop().unwrap_or_default());
            self.full.push((partition, Row { bytes, ..*row }));
        }
        if row.bytes.is_empty() {
            row.first = offset;
        }
        row.bytes.extend_from_slice(&length.to_le_bytes());
        row.bytes.extend_from_slice(record);
        row.next = offset + 1;
    }

    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.open.iter().all(|row| row.bytes.is_empty())
    }

    /// Writes every pending row.
    pub fn write(&mut self, table: &mut RowTable<'_>) -> Result<(), redb::Error> {
        for (partition, mut row) in self.full.drain(..) {
            table.insert((partition, row.first), row.bytes.as_slice())?;
            if self.spare.len() < MAX_SPARE_ROWS {
                row.bytes.clear();
                self.spare.push(row.bytes);
            }
        }
        for (partition, row) in self.open.iter_mut().enumerate() {
            if !row.bytes.is_empty() {
                let partition = u32::try_from(partition).expect("indexed by a u32 partition");
                table.insert((partition, row.first), row.bytes.as_slice())?;
                row.bytes.clear();
            }
        }
        Ok(())
    }

    /// Forgets what a rolled-back transaction left pending.
    pub fn clear(&mut self) {
        self.full.clear();
        for row in &mut self.open {
            row.bytes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_hands_back_its_records_in_order() {
        let mut row = Vec::new();
        for record in [&b"first"[..], b"", b"third"] {
            row.extend_from_slice(&u32::try_from(record.len()).expect("short").to_le_bytes());
            row.extend_from_slice(record);
        }
        let read: Vec<&[u8]> = records(&row).collect::<Result<_, _>>().expect("whole");
        assert_eq!(read, [&b"first"[..], b"", b"third"]);
    }

    #[test]
    fn a_row_cut_short_is_damaged_not_shorter() {
        let mut row = 5u32.to_le_bytes().to_vec();
        row.extend_from_slice(b"abc");
        assert!(matches!(records(&row).next(), Some(Err(Damaged))));
        assert!(matches!(records(&[1, 0]).next(), Some(Err(Damaged))));
    }
}

use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::{Code, Event};

use crate::{EncodedRecords, InfraError};

/// Where a record sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub position: Position,
    /// A record that does not decode (written by a foreign producer, or by a schema this build does
    /// not know) is handed over as an error, so a consumer can count and skip it instead of stalling.
    pub event: Result<Event, String>,
}

impl LogRecord {
    /// The record at `position` as `codec` decodes it (an error kept as its reason).
    pub fn decode(codec: &kurz_schemas::Codec, position: Position, record: &[u8]) -> Self {
        Self { position, event: codec.decode(record).map_err(|e| e.to_string()) }
    }
}

/// Up to `max` records of `partition` from offset `from` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRead {
    pub partition: u32,
    pub from: u64,
    pub max: usize,
}

/// An [`EventLog::append_each`] that failed: why, and which events (indices into those given) the
/// log acknowledged nonetheless. The others are not known to be in the log (see
/// [`InfraError::outcome_unknown`]).
#[derive(Debug, thiserror::Error)]
#[error("{error} ({} of the events acknowledged)", acknowledged.len())]
pub struct PartlyAppended {
    #[source]
    pub error: InfraError,
    pub acknowledged: Vec<usize>,
}

/// The source of truth: an append-only log of events, partitioned by link code so that all events of
/// one link stay in order.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    fn partitions(&self) -> u32;

    /// Appends durably. Returns once every event is acknowledged (it survives a crash), with the
    /// events' positions in the order given.
    async fn append(&self, events: &[Event]) -> Result<Vec<Position>, InfraError>;

    /// Appends events that need not go in together (clicks), as [`append`](Self::append) does, but
    /// a failure says which of them were acknowledged all the same: a caller that sends the events
    /// again must send only the others, or the acknowledged ones would be in the log twice. A log
    /// whose appends are atomic (the default) acknowledges all or none.
    async fn append_each(&self, events: &[Event]) -> Result<Vec<Position>, PartlyAppended> {
        self.append(events).await.map_err(|error| PartlyAppended { error, acknowledged: Vec::new() })
    }

    /// Up to `max` records of one partition from offset `from` on, in offset order.
    async fn read(&self, partition: u32, from: u64, max: usize) -> Result<Vec<LogRecord>, InfraError>;

    /// Several partitions' [`read`](Self::read)s, their records one partition after another in one
    /// vector. A log that can fill one vector directly should: joining per-partition vectors copies
    /// a whole batch into memory that was never touched before.
    async fn read_partitions(&self, reads: &[PartitionRead]) -> Result<Vec<LogRecord>, InfraError> {
        // Concurrently: one round trip to the log, not one per partition.
        let reads =
            futures_util::future::try_join_all(reads.iter().map(|read| self.read(read.partition, read.from, read.max)))
                .await?;
        Ok(reads.concat())
    }

    /// As [`read_partitions`](Self::read_partitions), the records as the log holds them: clicks
    /// left undecoded for a fold to read in place. `None` from a log that hands records decoded only
    /// (the default).
    async fn read_encoded(&self, reads: &[PartitionRead]) -> Result<Option<EncodedRecords>, InfraError> {
        let _ = reads;
        Ok(None)
    }

    /// For each partition, the offset the next appended record will get.
    async fn end_offsets(&self) -> Result<Vec<u64>, InfraError>;

    /// Returns once some partition has records at or beyond `seen[partition]`, or after `timeout`.
    async fn wait_for_records(&self, seen: &[u64], timeout: Duration);
}

/// Kafka's default partitioner (murmur2 of the key), so the embedded log and Kafka place a link's
/// events in the same partition.
pub fn partition_for(code: &Code, partitions: u32) -> u32 {
    (murmur2(code.as_str().as_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    #[expect(clippy::cast_possible_truncation, reason = "keys are at most 64 bytes")]
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(first) = rest.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // From Kafka's UtilsTest.testMurmur2 (signed ints there).
        let cases: [(&str, i32); 4] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()).cast_signed(), expected, "{key}");
        }
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        let code = Code::parse("abc").expect("valid");
        assert_eq!(partition_for(&code, 8), partition_for(&code, 8));
        assert!((0..1000).all(|i| partition_for(&Code::parse(&format!("c{i:03}")).expect("valid"), 8) < 8));
    }
}

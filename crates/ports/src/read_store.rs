use async_trait::async_trait;
use kurz_domain::link::MaxClicks;
use kurz_domain::stats::{Bots, DayStats, LinkStats};
use kurz_domain::{Code, Day, DayRange, Event, Link};

use crate::{EncodedRecords, InfraError, LogRecord};

/// The read models folded from the event log: links by code and their click statistics.
#[async_trait]
pub trait ReadStore: Send + Sync + std::fmt::Debug {
    async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError>;

    /// A link's click rows on the days in `range` that have any (none for a link never clicked).
    async fn click_days(&self, code: &Code, range: DayRange) -> Result<Vec<(Day, DayStats)>, InfraError>;

    /// The click rows of several links on the days in `range`, in the order of `codes` (an
    /// overview reads an owner's links a chunk at a time). By default one read per link; a store
    /// that can read them together does.
    async fn click_days_of(&self, codes: &[Code], range: DayRange) -> Result<Vec<Vec<(Day, DayStats)>>, InfraError> {
        let mut rows = Vec::with_capacity(codes.len());
        for code in codes {
            rows.push(self.click_days(code, range).await?);
        }
        Ok(rows)
    }

    /// Statistics of a link's clicks on the days in `range`, counting whom `bots` says (all zero
    /// for a link never clicked).
    async fn stats(&self, code: &Code, range: DayRange, bots: Bots) -> Result<LinkStats, InfraError> {
        let days = self.click_days(code, range).await?;
        Ok(LinkStats::from_days(days.iter().map(|(day, stats)| (*day, stats)), bots))
    }

    /// For each of `partitions` partitions, the offset of the next record to apply.
    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError>;

    /// Applies records with exactly-once effect: a record below its partition's checkpoint is
    /// skipped, and the checkpoints move in the same atomic write as the effects. Undecodable records
    /// only move the checkpoint. Returns the codes whose link (not just stats) changed.
    async fn apply(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError>;

    /// As [`ReadStore::apply`] of every record `chunks` brings, in one write. A store that can fold
    /// records as they arrive does, so that a large write never holds all its records at once (a
    /// rebuild reads the log a chunk at a time). Nothing is written unless the stream ends with
    /// [`Chunk::End`]. By default the chunks are gathered and applied together.
    async fn apply_chunks(&self, mut chunks: Chunks) -> Result<ChunksWritten, InfraError> {
        let mut records = Vec::new();
        loop {
            match chunks.recv().await {
                Some(Chunk::Records(chunk)) => records.extend(chunk),
                Some(Chunk::Encoded(chunk)) => records.extend(chunk.into_records()),
                Some(Chunk::End) => {
                    let changed = self.apply(records).await?;
                    return Ok(ChunksWritten { changed, ended_after: None });
                }
                None => return Err(InfraError::new("applying chunks", ChunksAbandoned)),
            }
        }
    }

    /// Whether [`ReadStore::apply_chunks`] ends a write itself once it holds as much as one write
    /// may (a store that folds chunks as they arrive, and can tell). A catch-up then sends it all
    /// it has to catch up on and lets it end each write; other stores are sent a bounded number of
    /// records per write.
    fn ends_its_writes(&self) -> bool {
        false
    }

    /// Applies a command's own link events (creations, updates, deletions) right after their append,
    /// so that the command's caller reads its write at once. Leaves checkpoints and stats to the
    /// projector. Each link remembers the offset of the last event folded into it, so this and
    /// [`ReadStore::apply`] may bring the same event in either order, or twice, to the same result.
    async fn apply_link_events(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError>;
}

/// A part of one write's records ([`ReadStore::apply_chunks`]).
#[derive(Debug)]
pub enum Chunk {
    Records(Vec<LogRecord>),
    /// Records as the log holds them, clicks undecoded (from a log that reads them so:
    /// [`EventLog::read_encoded`](crate::EventLog::read_encoded)).
    Encoded(EncodedRecords),
    /// Every chunk was sent: the write may be made.
    End,
}

impl Chunk {
    /// How many records it brings.
    pub fn len(&self) -> usize {
        match self {
            Self::Records(records) => records.len(),
            Self::Encoded(records) => records.len(),
            Self::End => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the projections of links apply of it ([`EncodedRecords::projected`]).
    pub fn projected(&self) -> &[LogRecord] {
        match self {
            Self::Records(records) => records,
            Self::Encoded(records) => records.projected(),
            Self::End => &[],
        }
    }

    /// Its records decoded so far that did not decode ([`EncodedRecords::undecodable`]).
    pub fn undecodable(&self) -> usize {
        match self {
            Self::Records(records) => records.iter().filter(|record| record.event.is_err()).count(),
            Self::Encoded(records) => records.undecodable(),
            Self::End => 0,
        }
    }
}

/// What one write of chunks ([`ReadStore::apply_chunks`]) did.
#[derive(Debug, Default)]
pub struct ChunksWritten {
    /// The codes whose link (not just stats) changed.
    pub changed: Vec<Code>,
    /// `Some(n)`: the store ended the write after the first `n` chunks (it held as much as one
    /// write may, [`ReadStore::ends_its_writes`]); the records of the chunks after them are not
    /// written, and are the next write's. `None`: every chunk up to [`Chunk::End`] was written.
    pub ended_after: Option<usize>,
}

/// The chunks of one write, in order.
pub type Chunks = tokio::sync::mpsc::Receiver<Chunk>;

/// The sender of a write's chunks stopped before the last one: nothing of it was written.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the records' sender stopped before the last chunk; nothing was written")]
pub struct ChunksAbandoned;

/// Counts redirects against `max_clicks`, exactly, however many requests race.
#[async_trait]
pub trait ClickQuota: Send + Sync + std::fmt::Debug {
    /// Takes one of the link's clicks. `false` when all `max_clicks` are taken. A taken click is
    /// durable before this returns, so a crash never hands it out twice.
    async fn take(&self, code: &Code, max_clicks: MaxClicks) -> Result<bool, InfraError>;

    /// Where the quota is kept with the event log: takes one click and appends `events` (the
    /// click) in the same durable write, so that a taken click is never without its event. `None`
    /// where the two are apart (the caller takes, then records the click durably its own way).
    async fn take_and_append(
        &self,
        _code: &Code,
        _max_clicks: MaxClicks,
        _events: &[Event],
    ) -> Result<Option<bool>, InfraError> {
        Ok(None)
    }
}

/// Told which links changed after the projector applied a batch (to evict cached copies).
pub trait LinkChangeListener: Send + Sync + std::fmt::Debug {
    fn links_changed(&self, codes: &[Code]);
}

/// How far the projector has applied the log: for readiness, and for tools and tests that wait
/// until the read models show everything appended so far.
#[async_trait]
pub trait ProjectionProgress: Send + Sync + std::fmt::Debug {
    /// `true` once every position has been applied to the read store; `false` after `timeout`.
    async fn wait_applied(&self, positions: &[crate::Position], timeout: std::time::Duration) -> bool;
}

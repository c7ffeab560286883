//! Read models beside the links and their statistics, each folded by its own handler into its own
//! rows, with its own checkpoints: adding one touches no other.

use std::collections::BTreeMap;

use async_trait::async_trait;
use kurz_domain::listing::ListPosition;
use kurz_domain::{Code, Event, Link, Owner};

use crate::{InfraError, LogRecord};

/// A read model the projector folds from the log.
#[async_trait]
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// Names it in logs and in its stored checkpoints.
    fn name(&self) -> &'static str;

    /// For each of `partitions` partitions, the offset of the next record to apply.
    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError>;

    /// Applies records with exactly-once effect: records below their partition's checkpoint are
    /// skipped, and applying a batch again after a crash part-way leaves what one application does.
    /// Projections are of links ([`LinkEvents`]): a batch may leave out clicks before a partition's
    /// last record, as a catch-up's does ([`EncodedRecords::projected`](crate::EncodedRecords::projected)).
    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError>;

    /// Deletes its rows and checkpoints, for a rebuild from offset 0.
    async fn clear(&self) -> Result<(), InfraError>;
}

/// Every link, in the newest-first order of [`ListPosition`], per owner and across owners.
#[async_trait]
pub trait LinkDirectory: Projection {
    /// Up to `count` links of `owner` (of every owner with `None`), newest first, starting strictly
    /// after `after`. Deleted links are listed too.
    async fn scan(
        &self,
        owner: Option<&Owner>,
        after: Option<&ListPosition>,
        count: usize,
    ) -> Result<Vec<Link>, InfraError>;
}

/// The events that changed each link (creation, updates, deletion), by log offset.
#[async_trait]
pub trait LinkHistory: Projection {
    /// Up to `count` of the link's events at offsets from `from` on, oldest first, with their
    /// offsets.
    async fn events(&self, code: &Code, from: u64, count: usize) -> Result<Vec<(u64, Event)>, InfraError>;
}

/// What a projection of links takes from a batch: its link events (creations, updates, deletions;
/// clicks and undecodable records only move checkpoints) and, per partition, the offset after the
/// batch's last record.
#[derive(Debug, Default, Clone)]
pub struct LinkEvents {
    events: Vec<LogRecord>,
    ends: BTreeMap<u32, u64>,
}

impl LinkEvents {
    pub fn of(records: &[LogRecord]) -> Self {
        let mut batch = Self::default();
        // A batch holds each partition's records as one run: the map is touched once per run, not
        // once per record (nearly every record is a click, which a projection passes over).
        for run in records.chunk_by(|a, b| a.position.partition == b.position.partition) {
            let last = run.iter().map(|record| record.position.offset).max().unwrap_or_default();
            let end = batch.ends.entry(run[0].position.partition).or_default();
            *end = (*end).max(last + 1);
            let link_events =
                run.iter().filter(|r| matches!(&r.event, Ok(event) if !matches!(event, Event::Clicked(_))));
            batch.events.extend(link_events.cloned());
        }
        batch
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The partitions the batch touches.
    pub fn partitions(&self) -> impl Iterator<Item = u32> + '_ {
        self.ends.keys().copied()
    }

    /// The events at or beyond their partition's stored `checkpoint`, and each moved checkpoint.
    pub fn unapplied<E>(self, mut checkpoint: impl FnMut(u32) -> Result<u64, E>) -> Result<Unapplied, E> {
        let mut stored = BTreeMap::new();
        for partition in self.ends.keys() {
            stored.insert(*partition, checkpoint(*partition)?);
        }
        let events = self.events.into_iter().filter(|r| r.position.offset >= stored[&r.position.partition]).collect();
        let moved = self.ends.into_iter().filter(|(p, end)| *end > stored[p]).collect();
        Ok(Unapplied { events, moved })
    }
}

/// What of a batch a projection has still to apply.
#[derive(Debug)]
pub struct Unapplied {
    /// Link events at or beyond their partition's checkpoint, in log order per partition.
    pub events: Vec<LogRecord>,
    /// (partition, next offset) for each checkpoint the batch moves.
    pub moved: Vec<(u32, u64)>,
}

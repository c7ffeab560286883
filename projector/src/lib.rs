//! The projector folds the event log into the read models: the read store (links and their
//! statistics) and each further [`Projection`] (the directory, histories), all from one read.
//!
//! Exactly-once effects come from the read models: each keeps its own checkpoints and skips records
//! below them. So the projector may crash anywhere and simply start again from the lowest
//! checkpoint; a rebuild is a start from empty read models, and a projection added later catches up
//! from offset 0 while the others skip what they hold.

#[cfg(feature = "distributed")]
pub mod distributed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use kurz_ports::{
    EventLog, InfraError, LinkChangeListener, LogRecord, Position, Projection, ProjectionProgress, ReadStore,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Which event log and read store a `projector` process works on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The all-in-one process's files (`storage.data_dir`).
    #[default]
    Embedded,
    /// Kafka and Redis, as a consumer-group worker.
    Distributed,
}

#[derive(Debug, Clone, Copy)]
pub struct ProjectorOptions {
    /// Records read per partition and step.
    pub batch_size: usize,
    /// How long an idle projector waits for new records before polling again.
    pub idle_wait: Duration,
    /// How long new records may wait to be folded together: larger batches rewrite each stats row
    /// once for many clicks. Commands do not wait for the projector (they fold their own link
    /// events), so only stats see this delay.
    pub linger: Duration,
    /// While following the log, the most link events applied in one store write. Commands write
    /// their own link events through the same writer, and wait behind whatever write is under way.
    pub live_link_events_per_write: usize,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            batch_size: 50_000,
            idle_wait: Duration::from_millis(500),
            linger: Duration::from_millis(250),
            live_link_events_per_write: 250,
        }
    }
}

/// Everything one projector folds: the read store and the further projections.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pub store: Arc<dyn ReadStore>,
    pub projections: Vec<Arc<dyn Projection>>,
}

impl ReadModels {
    pub fn new(store: Arc<dyn ReadStore>, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self { store, projections }
    }

    /// For each partition, the lowest checkpoint of any read model: where reading resumes.
    pub async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        let mut lowest = self.store.checkpoints(partitions).await?;
        for projection in &self.projections {
            let theirs = projection.checkpoints(partitions).await?;
            for (low, their) in lowest.iter_mut().zip(theirs) {
                *low = (*low).min(their);
            }
        }
        Ok(lowest)
    }

    /// Applies a batch to the further projections, side by side (the read store's writes follow).
    pub async fn apply_projections(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        try_join_all(self.projections.iter().map(|projection| async move {
            projection.apply(records).await.inspect_err(|error| {
                tracing::error!(projection = projection.name(), %error, "projection failed");
            })
        }))
        .await
        .map(drop)
    }

    /// Empties the further projections, for a rebuild (the read store is cleared by its owner).
    pub async fn clear_projections(&self) -> Result<(), InfraError> {
        try_join_all(self.projections.iter().map(|projection| projection.clear())).await.map(drop)
    }
}

#[derive(Debug)]
pub struct Projector {
    log: Arc<dyn EventLog>,
    models: ReadModels,
    listeners: Vec<Arc<dyn LinkChangeListener>>,
    options: ProjectorOptions,
    applied: watch::Sender<Vec<u64>>,
}

impl Projector {
    /// A projector that resumes from the read models' lowest checkpoints.
    pub async fn resume(
        log: Arc<dyn EventLog>,
        models: ReadModels,
        options: ProjectorOptions,
    ) -> Result<Self, InfraError> {
        let checkpoints = models.checkpoints(log.partitions()).await?;
        let (applied, _) = watch::channel(checkpoints);
        Ok(Self { log, models, listeners: Vec::new(), options, applied })
    }

    /// Told about every changed link after its change is in the store and before progress moves.
    #[must_use]
    pub fn with_listener(mut self, listener: Arc<dyn LinkChangeListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    pub fn progress(&self) -> Progress {
        Progress(self.applied.subscribe())
    }

    /// Reads one batch from every partition and applies it in one store write. Returns how many
    /// records it applied.
    pub async fn step(&self) -> Result<usize, InfraError> {
        let from = self.applied.borrow().clone();
        let (batch, next) = self.read_batch(&from, None).await?;
        self.apply_batch(batch, next, Pace::Live).await
    }

    /// Applies everything that was in the log when called. Returns how many records it applied.
    pub async fn catch_up(&self) -> Result<u64, InfraError> {
        let target = self.log.end_offsets().await?;
        let applied = self.drain(Some(&target), Pace::CatchUp).await?;
        self.record_lag().await;
        Ok(applied)
    }

    /// Follows the log until `cancel`; a batch that fails is retried with backoff, never skipped.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !cancel.is_cancelled() {
            match self.drain(None, Pace::Live).await {
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    self.record_lag().await;
                    let seen = self.applied.borrow().clone();
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = self.log.wait_for_records(&seen, self.options.idle_wait) => {}
                    }
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(self.options.linger) => {}
                    }
                }
                Err(error) => {
                    tracing::error!(%error, retry_in_ms = backoff.as_millis(), "projection failed");
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!("projector stopped");
    }

    /// Applies batches until the log has no more (or, with `until`, up to those offsets), reading
    /// each next batch while the store applies the current one. Returns how many records it applied.
    async fn drain(&self, until: Option<&[u64]>, pace: Pace) -> Result<u64, InfraError> {
        let from = self.applied.borrow().clone();
        let (mut batch, mut next) = self.read_batch(&from, until).await?;
        let mut total = 0;
        while !batch.is_empty() {
            let (applied, read) =
                tokio::join!(self.apply_batch(batch, next.clone(), pace), self.read_batch(&next, until));
            total += applied? as u64;
            (batch, next) = read?;
        }
        Ok(total)
    }

    /// Up to one batch per partition from `from` on (not beyond `until`), with the offsets after it.
    async fn read_batch(&self, from: &[u64], until: Option<&[u64]>) -> Result<(Vec<LogRecord>, Vec<u64>), InfraError> {
        let reads = (0..).zip(from).filter_map(|(partition, offset): (u32, &u64)| {
            let limit = until.map_or(u64::MAX, |until| until[partition as usize].saturating_sub(*offset));
            let max = usize::try_from(limit).unwrap_or(usize::MAX).min(self.options.batch_size);
            (max > 0).then(|| self.log.read(partition, *offset, max))
        });
        // Partitions are read concurrently: one round trip to the log, not one per partition.
        let reads = try_join_all(reads).await?;
        let mut next = from.to_vec();
        // Sized once: a batch grown by doubling reallocates and faults in fresh pages at every step.
        let mut batch = Vec::with_capacity(reads.iter().map(Vec::len).sum());
        for records in reads {
            if let Some(last) = records.last() {
                next[last.position.partition as usize] = last.position.offset + 1;
            }
            batch.extend(records);
        }
        Ok((batch, next))
    }

    async fn apply_batch(&self, batch: Vec<LogRecord>, next: Vec<u64>, pace: Pace) -> Result<usize, InfraError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let (records, undecodable) = (batch.len(), batch.iter().filter(|r| r.event.is_err()).count());
        self.models.apply_projections(&batch).await?;
        let writes = match pace {
            Pace::CatchUp => vec![batch],
            Pace::Live => split_by_link_events(batch, self.options.live_link_events_per_write),
        };
        // Each write is atomic with the checkpoints it moves, so applying them in order is safe.
        for write in writes {
            let changed = self.models.store.apply(write).await?;
            for listener in &self.listeners {
                listener.links_changed(&changed);
            }
        }
        metrics::counter!("projector_records_applied_total").increment(records as u64);
        metrics::counter!("projector_records_undecodable_total").increment(undecodable as u64);
        self.applied.send_replace(next);
        Ok(records)
    }

    async fn record_lag(&self) {
        if let Ok(ends) = self.log.end_offsets().await {
            let applied = self.applied.borrow().clone();
            let lag: u64 = ends.iter().zip(&applied).map(|(end, applied)| end.saturating_sub(*applied)).sum();
            metrics::gauge!("projector_lag_records").set(lag as f64);
        }
    }
}

/// Whether the projector catches up (nothing else writes: the fewer, larger writes the better) or
/// follows the log (commands write too: no single write may take long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    CatchUp,
    Live,
}

/// Splits a batch after every `limit` link events; clicks ride along, they are cheap to fold.
fn split_by_link_events(mut batch: Vec<LogRecord>, limit: usize) -> Vec<Vec<LogRecord>> {
    let is_link_event =
        |record: &LogRecord| matches!(&record.event, Ok(event) if !matches!(event, kurz_domain::Event::Clicked(_)));
    let starts: Vec<usize> = batch
        .iter()
        .enumerate()
        .filter(|(_, record)| is_link_event(record))
        .map(|(index, _)| index)
        .skip(limit.max(1))
        .step_by(limit.max(1))
        .collect();
    // Cut from the back, so each cut moves only its own write; a batch of clicks is not moved at all.
    let mut writes: Vec<Vec<LogRecord>> = starts.iter().rev().map(|start| batch.split_off(*start)).collect();
    writes.push(batch);
    writes.reverse();
    writes
}

/// The projector's applied positions, to wait on for read-your-writes.
#[derive(Debug, Clone)]
pub struct Progress(watch::Receiver<Vec<u64>>);

impl Progress {
    pub fn applied(&self) -> Vec<u64> {
        self.0.borrow().clone()
    }
}

#[async_trait]
impl ProjectionProgress for Progress {
    async fn wait_applied(&self, positions: &[Position], timeout: Duration) -> bool {
        let mut applied = self.0.clone();
        let done = |applied: &Vec<u64>| {
            positions.iter().all(|p| applied.get(p.partition as usize).is_some_and(|next| *next > p.offset))
        };
        matches!(tokio::time::timeout(timeout, applied.wait_for(done)).await, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use kurz_domain::{Code, Event, LinkClicked, LinkDeleted, Timestamp};

    use super::*;

    fn record(offset: u64, link_event: bool) -> LogRecord {
        let code = Code::parse("abc").expect("valid");
        let event = if link_event {
            Event::Deleted(LinkDeleted { code, deleted_at: Timestamp::from_millis(0), key_id: None })
        } else {
            Event::Clicked(LinkClicked::new(code, Timestamp::from_millis(0), None, None, None))
        };
        LogRecord { position: Position { partition: 0, offset }, event: Ok(event) }
    }

    #[test]
    fn live_writes_hold_at_most_the_limit_of_link_events_in_order() {
        let pattern = [true, false, false, true, true, false, true, true, true];
        let batch: Vec<LogRecord> = (0..).zip(pattern).map(|(offset, link)| record(offset, link)).collect();
        let writes = split_by_link_events(batch.clone(), 2);
        let link_events: Vec<usize> =
            writes.iter().map(|w| w.iter().filter(|r| !matches!(r.event, Ok(Event::Clicked(_)))).count()).collect();
        assert_eq!(link_events, vec![2, 2, 2]);
        assert_eq!(writes.concat(), batch, "nothing lost, nothing reordered");
        let clicks: Vec<LogRecord> = (0..5).map(|offset| record(offset, false)).collect();
        assert_eq!(split_by_link_events(clicks.clone(), 2), vec![clicks], "clicks alone are one write");
    }
}

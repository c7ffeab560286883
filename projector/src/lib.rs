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
    Chunk, EventLog, InfraError, LinkChangeListener, LogRecord, PartitionRead, Position, Projection,
    ProjectionProgress, ReadStore,
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
    /// Records per partition and store write: one step while following the log, one write of a
    /// catch-up (larger writes rewrite each stats row once for more clicks) unless the store ends
    /// its writes itself, by what its fold holds ([`ReadStore::ends_its_writes`]): see
    /// `catch_up_batch_size`.
    pub batch_size: usize,
    /// Records per partition in one catch-up write of a store that ends its writes itself: that
    /// store ends a write by what its fold holds, and this bounds the progress a crash can undo.
    pub catch_up_batch_size: usize,
    /// Records read per partition at a time while catching up: a write's records reach the store
    /// in chunks of this size, each folded and freed before the next, so a catch-up holds a few
    /// chunks in memory rather than whole writes.
    pub chunk_size: usize,
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
            catch_up_batch_size: 500_000,
            chunk_size: 5_000,
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
        let (batch, next) = self.read_batch(&from, None, self.options.batch_size).await?;
        self.apply_batch(batch, next).await
    }

    /// Applies everything that was in the log when called. Returns how many records it applied.
    pub async fn catch_up(&self) -> Result<u64, InfraError> {
        let target = self.log.end_offsets().await?;
        let mut applied = 0;
        loop {
            let written = self.write_in_chunks(&target).await?;
            if written == 0 {
                break;
            }
            applied += written;
        }
        self.record_lag().await;
        Ok(applied)
    }

    /// Follows the log until `cancel`; a batch that fails is retried with backoff, never skipped.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !cancel.is_cancelled() {
            match self.drain().await {
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

    /// Applies batches until the log has no more, reading each next batch while the store applies
    /// the current one. Returns how many records it applied.
    async fn drain(&self) -> Result<u64, InfraError> {
        let from = self.applied.borrow().clone();
        let (mut batch, mut next) = self.read_batch(&from, None, self.options.batch_size).await?;
        let mut total = 0;
        while !batch.is_empty() {
            let (applied, read) = tokio::join!(
                self.apply_batch(batch, next.clone()),
                self.read_batch(&next, None, self.options.batch_size)
            );
            total += applied? as u64;
            (batch, next) = read?;
        }
        Ok(total)
    }

    /// Up to `max` records per partition from `from` on (not beyond `until`), with the offsets
    /// after them.
    async fn read_batch(
        &self,
        from: &[u64],
        until: Option<&[u64]>,
        max: usize,
    ) -> Result<(Vec<LogRecord>, Vec<u64>), InfraError> {
        let reads = reads_of(from, until, max);
        if reads.is_empty() {
            return Ok((Vec::new(), from.to_vec()));
        }
        let batch = self.log.read_partitions(&reads).await?;
        let mut next = from.to_vec();
        for record in &batch {
            next[record.position.partition as usize] = record.position.offset + 1;
        }
        Ok((batch, next))
    }

    /// A catch-up's next chunk, up to `chunk_size` records per partition from `from` on (not beyond
    /// `until`), as the log holds them where it can hand them so (clicks folded from their bytes),
    /// with the offsets after them.
    async fn read_chunk(&self, from: &[u64], until: &[u64]) -> Result<(Chunk, Vec<u64>), InfraError> {
        let reads = reads_of(from, Some(until), self.options.chunk_size);
        if reads.is_empty() {
            return Ok((Chunk::Records(Vec::new()), from.to_vec()));
        }
        let Some(chunk) = self.log.read_encoded(&reads).await? else {
            let (chunk, next) = self.read_batch(from, Some(until), self.options.chunk_size).await?;
            return Ok((Chunk::Records(chunk), next));
        };
        let mut next = from.to_vec();
        for position in chunk.positions() {
            next[position.partition as usize] = position.offset + 1;
        }
        Ok((Chunk::Encoded(chunk), next))
    }

    /// While following the log: one batch, in writes of a bounded number of link events.
    async fn apply_batch(&self, batch: Vec<LogRecord>, next: Vec<u64>) -> Result<usize, InfraError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let (records, undecodable) = (batch.len(), batch.iter().filter(|r| r.event.is_err()).count());
        self.models.apply_projections(&batch).await?;
        // Each write is atomic with the checkpoints it moves, so applying them in order is safe.
        for write in split_by_link_events(batch, self.options.live_link_events_per_write) {
            let changed = self.models.store.apply(write).await?;
            self.tell_listeners(&changed);
        }
        count_applied(records, undecodable);
        self.applied.send_replace(next);
        Ok(records)
    }

    /// While catching up (nothing else folds the log): one store write, read and handed over
    /// `chunk_size` records per partition at a time while the store folds the chunks before. The
    /// write ends where the store ends it ([`ReadStore::ends_its_writes`]: once its fold holds as
    /// much as one write may) or after `catch_up_batch_size` records per partition, or else after
    /// `batch_size`; never beyond `until`. Returns how many records it applied.
    async fn write_in_chunks(&self, until: &[u64]) -> Result<u64, InfraError> {
        let from = self.applied.borrow().clone();
        let batch = if self.models.store.ends_its_writes() {
            self.options.catch_up_batch_size
        } else {
            self.options.batch_size
        };
        let batch = u64::try_from(batch).unwrap_or(u64::MAX);
        let end: Vec<u64> =
            from.iter().zip(until).map(|(from, until)| (*until).min(from.saturating_add(batch))).collect();
        let (sender, chunks) = tokio::sync::mpsc::channel(2);
        // Each chunk sent: its records, those of them that did not decode, and the offsets after it.
        let mut sent: Vec<(usize, usize, Vec<u64>)> = Vec::new();
        let (record_sent, end) = (&mut sent, &end);
        // Owns the sender: should the feed fail, the store hears that the chunks stopped.
        let reading = async move {
            let mut next = from;
            loop {
                let (chunk, after) = self.read_chunk(&next, end).await.map_err(Fed::Failed)?;
                if chunk.is_empty() {
                    break;
                }
                self.models.apply_projections(chunk.projected()).await.map_err(Fed::Failed)?;
                record_sent.push((chunk.len(), chunk.undecodable(), after.clone()));
                next = after;
                sender.send(chunk).await.map_err(|_| Fed::StoreStopped)?;
            }
            sender.send(Chunk::End).await.map_err(|_| Fed::StoreStopped)
        };
        let (written, fed) = tokio::join!(self.models.store.apply_chunks(chunks), reading);
        let written = match (written, fed) {
            // The store ended the write early: the reader's next chunk found it gone.
            (Ok(written), Ok(()) | Err(Fed::StoreStopped)) if written.ended_after.is_some() => written,
            (Ok(written), Ok(())) => written,
            // The store gave up on the write when the feed failed: the feed's error says why.
            (_, Err(Fed::Failed(error))) | (Err(error), _) => return Err(error),
            (Ok(_), Err(Fed::StoreStopped)) => {
                return Err(InfraError::new("catching up", "the read store stopped taking records"));
            }
        };
        let taken = &sent[..written.ended_after.unwrap_or(sent.len()).min(sent.len())];
        let records = taken.iter().map(|(records, ..)| records).sum::<usize>();
        let undecodable = taken.iter().map(|(_, undecodable, _)| undecodable).sum::<usize>();
        self.tell_listeners(&written.changed);
        count_applied(records, undecodable);
        if let Some((.., next)) = taken.last() {
            self.applied.send_replace(next.clone());
        }
        Ok(records as u64)
    }

    fn tell_listeners(&self, changed: &[kurz_domain::Code]) {
        for listener in &self.listeners {
            listener.links_changed(changed);
        }
    }

    async fn record_lag(&self) {
        if let Ok(ends) = self.log.end_offsets().await {
            let applied = self.applied.borrow().clone();
            let lag: u64 = ends.iter().zip(&applied).map(|(end, applied)| end.saturating_sub(*applied)).sum();
            metrics::gauge!("projector_lag_records").set(lag as f64);
        }
    }
}

/// Up to `max` records per partition from `from` on, not beyond `until`: the partitions with any.
fn reads_of(from: &[u64], until: Option<&[u64]>, max: usize) -> Vec<PartitionRead> {
    (0..)
        .zip(from)
        .filter_map(|(partition, offset): (u32, &u64)| {
            let limit = until.map_or(u64::MAX, |until| until[partition as usize].saturating_sub(*offset));
            let max = usize::try_from(limit).unwrap_or(usize::MAX).min(max);
            (max > 0).then_some(PartitionRead { partition, from: *offset, max })
        })
        .collect()
}

/// How a catch-up's feed of chunks ended, when it did not end well.
enum Fed {
    /// Reading the log or applying a projection failed.
    Failed(InfraError),
    /// The store stopped taking chunks (its write failed).
    StoreStopped,
}

fn count_applied(records: usize, undecodable: usize) {
    metrics::counter!("projector_records_applied_total").increment(records as u64);
    metrics::counter!("projector_records_undecodable_total").increment(undecodable as u64);
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

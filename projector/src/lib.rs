//! The projector folds the event log into the read store.
//!
//! Exactly-once effects come from the store: each write carries the partition checkpoints it moves,
//! atomically, and records below a checkpoint are skipped. So the projector may crash anywhere and
//! simply start again from the store's checkpoints; a rebuild is a start from an empty store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kurz_ports::{EventLog, InfraError, LinkChangeListener, LogRecord, Position, ProjectionProgress, ReadStore};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
pub struct ProjectorOptions {
    /// Records read per partition and step.
    pub batch_size: usize,
    /// How long an idle projector waits for new records before polling again.
    pub idle_wait: Duration,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self { batch_size: 2000, idle_wait: Duration::from_millis(500) }
    }
}

#[derive(Debug)]
pub struct Projector {
    log: Arc<dyn EventLog>,
    store: Arc<dyn ReadStore>,
    listeners: Vec<Arc<dyn LinkChangeListener>>,
    options: ProjectorOptions,
    applied: watch::Sender<Vec<u64>>,
}

impl Projector {
    /// A projector that resumes from the store's checkpoints.
    pub async fn resume(
        log: Arc<dyn EventLog>,
        store: Arc<dyn ReadStore>,
        options: ProjectorOptions,
    ) -> Result<Self, InfraError> {
        let checkpoints = store.checkpoints(log.partitions()).await?;
        let (applied, _) = watch::channel(checkpoints);
        Ok(Self { log, store, listeners: Vec::new(), options, applied })
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
        let mut next = self.applied.borrow().clone();
        let mut batch: Vec<LogRecord> = Vec::new();
        for (partition, from) in (0..).zip(next.iter_mut()) {
            let records = self.log.read(partition, *from, self.options.batch_size).await?;
            if let Some(last) = records.last() {
                *from = last.position.offset + 1;
            }
            batch.extend(records);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let changed = self.store.apply(&batch).await?;
        for listener in &self.listeners {
            listener.links_changed(&changed);
        }
        let undecodable = batch.iter().filter(|r| r.event.is_err()).count();
        metrics::counter!("projector_records_applied_total").increment(batch.len() as u64);
        metrics::counter!("projector_records_undecodable_total").increment(undecodable as u64);
        self.applied.send_replace(next);
        Ok(batch.len())
    }

    /// Applies everything that was in the log when called. Returns how many records it applied.
    pub async fn catch_up(&self) -> Result<u64, InfraError> {
        let target = self.log.end_offsets().await?;
        let mut total = 0;
        while self.applied.borrow().iter().zip(&target).any(|(applied, end)| applied < end) {
            total += self.step().await? as u64;
        }
        self.record_lag().await;
        Ok(total)
    }

    /// Follows the log until `cancel`; a step that fails is retried with backoff, never skipped.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !cancel.is_cancelled() {
            match self.step().await {
                Ok(0) => {
                    self.record_lag().await;
                    let seen = self.applied.borrow().clone();
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = self.log.wait_for_records(&seen, self.options.idle_wait) => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(50),
                Err(error) => {
                    tracing::error!(%error, retry_in_ms = backoff.as_millis(), "projection step failed");
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

    async fn record_lag(&self) {
        if let Ok(ends) = self.log.end_offsets().await {
            let applied = self.applied.borrow().clone();
            let lag: u64 = ends.iter().zip(&applied).map(|(end, applied)| end.saturating_sub(*applied)).sum();
            metrics::gauge!("projector_lag_records").set(lag as f64);
        }
    }
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

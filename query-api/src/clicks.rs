//! Clicks leave the redirect path through a bounded queue; one task appends them in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kurz_domain::{Event, LinkClicked};
use kurz_ports::EventLog;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
pub struct ClickRecorderOptions {
    /// Clicks held in memory while the log is slow or away.
    pub queue_capacity: usize,
    /// Most clicks in one append.
    pub batch_size: usize,
    /// How long the first click of a batch waits for company: fewer, larger appends (each one a
    /// durable commit) at the cost of this much delay before clicks reach the stats.
    pub linger: Duration,
    /// How long a shutdown keeps retrying an unavailable log before giving up on queued clicks.
    pub shutdown_grace: Duration,
}

impl Default for ClickRecorderOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_size: 5_000,
            linger: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<LinkClicked>,
    queued: Arc<AtomicU64>,
    appended: watch::Receiver<u64>,
}

impl ClickRecorder {
    /// Starts the append task; it drains the queue and stops when `stop` is cancelled.
    pub fn start(
        log: Arc<dyn EventLog>,
        options: ClickRecorderOptions,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let (appended_sender, appended) = watch::channel(0);
        let task = tokio::spawn(append_clicks(log, receiver, appended_sender, options, stop));
        (Self { queue, queued: Arc::new(AtomicU64::new(0)), appended }, task)
    }

    /// Queues a click without waiting. A full queue drops it and counts the loss.
    pub fn record(&self, click: LinkClicked) {
        if self.queue.try_send(click).is_ok() {
            self.queued.fetch_add(1, Ordering::SeqCst);
        } else {
            metrics::counter!("clicks_dropped_total").increment(1);
            tracing::warn!("click queue full; click dropped");
        }
    }

    /// Resolves once every click queued before the call is in the log.
    pub async fn flushed(&self) {
        let target = self.queued.load(Ordering::SeqCst);
        let mut appended = self.appended.clone();
        let _ = appended.wait_for(|appended| *appended >= target).await;
    }
}

async fn append_clicks(
    log: Arc<dyn EventLog>,
    mut queue: mpsc::Receiver<LinkClicked>,
    appended: watch::Sender<u64>,
    options: ClickRecorderOptions,
    stop: CancellationToken,
) {
    let mut batch: Vec<LinkClicked> = Vec::with_capacity(options.batch_size);
    let mut events: Vec<Event> = Vec::with_capacity(options.batch_size);
    loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, options.batch_size) => {
                if received == 0 {
                    break;
                }
            }
            () = stop.cancelled() => break,
        }
        let lingering = tokio::time::sleep(options.linger);
        tokio::pin!(lingering);
        while batch.len() < options.batch_size {
            let room = options.batch_size - batch.len();
            tokio::select! {
                received = queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                }
                () = &mut lingering => break,
                () = stop.cancelled() => break,
            }
        }
        events.extend(batch.drain(..).map(Event::Clicked));
        append_with_retry(&*log, &events, None).await;
        appended.send_modify(|count| *count += u64::try_from(events.len()).unwrap_or(u64::MAX));
        events.clear();
    }
    // Shutdown: take what is still queued, and keep trying for a while.
    queue.close();
    while let Ok(click) = queue.try_recv() {
        batch.push(click);
    }
    events.extend(batch.drain(..).map(Event::Clicked));
    for chunk in events.chunks(options.batch_size.max(1)) {
        let count = chunk.len() as u64;
        if append_with_retry(&*log, chunk, Some(options.shutdown_grace)).await {
            appended.send_modify(|c| *c += count);
        } else {
            metrics::counter!("clicks_lost_total").increment(count);
            tracing::error!(clicks = count, "event log unavailable at shutdown; clicks lost");
        }
    }
    tracing::info!("click recorder stopped");
}

/// Appends the batch, retrying with backoff; gives up only after `deadline` (if any).
async fn append_with_retry(log: &dyn EventLog, batch: &[Event], deadline: Option<Duration>) -> bool {
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(20);
    loop {
        match log.append(batch).await {
            Ok(_) => {
                metrics::counter!("clicks_appended_total").increment(batch.len() as u64);
                return true;
            }
            Err(error) => {
                metrics::counter!("click_append_failures_total").increment(1);
                tracing::warn!(%error, clicks = batch.len(), retry_in_ms = backoff.as_millis(), "cannot append clicks");
                if deadline.is_some_and(|d| started.elapsed() >= d) {
                    return false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

//! Clicks leave the redirect path through a bounded queue; one task appends them in batches.
//!
//! With a spool (distributed mode), a batch the log does not take — it fails, or every append slot
//! has been busy for `spool_after` — goes to the disk spool instead, and new batches follow it there
//! until a drain task has sent the spool back to the log. Redirects never wait for any of it, but
//! for a limited link's click ([`ClickRecorder::take_and_record`]), which is durable before its
//! redirect is answered: in the log on one machine, in the spool when the log is a broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kurz_domain::Code;
use kurz_domain::Event;
use kurz_domain::link::MaxClicks;
use kurz_ports::{ClickQuota, EventLog, InfraError, PartlyAppended};
use kurz_service_kit::throttle::{LOG_INTERVAL, Throttle};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ClickSpool;
use crate::click_details::{ClickDetailer, QueuedClick};

#[derive(Debug, Clone, Copy)]
pub struct ClickRecorderOptions {
    /// Clicks held in memory while the log is slow or away.
    pub queue_capacity: usize,
    /// Most clicks in one append.
    pub batch_size: usize,
    /// How long the first click of a batch waits for company: fewer, larger appends (each one a
    /// durable commit) at the cost of this much delay before clicks reach the stats.
    pub linger: Duration,
    /// How long a shutdown keeps retrying an unavailable log before giving up on queued clicks
    /// (or, with a spool, leaving them there for the next start).
    pub shutdown_grace: Duration,
    /// With a spool: how long a batch waits for an append slot before it is spooled instead.
    pub spool_after: Duration,
}

impl Default for ClickRecorderOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_size: 5_000,
            linger: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(10),
            spool_after: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<QueuedClick>,
    queued: Arc<AtomicU64>,
    appended: watch::Receiver<u64>,
    durable: Arc<Durable>,
}

/// Where a click that must be durable before its redirect is answered goes.
#[derive(Debug)]
struct Durable {
    detailer: ClickDetailer,
    to: DurableTo,
}

#[derive(Debug)]
enum DurableTo {
    /// An embedded log: one durable commit, shared with whatever else commits at the time.
    Log(Arc<dyn EventLog>),
    /// A broker: the local spool, whose drain sends it on (a redirect never waits on the broker).
    Spool(Arc<Delivery>),
}

impl ClickRecorder {
    /// Starts the append task; it drains the queue and stops when `stop` is cancelled.
    pub fn start(
        log: Arc<dyn EventLog>,
        detailer: ClickDetailer,
        options: ClickRecorderOptions,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        Self::start_with(log, None, detailer, options, stop)
    }

    /// As [`Self::start`], spooling to disk what the log does not take in time.
    pub fn start_spooled(
        log: Arc<dyn EventLog>,
        spool: Arc<ClickSpool>,
        detailer: ClickDetailer,
        options: ClickRecorderOptions,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        Self::start_with(log, Some(spool), detailer, options, stop)
    }

    fn start_with(
        log: Arc<dyn EventLog>,
        spool: Option<Arc<ClickSpool>>,
        detailer: ClickDetailer,
        options: ClickRecorderOptions,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let (appended_sender, appended) = watch::channel(0);
        let (task, to) = match spool {
            None => {
                let to = DurableTo::Log(Arc::clone(&log));
                (tokio::spawn(append_clicks(log, receiver, appended_sender, detailer.clone(), options, stop)), to)
            }
            Some(spool) => {
                let delivery = Arc::new(Delivery {
                    log,
                    spool,
                    settled: appended_sender,
                    slots: Arc::new(Semaphore::new(APPEND_SLOTS)),
                    spooled: Notify::new(),
                    options,
                });
                let to = DurableTo::Spool(Arc::clone(&delivery));
                (tokio::spawn(spool_clicks(delivery, receiver, detailer.clone(), stop)), to)
            }
        };
        let durable = Arc::new(Durable { detailer, to });
        (Self { queue, queued: Arc::new(AtomicU64::new(0)), appended, durable }, task)
    }

    /// Takes one of a limited link's clicks from `quota` and records the click durably before
    /// returning (`false`: none left, nothing recorded). Its redirect is answered only then, so a
    /// crash never leaves a served click of a limited link uncounted. On one machine the take and
    /// the click are one commit of the log; with a broker, the take is Redis's and the click goes to
    /// the spool (a local write), which the drain sends on.
    pub async fn take_and_record(
        &self,
        quota: &dyn ClickQuota,
        code: &Code,
        max: MaxClicks,
        click: QueuedClick,
    ) -> Result<bool, InfraError> {
        let events = self.durable.detailer.events([click]);
        if let Some(taken) = quota.take_and_append(code, max, &events).await? {
            if taken {
                metrics::counter!("clicks_appended_total").increment(1);
            }
            return Ok(taken);
        }
        if !quota.take(code, max).await? {
            return Ok(false);
        }
        self.record_durably(events).await?;
        Ok(true)
    }

    async fn record_durably(&self, events: Vec<Event>) -> Result<(), InfraError> {
        match &self.durable.to {
            DurableTo::Log(log) => {
                log.append(&events).await?;
                metrics::counter!("clicks_appended_total").increment(1);
            }
            DurableTo::Spool(delivery) => {
                // The drain counts it settled once sent, as it does a queued click.
                self.queued.fetch_add(1, Ordering::SeqCst);
                if let Err(error) = delivery.push(events).await {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    return Err(error);
                }
                metrics::counter!("clicks_spooled_total").increment(1);
                delivery.spooled.notify_one();
            }
        }
        Ok(())
    }

    /// Queues a click without waiting. A full queue drops it and counts the loss.
    pub fn record(&self, click: QueuedClick) {
        static QUEUE_FULL: Throttle = Throttle::new(LOG_INTERVAL);
        if self.queue.try_send(click).is_ok() {
            self.queued.fetch_add(1, Ordering::SeqCst);
        } else {
            metrics::counter!("clicks_dropped_total").increment(1);
            if let Some(dropped) = QUEUE_FULL.hit() {
                tracing::warn!(dropped, "click queue full; clicks dropped (one line per 10 s)");
            }
        }
    }

    /// Resolves once every click queued before the call is in the log (or was lost, and counted).
    pub async fn flushed(&self) {
        let target = self.queued.load(Ordering::SeqCst);
        let mut appended = self.appended.clone();
        let _ = appended.wait_for(|appended| *appended >= target).await;
    }
}

/// Takes the next batch from the queue: waits for a first click, then up to `linger` for more.
/// `false` once the queue is closed or `stop` is cancelled with nothing taken.
async fn next_batch(
    queue: &mut mpsc::Receiver<QueuedClick>,
    batch: &mut Vec<QueuedClick>,
    options: &ClickRecorderOptions,
    stop: &CancellationToken,
) -> bool {
    tokio::select! {
        received = queue.recv_many(batch, options.batch_size) => {
            if received == 0 {
                return false;
            }
        }
        () = stop.cancelled() => return false,
    }
    let lingering = tokio::time::sleep(options.linger);
    tokio::pin!(lingering);
    while batch.len() < options.batch_size {
        let room = options.batch_size - batch.len();
        tokio::select! {
            received = queue.recv_many(batch, room) => {
                if received == 0 {
                    break;
                }
            }
            () = &mut lingering => break,
            () = stop.cancelled() => break,
        }
    }
    true
}

/// Clicks a drain sends back in one append, from as many spooled batches as hold them.
const DRAIN_CLICKS: usize = 5_000;

/// Appends in flight at once: enough to keep the queue moving while the log is slow.
const APPEND_SLOTS: usize = 8;

/// The spooling recorder's shared parts.
#[derive(Debug)]
struct Delivery {
    log: Arc<dyn EventLog>,
    spool: Arc<ClickSpool>,
    /// Clicks that left the recorder for good: in the log, or lost and counted.
    settled: watch::Sender<u64>,
    slots: Arc<Semaphore>,
    /// Wakes the drain task when a batch was spooled.
    spooled: Notify,
    options: ClickRecorderOptions,
}

impl Delivery {
    fn settle(&self, clicks: usize) {
        self.settled.send_modify(|count| *count += clicks as u64);
    }

    fn appended(&self, clicks: usize) {
        metrics::counter!("clicks_appended_total").increment(clicks as u64);
        self.settle(clicks);
    }

    /// Appends the batch if the log is taking appends, else spools it.
    async fn deliver(self: &Arc<Self>, events: Vec<Event>) {
        if self.spool.is_empty()
            && let Ok(Ok(slot)) =
                tokio::time::timeout(self.options.spool_after, Arc::clone(&self.slots).acquire_owned()).await
        {
            let delivery = Arc::clone(self);
            tokio::spawn(async move {
                match delivery.log.append_each(&events).await {
                    Ok(_) => delivery.appended(events.len()),
                    Err(PartlyAppended { error, acknowledged }) => {
                        metrics::counter!("click_append_failures_total").increment(1);
                        delivery.appended(acknowledged.len());
                        // Only what the log did not take: the rest is in it already.
                        let rest = unacknowledged(events, &acknowledged);
                        tracing::warn!(%error, clicks = rest.len(), acknowledged = acknowledged.len(), "cannot append clicks; spooling them");
                        delivery.spool(rest).await;
                    }
                }
                drop(slot);
            });
            return;
        }
        self.spool(events).await;
    }

    /// Spools a batch durably, off the async workers; a full spool takes nothing.
    async fn push(&self, events: Vec<Event>) -> Result<(), InfraError> {
        let spool = Arc::clone(&self.spool);
        match tokio::task::spawn_blocking(move || spool.push(&events)).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(InfraError::new("click spool", "the click spool is full")),
            Ok(Err(error)) => Err(InfraError::new("click spool", error)),
            Err(error) => Err(InfraError::new("click spool task", error)),
        }
    }

    async fn spool(&self, events: Vec<Event>) {
        static DROPPED: Throttle = Throttle::new(LOG_INTERVAL);
        let count = events.len();
        match self.push(events).await {
            Ok(()) => {
                metrics::counter!("clicks_spooled_total").increment(count as u64);
                self.spooled.notify_one();
            }
            Err(error) => {
                metrics::counter!("clicks_dropped_total").increment(count as u64);
                if let Some(batches) = DROPPED.hit() {
                    tracing::error!(%error, clicks = count, batches, "clicks dropped (one line per 10 s)");
                }
                self.settle(count);
            }
        }
    }

    /// Sends spooled batches back to the log, oldest first, until the spool is empty. `false` when
    /// the log refused one (the caller waits before trying again). Several batches go in one
    /// append: while the spool is not empty, every new batch is spooled too, and a drain that sent
    /// one batch per append would barely keep up with them (a soak measured a 60 s outage's backlog
    /// still there minutes later).
    async fn drain(&self) -> bool {
        loop {
            let spool = Arc::clone(&self.spool);
            let oldest = match tokio::task::spawn_blocking(move || spool.oldest_batches(DRAIN_CLICKS)).await {
                Ok(Ok(batches)) if batches.is_empty() => return true,
                Ok(Ok(batches)) => batches,
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot read the click spool");
                    return false;
                }
                Err(error) => {
                    tracing::error!(%error, "click spool task failed");
                    return false;
                }
            };
            let events: Vec<Event> = oldest.iter().flat_map(|batch| batch.events.iter().cloned()).collect();
            let sequences: Vec<u64> = oldest.iter().map(|batch| batch.sequence).collect();
            match self.log.append_each(&events).await {
                Ok(_) => {
                    self.remove_sent(sequences).await;
                    self.appended(events.len());
                }
                Err(PartlyAppended { error, acknowledged }) => {
                    static REFUSED: Throttle = Throttle::new(LOG_INTERVAL);
                    metrics::counter!("click_append_failures_total").increment(1);
                    if let Some(attempts) = REFUSED.hit() {
                        tracing::warn!(%error, clicks = events.len(), acknowledged = acknowledged.len(), attempts, "the log still refuses spooled clicks (one line per 10 s)");
                    }
                    if !acknowledged.is_empty() {
                        self.keep_unacknowledged(unacknowledged(events, &acknowledged), acknowledged.len(), sequences)
                            .await;
                    }
                    return false;
                }
            }
        }
    }

    /// After a drain's append the log took in part: the sent batches give way to one batch of the
    /// clicks it did not take, so the others are not sent twice. Should the spool refuse that batch,
    /// the sent ones stay, to be sent again whole (duplicates, which consumers drop by event id,
    /// rather than lost clicks).
    async fn keep_unacknowledged(&self, rest: Vec<Event>, acknowledged: usize, sent: Vec<u64>) {
        match self.push(rest).await {
            Ok(()) => {
                self.remove_sent(sent).await;
                self.appended(acknowledged);
            }
            Err(error) => {
                tracing::error!(%error, acknowledged, "cannot spool the clicks the log did not take; those it took will be sent twice");
            }
        }
    }

    /// Removes batches the log has, each one whatever happened to the one before: a batch left
    /// behind is sent twice.
    async fn remove_sent(&self, sequences: Vec<u64>) {
        let spool = Arc::clone(&self.spool);
        let failed = tokio::task::spawn_blocking(move || {
            sequences.into_iter().filter_map(|s| spool.remove(s).err().map(|e| (s, e))).collect::<Vec<_>>()
        })
        .await;
        match failed {
            Ok(failed) => {
                for (sequence, error) in failed {
                    tracing::error!(sequence, %error, "cannot remove a sent batch from the click spool; it may be sent twice");
                }
            }
            Err(error) => tracing::error!(%error, "click spool task failed; sent batches may be sent twice"),
        }
    }
}

/// The events whose indices `acknowledged` (ascending) does not hold.
fn unacknowledged(events: Vec<Event>, acknowledged: &[usize]) -> Vec<Event> {
    let mut acknowledged = acknowledged.iter().copied().peekable();
    events
        .into_iter()
        .enumerate()
        .filter(|(index, _)| acknowledged.next_if_eq(index).is_none())
        .map(|(_, event)| event)
        .collect()
}

async fn spool_clicks(
    delivery: Arc<Delivery>,
    mut queue: mpsc::Receiver<QueuedClick>,
    detailer: ClickDetailer,
    stop: CancellationToken,
) {
    let drainer = tokio::spawn({
        let (delivery, stop) = (Arc::clone(&delivery), stop.clone());
        async move {
            let mut backoff = Duration::from_millis(100);
            while !stop.is_cancelled() {
                let wait = if delivery.drain().await {
                    backoff = Duration::from_millis(100);
                    Duration::from_secs(1)
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                };
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = delivery.spooled.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    });
    let options = delivery.options;
    let mut batch: Vec<QueuedClick> = Vec::with_capacity(options.batch_size);
    while next_batch(&mut queue, &mut batch, &options, &stop).await {
        delivery.deliver(detailer.events(batch.drain(..))).await;
    }
    // Shutdown: what is still queued goes out like any batch; then wait for appends in flight.
    queue.close();
    while let Ok(click) = queue.try_recv() {
        batch.push(click);
    }
    let events = detailer.events(batch);
    for chunk in events.chunks(options.batch_size.max(1)) {
        delivery.deliver(chunk.to_vec()).await;
    }
    let all = u32::try_from(APPEND_SLOTS).expect("a handful of slots");
    let _ = tokio::time::timeout(options.shutdown_grace, delivery.slots.acquire_many(all)).await;
    let _ = drainer.await;
    // One last go at the spool; whatever stays there is sent after the next start.
    let _ = tokio::time::timeout(options.shutdown_grace, delivery.drain()).await;
    tracing::info!("click recorder stopped");
}

async fn append_clicks(
    log: Arc<dyn EventLog>,
    mut queue: mpsc::Receiver<QueuedClick>,
    appended: watch::Sender<u64>,
    detailer: ClickDetailer,
    options: ClickRecorderOptions,
    stop: CancellationToken,
) {
    let mut batch: Vec<QueuedClick> = Vec::with_capacity(options.batch_size);
    while next_batch(&mut queue, &mut batch, &options, &stop).await {
        let events = detailer.events(batch.drain(..));
        append_with_retry(&*log, &events, None).await;
        appended.send_modify(|count| *count += u64::try_from(events.len()).unwrap_or(u64::MAX));
    }
    // Shutdown: take what is still queued, and keep trying for a while.
    queue.close();
    while let Ok(click) = queue.try_recv() {
        batch.push(click);
    }
    let events = detailer.events(batch);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use kurz_domain::{LinkClicked, Timestamp};
    use kurz_ports::{LogRecord, PartlyAppended, Position};

    use super::*;

    /// A broker that goes away in the middle of appends: its first `partial` appends take the
    /// first half of the events and never acknowledge the rest (as a broker that answered the
    /// requests in flight and then closed its connections); later appends take everything.
    #[derive(Debug)]
    struct BrokerGoingAway {
        partial: Mutex<usize>,
        written: Mutex<Vec<Event>>,
    }

    #[async_trait]
    impl EventLog for BrokerGoingAway {
        fn partitions(&self) -> u32 {
            1
        }

        async fn append(&self, events: &[Event]) -> Result<Vec<Position>, InfraError> {
            self.append_each(events).await.map_err(|partly| partly.error)
        }

        async fn append_each(&self, events: &[Event]) -> Result<Vec<Position>, PartlyAppended> {
            let taken = {
                let mut partial = self.partial.lock().expect("lock");
                if *partial > 0 {
                    *partial -= 1;
                    events.len() / 2
                } else {
                    events.len()
                }
            };
            let mut written = self.written.lock().expect("lock");
            let first = written.len() as u64;
            written.extend_from_slice(&events[..taken]);
            if taken < events.len() {
                let error = InfraError::new("producing an event", "message timed out").with_unknown_outcome();
                return Err(PartlyAppended { error, acknowledged: (0..taken).collect() });
            }
            Ok((first..).take(taken).map(|offset| Position { partition: 0, offset }).collect())
        }

        async fn read(&self, _: u32, _: u64, _: usize) -> Result<Vec<LogRecord>, InfraError> {
            Ok(Vec::new())
        }

        async fn end_offsets(&self) -> Result<Vec<u64>, InfraError> {
            Ok(vec![0])
        }

        async fn wait_for_records(&self, _: &[u64], _: Duration) {}
    }

    #[tokio::test]
    async fn clicks_a_broker_took_before_it_went_away_are_not_sent_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = Arc::new(ClickSpool::open(dir.path(), 1 << 20).expect("opens"));
        // The recorder's append and then the drain's first append are cut short.
        let log = Arc::new(BrokerGoingAway { partial: Mutex::new(2), written: Mutex::default() });
        let options = ClickRecorderOptions { linger: Duration::from_secs(1), ..ClickRecorderOptions::default() };
        let stop = CancellationToken::new();
        let (recorder, task) =
            ClickRecorder::start_spooled(log.clone(), spool.clone(), ClickDetailer::default(), options, stop.clone());
        let code = Code::parse("abc").expect("valid");
        for at in 0..100 {
            recorder.record(LinkClicked::new(code.clone(), Timestamp::from_millis(at), None, None, None).into());
        }
        tokio::time::timeout(Duration::from_secs(30), recorder.flushed()).await.expect("every click settles");
        stop.cancel();
        task.await.expect("recorder stops");

        let written = log.written.lock().expect("lock");
        let mut times: BTreeMap<i64, usize> = BTreeMap::new();
        for event in written.iter() {
            let Event::Clicked(click) = event else { panic!("only clicks") };
            *times.entry(click.clicked_at.as_millis()).or_default() += 1;
        }
        assert_eq!(times.len(), 100, "every click is in the log");
        assert!(times.values().all(|count| *count == 1), "none twice: {times:?}");
        assert_eq!(*log.partial.lock().expect("lock"), 0, "both cut-short appends happened");
        assert!(spool.is_empty(), "nothing left in the spool");
    }
}

//! Following the event topic on a consumer group: the projector's source in distributed mode.
//!
//! The group spreads partitions over the running projectors and moves them when one joins, leaves
//! or dies. Effects are exactly once because the sink (the read store) keeps its own checkpoints,
//! atomically with the effects: on every assignment the consumer starts each partition at the
//! sink's checkpoint, and a record the sink already holds is skipped there. Offsets are committed
//! to Kafka after the sink applied them, for lag monitoring and tools, never relied on for
//! correctness.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kurz_ports::{InfraError, LogRecord, Position};
use kurz_schemas::Codec;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::{KafkaConfig, registry};

/// Where the records go: the projector's store and listeners.
#[async_trait]
pub trait GroupSink: Send + Sync + 'static {
    /// For each partition, the offset of the next record the sink needs.
    async fn checkpoints(&self, partitions: &[u32]) -> Result<Vec<u64>, InfraError>;
    /// Applies records with exactly-once effect (records below a checkpoint are skipped).
    async fn apply(&self, records: Vec<LogRecord>) -> Result<(), InfraError>;
}

#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub group_id: String,
    /// Most records applied in one sink write.
    pub batch_size: usize,
    /// How long the first record of a batch waits for company.
    pub linger: Duration,
    /// How long a silent worker (crashed, partitioned away) keeps its partitions before the group
    /// hands them to the others.
    pub session_timeout: Duration,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            group_id: "kurz-projector".into(),
            batch_size: 20_000,
            linger: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
        }
    }
}

struct GroupContext {
    topic: Arc<str>,
    sink: Arc<dyn GroupSink>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&*self.topic) {
            let lag: i64 = topic.partitions.values().filter(|p| p.partition >= 0).map(|p| p.consumer_lag.max(0)).sum();
            metrics::gauge!("projector_lag_records").set(lag as f64);
        }
    }
}

impl ConsumerContext for GroupContext {
    /// Starts newly assigned partitions at the sink's checkpoints (not at the committed offsets:
    /// the sink is the truth, and after a rebuild it starts again from zero).
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = self.start_at_checkpoints(tpl);
                tracing::info!(partitions = ?partitions_of(tpl, &self.topic), ?starts, "partitions assigned");
                if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(partitions = ?partitions_of(tpl, &self.topic), "partitions revoked");
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed");
                if cooperative { Ok(()) } else { consumer.unassign() }
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, "applying a rebalance failed");
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<u32> {
    tpl.elements_for_topic(topic).iter().filter_map(|e| u32::try_from(e.partition()).ok()).collect()
}

impl GroupContext {
    /// Returns the offsets set, or `None` when stopping before the sink answered.
    fn start_at_checkpoints(&self, tpl: &mut TopicPartitionList) -> Option<Vec<u64>> {
        let partitions = partitions_of(tpl, &self.topic);
        let mut backoff = Duration::from_millis(100);
        // Starting anywhere else could skip records the sink lacks: wait for the sink instead.
        let checkpoints = loop {
            match self.runtime.block_on(self.sink.checkpoints(&partitions)) {
                Ok(checkpoints) => break checkpoints,
                Err(error) if !self.stop.load(Ordering::SeqCst) => {
                    tracing::error!(%error, retry_in_ms = backoff.as_millis(), "cannot read the sink's checkpoints");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(_) => return None,
            }
        };
        for (partition, checkpoint) in partitions.iter().zip(&checkpoints) {
            let at = Offset::Offset(i64::try_from(*checkpoint).unwrap_or(i64::MAX));
            if let Err(error) = tpl.set_partition_offset(&self.topic, partition_id(*partition), at) {
                tracing::error!(%error, partition, "cannot set a start offset");
            }
        }
        Some(checkpoints)
    }
}

/// For each partition whose records in `batch` do not follow on from its checkpoint without a
/// hole, the first missing offset. Records below the checkpoint (read twice around a rebalance)
/// are no hole. A hole means this consumer read past records the sink lacks: the sink lost writes
/// it had acknowledged (a Redis restarted from an older file, a failover to a lagging replica), or
/// the read skipped some. A hole at an offset already read again (`read_again`) is in the log
/// itself — retention deleted those records — and is let through: the fold counts it
/// (`projector_skipped_records_total`).
fn holes(batch: &[LogRecord], checkpoints: &BTreeMap<u32, u64>, read_again: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
    let mut next = checkpoints.clone();
    let mut holes = BTreeMap::new();
    for record in batch {
        let Position { partition, offset } = record.position;
        if holes.contains_key(&partition) {
            continue;
        }
        let expected = next.entry(partition).or_default();
        if offset > *expected && read_again.get(&partition) != Some(expected) {
            holes.insert(partition, *expected);
        } else {
            *expected = (*expected).max(offset + 1);
        }
    }
    holes
}

fn partition_id(partition: u32) -> i32 {
    i32::try_from(partition).expect("partition counts fit Kafka's i32")
}

/// A projector's membership in the consumer group. [`GroupConsumer::run`] blocks its thread: the
/// consumer polls there, and rebalances (which read the sink's checkpoints) run inside those polls.
pub struct GroupConsumer {
    consumer: BaseConsumer<GroupContext>,
    topic: Arc<str>,
    codec: Codec,
    options: GroupOptions,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("topic", &self.topic)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Stops a running [`GroupConsumer`] from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl GroupConsumer {
    /// Joins the group and subscribes (the first join of a group takes a few seconds).
    pub async fn join(
        config: &KafkaConfig,
        options: GroupOptions,
        sink: Arc<dyn GroupSink>,
    ) -> Result<Self, InfraError> {
        crate::topic::ensure_topic(config).await?;
        let codec = registry::register_catalog(config).await?;
        let topic: Arc<str> = config.topic.as_str().into();
        let stop = Arc::new(AtomicBool::new(false));
        let context = GroupContext {
            topic: Arc::clone(&topic),
            sink,
            runtime: tokio::runtime::Handle::current(),
            stop: Arc::clone(&stop),
        };
        let consumer: BaseConsumer<GroupContext> = config
            .client_config()
            .set("group.id", &options.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", "5000")
            .set("session.timeout.ms", options.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (options.session_timeout / 4).as_millis().to_string())
            .create_with_context(context)
            .map_err(|error| InfraError::new("creating the Kafka consumer", error))?;
        consumer
            .subscribe(&[&config.topic])
            .map_err(|error| InfraError::new("subscribing to the event topic", error))?;
        Ok(Self { consumer, topic, codec, options, stop })
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// Polls, applies batches to the sink (retrying a failed batch, never skipping it) and commits
    /// their offsets, until stopped. Call it on a thread of its own (`spawn_blocking`).
    pub fn run(self) {
        let runtime = self.consumer.context().runtime.clone();
        let sink = Arc::clone(&self.consumer.context().sink);
        let mut read_again = BTreeMap::new();
        while !self.stop.load(Ordering::SeqCst) {
            let mut batch = self.collect_batch();
            // Stopping: the batch is read again at the next start. (A rebalance during the stop may
            // have started partitions at committed offsets rather than the sink's checkpoints.)
            if batch.is_empty() || self.stop.load(Ordering::SeqCst) {
                continue;
            }
            let mut backoff = Duration::from_millis(50);
            loop {
                let checked = runtime.block_on(self.read_again_at_holes(&*sink, &mut batch, &mut read_again));
                let applied = match checked {
                    Ok(()) if batch.is_empty() => break,
                    Ok(()) => runtime.block_on(sink.apply(batch.clone())),
                    Err(error) => Err(error),
                };
                match applied {
                    Ok(()) => break,
                    Err(error) => {
                        if self.stop.load(Ordering::SeqCst) {
                            tracing::warn!(%error, "stopping with a batch not applied; it is read again at the next start");
                            return;
                        }
                        tracing::error!(%error, retry_in_ms = backoff.as_millis(), "projection failed");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            if !batch.is_empty() {
                self.commit(&batch);
            }
        }
        tracing::info!("leaving the consumer group");
    }

    /// Keeps of the batch what follows on from the sink's checkpoints without a hole, and reads
    /// each partition with a hole again from the first missing offset (see [`holes`]).
    async fn read_again_at_holes(
        &self,
        sink: &dyn GroupSink,
        batch: &mut Vec<LogRecord>,
        read_again: &mut BTreeMap<u32, u64>,
    ) -> Result<(), InfraError> {
        let mut partitions: Vec<u32> = batch.iter().map(|record| record.position.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let checkpoints = sink.checkpoints(&partitions).await?;
        let holes = holes(batch, &partitions.into_iter().zip(checkpoints).collect(), read_again);
        if holes.is_empty() {
            return Ok(());
        }
        metrics::counter!("projector_rewinds_total").increment(holes.len() as u64);
        let mut offsets = TopicPartitionList::new();
        for (partition, from) in &holes {
            tracing::warn!(
                partition,
                from,
                "records were read past; reading the partition again from the first missing one"
            );
            let at = Offset::Offset(i64::try_from(*from).unwrap_or(i64::MAX));
            offsets
                .add_partition_offset(&self.topic, partition_id(*partition), at)
                .map_err(|error| InfraError::new("rewinding a partition", error))?;
            read_again.insert(*partition, *from);
        }
        let sought = self
            .consumer
            .seek_partitions(offsets, Duration::from_secs(10))
            .map_err(|error| InfraError::new("rewinding a partition", error))?;
        // A partition revoked meanwhile cannot be sought: its new owner starts at the checkpoint.
        for element in sought.elements() {
            if let Err(error) = element.error() {
                tracing::warn!(%error, partition = element.partition(), "cannot rewind a partition");
            }
        }
        batch.retain(|record| holes.get(&record.position.partition).is_none_or(|from| record.position.offset < *from));
        Ok(())
    }

    fn collect_batch(&self) -> Vec<LogRecord> {
        let mut batch = Vec::new();
        let mut deadline: Option<Instant> = None;
        while batch.len() < self.options.batch_size && !self.stop.load(Ordering::SeqCst) {
            let timeout = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(200),
            };
            if deadline.is_some() && timeout.is_zero() {
                break;
            }
            match self.consumer.poll(timeout) {
                None if deadline.is_none() => return batch,
                None | Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Ok(message)) => {
                    let position = Position {
                        partition: u32::try_from(message.partition()).expect("partitions are non-negative"),
                        offset: u64::try_from(message.offset()).expect("offsets are non-negative"),
                    };
                    let payload = message.payload().unwrap_or_default();
                    batch.push(LogRecord::decode(&self.codec, position, payload));
                    deadline.get_or_insert_with(|| Instant::now() + self.options.linger);
                }
                Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            }
        }
        batch
    }

    fn commit(&self, batch: &[LogRecord]) {
        let mut next: BTreeMap<u32, u64> = BTreeMap::new();
        for record in batch {
            let offset = next.entry(record.position.partition).or_default();
            *offset = (*offset).max(record.position.offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in next {
            let at = Offset::Offset(i64::try_from(offset).unwrap_or(i64::MAX));
            if offsets.add_partition_offset(&self.topic, partition_id(partition), at).is_err() {
                return;
            }
        }
        // A failed commit only delays lag reporting: the sink's checkpoints decide where to resume.
        if let Err(error) = self.consumer.commit(&offsets, CommitMode::Async) {
            tracing::debug!(%error, "offset commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(u32, u64)]) -> Vec<LogRecord> {
        records
            .iter()
            .map(|(partition, offset)| LogRecord {
                position: Position { partition: *partition, offset: *offset },
                event: Err("not decoded".into()),
            })
            .collect()
    }

    fn map(pairs: &[(u32, u64)]) -> BTreeMap<u32, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn records_that_follow_on_from_the_checkpoint_have_no_hole() {
        let records = batch(&[(0, 10), (1, 3), (0, 11), (1, 4), (0, 12)]);
        assert!(holes(&records, &map(&[(0, 10), (1, 3)]), &map(&[])).is_empty());
    }

    #[test]
    fn records_read_twice_around_a_rebalance_are_no_hole() {
        // Read from 10, then from the checkpoint again when the partition came back.
        let records = batch(&[(0, 10), (0, 11), (0, 12), (0, 10), (0, 11), (0, 12), (0, 13)]);
        assert!(holes(&records, &map(&[(0, 10)]), &map(&[])).is_empty());
    }

    #[test]
    fn a_checkpoint_behind_the_batch_is_a_hole_at_the_checkpoint() {
        let records = batch(&[(0, 30), (0, 31), (1, 5)]);
        assert_eq!(holes(&records, &map(&[(0, 10), (1, 5)]), &map(&[])), map(&[(0, 10)]));
    }

    #[test]
    fn a_jump_inside_the_batch_is_a_hole_at_the_first_missing_offset() {
        let records = batch(&[(0, 10), (0, 11), (0, 15), (0, 16)]);
        assert_eq!(holes(&records, &map(&[(0, 10)]), &map(&[])), map(&[(0, 12)]));
    }

    #[test]
    fn a_hole_still_there_after_reading_again_is_in_the_log_and_let_through() {
        let records = batch(&[(0, 40), (0, 41)]);
        assert!(holes(&records, &map(&[(0, 10)]), &map(&[(0, 10)])).is_empty());
        assert_eq!(
            holes(&batch(&[(0, 40), (0, 45)]), &map(&[(0, 10)]), &map(&[(0, 10)])),
            map(&[(0, 41)]),
            "a further hole is read again too"
        );
    }
}

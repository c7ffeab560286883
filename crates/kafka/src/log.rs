//! The event log on a Kafka topic.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::join_all;
use kurz_domain::Event;
use kurz_ports::{EventLog, InfraError, LogRecord, PartlyAppended, Position, partition_for};
use kurz_schemas::Codec;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{KafkaConfig, registry, topic};

/// Metadata and offset requests: short, a broker that does not answer in this time is unwell.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `wait_for_records` asks the broker for the partitions' ends.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Appends with an idempotent producer (`acks=all`): an append returns once every replica in sync
/// has the events, and a retried send never duplicates or reorders them.
///
/// Reads (`read`) assign one consumer to one partition at a time: they serve tools, tests and
/// rebuilds. The projector in distributed mode follows the topic on a consumer group instead.
pub struct KafkaEventLog {
    topic: Arc<str>,
    partitions: u32,
    /// Replaced when it fails fatally (an idempotent producer that was fenced, e.g. after its
    /// records timed out while the broker was away, never produces again).
    producer: RwLock<FutureProducer>,
    producer_config: ClientConfig,
    reader: Arc<Mutex<BaseConsumer>>,
    codec: Arc<Codec>,
}

impl std::fmt::Debug for KafkaEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventLog")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

fn kafka(context: &'static str) -> impl Fn(KafkaError) -> InfraError {
    move |error| InfraError::new(context, error)
}

impl KafkaEventLog {
    /// Creates the topic if missing, registers the schemas and connects.
    pub async fn connect(config: &KafkaConfig) -> Result<Self, InfraError> {
        topic::ensure_topic(config).await?;
        let codec = registry::register_catalog(config).await?;
        let mut producer_config = config.client_config();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // Java's default partitioner, should another producer write keyed events; Kurz itself
            // names the partition of every record (`partition_for`).
            .set("partitioner", "murmur2_random")
            .set("delivery.timeout.ms", config.delivery_timeout.as_millis().to_string());
        let producer: FutureProducer = producer_config.create().map_err(kafka("creating the Kafka producer"))?;
        let reader: BaseConsumer = config
            .client_config()
            .set("group.id", "kurz-log-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(kafka("creating the Kafka reader"))?;
        Ok(Self {
            topic: config.topic.as_str().into(),
            partitions: config.partitions,
            producer: RwLock::new(producer),
            producer_config,
            reader: Arc::new(Mutex::new(reader)),
            codec: Arc::new(codec),
        })
    }

    /// Queues every event on `producer` in order, then waits for every acknowledgement that can
    /// come. A failure says which events were acknowledged all the same (those of a partition the
    /// broker took before it went away); the others' outcome is unknown once any was handed over:
    /// the broker may have written it although no acknowledgement came back.
    async fn produce(&self, producer: &FutureProducer, events: &[Event]) -> Result<Vec<Position>, Unacknowledged> {
        let mut deliveries = Vec::with_capacity(events.len());
        let mut refused = None;
        for event in events {
            match self.queue(producer, event).await {
                Ok(delivery) => deliveries.push(delivery),
                Err(failure) => {
                    refused = Some(failure);
                    break;
                }
            }
        }
        let outcomes = join_all(deliveries.into_iter().map(|delivery| async move {
            match delivery.await {
                Ok(Ok(delivery)) => Ok(Position {
                    partition: u32::try_from(delivery.partition).expect("partitions are non-negative"),
                    offset: offset(delivery.offset),
                }),
                Ok(Err((error, _))) => Err(ProduceFailure::from(error)),
                Err(canceled) => Err(ProduceFailure::from(InfraError::new("producing an event", canceled))),
            }
        }))
        .await;
        let (mut positions, mut acknowledged, mut lost) = (Vec::with_capacity(outcomes.len()), Vec::new(), None);
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(position) => {
                    positions.push(position);
                    acknowledged.push(index);
                }
                Err(failure) => {
                    lost.get_or_insert(failure);
                }
            }
        }
        match (lost, refused) {
            (None, None) => Ok(positions),
            (Some(lost), _) => Err(Unacknowledged { failure: lost.outcome_unknown(), acknowledged }),
            // Every event handed over was acknowledged: the rest were never sent.
            (None, Some(refused)) => Err(Unacknowledged { failure: refused, acknowledged }),
        }
    }

    /// Hands one event to the producer, waiting while its queue is full.
    async fn queue(&self, producer: &FutureProducer, event: &Event) -> Result<DeliveryFuture, ProduceFailure> {
        let payload = self
            .codec
            .encode(event)
            .map_err(|error| ProduceFailure::from(InfraError::new("encoding an event", error)))?;
        let mut record = FutureRecord::to(&self.topic)
            .key(event.code().as_str())
            .payload(&payload)
            .partition(partition_id(partition_for(event.code(), self.partitions)));
        // Records are queued in the order given; the idempotent producer keeps that order.
        loop {
            match producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((error, _)) => return Err(ProduceFailure::from(error)),
            }
        }
    }

    /// Replaces the producer if `failure` left it unable to produce again.
    fn after_failure(&self, producer: &FutureProducer, failure: &ProduceFailure) {
        if failure.producer_broken || producer.client().fatal_error().is_some() {
            self.renew(producer);
        }
    }

    fn producer(&self) -> FutureProducer {
        self.producer.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces `failed` with a new producer (unless someone replaced it already).
    fn renew(&self, failed: &FutureProducer) {
        let mut current = self.producer.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
            return;
        }
        match self.producer_config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!("the Kafka producer was fenced or failed fatally; continuing with a new one");
                *current = fresh;
            }
            Err(error) => tracing::error!(%error, "cannot replace a failed Kafka producer"),
        }
    }

    /// Each partition's end offset (its high watermark). One blocking request per partition, off
    /// the async workers.
    async fn high_watermarks(&self, partitions: std::ops::Range<u32>) -> Result<Vec<u64>, InfraError> {
        let producer = self.producer();
        let topic = Arc::clone(&self.topic);
        tokio::task::spawn_blocking(move || {
            partitions
                .map(|partition| {
                    producer
                        .client()
                        .fetch_watermarks(&topic, partition_id(partition), REQUEST_TIMEOUT)
                        .map(|(_, high)| offset(high))
                        .map_err(kafka("reading a partition's end offset"))
                })
                .collect()
        })
        .await
        .map_err(|error| InfraError::new("reading end offsets", error))?
    }
}

/// A failed produce, and which of its events (indices) were acknowledged nonetheless.
struct Unacknowledged {
    failure: ProduceFailure,
    acknowledged: Vec<usize>,
}

/// A failed append, and whether the producer can go on (an idempotent producer whose identity the
/// broker no longer accepts — e.g. after its records timed out while the broker was away — cannot).
struct ProduceFailure {
    error: InfraError,
    producer_broken: bool,
}

impl ProduceFailure {
    /// Marks a failure of records handed to the producer: they may be in the log all the same.
    fn outcome_unknown(mut self) -> Self {
        self.error = self.error.with_unknown_outcome();
        self
    }
}

impl From<InfraError> for ProduceFailure {
    fn from(error: InfraError) -> Self {
        Self { error, producer_broken: false }
    }
}

impl From<KafkaError> for ProduceFailure {
    fn from(error: KafkaError) -> Self {
        let producer_broken = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::Fatal
            )
        );
        Self { error: InfraError::new("producing an event", error), producer_broken }
    }
}

fn partition_id(partition: u32) -> i32 {
    i32::try_from(partition).expect("partition counts fit Kafka's i32")
}

fn offset(offset: i64) -> u64 {
    u64::try_from(offset).unwrap_or(0)
}

#[async_trait]
impl EventLog for KafkaEventLog {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn append(&self, events: &[Event]) -> Result<Vec<Position>, InfraError> {
        let producer = self.producer();
        self.produce(&producer, events).await.map_err(|Unacknowledged { failure, acknowledged }| {
            self.after_failure(&producer, &failure);
            // Some of the events are in the log: as one append, its outcome is not known.
            if acknowledged.is_empty() { failure.error } else { failure.error.with_unknown_outcome() }
        })
    }

    async fn append_each(&self, events: &[Event]) -> Result<Vec<Position>, PartlyAppended> {
        let producer = self.producer();
        self.produce(&producer, events).await.map_err(|Unacknowledged { failure, acknowledged }| {
            self.after_failure(&producer, &failure);
            PartlyAppended { error: failure.error, acknowledged }
        })
    }

    async fn read(&self, partition: u32, from: u64, max: usize) -> Result<Vec<LogRecord>, InfraError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let (reader, topic, codec) = (Arc::clone(&self.reader), Arc::clone(&self.topic), Arc::clone(&self.codec));
        tokio::task::spawn_blocking(move || {
            let reader = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut records = Vec::new();
            tail(&reader, &topic, &[(partition, from)], |message| {
                let position = Position { partition, offset: offset(message.offset()) };
                records.push(LogRecord::decode(&codec, position, message.payload().unwrap_or_default()));
                records.len() < max
            })?;
            Ok(records)
        })
        .await
        .map_err(|error| InfraError::new("reading a partition", error))?
    }

    /// The broker's end offsets, confirmed by reading on from them: tansu answers ListOffsets with
    /// the start of the last record batch plus one, not its end; Kafka's answer is confirmed at the
    /// cost of one empty fetch.
    async fn end_offsets(&self) -> Result<Vec<u64>, InfraError> {
        let listed = self.high_watermarks(0..self.partitions).await?;
        let (reader, topic) = (Arc::clone(&self.reader), Arc::clone(&self.topic));
        tokio::task::spawn_blocking(move || {
            let reader = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut ends = listed.clone();
            let starts: Vec<(u32, u64)> = (0..).zip(listed).collect();
            tail(&reader, &topic, &starts, |message| {
                let partition = usize::try_from(message.partition()).expect("partitions are non-negative");
                ends[partition] = ends[partition].max(offset(message.offset()) + 1);
                true
            })?;
            Ok(ends)
        })
        .await
        .map_err(|error| InfraError::new("reading end offsets", error))?
    }

    async fn wait_for_records(&self, seen: &[u64], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // A listed end beyond `seen` means records beyond it, on tansu too (see `end_offsets`).
            if let Ok(listed) = self.high_watermarks(0..self.partitions).await
                && listed.iter().zip(seen).any(|(listed, seen)| listed > seen)
            {
                return;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return;
            }
            tokio::time::sleep(remaining.min(WAIT_POLL)).await;
        }
    }
}

/// Reads the given partitions from the given offsets until each reports its end (or `take` says
/// stop), handing every record to `take`.
fn tail(
    reader: &BaseConsumer,
    topic: &str,
    starts: &[(u32, u64)],
    mut take: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> Result<(), InfraError> {
    let mut assignment = TopicPartitionList::new();
    for (partition, from) in starts {
        assignment
            .add_partition_offset(topic, partition_id(*partition), Offset::Offset(from.cast_signed()))
            .map_err(kafka("assigning a partition"))?;
    }
    reader.assign(&assignment).map_err(kafka("assigning a partition"))?;
    let result = (|| {
        let mut reading: Vec<(i32, i64)> =
            starts.iter().map(|(p, from)| (partition_id(*p), from.cast_signed())).collect();
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while !reading.is_empty() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let timed_out = KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut);
                return Err(InfraError::new("reading a partition", timed_out));
            }
            match reader.poll(remaining) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(partition))) => reading.retain(|(p, _)| *p != partition),
                Some(Err(error)) => return Err(InfraError::new("reading a partition", error)),
                Some(Ok(message)) => {
                    // Earlier assignments' leftovers and records before the start are not asked for.
                    let asked = reading.iter().any(|(p, from)| *p == message.partition() && message.offset() >= *from);
                    if asked && !take(&message) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    })();
    reader.unassign().map_err(kafka("releasing a partition"))?;
    result
}

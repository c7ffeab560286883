//! The event log on a Kafka topic.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::try_join_all;
use kurz_domain::Event;
use kurz_ports::{EventLog, InfraError, LogRecord, Position, partition_for};
use kurz_schemas::Codec;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
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

    /// Queues every event on `producer` in order, then waits for all acknowledgements.
    /// Errors once a record was handed to the producer are marked as of unknown outcome: the broker
    /// may have written it although no acknowledgement came back.
    async fn produce(&self, producer: &FutureProducer, events: &[Event]) -> Result<Vec<Position>, ProduceFailure> {
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let handed_over = !deliveries.is_empty();
            let payload = self.codec.encode(event).map_err(|error| {
                ProduceFailure::from(InfraError::new("encoding an event", error)).after(handed_over)
            })?;
            let mut record = FutureRecord::to(&self.topic)
                .key(event.code().as_str())
                .payload(&payload)
                .partition(partition_id(partition_for(event.code(), self.partitions)));
            // Records are queued in the order given; the idempotent producer keeps that order.
            let delivery = loop {
                match producer.send_result(record) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        record = returned;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((error, _)) => return Err(ProduceFailure::from(error).after(handed_over)),
                }
            };
            deliveries.push(async move {
                match delivery.await {
                    Ok(Ok(delivery)) => Ok(Position {
                        partition: u32::try_from(delivery.partition).expect("partitions are non-negative"),
                        offset: offset(delivery.offset),
                    }),
                    Ok(Err((error, _))) => Err(ProduceFailure::from(error).after(true)),
                    Err(canceled) => {
                        Err(ProduceFailure::from(InfraError::new("producing an event", canceled)).after(true))
                    }
                }
            });
        }
        try_join_all(deliveries).await
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

/// A failed append, and whether the producer can go on (an idempotent producer whose identity the
/// broker no longer accepts — e.g. after its records timed out while the broker was away — cannot).
struct ProduceFailure {
    error: InfraError,
    producer_broken: bool,
}

impl ProduceFailure {
    /// Marks the outcome unknown when some record had already been handed to the producer.
    fn after(mut self, handed_over: bool) -> Self {
        if handed_over {
            self.error = self.error.with_unknown_outcome();
        }
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
        self.produce(&producer, events).await.map_err(|error| {
            if error.producer_broken || producer.client().fatal_error().is_some() {
                self.renew(&producer);
            }
            error.error
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

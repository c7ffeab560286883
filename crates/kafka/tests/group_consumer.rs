//! The projector's consumer-group worker against a broker: a sink that loses its latest writes
//! (a Redis restarted from an older append-only file, a failover to a replica that lagged) gets
//! them again rather than a gap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kurz_domain::Event;
use kurz_kafka::{GroupConsumer, GroupOptions, GroupSink, KafkaConfig, KafkaEventLog, testing};
use kurz_ports::conformance::fixtures::clicked;
use kurz_ports::{EventLog, InfraError, LogRecord};
use kurz_registry_standin::RegistryStandIn;

/// Applied offsets and checkpoints, as a store keeps them: a record below its partition's
/// checkpoint is skipped, so each offset is applied once.
#[derive(Default)]
struct MemorySink {
    state: Mutex<SinkState>,
}

#[derive(Default, Clone)]
struct SinkState {
    checkpoints: BTreeMap<u32, u64>,
    applied: Vec<(u32, u64)>,
}

impl MemorySink {
    fn snapshot(&self) -> SinkState {
        self.state.lock().expect("lock").clone()
    }

    /// Back to an earlier state, as a store that lost what it acknowledged since.
    fn restore(&self, earlier: SinkState) {
        *self.state.lock().expect("lock") = earlier;
    }
}

#[async_trait]
impl GroupSink for MemorySink {
    async fn checkpoints(&self, partitions: &[u32]) -> Result<Vec<u64>, InfraError> {
        let state = self.state.lock().expect("lock");
        Ok(partitions.iter().map(|p| state.checkpoints.get(p).copied().unwrap_or(0)).collect())
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<(), InfraError> {
        let mut state = self.state.lock().expect("lock");
        for record in records {
            let next = state.checkpoints.entry(record.position.partition).or_default();
            if record.position.offset >= *next {
                *next = record.position.offset + 1;
                state.applied.push((record.position.partition, record.position.offset));
            }
        }
        Ok(())
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn offsets(state: &SinkState) -> Vec<u64> {
    state.applied.iter().map(|(_, offset)| *offset).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_lost_its_latest_writes_gets_them_again() {
    let Some(brokers) = testing::broker_or_skip() else { return };
    let registry = RegistryStandIn::start().await.expect("registry stand-in starts");
    let config = KafkaConfig {
        brokers,
        topic: testing::unique_name("rewind"),
        partitions: 1,
        replication_factor: 1,
        schema_registry_url: registry.url(),
        ..KafkaConfig::default()
    };
    let log = KafkaEventLog::connect(&config).await.expect("connects");
    let clicks = |from: i64, to: i64| -> Vec<Event> { (from..to).map(|i| clicked("lost-writes", i, "v")).collect() };
    // Appended in several appends, so that the record batches end at different offsets.
    for (from, to) in [(0, 7), (7, 20), (20, 30)] {
        log.append(&clicks(from, to)).await.expect("append");
    }

    let sink = Arc::new(MemorySink::default());
    let options = GroupOptions {
        group_id: testing::unique_name("rewind-group"),
        linger: Duration::from_millis(20),
        ..GroupOptions::default()
    };
    let consumer = GroupConsumer::join(&config, options, sink.clone()).await.expect("joins");
    let stop = consumer.stop_handle();
    let worker = tokio::task::spawn_blocking(move || consumer.run());
    until("the first 10 records are applied", || sink.snapshot().applied.len() >= 10).await;
    let mut earlier = sink.snapshot();
    // The store as it was after offset 9, whatever the consumer's batches were.
    earlier.applied.truncate(10);
    earlier.checkpoints.insert(0, 10);
    until("all 30 are applied", || sink.snapshot().applied.len() == 30).await;

    sink.restore(earlier);
    log.append(&clicks(30, 35)).await.expect("append");
    until("the sink holds 35 records again", || sink.snapshot().checkpoints.get(&0) == Some(&35)).await;
    stop.stop();
    worker.await.expect("worker");

    assert_eq!(
        offsets(&sink.snapshot()),
        (0..35).collect::<Vec<u64>>(),
        "the records the sink lost are read again, each applied once, none skipped"
    );
}

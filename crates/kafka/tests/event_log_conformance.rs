//! The event-log conformance suite against a Kafka-protocol broker (tansu in tests).

use std::sync::Arc;

use async_trait::async_trait;
use kurz_kafka::{KafkaConfig, KafkaEventLog, testing};
use kurz_ports::EventLog;
use kurz_ports::conformance::Storage;
use kurz_registry_standin::RegistryStandIn;

/// One fresh topic per test; `open` connects again to the same topic, as a restarted process would.
struct FreshTopic {
    config: KafkaConfig,
}

impl FreshTopic {
    async fn new(brokers: String) -> Self {
        let registry = RegistryStandIn::start().await.expect("registry stand-in starts");
        let config = KafkaConfig {
            brokers,
            topic: testing::unique_name("conformance"),
            partitions: 4,
            replication_factor: 1,
            schema_registry_url: registry.url(),
            ..KafkaConfig::default()
        };
        Self { config }
    }
}

#[async_trait]
impl Storage<dyn EventLog> for FreshTopic {
    async fn open(&self) -> Arc<dyn EventLog> {
        Arc::new(KafkaEventLog::connect(&self.config).await.expect("connects to the test broker"))
    }
}

macro_rules! fresh_topic {
    () => {
        match testing::broker_or_skip() {
            Some(brokers) => FreshTopic::new(brokers).await,
            None => return,
        }
    };
}

kurz_ports::event_log_conformance!(fresh_topic!());

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Where the events live in distributed mode: one topic keyed by link code, Avro values whose
/// schemas are registered on a Confluent-compatible schema registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// The topic all link events go to (created at startup when missing).
    pub topic: String,
    /// Partitions of a topic Kurz creates; an existing topic must have this many, because a link's
    /// partition is derived from it.
    pub partitions: u32,
    pub replication_factor: i32,
    pub schema_registry_url: String,
    /// How long an append may wait for the broker's acknowledgement before it fails, in ms.
    #[serde(rename = "delivery_timeout_ms", with = "millis")]
    pub delivery_timeout: Duration,
    /// Further librdkafka properties for every client (security, SASL, …).
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "kurz.link-events".into(),
            partitions: 12,
            replication_factor: 3,
            schema_registry_url: "http://127.0.0.1:8081".into(),
            delivery_timeout: Duration::from_secs(30),
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The properties every Kurz client starts from.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.client {
            config.set(key, value);
        }
        config
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

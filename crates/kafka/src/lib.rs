//! Kurz's event log on Kafka. Records are keyed by link code and placed with Kafka's murmur2
//! partitioner, so a link's events stay in order in one partition; values are Avro in the
//! Confluent wire format, with schema ids from a schema registry.

mod config;
mod group;
mod log;
pub mod registry;
mod topic;

pub use config::KafkaConfig;
pub use group::{GroupConsumer, GroupOptions, GroupSink, StopHandle};
pub use log::KafkaEventLog;
pub use topic::ensure_topic;

#[cfg(feature = "testing")]
pub mod testing;

//! Creates the event topic idempotently and checks an existing one fits.

use std::time::Duration;

use kurz_ports::InfraError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaConfig;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("topic {topic} has {actual} partitions, configured {configured}: a link's partition depends on the count")]
struct PartitionMismatch {
    topic: String,
    actual: usize,
    configured: u32,
}

/// Creates the topic when missing. An existing topic must have the configured partition count.
pub async fn ensure_topic(config: &KafkaConfig) -> Result<(), InfraError> {
    let admin: AdminClient<DefaultClientContext> =
        config.client_config().create().map_err(|error| InfraError::new("creating a Kafka admin client", error))?;
    let partitions = i32::try_from(config.partitions).unwrap_or(i32::MAX);
    let topic = NewTopic::new(&config.topic, partitions, TopicReplication::Fixed(config.replication_factor))
        // Events are the source of truth: never deleted by age or size.
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1")
        .set("min.insync.replicas", if config.replication_factor >= 3 { "2" } else { "1" });
    let results = admin
        .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .map_err(|error| InfraError::new("creating the event topic", error))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions, "event topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(InfraError::new("creating the event topic", format!("{name}: {code}")));
            }
        }
    }
    let metadata = tokio::task::spawn_blocking({
        let topic = config.topic.clone();
        move || admin.inner().fetch_metadata(Some(&topic), TIMEOUT)
    })
    .await
    .map_err(|error| InfraError::new("reading topic metadata", error))?
    .map_err(|error| InfraError::new("reading topic metadata", error))?;
    let actual = metadata.topics().first().map_or(0, |topic| topic.partitions().len());
    if actual != config.partitions as usize {
        return Err(InfraError::new(
            "checking the event topic",
            PartitionMismatch { topic: config.topic.clone(), actual, configured: config.partitions },
        ));
    }
    Ok(())
}

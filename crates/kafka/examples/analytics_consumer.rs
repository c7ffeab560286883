//! An analytics consumer of Kurz's event topic, written as a team outside Kurz would write one: no
//! Kurz crates, only rdkafka, schema_registry_converter and apache-avro. It reads the topic on a
//! consumer group of its own, looks each record's writer schema up in the registry by the id in the
//! record, decodes it, and prints one JSON line per event:
//!
//! ```text
//! {"partition":2,"offset":41,"key":"launch-2026","event":"kurz.events.LinkClicked","fields":{…}}
//! ```
//!
//! cargo run -p kurz-kafka --example analytics_consumer -- BROKERS TOPIC REGISTRY_URL GROUP [MAX]

use std::error::Error;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, registry, group, rest @ ..] = args.as_slice() else {
        return Err("usage: analytics_consumer BROKERS TOPIC REGISTRY_URL GROUP [MAX]".into());
    };
    let max: Option<u64> = rest.first().map(|max| max.parse()).transpose()?;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    // Caches schemas by id: one registry request per schema version, not per record.
    let decoder = AvroDecoder::new(SrSettings::new(registry.clone()));

    let mut seen = 0;
    while max.is_none_or(|max| seen < max) {
        let message = consumer.recv().await?;
        let event = decoder.decode(message.payload()).await?;
        let line = json!({
            "partition": message.partition(),
            "offset": message.offset(),
            // The key is the link code: every event of a link is in one partition, in order.
            "key": message.key().map(String::from_utf8_lossy),
            "event": event.name.map(|name| name.fullname(None)),
            "fields": serde_json::Value::try_from(event.value)?,
        });
        println!("{line}");
        seen += 1;
    }
    Ok(())
}

//! Registers the shipped schemas and builds the codec that writes and reads their registry ids.

use std::collections::HashMap;

use kurz_ports::InfraError;

use crate::KafkaConfig;
use kurz_schemas::{Catalog, Codec};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};

/// Several event types share one topic, so subjects follow the TopicRecordNameStrategy:
/// `<topic>-<record full name>`, e.g. `kurz.link-events-kurz.events.LinkClicked`. Each event type
/// evolves on its own subject under the registry's BACKWARD rule.
pub fn subject(topic: &str, record_full_name: &str) -> String {
    SubjectNameStrategy::TopicRecordNameStrategy(topic.to_owned(), record_full_name.to_owned())
        .get_subject()
        .expect("the topic-record strategy always names a subject")
}

/// Registers every version of every shipped schema, oldest first (registering an existing schema
/// returns its id and changes nothing), and returns a codec keyed by the registry's ids.
pub async fn register_catalog(config: &KafkaConfig) -> Result<Codec, InfraError> {
    let topic = config.topic.as_str();
    let settings = settings(config)?;
    let catalog = Catalog::shipped();
    let mut versions: Vec<_> = catalog.all().map(|(version, _)| *version).collect();
    versions.sort_by_key(|version| version.version);
    let mut ids = HashMap::new();
    for version in versions {
        let name = version.kind.full_name();
        let schema = SuppliedSchema::new(Some(name.to_owned()), SchemaType::Avro, version.text.to_owned());
        let registered = post_schema(&settings, subject(topic, name), schema)
            .await
            .map_err(|error| InfraError::new("registering a schema", error))?;
        tracing::info!(subject = %subject(topic, name), version = version.version, id = registered.id, "schema registered");
        ids.insert(version.local_id, registered.id);
    }
    Ok(Codec::with_ids(catalog, |version| ids[&version.local_id]))
}

/// The registry's address, credentials and trusted CA.
fn settings(config: &KafkaConfig) -> Result<SrSettings, InfraError> {
    let invalid = |error: Box<dyn std::error::Error + Send + Sync>| InfraError::new("schema registry settings", error);
    let mut builder = SrSettings::new_builder(config.schema_registry_url.clone());
    builder.set_timeout(std::time::Duration::from_secs(10));
    match (&config.schema_registry_username, &config.schema_registry_password) {
        (Some(username), password) => {
            builder.set_basic_authorization(username, password.as_deref());
        }
        (None, None) => {}
        (None, Some(_)) => {
            return Err(invalid("kafka.schema_registry_password is set without kafka.schema_registry_username".into()));
        }
    }
    let Some(ca_file) = &config.schema_registry_ca_file else {
        return builder.build().map_err(|error| invalid(error.into()));
    };
    let pem = std::fs::read(ca_file)
        .map_err(|error| invalid(format!("kafka.schema_registry_ca_file {}: {error}", ca_file.display()).into()))?;
    let ca = reqwest::Certificate::from_pem(&pem)
        .map_err(|error| invalid(format!("kafka.schema_registry_ca_file {}: {error}", ca_file.display()).into()))?;
    builder.build_with(reqwest::Client::builder().add_root_certificate(ca)).map_err(|error| invalid(error.into()))
}

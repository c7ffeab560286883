//! Registers the shipped schemas and builds the codec that writes and reads their registry ids.

use std::collections::HashMap;

use kurz_ports::InfraError;
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
pub async fn register_catalog(registry_url: &str, topic: &str) -> Result<Codec, InfraError> {
    let settings = SrSettings::new_builder(registry_url.to_owned())
        .set_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|error| InfraError::new("schema registry settings", error))?;
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

//! Encoding domain events as framed Avro records and decoding them back, whichever schema version
//! wrote them.

use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use kurz_domain::Event;

use crate::catalog::{Catalog, EventKind};
use crate::mapping::{self, FieldError};
use crate::wire::{self, FramingError};

/// Encodes with the latest schema of each event and decodes records written with any known schema id
/// into the latest schema. Writers and readers are resolved once, not per record.
pub struct Codec {
    writers: HashMap<EventKind, (u32, GenericDatumWriter<'static>)>,
    readers: HashMap<u32, (EventKind, GenericDatumReader<'static>)>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<u32> = self.readers.keys().copied().collect();
        ids.sort_unstable();
        f.debug_struct("Codec").field("readable_schema_ids", &ids).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {event}: {source}")]
pub struct EncodeError {
    event: &'static str,
    source: apache_avro::Error,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error("unknown schema id {0}")]
    UnknownSchema(u32),
    #[error("avro body does not match schema {schema_id}: {source}")]
    Avro { schema_id: u32, source: apache_avro::Error },
    #[error("schema {schema_id}: {source}")]
    Field { schema_id: u32, source: FieldError },
}

impl Codec {
    /// The codec of the embedded event log, which has no registry: schema ids are the catalog's
    /// local ids.
    pub fn local(catalog: &'static Catalog) -> Self {
        let writers = EventKind::ALL
            .into_iter()
            .map(|kind| {
                let (version, schema) = catalog.latest(kind);
                let writer = GenericDatumWriter::builder(schema).build().expect("shipped schemas resolve");
                (kind, (version.local_id, writer))
            })
            .collect();
        let readers = catalog
            .all()
            .map(|(version, schema)| {
                let latest = catalog.latest(version.kind).1;
                let reader =
                    GenericDatumReader::builder(schema).reader_schema(latest).build().expect("shipped schemas resolve");
                (version.local_id, (version.kind, reader))
            })
            .collect();
        Self { writers, readers }
    }

    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, EncodeError> {
        let (schema_id, writer) = &self.writers[&mapping::kind_of(event)];
        let body = writer
            .write_value_to_vec(mapping::to_value(event))
            .map_err(|source| EncodeError { event: event.name(), source })?;
        Ok(wire::frame(*schema_id, &body))
    }

    pub fn decode(&self, record: &[u8]) -> Result<Event, DecodeError> {
        let (schema_id, mut body) = wire::unframe(record)?;
        let (kind, reader) = self.readers.get(&schema_id).ok_or(DecodeError::UnknownSchema(schema_id))?;
        let value = reader.read_value(&mut body).map_err(|source| DecodeError::Avro { schema_id, source })?;
        mapping::from_value(*kind, value).map_err(|source| DecodeError::Field { schema_id, source })
    }
}

//! Encoding domain events as framed Avro records and decoding them back, whichever schema version
//! wrote them.

use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use kurz_domain::{ClickFields, Event};

use crate::catalog::{Catalog, EventKind, SchemaVersion};
use crate::direct_clicks;
use crate::mapping::{self, FieldError};
use crate::records::{LinkClickedV2, LinkCreatedV3, LinkDeletedV2, LinkUpdatedV3};
use crate::wire::{self, FramingError};

/// Encodes with the latest schema of each event and decodes records written with any known schema id
/// into the latest schema. Writers and readers are resolved once, not per record.
///
/// Records written with the latest schema (nearly all of them) go straight between bytes and the
/// serde structs of `records`; older ones go through Avro schema resolution.
pub struct Codec {
    writers: HashMap<EventKind, (u32, GenericDatumWriter<'static>)>,
    /// The latest `LinkClicked` schema has the layout `direct_clicks` writes.
    write_clicks_directly: bool,
    /// Looked up per record: a fast hash of a schema id, not SipHash.
    readers: HashMap<u32, Reader, foldhash::fast::RandomState>,
    /// The id of the schema whose clicks `direct_clicks` reads: compared, not looked up, per click.
    direct_click_schema: Option<u32>,
}

struct Reader {
    kind: EventKind,
    /// Resolves data of this schema version into the latest version.
    resolving: GenericDatumReader<'static>,
    /// Present when this version is the latest: reads without resolution.
    direct: Option<GenericDatumReader<'static>>,
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
        Self::with_ids(catalog, |version| version.local_id)
    }

    /// A codec whose schema ids are given by `id_of`, e.g. the ids a schema registry assigned when
    /// the catalog's versions were registered.
    pub fn with_ids(catalog: &'static Catalog, id_of: impl Fn(&SchemaVersion) -> u32) -> Self {
        let writers = EventKind::ALL
            .into_iter()
            .map(|kind| {
                let (version, schema) = catalog.latest(kind);
                let writer = GenericDatumWriter::builder(schema).build().expect("shipped schemas resolve");
                (kind, (id_of(version), writer))
            })
            .collect();
        let readers = catalog
            .all()
            .map(|(version, schema)| {
                let (latest_version, latest) = catalog.latest(version.kind);
                let resolving =
                    GenericDatumReader::builder(schema).reader_schema(latest).build().expect("shipped schemas resolve");
                let is_latest = latest_version.local_id == version.local_id;
                let direct =
                    is_latest.then(|| GenericDatumReader::builder(schema).build().expect("shipped schemas resolve"));
                (id_of(version), Reader { kind: version.kind, resolving, direct })
            })
            .collect();
        let (latest_click, latest_click_schema) = catalog.latest(EventKind::LinkClicked);
        let write_clicks_directly = direct_clicks::fits(latest_click_schema);
        let direct_click_schema = write_clicks_directly.then(|| id_of(latest_click));
        Self { writers, write_clicks_directly, readers, direct_click_schema }
    }

    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, EncodeError> {
        let (schema_id, writer) = &self.writers[&mapping::kind_of(event)];
        let mut framed = wire::frame(*schema_id, &[]);
        let written = match event {
            Event::Clicked(e) if self.write_clicks_directly => {
                direct_clicks::write(e, &mut framed);
                Ok(framed.len())
            }
            Event::Created(e) => writer.write_ser(&mut framed, &LinkCreatedV3::from(e)),
            Event::Updated(e) => writer.write_ser(&mut framed, &LinkUpdatedV3::from(e)),
            Event::Deleted(e) => writer.write_ser(&mut framed, &LinkDeletedV2::from(e)),
            Event::Clicked(e) => writer.write_ser(&mut framed, &LinkClickedV2::from(e)),
        };
        written.map_err(|source| EncodeError { event: event.name(), source })?;
        Ok(framed)
    }

    /// Which event `record` holds, by its schema id alone: to pass over records without decoding
    /// them (`None`: not framed, or a schema this codec does not know).
    pub fn kind(&self, record: &[u8]) -> Option<EventKind> {
        let (schema_id, _) = wire::unframe(record).ok()?;
        self.readers.get(&schema_id).map(|reader| reader.kind)
    }

    /// Whether `record` is a click that [`Codec::click_fields`] reads (of the latest click schema):
    /// told by its schema id, without reading it.
    pub fn reads_click_fields(&self, record: &[u8]) -> bool {
        wire::unframe(record).is_ok_and(|(schema_id, _)| Some(schema_id) == self.direct_click_schema)
    }

    /// The click `record` holds, its texts borrowed from it, when it is a well-formed click of the
    /// latest schema; `None` otherwise ([`Codec::decode`] then says what it is, or why not).
    pub fn click_fields<'a>(&self, record: &'a [u8]) -> Option<ClickFields<'a>> {
        let (schema_id, body) = wire::unframe(record).ok()?;
        self.direct_click(schema_id, body)
    }

    /// A click of the schema `direct_clicks` reads, read by it.
    fn direct_click<'a>(&self, schema_id: u32, body: &'a [u8]) -> Option<ClickFields<'a>> {
        (Some(schema_id) == self.direct_click_schema).then(|| direct_clicks::read_fields(body)).flatten()
    }

    pub fn decode(&self, record: &[u8]) -> Result<Event, DecodeError> {
        let (schema_id, mut body) = wire::unframe(record)?;
        let reader = self.readers.get(&schema_id).ok_or(DecodeError::UnknownSchema(schema_id))?;
        let avro = |source| DecodeError::Avro { schema_id, source };
        let decoded = match &reader.direct {
            Some(direct) => match reader.kind {
                EventKind::LinkCreated => direct.read_deser::<LinkCreatedV3>(&mut body).map_err(avro)?.try_into(),
                EventKind::LinkUpdated => direct.read_deser::<LinkUpdatedV3>(&mut body).map_err(avro)?.try_into(),
                EventKind::LinkDeleted => direct.read_deser::<LinkDeletedV2>(&mut body).map_err(avro)?.try_into(),
                EventKind::LinkClicked => match self.direct_click(schema_id, body) {
                    Some(click) => Ok(Event::Clicked(click.to_event())),
                    None => direct.read_deser::<LinkClickedV2>(&mut body).map_err(avro)?.try_into(),
                },
            },
            None => mapping::from_value(reader.kind, reader.resolving.read_value(&mut body).map_err(avro)?),
        };
        decoded.map_err(|source| DecodeError::Field { schema_id, source })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FIXTURES: &[&[u8]] = &[
        include_bytes!("../fixtures/link_created.v1.bin"),
        include_bytes!("../fixtures/link_created_minimal.v1.bin"),
        include_bytes!("../fixtures/link_updated.v1.bin"),
        include_bytes!("../fixtures/link_deleted.v1.bin"),
        include_bytes!("../fixtures/link_clicked.v1.bin"),
        include_bytes!("../fixtures/link_clicked_minimal.v1.bin"),
        include_bytes!("../fixtures/link_created.v2.bin"),
        include_bytes!("../fixtures/link_created_minimal.v2.bin"),
        include_bytes!("../fixtures/link_updated.v2.bin"),
        include_bytes!("../fixtures/link_deleted.v2.bin"),
        include_bytes!("../fixtures/link_clicked.v2.bin"),
        include_bytes!("../fixtures/link_clicked_minimal.v2.bin"),
    ];

    #[test]
    fn schema_resolution_decodes_what_the_direct_path_decodes() {
        let direct = Codec::local(Catalog::shipped());
        let mut resolving = Codec::local(Catalog::shipped());
        for reader in resolving.readers.values_mut() {
            reader.direct = None;
        }
        for record in FIXTURES {
            let expected = direct.decode(record).expect("direct decode");
            assert_eq!(resolving.decode(record).expect("resolving decode"), expected);
        }
    }

    #[test]
    fn a_records_kind_is_the_kind_of_the_event_it_decodes_to() {
        let codec = Codec::local(Catalog::shipped());
        for record in FIXTURES {
            let event = codec.decode(record).expect("fixtures decode");
            assert_eq!(codec.kind(record), Some(mapping::kind_of(&event)));
        }
        let unknown = wire::frame(u32::MAX, &[0]);
        assert_eq!(codec.kind(&unknown), None, "a schema id the codec does not know");
        assert_eq!(codec.kind(&[0, 1]), None, "too short to be framed");
        for record in FIXTURES {
            let latest_click = codec.reads_click_fields(record);
            assert_eq!(codec.click_fields(record).is_some(), latest_click, "only the latest click schema is borrowed");
        }
    }

    /// The shipped codec and one that reads and writes clicks through apache-avro only.
    fn with_and_without_direct_clicks() -> (Codec, Codec) {
        let mut apache_only = Codec::local(Catalog::shipped());
        apache_only.write_clicks_directly = false;
        apache_only.direct_click_schema = None;
        (Codec::local(Catalog::shipped()), apache_only)
    }

    #[test]
    fn the_latest_click_schema_is_read_and_written_without_apache_avro() {
        let codec = Codec::local(Catalog::shipped());
        let (latest, _) = Catalog::shipped().latest(EventKind::LinkClicked);
        assert_eq!(codec.direct_click_schema, Some(latest.local_id), "teach direct_clicks the new LinkClicked schema");
        assert!(codec.write_clicks_directly, "teach direct_clicks the new LinkClicked schema");
    }

    fn click() -> impl Strategy<Value = Event> {
        let text = || proptest::option::of(any::<String>().prop_map(kurz_domain::ClickText::from));
        let details = (text(), text(), text(), text(), text(), proptest::option::of(any::<bool>())).prop_map(
            |(event_id, language, country, region, city, bot)| kurz_domain::ClickDetails {
                event_id,
                language,
                country,
                region,
                city,
                bot,
            },
        );
        ("[A-Za-z0-9_-]{3,64}", any::<i64>(), text(), text(), text(), details).prop_map(
            |(code, at, referrer, user_agent, visitor, details)| {
                let click = kurz_domain::LinkClicked::new(
                    kurz_domain::Code::parse(&code).expect("generated valid"),
                    kurz_domain::Timestamp::from_millis(at),
                    referrer.as_deref(),
                    user_agent.as_deref(),
                    visitor.as_deref(),
                );
                // Set as a record carries them, not cleaned as a new click's are.
                Event::Clicked(kurz_domain::LinkClicked { details, ..click })
            },
        )
    }

    proptest! {
        #[test]
        fn direct_clicks_encode_and_decode_as_apache_avro_does(event in click()) {
            let (fast, apache_only) = with_and_without_direct_clicks();
            let record = fast.encode(&event).expect("encodes");
            prop_assert_eq!(&record, &apache_only.encode(&event).expect("apache-avro encodes"));
            prop_assert_eq!(fast.decode(&record).expect("fast decode"), event.clone());
            prop_assert_eq!(apache_only.decode(&record).expect("apache-avro decode"), event.clone());
            let Event::Clicked(click) = &event else { unreachable!("clicks are generated") };
            prop_assert!(fast.reads_click_fields(&record));
            prop_assert_eq!(fast.click_fields(&record), Some(click.fields()), "borrowed as decoded");
        }

        #[test]
        fn damaged_clicks_get_apache_avros_answer(
            event in click(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            keep in any::<prop::sample::Index>(),
        ) {
            let (fast, apache_only) = with_and_without_direct_clicks();
            let mut record = fast.encode(&event).expect("encodes");
            // Bytes changed after the 5-byte header, and the record cut short somewhere.
            let body = record.len() - 5;
            for (at, byte) in edits {
                record[5 + at.index(body)] = byte;
            }
            record.truncate(5 + keep.index(body + 1));
            let (ours, theirs) = (fast.decode(&record), apache_only.decode(&record));
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours, theirs);
            // Borrowed fields are read only from a record apache-avro reads the same.
            if let Some(fields) = fast.click_fields(&record) {
                prop_assert_eq!(theirs.as_ref().ok(), Some(&Event::Clicked(fields.to_event())));
            }
            prop_assert_eq!(ours.ok(), theirs.ok());
        }
    }
}

//! The public contract holds: every event round-trips, every schema version can read data written by
//! the one before it (BACKWARD), and records written by every published version still decode.

use std::collections::BTreeMap;
use std::path::PathBuf;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use kurz_domain::link::{DisabledReason, MaxClicks, Metadata, RedirectStatus, Tags};
use kurz_domain::{
    ClickDetails, Code, Event, KeyId, LinkClicked, LinkCreated, LinkDeleted, LinkSpec, LinkUpdated, Owner, TargetUrl,
    Timestamp,
};
use kurz_schemas::{Catalog, Codec, DecodeError, EventKind, unframe};

fn code() -> Code {
    Code::parse("spring-sale").expect("valid")
}

fn full_spec() -> LinkSpec {
    LinkSpec {
        target: TargetUrl::parse("https://shop.example/sale?utm=kurz").expect("valid"),
        expires_at: Some(Timestamp::from_millis(1_900_000_000_000)),
        max_clicks: Some(MaxClicks::new(10).expect("valid")),
        redirect_status: RedirectStatus::TemporaryRedirect,
        tags: Tags::parse(vec!["spring".into(), "mail".into()]).expect("valid"),
        metadata: Metadata::parse(BTreeMap::from([("owner".into(), "growth".into())])).expect("valid"),
        disabled: Some(DisabledReason::parse("under review".into()).expect("valid")),
        forward_query: true,
    }
}

fn key() -> KeyId {
    KeyId::parse("3f9a1c").expect("valid")
}

/// The event as schema version 1 carried it: the fields versions 2 and 3 added take their defaults
/// (a click's details came with its version 2).
fn as_v1(event: &Event) -> Event {
    let mut event = as_v2(event);
    match &mut event {
        Event::Created(e) => {
            e.owner = Owner::admin();
            e.key_id = None;
            e.spec.disabled = None;
        }
        Event::Updated(e) => {
            e.key_id = None;
            e.spec.disabled = None;
        }
        Event::Deleted(e) => e.key_id = None,
        Event::Clicked(e) => e.details = ClickDetails::default(),
    }
    event
}

/// The event as schema version 2 carried it: the field version 3 added takes its default.
fn as_v2(event: &Event) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::Created(e) => e.spec.forward_query = false,
        Event::Updated(e) => e.spec.forward_query = false,
        Event::Deleted(_) | Event::Clicked(_) => {}
    }
    event
}

/// One event of each kind with every optional field set, and one with every optional field empty.
fn samples() -> Vec<(&'static str, Event)> {
    let at = Timestamp::from_millis(1_763_700_000_123);
    vec![
        (
            "link_created",
            Event::Created(LinkCreated {
                code: code(),
                owner: Owner::parse("growth-team").expect("valid"),
                spec: full_spec(),
                custom_alias: true,
                created_at: at,
                key_id: Some(key()),
            }),
        ),
        (
            "link_created_minimal",
            Event::Created(LinkCreated {
                code: code(),
                owner: Owner::admin(),
                spec: LinkSpec::new(TargetUrl::parse("http://a.example").expect("valid")),
                custom_alias: false,
                created_at: at,
                key_id: None,
            }),
        ),
        (
            "link_updated",
            Event::Updated(LinkUpdated { code: code(), spec: full_spec(), updated_at: at, key_id: Some(key()) }),
        ),
        ("link_deleted", Event::Deleted(LinkDeleted { code: code(), deleted_at: at, key_id: Some(key()) })),
        (
            "link_clicked",
            Event::Clicked(
                LinkClicked::new(
                    code(),
                    at,
                    Some("https://news.example/story"),
                    Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"),
                    Some("9f86d081884c7d65"),
                )
                .with_details(ClickDetails {
                    event_id: Some("0192b3c4d5e6f708192a3b4c5d6e7f80".into()),
                    language: Some("de-CH".into()),
                    country: Some("CH".into()),
                    region: Some("Zurich".into()),
                    city: Some("Zürich".into()),
                    bot: Some(false),
                }),
            ),
        ),
        ("link_clicked_minimal", Event::Clicked(LinkClicked::new(code(), at, None, None, None))),
    ]
}

fn codec() -> Codec {
    Codec::local(Catalog::shipped())
}

#[test]
fn every_event_round_trips_through_the_wire_format() {
    let codec = codec();
    for (name, event) in samples() {
        let bytes = codec.encode(&event).expect("encodes");
        let (schema_id, _) = unframe(&bytes).expect("framed");
        assert!(schema_id > 0, "{name}");
        assert_eq!(codec.decode(&bytes).expect("decodes"), event, "{name}");
    }
}

#[test]
fn each_schema_version_reads_data_written_by_the_previous_one() {
    let catalog = Catalog::load().expect("schemas parse");
    for kind in EventKind::ALL {
        let versions: Vec<_> = catalog.versions(kind).collect();
        assert!(!versions.is_empty(), "{kind:?} has no schema");
        assert_eq!(versions.last().map(|(v, _)| v.version), Some(catalog.latest(kind).0.version));
        for pair in versions.windows(2) {
            let ((old, writer), (new, reader)) = (pair[0], pair[1]);
            assert_eq!(new.version, old.version + 1, "{kind:?}: versions must be consecutive");
            SchemaCompatibility::can_read(writer, reader)
                .unwrap_or_else(|e| panic!("{kind:?} v{} cannot read v{}: {e}", new.version, old.version));
        }
    }
}

#[test]
fn the_compatibility_check_catches_a_breaking_change() {
    // Guards the guard: adding a field without a default must be refused.
    let catalog = Catalog::load().expect("schemas parse");
    let (_, current) = catalog.latest(EventKind::LinkDeleted);
    let breaking = Schema::parse_str(
        r#"{"type": "record", "name": "LinkDeleted", "namespace": "kurz.events", "fields": [
            {"name": "code", "type": "string"},
            {"name": "deleted_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "reason", "type": "string"}]}"#,
    )
    .expect("parses");
    assert!(SchemaCompatibility::can_read(current, &breaking).is_err());
    let compatible = Schema::parse_str(
        r#"{"type": "record", "name": "LinkDeleted", "namespace": "kurz.events", "fields": [
            {"name": "code", "type": "string"},
            {"name": "deleted_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "reason", "type": ["null", "string"], "default": null}]}"#,
    )
    .expect("parses");
    assert!(SchemaCompatibility::can_read(current, &compatible).is_ok());
}

/// Records written by every published schema version, committed once and never rewritten: whatever
/// the schemas become, these must still decode to the same events (a version-1 record with the
/// defaults of the fields added since). Regenerate only for a new version, with
/// `KURZ_WRITE_FIXTURES=1`, and commit the new files beside the old ones.
#[test]
fn records_written_by_published_versions_still_decode() {
    let codec = codec();
    let catalog = Catalog::shipped();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for (name, event) in samples() {
        let kind = match &event {
            Event::Created(_) => EventKind::LinkCreated,
            Event::Updated(_) => EventKind::LinkUpdated,
            Event::Deleted(_) => EventKind::LinkDeleted,
            Event::Clicked(_) => EventKind::LinkClicked,
        };
        let latest = catalog.latest(kind).0.version;
        for version in 1..=latest {
            let path = dir.join(format!("{name}.v{version}.bin"));
            if version == latest && std::env::var_os("KURZ_WRITE_FIXTURES").is_some() && !path.exists() {
                std::fs::write(&path, codec.encode(&event).expect("encodes")).expect("fixture written");
            }
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let expected = match version {
                1 => as_v1(&event),
                2 => as_v2(&event),
                _ => event.clone(),
            };
            assert_eq!(codec.decode(&bytes).expect("decodes"), expected, "{name} v{version}");
            if version == latest {
                let encoded = codec.encode(&event).expect("encodes");
                assert_eq!(encoded, bytes, "{name}: the encoding of the current version changed");
            }
        }
    }
}

#[test]
fn damaged_records_are_errors_not_panics() {
    let codec = codec();
    let bytes = codec.encode(&samples()[0].1).expect("encodes");
    assert!(matches!(codec.decode(&bytes[..3]), Err(DecodeError::Framing(_))));
    let mut unknown = bytes.clone();
    unknown[4] = 250;
    assert!(matches!(codec.decode(&unknown), Err(DecodeError::UnknownSchema(_))));
    for cut in 5..bytes.len() {
        assert!(codec.decode(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
}

//! Every published version of every event schema, parsed once.

use std::sync::OnceLock;

use apache_avro::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    LinkCreated,
    LinkUpdated,
    LinkDeleted,
    LinkClicked,
}

impl EventKind {
    pub const ALL: [Self; 4] = [Self::LinkCreated, Self::LinkUpdated, Self::LinkDeleted, Self::LinkClicked];

    /// The Avro record's full name, also the registry subject's record part.
    pub const fn full_name(self) -> &'static str {
        match self {
            Self::LinkCreated => "kurz.events.LinkCreated",
            Self::LinkUpdated => "kurz.events.LinkUpdated",
            Self::LinkDeleted => "kurz.events.LinkDeleted",
            Self::LinkClicked => "kurz.events.LinkClicked",
        }
    }
}

/// One published schema version. `local_id` is the schema id used where no registry exists (the
/// embedded event log); like a registry id it is written into every record and never reused.
#[derive(Debug, Clone, Copy)]
pub struct SchemaVersion {
    pub kind: EventKind,
    pub version: u32,
    pub local_id: u32,
    pub text: &'static str,
}

/// Append-only: a new version gets a new line and a new local id; no line ever changes.
const VERSIONS: &[SchemaVersion] = &[
    SchemaVersion {
        kind: EventKind::LinkCreated,
        version: 1,
        local_id: 1,
        text: include_str!("../avro/link_created/v1.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkUpdated,
        version: 1,
        local_id: 2,
        text: include_str!("../avro/link_updated/v1.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkDeleted,
        version: 1,
        local_id: 3,
        text: include_str!("../avro/link_deleted/v1.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkClicked,
        version: 1,
        local_id: 4,
        text: include_str!("../avro/link_clicked/v1.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkCreated,
        version: 2,
        local_id: 5,
        text: include_str!("../avro/link_created/v2.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkUpdated,
        version: 2,
        local_id: 6,
        text: include_str!("../avro/link_updated/v2.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkDeleted,
        version: 2,
        local_id: 7,
        text: include_str!("../avro/link_deleted/v2.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkCreated,
        version: 3,
        local_id: 8,
        text: include_str!("../avro/link_created/v3.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkUpdated,
        version: 3,
        local_id: 9,
        text: include_str!("../avro/link_updated/v3.avsc"),
    },
    SchemaVersion {
        kind: EventKind::LinkClicked,
        version: 2,
        local_id: 10,
        text: include_str!("../avro/link_clicked/v2.avsc"),
    },
];

#[derive(Debug, thiserror::Error)]
#[error("schema {kind:?} v{version} does not parse: {source}")]
pub struct CatalogError {
    kind: EventKind,
    version: u32,
    source: apache_avro::Error,
}

#[derive(Debug)]
pub struct Catalog {
    schemas: Vec<(SchemaVersion, Schema)>,
}

impl Catalog {
    /// The catalog of the schemas compiled into this build, parsed once per process.
    pub fn shipped() -> &'static Self {
        static SHIPPED: OnceLock<Catalog> = OnceLock::new();
        SHIPPED
            .get_or_init(|| Self::load().expect("the schemas shipped with Kurz parse (checked by the contract tests)"))
    }

    pub fn load() -> Result<Self, CatalogError> {
        let schemas = VERSIONS
            .iter()
            .map(|v| {
                Schema::parse_str(v.text).map(|schema| (*v, schema)).map_err(|source| CatalogError {
                    kind: v.kind,
                    version: v.version,
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { schemas })
    }

    /// All versions of one event, oldest first.
    pub fn versions(&self, kind: EventKind) -> impl Iterator<Item = (&SchemaVersion, &Schema)> {
        self.schemas.iter().filter(move |(v, _)| v.kind == kind).map(|(v, s)| (v, s))
    }

    /// The version new events are written with.
    pub fn latest(&self, kind: EventKind) -> (&SchemaVersion, &Schema) {
        self.versions(kind).max_by_key(|(v, _)| v.version).expect("every event kind has a schema")
    }

    pub fn by_local_id(&self, id: u32) -> Option<(&SchemaVersion, &Schema)> {
        self.schemas.iter().find(|(v, _)| v.local_id == id).map(|(v, s)| (v, s))
    }

    pub fn all(&self) -> impl Iterator<Item = (&SchemaVersion, &Schema)> {
        self.schemas.iter().map(|(v, s)| (v, s))
    }
}

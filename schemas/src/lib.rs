//! The public event contract. Analytics consumers read these bytes, so the `.avsc` files under
//! `schemas/avro/` are the source of truth; this crate maps them to and from domain events and frames
//! them the way Confluent's serialisers do (magic byte, schema id, Avro body).
//!
//! Every schema version ever published stays in the catalog: data written with any of them is read
//! through Avro schema resolution into the latest version.

mod catalog;
mod codec;
mod direct_clicks;
mod mapping;
mod records;
mod wire;

pub use catalog::{Catalog, CatalogError, EventKind, SchemaVersion};
pub use codec::{Codec, DecodeError, EncodeError};
pub use wire::{FramingError, MAGIC_BYTE, frame, unframe};

//! The ports Kurz's services depend on. Each is a trait with one conformance suite (feature
//! `conformance`) that every adapter — embedded, Kafka, ScyllaDB, Redis — must pass.

mod api_keys;
mod code_registry;
mod creation_log;
mod encoded;
mod error;
mod event_log;
pub mod fold;
mod geo;
mod idempotency;
pub mod listing;
mod orphans;
mod projection;
mod read_store;
pub mod rows;
pub mod throttle;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use api_keys::{ApiKeyStore, StoredKey};
pub use code_registry::CodeRegistry;
pub use creation_log::{ClaimThenAppend, CreationLog};
pub use encoded::{Encoded, EncodedRecords};
pub use error::InfraError;
pub use event_log::{EventLog, LogRecord, PartitionRead, PartlyAppended, Position, partition_for};
pub use geo::{GeoLookup, Place};
pub use idempotency::{IdempotencyStore, Reservation};
pub use orphans::{ORPHAN_DAYS_KEPT, OrphanVisitStore};
pub use projection::{LinkDirectory, LinkEvents, LinkHistory, Projection, Unapplied};
pub use read_store::{
    Chunk, Chunks, ChunksAbandoned, ChunksWritten, ClickQuota, LinkChangeListener, ProjectionProgress, ReadStore,
};

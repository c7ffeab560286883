//! Kurz's read models on ScyllaDB (or Apache Cassandra): links by code, click statistics per link
//! and day, projection checkpoints.
//!
//! Writes are idempotent without counters, so replaying events never counts twice:
//! - a link row is written `USING TIMESTAMP` = the offset of the last event folded into it: a
//!   replay writes the same cells at the same timestamp, a late older event loses to the newer one;
//! - a click-day row keeps the offset of the last click folded into it; a click at or below it is
//!   skipped, and the row is replaced by a lightweight transaction on that offset, so two projectors
//!   racing through a rebalance cannot both add the same clicks;
//! - checkpoints are written last (`USING TIMESTAMP` = offset: they only move forward), and only say
//!   where to resume: a batch that failed half-way is applied again and the rows skip what they hold.
//!
//! Alias claims and leased code sequences live here too when ScyllaDB holds the read models: only
//! lightweight transactions write them (see `registry`).
//!
//! Tests: the read-store and code-registry conformance suites runs against a real cluster when `KURZ_TEST_SCYLLA_NODES`
//! is set (e.g. `127.0.0.1:9042`), and says by name that it is skipped otherwise.

mod config;
mod migrations;
mod projections;
mod registry;
mod store;

pub use config::ScyllaConfig;
pub use migrations::{MIGRATIONS, Migration, migrate};
pub use projections::{ScyllaDirectory, ScyllaHistory};
pub use registry::ScyllaCodeRegistry;
pub use store::ScyllaReadStore;

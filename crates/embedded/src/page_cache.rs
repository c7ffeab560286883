//! How much of each file redb may keep in memory. redb's default is 1 GiB per file, which across
//! Kurz's seven files would leave the process's memory bounded only by the data's size; every file is
//! opened through [`create`] with a budget of its own. Together 264 MiB at most.

use std::path::Path;

use redb::Database;

/// Records are read once per consumer, near the tail, where pages are fresh: a large cache would
/// only fill with pages a rebuild never reads again.
pub(crate) const LOG: usize = 64 << 20;
/// Links and stats rows: what every redirect missing the link cache and every stats read touches.
pub(crate) const STORE: usize = 128 << 20;
/// Pages of lists and searches, read per request of a person managing links.
pub(crate) const DIRECTORY: usize = 32 << 20;
pub(crate) const HISTORY: usize = 16 << 20;
pub(crate) const IDEMPOTENCY: usize = 16 << 20;
/// A row per day, read by an admin now and then.
pub(crate) const ORPHANS: usize = 4 << 20;
/// Keys are cached by the service that checks them; the file is read on a miss.
pub(crate) const KEYS: usize = 4 << 20;

/// Opens (or creates) a redb file whose page cache holds at most `bytes`.
pub(crate) fn create(path: &Path, bytes: usize) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(bytes).create(path)
}

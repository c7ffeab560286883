//! Orphan visits in `orphans.redb`: one row per day ([`kurz_ports::rows::encode_orphan_day`]),
//! added to in one transaction each, and days older than [`ORPHAN_DAYS_KEPT`] dropped as new ones
//! come. Not derived from the log (visits to no link append nothing), so a rebuild leaves it.

use std::path::Path;

use async_trait::async_trait;
use kurz_domain::orphans::OrphanDay;
use kurz_domain::{Day, DayRange};
use kurz_ports::rows::{decode_orphan_day, encode_orphan_day};
use kurz_ports::{InfraError, ORPHAN_DAYS_KEPT, OrphanVisitStore};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::OpenError;
use crate::small_db::SmallDb;

const CONTEXT: &str = "embedded orphan-visit store";
/// Days since the epoch → the day's row.
const DAYS: TableDefinition<i32, &[u8]> = TableDefinition::new("days");

#[derive(Debug, Clone)]
pub struct EmbeddedOrphanVisits {
    db: SmallDb,
}

impl EmbeddedOrphanVisits {
    /// Opens the file; one found damaged is moved aside and a new one started (orphan visits are
    /// worth less than serving).
    pub fn open_or_start_afresh(path: &Path) -> Result<Self, OpenError> {
        crate::open_or_set_aside(path, Self::open, "the orphan visits are damaged; moved aside, counting starts afresh")
    }

    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = SmallDb::open(path, CONTEXT, crate::page_cache::ORPHANS, |txn| {
            txn.open_table(DAYS)?;
            Ok(())
        })?;
        Ok(Self { db })
    }
}

#[async_trait]
impl OrphanVisitStore for EmbeddedOrphanVisits {
    async fn add(&self, day: Day, visits: &OrphanDay) -> Result<(), InfraError> {
        let visits = visits.clone();
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut days = txn.open_table(DAYS)?;
                    let key = day.days_since_epoch();
                    let mut row = match days.get(key)? {
                        Some(stored) => decode_orphan_day(stored.value())?,
                        None => OrphanDay::default(),
                    };
                    row.merge(&visits);
                    row.keep_top();
                    days.insert(key, encode_orphan_day(&row).as_slice())?;
                    days.retain_in(..key.saturating_sub(ORPHAN_DAYS_KEPT), |_, _| false)?;
                }
                txn.commit()?;
                Ok(())
            })
            .await
    }

    async fn days(&self, range: DayRange) -> Result<Vec<(Day, OrphanDay)>, InfraError> {
        let from = range.from.map_or(i32::MIN, Day::days_since_epoch);
        let to = range.to.map_or(i32::MAX, Day::days_since_epoch);
        self.db
            .run(move |db| {
                let txn = db.begin_read()?;
                let days = txn.open_table(DAYS)?;
                let mut found = Vec::new();
                for entry in days.range(from..=to)? {
                    let (day, row) = entry?;
                    found.push((Day::from_days_since_epoch(day.value()), decode_orphan_day(row.value())?));
                }
                Ok(found)
            })
            .await
    }
}

use async_trait::async_trait;
use kurz_domain::orphans::OrphanDay;
use kurz_domain::{Day, DayRange};

use crate::InfraError;

/// Days of orphan visits ([`kurz_domain::orphans`]), added to by every query side and read by
/// admins. A day keeps at most [`kurz_domain::orphans::KEPT_PER_DAY`] codes and referrers, and days
/// older than [`ORPHAN_DAYS_KEPT`] may be dropped.
#[async_trait]
pub trait OrphanVisitStore: Send + Sync + std::fmt::Debug {
    /// Adds `visits` to what `day` holds: counts add up, and the codes and referrers counted most
    /// are kept. Concurrent adds (of several query sides) all count.
    async fn add(&self, day: Day, visits: &OrphanDay) -> Result<(), InfraError>;

    /// The days in `range` (both ends given) that had orphan visits, oldest first.
    async fn days(&self, range: DayRange) -> Result<Vec<(Day, OrphanDay)>, InfraError>;
}

/// How long a day of orphan visits is kept.
pub const ORPHAN_DAYS_KEPT: i32 = 90;

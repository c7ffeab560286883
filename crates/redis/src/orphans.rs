//! Orphan visits in Redis, a day in three keys of layout 1, each expiring [`ORPHAN_DAYS_KEPT`]
//! days after its last visit:
//! - `orphans1:{day}`: hash of `visits` and a count per reason (`unknown`, `deleted`, …);
//! - `orphan_codes1:{day}` and `orphan_referrers1:{day}`: sorted sets of codes tried and referrer
//!   sites by count, cut to the [`KEPT_PER_DAY`] counted most after every add.
//!
//! An add is one `MULTI`: counts only ever go up, so query sides add concurrently without reading.

use async_trait::async_trait;
use kurz_domain::orphans::{KEPT_PER_DAY, OrphanDay, OrphanReason, TopCounts};
use kurz_domain::{Day, DayRange};
use kurz_ports::{InfraError, ORPHAN_DAYS_KEPT, OrphanVisitStore};

use crate::connection::{RedisConnection, redis_error};

const CONTEXT: &str = "Redis orphan-visit store";
const VISITS: &str = "visits";
const TOTALS: &str = "orphans1";
const CODES: &str = "orphan_codes1";
const REFERRERS: &str = "orphan_referrers1";
/// The longest range read at once: a stored day costs three reads.
const MAX_DAYS_READ: i32 = 2 * ORPHAN_DAYS_KEPT;

#[derive(Debug, Clone)]
pub struct RedisOrphanVisits {
    redis: RedisConnection,
}

impl RedisOrphanVisits {
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis }
    }

    fn keys(&self, day: Day) -> [String; 3] {
        let day = day.days_since_epoch().to_string();
        [TOTALS, CODES, REFERRERS].map(|kind| self.redis.key(kind, Some(&day)))
    }
}

#[async_trait]
impl OrphanVisitStore for RedisOrphanVisits {
    async fn add(&self, day: Day, visits: &OrphanDay) -> Result<(), InfraError> {
        let [totals, codes, referrers] = self.keys(day);
        let keep_seconds = i64::from(ORPHAN_DAYS_KEPT) * 86_400;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.hincr(&totals, VISITS, visits.visits).ignore();
        for (reason, count) in &visits.reasons {
            pipe.hincr(&totals, reason.as_str(), *count).ignore();
        }
        for (key, counts) in [(&codes, &visits.codes), (&referrers, &visits.referrers)] {
            for (value, count) in counts.iter() {
                pipe.zincr(key, value, count).ignore();
            }
            let kept = isize::try_from(KEPT_PER_DAY).expect("a small bound");
            pipe.zremrangebyrank(key, 0, -(kept + 1)).ignore();
        }
        for key in [&totals, &codes, &referrers] {
            pipe.expire(key, keep_seconds).ignore();
        }
        pipe.query_async::<()>(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))
    }

    async fn days(&self, range: DayRange) -> Result<Vec<(Day, OrphanDay)>, InfraError> {
        let (Some(from), Some(to)) = (range.from, range.to) else {
            return Err(InfraError::new(CONTEXT, "a range of orphan-visit days needs both ends"));
        };
        let (from, to) = (from.days_since_epoch(), to.days_since_epoch());
        if to.saturating_sub(from) >= MAX_DAYS_READ {
            return Err(InfraError::new(CONTEXT, "a range of orphan-visit days is too long"));
        }
        let days: Vec<Day> = (from..=to).map(Day::from_days_since_epoch).collect();
        let mut pipe = redis::pipe();
        for day in &days {
            let [totals, codes, referrers] = self.keys(*day);
            pipe.hgetall(totals);
            pipe.zrange_withscores(codes, 0, -1);
            pipe.zrange_withscores(referrers, 0, -1);
        }
        let rows: Vec<StoredDay> = pipe.query_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
        let mut found = Vec::new();
        for (day, (totals, codes, referrers)) in days.into_iter().zip(rows) {
            let mut row = OrphanDay::default();
            for (field, count) in totals {
                match OrphanReason::parse(&field) {
                    Some(reason) => {
                        row.reasons.insert(reason, count);
                    }
                    None if field == VISITS => row.visits = count,
                    None => {}
                }
            }
            if row.visits == 0 {
                continue;
            }
            row.codes = top_counts(codes);
            row.referrers = top_counts(referrers);
            found.push((day, row));
        }
        Ok(found)
    }
}

/// A day as read: its counts, its codes and its referrers.
type StoredDay = (Vec<(String, u64)>, Vec<(String, u64)>, Vec<(String, u64)>);

fn top_counts(pairs: Vec<(String, u64)>) -> TopCounts {
    let mut counts = TopCounts::default();
    for (value, count) in pairs {
        counts.add(&value, count);
    }
    counts
}

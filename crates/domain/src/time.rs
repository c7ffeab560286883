//! Instants and calendar days (UTC) as plain numbers, so the domain never reads a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

const MILLIS_PER_DAY: i64 = 86_400_000;
pub const MILLIS_PER_HOUR: i64 = 3_600_000;

/// An instant in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The hour of its day, 0 to 23 (UTC).
    pub const fn hour_of_day(self) -> usize {
        #[expect(clippy::cast_possible_truncation, reason = "0 to 23")]
        let hour = (self.0.rem_euclid(MILLIS_PER_DAY) / MILLIS_PER_HOUR) as usize;
        hour
    }

    pub const fn day(self) -> Day {
        // i64 milliseconds span about 1.07e8 days each way, well inside i32.
        #[expect(clippy::cast_possible_truncation, reason = "see above")]
        Day(self.0.div_euclid(MILLIS_PER_DAY) as i32)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A calendar day in UTC, counted in days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(i32);

impl Day {
    pub const fn from_days_since_epoch(days: i32) -> Self {
        Self(days)
    }

    pub const fn days_since_epoch(self) -> i32 {
        self.0
    }

    pub const fn start(self) -> Timestamp {
        Timestamp(self.0 as i64 * MILLIS_PER_DAY)
    }
}

/// An inclusive range of days; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayRange {
    pub from: Option<Day>,
    pub to: Option<Day>,
}

impl DayRange {
    pub const ALL: Self = Self { from: None, to: None };

    pub fn contains(self, day: Day) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }

    pub fn is_empty(self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from > to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_split_at_utc_midnight_also_before_the_epoch() {
        assert_eq!(Timestamp::from_millis(0).day(), Day(0));
        assert_eq!(Timestamp::from_millis(MILLIS_PER_DAY - 1).day(), Day(0));
        assert_eq!(Timestamp::from_millis(MILLIS_PER_DAY).day(), Day(1));
        assert_eq!(Timestamp::from_millis(-1).day(), Day(-1));
        assert_eq!(Day(3).start().day(), Day(3));
    }

    #[test]
    fn ranges_are_inclusive_and_may_be_open() {
        let range = DayRange { from: Some(Day(2)), to: Some(Day(4)) };
        assert!(!range.contains(Day(1)));
        assert!(range.contains(Day(2)) && range.contains(Day(4)));
        assert!(!range.contains(Day(5)));
        assert!(DayRange::ALL.contains(Day(-100)));
        assert!(DayRange { from: Some(Day(5)), to: Some(Day(4)) }.is_empty());
    }
}

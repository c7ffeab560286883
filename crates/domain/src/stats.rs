//! Click statistics: the increments a batch of clicks adds (what the projector writes) and the summary
//! a stats query returns (what the query side reads). Stored per link and day, so a query over any
//! range reads at most one row per day, however many clicks there were.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use crate::analytics;
use crate::code::Code;
use crate::event::LinkClicked;
use crate::hll::Hll;
use crate::time::{Day, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dimension {
    Referrer,
    Browser,
    OperatingSystem,
    Device,
}

/// Distinct referrers kept per link and day; the long tail is counted under [`OTHER`].
pub const MAX_REFERRERS_PER_DAY: usize = 200;
pub const OTHER: &str = "(other)";
pub const TOP_REFERRERS: usize = 10;

/// One link's clicks on one day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayStats {
    pub clicks: u64,
    pub last_clicked_at: Option<Timestamp>,
    pub breakdown: BTreeMap<(Dimension, String), u64>,
    pub visitors: Hll,
}

impl DayStats {
    pub fn record(&mut self, click: &LinkClicked) {
        self.clicks += 1;
        self.last_clicked_at = self.last_clicked_at.max(Some(click.clicked_at));
        let ua = click.user_agent.as_deref();
        self.count(Dimension::Referrer, analytics::referrer_site(click.referrer.as_deref()));
        self.count(Dimension::Browser, analytics::browser(ua).to_owned());
        self.count(Dimension::OperatingSystem, analytics::operating_system(ua).to_owned());
        self.count(Dimension::Device, analytics::device(ua).to_owned());
        if let Some(visitor) = &click.visitor_id {
            self.visitors.add_hash(visitor_hash(visitor));
        }
    }

    /// Adds another increment for the same link and day.
    pub fn merge(&mut self, other: &Self) {
        self.clicks += other.clicks;
        self.last_clicked_at = self.last_clicked_at.max(other.last_clicked_at);
        for ((dimension, value), count) in &other.breakdown {
            self.add(*dimension, value.clone(), *count);
        }
        self.visitors.merge(&other.visitors);
    }

    fn count(&mut self, dimension: Dimension, value: String) {
        self.add(dimension, value, 1);
    }

    fn add(&mut self, dimension: Dimension, value: String, count: u64) {
        let key = (dimension, value);
        if dimension == Dimension::Referrer
            && !self.breakdown.contains_key(&key)
            && self.breakdown.keys().filter(|(d, _)| *d == Dimension::Referrer).count() >= MAX_REFERRERS_PER_DAY
        {
            *self.breakdown.entry((dimension, OTHER.to_owned())).or_default() += count;
            return;
        }
        *self.breakdown.entry(key).or_default() += count;
    }
}

fn visitor_hash(visitor: &str) -> u64 {
    let mut hasher = SipHasher13::new();
    hasher.write(visitor.as_bytes());
    hasher.finish()
}

/// The per-link, per-day increments of a batch of clicks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsDelta {
    days: HashMap<(Code, Day), DayStats>,
}

impl StatsDelta {
    pub fn record(&mut self, click: &LinkClicked) {
        self.days.entry((click.code.clone(), click.clicked_at.day())).or_default().record(click);
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    pub fn into_days(self) -> impl Iterator<Item = ((Code, Day), DayStats)> {
        self.days.into_iter()
    }
}

/// What a stats query answers, folded from the day rows in its range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub total_clicks: u64,
    pub unique_visitors: u64,
    pub last_clicked_at: Option<Timestamp>,
    pub clicks_by_day: Vec<(Day, u64)>,
    pub top_referrers: Vec<(String, u64)>,
    pub browsers: Vec<(String, u64)>,
    pub operating_systems: Vec<(String, u64)>,
    pub devices: Vec<(String, u64)>,
}

impl LinkStats {
    /// Summarises day rows (in any order) into the answer for their range.
    pub fn from_days<'a>(days: impl IntoIterator<Item = (Day, &'a DayStats)>) -> Self {
        let mut total = DayStats::default();
        let mut clicks_by_day = Vec::new();
        for (day, stats) in days {
            total.merge(stats);
            clicks_by_day.push((day, stats.clicks));
        }
        clicks_by_day.sort_unstable();
        let ranked = |dimension: Dimension, limit: usize| {
            let mut values: Vec<(String, u64)> = total
                .breakdown
                .iter()
                .filter(|((d, _), _)| *d == dimension)
                .map(|((_, value), count)| (value.clone(), *count))
                .collect();
            values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(limit);
            values
        };
        Self {
            total_clicks: total.clicks,
            unique_visitors: total.visitors.estimate(),
            last_clicked_at: total.last_clicked_at,
            clicks_by_day,
            top_referrers: ranked(Dimension::Referrer, TOP_REFERRERS),
            browsers: ranked(Dimension::Browser, usize::MAX),
            operating_systems: ranked(Dimension::OperatingSystem, usize::MAX),
            devices: ranked(Dimension::Device, usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn click(at: i64, referrer: Option<&str>, visitor: &str) -> LinkClicked {
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        LinkClicked::new(
            Code::parse("abc").expect("valid"),
            Timestamp::from_millis(at),
            referrer,
            Some(ua),
            Some(visitor),
        )
    }

    fn summary(clicks: &[LinkClicked]) -> LinkStats {
        let mut delta = StatsDelta::default();
        for c in clicks {
            delta.record(c);
        }
        let days: Vec<((Code, Day), DayStats)> = delta.into_days().collect();
        LinkStats::from_days(days.iter().map(|((_, day), stats)| (*day, stats)))
    }

    #[test]
    fn folds_totals_days_visitors_and_breakdowns() {
        let stats = summary(&[
            click(10, Some("https://news.example/a"), "v1"),
            click(20, Some("https://news.example/b"), "v2"),
            click(DAY + 5, None, "v1"),
        ]);
        assert_eq!(stats.total_clicks, 3);
        assert_eq!(stats.unique_visitors, 2);
        assert_eq!(stats.last_clicked_at, Some(Timestamp::from_millis(DAY + 5)));
        let (d0, d1) = (Day::from_days_since_epoch(0), Day::from_days_since_epoch(1));
        assert_eq!(stats.clicks_by_day, vec![(d0, 2), (d1, 1)]);
        assert_eq!(stats.top_referrers, vec![("news.example".to_owned(), 2), ("(direct)".to_owned(), 1)]);
        assert_eq!(stats.browsers, vec![("Firefox".to_owned(), 3)]);
        assert_eq!(stats.operating_systems, vec![("Linux".to_owned(), 3)]);
        assert_eq!(stats.devices, vec![("Desktop".to_owned(), 3)]);
    }

    #[test]
    fn merging_increments_equals_recording_everything_at_once() {
        let clicks: Vec<LinkClicked> =
            (0..40).map(|i| click(i, Some("https://r.example"), &format!("v{}", i % 7))).collect();
        let mut whole = DayStats::default();
        for c in &clicks {
            whole.record(c);
        }
        let (mut left, mut right) = (DayStats::default(), DayStats::default());
        clicks[..15].iter().for_each(|c| left.record(c));
        clicks[15..].iter().for_each(|c| right.record(c));
        left.merge(&right);
        assert_eq!(left, whole);
    }

    #[test]
    fn the_referrer_long_tail_is_folded_into_other() {
        let mut day = DayStats::default();
        for i in 0..MAX_REFERRERS_PER_DAY + 5 {
            day.record(&click(1, Some(&format!("https://site{i}.example/")), "v"));
        }
        let referrers = day.breakdown.keys().filter(|(d, _)| *d == Dimension::Referrer).count();
        assert_eq!(referrers, MAX_REFERRERS_PER_DAY + 1);
        assert_eq!(day.breakdown.get(&(Dimension::Referrer, OTHER.to_owned())), Some(&5));
    }
}

//! Click statistics: the increments a batch of clicks adds (what the projector writes) and the summary
//! a stats query returns (what the query side reads). Stored per link and day, so a query over any
//! range reads at most one row per day, however many clicks there were.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use crate::analytics::{self, Agent};
use crate::code::Code;
use crate::event::LinkClicked;
use crate::hll::Hll;
use crate::time::{Day, Timestamp};

/// Distinct referrers kept per link and day; the long tail is counted under [`OTHER`].
pub const MAX_REFERRERS_PER_DAY: usize = 200;
pub const OTHER: &str = "(other)";
pub const TOP_REFERRERS: usize = 10;

/// One link's clicks on one day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayStats {
    pub clicks: u64,
    pub last_clicked_at: Option<Timestamp>,
    pub referrers: BTreeMap<String, u64>,
    pub browsers: BTreeMap<String, u64>,
    pub operating_systems: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, u64>,
    pub visitors: Hll,
}

impl DayStats {
    pub fn record(&mut self, click: &LinkClicked) {
        let site = analytics::referrer_site(click.referrer.as_deref());
        self.record_classified(click, Agent::classify(click.user_agent.as_deref()), &site);
    }

    fn record_classified(&mut self, click: &LinkClicked, agent: Agent, site: &str) {
        self.clicks += 1;
        self.last_clicked_at = self.last_clicked_at.max(Some(click.clicked_at));
        self.add_referrer(site, 1);
        add(&mut self.browsers, agent.browser, 1);
        add(&mut self.operating_systems, agent.operating_system, 1);
        add(&mut self.devices, agent.device, 1);
        if let Some(visitor) = &click.visitor_id {
            self.visitors.add_hash(visitor_hash(visitor));
        }
    }

    /// Adds another increment for the same link and day.
    pub fn merge(&mut self, other: &Self) {
        self.clicks += other.clicks;
        self.last_clicked_at = self.last_clicked_at.max(other.last_clicked_at);
        for (referrer, count) in &other.referrers {
            self.add_referrer(referrer, *count);
        }
        for (mine, theirs) in [
            (&mut self.browsers, &other.browsers),
            (&mut self.operating_systems, &other.operating_systems),
            (&mut self.devices, &other.devices),
        ] {
            for (value, count) in theirs {
                add(mine, value, *count);
            }
        }
        self.visitors.merge(&other.visitors);
    }

    /// Adds a batch's clicks on the same link and day.
    pub fn add(&mut self, delta: &DayDelta) {
        self.clicks += delta.clicks;
        self.last_clicked_at = self.last_clicked_at.max(delta.last_clicked_at);
        for source in &delta.sources {
            self.add_referrer(&source.site, source.clicks);
            add(&mut self.browsers, source.agent.browser, source.clicks);
            add(&mut self.operating_systems, source.agent.operating_system, source.clicks);
            add(&mut self.devices, source.agent.device, source.clicks);
        }
        self.visitors.merge(&delta.visitors);
    }

    fn add_referrer(&mut self, referrer: &str, count: u64) {
        let known = self.referrers.contains_key(referrer);
        let referrer = if known || self.referrers.len() < MAX_REFERRERS_PER_DAY { referrer } else { OTHER };
        add(&mut self.referrers, referrer, count);
    }
}

/// Counts `value`, allocating its key only the first time it is seen.
fn add(counts: &mut BTreeMap<String, u64>, value: &str, count: u64) {
    match counts.get_mut(value) {
        Some(existing) => *existing += count,
        None => {
            counts.insert(value.to_owned(), count);
        }
    }
}

fn visitor_hash(visitor: &str) -> u64 {
    let mut hasher = SipHasher13::new();
    hasher.write(visitor.as_bytes());
    hasher.finish()
}

/// A fast hasher for maps that live for one batch (foldhash, seeded per process): hashing is a large
/// share of folding a click, and SipHash's stronger guarantees buy nothing for such short-lived maps.
pub type BatchHasher = foldhash::fast::RandomState;

/// What a batch of clicks adds to one link's day: clicks counted per source (a user agent's class
/// and a referrer site) rather than per breakdown. A batch repeats a few sources many times, and
/// counting into a short list costs less per click than four maps of owned strings; the maps are
/// updated once per source when the delta is added to a stored row ([`DayStats::add`]).
#[derive(Debug, Clone, Default)]
pub struct DayDelta {
    clicks: u64,
    last_clicked_at: Option<Timestamp>,
    /// In order of first appearance, which decides the referrers kept under the per-day cap.
    sources: Vec<Source>,
    visitors: Hll,
}

#[derive(Debug, Clone)]
struct Source {
    agent: Agent,
    /// Shared with the batch's referrer memo ([`StatsDelta`]), so a source is told apart by pointer.
    site: Arc<str>,
    clicks: u64,
}

impl DayDelta {
    fn record(&mut self, click: &LinkClicked, agent: Agent, site: &Arc<str>) {
        self.clicks += 1;
        self.last_clicked_at = self.last_clicked_at.max(Some(click.clicked_at));
        match self.sources.iter_mut().find(|s| Arc::ptr_eq(&s.site, site) && s.agent == agent) {
            Some(source) => source.clicks += 1,
            None => self.sources.push(Source { agent, site: Arc::clone(site), clicks: 1 }),
        }
        if let Some(visitor) = &click.visitor_id {
            self.visitors.add_hash(visitor_hash(visitor));
        }
    }

    pub fn clicks(&self) -> u64 {
        self.clicks
    }
}

/// The per-link, per-day increments of a batch of clicks.
#[derive(Debug, Clone, Default)]
pub struct StatsDelta {
    links: HashMap<Code, HashMap<Day, DayDelta, BatchHasher>, BatchHasher>,
    /// A batch repeats a few user agents many times: each is classified once.
    agents: HashMap<String, Agent, BatchHasher>,
    /// Likewise referrers: each is reduced to its site once.
    sites: HashMap<Option<String>, Arc<str>, BatchHasher>,
}

impl StatsDelta {
    pub fn record(&mut self, click: &LinkClicked) {
        let agent = match click.user_agent.as_deref() {
            None => Agent::classify(None),
            Some(ua) => match self.agents.get(ua) {
                Some(agent) => *agent,
                None => *self.agents.entry(ua.to_owned()).or_insert_with(|| Agent::classify(Some(ua))),
            },
        };
        let site = match self.sites.get(&click.referrer) {
            Some(site) => site,
            None => self
                .sites
                .entry(click.referrer.clone())
                .or_insert_with(|| analytics::referrer_site(click.referrer.as_deref()).into()),
        };
        let days = match self.links.get_mut(&click.code) {
            Some(days) => days,
            None => self.links.entry(click.code.clone()).or_default(),
        };
        days.entry(click.clicked_at.day()).or_default().record(click, agent, site);
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// How many (link, day) rows the increments touch.
    pub fn days(&self) -> usize {
        self.links.values().map(HashMap::len).sum()
    }

    pub fn into_days(self) -> impl Iterator<Item = ((Code, Day), DayDelta)> {
        self.links
            .into_iter()
            .flat_map(|(code, days)| days.into_iter().map(move |(day, delta)| ((code.clone(), day), delta)))
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
        let ranked = |counts: &BTreeMap<String, u64>, limit: usize| {
            let mut values: Vec<(String, u64)> = counts.iter().map(|(value, count)| (value.clone(), *count)).collect();
            values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(limit);
            values
        };
        Self {
            total_clicks: total.clicks,
            unique_visitors: total.visitors.estimate(),
            last_clicked_at: total.last_clicked_at,
            clicks_by_day,
            top_referrers: ranked(&total.referrers, TOP_REFERRERS),
            browsers: ranked(&total.browsers, usize::MAX),
            operating_systems: ranked(&total.operating_systems, usize::MAX),
            devices: ranked(&total.devices, usize::MAX),
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
        let days: Vec<(Day, DayStats)> = delta
            .into_days()
            .map(|((_, day), delta)| {
                let mut stats = DayStats::default();
                stats.add(&delta);
                (day, stats)
            })
            .collect();
        LinkStats::from_days(days.iter().map(|(day, stats)| (*day, stats)))
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
    fn a_batch_delta_adds_what_recording_each_click_adds() {
        let agents = [
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
            "curl/8.5.0",
        ];
        // More referrer sites than a day keeps, repeated, with and without agents and visitors.
        let clicks: Vec<LinkClicked> = (0..MAX_REFERRERS_PER_DAY * 3)
            .map(|i| {
                let referrer =
                    (i % 7 != 0).then(|| format!("https://site{}.example/p", i % (MAX_REFERRERS_PER_DAY + 40)));
                let agent = (i % 5 != 0).then_some(agents[i % 3]);
                let visitor = (i % 4 != 0).then(|| format!("v{}", i % 90));
                LinkClicked::new(
                    Code::parse("abc").expect("valid"),
                    Timestamp::from_millis(i64::try_from(i).expect("small")),
                    referrer.as_deref(),
                    agent,
                    visitor.as_deref(),
                )
            })
            .collect();
        let (mut each, mut batch) = (DayStats::default(), StatsDelta::default());
        for click in &clicks {
            each.record(click);
            batch.record(click);
        }
        let mut days = batch.into_days();
        let ((_, _), delta) = days.next().expect("one day");
        assert!(days.next().is_none());
        let mut added = DayStats::default();
        added.add(&delta);
        assert_eq!(added, each);
    }

    #[test]
    fn the_referrer_long_tail_is_folded_into_other() {
        let mut day = DayStats::default();
        for i in 0..MAX_REFERRERS_PER_DAY + 5 {
            day.record(&click(1, Some(&format!("https://site{i}.example/")), "v"));
        }
        assert_eq!(day.referrers.len(), MAX_REFERRERS_PER_DAY + 1);
        assert_eq!(day.referrers.get(OTHER), Some(&5));
    }
}

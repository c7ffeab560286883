//! Click statistics: the increments a batch of clicks adds (what the projector writes) and the summary
//! a stats query returns (what the query side reads). Stored per link and day, so a query over any
//! range reads at most one row per day, however many clicks there were.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use smallvec::SmallVec;

mod row;

use crate::analytics::{self, Agent, BotRules};
use crate::code::Code;
use crate::counts::Counts;
use crate::event::{ClickFields, ClickText, LinkClicked};
use crate::hll::{Hll, HllBuilder};
use crate::time::{Day, MILLIS_PER_HOUR, Timestamp};

/// Distinct referrers kept per link and day; the long tail is counted under [`OTHER`].
pub const MAX_REFERRERS_PER_DAY: usize = 200;
pub const OTHER: &str = "(other)";
pub const TOP_REFERRERS: usize = 10;
/// Distinct browser versions, languages, countries and cities kept per link and day; the rest count
/// under [`OTHER`].
pub const MAX_PLACES_PER_DAY: usize = 200;

/// One link's clicks on one day: people's and bots' apart, so that stats can leave bots out (the
/// default), add them, or show only them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayStats {
    pub people: Tally,
    pub bots: Tally,
}

impl DayStats {
    pub fn record(&mut self, click: &LinkClicked) {
        let click = click.fields();
        let agent = Agent::classify(click.user_agent);
        let site = analytics::referrer_site(click.referrer);
        self.tally_mut(agent.bot).record_classified(&click, agent, &site);
    }

    /// Adds another increment for the same link and day.
    pub fn merge(&mut self, other: &Self) {
        self.people.merge(&other.people);
        self.bots.merge(&other.bots);
    }

    /// Adds a batch's clicks on the same link and day.
    pub fn add(&mut self, delta: DayDelta) {
        self.people.add(delta.people);
        if let Some(bots) = delta.bots {
            self.bots.add(*bots);
        }
    }

    pub fn clicks(&self) -> u64 {
        self.people.clicks + self.bots.clicks
    }

    fn tally_mut(&mut self, bot: bool) -> &mut Tally {
        if bot { &mut self.bots } else { &mut self.people }
    }
}

/// Clicks of one kind of visitor (people or bots) on one link and day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub clicks: u64,
    pub last_clicked_at: Option<Timestamp>,
    pub referrers: Counts,
    pub browsers: Counts,
    /// `Chrome 131`: browsers with their major version, where the agent names one.
    pub browser_versions: Counts,
    pub operating_systems: Counts,
    pub devices: Counts,
    pub languages: Counts,
    pub countries: Counts,
    /// `City, CC` (a city's name alone is ambiguous).
    pub cities: Counts,
    pub visitors: Hll,
    pub hours: HourClicks,
}

/// A day's clicks by hour (UTC): what hourly stats are made of, 24 numbers per row rather than a
/// row per hour. Stored as the hours that saw clicks, as (hour, clicks) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HourClicks([u64; 24]);

impl HourClicks {
    fn count(&mut self, hour: usize, clicks: u64) {
        self.0[hour] += clicks;
    }

    fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl Serialize for HourClicks {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let hours = self.0.iter().filter(|clicks| **clicks > 0).count();
        let mut seq = serializer.serialize_seq(Some(hours))?;
        for (hour, clicks) in (0u8..).zip(self.0).filter(|(_, clicks)| *clicks > 0) {
            seq.serialize_element(&(hour, clicks))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for HourClicks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u8, u64)>::deserialize(deserializer)?;
        let mut hours = Self::default();
        for (hour, clicks) in pairs {
            if hour >= 24 {
                return Err(serde::de::Error::custom("an hour of the day past 23"));
            }
            hours.count(usize::from(hour), clicks);
        }
        Ok(hours)
    }
}

/// A click's language, country and city as stats name them (`None`: unknown); borrowed unless a
/// city needs its country added (the fold runs per click).
fn places<'a>(click: &ClickFields<'a>) -> [Option<Cow<'a, str>>; 3] {
    let city = match (click.city, click.country) {
        (Some(city), Some(country)) => Some(Cow::Owned(format!("{city}, {country}"))),
        (Some(city), None) => Some(Cow::Borrowed(city)),
        (None, _) => None,
    };
    [click.language.map(Cow::Borrowed), click.country.map(Cow::Borrowed), city]
}

impl Tally {
    fn record_classified(&mut self, click: &ClickFields<'_>, agent: Agent, site: &str) {
        self.clicks += 1;
        self.last_clicked_at = self.last_clicked_at.max(Some(click.clicked_at));
        self.add_referrer(site, 1);
        self.browsers.add(agent.browser, 1);
        if let Some(version) = agent.browser_version() {
            add_bounded(&mut self.browser_versions, &version, 1);
        }
        self.operating_systems.add(agent.operating_system, 1);
        self.devices.add(agent.device, 1);
        let [language, country, city] = places(click).map(|place| place.unwrap_or(Cow::Borrowed(analytics::UNKNOWN)));
        add_bounded(&mut self.languages, &language, 1);
        add_bounded(&mut self.countries, &country, 1);
        add_bounded(&mut self.cities, &city, 1);
        if let Some(visitor) = click.visitor_id {
            self.visitors.add_hash(visitor_hash(visitor));
        }
        self.hours.count(click.clicked_at.hour_of_day(), 1);
    }

    fn merge(&mut self, other: &Self) {
        self.clicks += other.clicks;
        self.last_clicked_at = self.last_clicked_at.max(other.last_clicked_at);
        for (referrer, count) in other.referrers.iter() {
            self.add_referrer(referrer, count);
        }
        for (mine, theirs) in [
            (&mut self.browsers, &other.browsers),
            (&mut self.operating_systems, &other.operating_systems),
            (&mut self.devices, &other.devices),
        ] {
            for (value, count) in theirs.iter() {
                mine.add(value, count);
            }
        }
        for (mine, theirs) in [
            (&mut self.browser_versions, &other.browser_versions),
            (&mut self.languages, &other.languages),
            (&mut self.countries, &other.countries),
            (&mut self.cities, &other.cities),
        ] {
            for (value, count) in theirs.iter() {
                add_bounded(mine, value, count);
            }
        }
        self.visitors.merge(&other.visitors);
        self.hours.add(&other.hours);
    }

    fn add(&mut self, delta: TallyDelta) {
        self.clicks += delta.clicks;
        self.last_clicked_at = self.last_clicked_at.max(delta.last_clicked_at);
        for (site, clicks) in &delta.sites {
            self.add_referrer(site, *clicks);
        }
        for AgentClicks { class, clicks, .. } in &delta.agents {
            let agent = &class.agent;
            self.browsers.add(agent.browser, *clicks);
            if let Some(version) = &class.browser_version {
                add_bounded(&mut self.browser_versions, version, *clicks);
            }
            self.operating_systems.add(agent.operating_system, *clicks);
            self.devices.add(agent.device, *clicks);
        }
        for (mine, theirs) in [
            (&mut self.languages, &delta.languages),
            (&mut self.countries, &delta.countries),
            (&mut self.cities, &delta.cities),
        ] {
            for (value, count) in &theirs.counts {
                add_bounded(mine, value, *count);
            }
        }
        self.visitors.absorb(delta.visitors.into_hll());
        self.hours.add(&delta.hours);
    }

    fn add_referrer(&mut self, referrer: &str, count: u64) {
        let referrer =
            counted_as(self.referrers.contains(referrer), self.referrers.len(), MAX_REFERRERS_PER_DAY, referrer);
        self.referrers.add(referrer, count);
    }
}

/// Counts `value` while fewer than [`MAX_PLACES_PER_DAY`] values are counted, then under [`OTHER`].
fn add_bounded(counts: &mut Counts, value: &str, count: u64) {
    let value = counted_as(counts.contains(value), counts.len(), MAX_PLACES_PER_DAY, value);
    counts.add(value, count);
}

/// The name a breakdown counts `name` under: itself if it is `known` or the breakdown holds fewer
/// than `limit` names, else [`OTHER`]. The one rule of a day row's bounded breakdowns.
fn counted_as(known: bool, names: usize, limit: usize, name: &str) -> &str {
    if known || names < limit { name } else { OTHER }
}

/// A batch's counts of one breakdown, in order of first appearance and bounded as a stored row is
/// ([`add_bounded`]), so that adding them equals recording each click.
#[derive(Debug, Clone, Default)]
struct FirstSeen {
    /// Inline strings, and the first name inline too: most names (languages, countries,
    /// "Unknown") need no allocation, and most days see one (every day, without a GeoIP database).
    counts: SmallVec<[(CompactString, u64); 1]>,
    /// Where clicks of an unknown value are counted, once one was: without a GeoIP database every
    /// click's place is unknown, and finding it again per click would cost a scan.
    unknown: Option<usize>,
}

impl FirstSeen {
    fn count(&mut self, value: Option<&str>) {
        match (value, self.unknown) {
            (None, Some(at)) => self.counts[at].1 += 1,
            (None, None) => self.unknown = Some(self.count_named(analytics::UNKNOWN)),
            (Some(value), _) => {
                self.count_named(value);
            }
        }
    }

    /// Counts `value` (or [`OTHER`], once the breakdown is full) and says at which index.
    fn count_named(&mut self, value: &str) -> usize {
        if let Some(at) = self.counts.iter().position(|(known, _)| known == value) {
            self.counts[at].1 += 1;
            return at;
        }
        if self.counts.len() < MAX_PLACES_PER_DAY || value == OTHER {
            self.counts.push((CompactString::from(value), 1));
            return self.counts.len() - 1;
        }
        self.count_named(OTHER)
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

/// What a batch of clicks adds to one link's day, people's and bots' apart.
#[derive(Debug, Clone, Default)]
pub struct DayDelta {
    people: TallyDelta,
    /// Boxed: most days see no bot, and a batch moves its deltas around.
    bots: Option<Box<TallyDelta>>,
}

impl DayDelta {
    /// Reads a word from each part of the delta that writing its row reads; the answer is of no
    /// use. A batch's deltas are made while folding, scattered over the heap, and written much
    /// later in key order: each is a cache miss. Reading all of a link's deltas before writing any
    /// lets their misses overlap instead of waiting out one row's after another's (a tenth of a
    /// rebuild's time, `perf annotate`).
    pub fn warm(&self) -> u64 {
        let TallyDelta { clicks, last_clicked_at, sites, agents, languages, countries, cities, visitors, hours } =
            &self.people;
        let lists = sites.len() + agents.len() + languages.counts.len() + countries.counts.len() + cities.counts.len();
        let hours = hours.0[0] ^ hours.0[8] ^ hours.0[16] ^ hours.0[23];
        let at = last_clicked_at.map_or(0, |at| at.as_millis().unsigned_abs());
        (clicks ^ at ^ hours ^ (lists + visitors.len()) as u64) + self.bots.as_ref().map_or(0, |bots| bots.clicks)
    }

    fn record(&mut self, click: &ClickFields<'_>, class: (u32, &Arc<AgentClass>), site: &Arc<str>, other: &Arc<str>) {
        let tally = if class.1.agent.bot { self.bots.get_or_insert_default() } else { &mut self.people };
        tally.record(click, class, site, other);
    }

    pub fn clicks(&self) -> u64 {
        self.people.clicks + self.bots.as_ref().map_or(0, |bots| bots.clicks)
    }
}

/// What a batch of clicks of one kind of visitor adds to one link's day: clicks counted per
/// referrer site and per agent class rather than into the four breakdown maps. A batch repeats a few of each many times, and
/// counting into short lists costs less per click than maps of owned strings; the maps are updated
/// once per site and class when the delta is added to a stored row ([`DayStats::add`]).
#[derive(Debug, Clone, Default)]
struct TallyDelta {
    clicks: u64,
    last_clicked_at: Option<Timestamp>,
    /// In order of first appearance, at most [`MAX_REFERRERS_PER_DAY`] and then [`OTHER`], as in a
    /// stored row: the order decides which sites are kept.
    /// Inline: a link's day mostly sees clicks from one site.
    sites: SmallVec<[(Arc<str>, u64); 1]>,
    /// By the class's index in the batch ([`StatsDelta`]): at most one entry per class.
    /// Inline for the first two: most of a batch's (link, day) increments see one or two classes,
    /// and a list on the heap for each cost an allocation per row.
    agents: SmallVec<[AgentClicks; 2]>,
    languages: FirstSeen,
    countries: FirstSeen,
    cities: FirstSeen,
    /// Visitors as the batch meets them, made into a sketch once, when added to a stored row.
    visitors: HllBuilder,
    hours: HourClicks,
}

impl TallyDelta {
    /// `site` is shared with the batch's memo of sites, so it is told apart by pointer.
    fn record(
        &mut self,
        click: &ClickFields<'_>,
        (index, class): (u32, &Arc<AgentClass>),
        site: &Arc<str>,
        other: &Arc<str>,
    ) {
        self.clicks += 1;
        self.last_clicked_at = self.last_clicked_at.max(Some(click.clicked_at));
        if let Some((_, clicks)) = self.sites.iter_mut().find(|(known, _)| Arc::ptr_eq(known, site)) {
            *clicks += 1;
        } else if self.sites.len() < MAX_REFERRERS_PER_DAY {
            self.sites.push((Arc::clone(site), 1));
        } else {
            self.count_other(other);
        }
        match self.agents.iter_mut().find(|known| known.index == index) {
            Some(known) => known.clicks += 1,
            None => self.agents.push(AgentClicks { index, class: Arc::clone(class), clicks: 1 }),
        }
        let [language, country, city] = places(click);
        self.languages.count(language.as_deref());
        self.countries.count(country.as_deref());
        self.cities.count(city.as_deref());
        if let Some(visitor) = click.visitor_id {
            self.visitors.add_hash(visitor_hash(visitor));
        }
        self.hours.count(click.clicked_at.hour_of_day(), 1);
    }

    fn count_other(&mut self, other: &Arc<str>) {
        match self.sites.iter_mut().find(|(known, _)| Arc::ptr_eq(known, other)) {
            Some((_, clicks)) => *clicks += 1,
            None => self.sites.push((Arc::clone(other), 1)),
        }
    }
}

/// A class of user agents, with its browser version written out once per batch rather than once
/// per row it is added to.
#[derive(Debug)]
struct AgentClass {
    agent: Agent,
    browser_version: Option<String>,
}

/// A day's clicks of one agent class ([`StatsDelta`]'s index of it, to find it by).
#[derive(Debug, Clone)]
struct AgentClicks {
    index: u32,
    class: Arc<AgentClass>,
    clicks: u64,
}

/// The per-link, per-day increments of a batch of clicks.
#[derive(Debug, Clone, Default)]
pub struct StatsDelta {
    /// Each link's days in the batch.
    links: HashMap<Code, LinkDays, BatchHasher>,
    /// A batch repeats a few user agents many times: each is classified once, into a class of
    /// `classes` (by index).
    agents: TextMemo<u32>,
    classes: Vec<Arc<AgentClass>>,
    /// Likewise referrers: each is reduced to its site once, one `Arc` per distinct site.
    sites: TextMemo<Arc<str>>,
    distinct_sites: HashSet<Arc<str>, BatchHasher>,
    /// The site the clicks beyond a day's distinct referrers are counted under.
    other: Option<Arc<str>>,
    /// Which agents are bots besides the maintained lists'.
    bots: Arc<BotRules>,
    /// How many (link, day) deltas `links` holds.
    days: usize,
}

impl StatsDelta {
    /// Classifying agents with the operator's bot markers too.
    pub fn with_bot_rules(bots: Arc<BotRules>) -> Self {
        Self { bots, ..Self::default() }
    }

    /// Folds one click (borrowed: it may be read straight from a log record).
    pub fn record(&mut self, click: &ClickFields<'_>) {
        let class = self.class_of(click.user_agent);
        let agent = (class, &self.classes[class as usize]);
        let referrer = click.referrer;
        let site = if let Some(site) = self.sites.get(referrer) {
            site
        } else {
            let site = distinct_site(&mut self.distinct_sites, referrer);
            self.sites.insert(referrer, site)
        };
        let other = self.other.get_or_insert_with(|| Arc::from(OTHER));
        let day = click.clicked_at.day();
        let delta = if let Some(days) = self.links.get_mut(click.code.as_str()) {
            days.on(day, &mut self.days)
        } else {
            self.days += 1;
            self.links.entry(click.code.to_code()).or_insert_with(|| LinkDays::new(day)).on(day, &mut self.days)
        };
        delta.record(click, agent, site, other);
    }

    /// The index in `classes` of the click's user agent class.
    fn class_of(&mut self, user_agent: Option<&str>) -> u32 {
        if let Some(class) = self.agents.get(user_agent) {
            return *class;
        }
        let agent = Agent::classify_with(user_agent, &self.bots);
        let class = self.classes.iter().position(|known| known.agent == agent).unwrap_or_else(|| {
            self.classes.push(Arc::new(AgentClass { agent, browser_version: agent.browser_version() }));
            self.classes.len() - 1
        });
        let class = u32::try_from(class).expect("a few hundred agent classes at most");
        *self.agents.insert(user_agent, class)
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// How many (link, day) rows the increments touch.
    pub fn days(&self) -> usize {
        self.days
    }

    pub fn into_days(self) -> impl Iterator<Item = ((Code, Day), Box<DayDelta>)> {
        self.links.into_iter().flat_map(|(code, days)| {
            days.earlier.into_iter().chain([days.latest]).map(move |(day, delta)| ((code.clone(), day), delta))
        })
    }
}

/// A link's days in a batch. Clicks come nearly in time order, so nearly every click falls on the
/// link's latest day: that day is held beside the link's key, where a click finds it without a
/// list to follow (the cache misses of reading a list's last day per click were a fifth of the
/// fold's own time, `perf annotate`). A day's delta is boxed: it is large, and is moved on its way
/// to a row.
#[derive(Debug, Clone)]
struct LinkDays {
    latest: (Day, Box<DayDelta>),
    earlier: Vec<(Day, Box<DayDelta>)>,
}

impl LinkDays {
    fn new(day: Day) -> Self {
        Self { latest: (day, Box::default()), earlier: Vec::new() }
    }

    /// The day's delta, made if new (and then counted in `days`).
    fn on(&mut self, day: Day, days: &mut usize) -> &mut DayDelta {
        if self.latest.0 == day {
            return &mut self.latest.1;
        }
        if let Some(at) = self.earlier.iter().rposition(|(known, _)| *known == day) {
            return &mut self.earlier[at].1;
        }
        *days += 1;
        let earlier = std::mem::replace(&mut self.latest, (day, Box::default()));
        self.earlier.push(earlier);
        &mut self.latest.1
    }
}

/// What a batch worked out once for a click text (absent or not), looked up by the text: hashed as
/// a `str`, which costs less per click than hashing an `Option` of an inline-or-heap string.
#[derive(Debug, Clone)]
struct TextMemo<V> {
    known: HashMap<ClickText, V, BatchHasher>,
    absent: Option<V>,
}

impl<V> Default for TextMemo<V> {
    fn default() -> Self {
        Self { known: HashMap::default(), absent: None }
    }
}

impl<V> TextMemo<V> {
    fn get(&self, text: Option<&str>) -> Option<&V> {
        match text {
            Some(text) => self.known.get(text),
            None => self.absent.as_ref(),
        }
    }

    fn insert(&mut self, text: Option<&str>, value: V) -> &V {
        match text {
            Some(text) => self.known.entry(ClickText::from(text)).or_insert(value),
            None => self.absent.insert(value),
        }
    }
}

/// The referrer's site, as the one `Arc` the batch holds for it: a day's delta tells sites apart by
/// pointer.
fn distinct_site(distinct: &mut HashSet<Arc<str>, BatchHasher>, referrer: Option<&str>) -> Arc<str> {
    let site = analytics::referrer_site(referrer);
    if let Some(known) = distinct.get(site.as_ref()) {
        return Arc::clone(known);
    }
    let site: Arc<str> = site.into();
    distinct.insert(Arc::clone(&site));
    site
}

/// Whose clicks a stats answer counts. Bots (crawlers, monitors, link previews, HTTP libraries:
/// [`analytics::is_bot`]) are left out unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bots {
    #[default]
    Exclude,
    Include,
    Only,
}

impl Bots {
    fn tallies(self, day: &DayStats) -> impl Iterator<Item = &Tally> {
        let people = (self != Self::Only).then_some(&day.people);
        let bots = (self != Self::Exclude).then_some(&day.bots);
        people.into_iter().chain(bots)
    }
}

/// What a stats query answers, folded from the day rows in its range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// The clicks counted (people's, bots', or both, as asked).
    pub total_clicks: u64,
    /// Bots' clicks in the range, whichever were counted.
    pub bot_clicks: u64,
    pub unique_visitors: u64,
    pub last_clicked_at: Option<Timestamp>,
    pub clicks_by_day: Vec<(Day, u64)>,
    /// Hours (their first instant) with clicks, in order.
    pub clicks_by_hour: Vec<(Timestamp, u64)>,
    pub top_referrers: Vec<(String, u64)>,
    pub browsers: Vec<(String, u64)>,
    /// The [`TOP_PLACES`] browser versions seen most (`Chrome 131`).
    pub browser_versions: Vec<(String, u64)>,
    pub operating_systems: Vec<(String, u64)>,
    pub devices: Vec<(String, u64)>,
    pub languages: Vec<(String, u64)>,
    pub countries: Vec<(String, u64)>,
    pub cities: Vec<(String, u64)>,
}

/// Values listed in a stats answer's language, country and city breakdowns (the rest are left out).
pub const TOP_PLACES: usize = 20;

impl LinkStats {
    /// Summarises day rows (in any order) into the answer for their range, counting whom `bots`
    /// says.
    pub fn from_days<'a>(days: impl IntoIterator<Item = (Day, &'a DayStats)>, bots: Bots) -> Self {
        let mut summary = StatsSummary::new(bots);
        for (day, stats) in days {
            summary.add_day(day, stats);
        }
        summary.finish()
    }
}

/// Day rows summed up one at a time, of one link or of many (an owner's overview): memory stays that
/// of one row and the answer's lists, however many rows are added.
#[derive(Debug, Clone)]
pub struct StatsSummary {
    bots: Bots,
    total: Tally,
    bot_clicks: u64,
    by_day: BTreeMap<Day, u64>,
    by_hour: BTreeMap<i64, u64>,
}

impl StatsSummary {
    pub fn new(bots: Bots) -> Self {
        Self { bots, total: Tally::default(), bot_clicks: 0, by_day: BTreeMap::new(), by_hour: BTreeMap::new() }
    }

    /// Adds a day row; rows of the same day (of other links) add up. Returns the clicks it counted.
    pub fn add_day(&mut self, day: Day, stats: &DayStats) -> u64 {
        let mut clicks = 0;
        let mut hours = HourClicks::default();
        for tally in self.bots.tallies(stats) {
            self.total.merge(tally);
            clicks += tally.clicks;
            hours.add(&tally.hours);
        }
        self.bot_clicks += stats.bots.clicks;
        if clicks > 0 {
            *self.by_day.entry(day).or_default() += clicks;
        }
        let start = day.start().as_millis();
        for (hour, clicks) in (0i64..).zip(hours.0).filter(|(_, clicks)| *clicks > 0) {
            *self.by_hour.entry(start + hour * MILLIS_PER_HOUR).or_default() += clicks;
        }
        clicks
    }

    pub fn finish(self) -> LinkStats {
        let total = self.total;
        let ranked = |counts: &Counts, limit: usize| {
            let mut values: Vec<(String, u64)> =
                counts.iter().map(|(value, count)| (value.to_owned(), count)).collect();
            values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(limit);
            values
        };
        LinkStats {
            total_clicks: total.clicks,
            bot_clicks: self.bot_clicks,
            unique_visitors: total.visitors.estimate(),
            last_clicked_at: total.last_clicked_at,
            clicks_by_day: self.by_day.into_iter().collect(),
            clicks_by_hour: self.by_hour.into_iter().map(|(at, clicks)| (Timestamp::from_millis(at), clicks)).collect(),
            top_referrers: ranked(&total.referrers, TOP_REFERRERS),
            browsers: ranked(&total.browsers, usize::MAX),
            browser_versions: ranked(&total.browser_versions, TOP_PLACES),
            operating_systems: ranked(&total.operating_systems, usize::MAX),
            devices: ranked(&total.devices, usize::MAX),
            languages: ranked(&total.languages, TOP_PLACES),
            countries: ranked(&total.countries, TOP_PLACES),
            cities: ranked(&total.cities, TOP_PLACES),
        }
    }
}

/// Links named in an overview's `top_links`.
pub const TOP_LINKS: usize = 10;

/// An owner's clicks over a range of days, summed over their links' day rows: the front page of a
/// dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub stats: LinkStats,
    /// The links whose rows were read (every link of the owner, deleted ones too).
    pub links: u64,
    /// The links with the most clicks counted, most first.
    pub top_links: Vec<(Code, u64)>,
}

/// Links' day rows summed up one link at a time ([`StatsSummary`]), keeping the [`TOP_LINKS`]
/// links with the most clicks.
#[derive(Debug, Clone)]
pub struct OverviewSummary {
    summary: StatsSummary,
    links: u64,
    top_links: Vec<(Code, u64)>,
}

impl OverviewSummary {
    pub fn new(bots: Bots) -> Self {
        Self { summary: StatsSummary::new(bots), links: 0, top_links: Vec::with_capacity(TOP_LINKS + 1) }
    }

    pub fn add_link<'a>(&mut self, code: &Code, days: impl IntoIterator<Item = (Day, &'a DayStats)>) {
        self.links += 1;
        let clicks: u64 = days.into_iter().map(|(day, stats)| self.summary.add_day(day, stats)).sum();
        if clicks == 0 {
            return;
        }
        self.top_links.push((code.clone(), clicks));
        self.top_links.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.top_links.truncate(TOP_LINKS);
    }

    pub fn finish(self) -> Overview {
        Overview { stats: self.summary.finish(), links: self.links, top_links: self.top_links }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClickDetails;

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

    /// The day rows a batch of `clicks` makes, as the projector folds them.
    fn day_rows(clicks: &[LinkClicked]) -> Vec<(Day, DayStats)> {
        let mut delta = StatsDelta::default();
        for click in clicks {
            delta.record(&click.fields());
        }
        delta
            .into_days()
            .map(|((_, day), delta)| {
                let mut stats = DayStats::default();
                stats.add(*delta);
                (day, stats)
            })
            .collect()
    }

    fn summary(clicks: &[LinkClicked]) -> LinkStats {
        let days = day_rows(clicks);
        LinkStats::from_days(days.iter().map(|(day, stats)| (*day, stats)), Bots::Exclude)
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
        assert_eq!(stats.browser_versions, vec![("Firefox 121".to_owned(), 3)]);
        assert_eq!(stats.operating_systems, vec![("Linux".to_owned(), 3)]);
        assert_eq!(stats.devices, vec![("Desktop".to_owned(), 3)]);
    }

    #[test]
    fn clicks_are_counted_by_hour_too() {
        const HOUR: i64 = 3_600_000;
        let stats = summary(&[
            click(5, None, "v1"),
            click(HOUR - 1, None, "v2"),
            click(13 * HOUR + 7, None, "v1"),
            click(DAY + 23 * HOUR, None, "v3"),
        ]);
        let hours: Vec<(i64, u64)> = stats.clicks_by_hour.iter().map(|(at, n)| (at.as_millis(), *n)).collect();
        assert_eq!(hours, vec![(0, 2), (13 * HOUR, 1), (DAY + 23 * HOUR, 1)]);
        // A row's hours survive being stored, as the hours that saw clicks.
        let rows = day_rows(&[click(5, None, "v1"), click(13 * HOUR, None, "v1")]);
        let stored = postcard::to_allocvec(&rows[0].1).expect("serializes");
        assert_eq!(postcard::from_bytes::<DayStats>(&stored).expect("reads"), rows[0].1);
        assert!(serde_json::from_str::<HourClicks>("[[24, 1]]").is_err(), "there is no 25th hour");
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
        let clicks: Vec<LinkClicked> = (0..MAX_REFERRERS_PER_DAY * 6)
            .map(|i| {
                // Several pages per site: the cap counts sites, not referrers.
                let site = i % (MAX_REFERRERS_PER_DAY + 40);
                let referrer = (i % 7 != 0).then(|| format!("https://site{site}.example/page{}", i / 240 % 3));
                let agent = (i % 5 != 0).then_some(agents[i % 3]);
                let visitor = (i % 4 != 0).then(|| format!("v{}", i % 90));
                // More languages and cities than a day keeps, some clicks without any.
                let letters = |n: usize| {
                    (0..3)
                        .map(|k| char::from(b'a' + u8::try_from(n / 26usize.pow(k) % 26).expect("a letter")))
                        .collect::<String>()
                };
                let details = ClickDetails {
                    language: (i % 3 != 0).then(|| letters(i % (MAX_PLACES_PER_DAY + 30)).into()),
                    country: (i % 4 != 0).then(|| ["DE", "FR", "BR"][i % 3].into()),
                    city: (i % 5 != 0).then(|| format!("City {}", i % (MAX_PLACES_PER_DAY + 50)).into()),
                    ..ClickDetails::default()
                };
                LinkClicked::new(
                    Code::parse("abc").expect("valid"),
                    Timestamp::from_millis(i64::try_from(i).expect("small")),
                    referrer.as_deref(),
                    agent,
                    visitor.as_deref(),
                )
                .with_details(details)
            })
            .collect();
        let (mut each, mut batch) = (DayStats::default(), StatsDelta::default());
        for click in &clicks {
            each.record(click);
            batch.record(&click.fields());
        }
        let mut days = batch.into_days();
        let ((_, _), delta) = days.next().expect("one day");
        assert!(days.next().is_none());
        let mut added = DayStats::default();
        added.add(*delta);
        assert_eq!(added.people.languages.len(), MAX_PLACES_PER_DAY + 1, "bounded, then (other)");
        assert_eq!(added, each);
    }

    #[test]
    fn a_batch_finds_a_links_earlier_days_when_clicks_come_out_of_order() {
        // Mostly in time order, as a log holds them, with late clicks on days already left behind.
        let days = [0, 0, 1, 2, 1, 2, 0, 3, 3, 1];
        let clicks: Vec<LinkClicked> = days
            .iter()
            .enumerate()
            .map(|(i, day)| click(day * DAY + i64::try_from(i).expect("small"), None, "v"))
            .collect();
        let mut batch = StatsDelta::default();
        for click in &clicks {
            batch.record(&click.fields());
        }
        assert_eq!(batch.days(), 4);
        let mut rows: Vec<(Day, u64)> = batch.into_days().map(|((_, day), delta)| (day, delta.clicks())).collect();
        rows.sort_unstable();
        let day = Day::from_days_since_epoch;
        assert_eq!(rows, [(day(0), 3), (day(1), 3), (day(2), 2), (day(3), 2)]);
        let (mut one_by_one, mut the_batchs_rows) = (DayStats::default(), DayStats::default());
        for click in &clicks {
            one_by_one.record(click);
        }
        for (_, stats) in day_rows(&clicks) {
            the_batchs_rows.merge(&stats);
        }
        assert_eq!(the_batchs_rows, one_by_one);
    }

    #[test]
    fn languages_countries_and_cities_are_counted_unknown_when_absent() {
        let at = |i| Timestamp::from_millis(i);
        let code = || Code::parse("abc").expect("valid");
        let berlin = ClickDetails {
            language: Some("de-DE,de;q=0.9".into()),
            country: Some("DE".into()),
            region: Some("Land Berlin".into()),
            city: Some("Berlin".into()),
            ..ClickDetails::default()
        };
        let paris = ClickDetails { language: Some("fr".into()), country: Some("FR".into()), ..ClickDetails::default() };
        let clicks = [
            LinkClicked::new(code(), at(1), None, None, Some("a")).with_details(berlin.clone()),
            LinkClicked::new(code(), at(2), None, None, Some("b")).with_details(berlin),
            LinkClicked::new(code(), at(3), None, None, Some("c")).with_details(paris),
            LinkClicked::new(code(), at(4), None, None, Some("d")),
        ];
        let stats = summary(&clicks);
        let named = |pairs: &[(&str, u64)]| pairs.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect::<Vec<_>>();
        assert_eq!(stats.languages, named(&[("de", 2), ("Unknown", 1), ("fr", 1)]));
        assert_eq!(stats.countries, named(&[("DE", 2), ("FR", 1), ("Unknown", 1)]));
        assert_eq!(stats.cities, named(&[("Berlin, DE", 2), ("Unknown", 2)]));
    }

    /// Issue 16's bar: unique visitors within ±2% at 10^6 distinct visitors, through the fold the
    /// projector runs, with each visitor's id as the redirect path makes it and a fifth of them
    /// coming back. This set's estimate is 1.74% off; the sketch's standard error (4,096
    /// registers) is 1.6%, so the bar holds for this set, not for every set.
    #[test]
    fn a_million_distinct_visitors_are_counted_within_two_percent() {
        const VISITORS: u64 = 1_000_000;
        let mut delta = StatsDelta::default();
        for i in (0..VISITORS).chain((0..VISITORS).step_by(5)) {
            let visitor = format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            delta.record(&click(10, None, &visitor).fields());
        }
        let mut day = DayStats::default();
        delta.into_days().for_each(|(_, increment)| day.add(*increment));
        let stats = LinkStats::from_days([(Day::from_days_since_epoch(0), &day)], Bots::Exclude);
        assert_eq!(stats.total_clicks, VISITORS + VISITORS / 5);
        let error = (stats.unique_visitors as f64 - VISITORS as f64).abs() / VISITORS as f64;
        assert!(
            error < 0.02,
            "estimated {} of {VISITORS} distinct visitors ({:.2}% off)",
            stats.unique_visitors,
            error * 100.0
        );
    }

    #[test]
    fn the_referrer_long_tail_is_folded_into_other() {
        let mut day = DayStats::default();
        for i in 0..MAX_REFERRERS_PER_DAY + 5 {
            day.record(&click(1, Some(&format!("https://site{i}.example/")), "v"));
        }
        assert_eq!(day.people.referrers.len(), MAX_REFERRERS_PER_DAY + 1);
        assert_eq!(day.people.referrers.get(OTHER), Some(5));
    }

    fn clicked_by(at: i64, agent: Option<&str>, visitor: &str) -> LinkClicked {
        LinkClicked::new(Code::parse("abc").expect("valid"), Timestamp::from_millis(at), None, agent, Some(visitor))
    }

    #[test]
    fn bots_are_counted_apart_and_left_out_unless_asked_for() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        let slack = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
        let google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let clicks = [
            clicked_by(10, Some(firefox), "person-1"),
            clicked_by(20, Some(firefox), "person-2"),
            clicked_by(30, None, "person-3"),
            clicked_by(40, Some(slack), "slack"),
            clicked_by(DAY + 1, Some(google), "google"),
        ];
        let days = day_rows(&clicks);
        let summary = |bots| LinkStats::from_days(days.iter().map(|(day, stats)| (*day, stats)), bots);
        let (d0, d1) = (Day::from_days_since_epoch(0), Day::from_days_since_epoch(1));

        let people = summary(Bots::Exclude);
        assert_eq!((people.total_clicks, people.bot_clicks, people.unique_visitors), (3, 2, 3));
        assert_eq!(people.clicks_by_day, vec![(d0, 3)], "a day of bots only is not a day of clicks");
        assert_eq!(people.last_clicked_at, Some(Timestamp::from_millis(30)));
        assert!(people.devices.iter().all(|(device, _)| device != "Bot"));

        let everyone = summary(Bots::Include);
        assert_eq!((everyone.total_clicks, everyone.bot_clicks, everyone.unique_visitors), (5, 2, 5));
        assert_eq!(everyone.clicks_by_day, vec![(d0, 4), (d1, 1)]);

        let bots = summary(Bots::Only);
        assert_eq!((bots.total_clicks, bots.bot_clicks, bots.unique_visitors), (2, 2, 2));
        assert_eq!(bots.devices, vec![("Bot".to_owned(), 2)]);
        assert_eq!(bots.last_clicked_at, Some(Timestamp::from_millis(DAY + 1)));
    }

    #[test]
    fn an_overview_adds_up_its_links_days_and_ranks_its_links() {
        let code = |raw: &str| Code::parse(raw).expect("valid");
        let clicks_of = |raw: &str, at: &[i64], visitors: &[&str]| -> Vec<(Day, DayStats)> {
            let clicks: Vec<LinkClicked> = at
                .iter()
                .zip(visitors)
                .map(|(at, visitor)| {
                    LinkClicked::new(code(raw), Timestamp::from_millis(*at), None, None, Some(visitor))
                })
                .collect();
            day_rows(&clicks)
        };
        let links = [
            ("one", clicks_of("one", &[1, 2, DAY + 1], &["a", "b", "a"])),
            ("two", clicks_of("two", &[3, 4, 5, 6], &["a", "c", "d", "d"])),
            ("quiet", Vec::new()),
        ];
        let mut overview = OverviewSummary::new(Bots::Exclude);
        for (raw, days) in &links {
            overview.add_link(&code(raw), days.iter().map(|(day, stats)| (*day, stats)));
        }
        let overview = overview.finish();
        let (d0, d1) = (Day::from_days_since_epoch(0), Day::from_days_since_epoch(1));
        assert_eq!(overview.links, 3);
        assert_eq!(overview.stats.total_clicks, 7);
        assert_eq!(overview.stats.clicks_by_day, vec![(d0, 6), (d1, 1)], "a day's clicks of every link, once");
        assert_eq!(overview.stats.clicks_by_hour, vec![(Timestamp::from_millis(0), 6), (d1.start(), 1)]);
        assert_eq!(overview.stats.unique_visitors, 4, "a visitor of two links is one visitor");
        assert_eq!(overview.top_links, vec![(code("two"), 4), (code("one"), 3)], "a link without clicks is not ranked");
    }

    #[test]
    fn the_operators_bot_markers_classify_a_batch_too() {
        // A QA farm's real browsers, which the operator does not want counted as people.
        let checker = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0.0.0 Safari/537.36 AcmeQA/7";
        let clicks = [clicked_by(1, Some(checker), "checker"), clicked_by(2, Some(checker), "checker")];
        let tally = |bots: Arc<BotRules>| {
            let mut delta = StatsDelta::with_bot_rules(bots);
            for click in &clicks {
                delta.record(&click.fields());
            }
            let mut day = DayStats::default();
            delta.into_days().for_each(|(_, increment)| day.add(*increment));
            (day.people.clicks, day.bots.clicks)
        };
        assert_eq!(tally(Arc::default()), (2, 0), "no list knows this checker");
        let rules = BotRules::new(&["acmeqa/".to_owned()]).expect("valid markers");
        assert_eq!(tally(Arc::new(rules)), (0, 2), "markers ignore case");
        assert!(BotRules::new(&[" ".to_owned()]).is_err(), "a blank marker would match everyone");
    }

    #[test]
    fn recording_a_bot_click_touches_only_the_bots_tally() {
        let mut day = DayStats::default();
        day.record(&clicked_by(1, Some("curl/8.5.0"), "script"));
        assert_eq!((day.people.clicks, day.bots.clicks, day.clicks()), (0, 1, 1));
        assert_eq!(day.people, Tally::default());
    }
}

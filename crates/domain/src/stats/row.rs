//! A day row's stored bytes, written without serde.
//!
//! The projector writes every (link, day) row a batch touches — on a rebuild about one row per five
//! clicks — and serde's postcard writer walked the row's two tallies field by field and entry by
//! entry, a sixth of the store writer's instructions (BENCHMARKS.md). This writes the same bytes
//! directly: postcard's encoding of [`DayStats`], byte for byte (a property test holds the two
//! together), so rows are still read with serde and by every store alike.

use smallvec::SmallVec;

use super::{
    AgentClicks, DayDelta, DayStats, HourClicks, MAX_PLACES_PER_DAY, MAX_REFERRERS_PER_DAY, OTHER, Tally, TallyDelta,
};
use crate::counts::Counts;
use crate::hll::Hll;

impl DayStats {
    /// Appends the row's bytes, as `postcard::to_extend` would write them.
    pub fn write_row(&self, out: &mut Vec<u8>) {
        self.people.write_row(out);
        self.bots.write_row(out);
    }

    /// The row's bytes, as `postcard::to_stdvec` would write them.
    pub fn to_row(&self) -> Vec<u8> {
        let mut row = Vec::new();
        self.write_row(&mut row);
        row
    }
}

impl DayDelta {
    /// Appends the bytes of the row this delta makes of a day no row held yet: what adding it to
    /// an empty row ([`DayStats::add`]) and writing that ([`DayStats::write_row`]) write, without
    /// making the row. A rebuild writes a new row for nearly every (link, day), and making each
    /// row's lists of names cost more than writing them. Boxed, as a batch holds its deltas: the
    /// delta is read where it lies rather than moved out first (moving each cost a rebuild 4% of
    /// its time, `perf`).
    pub fn write_new_row(mut self: Box<Self>, out: &mut Vec<u8>) {
        self.people.write_new_row(out);
        match &mut self.bots {
            Some(bots) => bots.write_new_row(out),
            // Most days see no bot: their bots' tally is the same few bytes every time.
            None => out.extend_from_slice(&EMPTY_TALLY),
        }
    }

    /// The bytes [`DayDelta::write_new_row`] writes.
    pub fn to_new_row(self: Box<Self>) -> Vec<u8> {
        let mut row = Vec::new();
        self.write_new_row(&mut row);
        row
    }
}

/// An empty tally's bytes.
static EMPTY_TALLY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut empty = Vec::new();
    Tally::default().write_row(&mut empty);
    empty
});

impl TallyDelta {
    /// Takes the visitors, which are made into a sketch in place.
    fn write_new_row(&mut self, out: &mut Vec<u8>) {
        write_clicks(out, self.clicks, self.last_clicked_at);
        // Each breakdown as `Tally::add` would count it into an empty row, in one list of borrowed
        // names reused for all of them.
        let mut names = Names::default();
        for (site, clicks) in &self.sites {
            names.add_within(MAX_REFERRERS_PER_DAY, site, *clicks);
        }
        names.write(out);
        let agents = || self.agents.iter().map(|AgentClicks { class, clicks, .. }| (class.as_ref(), *clicks));
        for (class, clicks) in agents() {
            names.add_within(usize::MAX, class.agent.browser, clicks);
        }
        names.write(out);
        for (class, clicks) in agents() {
            if let Some(version) = &class.browser_version {
                names.add_within(MAX_PLACES_PER_DAY, version, clicks);
            }
        }
        names.write(out);
        for (class, clicks) in agents() {
            names.add_within(usize::MAX, class.agent.operating_system, clicks);
        }
        names.write(out);
        for (class, clicks) in agents() {
            names.add_within(usize::MAX, class.agent.device, clicks);
        }
        names.write(out);
        for places in [&self.languages, &self.countries, &self.cities] {
            for (place, clicks) in &places.counts {
                names.add_within(MAX_PLACES_PER_DAY, place, *clicks);
            }
            names.write(out);
        }
        write_hll(out, &std::mem::take(&mut self.visitors).into_hll());
        write_hours(out, &self.hours);
    }
}

/// Counts by name in name order, as [`Counts`] keeps them, of names borrowed from a delta.
#[derive(Default)]
struct Names<'a>(SmallVec<[(&'a str, u64); 8]>);

impl<'a> Names<'a> {
    /// Counts `name` while fewer than `limit` names are counted, then under [`OTHER`]: the rule
    /// of a row's referrers and places ([`super::counted_as`]).
    fn add_within(&mut self, limit: usize, name: &'a str, count: u64) {
        match self.0.binary_search_by(|(known, _)| (*known).cmp(name)) {
            Ok(at) => self.0[at].1 += count,
            Err(at) if self.0.len() < limit => self.0.insert(at, (name, count)),
            Err(_) => self.add_within(usize::MAX, OTHER, count),
        }
    }

    /// Writes the names as a row's counts, and forgets them.
    fn write(&mut self, out: &mut Vec<u8>) {
        varint(out, self.0.len() as u64);
        for (name, count) in self.0.drain(..) {
            text(out, name.as_bytes());
            varint(out, count);
        }
    }
}

fn write_clicks(out: &mut Vec<u8>, clicks: u64, last_clicked_at: Option<crate::time::Timestamp>) {
    varint(out, clicks);
    match last_clicked_at {
        None => out.push(0),
        Some(at) => {
            out.push(1);
            zig_zag(out, at.as_millis());
        }
    }
}

impl Tally {
    fn write_row(&self, out: &mut Vec<u8>) {
        write_clicks(out, self.clicks, self.last_clicked_at);
        for counts in [
            &self.referrers,
            &self.browsers,
            &self.browser_versions,
            &self.operating_systems,
            &self.devices,
            &self.languages,
            &self.countries,
            &self.cities,
        ] {
            write_counts(out, counts);
        }
        write_hll(out, &self.visitors);
        write_hours(out, &self.hours);
    }
}

fn write_counts(out: &mut Vec<u8>, counts: &Counts) {
    varint(out, counts.len() as u64);
    for (name, count) in counts.iter() {
        text(out, name.as_bytes());
        varint(out, count);
    }
}

/// The sketch's stored form: a newtype variant of `StoredHll` (its index, then its bytes).
fn write_hll(out: &mut Vec<u8>, hll: &Hll) {
    let (variant, registers) = hll.stored_form();
    varint(out, u64::from(variant));
    match registers {
        crate::hll::StoredRegisters::Packed(bytes) => text(out, bytes),
        crate::hll::StoredRegisters::Sparse(set) => {
            varint(out, 3 * set.len() as u64);
            for register in set {
                out.extend_from_slice(&crate::hll::packed(*register));
            }
        }
    }
}

/// The hours with clicks, as (hour, clicks) pairs: a `u8` is one raw byte in postcard.
fn write_hours(out: &mut Vec<u8>, hours: &HourClicks) {
    // One pass: the count of hours with clicks goes first, and is one byte (at most 24).
    let count_at = out.len();
    out.push(0);
    let mut with_clicks = 0u8;
    for (hour, clicks) in (0u8..).zip(hours.0) {
        if clicks > 0 {
            out.push(hour);
            varint(out, clicks);
            with_clicks += 1;
        }
    }
    out[count_at] = with_clicks;
}

/// A length, then the bytes (postcard's `str` and `bytes`).
fn text(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        #[expect(clippy::cast_possible_truncation, reason = "seven bits a byte")]
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    #[expect(clippy::cast_possible_truncation, reason = "less than 0x80")]
    out.push(value as u8);
}

#[expect(clippy::cast_sign_loss, reason = "zig-zag encoding reinterprets the bits")]
fn zig_zag(out: &mut Vec<u8>, value: i64) {
    varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::time::Timestamp;

    fn counts() -> impl Strategy<Value = Counts> {
        prop::collection::vec(("\\PC{0,12}", 0u64..1 << 60), 0..6)
            .prop_map(|entries| entries.iter().map(|(name, count)| (name.as_str(), *count)).collect())
    }

    fn tally() -> impl Strategy<Value = Tally> {
        (
            any::<u64>(),
            prop::option::of(any::<i64>()),
            prop::collection::vec(counts(), 8),
            // Few registers (sparse) or many (dense).
            prop_oneof![prop::collection::vec(any::<u64>(), 0..40), prop::collection::vec(any::<u64>(), 2000..2001)],
            prop::collection::vec(0u64..1_000_000, 24),
        )
            .prop_map(|(clicks, last, mut counts, visitors, hours)| {
                let mut tally = Tally { clicks, last_clicked_at: last.map(Timestamp::from_millis), ..Tally::default() };
                for (field, counts) in [
                    &mut tally.referrers,
                    &mut tally.browsers,
                    &mut tally.browser_versions,
                    &mut tally.operating_systems,
                    &mut tally.devices,
                    &mut tally.languages,
                    &mut tally.countries,
                    &mut tally.cities,
                ]
                .into_iter()
                .zip(counts.drain(..))
                {
                    *field = counts;
                }
                for hash in visitors {
                    tally.visitors.add_hash(hash);
                }
                for (hour, clicks) in hours.into_iter().enumerate() {
                    tally.hours.count(hour, clicks);
                }
                tally
            })
    }

    proptest! {
        #[test]
        fn writes_the_bytes_postcard_writes(people in tally(), bots in tally()) {
            let stats = DayStats { people, bots };
            let mut written = vec![7];
            stats.write_row(&mut written);
            let by_serde = postcard::to_allocvec(&stats).expect("serialises");
            prop_assert_eq!(&written[1..], by_serde.as_slice());
            prop_assert_eq!(postcard::from_bytes::<DayStats>(&written[1..]).expect("reads"), stats);
        }
    }

    const AGENTS: [&str; 5] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "curl/8.5.0",
    ];

    /// Up to `most` clicks on one link and day, of any referrer, agent, visitor and place, their
    /// names drawn from `names` values (many: breakdowns fill to their bound and count the rest
    /// under `OTHER`).
    fn clicks(names: usize, most: usize) -> impl Strategy<Value = Vec<crate::LinkClicked>> {
        let name = move || prop::option::of((0..names).prop_map(|n| crate::ClickText::from(format!("n{n}"))));
        // One of a few agents, none, or a Chrome of any of `names` versions.
        let agent = prop_oneof![
            (0..=AGENTS.len()).prop_map(|at| AGENTS.get(at).map(|agent| (*agent).to_owned())),
            (0..names)
                .prop_map(|version| Some(format!("Mozilla/5.0 (X11; Linux x86_64) Chrome/{version}.0 Safari/537.36"))),
        ];
        let click = (agent, name(), name(), name(), name(), 0u64..86_400_000);
        prop::collection::vec(click, 0..most).prop_map(|clicks| {
            clicks
                .into_iter()
                .map(|(agent, site, language, country, city, at)| {
                    let code = crate::Code::parse("abc").expect("valid");
                    let referrer = site.map(|site| format!("https://{site}.example/page"));
                    let details = crate::ClickDetails { language, country, city, ..crate::ClickDetails::default() };
                    crate::LinkClicked::new(
                        code,
                        Timestamp::from_millis(1_767_225_600_000 + i64::try_from(at).expect("fits")),
                        referrer.as_deref(),
                        agent.as_deref(),
                        Some(&format!("{at:x}")),
                    )
                    .with_details(details)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn a_new_row_is_written_as_the_row_the_delta_makes(clicks in prop_oneof![clicks(5, 60), clicks(1000, 1500)]) {
            let mut delta = crate::stats::StatsDelta::default();
            for click in &clicks {
                delta.record(&click.fields());
            }
            for (_, day) in delta.into_days() {
                let mut made = DayStats::default();
                made.add((*day).clone());
                let (mut written, mut expected) = (vec![7], vec![7]);
                made.write_row(&mut expected);
                day.write_new_row(&mut written);
                prop_assert_eq!(written, expected);
            }
        }
    }

    #[test]
    fn an_empty_row_is_postcards_too() {
        let stats = DayStats::default();
        let mut written = Vec::new();
        stats.write_row(&mut written);
        assert_eq!(written, postcard::to_allocvec(&stats).expect("serialises"));
    }
}

//! Orphan visits (Shlink's name): requests for codes that name no live link — never created,
//! deleted, expired, disabled, out of clicks or blocked. Counted per day with the codes tried most
//! and the sites that sent them; a day's lists are bounded, so a flood of random codes costs a
//! bounded amount of memory and storage.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::Availability;

/// Distinct codes (and referrer sites) a day's stored row keeps: the ones tried most.
pub const KEPT_PER_DAY: usize = 1000;
/// The longest code text kept: the rest of a longer path is cut (at a character boundary).
pub const MAX_TRIED_LEN: usize = 100;

/// Why a code has no link to redirect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrphanReason {
    /// No link ever had this code (or it is no code at all).
    Unknown,
    Deleted,
    Expired,
    Disabled,
    /// Out of clicks (`max_clicks`).
    Exhausted,
    /// Its target is on the operator's blocklist.
    Blocked,
}

impl OrphanReason {
    pub const ALL: [Self; 6] =
        [Self::Unknown, Self::Deleted, Self::Expired, Self::Disabled, Self::Exhausted, Self::Blocked];

    /// Why a link that may not redirect does not (`None` for an active one).
    pub const fn of(availability: Availability) -> Option<Self> {
        match availability {
            Availability::Active => None,
            Availability::Deleted => Some(Self::Deleted),
            Availability::Blocked => Some(Self::Blocked),
            Availability::Disabled => Some(Self::Disabled),
            Availability::Expired => Some(Self::Expired),
            Availability::Exhausted => Some(Self::Exhausted),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Deleted => "deleted",
            Self::Expired => "expired",
            Self::Disabled => "disabled",
            Self::Exhausted => "exhausted",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }
}

/// Counts of the values seen most, within a bound: once it holds twice `kept` values it drops all
/// but the `kept` counted most. A value counted often enough (more than one in `kept` of all) is
/// never dropped; one dropped and seen again starts over, so counts err low, never high.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopCounts {
    counts: HashMap<String, u64>,
}

impl TopCounts {
    pub fn add(&mut self, value: &str, count: u64) {
        if let Some(known) = self.counts.get_mut(value) {
            *known += count;
            return;
        }
        if self.counts.len() >= 2 * KEPT_PER_DAY {
            self.keep_top(KEPT_PER_DAY);
        }
        self.counts.insert(value.to_owned(), count);
    }

    pub fn merge(&mut self, other: &Self) {
        for (value, count) in &other.counts {
            self.add(value, *count);
        }
    }

    /// Drops all but the `kept` values counted most (ties: the first in order of value).
    pub fn keep_top(&mut self, kept: usize) {
        if self.counts.len() > kept {
            let top: HashMap<String, u64> = self.ranked().into_iter().take(kept).collect();
            self.counts = top;
        }
    }

    /// Every value, most counted first.
    pub fn ranked(&self) -> Vec<(String, u64)> {
        let mut values: Vec<(String, u64)> = self.counts.iter().map(|(v, c)| (v.clone(), *c)).collect();
        values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        values
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn get(&self, value: &str) -> Option<u64> {
        self.counts.get(value).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(value, count)| (value.as_str(), *count))
    }
}

/// One day's orphan visits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanDay {
    pub visits: u64,
    pub reasons: BTreeMap<OrphanReason, u64>,
    /// The code text tried (at most [`MAX_TRIED_LEN`] bytes).
    pub codes: TopCounts,
    /// Referrer sites, as click stats name them.
    pub referrers: TopCounts,
}

impl OrphanDay {
    pub fn record(&mut self, tried: &str, reason: OrphanReason, referrer: Option<&str>) {
        self.visits += 1;
        *self.reasons.entry(reason).or_default() += 1;
        self.codes.add(bounded(tried), 1);
        self.referrers.add(&crate::analytics::referrer_site(referrer), 1);
    }

    pub fn merge(&mut self, other: &Self) {
        self.visits += other.visits;
        for (reason, visits) in &other.reasons {
            *self.reasons.entry(*reason).or_default() += visits;
        }
        self.codes.merge(&other.codes);
        self.referrers.merge(&other.referrers);
    }

    /// As stored: at most [`KEPT_PER_DAY`] codes and referrers.
    pub fn keep_top(&mut self) {
        self.codes.keep_top(KEPT_PER_DAY);
        self.referrers.keep_top(KEPT_PER_DAY);
    }
}

fn bounded(tried: &str) -> &str {
    if tried.len() <= MAX_TRIED_LEN {
        return tried;
    }
    let end = (0..=MAX_TRIED_LEN).rev().find(|at| tried.is_char_boundary(*at)).unwrap_or(0);
    &tried[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_random_codes_stays_bounded_and_keeps_the_codes_tried_most() {
        let mut day = OrphanDay::default();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..1_000_000u64 {
            // xorshift: a million codes, almost all distinct.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let tried = format!("{state:x}");
            day.record(&tried, OrphanReason::Unknown, None);
            // Among them, a scanner's favourite (one in a hundred) and a mistyped code (one in 300).
            if i % 100 == 0 {
                day.record("wp-login.php", OrphanReason::Unknown, Some("https://scanner.example/"));
            }
            if i % 300 == 0 {
                day.record("sprnig", OrphanReason::Deleted, Some("https://news.example/a"));
            }
            assert!(day.codes.len() <= 2 * KEPT_PER_DAY, "bounded at every step");
        }
        assert_eq!(day.visits, 1_000_000 + 10_000 + 3_334);
        assert_eq!(day.reasons[&OrphanReason::Deleted], 3_334);
        day.keep_top();
        assert_eq!(day.codes.len(), KEPT_PER_DAY);
        let top = day.codes.ranked();
        assert_eq!(top[0], ("wp-login.php".to_owned(), 10_000), "counted exactly: never dropped");
        assert_eq!(top[1], ("sprnig".to_owned(), 3_334));
        assert!(top[2].1 < 10, "the rest are the flood's: {:?}", top[2]);
        let referrers = day.referrers.ranked();
        assert_eq!(referrers[0], ("(direct)".to_owned(), 1_000_000));
        assert_eq!(referrers[1], ("scanner.example".to_owned(), 10_000));
    }

    #[test]
    fn days_merge_as_one_would_have_counted() {
        let (mut left, mut right, mut whole) = (OrphanDay::default(), OrphanDay::default(), OrphanDay::default());
        for (i, tried) in ["a1", "b2", "a1", "c3", "a1"].into_iter().enumerate() {
            let reason = if i % 2 == 0 { OrphanReason::Unknown } else { OrphanReason::Expired };
            whole.record(tried, reason, None);
            if i < 2 { &mut left } else { &mut right }.record(tried, reason, None);
        }
        left.merge(&right);
        assert_eq!(left, whole);
        assert_eq!(whole.codes.get("a1"), Some(3));
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let mut day = OrphanDay::default();
        let long = format!("{}é{}", "x".repeat(MAX_TRIED_LEN - 1), "y".repeat(50));
        day.record(&long, OrphanReason::Unknown, None);
        assert_eq!(day.codes.ranked()[0].0, "x".repeat(MAX_TRIED_LEN - 1));
        for reason in OrphanReason::ALL {
            assert_eq!(OrphanReason::parse(reason.as_str()), Some(reason));
        }
    }
}

//! A day row's stored bytes, written without serde.
//!
//! The projector writes every (link, day) row a batch touches — on a rebuild about one row per five
//! clicks — and serde's postcard writer walked the row's two tallies field by field and entry by
//! entry, a sixth of the store writer's instructions (BENCHMARKS.md). This writes the same bytes
//! directly: postcard's encoding of [`DayStats`], byte for byte (a property test holds the two
//! together), so rows are still read with serde and by every store alike.

use super::{DayStats, HourClicks, Tally};
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

impl Tally {
    fn write_row(&self, out: &mut Vec<u8>) {
        varint(out, self.clicks);
        match self.last_clicked_at {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                zig_zag(out, at.as_millis());
            }
        }
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
    let with_clicks = hours.0.iter().filter(|clicks| **clicks > 0).count();
    varint(out, with_clicks as u64);
    for (hour, clicks) in (0u8..).zip(hours.0).filter(|(_, clicks)| *clicks > 0) {
        out.push(hour);
        varint(out, clicks);
    }
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

    #[test]
    fn an_empty_row_is_postcards_too() {
        let stats = DayStats::default();
        let mut written = Vec::new();
        stats.write_row(&mut written);
        assert_eq!(written, postcard::to_allocvec(&stats).expect("serialises"));
    }
}

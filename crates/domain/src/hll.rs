//! A HyperLogLog sketch for counting unique visitors.
//!
//! Adding the same visitor twice changes nothing and two sketches merge by taking register maxima, so
//! a replayed event never inflates the count and a stats read over any day range costs the same at 10
//! clicks and 10^8. 4096 registers give a standard error of about 1.6%; small counts are exact in
//! practice thanks to linear counting. A sketch keeps only its set registers until they are many —
//! most links see few visitors a day, and a row is loaded and stored on every projection batch.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

const PRECISION: u32 = 12;
const REGISTERS: usize = 1 << PRECISION;
/// Set registers kept as a sorted list before switching to all 4096 (3 bytes each vs 1 each).
const SPARSE_LIMIT: usize = REGISTERS / 3;

#[derive(Debug, Clone)]
enum Registers {
    /// (index, rank) of the set registers, sorted by index.
    Sparse(Vec<(u16, u8)>),
    Dense(Box<[u8]>),
}

#[derive(Debug, Clone)]
pub struct Hll {
    registers: Registers,
}

impl Default for Hll {
    fn default() -> Self {
        Self { registers: Registers::Sparse(Vec::new()) }
    }
}

/// The register a hash sets, and the rank it sets it to.
fn register(hash: u64) -> (u16, u8) {
    let index = u16::try_from(hash >> (64 - PRECISION)).expect("PRECISION bits");
    // Rank of the first set bit in the remaining bits; a sentinel bit bounds it.
    let rank = ((hash << PRECISION) | (1 << (PRECISION - 1))).leading_zeros() + 1;
    (index, u8::try_from(rank).expect("a rank is at most 65 - PRECISION"))
}

/// Items added one at a time and made into a sketch once: what a projection batch does per click.
/// Pushing to a list and sorting it once costs less than inserting into a sketch's sorted list of
/// registers per item. Each entry is a register's index and rank packed into one number (index
/// above rank), so that sorting compares integers and sorted entries come in (index, rank) order.
/// The first entries are held inline: most of a batch's (link, day) increments see a few visitors,
/// and growing a list on the heap for each cost more than the entries (callgrind).
#[derive(Debug, Clone, Default)]
pub struct HllBuilder(SmallVec<[u32; 6]>);

impl HllBuilder {
    /// Hashes added so far.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub fn add_hash(&mut self, hash: u64) {
        let (index, rank) = register(hash);
        self.0.push(u32::from(index) << 8 | u32::from(rank));
    }

    /// The sketch of the items added, made in place of the list.
    pub fn into_hll(self) -> Hll {
        let mut met = self.0;
        met.sort_unstable();
        // In (index, rank) order the last of an index's entries holds its highest rank.
        met.dedup_by(|later, kept| {
            let same_index = *later >> 8 == *kept >> 8;
            if same_index {
                *kept = *later;
            }
            same_index
        });
        let set = met.into_iter().map(|entry| {
            let [.., index_high, index_low, rank] = entry.to_be_bytes();
            (u16::from_be_bytes([index_high, index_low]), rank)
        });
        let mut hll = Hll { registers: Registers::Sparse(set.collect()) };
        if hll.set_count() > SPARSE_LIMIT {
            hll.densify();
        }
        hll
    }
}

impl Hll {
    /// Adds an item by its 64-bit hash (which must be well mixed).
    pub fn add_hash(&mut self, hash: u64) {
        let (index, rank) = register(hash);
        self.set(index, rank);
    }

    fn set(&mut self, index: u16, rank: u8) {
        match &mut self.registers {
            Registers::Dense(registers) => {
                let slot = &mut registers[usize::from(index)];
                *slot = (*slot).max(rank);
            }
            Registers::Sparse(set) => {
                match set.binary_search_by_key(&index, |(i, _)| *i) {
                    Ok(at) => set[at].1 = set[at].1.max(rank),
                    Err(at) => set.insert(at, (index, rank)),
                }
                if set.len() > SPARSE_LIMIT {
                    self.densify();
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Registers::Sparse(set) = &self.registers {
            let mut dense = vec![0u8; REGISTERS].into_boxed_slice();
            for (index, rank) in set {
                dense[usize::from(*index)] = *rank;
            }
            self.registers = Registers::Dense(dense);
        }
    }

    /// The set registers, by index.
    fn set_registers(&self) -> Box<dyn Iterator<Item = (u16, u8)> + '_> {
        match &self.registers {
            Registers::Sparse(set) => Box::new(set.iter().copied()),
            Registers::Dense(registers) => {
                Box::new((0u16..).zip(registers.iter().copied()).filter(|(_, rank)| *rank != 0))
            }
        }
    }

    /// As [`Hll::merge`], taking `other` as it is when this sketch is empty.
    pub fn absorb(&mut self, other: Self) {
        match &self.registers {
            Registers::Sparse(set) if set.is_empty() => *self = other,
            _ => self.merge(&other),
        }
    }

    pub fn merge(&mut self, other: &Self) {
        match (&mut self.registers, &other.registers) {
            (Registers::Dense(mine), Registers::Dense(theirs)) => {
                for (mine, theirs) in mine.iter_mut().zip(theirs.iter()) {
                    *mine = (*mine).max(*theirs);
                }
            }
            (Registers::Sparse(mine), Registers::Sparse(theirs)) => {
                if !theirs.is_empty() {
                    *mine = merge_sorted(mine, theirs);
                    if mine.len() > SPARSE_LIMIT {
                        self.densify();
                    }
                }
            }
            _ => {
                for (index, rank) in other.set_registers() {
                    self.set(index, rank);
                }
            }
        }
    }

    fn set_count(&self) -> usize {
        match &self.registers {
            Registers::Sparse(set) => set.len(),
            Registers::Dense(_) => REGISTERS,
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let mut set = 0usize;
        let mut harmonic_of_set = 0.0;
        for (_, rank) in self.set_registers() {
            set += 1;
            harmonic_of_set += 2f64.powi(-i32::from(rank));
        }
        let zeros = REGISTERS - set;
        let harmonic = zeros as f64 + harmonic_of_set;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / harmonic;
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive estimate far below 2^64"
        )]
        let estimate = estimate.round() as u64;
        estimate
    }
}

/// The union of two sparse register lists (sorted by index), the higher rank where both set one.
fn merge_sorted(a: &[(u16, u8)], b: &[(u16, u8)]) -> Vec<(u16, u8)> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                let rank = x.1.max(y.1);
                let index = x.0;
                a.next();
                b.next();
                (index, rank)
            }
            (Some(x), Some(y)) if x.0 < y.0 => *a.next().expect("peeked"),
            (Some(_), None) => *a.next().expect("peeked"),
            (_, Some(_)) => *b.next().expect("peeked"),
            (None, None) => return merged,
        };
        merged.push(next);
    }
}

/// Two sketches are equal when the same registers are set to the same ranks, however stored.
impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        self.set_registers().eq(other.set_registers())
    }
}

impl Eq for Hll {}

/// Stored form: the few set registers while they are few, all registers once that is smaller.
#[derive(Deserialize)]
enum StoredHll {
    /// Rows written before the packed forms, one serde element per register; still read.
    Sparse(Vec<(u16, u8)>),
    Dense(Vec<u8>),
    /// Three bytes per set register (index as a little-endian u16, rank), copied whole: visiting
    /// each register was most of the cost of storing a day's stats row.
    PackedSparse(serde_bytes::ByteBuf),
    PackedDense(serde_bytes::ByteBuf),
}

/// The registers as a row stores them ([`Hll::stored_form`]).
pub(crate) enum StoredRegisters<'a> {
    /// Stored as they are (all of them).
    Packed(&'a [u8]),
    /// Stored three bytes each ([`packed`]).
    Sparse(&'a [(u16, u8)]),
}

/// A set register as a row stores it: index (`u16`, little-endian), rank.
pub(crate) fn packed((index, rank): (u16, u8)) -> [u8; 3] {
    let [low, high] = index.to_le_bytes();
    [low, high, rank]
}

impl Hll {
    /// The index of the `StoredHll` variant a row stores the sketch as, and its registers.
    pub(crate) fn stored_form(&self) -> (u32, StoredRegisters<'_>) {
        match &self.registers {
            Registers::Sparse(set) => (PACKED_SPARSE.0, StoredRegisters::Sparse(set)),
            Registers::Dense(registers) => (PACKED_DENSE.0, StoredRegisters::Packed(registers)),
        }
    }
}

/// [`StoredHll`]'s name and the indices of its packed variants, which is how a row names them.
const STORED_HLL: &str = "StoredHll";
const PACKED_SPARSE: (u32, &str) = (2, "PackedSparse");
const PACKED_DENSE: (u32, &str) = (3, "PackedDense");

impl Serialize for Hll {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.registers {
            Registers::Sparse(set) => {
                let bytes: Vec<u8> = set.iter().copied().flat_map(packed).collect();
                let (index, name) = PACKED_SPARSE;
                serializer.serialize_newtype_variant(STORED_HLL, index, name, serde_bytes::Bytes::new(&bytes))
            }
            Registers::Dense(registers) => {
                let (index, name) = PACKED_DENSE;
                serializer.serialize_newtype_variant(STORED_HLL, index, name, serde_bytes::Bytes::new(registers))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let sparse = |set: Vec<(u16, u8)>| {
            let sorted = set.windows(2).all(|pair| pair[0].0 < pair[1].0);
            if !sorted || set.last().is_some_and(|(i, _)| usize::from(*i) >= REGISTERS) {
                return Err(serde::de::Error::custom("sparse registers out of order or range"));
            }
            Ok(Registers::Sparse(set))
        };
        let dense = |registers: Vec<u8>| {
            if registers.len() != REGISTERS {
                return Err(serde::de::Error::custom("wrong register count"));
            }
            Ok(Registers::Dense(registers.into_boxed_slice()))
        };
        let registers = match StoredHll::deserialize(deserializer)? {
            StoredHll::Sparse(set) => sparse(set)?,
            StoredHll::Dense(registers) => dense(registers)?,
            StoredHll::PackedSparse(packed) => {
                let triples = packed.chunks_exact(3);
                if !triples.remainder().is_empty() {
                    return Err(serde::de::Error::custom("packed sparse registers cut short"));
                }
                sparse(triples.map(|t| (u16::from_le_bytes([t[0], t[1]]), t[2])).collect())?
            }
            StoredHll::PackedDense(registers) => dense(registers.into_vec())?,
        };
        Ok(Self { registers })
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher;

    use siphasher::sip::SipHasher13;

    use super::*;

    fn hash(i: u64) -> u64 {
        let mut h = SipHasher13::new();
        h.write_u64(i);
        h.finish()
    }

    fn sketch(items: impl IntoIterator<Item = u64>) -> Hll {
        let mut hll = Hll::default();
        items.into_iter().for_each(|i| hll.add_hash(hash(i)));
        hll
    }

    #[test]
    fn small_counts_are_exact_and_duplicates_do_not_count() {
        assert_eq!(Hll::default().estimate(), 0);
        for n in [1, 2, 3, 10, 50] {
            let mut hll = sketch(0..n);
            hll.merge(&sketch(0..n));
            assert_eq!(hll.estimate(), n, "n = {n}");
        }
    }

    #[test]
    fn large_counts_are_within_a_few_percent() {
        for n in [10_000u64, 200_000] {
            let estimate = sketch(0..n).estimate() as f64;
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(error < 0.05, "n = {n}, estimate = {estimate}");
        }
    }

    #[test]
    fn merge_counts_the_union_across_representations() {
        let mut a = sketch(0..600);
        a.merge(&sketch(400..1000));
        let error = (a.estimate() as f64 - 1000.0).abs() / 1000.0;
        assert!(error < 0.03, "estimate = {}", a.estimate());
        // Sparse into dense, dense into sparse: the same registers either way.
        let (small, large) = (sketch(0..100), sketch(50..5000));
        let mut small_then_large = small.clone();
        small_then_large.merge(&large);
        let mut large_then_small = large.clone();
        large_then_small.merge(&small);
        assert_eq!(small_then_large, large_then_small);
        assert_eq!(small_then_large, sketch(0..5000));
    }

    #[test]
    fn a_builder_makes_the_sketch_adding_one_by_one_makes() {
        for items in [0..0u64, 0..1, 0..300, 0..5000] {
            let mut builder = HllBuilder::default();
            // Each item twice, out of order: repeats and order change nothing.
            items.clone().rev().chain(items.clone()).for_each(|i| builder.add_hash(hash(i)));
            assert_eq!(builder.into_hll(), sketch(items.clone()), "items {items:?}");
        }
    }

    #[test]
    fn stored_form_round_trips_sparse_and_dense() {
        for n in [0u64, 5, 5000] {
            let hll = sketch(0..n);
            let bytes = serde_json::to_vec(&hll).expect("serialises");
            assert_eq!(serde_json::from_slice::<Hll>(&bytes).expect("deserialises"), hll);
            let bytes = postcard::to_stdvec(&hll).expect("serialises");
            assert_eq!(postcard::from_bytes::<Hll>(&bytes).expect("deserialises"), hll);
        }
        assert!(serde_json::from_str::<Hll>(r#"{"Sparse":[[5,1],[3,1]]}"#).is_err(), "unsorted registers are refused");
        assert!(serde_json::from_str::<Hll>(r#"{"PackedSparse":[5,0,1,3,0,1]}"#).is_err(), "unsorted packed registers");
        assert!(serde_json::from_str::<Hll>(r#"{"PackedSparse":[5,0]}"#).is_err(), "a packed register cut short");
        assert!(serde_json::from_str::<Hll>(r#"{"PackedDense":[1,2,3]}"#).is_err(), "too few dense registers");
    }

    /// The forms rows were stored in before the packed ones, by variant index as postcard stores them.
    #[derive(serde::Serialize)]
    enum StoredBeforePacking {
        Sparse(Vec<(u16, u8)>),
        Dense(Vec<u8>),
    }

    #[test]
    fn rows_stored_before_packing_still_read() {
        for n in [5u64, 5000] {
            let hll = sketch(0..n);
            let earlier = match &hll.registers {
                Registers::Sparse(set) => StoredBeforePacking::Sparse(set.clone()),
                Registers::Dense(registers) => StoredBeforePacking::Dense(registers.to_vec()),
            };
            let bytes = postcard::to_stdvec(&earlier).expect("serialises");
            assert_eq!(postcard::from_bytes::<Hll>(&bytes).expect("deserialises"), hll, "n = {n}");
        }
    }
}

//! Clicks counted by name (a referrer site, a browser, a country…), as a day row keeps them.
//!
//! A row holds a handful of names per breakdown, most of them short, and the projector loads,
//! adds to and stores every row a batch touches. A map of owned strings costs a node and a string
//! allocation per name on each load, and as many frees on each drop; a sorted vector of inline
//! strings costs one allocation per breakdown. Stored as a map, byte for byte what a `BTreeMap`
//! stores, so rows written either way read back alike.

use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Counts by name, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts(Vec<(CompactString, u64)>);

impl Counts {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        self.find(name).ok().map(|at| self.0[at].1)
    }

    /// Adds `count` to `name`'s count, making a place for it the first time.
    pub fn add(&mut self, name: &str, count: u64) {
        match self.find(name) {
            Ok(at) => self.0[at].1 += count,
            Err(at) => self.0.insert(at, (CompactString::from(name), count)),
        }
    }

    /// Names and counts, in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u64)> {
        self.0.iter().map(|(name, count)| (name.as_str(), *count))
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(known, _)| known.as_str().cmp(name))
    }
}

impl<'a> FromIterator<(&'a str, u64)> for Counts {
    fn from_iter<I: IntoIterator<Item = (&'a str, u64)>>(iter: I) -> Self {
        let mut counts = Self::default();
        for (name, count) in iter {
            counts.add(name, count);
        }
        counts
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CountsVisitor)
    }
}

struct CountsVisitor;

impl<'de> Visitor<'de> for CountsVisitor {
    type Value = Counts;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a map of names to counts")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counts, A::Error> {
        // A stored map comes in name order: pushed as read. Anything else (a row written by
        // hand, a repeated name) is put in order by adding.
        let mut entries: Vec<(CompactString, u64)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
        let mut ordered = true;
        while let Some((name, count)) = map.next_entry::<CompactString, u64>()? {
            ordered &= entries.last().is_none_or(|(last, _)| *last < name);
            entries.push((name, count));
        }
        if ordered {
            return Ok(Counts(entries));
        }
        Ok(entries.iter().map(|(name, count)| (name.as_str(), *count)).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn stores_the_bytes_a_map_of_strings_stores() {
        let names = ["news.example", "(direct)", "Unknown", "a-site-whose-name-is-longer-than-inline.example", "de"];
        let map: BTreeMap<String, u64> = (1..).zip(names).map(|(count, name)| (name.to_owned(), count)).collect();
        let counts: Counts = (1..).zip(names).map(|(count, name)| (name, count)).collect();
        let stored = postcard::to_allocvec(&map).expect("serializes");
        assert_eq!(postcard::to_allocvec(&counts).expect("serializes"), stored);
        assert_eq!(postcard::from_bytes::<Counts>(&stored).expect("reads"), counts);
        assert_eq!(postcard::from_bytes::<BTreeMap<String, u64>>(&stored).expect("reads"), map);
    }

    #[test]
    fn adds_by_name_in_name_order() {
        let mut counts = Counts::default();
        for name in ["b", "a", "c", "a"] {
            counts.add(name, 1);
        }
        assert_eq!(counts.iter().collect::<Vec<_>>(), vec![("a", 2), ("b", 1), ("c", 1)]);
        assert_eq!(counts.get("a"), Some(2));
        assert!(!counts.contains("d"));
    }

    #[test]
    fn a_map_out_of_order_or_repeating_a_name_reads_as_their_sum_in_order() {
        let json = r#"{"b": 1, "a": 2, "b": 3}"#;
        let counts: Counts = serde_json::from_str(json).expect("reads");
        assert_eq!(counts.iter().collect::<Vec<_>>(), vec![("a", 2), ("b", 4)]);
    }
}

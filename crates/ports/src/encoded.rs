//! Records handed over as the log holds them. A rebuild reads nearly nothing but clicks, and each
//! is folded once into a day's increments: decoding it into an owned event first (its texts copied
//! and, for a user agent, allocated, then all of it moved and freed) cost more than folding it.
//! Clicks of the latest schema stay bytes here, read in place by the fold
//! ([`Fold::add_encoded`](crate::fold::Fold::add_encoded)); every other record is decoded once,
//! for the fold and for the projections of links.

use std::sync::Arc;

use kurz_schemas::Codec;

use crate::{LogRecord, Position};

/// One write's chunk of records, in log order per partition (partitions one after another).
#[derive(Debug)]
pub struct EncodedRecords {
    codec: Arc<Codec>,
    /// The clicks' framed records, one after another.
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Every record that is not a click of the latest schema, and each partition's last record:
    /// what the projections of links read ([`EncodedRecords::projected`]).
    decoded: Vec<LogRecord>,
    /// The partition of the run being pushed, and its last entry.
    run: Option<(u32, usize)>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A click whose record is `bytes[start..end]`.
    Click { position: Position, start: usize, end: usize },
    /// `decoded[index]`.
    Decoded(usize),
}

/// A record of [`EncodedRecords`], in order.
#[derive(Debug, Clone, Copy)]
pub enum Encoded<'a> {
    /// A click of the latest schema, as its framed record: [`Codec::click_fields`] reads it.
    Click(Position, &'a [u8]),
    Decoded(&'a LogRecord),
}

impl EncodedRecords {
    pub fn new(codec: Arc<Codec>) -> Self {
        Self::with_capacity(codec, 0)
    }

    /// Room for `records` records of a typical click's size, so that a chunk's bytes are not copied
    /// into ever larger fresh memory as they arrive.
    pub fn with_capacity(codec: Arc<Codec>, records: usize) -> Self {
        const TYPICAL_CLICK_BYTES: usize = 192;
        Self {
            codec,
            bytes: Vec::with_capacity(records.saturating_mul(TYPICAL_CLICK_BYTES)),
            entries: Vec::with_capacity(records),
            decoded: Vec::new(),
            run: None,
        }
    }

    /// Adds the next record: after the records of its partition pushed before, partitions one after
    /// another.
    pub fn push(&mut self, position: Position, record: &[u8]) {
        if self.run.is_some_and(|(partition, _)| partition != position.partition) {
            self.end_run();
        }
        let entry = if self.codec.reads_click_fields(record) {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(record);
            Entry::Click { position, start, end: self.bytes.len() }
        } else {
            self.decoded.push(LogRecord::decode(&self.codec, position, record));
            Entry::Decoded(self.decoded.len() - 1)
        };
        self.run = Some((position.partition, self.entries.len()));
        self.entries.push(entry);
    }

    /// The records are all in: each partition's last record is decoded for the projections, which
    /// move their checkpoints past it.
    #[must_use]
    pub fn finish(mut self) -> Self {
        self.end_run();
        self
    }

    fn end_run(&mut self) {
        let Some((_, last)) = self.run.take() else { return };
        if let Entry::Click { position, start, end } = self.entries[last] {
            // Not counted if it does not decode: the projector counts the decoded records' failures.
            self.decoded.push(LogRecord::decode(&self.codec, position, &self.bytes[start..end]));
            self.entries[last] = Entry::Decoded(self.decoded.len() - 1);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = Encoded<'_>> {
        self.entries.iter().map(|entry| match *entry {
            Entry::Click { position, start, end } => Encoded::Click(position, &self.bytes[start..end]),
            Entry::Decoded(index) => Encoded::Decoded(&self.decoded[index]),
        })
    }

    pub fn positions(&self) -> impl Iterator<Item = Position> + '_ {
        self.iter().map(|record| match record {
            Encoded::Click(position, _) => position,
            Encoded::Decoded(record) => record.position,
        })
    }

    /// What a projection of links applies ([`Projection::apply`](crate::Projection::apply)): every
    /// link event and each partition's last record, in log order. The clicks left out would only
    /// have been passed over.
    pub fn projected(&self) -> &[LogRecord] {
        &self.decoded
    }

    /// Records that did not decode, of those decoded ([`EncodedRecords::projected`]); a click of the
    /// latest schema that does not read is counted where it is folded.
    pub fn undecodable(&self) -> usize {
        self.decoded.iter().filter(|record| record.event.is_err()).count()
    }

    /// Every record decoded, for a store that applies owned records.
    pub fn into_records(self) -> Vec<LogRecord> {
        let Self { codec, bytes, entries, decoded, .. } = self;
        let mut decoded: Vec<Option<LogRecord>> = decoded.into_iter().map(Some).collect();
        entries
            .into_iter()
            .map(|entry| match entry {
                Entry::Click { position, start, end } => decode_click(&codec, position, &bytes[start..end]),
                Entry::Decoded(index) => decoded[index].take().expect("each decoded record has one entry"),
            })
            .collect()
    }
}

/// A click of the latest schema, decoded where it is folded; one that does not decode is counted
/// there, with the undecodable records the projector counts for the records decoded before.
pub(crate) fn decode_click(codec: &Codec, position: Position, record: &[u8]) -> LogRecord {
    let record = LogRecord::decode(codec, position, record);
    if record.event.is_err() {
        metrics::counter!("projector_records_undecodable_total").increment(1);
    }
    record
}

#[cfg(test)]
mod tests {
    use kurz_domain::Event;
    use kurz_schemas::Catalog;

    use super::*;
    use crate::conformance::fixtures::{clicked, created, deleted};

    #[test]
    fn clicks_stay_bytes_and_projections_get_link_events_and_each_partitions_last_record() {
        let codec = Arc::new(Codec::local(Catalog::shipped()));
        let log: Vec<(Position, Event)> = [
            (0, 0, created("alpha")),
            (0, 1, clicked("alpha", 1, "v")),
            (0, 2, deleted("alpha")),
            (0, 3, clicked("alpha", 2, "v")),
            (0, 4, clicked("alpha", 3, "w")),
            (2, 7, clicked("bravo", 1, "v")),
            (2, 8, created("bravo")),
        ]
        .into_iter()
        .map(|(partition, offset, event)| (Position { partition, offset }, event))
        .collect();
        let mut encoded = EncodedRecords::new(Arc::clone(&codec));
        for (position, event) in &log {
            encoded.push(*position, &codec.encode(event).expect("encodes"));
        }
        let encoded = encoded.finish();

        let clicks_as_bytes = encoded.iter().filter(|record| matches!(record, Encoded::Click(..))).count();
        assert_eq!(clicks_as_bytes, 3, "every click but partition 0's last");
        let projected: Vec<(Position, bool)> =
            encoded.projected().iter().map(|r| (r.position, matches!(r.event, Ok(Event::Clicked(_))))).collect();
        let at = |partition, offset| Position { partition, offset };
        assert_eq!(projected, [(at(0, 0), false), (at(0, 2), false), (at(0, 4), true), (at(2, 8), false)]);
        assert_eq!(encoded.positions().collect::<Vec<_>>(), log.iter().map(|(p, _)| *p).collect::<Vec<_>>());
        assert_eq!(encoded.undecodable(), 0);
        let decoded: Vec<LogRecord> =
            log.into_iter().map(|(position, event)| LogRecord { position, event: Ok(event) }).collect();
        assert_eq!(encoded.into_records(), decoded);
    }
}

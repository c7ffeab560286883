//! The fold every read store applies, whatever it keeps the rows in: which records are new (at or
//! beyond their partition's checkpoint), what they make of the links they touch, the click
//! statistics they add, and where the checkpoints move. Stores load what it asks for and write what
//! it returns, in one atomic write.

use std::collections::{BTreeMap, HashMap};

use kurz_domain::stats::{DayStats, StatsDelta};
use kurz_domain::{Code, Day, Event, Link, evolve};

use crate::LogRecord;

/// Which writer folds records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folding {
    /// The projector: every record at or beyond its partition's checkpoint; checkpoints move with
    /// the effects.
    Projection,
    /// A command's own link events, right after their append: link rows only, checkpoints untouched.
    Commanded,
}

/// A link as stored, with the log offset of the last event folded into it. All events of a link
/// are in one partition, so the offset orders them: an event at or below it is already in the row,
/// whichever writer brings it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub link: Link,
    pub last_offset: u64,
}

/// What a batch does to the read models.
#[derive(Debug, Default)]
pub struct Folded {
    /// Link rows to write (only links that exist after the batch).
    pub links: Vec<(Code, LinkRow)>,
    /// Codes whose link changed, in the order of their first change.
    pub changed: Vec<Code>,
    /// Click statistics to add to each (link, day) row.
    pub days: Vec<((Code, Day), DayStats)>,
    /// For each partition whose checkpoint moves (projection only), the offset of the next record.
    pub checkpoints: BTreeMap<u32, u64>,
}

/// Folds `records`. `checkpoint` gives a partition's stored checkpoint and `row` a link's stored
/// row; each is asked at most once per partition or link.
pub fn fold<E>(
    records: &[LogRecord],
    folding: Folding,
    mut checkpoint: impl FnMut(u32) -> Result<u64, E>,
    mut row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
) -> Result<Folded, E> {
    let mut stored: HashMap<u32, u64> = HashMap::new();
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    let mut rows: HashMap<Code, Option<LinkRow>> = HashMap::new();
    let mut changed: Vec<Code> = Vec::new();
    let mut delta = StatsDelta::default();
    for record in records {
        if folding == Folding::Projection {
            let partition = record.position.partition;
            let from = match (next.get(&partition), stored.get(&partition)) {
                (Some(offset), _) | (None, Some(offset)) => *offset,
                (None, None) => *stored.entry(partition).or_insert(checkpoint(partition)?),
            };
            if record.position.offset < from {
                continue;
            }
            next.insert(partition, record.position.offset + 1);
        }
        match &record.event {
            Err(reason) => tracing::warn!(?record.position, %reason, "skipping an undecodable record"),
            Ok(Event::Clicked(click)) => {
                if folding == Folding::Projection {
                    delta.record(click);
                }
            }
            Ok(event) => {
                let code = event.code();
                let current = match rows.remove(code) {
                    Some(current) => current,
                    None => row(code)?,
                };
                let offset = record.position.offset;
                let folded = match current {
                    Some(current) if offset <= current.last_offset => Some(current),
                    current => {
                        if !changed.contains(code) {
                            changed.push(code.clone());
                        }
                        evolve(current.map(|r| r.link), event).map(|link| LinkRow { link, last_offset: offset })
                    }
                };
                rows.insert(code.clone(), folded);
            }
        }
    }
    let links = changed.iter().filter_map(|code| Some((code.clone(), rows.remove(code)??))).collect();
    Ok(Folded { links, changed, days: delta.into_days().collect(), checkpoints: next })
}

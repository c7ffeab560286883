//! The fold every read store applies, whatever it keeps the rows in: which records are new (at or
//! beyond their partition's checkpoint), what they make of the links they touch, the click
//! statistics they add, and where the checkpoints move. Stores load what it asks for and write what
//! it returns, in one atomic write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kurz_domain::analytics::BotRules;
use kurz_domain::stats::{BatchHasher, DayDelta, StatsDelta};
use kurz_domain::{Code, Day, Event, Link, evolve};

use crate::encoded::{Encoded, EncodedRecords, decode_click};
use crate::{LogRecord, Position};

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
    /// Click statistics to add to each (link, day) row; a link's rows are next to each other.
    pub days: Vec<DayIncrement>,
    /// For each partition whose checkpoint moves (projection only), the offset of the next record.
    pub checkpoints: BTreeMap<u32, u64>,
}

/// Clicks to add to one (link, day) row.
#[derive(Debug)]
pub struct DayIncrement {
    pub code: Code,
    pub day: Day,
    pub stats: Box<DayDelta>,
    /// With day watermarks ([`fold_with_day_watermarks`]): the offset of the last click in
    /// `stats`, the row's new watermark.
    pub last_offset: Option<u64>,
}

/// Folds `records`. `checkpoint` gives a partition's stored checkpoint and `row` a link's stored
/// row; each is asked at most once per partition or link. For stores that write a batch atomically
/// with its checkpoints.
pub fn fold<E>(
    records: &[LogRecord],
    folding: Folding,
    checkpoint: impl FnMut(u32) -> Result<u64, E>,
    row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
) -> Result<Folded, E> {
    fold_classified(records, folding, &Arc::default(), checkpoint, row)
}

/// As [`fold`], telling bots apart with the operator's markers too (`bots`).
pub fn fold_classified<E>(
    records: &[LogRecord],
    folding: Folding,
    bots: &Arc<BotRules>,
    checkpoint: impl FnMut(u32) -> Result<u64, E>,
    row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
) -> Result<Folded, E> {
    let mut fold = Fold::new(folding, bots);
    fold.add(records, checkpoint, row)?;
    Ok(fold.finish())
}

/// As [`fold`], for stores that cannot write a batch atomically: every click-day row keeps the
/// offset of the last click folded into it (`watermark`, asked once per row), and a click at or
/// below it is skipped, so a batch applied partly before a crash is applied again without counting
/// twice.
pub fn fold_with_day_watermarks<E>(
    records: &[LogRecord],
    folding: Folding,
    bots: &Arc<BotRules>,
    checkpoint: impl FnMut(u32) -> Result<u64, E>,
    row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
    watermark: impl FnMut(&Code, Day) -> Result<Option<u64>, E>,
) -> Result<Folded, E> {
    let mut fold = Fold::new(folding, bots);
    fold.add_records(records, checkpoint, row, Some(watermark))?;
    Ok(fold.finish())
}

/// Repeats an optimistic projection write until no other writer overtook it: `attempt` gives
/// `Ok(None)` when something it read (`what`: a checkpoint, a click-day row) changed before its write.
pub async fn until_not_overtaken<T, E, F>(what: &str, mut attempt: impl FnMut() -> F) -> Result<T, E>
where
    F: Future<Output = Result<Option<T>, E>>,
{
    loop {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        tracing::info!(overtaken_by = what, "another writer (projector?) got in first; folding the batch again");
    }
}

/// A record beyond the next one expected (after the checkpoint, or after the record before) skips
/// those in between: the log no longer holds them (retention), or whoever read them lost them on
/// the way. Neither may pass unnoticed.
#[cold]
fn warn_of_a_gap(partition: u32, expected: u64, offset: u64) {
    metrics::counter!("projector_skipped_records_total").increment(offset - expected);
    tracing::warn!(partition, expected, offset, "records skipped: none were read between these offsets");
}

/// A click-day row's stored watermark, and the offset of the last click the batch folds into it.
type Marks = (Option<u64>, Option<u64>);

/// A fold under way: records added a slice at a time ([`Fold::add`]) make the same [`Folded`] as
/// all of them at once, so a store can fold a large write as its records arrive and let each slice
/// go before the next (a rebuild's records need not all be in memory together).
#[derive(Debug)]
pub struct Fold {
    folding: Folding,
    /// Per (link, day) with watermarks: the stored watermark and the last click folded.
    marks: HashMap<(Code, Day), Marks, BatchHasher>,
    /// Per partition: the offset of the next record to apply, and whether the fold moved it.
    positions: BTreeMap<u32, (u64, bool)>,
    /// The entry of `positions` for the partition being folded, kept out of the map: records come
    /// in runs of one partition, and a map lookup per record was a tenth of folding a click.
    run: Option<(u32, (u64, bool))>,
    rows: HashMap<Code, Option<LinkRow>, BatchHasher>,
    changed: Vec<Code>,
    /// Membership of `changed`: a rebuild's batches hold thousands of link events.
    seen_changed: HashSet<Code, BatchHasher>,
    delta: StatsDelta,
}

impl Fold {
    pub fn new(folding: Folding, bots: &Arc<BotRules>) -> Self {
        Self {
            folding,
            marks: HashMap::default(),
            positions: BTreeMap::new(),
            run: None,
            rows: HashMap::default(),
            changed: Vec::new(),
            seen_changed: HashSet::default(),
            delta: StatsDelta::with_bot_rules(Arc::clone(bots)),
        }
    }

    /// Folds the next records (each partition's in offset order, after those added before).
    /// `checkpoint` and `row` are asked at most once per partition or link over the whole fold.
    pub fn add<E>(
        &mut self,
        records: &[LogRecord],
        checkpoint: impl FnMut(u32) -> Result<u64, E>,
        row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
    ) -> Result<(), E> {
        self.add_records(records, checkpoint, row, None::<fn(&Code, Day) -> Result<Option<u64>, E>>)
    }

    /// As [`Fold::add`], for records handed over encoded: clicks of the latest schema are folded
    /// from their bytes, without an owned event each.
    pub fn add_encoded<E>(
        &mut self,
        records: &EncodedRecords,
        mut checkpoint: impl FnMut(u32) -> Result<u64, E>,
        mut row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
    ) -> Result<(), E> {
        let mut no_watermark = None::<fn(&Code, Day) -> Result<Option<u64>, E>>;
        for record in records.iter() {
            match record {
                Encoded::Decoded(record) => self.add_record(record, &mut checkpoint, &mut row, &mut no_watermark)?,
                Encoded::Click(position, bytes) => {
                    if let Some(click) = records.codec().click_fields(bytes) {
                        if self.admits(position, &mut checkpoint)? {
                            self.delta.record(&click);
                        }
                    } else {
                        // Damaged: decoded for the reason, and passed over as any undecodable record.
                        let record = decode_click(records.codec(), position, bytes);
                        self.add_record(&record, &mut checkpoint, &mut row, &mut no_watermark)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn add_records<E>(
        &mut self,
        records: &[LogRecord],
        mut checkpoint: impl FnMut(u32) -> Result<u64, E>,
        mut row: impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
        mut watermark: Option<impl FnMut(&Code, Day) -> Result<Option<u64>, E>>,
    ) -> Result<(), E> {
        for record in records {
            self.add_record(record, &mut checkpoint, &mut row, &mut watermark)?;
        }
        Ok(())
    }

    /// Whether the record at `position` is folded (projection: not below its partition's
    /// checkpoint, nor below a record folded before); moves the partition's next offset past it.
    fn admits<E>(&mut self, position: Position, checkpoint: &mut impl FnMut(u32) -> Result<u64, E>) -> Result<bool, E> {
        if self.folding != Folding::Projection {
            return Ok(true);
        }
        let partition = position.partition;
        let next = match &mut self.run {
            Some((current, next)) if *current == partition => next,
            run => {
                if let Some((parked, next)) = run.take() {
                    self.positions.insert(parked, next);
                }
                let next = match self.positions.get(&partition) {
                    Some(next) => *next,
                    None => (checkpoint(partition)?, false),
                };
                &mut run.insert((partition, next)).1
            }
        };
        if position.offset < next.0 {
            return Ok(false);
        }
        if position.offset > next.0 {
            warn_of_a_gap(partition, next.0, position.offset);
        }
        *next = (position.offset + 1, true);
        Ok(true)
    }

    fn add_record<E>(
        &mut self,
        record: &LogRecord,
        checkpoint: &mut impl FnMut(u32) -> Result<u64, E>,
        row: &mut impl FnMut(&Code) -> Result<Option<LinkRow>, E>,
        watermark: &mut Option<impl FnMut(&Code, Day) -> Result<Option<u64>, E>>,
    ) -> Result<(), E> {
        if !self.admits(record.position, checkpoint)? {
            return Ok(());
        }
        let Self { folding, marks, rows, changed, seen_changed, delta, .. } = self;
        match &record.event {
            Err(reason) => tracing::warn!(?record.position, %reason, "skipping an undecodable record"),
            Ok(Event::Clicked(click)) => {
                if *folding == Folding::Projection
                    && let Some(watermark) = watermark.as_mut()
                {
                    let key = (click.code.clone(), click.clicked_at.day());
                    if !marks.contains_key(&key) {
                        let stored = watermark(&key.0, key.1)?;
                        marks.insert(key.clone(), (stored, None));
                    }
                    let mark = marks.get_mut(&key).expect("inserted above");
                    let offset = record.position.offset;
                    if mark.0.is_some_and(|stored| offset <= stored) {
                        return Ok(());
                    }
                    mark.1 = Some(offset);
                }
                delta.record(&click.fields());
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
                        if seen_changed.insert(code.clone()) {
                            changed.push(code.clone());
                        }
                        evolve(current.map(|r| r.link), event).map(|link| LinkRow { link, last_offset: offset })
                    }
                };
                rows.insert(code.clone(), folded);
            }
        }
        Ok(())
    }

    /// How many rows the fold holds to write: link rows and (link, day) rows of clicks. What a
    /// fold holds in memory grows with them, not with the records added.
    pub fn rows(&self) -> usize {
        self.rows.len() + self.delta.days()
    }

    /// What the records added make of the read models.
    pub fn finish(self) -> Folded {
        let Self { marks, mut positions, run, mut rows, changed, delta, .. } = self;
        if let Some((partition, next)) = run {
            positions.insert(partition, next);
        }
        let links = changed.iter().filter_map(|code| Some((code.clone(), rows.remove(code)??))).collect();
        let mut days = Vec::with_capacity(delta.days());
        days.extend(delta.into_days().map(|((code, day), stats)| {
            let last_offset =
                if marks.is_empty() { None } else { marks.get(&(code.clone(), day)).and_then(|(_, last)| *last) };
            DayIncrement { code, day, stats, last_offset }
        }));
        let checkpoints =
            positions.into_iter().filter(|(_, (_, moved))| *moved).map(|(p, (next, _))| (p, next)).collect();
        Folded { links, changed, days, checkpoints }
    }
}

#[cfg(test)]
mod tests {
    use kurz_domain::{LinkClicked, Timestamp};

    use super::*;
    use crate::Position;

    const DAY_MS: i64 = 86_400_000;

    fn at(day: i64) -> Timestamp {
        Timestamp::from_millis(1_767_225_600_000 + day * DAY_MS)
    }

    fn click(offset: u64, day: i64) -> LogRecord {
        let code = Code::parse("abc").expect("valid");
        let at = at(day);
        let event = Event::Clicked(LinkClicked::new(code, at, None, None, Some("visitor")));
        LogRecord { position: Position { partition: 0, offset }, event: Ok(event) }
    }

    #[test]
    fn day_watermarks_skip_clicks_a_row_already_holds() {
        // Offsets 0–5 on the first day, 6–9 on the second; the first day's row already holds 0–3,
        // as after a batch that was applied half-way before a crash.
        let records: Vec<LogRecord> = (0..10).map(|offset| click(offset, i64::from(offset >= 6))).collect();
        let first_day = at(0).day();
        let folded = fold_with_day_watermarks(
            &records,
            Folding::Projection,
            &Arc::default(),
            |_| Ok::<_, ()>(0),
            |_| Ok(None),
            |_, day| Ok((day == first_day).then_some(3)),
        )
        .expect("folds");
        let mut days: Vec<(Day, u64, Option<u64>)> =
            folded.days.iter().map(|d| (d.day, d.stats.clicks(), d.last_offset)).collect();
        days.sort_unstable();
        assert_eq!(
            days.iter().map(|(_, clicks, last)| (*clicks, *last)).collect::<Vec<_>>(),
            [(2, Some(5)), (4, Some(9))]
        );
        assert_eq!(folded.checkpoints, BTreeMap::from([(0, 10)]));
    }

    #[test]
    fn a_links_day_rows_come_together() {
        let records: Vec<LogRecord> = (0..60u32)
            .map(|offset| {
                let code = Code::parse(&format!("code{}", offset % 3)).expect("valid");
                let event = Event::Clicked(LinkClicked::new(code, at(i64::from(offset % 5)), None, None, None));
                LogRecord { position: Position { partition: 0, offset: u64::from(offset) }, event: Ok(event) }
            })
            .collect();
        let folded = fold(&records, Folding::Projection, |_| Ok::<_, ()>(0), |_| Ok(None)).expect("folds");
        assert_eq!(folded.days.len(), 15);
        assert_eq!(folded.days.chunk_by(|a, b| a.code == b.code).count(), 3);
    }

    #[test]
    fn records_below_the_checkpoint_change_nothing() {
        let records: Vec<LogRecord> = (0..4).map(|offset| click(offset, 0)).collect();
        let folded = fold(&records, Folding::Projection, |_| Ok::<_, ()>(4), |_| Ok(None)).expect("folds");
        assert!(folded.days.is_empty() && folded.checkpoints.is_empty() && folded.changed.is_empty());
    }

    #[test]
    fn a_fold_in_slices_makes_what_the_fold_at_once_makes() {
        use kurz_domain::{LinkCreated, LinkDeleted, LinkSpec, Owner, TargetUrl};
        let code = |i: u32| Code::parse(&format!("code{i}")).expect("valid");
        let records: Vec<LogRecord> = (0..40u32)
            .map(|n| {
                let (partition, offset) = (n % 2, u64::from(n / 2));
                let event = match n % 10 {
                    0 => Event::Created(LinkCreated {
                        code: code(n % 4),
                        spec: LinkSpec::new(TargetUrl::parse("https://example.com/").expect("valid")),
                        custom_alias: false,
                        created_at: at(0),
                        owner: Owner::admin(),
                        key_id: None,
                    }),
                    7 => Event::Deleted(LinkDeleted { code: code(n % 4), deleted_at: at(1), key_id: None }),
                    _ => Event::Clicked(LinkClicked::new(code(n % 4), at(i64::from(n % 3)), None, None, Some("v"))),
                };
                LogRecord { position: Position { partition, offset }, event: Ok(event) }
            })
            .collect();
        let checkpoint = |partition: u32| Ok::<_, ()>(if partition == 0 { 3 } else { 0 });
        let summary = |folded: Folded| {
            let mut days: Vec<(Code, Day, u64)> =
                folded.days.iter().map(|d| (d.code.clone(), d.day, d.stats.clicks())).collect();
            days.sort_unstable();
            (folded.links, folded.changed, days, folded.checkpoints)
        };
        let at_once = summary(fold(&records, Folding::Projection, checkpoint, |_| Ok(None)).expect("folds"));
        let (mut asked, mut loaded) = (Vec::new(), Vec::new());
        let mut sliced = Fold::new(Folding::Projection, &Arc::default());
        for slice in records.chunks(7) {
            let checkpoint = |partition| {
                asked.push(partition);
                checkpoint(partition)
            };
            let row = |code: &Code| {
                loaded.push(code.clone());
                Ok(None)
            };
            sliced.add(slice, checkpoint, row).expect("folds");
        }
        assert_eq!(summary(sliced.finish()), at_once);
        asked.sort_unstable();
        assert_eq!(asked, [0, 1], "each partition's checkpoint asked once");
        loaded.sort_unstable();
        loaded.dedup();
        assert_eq!(loaded.len(), 4, "each link's row loaded once");
    }
}

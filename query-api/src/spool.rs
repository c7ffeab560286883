//! A bounded spool on local disk for clicks the event log could not take (broker away). Each batch
//! is one file, written, synced and renamed into place before the recorder lets go of it, so a
//! spooled click survives a crash of the process too; the recorder sends spooled batches, oldest
//! first, once the log takes appends again, and deletes each file after the log acknowledged it.
//!
//! Files hold the clicks as the log would: framed Avro (the shipped schemas' local ids), each
//! behind its length. A file that does not decode (damaged, or written by something else) is moved
//! to `quarantine/` for a person to look at, counted (`click_spool_quarantined_total`) and logged,
//! and the drain goes on with the next: one bad file must not stop every later click.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kurz_domain::Event;
use kurz_schemas::{Catalog, Codec};

const SUFFIX: &str = "clicks";
const QUARANTINE: &str = "quarantine";

#[derive(Debug)]
struct Spooled {
    sequence: u64,
    bytes: u64,
    clicks: u64,
}

#[derive(Debug, Default)]
struct State {
    next_sequence: u64,
    files: VecDeque<Spooled>,
    bytes: u64,
    clicks: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("spooled batch {0} does not decode: {1}")]
    Corrupt(u64, String),
}

pub struct ClickSpool {
    dir: PathBuf,
    max_bytes: u64,
    codec: Codec,
    state: Mutex<State>,
}

impl std::fmt::Debug for ClickSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickSpool").field("dir", &self.dir).field("max_bytes", &self.max_bytes).finish_non_exhaustive()
    }
}

/// A batch taken from the spool: remove it once the log has it.
#[derive(Debug)]
pub struct SpooledBatch {
    pub sequence: u64,
    pub events: Vec<Event>,
}

impl ClickSpool {
    /// Opens the spool directory, picking up batches a previous run left behind.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| n.ends_with(".partial")) {
                // A write the crash interrupted: never renamed into place, so never taken.
                std::fs::remove_file(entry.path())?;
                continue;
            }
            let Some(sequence) = name.to_str().and_then(|n| n.strip_suffix(&format!(".{SUFFIX}"))) else { continue };
            let Ok(sequence) = sequence.parse::<u64>() else { continue };
            found.push((sequence, entry.metadata()?.len()));
        }
        found.sort_unstable();
        let spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            codec: Codec::local(Catalog::shipped()),
            state: Mutex::default(),
        };
        {
            let mut state = spool.lock();
            for (sequence, bytes) in found {
                state.next_sequence = sequence + 1;
                let clicks = match spool.read(sequence) {
                    Ok(events) => events.len() as u64,
                    Err(SpoolError::Corrupt(sequence, why)) => {
                        spool.move_aside(sequence, &why)?;
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                state.files.push_back(Spooled { sequence, bytes, clicks });
                state.bytes += bytes;
                state.clicks += clicks;
            }
            if state.clicks > 0 {
                tracing::info!(clicks = state.clicks, "clicks spooled by an earlier run will be sent");
            }
            publish_depth(&state);
        }
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn path(&self, sequence: u64) -> PathBuf {
        self.dir.join(format!("{sequence:020}.{SUFFIX}"))
    }

    pub fn is_empty(&self) -> bool {
        self.lock().files.is_empty()
    }

    /// Spools a batch durably. `Ok(false)` when the spool is full (the batch is not taken).
    pub fn push(&self, events: &[Event]) -> Result<bool, SpoolError> {
        let mut body = Vec::new();
        for event in events {
            let record = self.codec.encode(event).map_err(|e| SpoolError::Corrupt(0, e.to_string()))?;
            body.extend_from_slice(&u32::try_from(record.len()).unwrap_or(u32::MAX).to_le_bytes());
            body.extend_from_slice(&record);
        }
        let bytes = body.len() as u64;
        let sequence = {
            let mut state = self.lock();
            if state.bytes + bytes > self.max_bytes {
                return Ok(false);
            }
            state.next_sequence += 1;
            state.next_sequence - 1
        };
        let path = self.path(sequence);
        let partial = path.with_extension("partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let mut state = self.lock();
        let clicks = events.len() as u64;
        // Sequences are taken in order but written concurrently: keep the queue sorted.
        let at = state.files.partition_point(|spooled| spooled.sequence < sequence);
        state.files.insert(at, Spooled { sequence, bytes, clicks });
        state.bytes += bytes;
        state.clicks += clicks;
        publish_depth(&state);
        Ok(true)
    }

    /// The oldest spooled batch that decodes, read back from disk; those before it that do not are
    /// moved aside. The drain takes several at once ([`Self::oldest_batches`]).
    #[cfg(test)]
    pub fn oldest(&self) -> Result<Option<SpooledBatch>, SpoolError> {
        Ok(self.oldest_batches(1)?.pop())
    }

    /// The oldest spooled batches that decode, in order, as many as hold `max_clicks` together (at
    /// least one); those among them that do not decode are moved aside.
    pub fn oldest_batches(&self, max_clicks: usize) -> Result<Vec<SpooledBatch>, SpoolError> {
        let mut batches: Vec<SpooledBatch> = Vec::new();
        let mut clicks = 0;
        loop {
            // By sequence, not by position: a batch written concurrently under an earlier sequence
            // may land in the queue meanwhile, ahead of those taken (it goes with the next drain).
            let after = batches.last().map(|batch| batch.sequence);
            let next = self.lock().files.iter().map(|spooled| spooled.sequence).find(|s| after.is_none_or(|a| *s > a));
            let Some(sequence) = next else { return Ok(batches) };
            match self.read(sequence) {
                Ok(events) => {
                    if !batches.is_empty() && clicks + events.len() > max_clicks {
                        return Ok(batches);
                    }
                    clicks += events.len();
                    batches.push(SpooledBatch { sequence, events });
                }
                Err(SpoolError::Corrupt(sequence, why)) => {
                    self.move_aside(sequence, &why)?;
                    self.forget(sequence);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Moves a batch that does not decode to `quarantine/`, where it is kept for a person.
    fn move_aside(&self, sequence: u64, why: &str) -> Result<(), SpoolError> {
        let quarantine = self.dir.join(QUARANTINE);
        std::fs::create_dir_all(&quarantine)?;
        let path = self.path(sequence);
        let aside = quarantine.join(path.file_name().expect("a spool file has a name"));
        std::fs::rename(&path, &aside)?;
        metrics::counter!("click_spool_quarantined_total").increment(1);
        tracing::error!(file = %aside.display(), %why, "a spooled batch does not decode; moved aside, the drain goes on");
        Ok(())
    }

    fn forget(&self, sequence: u64) {
        let mut state = self.lock();
        if let Some(at) = state.files.iter().position(|spooled| spooled.sequence == sequence) {
            let spooled = state.files.remove(at).expect("position is in range");
            state.bytes -= spooled.bytes;
            state.clicks -= spooled.clicks;
        }
        publish_depth(&state);
    }

    fn read(&self, sequence: u64) -> Result<Vec<Event>, SpoolError> {
        let mut body = Vec::new();
        std::fs::File::open(self.path(sequence))?.read_to_end(&mut body)?;
        decode_batch(&self.codec, &body).map_err(|why| SpoolError::Corrupt(sequence, why))
    }

    /// Forgets a batch the log acknowledged.
    pub fn remove(&self, sequence: u64) -> Result<(), SpoolError> {
        std::fs::remove_file(self.path(sequence))?;
        self.forget(sequence);
        Ok(())
    }
}

/// The clicks of one spool file's bytes; what is wrong with them otherwise.
pub fn decode_batch(codec: &Codec, mut rest: &[u8]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    while !rest.is_empty() {
        let (length, tail) = rest.split_first_chunk::<4>().ok_or("truncated length")?;
        let length = usize::try_from(u32::from_le_bytes(*length)).map_err(|e| e.to_string())?;
        let record = tail.get(..length).ok_or("truncated record")?;
        events.push(codec.decode(record).map_err(|e| e.to_string())?);
        rest = &tail[length..];
    }
    Ok(events)
}

fn publish_depth(state: &State) {
    metrics::gauge!("click_spool_clicks").set(state.clicks as f64);
    metrics::gauge!("click_spool_bytes").set(state.bytes as f64);
}

#[cfg(test)]
mod tests {
    use kurz_domain::{Code, LinkClicked, Timestamp};

    use super::*;

    fn clicks(count: i64) -> Vec<Event> {
        (0..count)
            .map(|i| {
                let code = Code::parse("abc").expect("valid");
                Event::Clicked(LinkClicked::new(
                    code,
                    Timestamp::from_millis(i),
                    Some("https://r.example/"),
                    None,
                    None,
                ))
            })
            .collect()
    }

    #[test]
    fn batches_come_back_oldest_first_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = ClickSpool::open(dir.path(), 1 << 20).expect("opens");
        assert!(spool.push(&clicks(3)).expect("push"));
        assert!(spool.push(&clicks(5)).expect("push"));
        drop(spool);

        let spool = ClickSpool::open(dir.path(), 1 << 20).expect("reopens");
        let first = spool.oldest().expect("read").expect("a batch");
        assert_eq!(first.events, clicks(3));
        spool.remove(first.sequence).expect("remove");
        let second = spool.oldest().expect("read").expect("a batch");
        assert_eq!(second.events, clicks(5));
        spool.remove(second.sequence).expect("remove");
        assert!(spool.is_empty());
        assert!(spool.oldest().expect("read").is_none());
    }

    #[test]
    fn a_damaged_or_foreign_batch_is_moved_aside_and_the_rest_drains() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = ClickSpool::open(dir.path(), 1 << 20).expect("opens");
        for count in [2, 3, 4] {
            assert!(spool.push(&clicks(count)).expect("push"));
        }
        let [first, second, _] = [0, 1, 2].map(|i| spool.path(i));
        // Damaged while running: a torn tail.
        let bytes = std::fs::read(&second).expect("read");
        std::fs::write(&second, &bytes[..bytes.len() - 3]).expect("truncate");
        assert_eq!(spool.oldest().expect("read").expect("a batch").events, clicks(2));
        spool.remove(0).expect("remove");
        assert_eq!(spool.oldest().expect("read").expect("the next good batch").events, clicks(4));
        assert!(dir.path().join(QUARANTINE).join(second.file_name().expect("name")).exists());
        drop(spool);

        // Found at start: something else's bytes under a spool name, and a write a crash cut short.
        std::fs::write(&first, b"not avro at all").expect("write");
        std::fs::write(first.with_extension("partial"), b"half").expect("write");
        let spool = ClickSpool::open(dir.path(), 1 << 20).expect("reopens");
        let taken = spool.oldest().expect("read").expect("a batch");
        assert_eq!((taken.sequence, taken.events), (2, clicks(4)));
        assert!(dir.path().join(QUARANTINE).join(first.file_name().expect("name")).exists());
        assert!(!first.with_extension("partial").exists());
        assert!(spool.push(&clicks(1)).expect("push"));
        assert_eq!(spool.lock().files.back().map(|f| f.sequence), Some(3), "sequences go on after the moved file");
    }

    #[test]
    fn a_drain_takes_the_oldest_batches_that_fit_together() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = ClickSpool::open(dir.path(), 1 << 20).expect("opens");
        for count in [3, 3, 3, 3] {
            assert!(spool.push(&clicks(count)).expect("push"));
        }
        let sequences = |batches: Vec<SpooledBatch>| batches.iter().map(|b| b.sequence).collect::<Vec<_>>();
        assert_eq!(sequences(spool.oldest_batches(7).expect("read")), [0, 1], "as many as fit in 7 clicks");
        assert_eq!(sequences(spool.oldest_batches(1).expect("read")), [0], "at least one, however large");
        assert_eq!(sequences(spool.oldest_batches(100).expect("read")), [0, 1, 2, 3]);
        // A damaged batch among them is moved aside and the rest still come, in order.
        let path = spool.path(1);
        std::fs::write(&path, b"torn").expect("damage");
        assert_eq!(sequences(spool.oldest_batches(100).expect("read")), [0, 2, 3]);
        assert!(dir.path().join(QUARANTINE).join(path.file_name().expect("name")).exists());
    }

    #[test]
    fn a_full_spool_refuses_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = ClickSpool::open(dir.path(), 200).expect("opens");
        assert!(spool.push(&clicks(1)).expect("push"));
        assert!(!spool.push(&clicks(20)).expect("push"), "beyond the bound");
        let taken = spool.oldest().expect("read").expect("the first batch");
        assert_eq!(taken.events.len(), 1);
    }
}

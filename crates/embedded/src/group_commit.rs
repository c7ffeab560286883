//! One writer thread per database that commits queued writes in groups.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kurz_ports::InfraError;
use kurz_ports::throttle::{LOG_INTERVAL, Throttle};
use redb::{Database, Durability, WriteTransaction};
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tokio::sync::oneshot;

use crate::reopen::Reopenable;

/// What to tell a caller once its group's transaction has committed (or failed).
pub type Reply = Box<dyn FnOnce(Result<(), &Arc<redb::Error>>) + Send>;

/// Where an op's result goes.
pub type Answer<T> = oneshot::Sender<Result<T, InfraError>>;

/// A reply that answers `value` once the group committed, or the group's error.
pub fn reply_with<T: Send + 'static>(context: &'static str, answer: Answer<T>, value: T) -> Reply {
    Box::new(move |result| {
        let _ = answer.send(result.map(|()| value).map_err(|e| InfraError::new(context, e.to_string())));
    })
}

/// The writes one database accepts.
pub trait Writes: Send + 'static {
    type Op: Send + 'static;
    /// The tables a group's ops write, opened once per group: opening a redb table costs thousands of
    /// instructions, as much as a small insert, and closing it stages its new root.
    type Tables<'txn>;

    /// Whether the caller must not hear back before the op is on disk.
    fn needs_fsync(op: &Self::Op) -> bool;

    fn open_tables(txn: &WriteTransaction) -> Result<Self::Tables<'_>, redb::Error>;

    /// Applies one op inside the group's transaction.
    fn apply(&mut self, tables: &mut Self::Tables<'_>, op: Self::Op) -> Result<Reply, (redb::Error, Reply)>;

    /// Answers an op that was not applied because its group failed.
    fn reject(op: Self::Op) -> Reply;

    /// Writes what the group's ops left pending, just before its transaction commits.
    fn before_commit(&mut self, _tables: &mut Self::Tables<'_>) -> Result<(), redb::Error> {
        Ok(())
    }

    /// The group's transaction committed.
    fn committed(&mut self) {}

    /// The group's transaction was rolled back: forget any state it had advanced.
    fn rolled_back(&mut self, db: &Database);
}

/// Most ops a group takes, so one huge queue cannot make a transaction unbounded.
const MAX_GROUP: usize = 4096;
/// Ops waiting for the writer. Every caller awaits its op, so only a flood of concurrent requests
/// fills it; the ops past it are refused at once (a 503 the client may retry) rather than queued
/// without bound while the disk is slow or full.
const QUEUE_CAPACITY: usize = 4 * MAX_GROUP;
/// Non-durable commits are made durable at least this often: it bounds the replay after a crash
/// (the read store is derived) and lets redb reuse freed pages. Each such fsync stalls the writer for
/// milliseconds, so not every second.
const FSYNC_AT_LEAST_EVERY: Duration = Duration::from_secs(10);

/// How the writer thread competes for the CPU with the threads that answer requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Callers wait on every write (appends, claims, quotas).
    Normal,
    /// Work that may lag a little (projections): requests preempt it, so a large batch cannot
    /// stall redirects on a small machine.
    Background,
}

pub struct GroupCommitter<Op> {
    sender: Option<SyncSender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl<Op: Send + 'static> GroupCommitter<Op> {
    pub(crate) fn start<W: Writes<Op = Op>>(name: &str, db: Arc<Reopenable>, writes: W, priority: Priority) -> Self {
        let (sender, receiver) = sync_channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if priority == Priority::Background {
                    lower_priority();
                }
                run(&db, writes, &receiver);
            })
            .expect("the OS can start a thread");
        Self { sender: Some(sender), thread: Some(thread) }
    }

    /// Queues the op built around `answer` and waits until its group has committed.
    pub async fn ask<T>(&self, context: &'static str, op: impl FnOnce(Answer<T>) -> Op) -> Result<T, InfraError> {
        let (answer, answered) = oneshot::channel();
        let sender = self.sender.as_ref().ok_or_else(|| InfraError::new(context, "the writer thread has stopped"))?;
        match sender.try_send(op(answer)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("embedded_writes_shed_total").increment(1);
                return Err(InfraError::new(context, "the writer's queue is full"));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(InfraError::new(context, "the writer thread has stopped"));
            }
        }
        answered.await.map_err(|_| InfraError::new(context, "the writer dropped the request"))?
    }
}

impl<Op> std::fmt::Debug for GroupCommitter<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").field("running", &self.thread.is_some()).finish_non_exhaustive()
    }
}

impl<Op> Drop for GroupCommitter<Op> {
    /// Drains queued writes and waits for the writer, so the file is closed when this returns.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A nice value of about 10: the thread still gets a tenth of a contended core, so it never starves.
fn lower_priority() {
    let background = ThreadPriorityValue::try_from(25u8).expect("25 is within 0..=99");
    if let Err(error) = thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(background)) {
        tracing::warn!(?error, "cannot lower the writer thread's priority");
    }
}

fn run<W: Writes>(file: &Reopenable, mut writes: W, receiver: &Receiver<W::Op>) {
    let mut last_fsync = Instant::now();
    // The writer's own state went out of step with the file (a failed group while the file could
    // not be read back): it is read again before the next group.
    let mut stale = false;
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        group.extend(receiver.try_iter().take(MAX_GROUP - 1));
        let fsync = group.iter().any(W::needs_fsync) || last_fsync.elapsed() >= FSYNC_AT_LEAST_EVERY;
        let db = match file.get().or_else(|_| {
            file.reopen();
            file.get()
        }) {
            Ok(db) => db,
            Err(error) => {
                let error = Arc::new(error);
                for reply in group.into_iter().map(W::reject) {
                    reply(Err(&error));
                }
                continue;
            }
        };
        if stale {
            writes.rolled_back(&db);
            stale = false;
        }
        match commit(&db, &mut writes, group, fsync) {
            Ok(replies) => {
                writes.committed();
                if fsync {
                    last_fsync = Instant::now();
                }
                for reply in replies {
                    reply(Ok(()));
                }
            }
            Err((error, replies)) => {
                static FAILED: Throttle = Throttle::new(LOG_INTERVAL);
                if let Some(groups) = FAILED.hit() {
                    tracing::error!(%error, groups, "embedded write group failed; rolled back (one line per 10 s)");
                }
                if Reopenable::needs_reopen(&error) {
                    drop(db);
                    file.reopen();
                    match file.get() {
                        Ok(db) => writes.rolled_back(&db),
                        Err(_) => stale = true,
                    }
                } else {
                    writes.rolled_back(&db);
                }
                let error = Arc::new(error);
                for reply in replies {
                    reply(Err(&error));
                }
            }
        }
    }
    // A last durable commit so that a clean shutdown never needs a replay.
    if let Ok(txn) = file.get().and_then(|db| db.begin_write().map_err(redb::Error::from)) {
        let _ = txn.commit();
    }
}

fn commit<W: Writes>(
    db: &Database,
    writes: &mut W,
    group: Vec<W::Op>,
    fsync: bool,
) -> Result<Vec<Reply>, (redb::Error, Vec<Reply>)> {
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return Err((e.into(), group.into_iter().map(W::reject).collect())),
    };
    let durability = if fsync { Durability::Immediate } else { Durability::None };
    txn.set_durability(durability).expect("no persistent savepoints are used");
    let mut tables = match W::open_tables(&txn) {
        Ok(tables) => tables,
        Err(e) => return Err((e, group.into_iter().map(W::reject).collect())),
    };
    let mut replies = Vec::with_capacity(group.len());
    let mut ops = group.into_iter();
    while let Some(op) = ops.next() {
        match writes.apply(&mut tables, op) {
            Ok(reply) => replies.push(reply),
            Err((error, reply)) => {
                replies.push(reply);
                replies.extend(ops.map(W::reject));
                return Err((error, replies));
            }
        }
    }
    if let Err(error) = writes.before_commit(&mut tables) {
        return Err((error, replies));
    }
    drop(tables);
    match txn.commit() {
        Ok(()) => Ok(replies),
        Err(e) => Err((e.into(), replies)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender};

    use futures_util::FutureExt as _;

    use super::*;

    /// Ops that each wait in the writer until the test lets them go.
    struct Stalled {
        entered: Sender<()>,
        gate: Receiver<()>,
    }

    impl Writes for Stalled {
        type Op = Answer<()>;
        type Tables<'txn> = ();

        fn needs_fsync(_: &Self::Op) -> bool {
            false
        }

        fn open_tables(_: &WriteTransaction) -> Result<(), redb::Error> {
            Ok(())
        }

        fn apply(&mut self, (): &mut (), op: Self::Op) -> Result<Reply, (redb::Error, Reply)> {
            let _ = self.entered.send(());
            let _ = self.gate.recv();
            Ok(reply_with("stalled", op, ()))
        }

        fn reject(op: Self::Op) -> Reply {
            reply_with("stalled", op, ())
        }

        fn rolled_back(&mut self, _: &Database) {}
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_instead_of_growing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("stalled.redb");
        let db = Reopenable::new(Database::create(&path).expect("db"), &path, 1 << 20);
        let (open, gate) = std::sync::mpsc::channel();
        let (entered, writer_entered) = std::sync::mpsc::channel();
        let committer = Arc::new(GroupCommitter::start("stalled", db, Stalled { entered, gate }, Priority::Normal));

        let first = tokio::spawn({
            let committer = Arc::clone(&committer);
            async move { committer.ask("test", |answer| answer).await }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer_entered.try_recv().is_err() {
            assert!(Instant::now() < deadline, "the writer takes the first op");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The writer waits inside the first op: whatever comes now stays queued. A first poll
        // queues an op; dropping the future forgets its answer.
        for _ in 0..QUEUE_CAPACITY {
            assert!(committer.ask("test", |answer| answer).now_or_never().is_none(), "queued");
        }
        let refused = committer.ask("test", |answer| answer).now_or_never().expect("answered at once");
        assert!(refused.expect_err("refused").to_string().contains("queue is full"));

        drop(open);
        first.await.expect("task").expect("the first op commits");
    }
}

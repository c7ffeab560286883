//! Link histories in `history.redb`: each link event by (code, offset), so a link's history is one
//! range read however long the log grows.

use std::path::Path;

use async_trait::async_trait;
use kurz_domain::{Code, Event};
use kurz_ports::rows::{decode_history_event, encode_history_event};
use kurz_ports::{InfraError, LinkHistory, LogRecord, Projection};
use redb::{ReadableDatabase, TableDefinition};

use crate::OpenError;
use crate::projection_file::{Layout, ProjectionFile};
use crate::small_db::Failure;

const CONTEXT: &str = "embedded link history";
/// (code, log offset) → the event ([`kurz_ports::rows::encode_history_event`]). A link's events
/// are all in one partition, so the offset orders them.
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
/// Bumped when a table's layout changes: the file is then folded again from the log.
const LAYOUT: Layout = Layout { format: 1, create_tables };

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(EVENTS)?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct EmbeddedHistory {
    file: ProjectionFile,
}

impl EmbeddedHistory {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { file: ProjectionFile::open(path, CONTEXT, LAYOUT, crate::page_cache::HISTORY)? })
    }
}

/// Inserts in key order (see the directory's `fold_events`).
fn insert_events(txn: &redb::WriteTransaction, events: &[LogRecord]) -> Result<(), Failure> {
    let mut table = txn.open_table(EVENTS)?;
    let mut rows: Vec<((&str, u64), &Event)> = events
        .iter()
        .filter_map(|record| {
            let event = record.event.as_ref().ok()?;
            Some(((event.code().as_str(), record.position.offset), event))
        })
        .collect();
    rows.sort_unstable_by_key(|(key, _)| *key);
    for (key, event) in rows {
        table.insert(key, encode_history_event(event).as_slice())?;
    }
    Ok(())
}

#[async_trait]
impl Projection for EmbeddedHistory {
    fn name(&self) -> &'static str {
        "history"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.file.checkpoints(partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        self.file.apply(records, insert_events).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        self.file.clear().await
    }
}

#[async_trait]
impl LinkHistory for EmbeddedHistory {
    async fn events(&self, code: &Code, from: u64, count: usize) -> Result<Vec<(u64, Event)>, InfraError> {
        let code = code.as_str().to_owned();
        self.file
            .db
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(EVENTS)?;
                let mut events = Vec::new();
                for entry in table.range((code.as_str(), from)..=(code.as_str(), u64::MAX))?.take(count) {
                    let (key, row) = entry?;
                    events.push((key.value().1, decode_history_event(row.value())?));
                }
                Ok(events)
            })
            .await
    }
}

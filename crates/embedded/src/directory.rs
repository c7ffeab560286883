//! The link directory in `directory.redb`: each link's row once, and its place in the
//! newest-first order twice, under its owner and under every owner ([`ALL_OWNERS`]).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use kurz_domain::listing::ListPosition;
use kurz_domain::{Code, Event, Link, Owner};
use kurz_ports::fold::{Folding, LinkRow, fold};
use kurz_ports::rows::{decode_directory_row, encode_directory_row};
use kurz_ports::{InfraError, LinkDirectory, LogRecord, Projection};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::OpenError;
use crate::projection_file::{Layout, ProjectionFile};
use crate::small_db::Failure;

const CONTEXT: &str = "embedded link directory";
/// Directory rows ([`kurz_ports::rows::encode_directory_row`]) by code.
const LINKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("links");
/// (owner, [`ListPosition::sort_key`]) → code: a list is a range of this table.
const ORDER: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("order");
/// The scope of every owner's links; no owner can be called this.
const ALL_OWNERS: &str = "*";
/// Bumped when a table's layout changes: the file is then folded again from the log.
const LAYOUT: Layout = Layout { format: 1, create_tables };

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(LINKS)?;
    txn.open_table(ORDER)?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct EmbeddedDirectory {
    file: ProjectionFile,
}

impl EmbeddedDirectory {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { file: ProjectionFile::open(path, CONTEXT, LAYOUT, crate::page_cache::DIRECTORY)? })
    }
}

/// Reads and writes in key order: a B-tree filled in random order (codes are random) touches a
/// page per row, in order a page per run of rows.
fn fold_events(txn: &redb::WriteTransaction, events: &[LogRecord]) -> Result<(), Failure> {
    let mut links = txn.open_table(LINKS)?;
    let mut order = txn.open_table(ORDER)?;
    let mut codes: Vec<&Code> = events.iter().filter_map(|r| r.event.as_ref().ok().map(Event::code)).collect();
    codes.sort_unstable();
    codes.dedup();
    let mut stored = HashMap::with_capacity(codes.len());
    for code in codes {
        if let Some(row) = links.get(code.as_str().as_bytes())? {
            stored.insert(code.clone(), decode_directory_row(row.value())?);
        }
    }
    let folded = fold(events, Folding::Commanded, |_| Ok::<_, Failure>(0), |code| Ok(stored.remove(code)))?;
    let mut places: Vec<(&str, Vec<u8>, &Code)> = Vec::with_capacity(folded.links.len() * 2);
    for (code, row) in &folded.links {
        // A link's owner and creation time never change, so neither does its place.
        let key = ListPosition::of(&row.link).sort_key();
        places.push((row.link.owner.as_str(), key.clone(), code));
        places.push((ALL_OWNERS, key, code));
    }
    places.sort_unstable();
    for (scope, key, code) in &places {
        order.insert((*scope, key.as_slice()), code.as_str().as_bytes())?;
    }
    let mut rows: Vec<(&Code, &LinkRow)> = folded.links.iter().map(|(code, row)| (code, row)).collect();
    rows.sort_unstable_by_key(|(code, _)| *code);
    for (code, row) in rows {
        links.insert(code.as_str().as_bytes(), encode_directory_row(row).as_slice())?;
    }
    Ok(())
}

#[async_trait]
impl Projection for EmbeddedDirectory {
    fn name(&self) -> &'static str {
        "directory"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.file.checkpoints(partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        self.file.apply(records, fold_events).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        self.file.clear().await
    }
}

#[async_trait]
impl LinkDirectory for EmbeddedDirectory {
    async fn scan(
        &self,
        owner: Option<&Owner>,
        after: Option<&ListPosition>,
        count: usize,
    ) -> Result<Vec<Link>, InfraError> {
        let scope = owner.map_or(ALL_OWNERS, Owner::as_str).to_owned();
        let after = after.map(ListPosition::sort_key);
        self.file
            .db
            .run(move |db| {
                let txn = db.begin_read()?;
                let (order, links) = (txn.open_table(ORDER)?, txn.open_table(LINKS)?);
                let start = after.as_deref().unwrap_or_default();
                let mut found = Vec::with_capacity(count.min(1000));
                for entry in order.range((scope.as_str(), start)..)? {
                    let (key, code) = entry?;
                    let (entry_scope, sort_key) = key.value();
                    if entry_scope != scope || found.len() == count {
                        break;
                    }
                    if after.as_deref() == Some(sort_key) {
                        continue;
                    }
                    let row = links.get(code.value())?.ok_or(kurz_ports::rows::RowError::Damaged("directory"))?;
                    found.push(decode_directory_row(row.value())?.link);
                }
                Ok(found)
            })
            .await
    }
}

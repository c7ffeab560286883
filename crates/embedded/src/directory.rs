//! The link directory in `directory.redb`: each link's row once, and its place in the
//! newest-first order twice, under its owner and under every owner ([`ALL_OWNERS`]).

use std::path::Path;

use async_trait::async_trait;
use kurz_domain::listing::ListPosition;
use kurz_domain::{Link, Owner};
use kurz_ports::fold::{Folding, fold};
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
        Ok(Self { file: ProjectionFile::open(path, CONTEXT, LAYOUT)? })
    }
}

fn fold_events(txn: &redb::WriteTransaction, events: &[LogRecord]) -> Result<(), Failure> {
    let mut links = txn.open_table(LINKS)?;
    let mut order = txn.open_table(ORDER)?;
    let folded = fold(
        events,
        Folding::Commanded,
        |_| Ok::<_, Failure>(0),
        |code| Ok(links.get(code.as_str().as_bytes())?.map(|row| decode_directory_row(row.value())).transpose()?),
    )?;
    for (code, row) in &folded.links {
        // A link's owner and creation time never change, so neither does its place.
        let key = ListPosition::of(&row.link).sort_key();
        order.insert((row.link.owner.as_str(), key.as_slice()), code.as_str().as_bytes())?;
        order.insert((ALL_OWNERS, key.as_slice()), code.as_str().as_bytes())?;
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

//! The link directory in Redis.
//!
//! Keys (after the prefix):
//! - `directory_links`: hash code → the link's directory row (`kurz_ports::rows`).
//! - `directory_order:{owner}` and `directory_order:*` (every owner): sorted sets whose members,
//!   all of score 0, are [`ListPosition::sort_key`]s, so a page is one `ZRANGE … BYLEX LIMIT`.
//! - `directory_checkpoints`: hash partition → offset of the next record to apply.

use async_trait::async_trait;
use kurz_domain::listing::ListPosition;
use kurz_domain::{Code, Link, Owner};
use kurz_ports::fold::{Folding, LinkRow, fold};
use kurz_ports::rows::{decode_directory_row, encode_directory_row};
use kurz_ports::{InfraError, LinkDirectory, LogRecord, Projection};

use crate::connection::{RedisConnection, redis_error};
use crate::projection_write::{CheckpointedWriter, Writes};

const CONTEXT: &str = "Redis link directory";
const ALL_OWNERS: &str = "*";

#[derive(Debug, Clone)]
pub struct RedisDirectory {
    writer: CheckpointedWriter,
}

impl RedisDirectory {
    pub fn new(redis: RedisConnection) -> Self {
        Self { writer: CheckpointedWriter::new(redis, "directory", CONTEXT) }
    }

    async fn rows(&self, codes: &[Code]) -> Result<Vec<Option<LinkRow>>, InfraError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.writer.key("links", None))
            .arg(codes.iter().map(Code::as_str).collect::<Vec<_>>())
            .query_async(&mut self.writer.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        rows.into_iter()
            .map(|row| row.map(|row| decode_directory_row(&row)).transpose().map_err(|e| InfraError::new(CONTEXT, e)))
            .collect()
    }

    async fn fold(&self, events: Vec<LogRecord>) -> Result<Writes, InfraError> {
        let mut codes: Vec<Code> =
            events.iter().filter_map(|r| r.event.as_ref().ok().map(|e| e.code().clone())).collect();
        codes.sort_unstable();
        codes.dedup();
        let mut stored: std::collections::HashMap<Code, LinkRow> =
            codes.iter().cloned().zip(self.rows(&codes).await?).filter_map(|(code, row)| Some((code, row?))).collect();
        let folded = fold(&events, Folding::Commanded, |_| Ok::<_, InfraError>(0), |code| Ok(stored.remove(code)))?;
        let mut writes = Writes::default();
        for (code, row) in &folded.links {
            // A link's owner and creation time never change, so neither does its place.
            let key = ListPosition::of(&row.link).sort_key();
            writes.zadd(self.writer.key("order", Some(row.link.owner.as_str())), 0, key.clone());
            writes.zadd(self.writer.key("order", Some(ALL_OWNERS)), 0, key);
            writes.hset(self.writer.key("links", None), code.as_str(), encode_directory_row(row));
        }
        Ok(writes)
    }
}

#[async_trait]
impl Projection for RedisDirectory {
    fn name(&self) -> &'static str {
        "directory"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.writer.checkpoints(partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        self.writer.apply(records, |events| self.fold(events)).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        self.writer.clear().await
    }
}

#[async_trait]
impl LinkDirectory for RedisDirectory {
    async fn scan(
        &self,
        owner: Option<&Owner>,
        after: Option<&ListPosition>,
        count: usize,
    ) -> Result<Vec<Link>, InfraError> {
        let start = after.map_or_else(|| b"-".to_vec(), |after| [b"(".as_slice(), &after.sort_key()].concat());
        let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(self.writer.key("order", Some(owner.map_or(ALL_OWNERS, Owner::as_str))))
            .arg(start)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(count)
            .query_async(&mut self.writer.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        let codes = members
            .iter()
            .map(|member| ListPosition::from_sort_key(member).map(|position| position.code))
            .collect::<Option<Vec<Code>>>()
            .ok_or_else(|| InfraError::new(CONTEXT, kurz_ports::rows::RowError::Damaged("directory order")))?;
        let rows = self.rows(&codes).await?;
        Ok(rows.into_iter().flatten().map(|row| row.link).collect())
    }
}

//! The read models in Redis.
//!
//! Keys (after the prefix):
//! - `link:{code}`: hash `o` = offset of the last event folded into the link, `r` = the link
//!   (`kurz_ports::rows`: postcard behind its layout version). A write lands only if its offset is higher, so the command side and the projector
//!   may bring a link's events in either order, or twice.
//! - `days:{code}`: hash day number → that day's click statistics (postcard), so a stats read costs
//!   the same at 10 clicks and 10^8.
//! - `checkpoints`: hash partition → offset of the next record to apply.
//! - `layout`: the layout of the day rows, [`READ_LAYOUT`] (absent: layout 1, from before the
//!   key). Link rows carry their own layout; day rows cannot (postcard's first byte is a count), so
//!   the store is marked as a whole, and a projector that finds another layout rebuilds it
//!   ([`RedisReadStore::stale_layout`]) rather than failing to decode its rows.
//!
//! A projection write is optimistic: it reads checkpoints, links and days, folds in Rust (the fold
//! every store shares, `kurz_ports::fold`), then one script writes everything if the checkpoints are
//! still what was read. Two projectors racing on a partition (a rebalance) cannot both apply a record: the loser
//! reads again and skips what the winner applied.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::analytics::BotRules;
use kurz_domain::stats::DayStats;
use kurz_domain::{Code, Day, DayRange, Event, Link};
use kurz_ports::fold::{Folding, LinkRow, fold_classified};
use kurz_ports::rows::{RowError, decode_link, encode_link};
use kurz_ports::{InfraError, LogRecord, ReadStore};
use redis::{AsyncCommands, Script};

use crate::connection::{RedisConnection, redis_error};

const CONTEXT: &str = "Redis read store";

/// The layout of the day rows this build writes and reads (2: people's and bots' clicks apart; 3:
/// and their clicks by hour; 4: and browser versions); bumped with every change to how `DayStats`
/// is encoded.
pub const READ_LAYOUT: u32 = 4;

/// Checks the checkpoints, then writes links (if newer), days and the new checkpoints.
/// KEYS: checkpoints, then one key per link write, then one per day write.
/// ARGV: partition count P, then P × (partition, expected, next); link count L, then
/// L × (offset, row); then day writes as (field, row).
const WRITE: &str = r"
local argv = 1
local partitions = tonumber(ARGV[argv]); argv = argv + 1
for i = 1, partitions do
  local current = redis.call('HGET', KEYS[1], ARGV[argv]) or '0'
  if current ~= ARGV[argv + 1] then return 0 end
  argv = argv + 3
end
local key = 2
local links = tonumber(ARGV[argv]); argv = argv + 1
for i = 1, links do
  local stored = redis.call('HGET', KEYS[key], 'o')
  if not stored or tonumber(stored) < tonumber(ARGV[argv]) then
    redis.call('HSET', KEYS[key], 'o', ARGV[argv], 'r', ARGV[argv + 1])
  end
  key = key + 1; argv = argv + 2
end
while key <= #KEYS do
  redis.call('HSET', KEYS[key], ARGV[argv], ARGV[argv + 1])
  key = key + 1; argv = argv + 2
end
argv = 2
for i = 1, partitions do
  redis.call('HSET', KEYS[1], ARGV[argv], ARGV[argv + 2])
  argv = argv + 3
end
return 1
";

#[derive(Debug, Clone)]
pub struct RedisReadStore {
    redis: RedisConnection,
    write: Script,
    /// The operator's bot markers, besides the maintained lists.
    bots: Arc<BotRules>,
}

#[derive(Debug, thiserror::Error)]
#[error("a stored row does not decode: {0}")]
struct Corrupt(#[from] postcard::Error);

impl RedisReadStore {
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis, write: Script::new(WRITE), bots: Arc::default() }
    }

    /// Tells bots apart with the operator's markers too, besides the maintained lists.
    #[must_use]
    pub fn with_bot_rules(mut self, bots: Arc<BotRules>) -> Self {
        self.bots = bots;
        self
    }

    /// Deletes the read models (links, click days, checkpoints) for a rebuild from offset 0, and
    /// leaves the write-side keys (claims, sequences, quotas) alone. Returns how many keys went.
    pub async fn clear(&self) -> Result<u64, InfraError> {
        let mut connection = self.redis.manager();
        let mut deleted = 0;
        for kind in ["link", "days"] {
            let pattern = self.redis.key(kind, Some("*"));
            let keys: Vec<String> = {
                let mut iter: redis::AsyncIter<'_, String> =
                    connection.scan_match(&pattern).await.map_err(redis_error(CONTEXT))?;
                let mut keys = Vec::new();
                while let Some(key) = iter.next_item().await {
                    keys.push(key.map_err(redis_error(CONTEXT))?);
                }
                keys
            };
            for chunk in keys.chunks(1000) {
                let removed: u64 =
                    redis::cmd("DEL").arg(chunk).query_async(&mut connection).await.map_err(redis_error(CONTEXT))?;
                deleted += removed;
            }
        }
        let removed: u64 = redis::cmd("DEL")
            .arg(self.checkpoints_key())
            .query_async(&mut connection)
            .await
            .map_err(redis_error(CONTEXT))?;
        // An empty store is of every layout: it is folded again by this build.
        let () = connection.set(self.layout_key(), READ_LAYOUT).await.map_err(redis_error(CONTEXT))?;
        Ok(deleted + removed)
    }

    /// The layout the stored rows have, when it is not [`READ_LAYOUT`]: the store must then be
    /// cleared and folded again from the log (its rows would not decode, or would decode wrong).
    pub async fn stale_layout(&self) -> Result<Option<u32>, InfraError> {
        let mut connection = self.redis.manager();
        let stored: Option<u32> = connection.get(self.layout_key()).await.map_err(redis_error(CONTEXT))?;
        match stored {
            Some(layout) if layout == READ_LAYOUT => Ok(None),
            Some(layout) => Ok(Some(layout)),
            None => {
                // No mark: either an empty store (mark it) or rows from before the mark (layout 1).
                let rows: bool = connection.exists(self.checkpoints_key()).await.map_err(redis_error(CONTEXT))?;
                if rows && READ_LAYOUT != 1 {
                    return Ok(Some(1));
                }
                let () = connection.set(self.layout_key(), READ_LAYOUT).await.map_err(redis_error(CONTEXT))?;
                Ok(None)
            }
        }
    }

    fn layout_key(&self) -> String {
        self.redis.key("layout", None)
    }

    fn checkpoints_key(&self) -> String {
        self.redis.key("checkpoints", None)
    }

    async fn load_checkpoints(&self, partitions: &[u32]) -> Result<HashMap<u32, u64>, InfraError> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let offsets: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(self.checkpoints_key())
            .arg(partitions)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        Ok(partitions.iter().copied().zip(offsets.into_iter().map(Option::unwrap_or_default)).collect())
    }

    async fn load_links(&self, codes: &[Code]) -> Result<HashMap<Code, Option<LinkRow>>, InfraError> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for code in codes {
            pipe.cmd("HMGET").arg(self.redis.key("link", Some(code.as_str()))).arg("o").arg("r");
        }
        let rows: Vec<(Option<u64>, Option<Vec<u8>>)> =
            pipe.query_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
        codes
            .iter()
            .zip(rows)
            .map(|(code, (last_offset, row))| {
                let link: Option<Link> = row.map(|row| decode_link(&row)).transpose().map_err(bad_row)?;
                let row = link.zip(last_offset).map(|(link, last_offset)| LinkRow { link, last_offset });
                Ok((code.clone(), row))
            })
            .collect()
    }

    async fn load_days(&self, keys: &[(Code, Day)]) -> Result<Vec<Option<DayStats>>, InfraError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (code, day) in keys {
            pipe.cmd("HGET").arg(self.redis.key("days", Some(code.as_str()))).arg(day.days_since_epoch());
        }
        let rows: Vec<Option<Vec<u8>>> =
            pipe.query_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
        rows.into_iter().map(|row| row.map(|row| postcard::from_bytes(&row)).transpose().map_err(corrupt)).collect()
    }

    /// One optimistic attempt: `None` when another projector moved a checkpoint meanwhile.
    async fn try_project(&self, records: &[LogRecord], folding: Folding) -> Result<Option<Vec<Code>>, InfraError> {
        let mut partitions: Vec<u32> = records.iter().map(|r| r.position.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let stored =
            if folding == Folding::Projection { self.load_checkpoints(&partitions).await? } else { HashMap::new() };
        let mut codes: Vec<Code> = records
            .iter()
            .filter_map(|r| match &r.event {
                Ok(Event::Clicked(_)) | Err(_) => None,
                Ok(event) => Some(event.code().clone()),
            })
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let mut rows = self.load_links(&codes).await?;
        let folded = fold_classified(
            records,
            folding,
            &self.bots,
            |partition| Ok::<_, InfraError>(stored[&partition]),
            |code| Ok(rows.remove(code).flatten()),
        )?;
        let day_keys: Vec<(Code, Day)> = folded.days.iter().map(|d| (d.code.clone(), d.day)).collect();
        let stored_days = self.load_days(&day_keys).await?;

        let mut invocation = self.write.key(self.checkpoints_key());
        invocation.arg(folded.checkpoints.len());
        for (partition, next) in &folded.checkpoints {
            invocation.arg(partition).arg(stored[partition]).arg(next);
        }
        invocation.arg(folded.links.len());
        for (code, row) in &folded.links {
            invocation.key(self.redis.key("link", Some(code.as_str())));
            invocation.arg(row.last_offset).arg(encode_link(&row.link));
        }
        for (increment, stored) in folded.days.into_iter().zip(stored_days) {
            let row = if let Some(mut stats) = stored {
                stats.add(*increment.stats);
                stats.to_row()
            } else {
                increment.stats.to_new_row()
            };
            invocation.key(self.redis.key("days", Some(increment.code.as_str())));
            invocation.arg(increment.day.days_since_epoch()).arg(row);
        }
        let applied: i64 = invocation.invoke_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
        Ok((applied == 1).then_some(folded.changed))
    }

    async fn project(&self, records: Vec<LogRecord>, folding: Folding) -> Result<Vec<Code>, InfraError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        kurz_ports::fold::until_not_overtaken("a checkpoint", || self.try_project(&records, folding)).await
    }
}

fn corrupt(error: postcard::Error) -> InfraError {
    InfraError::new(CONTEXT, Corrupt(error))
}

fn bad_row(error: RowError) -> InfraError {
    InfraError::new(CONTEXT, error)
}

#[async_trait]
impl ReadStore for RedisReadStore {
    async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError> {
        let row: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(self.redis.key("link", Some(code.as_str())))
            .arg("r")
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        row.map(|row| decode_link(&row)).transpose().map_err(bad_row)
    }

    async fn click_days(&self, code: &Code, range: DayRange) -> Result<Vec<(Day, DayStats)>, InfraError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i32, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(self.redis.key("days", Some(code.as_str())))
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        let days = rows
            .into_iter()
            .map(|(day, row)| (Day::from_days_since_epoch(day), row))
            .filter(|(day, _)| range.contains(*day))
            .map(|(day, row)| Ok((day, postcard::from_bytes::<DayStats>(&row).map_err(corrupt)?)))
            .collect::<Result<Vec<_>, InfraError>>()?;
        Ok(days)
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        let all: Vec<u32> = (0..partitions).collect();
        let stored = self.load_checkpoints(&all).await?;
        Ok(all.iter().map(|p| stored[p]).collect())
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        self.project(records, Folding::Projection).await
    }

    async fn apply_link_events(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        self.project(records, Folding::Commanded).await
    }
}

//! The read store on ScyllaDB. See the crate documentation for how writes stay idempotent.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use kurz_domain::analytics::BotRules;
use kurz_domain::stats::DayStats;
use kurz_domain::{Code, Day, DayRange, Event, Link};
use kurz_ports::fold::{Folding, LinkRow, fold_with_day_watermarks};
use kurz_ports::{InfraError, LogRecord, ReadStore};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::{ScyllaCodeRegistry, ScyllaConfig, migrate};

const CONTEXT: &str = "ScyllaDB read store";
/// Requests in flight at once while applying a batch.
const CONCURRENCY: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("invalid keyspace name {0:?}: letters, digits and underscores only")]
struct InvalidKeyspace(String);

#[derive(Debug)]
struct Statements {
    link: PreparedStatement,
    link_row: PreparedStatement,
    write_link: PreparedStatement,
    days: PreparedStatement,
    day: PreparedStatement,
    insert_day: PreparedStatement,
    update_day: PreparedStatement,
    checkpoint: PreparedStatement,
    write_checkpoint: PreparedStatement,
}

#[derive(Debug)]
pub struct ScyllaReadStore {
    session: Arc<Session>,
    keyspace: String,
    statements: Statements,
    /// The operator's bot markers, besides the maintained lists.
    bots: Arc<BotRules>,
}

pub(crate) fn infra<E: std::error::Error + Send + Sync + 'static>(error: E) -> InfraError {
    InfraError::new(CONTEXT, error)
}

fn offset_value(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn offset_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The layout of the day rows this build writes and reads: 2 keeps people's and bots' clicks
/// apart, 3 their clicks by hour too, 4 browser versions too. Bumped with every change to how
/// `DayStats` is encoded.
pub const READ_LAYOUT: i32 = 4;

/// A click-day row as read: its statistics and the offset of its last click.
#[derive(Debug)]
struct StoredDay {
    stats: DayStats,
    last_offset: u64,
}

impl ScyllaReadStore {
    /// Connects (token- and shard-aware by default), applies pending migrations and prepares every
    /// statement.
    pub async fn connect(config: &ScyllaConfig) -> Result<Self, InfraError> {
        let keyspace = config.keyspace.clone();
        if keyspace.is_empty() || !keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(infra(InvalidKeyspace(keyspace)));
        }
        let mut builder =
            SessionBuilder::new().known_nodes(&config.nodes).tls_context(config.tls_context().map_err(infra)?);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(user, password);
        }
        let session = Arc::new(builder.build().await.map_err(infra)?);
        migrate(&session, &keyspace, &config.replication).await?;
        let ks = &keyspace;
        let prepare = async |cql: String| session.prepare(cql).await.map_err(infra);
        let statements = Statements {
            link: prepare(format!("SELECT link FROM {ks}.links WHERE code = ?")).await?,
            link_row: prepare(format!("SELECT link, last_offset FROM {ks}.links WHERE code = ?")).await?,
            write_link: prepare(format!(
                "UPDATE {ks}.links USING TIMESTAMP ? SET link = ?, last_offset = ? WHERE code = ?"
            ))
            .await?,
            days: prepare(format!("SELECT day, stats FROM {ks}.click_days WHERE code = ? AND day >= ? AND day <= ?"))
                .await?,
            day: prepare(format!("SELECT stats, last_offset FROM {ks}.click_days WHERE code = ? AND day = ?")).await?,
            insert_day: prepare(format!(
                "INSERT INTO {ks}.click_days (code, day, stats, last_offset) VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ))
            .await?,
            update_day: prepare(format!(
                "UPDATE {ks}.click_days SET stats = ?, last_offset = ? WHERE code = ? AND day = ? IF last_offset = ?"
            ))
            .await?,
            checkpoint: prepare(format!("SELECT next_offset FROM {ks}.checkpoints WHERE partition = ?")).await?,
            write_checkpoint: prepare(format!(
                "UPDATE {ks}.checkpoints USING TIMESTAMP ? SET next_offset = ? WHERE partition = ?"
            ))
            .await?,
        };
        Ok(Self { session, keyspace, statements, bots: Arc::default() })
    }

    /// Tells bots apart with the operator's markers too, besides the maintained lists.
    #[must_use]
    pub fn with_bot_rules(mut self, bots: Arc<BotRules>) -> Self {
        self.bots = bots;
        self
    }

    /// The code registry on the same cluster and keyspace.
    pub async fn code_registry(&self) -> Result<ScyllaCodeRegistry, InfraError> {
        ScyllaCodeRegistry::prepare(Arc::clone(&self.session), &self.keyspace).await
    }

    /// The link directory on the same cluster and keyspace.
    pub async fn directory(&self) -> Result<crate::ScyllaDirectory, InfraError> {
        crate::ScyllaDirectory::prepare(Arc::clone(&self.session), &self.keyspace).await
    }

    /// Link histories on the same cluster and keyspace.
    pub async fn history(&self) -> Result<crate::ScyllaHistory, InfraError> {
        crate::ScyllaHistory::prepare(Arc::clone(&self.session), &self.keyspace).await
    }

    /// Deletes the read models for a rebuild from offset 0 (claims and sequences stay).
    pub async fn clear(&self) -> Result<(), InfraError> {
        for table in ["links", "click_days", "checkpoints"] {
            self.session.query_unpaged(format!("TRUNCATE {}.{table}", self.keyspace), ()).await.map_err(infra)?;
        }
        // An empty store is of every layout: it is folded again by this build.
        self.mark_layout().await
    }

    /// The layout the stored rows have, when it is not [`READ_LAYOUT`]: the read models must then
    /// be cleared and folded again from the log (a day row of another layout would not decode, or
    /// would decode wrong). A migration can add tables; only a fold can re-sort past clicks.
    pub async fn stale_layout(&self) -> Result<Option<u32>, InfraError> {
        let ks = &self.keyspace;
        let select = format!("SELECT version FROM {ks}.read_layout WHERE name = 'read_store'");
        let result = self.session.query_unpaged(select, ()).await.map_err(infra)?;
        let row = result.into_rows_result().map_err(infra)?.maybe_first_row::<(Option<i32>,)>().map_err(infra)?;
        match row.and_then(|(version,)| version) {
            Some(layout) if layout == READ_LAYOUT => Ok(None),
            Some(layout) => Ok(Some(u32::try_from(layout).unwrap_or(0))),
            None => {
                // No mark: an empty store (mark it), or rows from before the mark (layout 1).
                let any = format!("SELECT partition FROM {ks}.checkpoints LIMIT 1");
                let result = self.session.query_unpaged(any, ()).await.map_err(infra)?;
                if result.into_rows_result().map_err(infra)?.rows_num() > 0 {
                    return Ok(Some(1));
                }
                self.mark_layout().await?;
                Ok(None)
            }
        }
    }

    async fn mark_layout(&self) -> Result<(), InfraError> {
        let mark = format!("UPDATE {}.read_layout SET version = ? WHERE name = 'read_store'", self.keyspace);
        self.session.query_unpaged(mark, (READ_LAYOUT,)).await.map_err(infra)?;
        Ok(())
    }

    async fn checkpoint(&self, partition: u32) -> Result<u64, InfraError> {
        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
        let result = self.session.execute_unpaged(&self.statements.checkpoint, (partition,)).await.map_err(infra)?;
        let row = result.into_rows_result().map_err(infra)?.maybe_first_row::<(Option<i64>,)>().map_err(infra)?;
        Ok(row.and_then(|(offset,)| offset).map_or(0, offset_of))
    }

    async fn link_row(&self, code: &Code) -> Result<Option<LinkRow>, InfraError> {
        let result = self.session.execute_unpaged(&self.statements.link_row, (code.as_str(),)).await.map_err(infra)?;
        let row = result
            .into_rows_result()
            .map_err(infra)?
            .maybe_first_row::<(Option<Vec<u8>>, Option<i64>)>()
            .map_err(infra)?;
        let Some((Some(link), Some(last_offset))) = row else { return Ok(None) };
        let link: Link = kurz_ports::rows::decode_link(&link).map_err(infra)?;
        Ok(Some(LinkRow { link, last_offset: offset_of(last_offset) }))
    }

    async fn day(&self, code: &Code, day: Day) -> Result<Option<StoredDay>, InfraError> {
        let values = (code.as_str(), day.days_since_epoch());
        let result = self.session.execute_unpaged(&self.statements.day, values).await.map_err(infra)?;
        let row = result
            .into_rows_result()
            .map_err(infra)?
            .maybe_first_row::<(Option<Vec<u8>>, Option<i64>)>()
            .map_err(infra)?;
        let Some((Some(stats), Some(last_offset))) = row else { return Ok(None) };
        Ok(Some(StoredDay { stats: postcard::from_bytes(&stats).map_err(infra)?, last_offset: offset_of(last_offset) }))
    }

    async fn write_link(&self, code: Code, row: LinkRow) -> Result<(), InfraError> {
        let link = kurz_ports::rows::encode_link(&row.link);
        // Offsets start at 0; write timestamps must be positive.
        let at = offset_value(row.last_offset) + 1;
        let values = (at, link, offset_value(row.last_offset), code.as_str());
        self.session.execute_unpaged(&self.statements.write_link, values).await.map_err(infra).map(drop)
    }

    /// Writes a click-day row if it still holds `expected` (its last click's offset; `None`: no row).
    async fn write_day(
        &self,
        code: Code,
        day: Day,
        stats: DayStats,
        last_offset: u64,
        expected: Option<u64>,
    ) -> Result<bool, InfraError> {
        let stats = stats.to_row();
        let (code, day) = (code.as_str(), day.days_since_epoch());
        let result = match expected {
            None => {
                let values = (code, day, stats, offset_value(last_offset));
                self.session.execute_unpaged(&self.statements.insert_day, values).await
            }
            Some(expected) => {
                let values = (stats, offset_value(last_offset), code, day, offset_value(expected));
                self.session.execute_unpaged(&self.statements.update_day, values).await
            }
        };
        was_applied(result.map_err(infra)?)
    }

    /// One attempt at a batch; `Ok(None)` when another writer changed a click-day row meanwhile.
    async fn try_project(&self, records: &[LogRecord], folding: Folding) -> Result<Option<Vec<Code>>, InfraError> {
        let mut partitions: Vec<u32> = records.iter().map(|r| r.position.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        if folding == Folding::Commanded {
            partitions.clear();
        }
        let mut codes: Vec<Code> = Vec::new();
        let mut days: Vec<(Code, Day)> = Vec::new();
        for record in records {
            match &record.event {
                Ok(Event::Clicked(click)) if folding == Folding::Projection => {
                    days.push((click.code.clone(), click.clicked_at.day()));
                }
                Ok(Event::Clicked(_)) | Err(_) => {}
                Ok(event) => codes.push(event.code().clone()),
            }
        }
        codes.sort_unstable();
        codes.dedup();
        days.sort_unstable();
        days.dedup();

        let reads: Vec<_> = partitions
            .iter()
            .map(|partition| async move { Ok((*partition, self.checkpoint(*partition).await?)) })
            .collect();
        let checkpoints: HashMap<u32, u64> = all(reads).await?.into_iter().collect();
        let reads: Vec<_> =
            codes.iter().map(|code| async move { Ok((code.clone(), self.link_row(code).await?)) }).collect();
        let mut rows: HashMap<Code, Option<LinkRow>> = all(reads).await?.into_iter().collect();
        let reads: Vec<_> =
            days.iter()
                .map(|(code, day)| async move {
                    Ok(self.day(code, *day).await?.map(|stored| ((code.clone(), *day), stored)))
                })
                .collect();
        let stored_days: HashMap<(Code, Day), StoredDay> = all(reads).await?.into_iter().flatten().collect();

        let folded = fold_with_day_watermarks(
            records,
            folding,
            &self.bots,
            |partition| Ok::<_, InfraError>(checkpoints[&partition]),
            |code| Ok(rows.remove(code).flatten()),
            |code, day| Ok(stored_days.get(&(code.clone(), day)).map(|stored| stored.last_offset)),
        )?;

        all(folded.links.iter().map(|(code, row)| self.write_link(code.clone(), row.clone())).collect()).await?;
        let writes: Vec<_> = folded
            .days
            .into_iter()
            .filter_map(|increment| {
                let last_offset = increment.last_offset?;
                let stored = stored_days.get(&(increment.code.clone(), increment.day));
                let mut stats = stored.map(|stored| stored.stats.clone()).unwrap_or_default();
                stats.add(*increment.stats);
                let expected = stored.map(|stored| stored.last_offset);
                Some(self.write_day(increment.code.clone(), increment.day, stats, last_offset, expected))
            })
            .collect();
        if !all(writes).await?.into_iter().all(|applied| applied) {
            return Ok(None);
        }
        for (partition, next) in &folded.checkpoints {
            let values = (offset_value(*next), offset_value(*next), i32::try_from(*partition).unwrap_or(i32::MAX));
            self.session.execute_unpaged(&self.statements.write_checkpoint, values).await.map_err(infra)?;
        }
        Ok(Some(folded.changed))
    }

    async fn project(&self, records: Vec<LogRecord>, folding: Folding) -> Result<Vec<Code>, InfraError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        kurz_ports::fold::until_not_overtaken("a click-day row", || self.try_project(&records, folding)).await
    }
}

/// Runs the requests, up to [`CONCURRENCY`] at a time, and collects their answers.
/// (Taken as a `Vec`: a lazy iterator's closure held across awaits trips async-trait's `Send` check.)
async fn all<T, F: Future<Output = Result<T, InfraError>>>(requests: Vec<F>) -> Result<Vec<T>, InfraError> {
    stream::iter(requests).buffer_unordered(CONCURRENCY).try_collect().await
}

/// A lightweight transaction's `[applied]` column.
pub(crate) fn was_applied(result: QueryResult) -> Result<bool, InfraError> {
    let rows = result.into_rows_result().map_err(infra)?;
    let row = rows.maybe_first_row::<Row>().map_err(infra)?;
    Ok(matches!(row.and_then(|row| row.columns.into_iter().next().flatten()), Some(CqlValue::Boolean(true))))
}

#[async_trait]
impl ReadStore for ScyllaReadStore {
    async fn link(&self, code: &Code) -> Result<Option<Link>, InfraError> {
        let result = self.session.execute_unpaged(&self.statements.link, (code.as_str(),)).await.map_err(infra)?;
        let row = result.into_rows_result().map_err(infra)?.maybe_first_row::<(Option<Vec<u8>>,)>().map_err(infra)?;
        row.and_then(|(link,)| link).map(|link| kurz_ports::rows::decode_link(&link).map_err(infra)).transpose()
    }

    async fn click_days(&self, code: &Code, range: DayRange) -> Result<Vec<(Day, DayStats)>, InfraError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let from = range.from.map_or(i32::MIN, Day::days_since_epoch);
        let to = range.to.map_or(i32::MAX, Day::days_since_epoch);
        // Paged: a link with years of days is read a page at a time.
        let pager =
            self.session.execute_iter(self.statements.days.clone(), (code.as_str(), from, to)).await.map_err(infra)?;
        let rows: Vec<(i32, Vec<u8>)> =
            pager.rows_stream::<(i32, Vec<u8>)>().map_err(infra)?.try_collect().await.map_err(infra)?;
        let days = rows
            .into_iter()
            .map(|(day, stats)| {
                Ok((Day::from_days_since_epoch(day), postcard::from_bytes::<DayStats>(&stats).map_err(infra)?))
            })
            .collect::<Result<Vec<_>, InfraError>>()?;
        Ok(days)
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        let mut checkpoints = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            checkpoints.push(self.checkpoint(partition).await?);
        }
        Ok(checkpoints)
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        self.project(records, Folding::Projection).await
    }

    async fn apply_link_events(&self, records: Vec<LogRecord>) -> Result<Vec<Code>, InfraError> {
        self.project(records, Folding::Commanded).await
    }
}

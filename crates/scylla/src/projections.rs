//! The link directory and link histories on ScyllaDB. Both are idempotent without transactions:
//! directory rows carry the offset of the last event folded in (written `USING TIMESTAMP` = that
//! offset, so an older fold never overwrites a newer one), order and history rows are keyed by
//! what they hold, and checkpoints are written last.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use kurz_domain::listing::ListPosition;
use kurz_domain::{Code, Event, Link, Owner, Timestamp};
use kurz_ports::fold::{Folding, LinkRow, fold};
use kurz_ports::rows::{decode_directory_row, decode_history_event, encode_directory_row, encode_history_event};
use kurz_ports::{InfraError, LinkDirectory, LinkEvents, LinkHistory, LogRecord, Projection, Unapplied};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

const CONCURRENCY: usize = 64;
const ALL_OWNERS: &str = "*";

fn infra<E: std::error::Error + Send + Sync + 'static>(context: &'static str) -> impl Fn(E) -> InfraError {
    move |error| InfraError::new(context, error)
}

fn offset_value(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn partition_value(partition: u32) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

async fn all<T, F: Future<Output = Result<T, InfraError>>>(requests: Vec<F>) -> Result<Vec<T>, InfraError> {
    stream::iter(requests).buffered(CONCURRENCY).try_collect().await
}

/// One projection's checkpoints in `projection_checkpoints`.
#[derive(Debug)]
struct Checkpoints {
    name: &'static str,
    context: &'static str,
    read: PreparedStatement,
    write: PreparedStatement,
    clear: PreparedStatement,
}

impl Checkpoints {
    async fn prepare(
        session: &Session,
        ks: &str,
        name: &'static str,
        context: &'static str,
    ) -> Result<Self, InfraError> {
        let prepare = async |cql: String| session.prepare(cql).await.map_err(infra(context));
        Ok(Self {
            name,
            context,
            read: prepare(format!(
                "SELECT next_offset FROM {ks}.projection_checkpoints WHERE projection = ? AND partition = ?"
            ))
            .await?,
            write: prepare(format!(
                "UPDATE {ks}.projection_checkpoints USING TIMESTAMP ? SET next_offset = ? \
                 WHERE projection = ? AND partition = ?"
            ))
            .await?,
            clear: prepare(format!("DELETE FROM {ks}.projection_checkpoints WHERE projection = ?")).await?,
        })
    }

    async fn get(&self, session: &Session, partition: u32) -> Result<u64, InfraError> {
        let result = session
            .execute_unpaged(&self.read, (self.name, partition_value(partition)))
            .await
            .map_err(infra(self.context))?;
        let row = result
            .into_rows_result()
            .map_err(infra(self.context))?
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(infra(self.context))?;
        Ok(row.and_then(|(offset,)| offset).map_or(0, |offset| u64::try_from(offset).unwrap_or(0)))
    }

    async fn all(&self, session: &Session, partitions: u32) -> Result<Vec<u64>, InfraError> {
        all((0..partitions).map(|partition| self.get(session, partition)).collect()).await
    }

    /// The batch's link events not applied yet, and the checkpoints to write once they are.
    async fn unapplied(&self, session: &Session, batch: LinkEvents) -> Result<Unapplied, InfraError> {
        let partitions: Vec<u32> = batch.partitions().collect();
        let stored = all(partitions.iter().map(|p| async move { Ok((*p, self.get(session, *p).await?)) }).collect())
            .await?
            .into_iter()
            .collect::<HashMap<u32, u64>>();
        batch.unapplied(|partition| Ok(stored[&partition]))
    }

    async fn write(&self, session: &Session, moved: Vec<(u32, u64)>) -> Result<(), InfraError> {
        for (partition, next) in moved {
            // Checkpoints only move forward: a write timestamp of the offset makes a late writer lose.
            let values = (offset_value(next), offset_value(next), self.name, partition_value(partition));
            session.execute_unpaged(&self.write, values).await.map_err(infra(self.context))?;
        }
        Ok(())
    }

    async fn clear(&self, session: &Session) -> Result<(), InfraError> {
        session.execute_unpaged(&self.clear, (self.name,)).await.map_err(infra(self.context)).map(drop)
    }
}

/// Months since 1970 of an instant: the directory's partitions.
fn month_of(at: Timestamp) -> i32 {
    let days = at.as_millis().div_euclid(86_400_000);
    // Civil-from-days (H. Hinnant), enough for the year and month.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    i32::try_from((year - 1970) * 12 + month - 1).unwrap_or(i32::MAX)
}

const DIRECTORY: &str = "ScyllaDB link directory";

#[derive(Debug)]
pub struct ScyllaDirectory {
    session: Arc<Session>,
    keyspace: String,
    checkpoints: Checkpoints,
    row: PreparedStatement,
    write_row: PreparedStatement,
    write_order: PreparedStatement,
    write_month: PreparedStatement,
    months: PreparedStatement,
    page_after: PreparedStatement,
    page: PreparedStatement,
}

impl ScyllaDirectory {
    pub(crate) async fn prepare(session: Arc<Session>, ks: &str) -> Result<Self, InfraError> {
        let prepare = async |cql: String| session.prepare(cql).await.map_err(infra(DIRECTORY));
        Ok(Self {
            checkpoints: Checkpoints::prepare(&session, ks, "directory", DIRECTORY).await?,
            row: prepare(format!("SELECT row FROM {ks}.directory_links WHERE code = ?")).await?,
            write_row: prepare(format!("UPDATE {ks}.directory_links USING TIMESTAMP ? SET row = ? WHERE code = ?"))
                .await?,
            write_order: prepare(format!("INSERT INTO {ks}.directory_order (scope, month, sort_key) VALUES (?, ?, ?)"))
                .await?,
            write_month: prepare(format!("INSERT INTO {ks}.directory_months (scope, month) VALUES (?, ?)")).await?,
            months: prepare(format!("SELECT month FROM {ks}.directory_months WHERE scope = ? AND month <= ?")).await?,
            page_after: prepare(format!(
                "SELECT sort_key FROM {ks}.directory_order WHERE scope = ? AND month = ? AND sort_key > ? LIMIT ?"
            ))
            .await?,
            page: prepare(format!("SELECT sort_key FROM {ks}.directory_order WHERE scope = ? AND month = ? LIMIT ?"))
                .await?,
            keyspace: ks.to_owned(),
            session,
        })
    }

    async fn stored_row(&self, code: &Code) -> Result<Option<LinkRow>, InfraError> {
        let result = self.session.execute_unpaged(&self.row, (code.as_str(),)).await.map_err(infra(DIRECTORY))?;
        let row = result
            .into_rows_result()
            .map_err(infra(DIRECTORY))?
            .maybe_first_row::<(Option<Vec<u8>>,)>()
            .map_err(infra(DIRECTORY))?;
        row.and_then(|(row,)| row).map(|row| decode_directory_row(&row).map_err(infra(DIRECTORY))).transpose()
    }

    async fn write(&self, row: &LinkRow) -> Result<(), InfraError> {
        let key = ListPosition::of(&row.link).sort_key();
        let month = month_of(row.link.created_at);
        // Order first, the row last: a batch cut short is folded again, since the row still holds
        // the offset before it.
        for scope in [row.link.owner.as_str(), ALL_OWNERS] {
            self.session.execute_unpaged(&self.write_month, (scope, month)).await.map_err(infra(DIRECTORY))?;
            self.session.execute_unpaged(&self.write_order, (scope, month, &key)).await.map_err(infra(DIRECTORY))?;
        }
        let values = (offset_value(row.last_offset) + 1, encode_directory_row(row), row.link.code.as_str());
        self.session.execute_unpaged(&self.write_row, values).await.map_err(infra(DIRECTORY)).map(drop)
    }
}

#[async_trait]
impl Projection for ScyllaDirectory {
    fn name(&self) -> &'static str {
        "directory"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.checkpoints.all(&self.session, partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        let batch = LinkEvents::of(records);
        if batch.is_empty() {
            return Ok(());
        }
        let Unapplied { events, moved } = self.checkpoints.unapplied(&self.session, batch).await?;
        let mut codes: Vec<Code> =
            events.iter().filter_map(|r| r.event.as_ref().ok().map(|e| e.code().clone())).collect();
        codes.sort_unstable();
        codes.dedup();
        let reads = codes.iter().map(|code| async move { Ok((code.clone(), self.stored_row(code).await?)) }).collect();
        let mut rows: HashMap<Code, Option<LinkRow>> = all(reads).await?.into_iter().collect();
        let folded =
            fold(&events, Folding::Commanded, |_| Ok::<_, InfraError>(0), |code| Ok(rows.remove(code).flatten()))?;
        all(folded.links.iter().map(|(_, row)| self.write(row)).collect()).await?;
        self.checkpoints.write(&self.session, moved).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        for table in ["directory_links", "directory_order", "directory_months"] {
            let truncate = format!("TRUNCATE {}.{table}", self.keyspace);
            self.session.query_unpaged(truncate, ()).await.map_err(infra(DIRECTORY))?;
        }
        self.checkpoints.clear(&self.session).await
    }
}

#[async_trait]
impl LinkDirectory for ScyllaDirectory {
    async fn scan(
        &self,
        owner: Option<&Owner>,
        after: Option<&ListPosition>,
        count: usize,
    ) -> Result<Vec<Link>, InfraError> {
        let scope = owner.map_or(ALL_OWNERS, Owner::as_str);
        let first_month = after.map_or(i32::MAX, |after| month_of(after.created_at));
        let pager =
            self.session.execute_iter(self.months.clone(), (scope, first_month)).await.map_err(infra(DIRECTORY))?;
        let months: Vec<(i32,)> =
            pager.rows_stream::<(i32,)>().map_err(infra(DIRECTORY))?.try_collect().await.map_err(infra(DIRECTORY))?;
        let after_key = after.map(ListPosition::sort_key);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for (month,) in months {
            let want = i32::try_from(count - keys.len()).unwrap_or(i32::MAX);
            let result = match &after_key {
                Some(after) if month == first_month => {
                    self.session.execute_unpaged(&self.page_after, (scope, month, after, want)).await
                }
                _ => self.session.execute_unpaged(&self.page, (scope, month, want)).await,
            };
            let rows = result.map_err(infra(DIRECTORY))?.into_rows_result().map_err(infra(DIRECTORY))?;
            for row in rows.rows::<(Vec<u8>,)>().map_err(infra(DIRECTORY))? {
                keys.push(row.map_err(infra(DIRECTORY))?.0);
            }
            if keys.len() >= count {
                break;
            }
        }
        let codes = keys
            .iter()
            .map(|key| ListPosition::from_sort_key(key).map(|position| position.code))
            .collect::<Option<Vec<Code>>>()
            .ok_or_else(|| InfraError::new(DIRECTORY, kurz_ports::rows::RowError::Damaged("directory order")))?;
        let rows = all(codes.iter().map(|code| self.stored_row(code)).collect()).await?;
        Ok(rows.into_iter().flatten().map(|row| row.link).collect())
    }
}

const HISTORY: &str = "ScyllaDB link history";

#[derive(Debug)]
pub struct ScyllaHistory {
    session: Arc<Session>,
    keyspace: String,
    checkpoints: Checkpoints,
    insert: PreparedStatement,
    events: PreparedStatement,
}

impl ScyllaHistory {
    pub(crate) async fn prepare(session: Arc<Session>, ks: &str) -> Result<Self, InfraError> {
        let prepare = async |cql: String| session.prepare(cql).await.map_err(infra(HISTORY));
        Ok(Self {
            checkpoints: Checkpoints::prepare(&session, ks, "history", HISTORY).await?,
            insert: prepare(format!("INSERT INTO {ks}.link_history (code, offset, event) VALUES (?, ?, ?)")).await?,
            events: prepare(format!(
                "SELECT offset, event FROM {ks}.link_history WHERE code = ? AND offset >= ? LIMIT ?"
            ))
            .await?,
            keyspace: ks.to_owned(),
            session,
        })
    }
}

#[async_trait]
impl Projection for ScyllaHistory {
    fn name(&self) -> &'static str {
        "history"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.checkpoints.all(&self.session, partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        let batch = LinkEvents::of(records);
        if batch.is_empty() {
            return Ok(());
        }
        let Unapplied { events, moved } = self.checkpoints.unapplied(&self.session, batch).await?;
        let inserts = events
            .iter()
            .filter_map(|record| {
                let event = record.event.as_ref().ok()?;
                let values = (event.code().as_str(), offset_value(record.position.offset), encode_history_event(event));
                Some(async move {
                    self.session.execute_unpaged(&self.insert, values).await.map_err(infra(HISTORY)).map(drop)
                })
            })
            .collect();
        all(inserts).await?;
        self.checkpoints.write(&self.session, moved).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        let truncate = format!("TRUNCATE {}.link_history", self.keyspace);
        self.session.query_unpaged(truncate, ()).await.map_err(infra(HISTORY))?;
        self.checkpoints.clear(&self.session).await
    }
}

#[async_trait]
impl LinkHistory for ScyllaHistory {
    async fn events(&self, code: &Code, from: u64, count: usize) -> Result<Vec<(u64, Event)>, InfraError> {
        let values = (code.as_str(), offset_value(from), i32::try_from(count).unwrap_or(i32::MAX));
        let result = self.session.execute_unpaged(&self.events, values).await.map_err(infra(HISTORY))?;
        let rows = result.into_rows_result().map_err(infra(HISTORY))?;
        rows.rows::<(i64, Vec<u8>)>()
            .map_err(infra(HISTORY))?
            .map(|row| {
                let (offset, event) = row.map_err(infra(HISTORY))?;
                let event = decode_history_event(&event).map_err(infra(HISTORY))?;
                Ok((u64::try_from(offset).unwrap_or(0), event))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_count_from_1970() {
        assert_eq!(month_of(Timestamp::from_millis(0)), 0);
        // 2026-01-01T00:00:00Z and the instant before it.
        assert_eq!(month_of(Timestamp::from_millis(1_767_225_600_000)), 56 * 12);
        assert_eq!(month_of(Timestamp::from_millis(1_767_225_599_999)), 56 * 12 - 1);
        // 2024-02-29 (a leap day) is in February.
        assert_eq!(month_of(Timestamp::from_millis(1_709_164_800_000)), 54 * 12 + 1);
    }
}

//! Write-side uniqueness on ScyllaDB: a code is claimed by a conditional insert (one winner across
//! every command-api instance, durable once answered), and blocks of code sequences are leased by a
//! compare-and-set on one row, one round trip per block rather than per create.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::Code;
use kurz_ports::{CodeRegistry, InfraError};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use crate::store::{infra, was_applied};

const SEQUENCE: &str = "codes";

#[derive(Debug)]
pub struct ScyllaCodeRegistry {
    session: Arc<Session>,
    claim: PreparedStatement,
    release: PreparedStatement,
    read_sequence: PreparedStatement,
    start_sequence: PreparedStatement,
    move_sequence: PreparedStatement,
}

impl ScyllaCodeRegistry {
    pub(crate) async fn prepare(session: Arc<Session>, keyspace: &str) -> Result<Self, InfraError> {
        let ks = keyspace;
        let prepare = async |cql: String| session.prepare(cql).await.map_err(infra);
        Ok(Self {
            claim: prepare(format!("INSERT INTO {ks}.code_claims (code) VALUES (?) IF NOT EXISTS")).await?,
            release: prepare(format!("DELETE FROM {ks}.code_claims WHERE code = ? IF EXISTS")).await?,
            read_sequence: prepare(format!("SELECT next FROM {ks}.code_sequences WHERE name = ?")).await?,
            start_sequence: prepare(format!(
                "INSERT INTO {ks}.code_sequences (name, next) VALUES (?, ?) IF NOT EXISTS"
            ))
            .await?,
            move_sequence: prepare(format!("UPDATE {ks}.code_sequences SET next = ? WHERE name = ? IF next = ?"))
                .await?,
            session,
        })
    }
}

#[async_trait]
impl CodeRegistry for ScyllaCodeRegistry {
    async fn claim(&self, code: &Code) -> Result<bool, InfraError> {
        was_applied(self.session.execute_unpaged(&self.claim, (code.as_str(),)).await.map_err(infra)?)
    }

    async fn release(&self, code: &Code) -> Result<(), InfraError> {
        self.session.execute_unpaged(&self.release, (code.as_str(),)).await.map_err(infra).map(drop)
    }

    async fn lease_sequences(&self, count: u64) -> Result<Range<u64>, InfraError> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        loop {
            let read = self.session.execute_unpaged(&self.read_sequence, (SEQUENCE,)).await.map_err(infra)?;
            let next = read.into_rows_result().map_err(infra)?.maybe_first_row::<(Option<i64>,)>().map_err(infra)?;
            let leased = match next.and_then(|(next,)| next) {
                None => {
                    let started = self.session.execute_unpaged(&self.start_sequence, (SEQUENCE, count)).await;
                    was_applied(started.map_err(infra)?)?.then_some(0..count)
                }
                Some(from) => {
                    let to = from.saturating_add(count);
                    let moved = self.session.execute_unpaged(&self.move_sequence, (to, SEQUENCE, from)).await;
                    was_applied(moved.map_err(infra)?)?.then_some(from..to)
                }
            };
            // Another instance leased first: read the row again.
            if let Some(range) = leased {
                let start = u64::try_from(range.start).unwrap_or(0);
                let end = u64::try_from(range.end).unwrap_or(0);
                return Ok(start..end);
            }
        }
    }
}

//! Link histories in Redis: `history_events:{code}` is a sorted set scored by log offset, whose
//! members are the offset (8 bytes, big-endian, so each is unique) and the event
//! (`kurz_ports::rows::encode_history_event`). `history_checkpoints` holds the checkpoints.

use async_trait::async_trait;
use kurz_domain::{Code, Event};
use kurz_ports::rows::{RowError, decode_history_event, encode_history_event};
use kurz_ports::{InfraError, LinkHistory, LogRecord, Projection};

use crate::connection::{RedisConnection, redis_error};
use crate::projection_write::{CheckpointedWriter, Writes};

const CONTEXT: &str = "Redis link history";

#[derive(Debug, Clone)]
pub struct RedisHistory {
    writer: CheckpointedWriter,
}

impl RedisHistory {
    pub fn new(redis: RedisConnection) -> Self {
        Self { writer: CheckpointedWriter::new(redis, "history", CONTEXT) }
    }

    fn writes(&self, events: Vec<LogRecord>) -> Writes {
        let mut writes = Writes::default();
        for record in events {
            if let Ok(event) = &record.event {
                let offset = record.position.offset;
                let member = [offset.to_be_bytes().as_slice(), &encode_history_event(event)].concat();
                writes.zadd(self.writer.key("events", Some(event.code().as_str())), offset, member);
            }
        }
        writes
    }
}

#[async_trait]
impl Projection for RedisHistory {
    fn name(&self) -> &'static str {
        "history"
    }

    async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        self.writer.checkpoints(partitions).await
    }

    async fn apply(&self, records: &[LogRecord]) -> Result<(), InfraError> {
        self.writer.apply(records, |events| std::future::ready(Ok(self.writes(events)))).await
    }

    async fn clear(&self) -> Result<(), InfraError> {
        self.writer.clear().await
    }
}

#[async_trait]
impl LinkHistory for RedisHistory {
    async fn events(&self, code: &Code, from: u64, count: usize) -> Result<Vec<(u64, Event)>, InfraError> {
        let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(self.writer.key("events", Some(code.as_str())))
            .arg(from)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(count)
            .query_async(&mut self.writer.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        members
            .iter()
            .map(|member| {
                let (offset, row) = member.split_first_chunk::<8>().ok_or(RowError::Damaged("history"))?;
                Ok((u64::from_be_bytes(*offset), decode_history_event(row)?))
            })
            .collect::<Result<_, RowError>>()
            .map_err(|e| InfraError::new(CONTEXT, e))
    }
}

//! What the Redis projections (directory, histories) share: checkpoints in a hash per
//! projection, and one script that writes a batch's rows only if those checkpoints are still what
//! the batch was folded against, moving them in the same step.

use std::collections::HashMap;

use kurz_ports::{InfraError, LinkEvents, LogRecord, Unapplied};
use redis::Script;

use crate::connection::{RedisConnection, redis_error};

/// KEYS: the checkpoints hash, then every key written.
/// ARGV: partition count P, P × (partition, expected, next), then writes as (op, key index, a, b):
/// `h` is HSET key a b, `z` is ZADD key a b.
const WRITE: &str = r"
local argv = 2
for i = 1, tonumber(ARGV[1]) do
  local current = redis.call('HGET', KEYS[1], ARGV[argv]) or '0'
  if current ~= ARGV[argv + 1] then return 0 end
  argv = argv + 3
end
local writes = argv
argv = 2
for i = 1, tonumber(ARGV[1]) do
  redis.call('HSET', KEYS[1], ARGV[argv], ARGV[argv + 2])
  argv = argv + 3
end
argv = writes
while argv <= #ARGV do
  local key = KEYS[tonumber(ARGV[argv + 1])]
  if ARGV[argv] == 'h' then
    redis.call('HSET', key, ARGV[argv + 2], ARGV[argv + 3])
  else
    redis.call('ZADD', key, ARGV[argv + 2], ARGV[argv + 3])
  end
  argv = argv + 4
end
return 1
";

/// One projection's checkpoints and writes.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointedWriter {
    pub(crate) redis: RedisConnection,
    /// The projection's name: its keys are `<name>…`.
    name: &'static str,
    context: &'static str,
    script: Script,
}

/// The writes of one batch.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    keys: Vec<String>,
    key_index: HashMap<String, usize>,
    args: Vec<(&'static str, usize, Vec<u8>, Vec<u8>)>,
}

impl Writes {
    fn index(&mut self, key: String) -> usize {
        if let Some(index) = self.key_index.get(&key) {
            return *index;
        }
        self.keys.push(key.clone());
        // KEYS[1] is the checkpoints hash.
        let index = self.keys.len() + 1;
        self.key_index.insert(key, index);
        index
    }

    pub(crate) fn hset(&mut self, key: String, field: impl Into<Vec<u8>>, value: Vec<u8>) {
        let index = self.index(key);
        self.args.push(("h", index, field.into(), value));
    }

    pub(crate) fn zadd(&mut self, key: String, score: u64, member: Vec<u8>) {
        let index = self.index(key);
        self.args.push(("z", index, score.to_string().into_bytes(), member));
    }
}

impl CheckpointedWriter {
    pub(crate) fn new(redis: RedisConnection, name: &'static str, context: &'static str) -> Self {
        Self { redis, name, context, script: Script::new(WRITE) }
    }

    /// A key of this projection: `<prefix><name>_<kind>` or with an id `…:<id>`.
    pub(crate) fn key(&self, kind: &str, id: Option<&str>) -> String {
        self.redis.key(&format!("{}_{kind}", self.name), id)
    }

    fn checkpoints_key(&self) -> String {
        self.key("checkpoints", None)
    }

    pub(crate) async fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>, InfraError> {
        let all: Vec<u32> = (0..partitions).collect();
        self.load(&all).await
    }

    async fn load(&self, partitions: &[u32]) -> Result<Vec<u64>, InfraError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(self.checkpoints_key())
            .arg(partitions)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(self.context))?;
        Ok(stored.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Applies a batch: `fold` turns the link events not applied yet into writes, which land with
    /// the moved checkpoints unless another writer moved them first (then it folds again).
    pub(crate) async fn apply<F>(
        &self,
        records: &[LogRecord],
        fold: impl Fn(Vec<LogRecord>) -> F,
    ) -> Result<(), InfraError>
    where
        F: Future<Output = Result<Writes, InfraError>>,
    {
        let batch = LinkEvents::of(records);
        if batch.is_empty() {
            return Ok(());
        }
        let partitions: Vec<u32> = batch.partitions().collect();
        kurz_ports::fold::until_not_overtaken("a checkpoint", || async {
            let stored: HashMap<u32, u64> = partitions.iter().copied().zip(self.load(&partitions).await?).collect();
            let Unapplied { events, moved } =
                batch.clone().unapplied(|partition| Ok::<_, InfraError>(stored[&partition]))?;
            if moved.is_empty() {
                return Ok(Some(()));
            }
            let writes = fold(events).await?;
            let mut invocation = self.script.key(self.checkpoints_key());
            invocation.arg(moved.len());
            for (partition, next) in &moved {
                invocation.arg(partition).arg(stored[partition]).arg(next);
            }
            for key in &writes.keys {
                invocation.key(key);
            }
            for (op, key, a, b) in &writes.args {
                invocation.arg(*op).arg(key).arg(a.as_slice()).arg(b.as_slice());
            }
            let applied: i64 =
                invocation.invoke_async(&mut self.redis.manager()).await.map_err(redis_error(self.context))?;
            Ok((applied == 1).then_some(()))
        })
        .await
    }

    /// Deletes every key of this projection.
    pub(crate) async fn clear(&self) -> Result<(), InfraError> {
        let mut connection = self.redis.manager();
        let pattern = self.redis.key(&format!("{}_*", self.name), None);
        let keys: Vec<String> = {
            let mut iter: redis::AsyncIter<'_, String> =
                redis::AsyncCommands::scan_match(&mut connection, &pattern).await.map_err(redis_error(self.context))?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.map_err(redis_error(self.context))?);
            }
            keys
        };
        for chunk in keys.chunks(1000) {
            let () =
                redis::cmd("DEL").arg(chunk).query_async(&mut connection).await.map_err(redis_error(self.context))?;
        }
        Ok(())
    }
}

//! API keys in one Redis hash (`api-keys`: key id → versioned row), shared by every instance.

use async_trait::async_trait;
use kurz_domain::{KeyId, Timestamp};
use kurz_ports::rows::{decode_key, encode_key};
use kurz_ports::{ApiKeyStore, InfraError, StoredKey};
use redis::Script;

use crate::connection::{RedisConnection, redis_error};

const CONTEXT: &str = "Redis key store";

/// Replaces a key's row only if it is still the row the caller read.
const COMPARE_AND_SET: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
";

#[derive(Debug, Clone)]
pub struct RedisKeyStore {
    redis: RedisConnection,
    compare_and_set: Script,
}

impl RedisKeyStore {
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis, compare_and_set: Script::new(COMPARE_AND_SET) }
    }

    fn hash(&self) -> String {
        self.redis.key("api-keys", None)
    }

    async fn row(&self, id: &KeyId) -> Result<Option<Vec<u8>>, InfraError> {
        redis::cmd("HGET")
            .arg(self.hash())
            .arg(id.as_str())
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))
    }
}

fn bad_row(error: kurz_ports::rows::RowError) -> InfraError {
    InfraError::new(CONTEXT, error)
}

#[async_trait]
impl ApiKeyStore for RedisKeyStore {
    async fn insert(&self, key: &StoredKey) -> Result<bool, InfraError> {
        redis::cmd("HSETNX")
            .arg(self.hash())
            .arg(key.id.as_str())
            .arg(encode_key(key))
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))
    }

    async fn get(&self, id: &KeyId) -> Result<Option<StoredKey>, InfraError> {
        self.row(id).await?.map(|row| decode_key(&row)).transpose().map_err(bad_row)
    }

    async fn list(&self) -> Result<Vec<StoredKey>, InfraError> {
        let rows: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(self.hash())
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        let mut keys = rows.iter().map(|(_, row)| decode_key(row)).collect::<Result<Vec<_>, _>>().map_err(bad_row)?;
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    async fn revoke(&self, id: &KeyId, at: Timestamp) -> Result<Option<StoredKey>, InfraError> {
        loop {
            let Some(row) = self.row(id).await? else { return Ok(None) };
            let mut key = decode_key(&row).map_err(bad_row)?;
            if key.revoked_at.is_some() {
                return Ok(Some(key));
            }
            key.revoked_at = Some(at);
            let mut invocation = self.compare_and_set.key(self.hash());
            invocation.arg(id.as_str()).arg(row).arg(encode_key(&key));
            let replaced: i64 =
                invocation.invoke_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
            if replaced == 1 {
                return Ok(Some(key));
            }
        }
    }
}

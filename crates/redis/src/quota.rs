use async_trait::async_trait;
use kurz_domain::Code;
use kurz_domain::link::MaxClicks;
use kurz_ports::{ClickQuota, InfraError};
use redis::Script;

use crate::connection::{RedisConnection, redis_error};

/// Takes clicks with one atomic script per redirect: exact however many query-api instances race.
/// Durable as the Redis server is configured (`appendfsync always` for exactness across a crash).
#[derive(Debug, Clone)]
pub struct RedisClickQuota {
    redis: RedisConnection,
    take: Script,
}

impl RedisClickQuota {
    pub fn new(redis: RedisConnection) -> Self {
        let take = Script::new(
            r"local taken = tonumber(redis.call('GET', KEYS[1]) or '0')
              if taken >= tonumber(ARGV[1]) then return 0 end
              redis.call('INCR', KEYS[1])
              return 1",
        );
        Self { redis, take }
    }
}

#[async_trait]
impl ClickQuota for RedisClickQuota {
    async fn take(&self, code: &Code, max_clicks: MaxClicks) -> Result<bool, InfraError> {
        let taken: i64 = self
            .take
            .key(self.redis.key("quota", Some(code.as_str())))
            .arg(max_clicks.get())
            .invoke_async(&mut self.redis.manager())
            .await
            .map_err(redis_error("taking a click in Redis"))?;
        Ok(taken == 1)
    }
}

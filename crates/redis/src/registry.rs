use std::ops::Range;

use async_trait::async_trait;
use kurz_domain::Code;
use kurz_ports::{CodeRegistry, InfraError};

use crate::connection::{RedisConnection, redis_error};

/// Alias claims (`SET NX`: one winner across every command-api instance) and leased blocks of code
/// sequence numbers (`INCRBY`: one round trip per block, not per create).
#[derive(Debug, Clone)]
pub struct RedisCodeRegistry {
    redis: RedisConnection,
}

impl RedisCodeRegistry {
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl CodeRegistry for RedisCodeRegistry {
    async fn claim(&self, code: &Code) -> Result<bool, InfraError> {
        let claimed: Option<String> = redis::cmd("SET")
            .arg(self.redis.key("claim", Some(code.as_str())))
            .arg(1)
            .arg("NX")
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error("claiming a code in Redis"))?;
        Ok(claimed.is_some())
    }

    async fn release(&self, code: &Code) -> Result<(), InfraError> {
        redis::cmd("DEL")
            .arg(self.redis.key("claim", Some(code.as_str())))
            .query_async::<()>(&mut self.redis.manager())
            .await
            .map_err(redis_error("releasing a code in Redis"))
    }

    async fn lease_sequences(&self, count: u64) -> Result<Range<u64>, InfraError> {
        let end: u64 = redis::cmd("INCRBY")
            .arg(self.redis.key("sequence", None))
            .arg(count)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error("leasing code sequences in Redis"))?;
        Ok(end - count..end)
    }
}

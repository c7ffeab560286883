//! Idempotency keys as Redis strings (`idempotency:<key>` → versioned row) that Redis expires
//! itself. The services' Redis keeps writes (`appendfsync always`), so a reservation survives a
//! restart of Redis as it does one of Kurz.

use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::Timestamp;
use kurz_ports::rows::{decode_reservation, encode_reservation};
use kurz_ports::{IdempotencyStore, InfraError, Reservation};
use redis::Script;

use crate::connection::{RedisConnection, redis_error};

const CONTEXT: &str = "Redis idempotency store";

/// Deletes the key only if it still holds the caller's row.
const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

#[derive(Debug, Clone)]
pub struct RedisIdempotency {
    redis: RedisConnection,
    compare_and_delete: Script,
}

impl RedisIdempotency {
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis, compare_and_delete: Script::new(COMPARE_AND_DELETE) }
    }
}

/// Rows carry no expiry of their own here: Redis drops them.
const NO_EXPIRY: Timestamp = Timestamp::from_millis(0);

#[async_trait]
impl IdempotencyStore for RedisIdempotency {
    async fn reserve(
        &self,
        key: &str,
        reservation: &Reservation,
        _now: Timestamp,
        ttl: Duration,
    ) -> Result<Option<Reservation>, InfraError> {
        let name = self.redis.key("idempotency", Some(key));
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        // SET NX GET: sets unless the key exists, and answers what was there, in one step.
        let held: Option<Vec<u8>> = redis::cmd("SET")
            .arg(&name)
            .arg(encode_reservation(reservation, NO_EXPIRY))
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(millis)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        held.map(|row| decode_reservation(&row).map(|(held, _)| held).map_err(|e| InfraError::new(CONTEXT, e)))
            .transpose()
    }

    async fn held(&self, key: &str, _now: Timestamp) -> Result<Option<Reservation>, InfraError> {
        let name = self.redis.key("idempotency", Some(key));
        let held: Option<Vec<u8>> =
            redis::cmd("GET").arg(&name).query_async(&mut self.redis.manager()).await.map_err(redis_error(CONTEXT))?;
        held.map(|row| decode_reservation(&row).map(|(held, _)| held).map_err(|e| InfraError::new(CONTEXT, e)))
            .transpose()
    }

    async fn release(&self, key: &str, reservation: &Reservation) -> Result<(), InfraError> {
        let name = self.redis.key("idempotency", Some(key));
        let _: i64 = self
            .compare_and_delete
            .key(name)
            .arg(encode_reservation(reservation, NO_EXPIRY))
            .invoke_async(&mut self.redis.manager())
            .await
            .map_err(redis_error(CONTEXT))?;
        Ok(())
    }
}

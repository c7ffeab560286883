use kurz_ports::InfraError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Put in front of every key, so deployments (and tests) can share a Redis.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: "redis://127.0.0.1:6379".into(), key_prefix: "kurz:".into() }
    }
}

/// One multiplexed connection that reconnects by itself, shared by every adapter of a process.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    prefix: std::sync::Arc<str>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

pub(crate) fn redis_error(context: &'static str) -> impl Fn(redis::RedisError) -> InfraError {
    move |error| InfraError::new(context, error)
}

impl RedisConnection {
    pub async fn connect(config: &RedisConfig) -> Result<Self, InfraError> {
        let client = redis::Client::open(config.url.as_str()).map_err(redis_error("Redis address"))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_number_of_retries(2);
        let manager =
            client.get_connection_manager_with_config(settings).await.map_err(redis_error("connecting to Redis"))?;
        Ok(Self { manager, prefix: config.key_prefix.as_str().into() })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// `<prefix><kind>` or, with an id, `<prefix><kind>:<id>`.
    pub(crate) fn key(&self, kind: &str, id: Option<&str>) -> String {
        match id {
            Some(id) => format!("{}{kind}:{id}", self.prefix),
            None => format!("{}{kind}", self.prefix),
        }
    }
}

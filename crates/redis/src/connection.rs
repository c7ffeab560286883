use std::path::PathBuf;

use kurz_ports::InfraError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, TlsCertificates};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS.
    pub url: String,
    /// Put in front of every key, so deployments (and tests) can share a Redis.
    pub key_prefix: String,
    /// With `rediss://`: the CA certificate (PEM) that signed the server's, when the system's
    /// trusted roots do not hold it.
    pub tls_ca_file: Option<PathBuf>,
    /// With `rediss://`: a client certificate and its key (PEM), for a Redis that asks for one
    /// (`tls-auth-clients yes`, Redis's default).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "kurz:".into(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl RedisConfig {
    fn client(&self) -> Result<redis::Client, InfraError> {
        let tls_files = [&self.tls_ca_file, &self.tls_cert_file, &self.tls_key_file];
        if tls_files.iter().all(|file| file.is_none()) {
            return redis::Client::open(self.url.as_str()).map_err(redis_error("Redis address"));
        }
        if !self.url.starts_with("rediss://") {
            return Err(InfraError::new(
                "Redis TLS settings",
                "redis.tls_* files are set, but redis.url does not start with rediss://",
            ));
        }
        let read = |file: &PathBuf| {
            std::fs::read(file)
                .map_err(|error| InfraError::new("reading a Redis TLS file", NamedFile { path: file.clone(), error }))
        };
        let client_tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig { client_cert: read(cert)?, client_key: read(key)? }),
            (None, None) => None,
            _ => {
                return Err(InfraError::new(
                    "Redis TLS settings",
                    "redis.tls_cert_file and redis.tls_key_file go together",
                ));
            }
        };
        let root_cert = self.tls_ca_file.as_ref().map(read).transpose()?;
        redis::Client::build_with_tls(self.url.as_str(), TlsCertificates { client_tls, root_cert })
            .map_err(redis_error("Redis TLS settings"))
    }
}

/// An I/O error with the file it is about.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
struct NamedFile {
    path: PathBuf,
    #[source]
    error: std::io::Error,
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
        let client = config.client()?;
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

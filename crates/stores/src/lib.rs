//! The read store of a distributed deployment, chosen by configuration: Redis (one primary; the
//! default, and what the tests here run on) or ScyllaDB (the read models at scale).

use std::sync::Arc;

use kurz_domain::analytics::BotRules;
use kurz_ports::{CodeRegistry, InfraError, LinkDirectory, LinkHistory, Projection, ReadStore};
use kurz_redis::{RedisCodeRegistry, RedisConfig, RedisConnection, RedisDirectory, RedisHistory, RedisReadStore};
use kurz_scylla::{ScyllaConfig, ScyllaReadStore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Redis,
    Scylla,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadStoreConfig {
    pub kind: StoreKind,
    /// With `kind = "redis"`: where the read models live; unset, the service's own Redis.
    pub redis: Option<RedisConfig>,
    /// With `kind = "scylla"`.
    pub scylla: ScyllaConfig,
}

/// The opened read models: the read store, the link directory and link histories, on one backend.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    backend: Backend,
    pub directory: Arc<dyn LinkDirectory>,
    pub history: Arc<dyn LinkHistory>,
}

#[derive(Debug, Clone)]
enum Backend {
    Redis(Arc<RedisReadStore>),
    Scylla(Arc<ScyllaReadStore>),
}

impl OpenedStore {
    /// Opens the configured store; `service_redis` is the service's own Redis, the read store's
    /// when no other is configured.
    /// `bots`: the operator's bot markers, for a store that folds clicks (the projector's).
    pub async fn open(
        config: &ReadStoreConfig,
        service_redis: &RedisConfig,
        bots: Arc<BotRules>,
    ) -> Result<Self, InfraError> {
        Ok(match config.kind {
            StoreKind::Redis => {
                let redis = RedisConnection::connect(config.redis.as_ref().unwrap_or(service_redis)).await?;
                Self {
                    directory: Arc::new(RedisDirectory::new(redis.clone())),
                    history: Arc::new(RedisHistory::new(redis.clone())),
                    backend: Backend::Redis(Arc::new(RedisReadStore::new(redis).with_bot_rules(bots))),
                }
            }
            StoreKind::Scylla => {
                let store = ScyllaReadStore::connect(&config.scylla).await?.with_bot_rules(bots);
                Self {
                    directory: Arc::new(store.directory().await?),
                    history: Arc::new(store.history().await?),
                    backend: Backend::Scylla(Arc::new(store)),
                }
            }
        })
    }

    pub fn store(&self) -> Arc<dyn ReadStore> {
        match &self.backend {
            Backend::Redis(store) => Arc::clone(store) as Arc<dyn ReadStore>,
            Backend::Scylla(store) => Arc::clone(store) as Arc<dyn ReadStore>,
        }
    }

    /// The read models besides the read store, each folded with its own checkpoints.
    pub fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![self.directory.clone(), self.history.clone()]
    }

    /// Where alias claims and code leases live: with ScyllaDB, there (conditional writes, durable
    /// once answered); with a Redis read store, in the service's Redis.
    pub async fn code_registry(&self, service_redis: RedisConnection) -> Result<Arc<dyn CodeRegistry>, InfraError> {
        Ok(match &self.backend {
            Backend::Redis(_) => Arc::new(RedisCodeRegistry::new(service_redis)),
            Backend::Scylla(store) => Arc::new(store.code_registry().await?),
        })
    }

    /// Deletes every read model, for a rebuild from offset 0.
    /// The layout of the stored rows when this build cannot read them: the read models must be
    /// cleared and folded again.
    pub async fn stale_layout(&self) -> Result<Option<u32>, InfraError> {
        match &self.backend {
            Backend::Redis(store) => store.stale_layout().await,
            Backend::Scylla(store) => store.stale_layout().await,
        }
    }

    pub async fn clear(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Redis(store) => store.clear().await.map(drop)?,
            Backend::Scylla(store) => store.clear().await?,
        }
        for projection in self.projections() {
            projection.clear().await?;
        }
        Ok(())
    }
}

/// The API keys of a distributed deployment: in the services' Redis, plus the bootstrap admin key
/// from `auth.bootstrap_key_file` when one is configured.
pub fn api_keys(
    config: &kurz_service_kit::auth::AuthConfig,
    redis: RedisConnection,
) -> anyhow::Result<kurz_service_kit::auth::Keys> {
    let bootstrap = config.bootstrap_key_file.as_deref().map(|path| kurz_service_kit::auth::bootstrap_key(path, false));
    if bootstrap.is_none() {
        tracing::warn!("no auth.bootstrap_key_file: only keys already in Redis can call the API");
    }
    let bootstrap = bootstrap.transpose()?;
    Ok(kurz_service_kit::auth::Keys::new(Arc::new(kurz_redis::RedisKeyStore::new(redis)), bootstrap, config))
}

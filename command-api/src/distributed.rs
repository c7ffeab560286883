//! The command API as a service of its own: events to Kafka, link rows, alias claims and code
//! leases in Redis, link changes announced to every query-api instance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kurz_domain::{CodeGenerator, CodeKey};
use kurz_kafka::{KafkaConfig, KafkaEventLog};
use kurz_ports::ClaimThenAppend;
use kurz_redis::{
    CachedReadStore, LinkCacheOptions, LinkChangePublisher, RedisConfig, RedisConnection, RedisIdempotency,
};
use kurz_service_kit::auth::AuthConfig;
use kurz_service_kit::config::{CodesConfig, HttpConfig, LogConfig};
use kurz_service_kit::gate::ApiGate;
use kurz_service_kit::limits::{Limits, LimitsConfig};
use kurz_service_kit::ops;
use kurz_service_kit::server::Serving;
use kurz_service_kit::targets::{TargetRules, TargetsConfig};
use kurz_service_kit::{Clock, secrets};
use kurz_stores::{OpenedStore, ReadStoreConfig};
use kurz_web_ui::UiConfig;
use kurz_web_ui::upstream::Upstream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{CodeAllocator, CommandService, CommandServiceParts, RoutesConfig, routes};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub log: LogConfig,
    pub kafka: KafkaConfig,
    /// Alias claims, code leases, the link cache and its change announcements.
    pub redis: RedisConfig,
    /// Where the read models live (Redis by default, or ScyllaDB).
    pub read_store: ReadStoreConfig,
    /// The deployment's shared secrets (32 bytes; the same file for every instance).
    pub secret_key_file: PathBuf,
    pub codes: CodesConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub targets: TargetsConfig,
    /// The web UI, served here when `ui.query_api_url` says where its reads go.
    pub ui: UiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            log: LogConfig::default(),
            kafka: KafkaConfig::default(),
            redis: RedisConfig::default(),
            read_store: ReadStoreConfig::default(),
            secret_key_file: PathBuf::from("secret.key"),
            codes: CodesConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            targets: TargetsConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// A built, bound, not yet running command API.
#[derive(Debug)]
pub struct Application {
    serving: Serving,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        kurz_service_kit::telemetry::metrics();
        let secrets = secrets::load(&config.secret_key_file)?;
        let log = Arc::new(KafkaEventLog::connect(&config.kafka).await.context("connecting to Kafka")?);
        let redis = RedisConnection::connect(&config.redis).await.context("connecting to Redis")?;
        // The command side folds only link events: no bot markers for its store.
        let opened = OpenedStore::open(&config.read_store, &config.redis, Arc::default())
            .await
            .context("opening the read store")?;
        // Writes go through the cache too: a changed link leaves the Redis cache before the answer.
        let store = Arc::new(CachedReadStore::new(redis.clone(), opened.store(), LinkCacheOptions::default()));
        let registry = opened.code_registry(redis.clone()).await.context("opening the code registry")?;
        let keys = Arc::new(kurz_stores::api_keys(&config.auth, redis.clone())?);
        let listeners = config.http.bind_all().await?;
        let public_base_url = config.http.base_url(listeners.local_addr());
        let targets = TargetRules::load(&config.targets, &public_base_url)?;
        let limits = Limits::new(&config.limits);
        let commands = Arc::new(CommandService::new(CommandServiceParts {
            log: log.clone(),
            store: store.clone(),
            creations: Arc::new(ClaimThenAppend { registry: registry.clone(), log: log.clone() }),
            codes: CodeAllocator::new(
                CodeGenerator::new(CodeKey::new(secrets.code_key)),
                registry,
                config.codes.lease_block,
            ),
            clock: Clock::system(),
            listeners: vec![Arc::new(LinkChangePublisher::start(redis.clone()))],
            targets: targets.clone(),
            idempotency: Arc::new(RedisIdempotency::new(redis)),
        }));

        let gate = ApiGate {
            keys: keys.clone(),
            limits: limits.clone(),
            trust_forwarded_for: config.http.trust_forwarded_for,
        };
        let (commands, doc) =
            routes(commands, keys, RoutesConfig { public_base_url: public_base_url.clone(), limits: limits.clone() });
        let api = gate.guard(commands);
        let api = match (&config.ui.query_api_url, config.ui.enabled) {
            (Some(query_api), true) => {
                // Writes in-process, with each person's key; reads from the query API.
                let upstream = Upstream::split(api.clone(), query_api).context("the web UI's client")?;
                let ui = kurz_web_ui::routes(&config.ui, upstream, &public_base_url, config.http.trust_forwarded_for);
                api.merge(ui)
            }
            (None, true) => {
                tracing::info!("no web UI: set ui.query_api_url to the query API's URL to serve it here");
                api
            }
            (_, false) => api,
        };
        let routers = ops::service(
            axum::Router::new(),
            api,
            Some(doc),
            vec![("event_log", ops::event_log_ready(log)), ("read_store", ops::read_store_ready(store))],
            &config.http,
        );
        // Targets are checked on writes only: no cached answer depends on the blocklist here.
        let targets = Some((targets, Vec::new()));
        Ok(Self { serving: Serving { listeners, routers, http: config.http, limits: Some(limits), targets } })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.serving.admin_addr()
    }

    /// Serves until `stop`, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), admin = ?self.admin_addr(), "command-api is serving");
        self.serving.run(stop).await.context("http server")?;
        tracing::info!("command-api stopped");
        Ok(())
    }
}

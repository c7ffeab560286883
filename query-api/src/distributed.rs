//! The query API as a service of its own: links and stats from Redis behind the in-process cache,
//! kept fresh by link-change announcements; click quotas in Redis; clicks appended to Kafka.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kurz_kafka::{KafkaConfig, KafkaEventLog};
use kurz_ports::LinkChangeListener;
use kurz_redis::{
    CachedReadStore, LinkCacheOptions, RedisClickQuota, RedisConfig, RedisConnection, RedisOrphanVisits,
    follow_link_changes,
};
use kurz_service_kit::auth::AuthConfig;
use kurz_service_kit::config::{AnalyticsConfig, CacheConfig, ClicksConfig, GeoConfig, HttpConfig, LogConfig};
use kurz_service_kit::gate::ApiGate;
use kurz_service_kit::limits::{Limits, LimitsConfig};
use kurz_service_kit::ops;
use kurz_service_kit::server::Serving;
use kurz_service_kit::targets::{OnChange, TargetRules, TargetsConfig};
use kurz_service_kit::{Clock, secrets};
use kurz_stores::{OpenedStore, ReadStoreConfig};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Catalogue, ClickDetailer, ClickRecorder, ClickRecorderOptions, ClickSpool, LinkCache, OrphanVisits,
    RedirectService, RedirectServiceParts, RoutesConfig, VisitorKey, routes,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub log: LogConfig,
    pub kafka: KafkaConfig,
    /// The shared link cache, click quotas and the link-change channel.
    pub redis: RedisConfig,
    /// Where the read models live (Redis by default, or ScyllaDB).
    pub read_store: ReadStoreConfig,
    /// The deployment's shared secrets (32 bytes; the same file for every instance).
    pub secret_key_file: PathBuf,
    pub cache: CacheConfig,
    pub clicks: ClicksConfig,
    pub geo: GeoConfig,
    pub analytics: AnalyticsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub targets: TargetsConfig,
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
            cache: CacheConfig::default(),
            clicks: ClicksConfig::default(),
            geo: GeoConfig::default(),
            analytics: AnalyticsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            targets: TargetsConfig::default(),
        }
    }
}

/// A built, bound, not yet running query API.
/// How long startup waits to follow link changes before serving anyway.
const FIRST_SUBSCRIPTION: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Application {
    serving: Serving,
    clicks: ClickRecorder,
    clicks_task: JoinHandle<()>,
    orphans_task: JoinHandle<()>,
    background_stop: CancellationToken,
    changes_task: JoinHandle<()>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        kurz_service_kit::telemetry::metrics();
        let secrets = secrets::load(&config.secret_key_file)?;
        let log = Arc::new(KafkaEventLog::connect(&config.kafka).await.context("connecting to Kafka")?);
        let redis = RedisConnection::connect(&config.redis).await.context("connecting to Redis")?;
        // The query side folds no clicks: no bot markers for its store.
        let opened = OpenedStore::open(&config.read_store, &config.redis, Arc::default())
            .await
            .context("opening the read store")?;
        let store = Arc::new(CachedReadStore::new(redis.clone(), opened.store(), LinkCacheOptions::default()));
        let cache = Arc::new(LinkCache::new(config.cache.capacity_bytes));
        let keys = Arc::new(kurz_stores::api_keys(&config.auth, redis.clone())?);
        let listeners = config.http.bind_all().await?;
        let public_base_url = config.http.base_url(listeners.local_addr());
        let targets = TargetRules::load(&config.targets, &public_base_url)?;
        let limits = Limits::new(&config.limits);

        let background_stop = CancellationToken::new();
        let (following, mut followed) = tokio::sync::watch::channel(false);
        let changes_task = tokio::spawn(follow_link_changes(
            config.redis.clone(),
            cache.clone() as Arc<dyn LinkChangeListener>,
            {
                let cache = cache.clone();
                move || {
                    cache.clear();
                    following.send_replace(true);
                }
            },
            background_stop.clone(),
        ));
        // Each (re)subscription empties the in-process cache, since changes may have been missed: wait
        // for the first one, so that nothing cached by the first requests is thrown away.
        if tokio::time::timeout(FIRST_SUBSCRIPTION, followed.wait_for(|followed| *followed)).await.is_err() {
            tracing::warn!("not following link changes yet; serving, and emptying the cache once subscribed");
        }
        let spool = ClickSpool::open(&config.clicks.spool_dir, config.clicks.spool_max_bytes)
            .with_context(|| format!("opening the click spool in {}", config.clicks.spool_dir.display()))?;
        let (clicks, clicks_task) = ClickRecorder::start_spooled(
            log.clone(),
            Arc::new(spool),
            ClickDetailer::configured(&config.geo, config.analytics.bot_rules()?)
                .context("opening the GeoIP database")?,
            ClickRecorderOptions { queue_capacity: config.clicks.queue_capacity, ..ClickRecorderOptions::default() },
            background_stop.clone(),
        );
        let (orphans, orphans_task) =
            OrphanVisits::start(Arc::new(RedisOrphanVisits::new(redis.clone())), background_stop.clone());
        let redirects = Arc::new(RedirectService::new(RedirectServiceParts {
            store: store.clone(),
            quota: Arc::new(RedisClickQuota::new(redis)),
            cache: cache.clone(),
            clicks: config.clicks.record_redirects.then(|| clicks.clone()),
            clock: Clock::system(),
            visitor_key: VisitorKey(secrets.visitor_key),
            targets: targets.clone(),
            orphans: Some(orphans),
            store_timeout: Duration::from_millis(config.http.request_timeout_ms),
        }));

        let trust_forwarded_for = config.http.trust_forwarded_for;
        let catalogue = Catalogue { directory: opened.directory.clone(), history: opened.history.clone() };
        let config_routes = RoutesConfig { public_base_url, trust_forwarded_for, limits: limits.clone(), catalogue };
        let queries = routes(redirects, config_routes);
        let gate = ApiGate { keys, limits: limits.clone(), trust_forwarded_for };
        let routers = ops::service(
            queries.public,
            gate.guard(queries.api),
            Some(queries.doc),
            vec![("event_log", ops::event_log_ready(log)), ("read_store", ops::read_store_ready(store))],
            &config.http,
        );
        let on_blocklist_change: OnChange = Arc::new(move |_| cache.clear());
        let serving = Serving {
            listeners,
            routers,
            http: config.http,
            limits: Some(limits),
            targets: Some((targets, vec![on_blocklist_change])),
        };
        Ok(Self { serving, clicks, clicks_task, orphans_task, background_stop, changes_task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.serving.admin_addr()
    }

    /// Serves until `stop`, then drains: in-flight requests finish and queued clicks are appended.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self { serving, clicks, clicks_task, orphans_task, background_stop, changes_task } = self;
        tracing::info!(address = %serving.local_addr(), admin = ?serving.admin_addr(), "query-api is serving");
        let served = serving.run(stop).await;
        background_stop.cancel();
        clicks_task.await.context("click recorder")?;
        drop(clicks);
        orphans_task.await.context("orphan visits")?;
        changes_task.await.context("link change follower")?;
        tracing::info!("query-api stopped");
        served.context("http server")
    }
}

//! The projector as Kafka consumer-group workers: records from the event topic folded into the
//! Redis read models, changed links announced to the query-api instances. Run as many as there are
//! partitions worth sharing; the group moves partitions between them as they come and go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::Router;
use kurz_kafka::{GroupConsumer, GroupOptions, GroupSink, KafkaConfig};
use kurz_ports::{InfraError, LinkChangeListener, LogRecord};

use crate::ReadModels;
use kurz_redis::{CachedReadStore, LinkCacheOptions, LinkChangePublisher, RedisConfig, RedisConnection};
use kurz_service_kit::config::{AnalyticsConfig, HttpConfig, LogConfig};
use kurz_service_kit::ops;
use kurz_service_kit::server::Serving;
use kurz_stores::{OpenedStore, ReadStoreConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `distributed` for this configuration (read first, to choose it).
    pub mode: crate::Mode,
    /// Serves `/health`, `/ready` and `/metrics`.
    pub http: HttpConfig,
    pub log: LogConfig,
    pub kafka: KafkaConfig,
    /// The link cache and the link-change channel.
    pub redis: RedisConfig,
    /// Where the read models live (Redis by default, or ScyllaDB).
    pub read_store: ReadStoreConfig,
    /// Every projector of a deployment joins this consumer group.
    pub group_id: String,
    /// Most records applied in one read-store write.
    pub batch_size: usize,
    /// How long the first record of a batch waits for company, in ms.
    pub linger_ms: u64,
    /// How long a silent worker keeps its partitions before the group moves them, in ms.
    pub session_timeout_ms: u64,
    /// Which agents count as bots besides the maintained lists.
    pub analytics: AnalyticsConfig,
}

impl Default for Config {
    fn default() -> Self {
        let group = GroupOptions::default();
        Self {
            mode: crate::Mode::Distributed,
            http: HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8082)), ..HttpConfig::default() },
            log: LogConfig::default(),
            kafka: KafkaConfig::default(),
            redis: RedisConfig::default(),
            read_store: ReadStoreConfig::default(),
            group_id: group.group_id,
            batch_size: group.batch_size,
            linger_ms: u64::try_from(group.linger.as_millis()).unwrap_or(u64::MAX),
            session_timeout_ms: u64::try_from(group.session_timeout.as_millis()).unwrap_or(u64::MAX),
            analytics: AnalyticsConfig::default(),
        }
    }
}

/// Applies to the read models, then tells the listeners which links changed.
#[derive(Debug)]
pub struct StoreSink {
    models: ReadModels,
    listeners: Vec<Arc<dyn LinkChangeListener>>,
}

impl StoreSink {
    pub fn new(models: ReadModels, listeners: Vec<Arc<dyn LinkChangeListener>>) -> Self {
        Self { models, listeners }
    }
}

#[async_trait]
impl GroupSink for StoreSink {
    async fn checkpoints(&self, partitions: &[u32]) -> Result<Vec<u64>, InfraError> {
        let count = partitions.iter().max().map_or(0, |p| p + 1);
        let all = self.models.checkpoints(count).await?;
        Ok(partitions.iter().map(|p| all[*p as usize]).collect())
    }

    async fn apply(&self, records: Vec<LogRecord>) -> Result<(), InfraError> {
        let (count, undecodable) = (records.len(), records.iter().filter(|r| r.event.is_err()).count());
        self.models.apply_projections(&records).await?;
        let changed = self.models.store.apply(records).await?;
        for listener in &self.listeners {
            listener.links_changed(&changed);
        }
        metrics::counter!("projector_records_applied_total").increment(count as u64);
        metrics::counter!("projector_records_undecodable_total").increment(undecodable as u64);
        Ok(())
    }
}

/// A joined, bound, not yet running projector worker.
#[derive(Debug)]
pub struct Application {
    serving: Serving,
    consumer: GroupConsumer,
}

impl Application {
    /// Connects and joins the group. With `rebuild`, first deletes the read models, so every
    /// partition starts again from offset 0 (every worker of the group follows at its next
    /// rebalance, which this worker's joining causes).
    pub async fn build(config: Config, rebuild: bool) -> anyhow::Result<Self> {
        kurz_service_kit::telemetry::metrics();
        let redis = RedisConnection::connect(&config.redis).await.context("connecting to Redis")?;
        let bots = config.analytics.bot_rules()?;
        let opened =
            OpenedStore::open(&config.read_store, &config.redis, bots).await.context("opening the read store")?;
        let stale = opened.stale_layout().await.context("reading the read store's layout")?;
        if let Some(layout) = stale {
            tracing::warn!(layout, "the read store holds rows of a layout this build does not write; rebuilding it");
        }
        if rebuild || stale.is_some() {
            opened.clear().await.context("deleting the read models")?;
            tracing::info!("read models deleted; rebuilding from offset 0");
        }
        let store = Arc::new(CachedReadStore::new(redis.clone(), opened.store(), LinkCacheOptions::default()));
        let models = ReadModels::new(store.clone(), opened.projections());
        let sink = Arc::new(StoreSink { models, listeners: vec![Arc::new(LinkChangePublisher::start(redis))] });
        let options = GroupOptions {
            group_id: config.group_id.clone(),
            batch_size: config.batch_size,
            linger: Duration::from_millis(config.linger_ms),
            session_timeout: Duration::from_millis(config.session_timeout_ms),
        };
        let consumer = GroupConsumer::join(&config.kafka, options, sink).await.context("joining the consumer group")?;
        let listeners = config.http.bind_all().await?;
        let routers = ops::service(
            Router::new(),
            Router::new(),
            None,
            vec![("read_store", ops::read_store_ready(store))],
            &config.http,
        );
        let serving = Serving { listeners, routers, http: config.http, limits: None, targets: None };
        Ok(Self { serving, consumer })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr()
    }

    /// Projects until `stop`; the batch under way is applied and committed before the worker
    /// leaves the group.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self { serving, consumer } = self;
        tracing::info!(address = %serving.local_addr(), "projector is serving its ops endpoints");
        let halt = consumer.stop_handle();
        let worker = tokio::task::spawn_blocking(move || consumer.run());
        let served = serving.run(stop).await;
        halt.stop();
        worker.await.context("consumer thread")?;
        tracing::info!("projector stopped");
        served.context("http server")
    }
}

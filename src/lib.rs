//! The all-in-one process: command API, projector and query API on the embedded adapters, behind
//! one HTTP port.

pub mod cli;
mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kurz_command_api::{CodeAllocator, CommandService, CommandServiceParts};
use kurz_domain::{CodeGenerator, CodeKey};
use kurz_embedded::{
    EmbeddedIdempotency, EmbeddedKeyStore, EmbeddedLog, EmbeddedOrphanVisits, LogOptions, ReadModelFiles,
};
use kurz_ports::{EventLog, ProjectionProgress as _};
use kurz_projector::{Progress, Projector, ProjectorOptions, ReadModels};
use kurz_query_api::{
    Catalogue, ClickDetailer, ClickRecorder, ClickRecorderOptions, LinkCache, OrphanVisits, RedirectService,
    RedirectServiceParts, VisitorKey,
};
use kurz_service_kit::Clock;
use kurz_service_kit::auth::{self, Keys};
use kurz_service_kit::gate::ApiGate;
use kurz_service_kit::limits::Limits;
use kurz_service_kit::ops;
use kurz_service_kit::server::Serving;
use kurz_service_kit::targets::{OnChange, TargetRules};
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;

/// A built, bound, not yet running Kurz.
#[derive(Debug)]
pub struct Application {
    serving: Serving,
    projector: Arc<Projector>,
    clicks: ClickRecorder,
    clicks_task: tokio::task::JoinHandle<()>,
    /// Stores the orphan visits counted last, once `clicks_stop` is cancelled.
    orphans_task: tokio::task::JoinHandle<()>,
    clicks_stop: CancellationToken,
    log: Arc<EmbeddedLog>,
    cache: Arc<LinkCache>,
}

impl Application {
    /// Opens the data directory, brings the read models up to date with the log, and binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::system()).await
    }

    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // Before any component resolves its metric handles: handles taken earlier record nothing.
        kurz_service_kit::telemetry::metrics();
        let data_dir = &config.storage.data_dir;
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let secrets = kurz_service_kit::secrets::load_or_create(&data_dir.join("secret.key"))?;
        let log = Arc::new(
            EmbeddedLog::open(&data_dir.join("events.redb"), LogOptions { partitions: config.storage.partitions })
                .map_err(source_of_truth)
                .context("opening the event log")?,
        );
        let bots = config.analytics.bot_rules()?;
        let files = ReadModelFiles::open_with_bot_rules(data_dir, &bots).context("opening the read models")?;
        let store = files.store.clone();
        let keys = api_keys(&config, data_dir)?;
        let listeners = config.http.bind_all().await?;
        let public_base_url = config.http.base_url(listeners.local_addr());
        let targets = TargetRules::load(&config.targets, &public_base_url)?;
        let limits = Limits::new(&config.limits);

        let cache = Arc::new(LinkCache::new(config.cache.capacity_bytes));
        let models = ReadModels::new(store.clone(), files.projections());
        let projector = Projector::resume(log.clone(), models, ProjectorOptions::default())
            .await
            .context("reading projection checkpoints")?
            .with_listener(cache.clone());
        // Serve nothing the read models do not show yet: after a crash or a deleted store, the
        // projector first folds in everything the log holds.
        let replayed = projector.catch_up().await.context("catching up the read models")?;
        tracing::info!(replayed, "read models up to date with the event log");
        let projector = Arc::new(projector);

        let commands = Arc::new(CommandService::new(CommandServiceParts {
            log: log.clone(),
            store: store.clone(),
            creations: log.clone(),
            codes: CodeAllocator::new(
                CodeGenerator::new(CodeKey::new(secrets.code_key)),
                log.clone(),
                config.codes.lease_block,
            ),
            clock: clock.clone(),
            listeners: vec![cache.clone()],
            targets: targets.clone(),
            idempotency: idempotency_keys(data_dir)?,
        }));
        let clicks_stop = CancellationToken::new();
        let (clicks, clicks_task) = ClickRecorder::start(
            log.clone(),
            ClickDetailer::configured(&config.geo, bots).context("opening the GeoIP database")?,
            ClickRecorderOptions { queue_capacity: config.clicks.queue_capacity, ..ClickRecorderOptions::default() },
            clicks_stop.clone(),
        );
        let orphan_store = EmbeddedOrphanVisits::open_or_start_afresh(&data_dir.join("orphans.redb"))
            .context("opening the orphan visits")?;
        let (orphans, orphans_task) = OrphanVisits::start(Arc::new(orphan_store), clicks_stop.clone());
        let redirects = Arc::new(RedirectService::new(RedirectServiceParts {
            store: store.clone(),
            quota: log.clone(),
            cache: cache.clone(),
            clicks: config.clicks.record_redirects.then(|| clicks.clone()),
            clock,
            visitor_key: VisitorKey(secrets.visitor_key),
            targets: targets.clone(),
            orphans: Some(orphans),
            store_timeout: Duration::from_millis(config.http.request_timeout_ms),
        }));

        let catalogue = Catalogue { directory: files.directory.clone(), history: files.history.clone() };
        let (public, api, doc) = api_and_ui(&config, commands, redirects, keys, &limits, &public_base_url, catalogue);
        let routers = ops::service(public, api, Some(doc), readiness(&log, &store, &config.storage), &config.http);

        let on_blocklist_change: OnChange = {
            let cache = cache.clone();
            Arc::new(move |_| cache.clear())
        };
        let serving = Serving {
            listeners,
            routers,
            http: config.http,
            limits: Some(limits),
            targets: Some((targets, vec![on_blocklist_change])),
        };
        Ok(Self { serving, projector, clicks, clicks_task, orphans_task, clicks_stop, log, cache })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr()
    }

    /// The main listener's router (to send requests in-process).
    pub fn router(&self) -> axum::Router {
        self.serving.routers.main.clone()
    }

    /// The admin listener's address, when `http.admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.serving.admin_addr()
    }

    /// A handle for tests and tools to wait until Kurz has settled.
    pub fn settle_handle(&self) -> SettleHandle {
        SettleHandle { clicks: self.clicks.clone(), log: self.log.clone(), progress: self.projector.progress() }
    }

    pub fn cache(&self) -> Arc<LinkCache> {
        Arc::clone(&self.cache)
    }

    /// Serves until `stop` is cancelled, then drains: in-flight requests finish, queued clicks are
    /// appended, the projector finishes its step, and the files are closed.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self { serving, projector, clicks, clicks_task, orphans_task, clicks_stop, log, cache: _ } = self;
        tracing::info!(address = %serving.local_addr(), admin = ?serving.admin_addr(), "kurz is serving");
        let projector_stop = CancellationToken::new();
        let projector_task = tokio::spawn({
            let (projector, stop) = (projector.clone(), projector_stop.clone());
            async move { projector.run(stop).await }
        });
        let served = serving.run(stop).await;
        clicks_stop.cancel();
        clicks_task.await.context("click recorder")?;
        drop(clicks);
        orphans_task.await.context("orphan visits")?;
        // Let the projector fold the last clicks, so a clean restart has nothing to replay.
        if let Err(error) = projector.catch_up().await {
            tracing::warn!(%error, "final projection step failed; it will be replayed at start");
        }
        projector_stop.cancel();
        projector_task.await.context("projector")?;
        drop(log);
        tracing::info!("kurz stopped");
        served.context("http server")
    }
}

/// Deletes the read models of `config.storage.data_dir` and folds them again from the event log,
/// telling `progress` (records applied, records in the log) as it goes. Returns how many records
/// it applied. The files belong to one process: run it while `kurz` is stopped.
pub async fn rebuild(config: &Config, progress: impl Fn(u64, u64)) -> anyhow::Result<u64> {
    let bots = config.analytics.bot_rules()?;
    let data_dir = &config.storage.data_dir;
    let log_path = data_dir.join("events.redb");
    anyhow::ensure!(log_path.exists(), "no event log at {}", log_path.display());
    let log = Arc::new(
        EmbeddedLog::open(&log_path, LogOptions { partitions: config.storage.partitions })
            .context("opening the event log (is kurz running?)")?,
    );
    ReadModelFiles::remove(data_dir).with_context(|| format!("deleting the read models in {}", data_dir.display()))?;
    let files = ReadModelFiles::open_with_bot_rules(data_dir, &bots).context("opening the read models")?;
    let projector = Projector::resume(
        log.clone(),
        ReadModels::new(files.store.clone(), files.projections()),
        ProjectorOptions::default(),
    )
    .await?;
    let total: u64 = log.end_offsets().await?.iter().sum();
    let applied = projector.progress();
    let rebuilding = projector.catch_up();
    tokio::pin!(rebuilding);
    loop {
        tokio::select! {
            done = &mut rebuilding => {
                progress(total, total);
                return Ok(done?);
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => progress(applied.applied().iter().sum(), total),
        }
    }
}

/// The API keys in `keys.redb`, and the bootstrap admin key (written to `admin.key` on first start
/// unless `auth.bootstrap_key_file` names one).
fn api_keys(config: &Config, data_dir: &std::path::Path) -> anyhow::Result<Arc<Keys>> {
    let key_store = Arc::new(
        EmbeddedKeyStore::open(&data_dir.join("keys.redb"))
            .map_err(source_of_truth)
            .context("opening the key store")?,
    );
    let bootstrap = match &config.auth.bootstrap_key_file {
        Some(path) => auth::bootstrap_key(path, false)?,
        None => auth::bootstrap_key(&data_dir.join("admin.key"), true)?,
    };
    Ok(Arc::new(Keys::new(key_store, Some(bootstrap), &config.auth)))
}

/// What `/ready` checks: the log takes durable writes, the disk has room, the read store answers.
fn readiness(
    log: &Arc<EmbeddedLog>,
    store: &Arc<kurz_embedded::EmbeddedStore>,
    storage: &config::StorageConfig,
) -> Vec<(&'static str, ops::ReadinessCheck)> {
    vec![
        ("event_log", durable_writes_ready(log.clone())),
        ("disk", free_space_ready(storage.data_dir.clone(), storage.min_free_bytes)),
        ("read_store", ops::read_store_ready(store.clone())),
    ]
}

/// Ready while the embedded log takes durable writes: a real write through its writer, so a full
/// disk (or a file waiting to be reopened) shows here, not only in failed requests.
fn durable_writes_ready(log: Arc<EmbeddedLog>) -> ops::ReadinessCheck {
    Arc::new(move || {
        let log = Arc::clone(&log);
        Box::pin(async move { log.probe().await.map_err(|e| e.to_string()) })
    })
}

/// Ready while the data directory's filesystem has `min_free` bytes free for unprivileged writes.
fn free_space_ready(data_dir: std::path::PathBuf, min_free: u64) -> ops::ReadinessCheck {
    Arc::new(move || {
        let data_dir = data_dir.clone();
        Box::pin(async move {
            let stats = rustix::fs::statvfs(&data_dir).map_err(|e| format!("cannot read free space: {e}"))?;
            let free = stats.f_bavail.saturating_mul(stats.f_frsize);
            if free >= min_free {
                Ok(())
            } else {
                Err(format!(
                    "{free} bytes free on the data directory's filesystem, below storage.min_free_bytes ({min_free})"
                ))
            }
        })
    })
}

fn idempotency_keys(data_dir: &std::path::Path) -> anyhow::Result<Arc<EmbeddedIdempotency>> {
    let keys = EmbeddedIdempotency::open(&data_dir.join("idempotency.redb"))
        .map_err(source_of_truth)
        .context("opening the idempotency keys")?;
    Ok(Arc::new(keys))
}

/// A file that is not derived (the event log, the keys, idempotency records) is never rewritten:
/// when redb finds it damaged, Kurz refuses to start and says what to do.
fn source_of_truth(error: kurz_embedded::OpenError) -> anyhow::Error {
    if error.is_damaged() {
        anyhow::anyhow!(
            "{error}. This file is not derived from anything and Kurz does not rewrite it: restore it from a \
             backup (the damaged file is left as it is). Damaged read models (store, directory, history) are \
             rebuilt by themselves"
        )
    } else {
        error.into()
    }
}

/// Waits until queued clicks are in the log and the read models show the whole log.
#[derive(Debug, Clone)]
pub struct SettleHandle {
    clicks: ClickRecorder,
    log: Arc<EmbeddedLog>,
    progress: Progress,
}

impl SettleHandle {
    pub async fn settled(&self) {
        self.clicks.flushed().await;
        let ends = self.log.end_offsets().await.expect("the embedded log knows its ends");
        let positions: Vec<kurz_ports::Position> = (0..)
            .zip(&ends)
            .filter(|(_, end)| **end > 0)
            .map(|(partition, end)| kurz_ports::Position { partition, offset: end - 1 })
            .collect();
        while !self.progress.wait_applied(&positions, Duration::from_mins(1)).await {}
    }
}

/// The public routes (redirects, QR codes), the API behind its gate with the UI beside it, and the
/// API's description.
fn api_and_ui(
    config: &Config,
    commands: Arc<CommandService>,
    redirects: Arc<RedirectService>,
    keys: Arc<Keys>,
    limits: &Arc<Limits>,
    public_base_url: &Arc<str>,
    catalogue: Catalogue,
) -> (axum::Router, axum::Router, utoipa::openapi::OpenApi) {
    let trust_forwarded_for = config.http.trust_forwarded_for;
    let (commands, mut doc) = kurz_command_api::routes(
        commands,
        keys.clone(),
        kurz_command_api::RoutesConfig { public_base_url: public_base_url.clone(), limits: limits.clone() },
    );
    let queries = kurz_query_api::routes(
        redirects,
        kurz_query_api::RoutesConfig {
            public_base_url: public_base_url.clone(),
            trust_forwarded_for,
            limits: limits.clone(),
            catalogue,
        },
    );
    doc.merge(queries.doc);
    let gate = ApiGate { keys, limits: limits.clone(), trust_forwarded_for };
    let api = gate.guard(commands.merge(queries.api));
    // The UI acts through the API it is served beside, in-process, with each person's own key.
    let ui = kurz_web_ui::routes(
        &config.ui,
        kurz_web_ui::upstream::Upstream::in_process(api.clone().merge(queries.public.clone())),
        public_base_url,
        trust_forwarded_for,
    );
    (queries.public, api.merge(ui), doc)
}

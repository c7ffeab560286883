//! `projector`: folds the event log into the read models outside the `kurz` process.
//!
//! `KURZ_MODE=distributed` (or `mode = "distributed"` in the config file): a consumer-group worker
//! on Kafka and Redis until SIGTERM; `--rebuild` deletes the read models first, so the group
//! replays the topic from offset 0.
//!
//! `mode = "embedded"` (the default): the files of the all-in-one `kurz`. `projector --rebuild`
//! deletes the read models and rebuilds them from offset 0, then exits; `projector` follows the log
//! until SIGTERM. The files belong to one process at a time, so run it while `kurz` is stopped.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kurz_embedded::{EmbeddedLog, LogOptions, ReadModelFiles};
use kurz_projector::{Mode, Projector, ProjectorOptions, ReadModels};
use kurz_service_kit::{config, shutdown, telemetry};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

// Many small, short-lived allocations (events, rows, headers): mimalloc handles them with less
// overhead and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Read first, alone: which of the two configurations applies.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ModeOnly {
    mode: Mode,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Config {
    storage: Storage,
    log: config::LogConfig,
    analytics: config::AnalyticsConfig,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct Storage {
    data_dir: PathBuf,
    partitions: u32,
}

impl Default for Storage {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("data"), partitions: 8 }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kurz_service_kit::memory::prefer_small_pages();
    if let Err(error) = telemetry::init_logging_from_config() {
        kurz_service_kit::app::refuse(&error);
    }
    let about = "Kurz's projector: folds the event log into the read models (KURZ_MODE=embedded or distributed)";
    let rebuild = clap::Arg::new("rebuild")
        .long("rebuild")
        .action(clap::ArgAction::SetTrue)
        .help("Delete the read models first and rebuild them from offset 0 (embedded: then exit)");
    let arguments =
        kurz_service_kit::cli::command("projector", about, env!("CARGO_PKG_VERSION")).arg(rebuild).get_matches();
    let rebuild = arguments.get_flag("rebuild");
    let ModeOnly { mode } = config::peek()?;
    if let Mode::Distributed = mode {
        use kurz_projector::distributed::{Application, Config};
        let build = |config: Config| Application::build(config, rebuild);
        return kurz_service_kit::app::serve(build, Application::run_until_stopped).await;
    }
    let config: Config = config::load().unwrap_or_else(|error| kurz_service_kit::app::refuse(&error));
    let data_dir = &config.storage.data_dir;
    let log_path = data_dir.join("events.redb");
    anyhow::ensure!(log_path.exists(), "no event log at {}", log_path.display());
    let log = Arc::new(
        EmbeddedLog::open(&log_path, LogOptions { partitions: config.storage.partitions })
            .context("opening the event log (is kurz running?)")?,
    );
    if rebuild {
        ReadModelFiles::remove(data_dir)
            .with_context(|| format!("deleting the read models in {}", data_dir.display()))?;
    }
    let bots = config.analytics.bot_rules()?;
    let files = ReadModelFiles::open_with_bot_rules(data_dir, &bots).context("opening the read models")?;
    let models = ReadModels::new(files.store.clone(), files.projections());
    let projector = Projector::resume(log, models, ProjectorOptions::default()).await?;
    let started = std::time::Instant::now();
    let applied = projector.catch_up().await?;
    tracing::info!(applied, seconds = started.elapsed().as_secs_f64(), "read models up to date with the event log");
    if !rebuild {
        let stop = CancellationToken::new();
        shutdown::cancel_on_signal(stop.clone());
        projector.run(stop).await;
    }
    Ok(())
}

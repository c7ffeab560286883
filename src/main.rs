//! `kurz`: the whole URL shortener in one process, on the embedded event log and store.

use kurz::{Application, Config};
use kurz_service_kit::{config, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

// Many small, short-lived allocations (events, rows, headers): mimalloc handles them with less
// overhead and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let config: Config = config::load()?;
    let app = Application::build(config).await?;
    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    app.run_until_stopped(stop).await
}

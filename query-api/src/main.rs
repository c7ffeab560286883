//! `query-api`: redirects and stats as their own service, on Redis and Kafka.

use kurz_query_api::distributed::{Application, Config};
use kurz_service_kit::{config, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

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

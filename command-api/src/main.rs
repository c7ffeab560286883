//! `command-api`: the command side as its own service, on Kafka and Redis.

use kurz_command_api::distributed::{Application, Config};
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

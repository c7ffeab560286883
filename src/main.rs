//! `kurz`: the whole URL shortener in one process, on the embedded event log and store.

use kurz::{Application, Config};
use kurz_service_kit::{config, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let config: Config = config::load()?;
    let app = Application::build(config).await?;
    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    app.run_until_stopped(stop).await
}

//! What every service binary's `main` does, once.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{config, shutdown, telemetry};

/// Logging, configuration (`C`, see [`config::load`]), the application from `build`, then `run`
/// until SIGTERM or Ctrl-C cancels its token and it has drained.
pub async fn serve<C, A, Built, Ran>(
    build: impl FnOnce(C) -> Built,
    run: impl FnOnce(A, CancellationToken) -> Ran,
) -> anyhow::Result<()>
where
    C: Serialize + DeserializeOwned + Default,
    Built: Future<Output = anyhow::Result<A>>,
    Ran: Future<Output = anyhow::Result<()>>,
{
    telemetry::init_logging();
    let app = build(config::load()?).await?;
    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    run(app, stop).await
}

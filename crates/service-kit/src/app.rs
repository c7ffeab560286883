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
    telemetry::init_logging_from_config();
    let config = match config::load() {
        Ok(config) => config,
        Err(error) => {
            // One line a person can act on, and the exit code scripts and init systems know for a
            // usage error: a configuration error is not a crash (no backtrace).
            let program = std::env::args().next().unwrap_or_default();
            let name = std::path::Path::new(&program).file_name().map(|n| n.to_string_lossy().into_owned());
            eprintln!("{}: {error:#}", name.unwrap_or_else(|| "kurz".to_owned()));
            std::process::exit(2);
        }
    };
    let app = build(config).await?;
    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    run(app, stop).await
}

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
    crate::memory::prefer_small_pages();
    if let Err(error) = telemetry::init_logging_from_config() {
        refuse(&error);
    }
    let config = config::load().unwrap_or_else(|error| refuse(&error));
    let app = build(config).await?;
    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    let ran = run(app, stop).await;
    telemetry::flush();
    ran
}

/// A configuration error: one line a person can act on, and the exit code scripts and init systems
/// know for a usage error. It is not a crash, so no backtrace.
pub fn refuse(error: &anyhow::Error) -> ! {
    let program = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&program).file_name().map(|n| n.to_string_lossy().into_owned());
    eprintln!("{}: {error:#}", name.unwrap_or_else(|| "kurz".to_owned()));
    std::process::exit(2);
}

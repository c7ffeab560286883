//! `kurz`: the whole URL shortener in one process, on the embedded event log and store.

use kurz::Application;

// Many small, short-lived allocations (events, rows, headers): mimalloc handles them with less
// overhead and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Kurz, the whole URL shortener in one process on the embedded event log and store";
    let serve = clap::Command::new("serve").about("Serve redirects, the API and the read models (the default)");
    kurz_service_kit::cli::command("kurz", about, env!("CARGO_PKG_VERSION")).subcommand(serve).get_matches();
    kurz_service_kit::app::serve(Application::build, Application::run_until_stopped).await
}

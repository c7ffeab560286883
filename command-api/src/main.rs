//! `command-api`: the command side as its own service, on Kafka and Redis.

use kurz_command_api::distributed::Application;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Kurz's command API: creates, updates and deletes links on Kafka and Redis";
    kurz_service_kit::cli::command("command-api", about, env!("CARGO_PKG_VERSION")).get_matches();
    kurz_service_kit::app::serve(Application::build, Application::run_until_stopped).await
}

//! `query-api`: redirects and stats as their own service, on Redis and Kafka.

use kurz_query_api::distributed::Application;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Kurz's query API: redirects, links and stats from its cache, Redis and the read store";
    kurz_service_kit::cli::command("query-api", about, env!("CARGO_PKG_VERSION")).get_matches();
    kurz_service_kit::app::serve(Application::build, Application::run_until_stopped).await
}

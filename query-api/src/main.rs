//! `query-api`: redirects and stats as their own service, on Redis and Kafka.

use kurz_query_api::distributed::Application;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kurz_service_kit::app::serve(Application::build, Application::run_until_stopped).await
}

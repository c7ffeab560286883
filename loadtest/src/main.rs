//! `kurz-loadtest`: measures Kurz against a reference ceiling in the same run.
//!
//! - `run`: seeds links through the command API, drives a scenario against Kurz, then the same scenario
//!   against the ceiling server (a minimal axum server answering 302 from a static map), and reports
//!   both with their ratio.
//! - `ceiling`: serves the reference ceiling (started by `run` as a child process).
//! - `projector`: folds clicks from an embedded log and times a full rebuild.
//! - `cache-memory`: resident memory of the in-process link cache per link.
//! - `soak`: mixed traffic for a long time on a Kurz it starts, with faults, sampling as it goes.
//! - `kafka`: produce and projection throughput of distributed mode on a broker and Redis.

mod bench;
// The distributed tests' broker outage, reused for the soak's.
#[path = "../../tests/distributed/proxy.rs"]
mod broker_proxy;
mod ceiling;
mod client;
mod kafka;
mod report;
mod run;
mod scenario;
mod soak;
mod soak_system;

use clap::{Parser, Subcommand};

// Many small, short-lived allocations (events, rows, headers): mimalloc handles them with less
// overhead and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(version, about = "Load tests and benchmarks for Kurz")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seed links, then measure a scenario against Kurz and against the reference ceiling.
    Run(run::RunArgs),
    /// Serve the reference ceiling: 302 from a static map, the least a redirect can cost.
    Ceiling(ceiling::CeilingArgs),
    /// Measure projection throughput and rebuild time on the embedded log.
    Projector(bench::ProjectorArgs),
    /// Measure list pages and searches on the embedded link directory.
    Directory(bench::DirectoryArgs),
    /// Measure the in-process cache's resident memory per link.
    CacheMemory(bench::CacheMemoryArgs),
    /// Run mixed traffic for a long time, sampling memory, files, errors and click lag.
    Soak(soak::SoakArgs),
    /// Measure produce and consumer-group projection throughput on a Kafka broker and Redis.
    Kafka(kafka::KafkaArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // As every Kurz service runs (the projector bench folds in this process; the ceiling is served
    // on the same terms as Kurz).
    kurz_service_kit::memory::prefer_small_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Ceiling(args) => runtime.block_on(ceiling::serve(args)),
        Command::Projector(args) => runtime.block_on(bench::projector(args)),
        Command::Directory(args) => runtime.block_on(bench::directory(args)),
        Command::CacheMemory(args) => bench::cache_memory(&args),
        Command::Soak(args) => runtime.block_on(soak::soak(args)),
        Command::Kafka(args) => runtime.block_on(kafka::kafka(args)),
    }
}

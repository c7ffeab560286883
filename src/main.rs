//! `kurz`: the whole URL shortener in one process, on the embedded event log and store (`kurz`,
//! `kurz serve`), and the client that manages a running one (`kurz links …`, `keys`, `import`,
//! `export`) or rebuilds a stopped one's read models (`kurz rebuild`).

use clap::{Args as _, FromArgMatches as _, Subcommand as _};
use kurz::Application;
use kurz::cli::{Command, Connection};

// Many small, short-lived allocations (events, rows, headers): mimalloc handles them with less
// overhead and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Kurz, the whole URL shortener in one process on the embedded event log and store";
    let cli = kurz_service_kit::cli::command("kurz", about, env!("CARGO_PKG_VERSION"));
    let matches = Command::augment_subcommands(Connection::augment_args(cli)).get_matches();
    let command = match matches.subcommand() {
        Some(_) => Command::from_arg_matches(&matches).unwrap_or_else(|error| error.exit()),
        None => Command::Serve,
    };
    if let Command::Serve = command {
        return kurz_service_kit::app::serve(Application::build, Application::run_until_stopped).await;
    }
    let connection = Connection::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Err(error) = kurz::cli::run(command, &connection).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
    Ok(())
}

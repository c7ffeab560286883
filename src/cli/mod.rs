//! `kurz`'s client commands: they talk HTTP to a running Kurz (`links`, `keys`, `import`,
//! `export`) or work on a stopped one's files (`rebuild`).
//!
//! Where to and with which key: `--url` and `--key` (or `--key-file`), else the client file
//! (`--config`, default `$XDG_CONFIG_HOME/kurz/cli.toml`: `url = …`, `key = …` or `key_file = …`),
//! else `http://127.0.0.1:8080` and the key a local `kurz` wrote to `data/admin.key`. Never
//! `KURZ_*` variables: those configure the server.

mod client;
mod commands;
mod transfer;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use commands::run;

#[derive(Debug, Args)]
pub struct Connection {
    /// Base URL of the Kurz to talk to
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// API key (kurz_…)
    #[arg(long, global = true, conflicts_with = "key_file")]
    pub key: Option<String>,
    /// File holding the API key
    #[arg(long, global = true)]
    pub key_file: Option<PathBuf>,
    /// Client settings file (url, key or key_file)
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Print the API's JSON instead of a table
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve redirects, the API and the read models (the default)
    Serve,
    /// Create, list, read, change and delete links
    #[command(subcommand)]
    Links(LinksCommand),
    /// Create, list and revoke API keys (admin)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create links from a CSV or NDJSON export (as `kurz export` writes them)
    Import(ImportArgs),
    /// Write every link (that the filters keep) as CSV or NDJSON
    Export(ExportArgs),
    /// Clicks over all of an owner's links: totals, days, top links
    Stats {
        #[command(flatten)]
        range: StatsRange,
        /// Owner (admin keys only; an admin key without it sees every owner's)
        #[arg(long)]
        owner: Option<String>,
    },
    /// Requests for codes that name no live link, by day (admin)
    Orphans {
        /// First day (YYYY-MM-DD; default 29 days before --to)
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD; default today)
        #[arg(long)]
        to: Option<String>,
    },
    /// Rebuild the read models of a stopped kurz from its event log (storage.data_dir)
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Create a link
    Create(CreateArgs),
    /// List links, newest first
    List(ListArgs),
    /// Show a link
    Get { code: String },
    /// Change a link (only the options given)
    Update(UpdateArgs),
    /// Delete a link
    Delete { code: String },
    /// A link's clicks
    Stats {
        code: String,
        #[command(flatten)]
        range: StatsRange,
    },
    /// Every change of a link, oldest first
    History { code: String },
}

/// Which clicks a stats command counts (the API's query parameters of the same names).
#[derive(Debug, Args)]
pub struct StatsRange {
    /// First day (YYYY-MM-DD)
    #[arg(long)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD)
    #[arg(long)]
    pub to: Option<String>,
    /// Whose clicks: people's (exclude, the default), everyone's (include), bots' (only)
    #[arg(long, value_parser = ["exclude", "include", "only"])]
    pub bots: Option<String>,
    /// `hour`: the last 48 hours by hour (instead of --from/--to)
    #[arg(long, value_parser = ["day", "hour"], conflicts_with_all = ["from", "to"])]
    pub interval: Option<String>,
}

impl StatsRange {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        [("from", &self.from), ("to", &self.to), ("bots", &self.bots), ("interval", &self.interval)]
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.clone()?)))
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub target_url: String,
    #[arg(long)]
    pub alias: Option<String>,
    /// A tag (repeat for more)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// RFC 3339 instant
    #[arg(long)]
    pub expires_at: Option<String>,
    #[arg(long)]
    pub max_clicks: Option<u64>,
    /// 301, 302, 307 or 308
    #[arg(long)]
    pub redirect_status: Option<u16>,
    /// Owner (admin keys only)
    #[arg(long)]
    pub owner: Option<String>,
    /// Pass the short URL's query string on to the target
    #[arg(long)]
    pub forward_query: bool,
}

/// Which links a list or an export shows (the API's query parameters of the same names).
#[derive(Debug, Args)]
pub struct Filters {
    /// Code prefix or part of the target (any case)
    #[arg(long)]
    pub q: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// active, expired, disabled, deleted or all (default: all but deleted)
    #[arg(long)]
    pub state: Option<String>,
    /// Owner (admin keys only)
    #[arg(long)]
    pub owner: Option<String>,
}

impl Filters {
    /// The filters given, as query parameters.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        [("q", &self.q), ("tag", &self.tag), ("state", &self.state), ("owner", &self.owner)]
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.clone()?)))
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// Links per page (1–100)
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Follow every page, not just the first
    #[arg(long)]
    pub all: bool,
    /// Start after this cursor (a page's next_cursor)
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub code: String,
    #[arg(long)]
    pub target_url: Option<String>,
    /// Replace the tags (repeat for more)
    #[arg(long = "tag")]
    pub tags: Option<Vec<String>>,
    #[arg(long)]
    pub expires_at: Option<String>,
    #[arg(long)]
    pub max_clicks: Option<u64>,
    /// Switch the link off (410 until enabled)
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Switch the link on again
    #[arg(long)]
    pub enable: bool,
    /// Why it is switched off (with --disable)
    #[arg(long, requires = "disable")]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key (its secret is shown once)
    Create {
        #[arg(long)]
        owner: String,
        /// admin, user or ingest
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// List keys
    List,
    /// Revoke a key
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV or NDJSON file (`-` for standard input)
    pub file: PathBuf,
    /// The file's format (default: from its extension, else CSV)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Links per request (1–1000)
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Write here instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub filters: Filters,
}

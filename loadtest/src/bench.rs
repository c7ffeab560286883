//! Benchmarks that need more than criterion's microseconds: a full projection rebuild, and the
//! in-process cache's memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kurz_domain::{
    Code, CodeGenerator, CodeKey, Event, Link, LinkClicked, LinkCreated, LinkSpec, TargetUrl, Timestamp,
};
use kurz_embedded::{EmbeddedLog, LogOptions, ReadModelFiles};
use kurz_ports::EventLog;
use kurz_projector::{Projector, ProjectorOptions, ReadModels};
use kurz_query_api::{CachedLink, LinkCache};
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

#[derive(Debug, clap::Args)]
pub struct ProjectorArgs {
    /// Events in the log: one creation per link, the rest clicks.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 10_000)]
    links: u64,
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Where to put the files (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rebuild from the log already in `--dir` (left by an earlier run) instead of writing a new one:
    /// repeated rebuilds of one log, to compare builds on the same input.
    #[arg(long, requires = "dir")]
    reuse_log: bool,
    /// Fold the read store alone, without the directory and histories: what those cost.
    #[arg(long)]
    read_store_only: bool,
    /// Records per partition and store write (the projector's `batch_size`), for a store that does
    /// not end its own writes; the embedded store ends a catch-up write at 200,000 rows, or at the
    /// projector's `catch_up_batch_size` (500,000 records per partition), instead.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Records per partition read at a time within a write (the projector's `chunk_size`).
    #[arg(long)]
    chunk_size: Option<usize>,
}

const DAY_MS: i64 = 86_400_000;
pub const START_MS: i64 = 1_795_219_200_000;
pub const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
];

pub fn codes(links: u64) -> Vec<Code> {
    let generator = CodeGenerator::new(CodeKey::new([7; 16]));
    (0..).filter_map(|s| generator.code_for(s).ok()).take(usize::try_from(links).expect("fits")).collect()
}

pub async fn projector(args: ProjectorArgs) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("events.redb");
    let options = LogOptions { partitions: args.partitions };
    let codes = codes(args.links);

    let filled = Instant::now();
    if args.reuse_log {
        anyhow::ensure!(log_path.exists(), "--reuse-log: no log at {}", log_path.display());
    } else {
        anyhow::ensure!(
            !log_path.exists(),
            "a log is already at {} (pass --reuse-log to rebuild it)",
            log_path.display()
        );
        let log = EmbeddedLog::open(&log_path, options)?;
        // One link a millisecond, so that lists of them have an order by time (see `directory`).
        let created = (0..).zip(&codes).map(|(index, code)| {
            Ok(Event::Created(LinkCreated {
                code: code.clone(),
                spec: LinkSpec::new(TargetUrl::parse(&format!("https://example.com/{code}"))?),
                custom_alias: false,
                created_at: Timestamp::from_millis(START_MS + index),
                owner: kurz_domain::Owner::admin(),
                key_id: None,
            }))
        });
        let created: Vec<Event> = created.collect::<Result<_, kurz_domain::TargetUrlError>>()?;
        log.append(&created).await?;
        // A log as traffic writes it: clicks in time order over 30 days, on links of Zipf-distributed
        // popularity (exponent 1), from 50,000 recurring visitors.
        let clicks = args.events.saturating_sub(args.links);
        let popularity = Zipf::new(args.links as f64, 1.0)?;
        let mut rng: SmallRng = rand::make_rng();
        let spacing = (30 * DAY_MS) as f64 / clicks.max(1) as f64;
        let mut appended = 0;
        while appended < clicks {
            let batch: Vec<Event> = (appended..clicks.min(appended + 20_000))
                .map(|i| {
                    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rank in 1..=links")]
                    let rank = popularity.sample(&mut rng) as usize;
                    let code = codes[rank - 1].clone();
                    #[expect(clippy::cast_possible_truncation, reason = "30 days of milliseconds")]
                    let at = START_MS + (i as f64 * spacing) as i64;
                    let agent = AGENTS[usize::try_from(i % 3).expect("fits")];
                    let visitor = format!("{:016x}", i % 50_000);
                    Event::Clicked(LinkClicked::new(
                        code,
                        Timestamp::from_millis(at),
                        Some("https://news.example/a"),
                        Some(agent),
                        Some(&visitor),
                    ))
                })
                .collect();
            appended += batch.len() as u64;
            log.append(&batch).await?;
        }
    }
    let fill_seconds = filled.elapsed().as_secs_f64();
    ReadModelFiles::remove(&dir)?;

    // Opening reads the log since its last written batch of code claims (here, all of it: the fill
    // takes less than the ten seconds after which a batch is written).
    let opened = Instant::now();
    let log = Arc::new(EmbeddedLog::open(&log_path, options)?);
    let open_seconds = opened.elapsed().as_secs_f64();
    // Every read model, as `projector --rebuild` folds them: the read store, the directory, histories.
    let files = ReadModelFiles::open(&dir)?;
    let projections = if args.read_store_only { Vec::new() } else { files.projections() };
    let models = ReadModels::new(files.store.clone(), projections);
    let mut options = ProjectorOptions::default();
    options.batch_size = args.batch_size.unwrap_or(options.batch_size);
    options.chunk_size = args.chunk_size.unwrap_or(options.chunk_size);
    let projector = Projector::resume(log, models, options).await?;
    let (user_before, system_before) = user_and_system_seconds();
    let faults_before = minor_page_faults();
    let started = Instant::now();
    let applied = projector.catch_up().await?;
    let seconds = started.elapsed().as_secs_f64();
    let (user, system) = user_and_system_seconds();
    let (user, system) = (user - user_before, system - system_before);
    let page_faults = minor_page_faults() - faults_before;
    let cpu = user + system;
    let result = serde_json::json!({
        "log": "time-ordered clicks over 30 days, Zipf(1) link popularity",
        "read_models": if args.read_store_only { "read store" } else { "read store, directory, histories" },
        "events": applied,
        "links": args.links,
        "fill_seconds": fill_seconds,
        "open_seconds": open_seconds,
        "rebuild_seconds": seconds,
        "events_per_second": applied as f64 / seconds,
        "cpu_seconds": cpu,
        "user_seconds": user,
        "system_seconds": system,
        "page_faults": page_faults,
        "events_per_cpu_second": applied as f64 / cpu,
    });
    println!("{result}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DirectoryArgs {
    /// A data directory whose read models `projector --links N --events N --dir` rebuilt.
    #[arg(long)]
    dir: PathBuf,
    /// The `--links` it was built with.
    #[arg(long, default_value_t = 1_000_000)]
    links: u64,
    /// Requests per measurement.
    #[arg(long, default_value_t = 500)]
    samples: usize,
}

/// Latency of list pages on the embedded directory, in-process (no HTTP): the first page, a page
/// nine tenths of the way down, and searches, over the links of one owner.
pub async fn directory(args: DirectoryArgs) -> anyhow::Result<()> {
    use kurz_domain::listing::{ListFilter, ListPosition, Search};
    use kurz_ports::listing::{ListQuery, page};

    let files = ReadModelFiles::open(&args.dir)?;
    let directory = files.directory.clone();
    let codes = codes(args.links);
    // The projector bench creates link i at START_MS + i ms: newest first, link i is at n - 1 - i.
    let deep_index = usize::try_from(args.links / 10).expect("fits");
    let deep = ListPosition {
        created_at: Timestamp::from_millis(START_MS + i64::try_from(deep_index).expect("fits")),
        code: codes[deep_index].clone(),
    };
    let search = |text: &str| ListFilter { search: Some(Search::parse(text).expect("valid")), ..ListFilter::default() };
    let one_target = format!("example.com/{}", codes[deep_index]);
    let cases = [
        ("first_page", None, ListFilter::default()),
        ("page_90_percent_deep", Some(deep), ListFilter::default()),
        ("search_matching_one_link", None, search(&one_target)),
        ("search_matching_every_link", None, search("EXAMPLE.com")),
    ];
    let now = Timestamp::from_millis(START_MS);
    let mut results = serde_json::Map::new();
    for (name, after, filter) in cases {
        let query = ListQuery { owner: Some(kurz_domain::Owner::admin()), after, filter, limit: 20 };
        let mut micros = Vec::with_capacity(args.samples);
        let mut items = 0;
        for _ in 0..args.samples {
            let started = Instant::now();
            let page = page(&*directory, &query, now).await?;
            micros.push(started.elapsed().as_secs_f64() * 1e6);
            items = page.items.len();
        }
        micros.sort_by(f64::total_cmp);
        let at = |permille: usize| micros[(micros.len() - 1) * permille / 1000];
        results.insert(
            name.into(),
            serde_json::json!({"items": items, "p50_us": at(500), "p99_us": at(990), "max_us": at(1000)}),
        );
    }
    println!("{}", serde_json::json!({"links_of_one_owner": args.links, "page_size": 20, "cases": results}));
    Ok(())
}

/// User plus system CPU time of this process so far.
pub fn cpu_seconds() -> f64 {
    let (user, system) = user_and_system_seconds();
    user + system
}

/// This process's CPU time so far in user space and in the kernel, in seconds.
pub fn user_and_system_seconds() -> (f64, f64) {
    let fields = process_stat();
    (fields[11] / 100.0, fields[12] / 100.0)
}

/// Page faults this process has taken that needed no disk read: each maps (and zeroes) a page of
/// fresh memory, the kernel time a projection spends.
fn minor_page_faults() -> f64 {
    process_stat()[7]
}

/// The numeric fields of `/proc/self/stat` after the parenthesised command name (zero where
/// unreadable): minflt is the 8th, utime and stime (in ticks) the 12th and 13th.
fn process_stat() -> [f64; 13] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let mut fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace();
    std::array::from_fn(|_| fields.next().and_then(|field| field.parse().ok()).unwrap_or_default())
}

#[derive(Debug, clap::Args)]
pub struct CacheMemoryArgs {
    #[arg(long, default_value_t = 1_000_000)]
    links: usize,
}

pub fn cache_memory(args: &CacheMemoryArgs) -> anyhow::Result<()> {
    let codes = codes(args.links as u64);
    let before = resident_bytes();
    // Room for every link: this measures what a link costs, not eviction.
    let cache = LinkCache::new(args.links as u64 * 4 * kurz_query_api::cache::TYPICAL_ENTRY);
    for code in &codes {
        let link = Link {
            code: code.clone(),
            owner: kurz_domain::Owner::admin(),
            // A typical campaign URL: ~60 bytes.
            spec: LinkSpec::new(TargetUrl::parse(&format!(
                "https://shop.example.com/products/{code}?utm_source=kurz"
            ))?),
            custom_alias: false,
            created_at: Timestamp::from_millis(START_MS),
            updated_at: Timestamp::from_millis(START_MS),
            deleted_at: None,
        };
        cache.insert_unless_changed(code, Some(CachedLink::new(&link, false)), cache.generation());
    }
    let after = resident_bytes();
    let grown = after.saturating_sub(before);
    let result = serde_json::json!({
        "links": cache.len(),
        "resident_mb": grown as f64 / 1e6,
        "bytes_per_link": grown as f64 / cache.len().max(1) as f64,
        // What the cache's weigher believes, against what the process holds.
        "weighed_bytes_per_link": cache.weight() as f64 / cache.len().max(1) as f64,
    });
    println!("{result}");
    drop(codes);
    Ok(())
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4096
}

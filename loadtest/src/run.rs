//! `run`: seed, measure Kurz, measure the ceiling, compare.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Connection;
use crate::report::{Progress, Summary, Tally, progress_line};
use crate::scenario::{Kind, Picker};

const MAX_DURATION_S: u64 = 600;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kurz's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    #[arg(long, value_enum, default_value = "redirect")]
    scenario: Kind,
    /// Links to seed through the command API before measuring.
    #[arg(long, default_value_t = 10_000)]
    links: usize,
    /// Seed links with this `max_clicks`: every redirect then takes a click and records it durably
    /// before it is answered (the limited path).
    #[arg(long)]
    max_clicks: Option<u64>,
    /// Concurrent connections (virtual users).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to measure (at most 600).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many requests, if sooner.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of unmeasured traffic first.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Total requests per second to pace at; latency counts from the scheduled send time (or from the
    /// send, when only the user's own timer woke late). Without it, every user sends as fast as answers
    /// come (saturation).
    #[arg(long)]
    rate: Option<u64>,
    /// Popularity skew of the seeded codes; 0 is uniform.
    #[arg(long, default_value_t = 1.0)]
    zipf_exponent: f64,
    /// Share of redirect requests for codes that do not exist.
    #[arg(long, default_value_t = 0.05)]
    unknown_share: f64,
    /// Measure Kurz only.
    #[arg(long)]
    no_ceiling: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    allow_remote: bool,
    /// The API key to seed (and create) links with; by default the one in `--key-file`.
    #[arg(long)]
    key: Option<String>,
    /// A file holding the API key (the all-in-one Kurz writes its admin key to `data/admin.key`).
    #[arg(long, default_value = "data/admin.key")]
    key_file: PathBuf,
}

#[derive(Debug, Serialize)]
struct Results {
    scenario: Kind,
    connections: usize,
    rate: Option<u64>,
    links: usize,
    max_clicks: Option<u64>,
    zipf_exponent: f64,
    unknown_share: f64,
    kurz: Summary,
    ceiling: Option<Summary>,
    rps_ratio_to_ceiling: Option<f64>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.duration <= MAX_DURATION_S, "--duration is at most {MAX_DURATION_S} s");
    anyhow::ensure!(args.connections > 0, "--connections must be positive");
    let kurz = resolve(&args.target, args.allow_remote)?;
    let key: Option<Arc<str>> = match &args.key {
        Some(key) => Some(key.as_str().into()),
        None => std::fs::read_to_string(&args.key_file).ok().map(|text| text.trim().into()),
    };
    eprintln!("seeding {} links into {kurz}", args.links);
    let links = seed(kurz, args.links, args.max_clicks, key.clone()).await?;
    let codes: Arc<Vec<String>> = Arc::new(links.keys().cloned().collect());

    let kurz_summary = measure("kurz", kurz, &args, &codes, key.clone()).await;
    let ceiling_summary = if args.no_ceiling {
        None
    } else {
        let links_file = tempfile::NamedTempFile::new()?;
        std::fs::write(links_file.path(), serde_json::to_vec(&links)?)?;
        let (mut child, ceiling) = start_ceiling(links_file.path())?;
        let summary = measure("ceiling", ceiling, &args, &codes, key).await;
        child.kill().ok();
        child.wait().ok();
        Some(summary)
    };

    println!();
    println!("scenario {:?}, {} connections, {} seeded links", args.scenario, args.connections, args.links);
    kurz_summary.print();
    let ratio = ceiling_summary.as_ref().map(|ceiling| {
        ceiling.print();
        let ratio = kurz_summary.rps / ceiling.rps;
        println!("kurz / ceiling: {ratio:.3}× throughput, {:.2}× p99", kurz_summary.p99_ms / ceiling.p99_ms);
        ratio
    });
    if let Some(path) = &args.output {
        let results = Results {
            scenario: args.scenario,
            connections: args.connections,
            rate: args.rate,
            links: args.links,
            max_clicks: args.max_clicks,
            zipf_exponent: args.zipf_exponent,
            unknown_share: args.unknown_share,
            kurz: kurz_summary,
            ceiling: ceiling_summary,
            rps_ratio_to_ceiling: ratio,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)?;
    }
    Ok(())
}

/// The target's address; only loopback unless `allow_remote`.
fn resolve(target: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let authority = target.strip_prefix("http://").context("only http:// targets are supported")?;
    let authority = authority.trim_end_matches('/');
    let address =
        authority.to_socket_addrs().with_context(|| format!("resolving {authority}"))?.next().context("no address")?;
    let loopback = match address.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    anyhow::ensure!(
        loopback || allow_remote,
        "{address} is not on this machine; pass --allow-remote to load it anyway"
    );
    Ok(address)
}

async fn seed(
    address: SocketAddr,
    count: usize,
    max_clicks: Option<u64>,
    key: Option<Arc<str>>,
) -> anyhow::Result<HashMap<String, String>> {
    let workers = 32.min(count.max(1));
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let key = key.clone();
            tokio::spawn(async move {
                let mut connection = Connection::new(address, key);
                let mut links = Vec::new();
                for i in (worker..count).step_by(workers) {
                    let target = format!("https://example.com/seeded/{i}");
                    links.push((connection.create_limited(&target, max_clicks).await?, target));
                }
                anyhow::Ok(links)
            })
        })
        .collect();
    let mut links = HashMap::with_capacity(count);
    for task in tasks {
        links.extend(task.await??);
    }
    Ok(links)
}

fn start_ceiling(links: &std::path::Path) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["ceiling", "--listen", "127.0.0.1:0", "--links"])
        .arg(links)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the ceiling server")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("ceiling stdout")?).read_line(&mut line)?;
    let address = line.trim().strip_prefix("listening on ").context("ceiling did not report its address")?.parse()?;
    Ok((child, address))
}

/// When a request's latency starts. Paced, from the scheduled time if the server still held the user
/// then (so a stall is not hidden by the requests it delayed), and from the send if the user was only
/// waiting on its own timer: tokio's timers wake up to a millisecond late, which is the generator's
/// delay, not the server's. Unpaced, from the send.
fn latency_start(scheduled: Option<Instant>, ready_at: Instant, now: Instant) -> Instant {
    match scheduled {
        Some(at) if ready_at > at => at,
        _ => now,
    }
}

async fn measure(
    name: &str,
    address: SocketAddr,
    args: &RunArgs,
    codes: &Arc<Vec<String>>,
    key: Option<Arc<str>>,
) -> Summary {
    let progress = Arc::new(Progress::default());
    let done = CancellationToken::new();
    let reporter = tokio::spawn(progress_line(name.to_owned(), progress.clone(), done.clone()));
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup);
    let measure_until = measure_from + Duration::from_secs(args.duration);
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(args.requests.unwrap_or(u64::MAX)));
    let connections = args.connections;
    let interval = args.rate.map(|rate| Duration::from_secs_f64(connections as f64 / rate.max(1) as f64));
    let users: Vec<_> = (0..args.connections)
        .map(|user| {
            let (progress, budget, done, key) = (progress.clone(), budget.clone(), done.clone(), key.clone());
            let mut picker = Picker::new(args.scenario, codes.clone(), args.zipf_exponent, args.unknown_share, user);
            tokio::spawn(async move {
                let mut connection = Connection::new(address, key);
                let mut tally = Tally::default();
                // Spread paced users over one interval so they do not fire in lockstep.
                let mut scheduled = interval.map(|i| Instant::now() + i.mul_f64(user as f64 / connections as f64));
                // When this user's previous answer arrived.
                let mut ready_at = Instant::now();
                loop {
                    if let Some(at) = scheduled {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let now = Instant::now();
                    if now >= measure_until || done.is_cancelled() {
                        break;
                    }
                    let request = picker.next();
                    let sent = latency_start(scheduled, ready_at, now);
                    let result = connection.send(&request).await;
                    ready_at = Instant::now();
                    let measured = now >= measure_from;
                    if measured {
                        if budget.fetch_sub(1, Ordering::Relaxed) == 1 {
                            done.cancel();
                        }
                        let latency = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                        if let Ok(status) = result {
                            tally.latency_us.saturating_record(latency);
                            *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        } else {
                            tally.errors += 1;
                            progress.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        progress.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    scheduled = scheduled.zip(interval).map(|(at, i)| at + i);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for user in users {
        if let Ok(tally) = user.await {
            total.merge(&tally);
        }
    }
    done.cancel();
    let _ = reporter.await;
    let seconds = (Instant::now().min(measure_until) - measure_from).as_secs_f64().max(0.001);
    Summary::new(name, &total, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_request_held_up_by_the_server_counts_from_its_scheduled_time() {
        let at = Instant::now();
        let answered = at + Duration::from_millis(3);
        assert_eq!(latency_start(Some(at), answered, answered), at);
    }

    #[test]
    fn a_paced_request_sent_late_by_its_own_timer_counts_from_the_send() {
        let ready = Instant::now();
        let at = ready + Duration::from_millis(1);
        let woke = at + Duration::from_micros(900);
        assert_eq!(latency_start(Some(at), ready, woke), woke);
        assert_eq!(latency_start(None, ready, woke), woke);
    }
}

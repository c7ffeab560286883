//! `soak`: a long run of mixed traffic against a Kurz this command starts itself (the all-in-one on
//! embedded storage, or command-api, query-api and projector on a broker and Redis), sampling every
//! process's memory and open files, the answers and the click lag as it goes. Distributed, Redis is
//! restarted and the broker goes away in the middle. At the end every redirect served must have been
//! counted once: the soak fails otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::{Method, StatusCode};
use rand::RngExt;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Connection;
use crate::soak_system::{Mode, Process, System};

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    #[arg(long, value_enum, default_value = "embedded")]
    mode: Mode,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 1800)]
    duration: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample: u64,
    /// Seconds after the start that count as warm-up when judging memory growth.
    #[arg(long, default_value_t = 120)]
    warmup: u64,
    /// Total requests per second (paced).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Concurrent connections per API.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Links seeded before the run; redirects go to them (Zipf popularity) and each one's clicks are
    /// checked against the redirects it served.
    #[arg(long, default_value_t = 500)]
    links: usize,
    /// Where the kurz, command-api, query-api and projector binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The tansu binary (distributed mode).
    #[arg(long)]
    tansu: Option<PathBuf>,
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Distributed mode without its faults (the read store's roll-back, the Redis restart, the broker
    /// outage).
    #[arg(long)]
    no_faults: bool,
    /// Redirects, unknown codes and stats only: the data does not grow (but for clicks), so what
    /// memory does is the process's own, not its caches filling with new links.
    #[arg(long)]
    no_writes: bool,
    /// Seconds the broker stays away.
    #[arg(long, default_value_t = 60)]
    outage: u64,
    /// Broker outages in the run: one (at 60%), or more spread over it, each followed by as long
    /// again with the broker up (faults that are rare per outage show in a run of many).
    #[arg(long, default_value_t = 1)]
    outages: u64,
    /// Keep every service's log lines in this directory, a file per service (the soak prints only
    /// their warnings).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Also write the samples and the verdict as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// What one request was for; answers are counted per kind and status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Redirect,
    Unknown,
    Stats,
    Create,
    Update,
}

const KINDS: [Kind; 5] = [Kind::Redirect, Kind::Unknown, Kind::Stats, Kind::Create, Kind::Update];

/// The mix, in percent of all requests: mostly redirects, as in production, with every other kind
/// of traffic alongside. Readers and writers are separate users (as they are separate clients), so
/// a write held up by a broker outage never holds up a redirect of the generator's.
const READ_PERCENT: u64 = 93;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
}

impl Kind {
    fn pick(role: Role, rng: &mut SmallRng) -> Self {
        match (role, rng.random_range(0..100)) {
            (Role::Reader, 0..86) => Self::Redirect, // 80% of all
            (Role::Reader, 86..91) => Self::Unknown, // 5%
            (Role::Reader, _) => Self::Stats,        // 8%
            (Role::Writer, 0..57) => Self::Create,   // 4%
            (Role::Writer, _) => Self::Update,       // 3%
        }
    }
}

/// Answers by kind and class: 2xx, 3xx, 4xx, 5xx, no answer.
#[derive(Default)]
struct Answers([[AtomicU64; 5]; 5]);

impl Answers {
    fn record(&self, kind: Kind, status: Option<StatusCode>) {
        let class = status.map_or(4, |status| usize::from(status.as_u16() / 100).clamp(2, 5) - 2);
        self.0[kind as usize][class].fetch_add(1, Ordering::Relaxed);
    }

    fn take(&self) -> BTreeMap<Kind, Classes> {
        KINDS
            .iter()
            .map(|&kind| {
                let row = &self.0[kind as usize];
                let take = |class: usize| row[class].swap(0, Ordering::Relaxed);
                (kind, Classes { ok: take(0), redirect: take(1), client: take(2), server: take(3), failed: take(4) })
            })
            .collect()
    }
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Classes {
    ok: u64,
    redirect: u64,
    client: u64,
    server: u64,
    /// No answer (connection refused or closed).
    failed: u64,
}

impl Classes {
    fn add(&mut self, other: Self) {
        self.ok += other.ok;
        self.redirect += other.redirect;
        self.client += other.client;
        self.server += other.server;
        self.failed += other.failed;
    }
}

#[derive(Debug, Clone, Serialize)]
struct ProcessSample {
    rss_kib: u64,
    open_files: u64,
    /// Log lines written since the previous sample (all levels) and of them warnings or errors.
    log_lines: u64,
    warn_lines: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Sample {
    at_s: u64,
    /// A fault was under way (or had ended less than a grace period ago) during this window.
    fault: bool,
    processes: BTreeMap<String, ProcessSample>,
    answers: BTreeMap<Kind, Classes>,
    redirect_p99_ms: f64,
    served_redirects: u64,
    /// Served redirects not yet in the stats (None when the stats could not be read).
    click_lag: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Extent {
    start: u64,
    after_warmup: u64,
    max: u64,
    end: u64,
    /// Once traffic stopped and the clicks were counted.
    after_run: u64,
}

#[derive(Debug, Serialize)]
struct Verdict {
    mode: Mode,
    seconds: u64,
    rate: u64,
    links: usize,
    faults: Vec<Fault>,
    requests: BTreeMap<Kind, Classes>,
    server_errors_outside_faults: u64,
    failed_outside_faults: u64,
    rss_kib: BTreeMap<String, Extent>,
    open_files: BTreeMap<String, Extent>,
    warn_lines: BTreeMap<String, u64>,
    max_click_lag: u64,
    served_redirects: u64,
    counted_clicks: u64,
    /// Redirects whose answer never arrived: the server may or may not have counted them.
    unanswered_redirects: u64,
    seconds_to_catch_up: f64,
    links_miscounted: usize,
    /// Distributed: click events of the seeded links on the broker (equal to the served redirects
    /// unless the broker lost or duplicated some).
    logged_clicks: Option<u64>,
    /// Distributed: links whose counted clicks differ from the click events the broker holds
    /// (the projector's fault, not the broker's).
    links_unlike_log: Option<usize>,
    /// The click path's counters at the end, from the redirecting service's `/metrics`.
    click_metrics: BTreeMap<String, f64>,
}

/// Shared by the virtual users and the sampler.
struct Run {
    codes: Vec<String>,
    /// Redirects served (30x answered) per seeded link.
    served: Vec<AtomicU64>,
    unanswered: AtomicU64,
    answers: Answers,
    redirect_latency: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
    zipf: Zipf<f64>,
}

pub async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.links > 0 && args.connections > 0 && args.rate > 0,
        "links, connections and rate are positive"
    );
    let mut system =
        System::start(args.mode, &args.bin_dir, args.tansu.as_deref(), &args.redis_server, args.logs.as_deref())
            .await?;
    eprintln!("soak: {:?} Kurz up; seeding {} links", args.mode, args.links);
    let codes = seed(&system, args.links).await?;
    let run = Arc::new(Run {
        served: codes.iter().map(|_| AtomicU64::new(0)).collect(),
        zipf: Zipf::new(codes.len() as f64, 1.0).context("a Zipf distribution")?,
        codes,
        unanswered: AtomicU64::new(0),
        answers: Answers::default(),
        redirect_latency: std::sync::Mutex::new(histogram()),
    });

    let stop = CancellationToken::new();
    let started = Instant::now();
    let users = start_users(&system, &run, &args, &stop);
    let mut faults: Vec<Fault> = Vec::new();
    let mut samples = Vec::new();
    let mut stats = Connection::new(system.query, Some(system.key.clone()));
    let mut next_sample = started + Duration::from_secs(args.sample);
    let mut plan = fault_plan(&args).into_iter().peekable();
    while started.elapsed() < Duration::from_secs(args.duration) {
        tokio::time::sleep_until(next_sample.into()).await;
        next_sample += Duration::from_secs(args.sample);
        let at_s = started.elapsed().as_secs();
        let fault = faults.iter().any(|fault| fault.overlaps(at_s.saturating_sub(args.sample), at_s));
        let sample = take_sample(&system, &run, &mut stats, at_s, fault).await;
        eprintln!("{}", sample_line(&sample));
        samples.push(sample);
        // Faults start and end between samples, so that the samples go on through them.
        while let Some((_, step)) = plan.next_if(|(at, _)| started.elapsed().as_secs() >= *at) {
            take_step(&mut system, step, started, &mut faults).await?;
        }
    }
    stop.cancel();
    for user in users {
        user.await.ok();
    }
    // An outage longer than what was left of the run ends with it: the clicks must get through.
    if plan.any(|(_, step)| matches!(step, Step::BrokerUp)) {
        take_step(&mut system, Step::BrokerUp, started, &mut faults).await?;
    }
    let served_total: u64 = run.served.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let (counted, seconds_to_catch_up) = catch_up(&mut stats, &run.codes, served_total).await?;
    let unanswered = run.unanswered.load(Ordering::Relaxed);
    let miscounted = counted
        .iter()
        .zip(&run.served)
        .filter(|(counted, served)| {
            let served = served.load(Ordering::Relaxed);
            // A redirect without an answer may have been counted: it may add one, never subtract.
            **counted < served || **counted > served + unanswered
        })
        .count();
    let now = started.elapsed().as_secs();
    let last = samples.last().map_or(0, |sample: &Sample| sample.at_s);
    let fault = faults.iter().any(|fault| fault.overlaps(last, now));
    let after_run = take_sample(&system, &run, &mut stats, now, fault).await;
    let click_metrics = click_metrics(&mut stats).await;
    let verdict = verdict(
        &args,
        &samples,
        &after_run,
        faults,
        served_total,
        counted.iter().sum(),
        unanswered,
        seconds_to_catch_up,
        miscounted,
    );
    let logged_clicks = compare_with_the_log(&system, &run, &counted).await?;
    let verdict = Verdict {
        click_metrics,
        logged_clicks: logged_clicks.as_ref().map(|logged| logged.iter().sum()),
        links_unlike_log: logged_clicks
            .as_ref()
            .map(|logged| logged.iter().zip(&counted).filter(|(l, c)| l != c).count()),
        ..verdict
    };
    println!("{}", serde_json::to_string_pretty(&verdict)?);
    if let Some(path) = &args.output {
        let document = serde_json::json!({ "verdict": verdict, "samples": samples, "after_run": after_run });
        std::fs::write(path, serde_json::to_vec_pretty(&document)?)?;
    }
    system.stop();
    anyhow::ensure!(
        verdict.links_miscounted == 0,
        "{} links' clicks differ from the redirects served",
        verdict.links_miscounted
    );
    anyhow::ensure!(
        verdict.server_errors_outside_faults == 0 && verdict.failed_outside_faults == 0,
        "{} server errors and {} unanswered requests outside the faults",
        verdict.server_errors_outside_faults,
        verdict.failed_outside_faults
    );
    Ok(())
}

/// Distributed: each seeded link's click events on the broker, and a line for each of the first
/// links whose count is off (served, on the broker, counted): tells clicks the broker never kept
/// from clicks the projector never folded.
async fn compare_with_the_log(system: &System, run: &Run, counted: &[u64]) -> anyhow::Result<Option<Vec<u64>>> {
    let logged = system.logged_clicks().await?;
    let logged_clicks = logged
        .as_ref()
        .map(|logged| run.codes.iter().map(|code| logged.get(code).copied().unwrap_or(0)).collect::<Vec<_>>());
    for (index, code) in
        run.codes.iter().enumerate().filter(|(i, _)| counted[*i] != run.served[*i].load(Ordering::Relaxed)).take(10)
    {
        let logged = logged_clicks.as_ref().map(|logged| logged[index]);
        eprintln!(
            "soak: {code}: served {}, on the broker {logged:?}, counted {}",
            run.served[index].load(Ordering::Relaxed),
            counted[index]
        );
    }
    Ok(logged_clicks)
}

/// Distributed: the read-store Redis goes back to its state at 20% of the run at 30%, the services'
/// Redis restarts at 40%, the broker goes away at 60% (with `--outages` above one: from 10% on, one
/// outage per equal share of the rest of the run).
fn fault_plan(args: &SoakArgs) -> Vec<(u64, Step)> {
    if args.mode != Mode::Distributed || args.no_faults {
        return Vec::new();
    }
    let mut plan = vec![
        (args.duration / 5, Step::SnapshotReadStore),
        (args.duration * 3 / 10, Step::RollBackReadStore),
        (args.duration * 2 / 5, Step::RestartRedis),
    ];
    if args.outages == 1 {
        let outage = args.duration * 3 / 5;
        plan.extend([(outage, Step::BrokerDown), (outage + args.outage, Step::BrokerUp)]);
    } else if args.outages > 1 {
        let first = args.duration / 10;
        let period = (args.duration - first) / args.outages;
        let length = args.outage.min(period / 2);
        for at in (0..args.outages).map(|k| first + k * period) {
            plan.extend([(at, Step::BrokerDown), (at + length, Step::BrokerUp)]);
        }
    }
    plan.sort_by_key(|(at, _)| *at);
    plan
}

async fn take_step(system: &mut System, step: Step, started: Instant, faults: &mut Vec<Fault>) -> anyhow::Result<()> {
    let now = started.elapsed().as_secs();
    eprintln!("soak: {step:?} at {now} s");
    match step {
        Step::RestartRedis => {
            system.restart_redis().await?;
            faults.push(Fault { name: "redis restart", from_s: now, to_s: Some(started.elapsed().as_secs()) });
        }
        Step::SnapshotReadStore => system.snapshot_read_store().await?,
        Step::RollBackReadStore => {
            system.roll_back_read_store().await?;
            let to_s = Some(started.elapsed().as_secs());
            faults.push(Fault { name: "read store rolled back to an older snapshot", from_s: now, to_s });
        }
        Step::BrokerDown => {
            system.broker_down().await;
            faults.push(Fault { name: "broker outage", from_s: now, to_s: None });
        }
        Step::BrokerUp => {
            system.broker_up();
            faults.iter_mut().filter(|f| f.to_s.is_none()).for_each(|f| f.to_s = Some(now));
        }
    }
    Ok(())
}

/// Every served redirect must reach the stats: waits (bounded) for the lag to close; returns each
/// link's count and the seconds it took.
async fn catch_up(stats: &mut Connection, codes: &[String], served: u64) -> anyhow::Result<(Vec<u64>, f64)> {
    let traffic_ended = Instant::now();
    let deadline = traffic_ended + CATCH_UP_DEADLINE;
    loop {
        let counted = counted_clicks(stats, codes).await;
        let caught_up = counted.as_ref().is_some_and(|c| c.iter().sum::<u64>() >= served);
        if caught_up || Instant::now() >= deadline {
            let counted = counted.context("the stats could not be read after the run")?;
            return Ok((counted, traffic_ended.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long after a fault ends its effects may still show (reconnects, retried appends).
const FAULT_GRACE_S: u64 = 30;

#[derive(Debug, Clone, Copy)]
enum Step {
    SnapshotReadStore,
    RollBackReadStore,
    RestartRedis,
    BrokerDown,
    BrokerUp,
}

#[derive(Debug, Clone, Serialize)]
struct Fault {
    name: &'static str,
    from_s: u64,
    /// None while it lasts.
    to_s: Option<u64>,
}

impl Fault {
    /// Whether the window `[from, to]` (seconds into the run) saw this fault or its aftermath.
    fn overlaps(&self, from: u64, to: u64) -> bool {
        self.from_s <= to && self.to_s.is_none_or(|end| end + FAULT_GRACE_S >= from)
    }
}
const CATCH_UP_DEADLINE: Duration = Duration::from_mins(3);

fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn seed(system: &System, count: usize) -> anyhow::Result<Vec<String>> {
    let mut connection = Connection::new(system.command, Some(system.key.clone()));
    let mut codes = Vec::with_capacity(count);
    for i in 0..count {
        codes.push(connection.create(&format!("https://example.com/soak/{i}")).await?);
    }
    // Distributed, a link redirects once the projector has it: wait until the last one reads.
    let mut reader = Connection::new(system.query, Some(system.key.clone()));
    let deadline = Instant::now() + Duration::from_mins(2);
    for code in &codes {
        loop {
            let (status, _) = reader.call(Method::GET, &format!("/v1/links/{code}"), None).await?;
            if status == StatusCode::OK {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "seeded link {code} never became readable ({status})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(codes)
}

fn start_users(
    system: &System,
    run: &Arc<Run>,
    args: &SoakArgs,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let writers = if args.no_writes { 0 } else { (args.connections / 4).max(1) };
    let readers = args.connections.saturating_sub(writers).max(1);
    (0..readers + writers)
        .map(|user| {
            let (run, stop) = (run.clone(), stop.clone());
            let mut commands = Connection::new(system.command, Some(system.key.clone()));
            let mut queries = Connection::new(system.query, Some(system.key.clone()));
            let (role, connections, percent) = if user < readers {
                (Role::Reader, readers, READ_PERCENT)
            } else {
                (Role::Writer, writers, 100 - READ_PERCENT)
            };
            let rate = (args.rate * percent / 100).max(1);
            let interval = Duration::from_secs_f64(connections as f64 / rate as f64);
            tokio::spawn(async move {
                let mut rng: SmallRng = rand::make_rng();
                let mut at = Instant::now() + interval.mul_f64(user as f64 / connections as f64);
                let mut sequence = 0u64;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = stop.cancelled() => break,
                    }
                    // A user held up by a fault does not burst afterwards to make up for it.
                    at = (at + interval).max(Instant::now());
                    sequence += 1;
                    let kind = Kind::pick(role, &mut rng);
                    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rank in 1..=links")]
                    let link = (run.zipf.sample(&mut rng) as usize).saturating_sub(1).min(run.codes.len() - 1);
                    let code = &run.codes[link];
                    let sent = Instant::now();
                    let answer = match kind {
                        Kind::Redirect => queries.call(Method::GET, &format!("/{code}"), None).await,
                        Kind::Unknown => {
                            queries.call(Method::GET, &format!("/nope{:010}", rng.random::<u32>()), None).await
                        }
                        Kind::Stats => queries.call(Method::GET, &format!("/v1/links/{code}/stats"), None).await,
                        Kind::Create => {
                            let body = format!(r#"{{"target_url":"https://example.com/soak/new/{user}/{sequence}"}}"#);
                            commands.call(Method::POST, "/v1/links", Some(body)).await
                        }
                        Kind::Update => {
                            let body = format!(r#"{{"target_url":"https://example.com/soak/{link}?v={sequence}"}}"#);
                            commands.call(Method::PATCH, &format!("/v1/links/{code}"), Some(body)).await
                        }
                    };
                    let status = answer.ok().map(|(status, _)| status);
                    if kind == Kind::Redirect {
                        match status {
                            Some(status) if status.is_redirection() => {
                                run.served[link].fetch_add(1, Ordering::Relaxed);
                            }
                            None => {
                                run.unanswered.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(_) => {}
                        }
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                        run.redirect_latency.lock().expect("not poisoned").saturating_record(micros);
                    }
                    run.answers.record(kind, status);
                }
            })
        })
        .collect()
}

/// Each seeded link's counted clicks, or None when any stats read failed.
async fn counted_clicks(reader: &mut Connection, codes: &[String]) -> Option<Vec<u64>> {
    let mut counted = Vec::with_capacity(codes.len());
    for code in codes {
        let (status, answer) = reader.call(Method::GET, &format!("/v1/links/{code}/stats"), None).await.ok()?;
        if status != StatusCode::OK {
            return None;
        }
        let answer: serde_json::Value = serde_json::from_slice(&answer).ok()?;
        counted.push(answer["total_clicks"].as_u64()?);
    }
    Some(counted)
}

async fn take_sample(system: &System, run: &Run, stats: &mut Connection, at_s: u64, fault: bool) -> Sample {
    let served: u64 = run.served.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let click_lag =
        counted_clicks(stats, &run.codes).await.map(|counted| served.saturating_sub(counted.iter().sum::<u64>()));
    let redirect_p99_ms = {
        let mut latency = run.redirect_latency.lock().expect("not poisoned");
        let p99 = latency.value_at_quantile(0.99) as f64 / 1000.0;
        latency.reset();
        p99
    };
    Sample {
        at_s,
        fault,
        processes: system.processes().map(|process| (process.name.clone(), process_sample(process))).collect(),
        answers: run.answers.take(),
        redirect_p99_ms,
        served_redirects: served,
        click_lag,
    }
}

fn process_sample(process: &Process) -> ProcessSample {
    let (log_lines, warn_lines) = process.take_log_counts();
    ProcessSample {
        rss_kib: resident_kib(process.pid()).unwrap_or(0),
        open_files: std::fs::read_dir(format!("/proc/{}/fd", process.pid())).map_or(0, |dir| dir.count() as u64),
        log_lines,
        warn_lines,
    }
}

/// `VmRSS` of a process, from `/proc`.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sample_line(sample: &Sample) -> String {
    let processes: Vec<String> = sample
        .processes
        .iter()
        .map(|(name, p)| format!("{name} rss={}MiB fds={} warn={}", p.rss_kib / 1024, p.open_files, p.warn_lines))
        .collect();
    let mut total = Classes::default();
    for classes in sample.answers.values() {
        total.add(*classes);
    }
    format!(
        "[{:>5}s{}] {} | 2xx={} 3xx={} 4xx={} 5xx={} failed={} | redirect p99 {:.2} ms | lag {}",
        sample.at_s,
        if sample.fault { " fault" } else { "" },
        processes.join(" | "),
        total.ok,
        total.redirect,
        total.client,
        total.server,
        total.failed,
        sample.redirect_p99_ms,
        sample.click_lag.map_or_else(|| "unreadable".to_owned(), |lag| lag.to_string()),
    )
}

#[expect(clippy::too_many_arguments, reason = "the run's parts, gathered once at the end")]
fn verdict(
    args: &SoakArgs,
    samples: &[Sample],
    after_run: &Sample,
    faults: Vec<Fault>,
    served_redirects: u64,
    counted_clicks: u64,
    unanswered_redirects: u64,
    seconds_to_catch_up: f64,
    links_miscounted: usize,
) -> Verdict {
    let mut requests: BTreeMap<Kind, Classes> = BTreeMap::new();
    let (mut server_errors_outside_faults, mut failed_outside_faults) = (0, 0);
    // The last answers (between the last sample and the end of traffic) are in `after_run`.
    for sample in samples.iter().chain(std::iter::once(after_run)) {
        for (kind, classes) in &sample.answers {
            requests.entry(*kind).or_default().add(*classes);
            if !sample.fault {
                server_errors_outside_faults += classes.server;
                failed_outside_faults += classes.failed;
            }
        }
    }
    let names: Vec<String> = samples.first().map(|s| s.processes.keys().cloned().collect()).unwrap_or_default();
    let extent = |read: &dyn Fn(&ProcessSample) -> u64, name: &str| {
        let values: Vec<(u64, u64)> =
            samples.iter().filter_map(|s| s.processes.get(name).map(|p| (s.at_s, read(p)))).collect();
        Extent {
            start: values.first().map_or(0, |v| v.1),
            after_warmup: values.iter().find(|(at, _)| *at >= args.warmup).map_or(0, |v| v.1),
            max: values.iter().map(|v| v.1).max().unwrap_or(0),
            end: values.last().map_or(0, |v| v.1),
            after_run: after_run.processes.get(name).map_or(0, read),
        }
    };
    Verdict {
        mode: args.mode,
        seconds: args.duration,
        rate: args.rate,
        links: args.links,
        faults,
        requests,
        server_errors_outside_faults,
        failed_outside_faults,
        rss_kib: names.iter().map(|name| (name.clone(), extent(&|p| p.rss_kib, name))).collect(),
        open_files: names.iter().map(|name| (name.clone(), extent(&|p| p.open_files, name))).collect(),
        warn_lines: names
            .iter()
            .map(|name| {
                (name.clone(), samples.iter().filter_map(|s| s.processes.get(name)).map(|p| p.warn_lines).sum())
            })
            .collect(),
        max_click_lag: samples.iter().filter_map(|s| s.click_lag).max().unwrap_or(0),
        served_redirects,
        counted_clicks,
        unanswered_redirects,
        seconds_to_catch_up,
        links_miscounted,
        logged_clicks: None,
        links_unlike_log: None,
        click_metrics: BTreeMap::new(),
    }
}

/// Where the clicks went, as the redirecting service counts them: appended, spooled, still in the
/// spool, dropped, lost.
async fn click_metrics(reader: &mut Connection) -> BTreeMap<String, f64> {
    const NAMES: [&str; 7] = [
        "clicks_appended_total",
        "clicks_spooled_total",
        "click_spool_clicks",
        "click_append_failures_total",
        "clicks_dropped_total",
        "clicks_lost_total",
        "click_spool_quarantined_total",
    ];
    let Ok((_, text)) = reader.call(Method::GET, "/metrics", None).await else { return BTreeMap::new() };
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            let bare = name.split('{').next()?;
            if !NAMES.contains(&bare) {
                return None;
            }
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

//! Latency histograms, status counts, the live progress line and the summary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// What one virtual user saw.
#[derive(Debug)]
pub struct Tally {
    pub latency_us: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: &Self) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        self.errors += other.errors;
    }
}

/// Counters the progress line reads while users run.
#[derive(Debug, Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// Prints `requests, rps, errors` every second until `done`.
pub async fn progress_line(name: String, progress: Arc<Progress>, done: CancellationToken) {
    let mut previous = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut elapsed = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        elapsed += 1;
        let requests = progress.requests.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        eprintln!("[{name}] {elapsed:>4}s  requests={requests:<10} rps={:<8} errors={errors}", requests - previous);
        previous = requests;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub target: String,
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
}

impl Summary {
    pub fn new(target: &str, tally: &Tally, seconds: f64) -> Self {
        let ms = |quantile: f64| tally.latency_us.value_at_quantile(quantile) as f64 / 1000.0;
        let requests = tally.latency_us.len();
        Self {
            target: target.to_owned(),
            requests,
            seconds,
            rps: requests as f64 / seconds,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: tally.latency_us.max() as f64 / 1000.0,
            statuses: tally.statuses.clone(),
            errors: tally.errors,
        }
    }

    pub fn print(&self) {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        println!(
            "{:<8} {:>10.0} rps  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  p99.9 {:>7.3} ms  max {:>8.3} ms  errors {}  [{}]",
            self.target,
            self.rps,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.errors,
            statuses.join(" ")
        );
    }
}

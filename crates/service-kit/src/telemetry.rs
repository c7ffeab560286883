//! Logs (tracing) and metrics (Prometheus), set up once per process.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Whether every request gets an access log line (`log.access`); process-wide, like the logs.
static ACCESS_LOG: AtomicBool = AtomicBool::new(false);

pub(crate) fn access_log() -> bool {
    ACCESS_LOG.load(Ordering::Relaxed)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines (`log.format`).
pub fn init_logging(config: &LogConfig) {
    ACCESS_LOG.store(config.access, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second call (several apps in one test process) keeps the first subscriber.
    drop(installed);
}

/// Logging as the configuration says, before the rest of the configuration is read (so that
/// reading it can log). A `log` section that does not parse starts default logging here; reading
/// the whole configuration then names the error.
pub fn init_logging_from_config() {
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct LogOnly {
        log: LogConfig,
    }
    let LogOnly { log } = crate::config::peek().unwrap_or_default();
    init_logging(&log);
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use. Metrics are process-wide, so several
/// apps in one process (as in tests) share it.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Up to the command path's 30 s broker timeout, so the slowest answers land in a bucket.
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            start_upkeep(handle.clone());
            describe();
            handle
        })
        .clone()
}

/// `# HELP` text for every metric Kurz records, and `build_info`.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route, method (OTHER for non-standard ones) and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route, method and status"
    );
    describe_counter!("redirects_total", "Redirect lookups, by outcome (redirected, not_found, gone)");
    describe_counter!("link_cache_total", "In-process link cache lookups, by result (hit, miss)");
    describe_counter!("link_cache_redis_total", "Shared Redis link cache lookups, by result");
    describe_counter!(
        "link_cache_redis_errors_total",
        "Shared Redis link cache operations that failed or timed out (lookups went to the store)"
    );
    describe_counter!("link_cache_redis_rewarmed_total", "Hot links cached again in Redis right after they changed");
    describe_counter!("links_created_total", "Links created");
    describe_counter!("clicks_appended_total", "Clicks appended to the event log");
    describe_counter!("clicks_reported_total", "Clicks reported through POST /v1/clicks");
    describe_counter!("clicks_dropped_total", "Clicks dropped (queue full, or spool full): lost to the statistics");
    describe_counter!("clicks_lost_total", "Clicks that could be neither appended nor spooled");
    describe_counter!("clicks_spooled_total", "Clicks written to the disk spool while the event log did not take them");
    describe_counter!(
        "click_append_failures_total",
        "Failed appends of click batches (they go to the spool, or are retried)"
    );
    describe_gauge!("click_spool_clicks", "Clicks waiting in the disk spool");
    describe_gauge!("click_spool_bytes", metrics::Unit::Bytes, "Bytes of clicks waiting in the disk spool");
    describe_counter!("projector_records_applied_total", "Event-log records folded into the read models");
    describe_counter!(
        "projector_records_undecodable_total",
        "Event-log records that did not decode (skipped, checkpoint moved)"
    );
    describe_gauge!(
        "projector_lag_records",
        "Records appended to the event log but not yet folded into the read models"
    );
    describe_counter!(
        "command_read_model_failures_total",
        "Commands answered before the read models showed them (the projector folds them later)"
    );
    describe_counter!(
        "link_change_publish_failures_total",
        "Link changes that could not be announced to the query APIs"
    );
    describe_counter!("rate_limited_total", "Requests refused with 429, by limit policy");
    describe_gauge!("blocklist_domains", "Domains on the operator's blocklist");
    describe_gauge!("build_info", "Always 1; the labels say which build runs");
    metrics::gauge!("build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The recorder keeps every histogram sample until a scrape or an upkeep folds it into the buckets:
/// without upkeep, an unscraped process grew by 8 bytes per request (3.5 MB/s at 140k redirects/s).
/// A thread of its own, because the recorder may be installed outside any async runtime.
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("kurz-metrics-upkeep".to_owned()).spawn(move || {
        let process = metrics_process::Collector::default();
        process.describe();
        loop {
            // Process metrics (CPU seconds, resident memory, open file descriptors, threads) as
            // of the last upkeep: at most 5 s old when scraped.
            process.collect();
            handle.run_upkeep();
            std::thread::sleep(UPKEEP_EVERY);
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the metrics upkeep; histogram samples wait for scrapes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without upkeep, every histogram sample of an unscraped process stays in memory.
    #[test]
    #[cfg(target_os = "linux")]
    fn installing_the_recorder_starts_its_upkeep() {
        let _handle = metrics();
        // A new thread names itself once it runs; until then it shows its parent's name.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut names = thread_names();
        while !names.iter().any(|name| name == UPKEEP_THREAD_SHOWN_AS) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            names = thread_names();
        }
        assert!(names.iter().any(|name| name == UPKEEP_THREAD_SHOWN_AS), "{names:?}");
    }

    /// Thread names are cut at 15 bytes.
    const UPKEEP_THREAD_SHOWN_AS: &str = "kurz-metrics-up";

    fn thread_names() -> Vec<String> {
        let threads = std::fs::read_dir("/proc/self/task").expect("the process's threads are listed");
        threads
            .filter_map(|thread| std::fs::read_to_string(thread.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }
}

//! Logs (tracing) and metrics (Prometheus), set up once per process.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogConfig, LogFormat};
use crate::request_context::RequestContext;

/// Whether every request gets an access log line (`log.access`); process-wide, like the logs.
static ACCESS_LOG: AtomicBool = AtomicBool::new(false);

pub(crate) fn access_log() -> bool {
    ACCESS_LOG.load(Ordering::Relaxed)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines (`log.format`),
/// and request spans to an OTLP collector when `log.otlp_endpoint` is set.
pub fn init_logging(config: &LogConfig) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    ACCESS_LOG.store(config.access, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let format = tracing_subscriber::fmt::format();
    let (json, text) = match config.format {
        LogFormat::Json => {
            let lines = tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr);
            (Some(lines.event_format(WithRequest { inner: format.json(), json: true })), None)
        }
        LogFormat::Text => {
            let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
            (None, Some(lines.event_format(WithRequest { inner: format, json: false })))
        }
    };
    // The request spans made for export are for the collector: the lines carry the ids already.
    #[cfg(feature = "otlp")]
    let (json, text) = {
        use tracing_subscriber::Layer as _;
        let not_for_lines = || tracing_subscriber::filter::filter_fn(|metadata| metadata.target() != "kurz::trace");
        (json.map(|l| l.with_filter(not_for_lines())), text.map(|l| l.with_filter(not_for_lines())))
    };
    #[cfg(feature = "otlp")]
    let traces = config.otlp_endpoint.as_deref().map(otlp::layer).transpose()?;
    #[cfg(not(feature = "otlp"))]
    let traces: Option<tracing_subscriber::layer::Identity> = match config.otlp_endpoint {
        None => None,
        Some(_) => {
            anyhow::bail!("log.otlp_endpoint is set, but this build has no OTLP export (build with --features otlp)")
        }
    };
    let installed = tracing_subscriber::registry().with(traces).with(filter).with(json).with(text).try_init();
    // A second call (several apps in one test process) keeps the first subscriber.
    drop(installed);
    Ok(())
}

/// A log line formatter that adds the id and trace of the request being served (if any) to every
/// line: first in a JSON object, last in a text line.
struct WithRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(request) = RequestContext::current(RequestContext::clone) else {
            return self.inner.format_event(context, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(context, Writer::new(&mut line), event)?;
        let mut ids = Vec::with_capacity(3);
        ids.push(("request_id", request.id()));
        if let Some(trace) = &request.trace {
            ids.extend([("trace_id", trace.trace_id()), ("parent_id", trace.parent_id())]);
        }
        if self.json
            && let Some(rest) = line.strip_prefix('{')
        {
            writer.write_char('{')?;
            for (name, value) in ids {
                // Ids are visible ASCII: only quotes and backslashes need escaping.
                write!(writer, "\"{name}\":\"")?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        writer.write_char('\\')?;
                    }
                    writer.write_char(c)?;
                }
                writer.write_char('"')?;
                if !rest.starts_with('}') {
                    writer.write_char(',')?;
                }
            }
            writer.write_str(rest)
        } else {
            let (text, newline) = line.strip_suffix('\n').map_or((line.as_str(), ""), |text| (text, "\n"));
            writer.write_str(text)?;
            for (name, value) in ids {
                write!(writer, " {name}={value}")?;
            }
            writer.write_str(newline)
        }
    }
}

/// Sends the spans still waiting to the OTLP collector; call before the process exits.
pub fn flush() {
    #[cfg(feature = "otlp")]
    otlp::flush();
}

/// Logging as the configuration says, before the rest of the configuration is read (so that
/// reading it can log). A `log` section that does not parse starts default logging here; reading
/// the whole configuration then names the error.
pub fn init_logging_from_config() -> anyhow::Result<()> {
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct LogOnly {
        log: LogConfig,
    }
    let LogOnly { log } = crate::config::peek().unwrap_or_default();
    init_logging(&log)
}

/// Request spans over OTLP/HTTP (protobuf): a batch processor on a thread of its own, with a
/// blocking client, so exporting never runs on the runtime serving requests.
#[cfg(feature = "otlp")]
mod otlp {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// Whether request spans are exported (and so worth making).
    pub fn exporting_traces() -> bool {
        PROVIDER.get().is_some()
    }

    pub fn layer<S>(endpoint: &str) -> anyhow::Result<impl tracing_subscriber::Layer<S>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        // A blocking client runs a runtime of its own, which may be neither made nor dropped on
        // an async runtime's thread (logging starts on one): make it, and the exporter, on a
        // thread of their own.
        let build = {
            let endpoint = endpoint.clone();
            move || {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint.as_str())
                    .with_http_client(reqwest::blocking::Client::new())
                    .build()?;
                let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name()).build();
                Ok::<_, opentelemetry_otlp::ExporterBuildError>(
                    SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build(),
                )
            }
        };
        let provider = std::thread::spawn(build)
            .join()
            .map_err(|_| anyhow::anyhow!("log.otlp_endpoint {endpoint}: the exporter could not be made"))?
            .map_err(|error| anyhow::anyhow!("log.otlp_endpoint {endpoint}: {error}"))?;
        let tracer = provider.tracer("kurz");
        let _ = PROVIDER.set(provider);
        Ok(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    /// The binary's name: `query-api`, `command-api`, `projector` or `kurz`.
    fn service_name() -> String {
        std::env::args()
            .next()
            .and_then(|program| Some(std::path::Path::new(&program).file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "kurz".to_owned())
    }

    pub fn flush() {
        if let Some(Err(error)) = PROVIDER.get().map(SdkTracerProvider::force_flush) {
            tracing::warn!(%error, "cannot send the last spans to the OTLP collector");
        }
    }

    /// Makes `span` a child of the caller's span (from its `traceparent`), so the trace continues.
    pub fn continue_trace(span: &tracing::Span, trace: &crate::request_context::TraceParent) {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let (Ok(trace_id), Ok(span_id)) = (TraceId::from_hex(trace.trace_id()), SpanId::from_hex(trace.parent_id()))
        else {
            return;
        };
        let flags = if trace.sampled() { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let parent = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

#[cfg(feature = "otlp")]
pub(crate) use otlp::{continue_trace, exporting_traces};

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
    describe_counter!(
        "projector_skipped_records_total",
        "Records never folded: a batch started beyond its checkpoint (the log no longer holds them)"
    );
    describe_counter!(
        "projector_rewinds_total",
        "Partitions read again from the read store's checkpoint, which was behind what had been read"
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

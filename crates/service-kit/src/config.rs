//! Layered configuration: built-in defaults, then an optional TOML file (`KURZ_CONFIG`, default
//! `kurz.toml`), then `KURZ_`-prefixed environment variables with `__` between levels
//! (`KURZ_HTTP__LISTEN=0.0.0.0:8080`).
//!
//! A file is written for this program, so a key it does not know is an error naming the key and
//! the file. The environment is shared with everything else in a container (Kubernetes injects
//! `<RELEASE>_<SERVICE>_PORT` and friends for every service of a release named `kurz`), so a
//! `KURZ_` variable that names no setting is logged once, by name, and ignored.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `KURZ_` variables that are not settings: the config file's path (the tests' own start `TEST_`).
const NOT_SETTINGS: [&str; 1] = ["config"];

pub fn load<T: Serialize + DeserializeOwned + Default>() -> anyhow::Result<T> {
    let settings = Settings::of(&T::default());
    for name in settings.unknown_variables(std::env::vars().map(|(name, _)| name)) {
        tracing::warn!(variable = %name, "ignoring an environment variable that names no setting");
    }
    extract(settings)
}

/// Reads a part of the configuration (which mode to run in, say) without naming the variables
/// that part does not know: the configuration read next does.
pub fn peek<T: Serialize + DeserializeOwned + Default>() -> anyhow::Result<T> {
    extract(Settings::of(&T::default()))
}

fn extract<T: Serialize + DeserializeOwned + Default>(settings: Settings) -> anyhow::Result<T> {
    let file = std::env::var("KURZ_CONFIG").unwrap_or_else(|_| "kurz.toml".to_owned());
    Figment::from(Serialized::defaults(T::default()))
        .merge(Toml::file(file))
        .merge(Env::prefixed("KURZ_").filter(move |key| settings.knows(key.as_str())).split("__"))
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {}", e.to_string().replace('\n', "; ")))
}

/// The settings a configuration type has, as dotted paths (`http.listen`), and the maps whose keys
/// are free (`kafka.client.<librdkafka property>`).
#[derive(Debug, Clone)]
struct Settings {
    paths: BTreeSet<String>,
    open_maps: BTreeSet<String>,
}

impl Settings {
    fn of<T: Serialize>(defaults: &T) -> Self {
        let mut settings = Self { paths: BTreeSet::new(), open_maps: BTreeSet::new() };
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(defaults) {
            settings.walk("", &fields);
        }
        settings
    }

    fn walk(&mut self, prefix: &str, fields: &serde_json::Map<String, serde_json::Value>) {
        for (name, value) in fields {
            let path = format!("{prefix}{name}");
            match value {
                // A map with free keys, or an optional section that is unset by default: anything
                // below it may be meant (`read_store.redis.url`), and the fields' own checks judge it.
                serde_json::Value::Object(inner) if inner.is_empty() => {
                    self.open_maps.insert(format!("{path}."));
                }
                serde_json::Value::Null => {
                    self.open_maps.insert(format!("{path}."));
                }
                serde_json::Value::Object(inner) => self.walk(&format!("{path}."), inner),
                _ => {}
            }
            self.paths.insert(path);
        }
    }

    /// Whether an environment key (prefix stripped, `__` between levels) names a setting.
    fn knows(&self, key: &str) -> bool {
        let path = key.to_ascii_lowercase().replace("__", ".");
        self.paths.contains(&path) || self.open_maps.iter().any(|map| path.starts_with(map.as_str()))
    }

    /// The `KURZ_` variables among `names` that name no setting.
    fn unknown_variables(&self, names: impl Iterator<Item = String>) -> Vec<String> {
        names
            .filter(|name| {
                name.strip_prefix("KURZ_").is_some_and(|key| {
                    let lower = key.to_ascii_lowercase();
                    !lower.starts_with("test_") && !NOT_SETTINGS.contains(&lower.as_str()) && !self.knows(key)
                })
            })
            .collect()
    }
}

/// Logs: their format, and whether every request is logged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// One line per request answered (target `kurz::access`): method, path, status, duration,
    /// request id and trace id.
    pub access: bool,
    /// Export request spans over OTLP/HTTP to this collector (`http://collector:4318`); needs a
    /// build with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The in-process link cache (every service that answers redirects).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of links (and unknown codes) the in-process cache holds: each entry weighs its
    /// target and about 114 bytes besides.
    pub capacity_bytes: u64,
}

impl Default for CacheConfig {
    /// 256 MiB: 10^6 links with 120-byte targets.
    fn default() -> Self {
        Self { capacity_bytes: 256 << 20 }
    }
}

/// Recording the clicks of redirects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClicksConfig {
    /// Record a click for every redirect served (off: redirects only, e.g. to measure their cost).
    pub record_redirects: bool,
    /// Clicks queued in memory on their way to the log.
    pub queue_capacity: usize,
    /// Distributed query API: where clicks wait on disk while Kafka does not take them (one
    /// directory per instance).
    pub spool_dir: PathBuf,
    /// Distributed query API: the spool's bound; beyond it clicks are dropped and counted.
    pub spool_max_bytes: u64,
}

impl Default for ClicksConfig {
    fn default() -> Self {
        Self {
            record_redirects: true,
            queue_capacity: 100_000,
            spool_dir: PathBuf::from("click-spool"),
            spool_max_bytes: 1 << 30,
        }
    }
}

/// Where visitors' places come from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoConfig {
    /// A MaxMind-format city database (`.mmdb`: GeoLite2-City, DB-IP lite city, …). Read into
    /// memory, and read again when the file changes. Without one, places read `Unknown`.
    pub database: Option<PathBuf>,
}

/// How clicks are classified.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Markers (ignoring ASCII case) that make an agent containing one a bot, besides the
    /// maintained lists: your own uptime checker, a QA farm's browsers. Changing them and running a
    /// rebuild reclassifies every past click (events keep the raw agent).
    pub bot_agents: Vec<String>,
}

impl AnalyticsConfig {
    pub fn bot_rules(&self) -> anyhow::Result<std::sync::Arc<kurz_domain::analytics::BotRules>> {
        let rules = kurz_domain::analytics::BotRules::new(&self.bot_agents)
            .map_err(|error| anyhow::anyhow!("analytics.bot_agents: {error}"))?;
        Ok(std::sync::Arc::new(rules))
    }
}

/// Generated codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodesConfig {
    /// Sequence numbers leased per durable write (embedded) or Redis round trip.
    pub lease_block: u64,
}

impl Default for CodesConfig {
    fn default() -> Self {
        Self { lease_block: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// A second listener for the API (`/v1/…`), `/ready` and `/metrics`; the main listener then
    /// serves only redirects (and `/health`), so only those need to face the internet.
    pub admin_listen: Option<SocketAddr>,
    /// The origin short links are served from; `short_url` is this plus `/{code}`. Empty means
    /// `http://` plus the bound address.
    pub public_base_url: String,
    pub trust_forwarded_for: bool,
    /// A request's header must arrive within this time of the connection being ready for it; this
    /// also closes keep-alive connections idle for that long (slow or silent clients hold nothing).
    pub header_read_timeout_ms: u64,
    /// A request is answered 503 when it takes longer, body upload included.
    pub request_timeout_ms: u64,
    /// Connections served at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// The largest request head (request line and headers) read; a larger one is answered 431.
    pub max_header_bytes: usize,
    /// On SIGTERM, how long in-flight requests may take before their connections are closed.
    pub shutdown_timeout_ms: u64,
}

/// The listeners of one service: the main one, and the admin one when configured.
#[derive(Debug)]
pub struct Listeners {
    pub main: tokio::net::TcpListener,
    pub admin: Option<tokio::net::TcpListener>,
}

impl Listeners {
    pub fn local_addr(&self) -> SocketAddr {
        self.main.local_addr().expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }
}

impl HttpConfig {
    /// Binds `listen` and, when set, `admin_listen`.
    pub async fn bind_all(&self) -> anyhow::Result<Listeners> {
        let main = bind(self.listen).await?;
        let admin = match self.admin_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        Ok(Listeners { main, admin })
    }

    /// The origin of short links: `public_base_url`, or `http://` plus the address bound.
    pub fn base_url(&self, bound: SocketAddr) -> std::sync::Arc<str> {
        if self.public_base_url.is_empty() {
            format!("http://{bound}").into()
        } else {
            self.public_base_url.as_str().into()
        }
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("binding {address}: {e}"))
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            public_base_url: String::new(),
            trust_forwarded_for: false,
            header_read_timeout_ms: 15_000,
            request_timeout_ms: 30_000,
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            shutdown_timeout_ms: 20_000,
        }
    }
}

/// Tests every distributed service binary runs: it refuses a deployment it cannot serve, and says
/// why. `refusal_tests!(env!("CARGO_BIN_EXE_<name>"))` in the service's `tests/`; the test crate
/// needs `tempfile`.
#[macro_export]
macro_rules! refusal_tests {
    ($binary:expr) => {
        fn run(environment: &[(&str, &str)]) -> std::process::Output {
            std::process::Command::new($binary)
                .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
                .envs(environment.iter().copied())
                .output()
                .expect("the binary runs")
        }

        #[test]
        fn without_the_shared_secret_key_file_it_refuses_to_start_and_says_how_to_make_one() {
            let dir = tempfile::tempdir().expect("temp dir");
            let missing = dir.path().join("missing.key");
            let output = run(&[("KURZ_SECRET_KEY_FILE", missing.to_str().expect("utf-8 path"))]);
            assert!(!output.status.success());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("missing.key"), "names the file: {stderr}");
            assert!(stderr.contains("head -c 32 /dev/urandom"), "says how to create it: {stderr}");
        }

        #[test]
        fn an_invalid_setting_is_named_in_one_line_with_exit_code_2() {
            let output = run(&[("KURZ_KAFKA__PARTITIONS", "lots")]);
            assert_eq!(output.status.code(), Some(2));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("invalid configuration"), "{stderr}");
            assert!(stderr.to_lowercase().contains("kafka.partitions"), "names the setting: {stderr}");
            assert!(!stderr.contains("backtrace"), "no backtrace: {stderr}");
        }

        #[test]
        fn an_unknown_key_in_the_file_refuses_to_start_naming_the_key_and_the_file() {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = dir.path().join("service.toml");
            std::fs::write(&file, "[http]\nlisten_prot = \"127.0.0.1:0\"\n").expect("written");
            let output = run(&[("KURZ_CONFIG", file.to_str().expect("utf-8 path"))]);
            assert_eq!(output.status.code(), Some(2));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("listen_prot") && stderr.contains("service.toml"), "{stderr}");
        }

        #[test]
        fn help_and_version_answer_and_an_unknown_argument_is_a_usage_error() {
            let output = std::process::Command::new($binary).arg("--version").output().expect("runs");
            assert!(output.status.success());
            assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
            let output = std::process::Command::new($binary).arg("--help").output().expect("runs");
            assert!(output.status.success());
            assert!(String::from_utf8_lossy(&output.stdout).contains("KURZ_CONFIG"), "says where settings come from");
            let output = std::process::Command::new($binary).arg("--bogus").output().expect("runs");
            assert_eq!(output.status.code(), Some(2));
        }

        #[test]
        fn unknown_kurz_variables_are_named_and_ignored() {
            let dir = tempfile::tempdir().expect("temp dir");
            let missing = dir.path().join("missing.key");
            // Kubernetes' service links for a release named kurz, and a stray variable.
            let output = run(&[
                ("KURZ_SECRET_KEY_FILE", missing.to_str().expect("utf-8 path")),
                ("KURZ_QUERY_API_PORT", "tcp://10.0.0.1:80"),
                ("KURZ_BIN", "x"),
            ]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("KURZ_QUERY_API_PORT") && stderr.contains("KURZ_BIN"), "{stderr}");
            assert!(!stderr.contains("invalid configuration"), "the configuration was read: {stderr}");
            assert!(stderr.contains("missing.key"), "and the start went on to the next step: {stderr}");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        http: HttpConfig,
        log: LogConfig,
        cache: CacheConfig,
        client: std::collections::BTreeMap<String, String>,
        mode: Option<String>,
        redis: Option<CacheConfig>,
    }

    #[test]
    fn only_kurz_variables_that_name_no_setting_are_unknown() {
        let settings = Settings::of(&Sample::default());
        let names = [
            "KURZ_HTTP__LISTEN",
            "KURZ_HTTP__ADMIN_LISTEN",
            "KURZ_CACHE__CAPACITY_BYTES",
            "KURZ_CLIENT__SECURITY.PROTOCOL",
            "KURZ_MODE",
            "KURZ_REDIS__CAPACITY",
            "KURZ_CONFIG",
            "KURZ_LOG__FORMAT",
            "KURZ_LOG__OTLP_ENDPOINT",
            "KURZ_TEST_REDIS_URL",
            "HOME",
            "KURZ_BIN",
            "KURZ_QUERY_API_PORT",
            "KURZ_COMMAND_API_SERVICE_HOST",
            "KURZ_HTTP__LISTEN_PORT",
        ]
        .map(str::to_owned);
        assert_eq!(
            settings.unknown_variables(names.into_iter()),
            ["KURZ_BIN", "KURZ_QUERY_API_PORT", "KURZ_COMMAND_API_SERVICE_HOST", "KURZ_HTTP__LISTEN_PORT"]
        );
    }
}

//! Layered configuration: built-in defaults, then an optional TOML file (`KURZ_CONFIG`, default
//! `kurz.toml`), then `KURZ_`-prefixed environment variables with `__` between levels
//! (`KURZ_HTTP__LISTEN=0.0.0.0:8080`). `KURZ_TEST_*` variables belong to the test suites, not to
//! a service's configuration.

use std::net::SocketAddr;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub fn load<T: Serialize + DeserializeOwned + Default>() -> anyhow::Result<T> {
    let file = std::env::var("KURZ_CONFIG").unwrap_or_else(|_| "kurz.toml".to_owned());
    Figment::from(Serialized::defaults(T::default()))
        .merge(Toml::file(file))
        .merge(
            Env::prefixed("KURZ_")
                .filter(|key| !key.starts_with("test_"))
                .split("__")
                .ignore(&["config", "log_format"]),
        )
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
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
    /// Binds `listen`, naming the address on failure.
    pub async fn bind(&self) -> anyhow::Result<tokio::net::TcpListener> {
        bind(self.listen).await
    }

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
        fn an_invalid_setting_is_named() {
            let output = run(&[("KURZ_KAFKA__PARTITIONS", "lots")]);
            assert!(!output.status.success());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("invalid configuration"), "{stderr}");
            assert!(stderr.to_lowercase().contains("kafka.partitions"), "names the setting: {stderr}");
        }
    };
}

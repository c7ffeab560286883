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
    /// The origin short links are served from; `short_url` is this plus `/{code}`. Empty means
    /// `http://` plus the bound address.
    pub public_base_url: String,
    pub trust_forwarded_for: bool,
}

impl HttpConfig {
    /// The origin of short links: `public_base_url`, or `http://` plus the address bound.
    pub fn base_url(&self, bound: SocketAddr) -> std::sync::Arc<str> {
        if self.public_base_url.is_empty() {
            format!("http://{bound}").into()
        } else {
            self.public_base_url.as_str().into()
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: String::new(),
            trust_forwarded_for: false,
        }
    }
}

//! Layered configuration: built-in defaults, then an optional TOML file (`KURZ_CONFIG`, default
//! `kurz.toml`), then `KURZ_`-prefixed environment variables with `__` between levels
//! (`KURZ_HTTP__LISTEN=0.0.0.0:8080`). `KURZ_TEST_*` variables belong to the test suites, not to
//! a service's configuration.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

//! Settings of the all-in-one process. Every field has a default; see the README for the table.

use std::path::PathBuf;

use kurz_service_kit::auth::AuthConfig;
use kurz_service_kit::config::{
    AnalyticsConfig, CacheConfig, ClicksConfig, CodesConfig, GeoConfig, HttpConfig, LogConfig,
};
use kurz_service_kit::limits::LimitsConfig;
use kurz_service_kit::targets::TargetsConfig;
use kurz_web_ui::UiConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub cache: CacheConfig,
    pub clicks: ClicksConfig,
    pub geo: GeoConfig,
    pub analytics: AnalyticsConfig,
    pub codes: CodesConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub targets: TargetsConfig,
    pub ui: UiConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Partitions of the event log; fixed when the log is created.
    pub partitions: u32,
    /// Below this much free space on the data directory's filesystem, `/ready` says not ready
    /// (writes are still tried: they fail with 503 only when the disk is really full).
    pub min_free_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("data"), partitions: 8, min_free_bytes: 64 << 20 }
    }
}

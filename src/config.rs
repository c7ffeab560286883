//! Settings of the all-in-one process. Every field has a default; see the README for the table.

use std::path::PathBuf;

use kurz_service_kit::auth::AuthConfig;
use kurz_service_kit::config::HttpConfig;
use kurz_service_kit::limits::LimitsConfig;
use kurz_service_kit::targets::TargetsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub cache: CacheConfig,
    pub clicks: ClicksConfig,
    pub codes: CodesConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub targets: TargetsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Partitions of the event log; fixed when the log is created.
    pub partitions: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("data"), partitions: 8 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Links (and unknown codes) held in the in-process cache.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { capacity: 1_000_000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClicksConfig {
    /// Record a click for every redirect served (off: redirects only, e.g. to measure their cost).
    pub record_redirects: bool,
    /// Clicks queued in memory on their way to the log.
    pub queue_capacity: usize,
}

impl Default for ClicksConfig {
    fn default() -> Self {
        Self { record_redirects: true, queue_capacity: 100_000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodesConfig {
    /// Sequence numbers leased per registry round trip.
    pub lease_block: u64,
}

impl Default for CodesConfig {
    fn default() -> Self {
        Self { lease_block: 1000 }
    }
}

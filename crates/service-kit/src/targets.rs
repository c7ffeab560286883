//! The target rules in force (`targets.*` settings) and the operator's blocklist file, reloaded
//! when it changes so that links to a newly blocked domain stop redirecting without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use kurz_domain::target_policy::DEFAULT_SHORTENERS;
use kurz_domain::{DomainSet, TargetPolicy};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetsConfig {
    /// Allow targets on loopback, private, link-local and unique-local addresses and `localhost`
    /// (for a Kurz that serves an intranet only).
    pub allow_private: bool,
    /// Shorteners refused as targets (suffix match).
    pub shorteners: Vec<String>,
    /// Further hosts that are this Kurz (besides the host of `http.public_base_url`).
    pub own_hosts: Vec<String>,
    /// A file of blocked domains, one per line (`#` starts a comment), matched by suffix; read
    /// again within `blocklist_reload_ms` of a change.
    pub blocklist_file: Option<PathBuf>,
    pub blocklist_reload_ms: u64,
}

impl Default for TargetsConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            shorteners: DEFAULT_SHORTENERS.iter().map(|s| (*s).to_owned()).collect(),
            own_hosts: Vec::new(),
            blocklist_file: None,
            blocklist_reload_ms: 1000,
        }
    }
}

/// Called with the new rules after the blocklist changed (e.g. to clear caches of link answers).
pub type OnChange = Arc<dyn Fn(&TargetPolicy) + Send + Sync>;

pub struct TargetRules {
    policy: RwLock<Arc<TargetPolicy>>,
    config: TargetsConfig,
}

impl std::fmt::Debug for TargetRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetRules").field("blocklist_file", &self.config.blocklist_file).finish_non_exhaustive()
    }
}

impl TargetRules {
    /// The rules of `config`, with `public_base_url`'s host as Kurz's own. A blocklist file that
    /// is named but cannot be read refuses the start.
    pub fn load(config: &TargetsConfig, public_base_url: &str) -> anyhow::Result<Arc<Self>> {
        let own_host = url::Url::parse(public_base_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        let blocklist = match &config.blocklist_file {
            Some(path) => read_blocklist(path)?,
            None => DomainSet::default(),
        };
        let policy = TargetPolicy {
            own_hosts: DomainSet::new(config.own_hosts.iter().map(String::as_str).chain(own_host.as_deref())),
            shorteners: DomainSet::new(&config.shorteners),
            blocklist,
            allow_private: config.allow_private,
        };
        metrics::gauge!("blocklist_domains").set(policy.blocklist.len() as f64);
        Ok(Arc::new(Self { policy: RwLock::new(Arc::new(policy)), config: config.clone() }))
    }

    pub fn current(&self) -> Arc<TargetPolicy> {
        Arc::clone(&self.policy.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Reads the blocklist file again whenever its modification time or size changes, until `stop`.
    pub fn watch(self: &Arc<Self>, on_change: Vec<OnChange>, stop: CancellationToken) {
        let Some(path) = self.config.blocklist_file.clone() else { return };
        let rules = Arc::clone(self);
        let every = Duration::from_millis(self.config.blocklist_reload_ms.max(50));
        tokio::spawn(async move {
            let mut seen = stamp(&path);
            let mut failing = false;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                match read_blocklist(&path) {
                    Ok(blocklist) => {
                        seen = now;
                        failing = false;
                        let domains = blocklist.len();
                        let policy = Arc::new(TargetPolicy { blocklist, ..(*rules.current()).clone() });
                        *rules.policy.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&policy);
                        metrics::gauge!("blocklist_domains").set(domains as f64);
                        tracing::info!(path = %path.display(), domains, "blocklist reloaded");
                        for listener in &on_change {
                            listener(&policy);
                        }
                    }
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "cannot read the blocklist; keeping the previous one");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// At most this much of a blocklist file is read: a larger one is refused, not truncated.
const MAX_BLOCKLIST_BYTES: u64 = 64 << 20;

fn read_blocklist(path: &Path) -> anyhow::Result<DomainSet> {
    let size = std::fs::metadata(path).with_context(|| format!("reading the blocklist {}", path.display()))?.len();
    anyhow::ensure!(size <= MAX_BLOCKLIST_BYTES, "the blocklist {} is larger than 64 MiB", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the blocklist {}", path.display()))?;
    Ok(DomainSet::new(text.lines().map(|line| line.split('#').next().unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blocklist_file_has_comments_and_blank_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("blocklist.txt");
        std::fs::write(&path, "# spam\nphish.example\n\n  Spam.Example # reported 2026-11\n").expect("written");
        let config = TargetsConfig { blocklist_file: Some(path), ..TargetsConfig::default() };
        let rules = TargetRules::load(&config, "https://kurz.example").expect("loads");
        let policy = rules.current();
        assert_eq!(policy.blocklist.len(), 2);
        assert_eq!(policy.blocklist.matching("a.spam.example"), Some("spam.example"));
        assert_eq!(policy.own_hosts.matching("kurz.example"), Some("kurz.example"));
        assert!(policy.shorteners.matching("bit.ly").is_some());
    }

    #[test]
    fn a_named_blocklist_that_cannot_be_read_refuses_the_start() {
        let config =
            TargetsConfig { blocklist_file: Some("/nonexistent/blocklist".into()), ..TargetsConfig::default() };
        let error = TargetRules::load(&config, "").expect_err("refused");
        assert!(format!("{error:#}").contains("/nonexistent/blocklist"));
    }
}

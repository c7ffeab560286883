//! The query API's metrics, resolved once: the redirect path only increments atomics.

use metrics::Counter;

#[derive(Debug, Clone)]
pub struct RedirectMetrics {
    pub redirected: Counter,
    pub not_found: Counter,
    pub gone: Counter,
    /// Previews of limited links, answered without the target.
    pub withheld: Counter,
    pub cache_hit: Counter,
    pub cache_miss: Counter,
}

impl RedirectMetrics {
    pub fn new() -> Self {
        Self {
            redirected: metrics::counter!("redirects_total", "outcome" => "redirect"),
            not_found: metrics::counter!("redirects_total", "outcome" => "not_found"),
            gone: metrics::counter!("redirects_total", "outcome" => "gone"),
            withheld: metrics::counter!("redirects_total", "outcome" => "withheld"),
            cache_hit: metrics::counter!("link_cache_total", "result" => "hit"),
            cache_miss: metrics::counter!("link_cache_total", "result" => "miss"),
        }
    }
}

//! The query side: redirects (`GET`/`HEAD /{code}`), links and stats, served from an in-process cache
//! in front of the read store. A redirect never waits on the event log: its click is queued and
//! appended in batches by the [`ClickRecorder`].

pub mod cache;
mod click_details;
mod clicks;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod export;
mod http;
mod listing;
mod metrics;
mod orphans;
pub mod qr;
mod redirect;
mod spool;
mod stats;

pub use cache::{CachedLink, LinkCache};
pub use click_details::{ClickDetailer, QueuedClick};
pub use clicks::{ClickRecorder, ClickRecorderOptions};
pub use http::{Routes, RoutesConfig, routes};
pub use listing::Catalogue;
pub use orphans::OrphanVisits;
pub use redirect::{Existence, Outcome, RedirectService, RedirectServiceParts, VisitorKey};
pub use spool::{ClickSpool, SpoolError, decode_batch as decode_spooled_batch};
pub use stats::MAX_STATS_DAYS;

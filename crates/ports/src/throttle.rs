//! Log lines for things that happen in floods (a dropped click, a failed write while the disk is
//! full): at most one line per interval, carrying how many happened since the last. The metric
//! counts every one; the log says that it is going on without becoming the next problem.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    interval_ms: u64,
    /// Milliseconds since [`epoch`] before which nothing is logged.
    quiet_until_ms: AtomicU64,
    /// Occurrences not yet reported by a line.
    pending: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Throttle {
    #[expect(clippy::cast_possible_truncation, reason = "intervals are seconds, far below u64::MAX ms")]
    pub const fn new(interval: Duration) -> Self {
        Self { interval_ms: interval.as_millis() as u64, quiet_until_ms: AtomicU64::new(0), pending: AtomicU64::new(0) }
    }

    /// Records one occurrence. `Some(n)` when a line is due: `n` occurrences since the last line,
    /// this one included.
    pub fn hit(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        let quiet_until = self.quiet_until_ms.load(Ordering::Relaxed);
        if now < quiet_until {
            return None;
        }
        // One caller wins the line; the others' occurrences wait in `pending` for the next.
        self.quiet_until_ms
            .compare_exchange(quiet_until, now.saturating_add(self.interval_ms), Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| self.pending.swap(0, Ordering::Relaxed))
    }
}

/// The interval of Kurz's throttled log lines.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_makes_one_line_per_interval_with_its_count() {
        let throttle = Throttle::new(Duration::from_hours(1));
        assert_eq!(throttle.hit(), Some(1), "the first occurrence is told at once");
        let lines: Vec<u64> = (0..10_000).filter_map(|_| throttle.hit()).collect();
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(throttle.pending.load(Ordering::Relaxed), 10_000, "counted for the next line");

        let quick = Throttle::new(Duration::ZERO);
        assert_eq!(quick.hit(), Some(1));
        assert_eq!(quick.hit(), Some(1));
    }
}

//! For tests that need a broker: where it is, and fresh names on it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The test broker from `KURZ_TEST_KAFKA_BROKERS` (scripts/test.sh starts one). Without it the
/// calling test says by name that it is skipped, or fails when `KURZ_TEST_REQUIRE_SERVICES` is set
/// (CI, where nothing may be skipped). Call it from the test's own thread: the test is named after it.
pub fn broker_or_skip() -> Option<String> {
    match std::env::var("KURZ_TEST_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ => {
            kurz_ports::conformance::skip(
                "no Kafka broker",
                "set KURZ_TEST_KAFKA_BROKERS, or run scripts/test.sh",
                false,
            );
            None
        }
    }
}

/// A name no earlier test run used: topics and groups of a test are its own.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

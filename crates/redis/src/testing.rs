//! For tests that need Redis: where it is, and a key prefix of their own that is cleaned up.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::TypedCommands;

use crate::RedisConfig;

/// The test Redis from `KURZ_TEST_REDIS_URL` (scripts/test.sh finds or starts one). Without it the
/// calling test says by name that it is skipped, or fails when `KURZ_TEST_REQUIRE_SERVICES` is set.
/// Call it from the test's own thread: the test is named after it.
pub fn redis_or_skip() -> Option<TestRedis> {
    match std::env::var("KURZ_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let key_prefix =
                format!("kurz-test:{}:{nanos:x}:{}:", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            Some(TestRedis { config: RedisConfig { url, key_prefix } })
        }
        _ => {
            kurz_ports::conformance::skip("no Redis", "set KURZ_TEST_REDIS_URL, or run scripts/test.sh", false);
            None
        }
    }
}

/// A test's own key space; its keys are deleted when it is dropped.
#[derive(Debug)]
pub struct TestRedis {
    pub config: RedisConfig,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.config.url.as_str()) else { return };
        let Ok(mut connection) = client.get_connection() else { return };
        let pattern = format!("{}*", self.config.key_prefix);
        let keys: Vec<String> = match connection.scan_match(&pattern) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut connection);
        }
    }
}

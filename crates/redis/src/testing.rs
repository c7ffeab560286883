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
            Some(TestRedis { config: RedisConfig { url, key_prefix, ..RedisConfig::default() } })
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

impl TestRedis {
    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.config.url.as_str()).and_then(|c| c.get_connection()).expect("the test Redis answers")
    }

    /// The string at `key` (after this test's prefix), as a service stored it.
    pub fn get(&self, key: &str) -> Option<String> {
        self.connection().get(format!("{}{key}", self.config.key_prefix)).expect("GET")
    }

    /// Overwrites the string at `key` (after this test's prefix), as another build would have.
    pub fn set(&self, key: &str, value: &str) {
        self.connection().set(format!("{}{key}", self.config.key_prefix), value).expect("SET");
    }

    /// Overwrites every field of the hash at `key` with `value`; returns how many there were.
    pub fn overwrite_hash(&self, key: &str, value: &[u8]) -> usize {
        let key = format!("{}{key}", self.config.key_prefix);
        let mut connection = self.connection();
        let fields = connection.hkeys(&key).expect("HKEYS");
        for field in &fields {
            connection.hset(&key, field, value).expect("HSET");
        }
        fields.len()
    }
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

/// A Redis of a test's own that speaks only TLS and asks clients for a certificate, on a free
/// loopback port (Debian's redis-server is built with TLS). Stopped when dropped.
#[derive(Debug)]
pub struct TlsRedis {
    pub port: u16,
    pub certificates: kurz_ports::conformance::certificates::TestCertificates,
    server: std::process::Child,
}

impl TlsRedis {
    /// Needs `redis-server` and `openssl`; without them the calling test says it is skipped, or
    /// fails in CI.
    pub fn start_or_skip() -> Option<Self> {
        use kurz_ports::conformance::certificates::TestCertificates;
        if std::process::Command::new("redis-server").arg("--version").output().is_err() {
            kurz_ports::conformance::skip("no redis-server", "apt-get install redis-server", false);
            return None;
        }
        let certificates = TestCertificates::make_or_skip()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let path = |path: &std::path::Path| path.to_str().expect("utf-8 path").to_owned();
        let server = std::process::Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &path(&certificates.server_cert)])
            .args(["--tls-key-file", &path(&certificates.server_key)])
            .args(["--tls-ca-cert-file", &path(&certificates.ca)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the TLS Redis listens on {port} within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self { port, certificates, server })
    }

    /// Settings that reach it: TLS, its CA, and a client certificate.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            url: format!("rediss://127.0.0.1:{}", self.port),
            key_prefix: "kurz-tls-test:".into(),
            tls_ca_file: Some(self.certificates.ca.clone()),
            tls_cert_file: Some(self.certificates.client_cert.clone()),
            tls_key_file: Some(self.certificates.client_key.clone()),
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

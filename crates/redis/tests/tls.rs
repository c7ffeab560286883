//! Redis over TLS (`rediss://`), against a redis-server of the test's own that speaks only TLS and
//! asks for a client certificate: the key store's conformance suite passes through it, and a
//! client that cannot prove itself, or cannot check the server, is refused with a clear error.

use std::sync::Arc;

use async_trait::async_trait;
use kurz_ports::ApiKeyStore;
use kurz_ports::conformance::Storage;
use kurz_redis::testing::TlsRedis;
use kurz_redis::{RedisConfig, RedisConnection, RedisKeyStore};

struct OverTls(TlsRedis);

#[async_trait]
impl Storage<dyn ApiKeyStore> for OverTls {
    async fn open(&self) -> Arc<dyn ApiKeyStore> {
        let redis = RedisConnection::connect(&self.0.config()).await.expect("connects over TLS");
        Arc::new(RedisKeyStore::new(redis))
    }
}

macro_rules! over_tls {
    () => {
        match TlsRedis::start_or_skip() {
            Some(redis) => OverTls(redis),
            None => return,
        }
    };
}

kurz_ports::api_key_store_conformance!(over_tls!());

async fn refusal(config: &RedisConfig) -> String {
    RedisConnection::connect(config).await.expect_err("refused").to_string()
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let Some(redis) = TlsRedis::start_or_skip() else { return };
    let config = RedisConfig { tls_cert_file: None, tls_key_file: None, ..redis.config() };
    let error = refusal(&config).await;
    assert!(error.contains("Redis"), "{error}");
}

#[tokio::test]
async fn a_server_whose_certificate_is_not_trusted_is_refused() {
    let Some(redis) = TlsRedis::start_or_skip() else { return };
    // The system's roots never signed the test CA.
    let config = RedisConfig { tls_ca_file: None, ..redis.config() };
    let error = refusal(&config).await;
    assert!(error.contains("Redis"), "{error}");
}

#[tokio::test]
async fn tls_files_without_rediss_are_a_settings_error() {
    let Some(redis) = TlsRedis::start_or_skip() else { return };
    let config = RedisConfig { url: format!("redis://127.0.0.1:{}", redis.port), ..redis.config() };
    let error = refusal(&config).await;
    assert!(error.contains("rediss://"), "{error}");
}

#[tokio::test]
async fn a_missing_tls_file_is_named() {
    let Some(redis) = TlsRedis::start_or_skip() else { return };
    let config = RedisConfig { tls_ca_file: Some("/nonexistent/ca.pem".into()), ..redis.config() };
    let error = refusal(&config).await;
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
}

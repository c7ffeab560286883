//! A schema registry that asks for HTTP basic authentication gets it from
//! `kafka.schema_registry_username`/`_password`; without them the schemas cannot be registered, and
//! the error says so.

use kurz_kafka::KafkaConfig;
use kurz_kafka::registry::register_catalog;
use kurz_registry_standin::RegistryStandIn;

async fn registry() -> RegistryStandIn {
    RegistryStandIn::start_with_basic_auth("kurz", "registry-secret").await.expect("stand-in starts")
}

#[tokio::test]
async fn with_credentials_the_schemas_are_registered() {
    let registry = registry().await;
    let config = KafkaConfig {
        schema_registry_url: registry.url(),
        schema_registry_username: Some("kurz".into()),
        schema_registry_password: Some("registry-secret".into()),
        ..KafkaConfig::default()
    };
    register_catalog(&config).await.expect("registered with credentials");
}

#[tokio::test]
async fn without_credentials_or_with_wrong_ones_registration_fails() {
    let registry = registry().await;
    for (username, password) in [(None, None), (Some("kurz"), Some("guess"))] {
        let config = KafkaConfig {
            schema_registry_url: registry.url(),
            schema_registry_username: username.map(str::to_owned),
            schema_registry_password: password.map(str::to_owned),
            ..KafkaConfig::default()
        };
        let error = register_catalog(&config).await.expect_err("refused").to_string();
        assert!(error.contains("registering a schema"), "{error}");
    }
}

#[tokio::test]
async fn a_password_without_a_username_is_a_settings_error() {
    let config = KafkaConfig { schema_registry_password: Some("registry-secret".into()), ..KafkaConfig::default() };
    let error = register_catalog(&config).await.expect_err("refused").to_string();
    assert!(error.contains("schema_registry_username"), "{error}");
}

#[tokio::test]
async fn an_unreadable_ca_file_is_named() {
    let config = KafkaConfig { schema_registry_ca_file: Some("/nonexistent/ca.pem".into()), ..KafkaConfig::default() };
    let error = register_catalog(&config).await.expect_err("refused").to_string();
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
}

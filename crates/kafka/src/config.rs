use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Where the events live in distributed mode: one topic keyed by link code, Avro values whose
/// schemas are registered on a Confluent-compatible schema registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// The topic all link events go to (created at startup when missing).
    pub topic: String,
    /// Partitions of a topic Kurz creates; an existing topic must have this many, because a link's
    /// partition is derived from it.
    pub partitions: u32,
    pub replication_factor: i32,
    pub schema_registry_url: String,
    /// HTTP basic authentication to the schema registry (both, or neither).
    pub schema_registry_username: Option<String>,
    pub schema_registry_password: Option<String>,
    /// With an `https://` registry: the CA certificate (PEM) that signed its certificate, when the
    /// system's roots do not hold it.
    pub schema_registry_ca_file: Option<PathBuf>,
    /// How long an append may wait for the broker's acknowledgement before it fails, in ms.
    #[serde(rename = "delivery_timeout_ms", with = "millis")]
    pub delivery_timeout: Duration,
    /// Further librdkafka properties for every client (TLS, SASL, …). In a file, by their names
    /// (`"security.protocol" = "SASL_SSL"`); in the environment, with `_` for `.`
    /// (`KURZ_KAFKA__CLIENT__SECURITY_PROTOCOL=SASL_SSL`), since variable names cannot hold dots
    /// everywhere. No librdkafka property a service can set has `_` in its name.
    #[serde(deserialize_with = "properties::deserialize")]
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "kurz.link-events".into(),
            partitions: 12,
            replication_factor: 3,
            schema_registry_url: "http://127.0.0.1:8081".into(),
            schema_registry_username: None,
            schema_registry_password: None,
            schema_registry_ca_file: None,
            delivery_timeout: Duration::from_secs(30),
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The properties every Kurz client starts from.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.client {
            config.set(key, value);
        }
        config
    }
}

/// librdkafka properties from a file or the environment: names may come nested (`a.b = 1` in a
/// file, or a variable named with dots) and values as numbers or booleans; librdkafka takes
/// every value as a string.
mod properties {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Property {
        Text(String),
        Number(serde_json::Number),
        Flag(bool),
        Nested(BTreeMap<String, Property>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
        let mut flat = BTreeMap::new();
        flatten("", BTreeMap::<String, Property>::deserialize(deserializer)?, &mut flat).map_err(D::Error::custom)?;
        Ok(flat)
    }

    fn flatten(
        prefix: &str,
        nested: BTreeMap<String, Property>,
        flat: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (name, value) in nested {
            let name = format!("{prefix}{}", name.to_ascii_lowercase().replace('_', "."));
            let value = match value {
                Property::Text(text) => text,
                Property::Number(number) => number.to_string(),
                Property::Flag(on) => on.to_string(),
                Property::Nested(inner) => {
                    flatten(&format!("{name}."), inner, flat)?;
                    continue;
                }
            };
            if flat.insert(name.clone(), value).is_some() {
                return Err(format!("the librdkafka property {name} is given twice"));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_come_flat_with_dots_and_values_as_text() {
            let given = serde_json::json!({
                "security_protocol": "SASL_SSL",
                "ssl.ca.location": "/etc/kurz/ca.pem",
                "sasl": {"mechanism": "SCRAM-SHA-512"},
                "LINGER_MS": 5,
                "enable_ssl_certificate_verification": true,
            });
            let flat = deserialize(given).expect("properties");
            let expected = [
                ("enable.ssl.certificate.verification", "true"),
                ("linger.ms", "5"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/etc/kurz/ca.pem"),
            ];
            assert_eq!(flat, expected.map(|(k, v)| (k.to_owned(), v.to_owned())).into_iter().collect());
        }

        #[test]
        fn a_property_given_twice_is_an_error() {
            let given = serde_json::json!({"security_protocol": "SSL", "security": {"protocol": "PLAINTEXT"}});
            let error = deserialize(given).expect_err("twice").to_string();
            assert!(error.contains("security.protocol"), "{error}");
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

use std::path::PathBuf;

use openssl::ssl::{SslContext, SslContextBuilder, SslMethod, SslVerifyMode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Letters, digits and underscores only.
    pub keyspace: String,
    /// The keyspace's replication, as CQL, used when Kurz creates it.
    pub replication: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Speak TLS to every node (client-to-node encryption), checking the nodes' certificates
    /// against the system's roots, or against `tls_ca_file`.
    pub tls: bool,
    /// The CA certificate (PEM) that signed the nodes' certificates.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "kurz".into(),
            replication: "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}".into(),
            username: None,
            password: None,
            tls: false,
            tls_ca_file: None,
        }
    }
}

impl ScyllaConfig {
    /// The TLS context for the nodes, when `tls` is on (a CA file alone switches it on too).
    pub fn tls_context(&self) -> Result<Option<SslContext>, TlsSettingsError> {
        if !self.tls && self.tls_ca_file.is_none() {
            return Ok(None);
        }
        let mut builder = SslContextBuilder::new(SslMethod::tls_client()).map_err(TlsSettingsError::OpenSsl)?;
        builder.set_verify(SslVerifyMode::PEER);
        match &self.tls_ca_file {
            Some(file) => {
                builder.set_ca_file(file).map_err(|error| TlsSettingsError::CaFile { path: file.clone(), error })?;
            }
            None => builder.set_default_verify_paths().map_err(TlsSettingsError::OpenSsl)?,
        }
        Ok(Some(builder.build()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSettingsError {
    #[error("scylla.tls_ca_file {}: {error}", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        error: openssl::error::ErrorStack,
    },
    #[error("TLS for ScyllaDB: {0}")]
    OpenSsl(#[source] openssl::error::ErrorStack),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_off_unless_asked_for() {
        assert!(ScyllaConfig::default().tls_context().expect("no TLS settings").is_none());
        let tls = ScyllaConfig { tls: true, ..ScyllaConfig::default() };
        assert!(tls.tls_context().expect("the system's roots").is_some());
    }

    #[test]
    fn a_ca_file_is_read_and_a_missing_one_named() {
        let Some(certificates) = kurz_ports::conformance::certificates::TestCertificates::make_or_skip() else {
            return;
        };
        let config = ScyllaConfig { tls_ca_file: Some(certificates.ca.clone()), ..ScyllaConfig::default() };
        assert!(config.tls_context().expect("a readable CA").is_some());
        let missing = ScyllaConfig { tls_ca_file: Some("/nonexistent/ca.pem".into()), ..ScyllaConfig::default() };
        let error = missing.tls_context().expect_err("no such file").to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}

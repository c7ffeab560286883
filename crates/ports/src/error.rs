use std::error::Error;

/// A failure of the infrastructure behind a port (disk, network, broker) — never a domain rejection.
/// Callers answer it with a 5xx and retry; the message is for operators, not for API clients.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct InfraError {
    context: &'static str,
    #[source]
    source: Box<dyn Error + Send + Sync>,
}

impl InfraError {
    pub fn new(context: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self { context, source: source.into() }
    }
}

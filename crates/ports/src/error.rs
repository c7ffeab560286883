use std::error::Error;

/// A failure of the infrastructure behind a port (disk, network, broker) — never a domain rejection.
/// Callers answer it with a 5xx and retry; the message is for operators, not for API clients.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct InfraError {
    context: &'static str,
    #[source]
    source: Box<dyn Error + Send + Sync>,
    outcome_unknown: bool,
}

impl InfraError {
    pub fn new(context: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self { context, source: source.into(), outcome_unknown: false }
    }

    /// Marks a failed write that may still have taken effect (it reached the server, and no answer
    /// came back): the caller must not act as if it never happened.
    #[must_use]
    pub fn with_unknown_outcome(mut self) -> Self {
        self.outcome_unknown = true;
        self
    }

    /// Whether the failed write may have taken effect. `false` means it certainly did not.
    pub fn outcome_unknown(&self) -> bool {
        self.outcome_unknown
    }
}

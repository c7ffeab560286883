use std::ops::Range;

use async_trait::async_trait;
use kurz_domain::Code;

use crate::InfraError;

/// Write-side uniqueness: which codes were ever issued, and blocks of sequence numbers for generated
/// codes. Not derived from the log, so it survives a rebuild of the read models.
#[async_trait]
pub trait CodeRegistry: Send + Sync + std::fmt::Debug {
    /// Claims a code for good: `true` for the one caller that claims it first, ever. A claim is
    /// durable at the latest when an event appended after it is (so a crash before the link's
    /// creation was acknowledged may forget it).
    async fn claim(&self, code: &Code) -> Result<bool, InfraError>;

    /// Gives back a claim whose link never reached the log.
    async fn release(&self, code: &Code) -> Result<(), InfraError>;

    /// `count` sequence numbers that no caller, in this process or another, before or after a
    /// restart, ever receives again.
    async fn lease_sequences(&self, count: u64) -> Result<Range<u64>, InfraError>;
}

use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::{Code, Event};

use crate::{CodeRegistry, EventLog, InfraError, Position};

/// A link's creation: the claim of its code and the append of its events, as one step where the
/// adapter keeps both (the embedded log: one write, one fsync), as two where they are separate
/// services ([`ClaimThenAppend`]).
#[async_trait]
pub trait CreationLog: Send + Sync + std::fmt::Debug {
    /// Claims `code` and appends `events` durably. `Ok(None)`, with nothing appended, when the code
    /// was claimed before. After an error the claim is not kept, so the code may be claimed again.
    async fn claim_and_append(&self, code: &Code, events: &[Event]) -> Result<Option<Vec<Position>>, InfraError>;
}

/// A creation over a code registry and an event log that are separate services: claim, append, and
/// give the claim back if the append fails.
#[derive(Debug)]
pub struct ClaimThenAppend {
    pub registry: Arc<dyn CodeRegistry>,
    pub log: Arc<dyn EventLog>,
}

#[async_trait]
impl CreationLog for ClaimThenAppend {
    async fn claim_and_append(&self, code: &Code, events: &[Event]) -> Result<Option<Vec<Position>>, InfraError> {
        if !self.registry.claim(code).await? {
            return Ok(None);
        }
        match self.log.append(events).await {
            Ok(positions) => Ok(Some(positions)),
            Err(error) => {
                if let Err(release) = self.registry.release(code).await {
                    tracing::error!(%code, error = %release, "cannot release the claim of a failed create");
                }
                Err(error)
            }
        }
    }
}

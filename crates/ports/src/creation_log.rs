use std::sync::Arc;

use async_trait::async_trait;
use kurz_domain::{Code, Event};

use crate::throttle::{LOG_INTERVAL, Throttle};
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
/// give the claim back if the append certainly failed. After an append whose outcome is unknown (a
/// broker timeout), the claim stays: the event may have landed, and a second link under the same code
/// would be worse than a code that is never used.
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
            Err(error) if error.outcome_unknown() => {
                // Every create fails this way while the broker is away: one line per interval.
                static KEPT: Throttle = Throttle::new(LOG_INTERVAL);
                if let Some(creates) = KEPT.hit() {
                    tracing::warn!(
                        %code, %error, creates,
                        "keeping the claims of creates whose events may have been appended (one line per 10 s)"
                    );
                }
                Err(error)
            }
            Err(error) => {
                if let Err(release) = self.registry.release(code).await {
                    tracing::error!(%code, error = %release, "cannot release the claim of a failed create");
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::ops::Range;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::LogRecord;

    #[derive(Debug, Default)]
    struct Registry(Mutex<HashSet<String>>);

    #[async_trait]
    impl CodeRegistry for Registry {
        async fn claim(&self, code: &Code) -> Result<bool, InfraError> {
            Ok(self.0.lock().expect("lock").insert(code.as_str().to_owned()))
        }

        async fn release(&self, code: &Code) -> Result<(), InfraError> {
            self.0.lock().expect("lock").remove(code.as_str());
            Ok(())
        }

        async fn lease_sequences(&self, _: u64) -> Result<Range<u64>, InfraError> {
            unreachable!("creations lease nothing")
        }
    }

    /// A log whose appends fail, with an outcome known or not.
    #[derive(Debug)]
    struct FailingLog {
        outcome_unknown: bool,
    }

    #[async_trait]
    impl EventLog for FailingLog {
        fn partitions(&self) -> u32 {
            1
        }

        async fn append(&self, _: &[Event]) -> Result<Vec<Position>, InfraError> {
            let error = InfraError::new("producing an event", "request timed out");
            Err(if self.outcome_unknown { error.with_unknown_outcome() } else { error })
        }

        async fn read(&self, _: u32, _: u64, _: usize) -> Result<Vec<LogRecord>, InfraError> {
            Ok(Vec::new())
        }

        async fn end_offsets(&self) -> Result<Vec<u64>, InfraError> {
            Ok(vec![0])
        }

        async fn wait_for_records(&self, _: &[u64], _: Duration) {}
    }

    async fn claimed_after_a_failed_append(outcome_unknown: bool) -> bool {
        let registry = Arc::new(Registry::default());
        let creations = ClaimThenAppend { registry: registry.clone(), log: Arc::new(FailingLog { outcome_unknown }) };
        let code = Code::parse("mike").expect("valid");
        let spec = kurz_domain::LinkSpec::new(kurz_domain::TargetUrl::parse("https://example.com/").expect("valid"));
        let created_at = kurz_domain::Timestamp::from_millis(0);
        let event = Event::Created(kurz_domain::LinkCreated {
            code: code.clone(),
            owner: kurz_domain::Owner::admin(),
            spec,
            custom_alias: true,
            created_at,
            key_id: None,
        });
        assert!(creations.claim_and_append(&code, &[event]).await.is_err());
        !registry.claim(&code).await.expect("claim")
    }

    #[tokio::test]
    async fn a_certainly_failed_append_gives_the_claim_back() {
        assert!(!claimed_after_a_failed_append(false).await);
    }

    #[tokio::test]
    async fn an_append_that_may_have_landed_keeps_the_claim() {
        assert!(claimed_after_a_failed_append(true).await);
    }
}

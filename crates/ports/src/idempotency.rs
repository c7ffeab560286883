use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::{Code, Timestamp};

use crate::InfraError;

/// What a request sent with an `Idempotency-Key` reserved: the request it was for (a digest of it)
/// and the code its link has, or will have once the request completes (for a batch of clicks, the
/// link of its first click).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub fingerprint: [u8; 32],
    pub code: Code,
}

/// Idempotency keys shared by every command-api instance. A reservation is made before anything is
/// appended and names the code, so a retry after any failure finds the code its link has or must
/// get, and never makes a second link.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Reserves `key` for `reservation` until `ttl` after `now`, durably before it returns, unless
    /// a live reservation holds the key: then that one is returned and nothing changes.
    async fn reserve(
        &self,
        key: &str,
        reservation: &Reservation,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<Option<Reservation>, InfraError>;

    /// The live reservation of `key` at `now`, if any; changes nothing.
    async fn held(&self, key: &str, now: Timestamp) -> Result<Option<Reservation>, InfraError>;

    /// Gives the key up, if `reservation` still holds it (its request failed before appending).
    async fn release(&self, key: &str, reservation: &Reservation) -> Result<(), InfraError>;
}

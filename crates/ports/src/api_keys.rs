use async_trait::async_trait;
use kurz_domain::{KeyId, Owner, Role, Timestamp};
use serde::{Deserialize, Serialize};

use crate::InfraError;

/// An API key as stored: never the key itself, only a SHA-256 digest of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: KeyId,
    pub owner: Owner,
    pub role: Role,
    pub digest: [u8; 32],
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Where API keys are kept. Keys are few and change rarely; every instance reads them (through a
/// short-lived cache), so a revocation reaches every instance within that cache's lifetime.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + std::fmt::Debug {
    /// Stores a new key, durably before it returns. `false` when its id is taken (nothing changes).
    async fn insert(&self, key: &StoredKey) -> Result<bool, InfraError>;

    async fn get(&self, id: &KeyId) -> Result<Option<StoredKey>, InfraError>;

    /// Every key, revoked ones included, in id order.
    async fn list(&self) -> Result<Vec<StoredKey>, InfraError>;

    /// Marks a key revoked at `at` (a key revoked before keeps its first time). `None` for an
    /// unknown id.
    async fn revoke(&self, id: &KeyId, at: Timestamp) -> Result<Option<StoredKey>, InfraError>;
}

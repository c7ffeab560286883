//! API keys in `keys.redb`: a few rows that change rarely, so each write is its own durable
//! transaction.

use std::path::Path;

use async_trait::async_trait;
use kurz_domain::{KeyId, Timestamp};
use kurz_ports::rows::{decode_key, encode_key};
use kurz_ports::{ApiKeyStore, InfraError, StoredKey};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::OpenError;
use crate::small_db::SmallDb;

const CONTEXT: &str = "embedded key store";
/// Keys by id ([`kurz_ports::rows::encode_key`]: versioned rows).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

#[derive(Debug, Clone)]
pub struct EmbeddedKeyStore {
    db: SmallDb,
}

impl EmbeddedKeyStore {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = SmallDb::open(path, CONTEXT, crate::page_cache::KEYS, |txn| {
            txn.open_table(KEYS)?;
            Ok(())
        })?;
        Ok(Self { db })
    }
}

#[async_trait]
impl ApiKeyStore for EmbeddedKeyStore {
    async fn insert(&self, key: &StoredKey) -> Result<bool, InfraError> {
        let key = key.clone();
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                let inserted = {
                    let mut table = txn.open_table(KEYS)?;
                    if table.get(key.id.as_str())?.is_some() {
                        false
                    } else {
                        table.insert(key.id.as_str(), encode_key(&key).as_slice())?;
                        true
                    }
                };
                txn.commit()?;
                Ok(inserted)
            })
            .await
    }

    async fn get(&self, id: &KeyId) -> Result<Option<StoredKey>, InfraError> {
        let id = id.clone();
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(redb::Error::from)?;
                let table = txn.open_table(KEYS)?;
                let row = table.get(id.as_str())?;
                Ok(row.map(|row| decode_key(row.value())).transpose()?)
            })
            .await
    }

    async fn list(&self) -> Result<Vec<StoredKey>, InfraError> {
        self.db
            .run(|db| {
                let txn = db.begin_read().map_err(redb::Error::from)?;
                let table = txn.open_table(KEYS)?;
                let mut keys = Vec::new();
                for entry in table.iter()? {
                    keys.push(decode_key(entry?.1.value())?);
                }
                Ok(keys)
            })
            .await
    }

    async fn revoke(&self, id: &KeyId, at: Timestamp) -> Result<Option<StoredKey>, InfraError> {
        let id = id.clone();
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                let revoked = {
                    let mut table = txn.open_table(KEYS)?;
                    let stored = table.get(id.as_str())?.map(|row| decode_key(row.value())).transpose()?;
                    match stored {
                        Some(mut key) if key.revoked_at.is_none() => {
                            key.revoked_at = Some(at);
                            table.insert(id.as_str(), encode_key(&key).as_slice())?;
                            Some(key)
                        }
                        other => other,
                    }
                };
                txn.commit()?;
                Ok(revoked)
            })
            .await
    }
}

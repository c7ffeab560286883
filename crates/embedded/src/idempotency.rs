//! Idempotency keys in `idempotency.redb`: each reservation is its own durable transaction, and
//! lapsed ones are dropped a few at a time as new ones are made, so the file stays as large as a
//! day's reservations.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use kurz_domain::Timestamp;
use kurz_ports::rows::{decode_reservation, encode_reservation};
use kurz_ports::{IdempotencyStore, InfraError, Reservation};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::OpenError;
use crate::small_db::SmallDb;

const CONTEXT: &str = "embedded idempotency store";
/// Reservations by key ([`kurz_ports::rows::encode_reservation`]).
const RESERVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("reservations");
/// The same keys by when they lapse, to find lapsed ones.
const LAPSING: TableDefinition<(i64, &str), ()> = TableDefinition::new("lapsing");
/// Lapsed reservations dropped per new one: more than are made, so they never pile up.
const PRUNE_PER_WRITE: usize = 8;

#[derive(Debug, Clone)]
pub struct EmbeddedIdempotency {
    db: SmallDb,
}

impl EmbeddedIdempotency {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = SmallDb::open(path, CONTEXT, crate::page_cache::IDEMPOTENCY, |txn| {
            txn.open_table(RESERVATIONS)?;
            txn.open_table(LAPSING)?;
            Ok(())
        })?;
        Ok(Self { db })
    }
}

#[async_trait]
impl IdempotencyStore for EmbeddedIdempotency {
    async fn reserve(
        &self,
        key: &str,
        reservation: &Reservation,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<Option<Reservation>, InfraError> {
        let (key, reservation) = (key.to_owned(), reservation.clone());
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                let held = {
                    let mut reservations = txn.open_table(RESERVATIONS)?;
                    let mut lapsing = txn.open_table(LAPSING)?;
                    let lapsed: Vec<(i64, String)> = lapsing
                        .range(..(now.as_millis(), ""))?
                        .take(PRUNE_PER_WRITE)
                        .map(|entry| entry.map(|(at, _)| (at.value().0, at.value().1.to_owned())))
                        .collect::<Result<_, _>>()?;
                    for (at, old) in &lapsed {
                        lapsing.remove((*at, old.as_str()))?;
                        reservations.remove(old.as_str())?;
                    }
                    let current = match reservations.get(key.as_str())? {
                        Some(row) => Some(decode_reservation(row.value())?),
                        None => None,
                    };
                    match current {
                        Some((held, expires_at)) if expires_at > now => Some(held),
                        lapsed => {
                            if let Some((_, expires_at)) = lapsed {
                                lapsing.remove((expires_at.as_millis(), key.as_str()))?;
                            }
                            let expires_at = Timestamp::from_millis(now.as_millis().saturating_add(ttl));
                            reservations
                                .insert(key.as_str(), encode_reservation(&reservation, expires_at).as_slice())?;
                            lapsing.insert((expires_at.as_millis(), key.as_str()), ())?;
                            None
                        }
                    }
                };
                if held.is_none() {
                    txn.commit()?;
                } else {
                    txn.abort()?;
                }
                Ok(held)
            })
            .await
    }

    async fn held(&self, key: &str, now: Timestamp) -> Result<Option<Reservation>, InfraError> {
        let key = key.to_owned();
        self.db
            .run(move |db| {
                let txn = db.begin_read()?;
                let reservations = txn.open_table(RESERVATIONS)?;
                let current = match reservations.get(key.as_str())? {
                    Some(row) => Some(decode_reservation(row.value())?),
                    None => None,
                };
                Ok(current.filter(|(_, expires_at)| *expires_at > now).map(|(held, _)| held))
            })
            .await
    }

    async fn release(&self, key: &str, reservation: &Reservation) -> Result<(), InfraError> {
        let (key, reservation) = (key.to_owned(), reservation.clone());
        self.db
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut reservations = txn.open_table(RESERVATIONS)?;
                    let current = match reservations.get(key.as_str())? {
                        Some(row) => Some(decode_reservation(row.value())?),
                        None => None,
                    };
                    if let Some((held, expires_at)) = current
                        && held == reservation
                    {
                        reservations.remove(key.as_str())?;
                        txn.open_table(LAPSING)?.remove((expires_at.as_millis(), key.as_str()))?;
                    }
                }
                txn.commit()?;
                Ok(())
            })
            .await
    }
}

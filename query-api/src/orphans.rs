//! Orphan visits as the query side sees them: counted in memory per day as redirects find no live
//! link, and added to the [`OrphanVisitStore`] every few seconds (and when the service stops), so
//! a flood of random codes costs a lock and a map update per request, never a store write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kurz_domain::orphans::{OrphanDay, OrphanReason};
use kurz_domain::{Day, DayRange};
use kurz_ports::{InfraError, OrphanVisitStore};
use tokio_util::sync::CancellationToken;

/// How often counted visits are added to the store: what another query side's admin may miss.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct OrphanVisits {
    store: Arc<dyn OrphanVisitStore>,
    /// Visits not yet in the store, per day; each day's lists bounded ([`OrphanDay::record`]).
    pending: Mutex<BTreeMap<Day, OrphanDay>>,
}

impl OrphanVisits {
    /// Counts into `store`, flushing every [`FLUSH_EVERY`] until `stop`, then once more.
    pub fn start(
        store: Arc<dyn OrphanVisitStore>,
        stop: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let visits = Arc::new(Self { store, pending: Mutex::new(BTreeMap::new()) });
        let task = tokio::spawn({
            let visits = Arc::clone(&visits);
            async move {
                let mut every = tokio::time::interval(FLUSH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => visits.flush_logged().await,
                    }
                }
                visits.flush_logged().await;
            }
        });
        (visits, task)
    }

    pub fn record(&self, day: Day, tried: &str, reason: OrphanReason, referrer: Option<&str>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.entry(day).or_default().record(tried, reason, referrer);
    }

    /// The stored days in `range`, with what this service counted and has not stored yet.
    pub async fn days(&self, range: DayRange) -> Result<Vec<(Day, OrphanDay)>, InfraError> {
        let mut days: BTreeMap<Day, OrphanDay> = self.store.days(range).await?.into_iter().collect();
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (day, visits) in pending.iter().filter(|(day, _)| range.contains(**day)) {
            days.entry(*day).or_default().merge(visits);
        }
        Ok(days.into_iter().collect())
    }

    /// Adds what was counted to the store; what could not be stored is counted again, for the next
    /// flush.
    pub async fn flush(&self) -> Result<(), InfraError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut days = taken.into_iter();
        while let Some((day, mut visits)) = days.next() {
            visits.keep_top();
            if let Err(error) = self.store.add(day, &visits).await {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                for (day, unstored) in std::iter::once((day, visits)).chain(days) {
                    pending.entry(day).or_default().merge(&unstored);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    async fn flush_logged(&self) {
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "orphan visits could not be stored; they are kept for the next try");
        }
    }
}

//! What every creation log must do, seen through the event log and the code registry it writes to.

use std::sync::Arc;

use super::Storage;
use super::fixtures::{code, created};
use crate::{CodeRegistry, CreationLog, EventLog};

/// A creation log with the log and the registry behind it (the same storage).
#[derive(Debug)]
pub struct Creations {
    pub creations: Arc<dyn CreationLog>,
    pub log: Arc<dyn EventLog>,
    pub registry: Arc<dyn CodeRegistry>,
}

async fn records_of(log: &dyn EventLog, text: &str) -> usize {
    let mut found = 0;
    for partition in 0..log.partitions() {
        let records = log.read(partition, 0, usize::MAX).await.expect("read");
        found += records.iter().filter(|r| r.event.as_ref().is_ok_and(|e| e.code().as_str() == text)).count();
    }
    found
}

pub async fn a_creation_claims_its_code_and_appends_its_events(storage: impl Storage<Creations>) {
    let parts = storage.open().await;
    let event = created("hotel");
    let positions =
        parts.creations.claim_and_append(&code("hotel"), std::slice::from_ref(&event)).await.expect("create");
    let positions = positions.expect("a fresh code is claimed");
    assert_eq!(positions.len(), 1);
    let read = parts.log.read(positions[0].partition, positions[0].offset, 1).await.expect("read");
    assert_eq!(read[0].position, positions[0]);
    assert_eq!(read[0].event.as_ref().expect("decodes"), &event);
    assert!(!parts.registry.claim(&code("hotel")).await.expect("claim"), "the creation claimed the code");
}

pub async fn a_claimed_code_appends_nothing(storage: impl Storage<Creations>) {
    let parts = storage.open().await;
    assert!(parts.registry.claim(&code("india")).await.expect("claim"));
    let ends = parts.log.end_offsets().await.expect("ends");
    let outcome = parts.creations.claim_and_append(&code("india"), &[created("india")]).await.expect("create");
    assert!(outcome.is_none(), "{outcome:?}");
    assert!(parts.creations.claim_and_append(&code("juliett"), &[created("juliett")]).await.expect("create").is_some());
    let again = parts.creations.claim_and_append(&code("juliett"), &[created("juliett")]).await.expect("create");
    assert!(again.is_none(), "{again:?}");
    assert_eq!(records_of(parts.log.as_ref(), "india").await, 0);
    assert_eq!(records_of(parts.log.as_ref(), "juliett").await, 1);
    let appended: u64 =
        parts.log.end_offsets().await.expect("ends").iter().zip(&ends).map(|(now, then)| now - then).sum();
    assert_eq!(appended, 1);
}

pub async fn racing_creations_have_one_winner(storage: impl Storage<Creations>) {
    let parts = storage.open().await;
    let racers: Vec<_> = (0..100)
        .map(|_| {
            let creations = Arc::clone(&parts.creations);
            tokio::spawn(
                async move { creations.claim_and_append(&code("kilo"), &[created("kilo")]).await.expect("create") },
            )
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.expect("task").is_some());
    }
    assert_eq!(winners, 1);
    assert_eq!(records_of(parts.log.as_ref(), "kilo").await, 1);
}

pub async fn creations_survive_a_restart(storage: impl Storage<Creations>) {
    {
        let parts = storage.open().await;
        assert!(parts.creations.claim_and_append(&code("lima"), &[created("lima")]).await.expect("create").is_some());
    }
    let parts = storage.open().await;
    assert_eq!(records_of(parts.log.as_ref(), "lima").await, 1);
    let again = parts.creations.claim_and_append(&code("lima"), &[created("lima")]).await.expect("create");
    assert!(again.is_none(), "a creation's claim outlives the process");
}

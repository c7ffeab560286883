//! What every code registry must do.

use std::sync::Arc;

use super::Storage;
use super::fixtures::code;
use crate::CodeRegistry;

pub async fn a_code_is_claimed_once(storage: impl Storage<dyn CodeRegistry>) {
    let registry = storage.open().await;
    assert!(registry.claim(&code("whiskey")).await.expect("claim"));
    assert!(!registry.claim(&code("whiskey")).await.expect("claim"));
    assert!(registry.claim(&code("Whiskey")).await.expect("claim"), "codes are case-sensitive");
}

pub async fn racing_claims_have_one_winner(storage: impl Storage<dyn CodeRegistry>) {
    let registry = storage.open().await;
    let claims: Vec<_> = (0..200)
        .map(|_| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move { registry.claim(&code("xray")).await.expect("claim") })
        })
        .collect();
    let mut winners = 0;
    for claim in claims {
        winners += usize::from(claim.await.expect("task"));
    }
    assert_eq!(winners, 1);
}

pub async fn released_codes_can_be_claimed_again(storage: impl Storage<dyn CodeRegistry>) {
    let registry = storage.open().await;
    assert!(registry.claim(&code("yankee")).await.expect("claim"));
    registry.release(&code("yankee")).await.expect("release");
    assert!(registry.claim(&code("yankee")).await.expect("claim"));
}

pub async fn leases_never_overlap(storage: impl Storage<dyn CodeRegistry>) {
    let registry = storage.open().await;
    let leases: Vec<_> = (0..50)
        .map(|i| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move { registry.lease_sequences(1 + i % 7).await.expect("lease") })
        })
        .collect();
    let mut ranges = Vec::new();
    for lease in leases {
        ranges.push(lease.await.expect("task"));
    }
    ranges.sort_by_key(|r| r.start);
    for pair in ranges.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
    }
    assert!(ranges.iter().all(|r| !r.is_empty()));
}

pub async fn claims_and_leases_survive_a_restart(storage: impl Storage<dyn CodeRegistry>) {
    let first = {
        let registry = storage.open().await;
        assert!(registry.claim(&code("zulu")).await.expect("claim"));
        registry.lease_sequences(100).await.expect("lease")
    };
    let registry = storage.open().await;
    assert!(!registry.claim(&code("zulu")).await.expect("claim"), "a claim outlives the process");
    let second = registry.lease_sequences(100).await.expect("lease");
    assert!(second.start >= first.end, "{second:?} reuses {first:?}");
}

//! What every orphan-visit store must do.

use std::sync::Arc;

use kurz_domain::orphans::{KEPT_PER_DAY, OrphanDay, OrphanReason};
use kurz_domain::{Day, DayRange};

use super::Storage;
use crate::OrphanVisitStore;

fn day(n: i32) -> Day {
    Day::from_days_since_epoch(20_000 + n)
}

fn range(from: i32, to: i32) -> DayRange {
    DayRange { from: Some(day(from)), to: Some(day(to)) }
}

fn visits(tried: &[(&str, OrphanReason, Option<&str>)]) -> OrphanDay {
    let mut day = OrphanDay::default();
    for (code, reason, referrer) in tried {
        day.record(code, *reason, *referrer);
    }
    day
}

pub async fn added_days_are_read_back_and_add_up(storage: impl Storage<dyn OrphanVisitStore>) {
    let store = storage.open().await;
    assert!(store.days(range(0, 10)).await.expect("days").is_empty());
    let first = visits(&[
        ("nope", OrphanReason::Unknown, Some("https://a.example/x")),
        ("nope", OrphanReason::Unknown, None),
        ("gone1", OrphanReason::Deleted, None),
    ]);
    let second = visits(&[("nope", OrphanReason::Unknown, Some("https://a.example/y"))]);
    let later = visits(&[("old1", OrphanReason::Expired, None)]);
    store.add(day(1), &first).await.expect("add");
    store.add(day(1), &second).await.expect("add");
    store.add(day(3), &later).await.expect("add");

    let mut both = first.clone();
    both.merge(&second);
    assert_eq!(store.days(range(0, 10)).await.expect("days"), vec![(day(1), both.clone()), (day(3), later)]);
    assert_eq!(store.days(range(1, 2)).await.expect("days"), vec![(day(1), both.clone())]);
    assert!(store.days(range(4, 10)).await.expect("days").is_empty());
    let read = &store.days(range(1, 1)).await.expect("days")[0].1;
    assert_eq!((read.visits, read.codes.get("nope"), read.referrers.get("a.example")), (4, Some(3), Some(2)));
    assert_eq!(read.reasons.get(&OrphanReason::Deleted), Some(&1));
}

pub async fn concurrent_adds_all_count(storage: impl Storage<dyn OrphanVisitStore>) {
    let store = storage.open().await;
    let adders: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let code = format!("c{}", i % 4);
                let batch = visits(&[(&code, OrphanReason::Unknown, None), ("every", OrphanReason::Disabled, None)]);
                store.add(day(5), &batch).await.expect("add");
            })
        })
        .collect();
    for adder in adders {
        adder.await.expect("adder");
    }
    let days = store.days(range(5, 5)).await.expect("days");
    let read = &days[0].1;
    assert_eq!((read.visits, read.codes.get("every"), read.codes.get("c3")), (32, Some(16), Some(4)));
    assert_eq!(read.reasons.get(&OrphanReason::Unknown), Some(&16));
}

pub async fn a_day_keeps_the_codes_tried_most_within_its_bound(storage: impl Storage<dyn OrphanVisitStore>) {
    let store = storage.open().await;
    // Three flushes of a flood: each brings 1,500 codes tried once and a few tried often.
    for flush in 0..3 {
        let mut batch = OrphanDay::default();
        for i in 0..1_500 {
            batch.record(&format!("random-{flush}-{i}"), OrphanReason::Unknown, None);
        }
        for _ in 0..50 {
            batch.record("wp-login.php", OrphanReason::Unknown, Some("https://scanner.example/"));
        }
        batch.record("typo1", OrphanReason::Deleted, None);
        batch.record("typo1", OrphanReason::Deleted, None);
        store.add(day(7), &batch).await.expect("add");
    }
    let days = store.days(range(7, 7)).await.expect("days");
    let read = &days[0].1;
    assert_eq!(read.visits, 3 * (1_500 + 50 + 2));
    assert!(read.codes.len() <= KEPT_PER_DAY, "{} codes kept", read.codes.len());
    let top = read.codes.ranked();
    assert_eq!(top[0], ("wp-login.php".to_owned(), 150));
    assert_eq!(top[1], ("typo1".to_owned(), 6));
    assert_eq!(read.referrers.get("scanner.example"), Some(150));
}

pub async fn orphan_visits_survive_a_restart(storage: impl Storage<dyn OrphanVisitStore>) {
    let store = storage.open().await;
    let tried = visits(&[("kept1", OrphanReason::Exhausted, None)]);
    store.add(day(9), &tried).await.expect("add");
    drop(store);
    let reopened = storage.open().await;
    assert_eq!(reopened.days(range(9, 9)).await.expect("days"), vec![(day(9), tried)]);
}

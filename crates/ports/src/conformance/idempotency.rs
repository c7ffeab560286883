//! What every idempotency-key store must do.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kurz_domain::{Code, Timestamp};

use super::Storage;
use crate::{IdempotencyStore, Reservation};

const DAY: Duration = Duration::from_hours(24);

fn reservation(code: &str, fingerprint: u8) -> Reservation {
    Reservation { fingerprint: [fingerprint; 32], code: Code::parse(code).expect("valid") }
}

/// The wall clock: stores that expire rows themselves (Redis) keep time on their own.
fn now() -> Timestamp {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
    Timestamp::from_millis(i64::try_from(millis).expect("millis fit"))
}

pub async fn a_key_is_reserved_once(storage: impl Storage<dyn IdempotencyStore>) {
    let store = storage.open().await;
    let first = reservation("abc1234", 1);
    assert_eq!(store.reserve("k1", &first, now(), DAY).await.expect("reserve"), None);
    let again = store.reserve("k1", &reservation("xyz9876", 2), now(), DAY).await.expect("reserve");
    assert_eq!(again, Some(first.clone()), "the first reservation holds, and is returned");
    assert_eq!(store.reserve("k2", &reservation("xyz9876", 2), now(), DAY).await.expect("reserve"), None);
}

pub async fn a_held_reservation_is_read_without_being_made(storage: impl Storage<dyn IdempotencyStore>) {
    let store = storage.open().await;
    assert_eq!(store.held("looked-at", now()).await.expect("held"), None);
    let first = reservation("abc1234", 1);
    assert_eq!(store.held("looked-at", now()).await.expect("held"), None, "looking reserves nothing");
    assert_eq!(store.reserve("looked-at", &first, now(), DAY).await.expect("reserve"), None);
    assert_eq!(store.held("looked-at", now()).await.expect("held"), Some(first.clone()));
    store.release("looked-at", &first).await.expect("release");
    assert_eq!(store.held("looked-at", now()).await.expect("held"), None);
    let ttl = Duration::from_millis(200);
    assert_eq!(store.reserve("brief-look", &first, now(), ttl).await.expect("reserve"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.held("brief-look", now()).await.expect("held").is_some() {
        assert!(Instant::now() < deadline, "a 200 ms reservation lapses within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn of_racing_reservations_one_wins_and_all_see_it(storage: impl Storage<dyn IdempotencyStore>) {
    let store = storage.open().await;
    let racing: Vec<_> = (0..20_u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mine = reservation(&format!("code{i:03}"), i);
                let held = store.reserve("race", &mine, now(), DAY).await.expect("reserve");
                held.unwrap_or(mine)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in racing {
        winners.push(task.await.expect("task"));
    }
    winners.dedup();
    assert_eq!(winners.len(), 1, "every racer sees the one reservation: {winners:?}");
}

pub async fn a_released_key_can_be_reserved_again(storage: impl Storage<dyn IdempotencyStore>) {
    let store = storage.open().await;
    let first = reservation("abc1234", 1);
    let second = reservation("xyz9876", 2);
    assert_eq!(store.reserve("k", &first, now(), DAY).await.expect("reserve"), None);
    // Only the holder gives a key up.
    store.release("k", &second).await.expect("release");
    assert_eq!(store.reserve("k", &second, now(), DAY).await.expect("reserve"), Some(first.clone()));
    store.release("k", &first).await.expect("release");
    assert_eq!(store.reserve("k", &second, now(), DAY).await.expect("reserve"), None);
    store.release("unknown", &first).await.expect("releasing an unknown key does nothing");
}

pub async fn a_reservation_lapses_after_its_ttl(storage: impl Storage<dyn IdempotencyStore>) {
    let store = storage.open().await;
    let ttl = Duration::from_millis(200);
    assert_eq!(store.reserve("brief", &reservation("abc1234", 1), now(), ttl).await.expect("reserve"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = store.reserve("brief", &reservation("xyz9876", 2), now(), ttl).await.expect("reserve");
        if held.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "a 200 ms reservation lapses within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn reservations_survive_a_restart(storage: impl Storage<dyn IdempotencyStore>) {
    let first = reservation("abc1234", 1);
    {
        let store = storage.open().await;
        assert_eq!(store.reserve("kept", &first, now(), DAY).await.expect("reserve"), None);
    }
    let store = storage.open().await;
    assert_eq!(store.reserve("kept", &reservation("xyz9876", 2), now(), DAY).await.expect("reserve"), Some(first));
}

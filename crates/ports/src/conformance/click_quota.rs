//! What every click quota must do.

use std::sync::Arc;

use kurz_domain::link::MaxClicks;

use super::Storage;
use super::fixtures::code;
use crate::ClickQuota;

pub async fn click_quota_is_exact_under_contention(storage: impl Storage<dyn ClickQuota>) {
    let quota = storage.open().await;
    let max = MaxClicks::new(10).expect("valid");
    let takes: Vec<_> = (0..100)
        .map(|_| {
            let quota = Arc::clone(&quota);
            tokio::spawn(async move { quota.take(&code("tango"), max).await.expect("take") })
        })
        .collect();
    let mut granted = 0;
    for take in takes {
        granted += usize::from(take.await.expect("task"));
    }
    assert_eq!(granted, 10);
    assert!(quota.take(&code("uniform"), max).await.expect("take"), "quotas are per link");
}

pub async fn click_quota_survives_a_restart_and_follows_the_limit(storage: impl Storage<dyn ClickQuota>) {
    let two = MaxClicks::new(2).expect("valid");
    {
        let quota = storage.open().await;
        assert!(quota.take(&code("victor"), two).await.expect("take"));
    }
    let quota = storage.open().await;
    assert!(quota.take(&code("victor"), two).await.expect("take"));
    assert!(!quota.take(&code("victor"), two).await.expect("take"), "the click before the restart counts");
    let three = MaxClicks::new(3).expect("valid");
    assert!(quota.take(&code("victor"), three).await.expect("take"), "a raised limit grants more");
    assert!(!quota.take(&code("victor"), three).await.expect("take"));
}

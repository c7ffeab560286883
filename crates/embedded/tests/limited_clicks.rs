//! A limited link's click is taken from its quota and appended in one commit: under contention
//! exactly `max_clicks` takes succeed, and the log then holds exactly their clicks, also after a
//! restart.

use std::sync::Arc;

use kurz_domain::link::MaxClicks;
use kurz_domain::{Event, LinkClicked, Timestamp};
use kurz_embedded::{EmbeddedLog, LogOptions};
use kurz_ports::conformance::fixtures::code;
use kurz_ports::{ClickQuota, EventLog};

async fn clicks_in(log: &EmbeddedLog) -> usize {
    let mut clicks = 0;
    for (partition, end) in (0..).zip(log.end_offsets().await.expect("ends")) {
        let records = log.read(partition, 0, usize::try_from(end).expect("fits")).await.expect("read");
        clicks += records.iter().filter(|r| matches!(r.event, Ok(Event::Clicked(_)))).count();
    }
    clicks
}

#[tokio::test]
async fn each_take_appends_its_click_and_nothing_more() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    let max = MaxClicks::new(25).expect("valid");
    {
        let log = Arc::new(EmbeddedLog::open(&path, LogOptions { partitions: 4 }).expect("opens"));
        let takes: Vec<_> = (0..100)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let click = LinkClicked::new(code("quota"), Timestamp::from_millis(i), None, None, None);
                    log.take_and_append(&code("quota"), max, &[Event::Clicked(click)]).await.expect("take")
                })
            })
            .collect();
        let mut granted = 0;
        for take in takes {
            granted += usize::from(take.await.expect("task").expect("the embedded log appends with its takes"));
        }
        assert_eq!(granted, 25);
        assert_eq!(clicks_in(&log).await, 25, "a click for every take, none for a refusal");
        assert!(!log.take(&code("quota"), max).await.expect("take"), "one quota for both ways of taking");
    }
    let log = EmbeddedLog::open(&path, LogOptions { partitions: 4 }).expect("reopens");
    assert_eq!(clicks_in(&log).await, 25);
    assert!(!log.take(&code("quota"), max).await.expect("take"), "the takes are durable");
}

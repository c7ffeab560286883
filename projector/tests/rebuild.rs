//! `projector --rebuild` rebuilds the read store from the event log, then exits.

use std::process::Command;

use kurz_domain::stats::Bots;
use kurz_domain::{Code, DayRange, Event, LinkClicked, LinkCreated, LinkSpec, TargetUrl, Timestamp};
use kurz_embedded::{EmbeddedLog, EmbeddedStore, LogOptions};
use kurz_ports::{EventLog, ReadStore};

#[tokio::test]
async fn rebuild_replaces_a_stale_store_with_the_logs_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let code = Code::parse("rebuilt").expect("valid");
    {
        let log = EmbeddedLog::open(&dir.path().join("events.redb"), LogOptions { partitions: 3 }).expect("log");
        let created = LinkCreated {
            code: code.clone(),
            spec: LinkSpec::new(TargetUrl::parse("https://example.com/").expect("valid")),
            custom_alias: true,
            created_at: Timestamp::from_millis(0),
            owner: kurz_domain::Owner::admin(),
            key_id: None,
        };
        let mut events = vec![Event::Created(created)];
        events.extend(
            (0..7).map(|i| Event::Clicked(LinkClicked::new(code.clone(), Timestamp::from_millis(i), None, None, None))),
        );
        log.append(&events).await.expect("append");
    }
    // A store that has seen nothing of it stands in for a corrupt or outdated one.
    drop(EmbeddedStore::open(&dir.path().join("store.redb")).expect("store"));

    let status = Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("--rebuild")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .env("KURZ_STORAGE__PARTITIONS", "3")
        .status()
        .expect("projector runs");
    assert!(status.success());

    let store = EmbeddedStore::open(&dir.path().join("store.redb")).expect("store");
    assert!(store.link(&code).await.expect("read").is_some());
    assert_eq!(store.stats(&code, DayRange::ALL, Bots::Exclude).await.expect("stats").total_clicks, 7);
    assert_eq!(store.checkpoints(3).await.expect("checkpoints").iter().sum::<u64>(), 8);
}

#[test]
fn without_an_event_log_it_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("--rebuild")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .output()
        .expect("projector runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no event log"));
}

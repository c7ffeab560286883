//! A catch-up in writes the store ends itself (by the rows its fold holds) or the projector ends (by
//! records): the same read models as one write.

use std::sync::Arc;

use kurz_domain::stats::Bots;
use kurz_domain::{Code, DayRange, Event, LinkClicked, LinkCreated, LinkSpec, TargetUrl, Timestamp};
use kurz_embedded::{EmbeddedLog, EmbeddedStore, LogOptions};
use kurz_ports::{Chunk, EventLog, LogRecord, Position, ReadStore};
use kurz_projector::{Projector, ProjectorOptions, ReadModels};

const DAY_MS: i64 = 86_400_000;

fn code(i: usize) -> Code {
    Code::parse(&format!("link-{i}")).expect("valid")
}

fn created(code: Code) -> Event {
    Event::Created(LinkCreated {
        code,
        spec: LinkSpec::new(TargetUrl::parse("https://example.com/").expect("valid")),
        custom_alias: true,
        created_at: Timestamp::from_millis(0),
        owner: kurz_domain::Owner::admin(),
        key_id: None,
    })
}

fn clicked(code: Code, at: i64, visitor: &str) -> Event {
    Event::Clicked(LinkClicked::new(code, Timestamp::from_millis(at), None, None, Some(visitor)))
}

#[tokio::test]
async fn a_store_ends_a_write_of_chunks_once_it_holds_its_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).expect("store").with_rows_per_write(2);
    let (sender, chunks) = tokio::sync::mpsc::channel(4);
    // Three chunks, each one click on a day of its own: a row each.
    for day in 0..3 {
        let record = LogRecord {
            position: Position { partition: 0, offset: u64::try_from(day).expect("small") },
            event: Ok(clicked(code(0), day * DAY_MS, "v")),
        };
        sender.send(Chunk::Records(vec![record])).await.expect("taken");
    }
    sender.send(Chunk::End).await.expect("taken");
    let written = store.apply_chunks(chunks).await.expect("written");
    assert_eq!(written.ended_after, Some(2), "ended once two rows were held");
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![2], "the third chunk is the next write's");
    let stats = store.stats(&code(0), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!(stats.total_clicks, 2);
}

#[tokio::test]
async fn a_catch_up_in_writes_the_store_ends_makes_what_one_write_makes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(EmbeddedLog::open(&dir.path().join("events.redb"), LogOptions { partitions: 3 }).expect("log"));
    // 12 links, each clicked by 4 visitors on each of 5 days: 60 (link, day) rows.
    let mut events: Vec<Event> = (0..12).map(|i| created(code(i))).collect();
    for day in 0..5 {
        for visitor in ["a", "b", "c", "d"] {
            events.extend((0..12).map(|i| clicked(code(i), day * DAY_MS + 1000, visitor)));
        }
    }
    log.append(&events).await.expect("append");

    let mut seen = Vec::new();
    // Writes ended by the store's rows, by the records of a catch-up write, or neither.
    let ways = [("by-rows", 7, 1_000), ("by-records", usize::MAX, 10), ("one-write", usize::MAX, 1_000)];
    for (name, rows_per_write, catch_up_batch_size) in ways {
        let store = Arc::new(
            EmbeddedStore::open(&dir.path().join(format!("{name}.redb")))
                .expect("store")
                .with_rows_per_write(rows_per_write),
        );
        let models = ReadModels::new(store.clone(), Vec::new());
        let options = ProjectorOptions { catch_up_batch_size, ..ProjectorOptions::default() };
        let projector = Projector::resume(log.clone(), models, options).await.expect("resumes");
        let applied = projector.catch_up().await.expect("catches up");
        assert_eq!(applied, events.len() as u64, "{name}: every record applied once");
        assert_eq!(store.checkpoints(3).await.expect("checkpoints"), log.end_offsets().await.expect("ends"), "{name}");
        let mut stats = Vec::new();
        for i in 0..12 {
            stats.push(store.stats(&code(i), DayRange::ALL, Bots::Exclude).await.expect("stats"));
        }
        assert!(stats.iter().all(|s| (s.total_clicks, s.unique_visitors) == (20, 4)), "{name}: {stats:?}");
        seen.push(stats);
    }
    assert!(seen.iter().all(|stats| *stats == seen[0]));
}

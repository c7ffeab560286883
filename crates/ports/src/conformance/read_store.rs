//! What every read store (and click quota) must do.

use kurz_domain::stats::Bots;
use kurz_domain::{DayRange, Event, LinkClicked};

use super::Storage;
use super::fixtures::{DAY_MS, at, clicked, code, created, deleted, updated};
use crate::{Chunk, EncodedRecords, LogRecord, Position, ReadStore};

/// Records for partition 0 from `offset` on.
fn records(offset: u64, events: &[Event]) -> Vec<LogRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| LogRecord {
            position: Position { partition: 0, offset: offset + i as u64 },
            event: Ok(e.clone()),
        })
        .collect()
}

pub async fn links_are_folded_from_their_events(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    assert_eq!(store.link(&code("india")).await.expect("read"), None);
    store.apply(records(0, &[created("india"), created("juliet")])).await.expect("apply");
    let link = store.link(&code("india")).await.expect("read").expect("exists");
    assert_eq!(link.spec.target.as_str(), "https://example.com/india");
    assert_eq!(link.created_at, at(0));

    store.apply(records(2, &[updated("india", "https://moved.example/")])).await.expect("apply");
    let link = store.link(&code("india")).await.expect("read").expect("exists");
    assert_eq!(
        (link.spec.target.as_str(), link.updated_at, link.created_at),
        ("https://moved.example/", at(1000), at(0))
    );

    store.apply(records(3, &[deleted("india")])).await.expect("apply");
    let link = store.link(&code("india")).await.expect("read").expect("exists");
    assert_eq!(link.deleted_at, Some(at(2000)));
    assert_eq!(store.link(&code("juliet")).await.expect("read").expect("exists").deleted_at, None);
}

pub async fn applying_a_record_twice_changes_nothing(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let batch = records(0, &[created("kilo"), clicked("kilo", 10, "v1"), clicked("kilo", 20, "v2")]);
    store.apply(batch.clone()).await.expect("apply");
    let once = store.stats(&code("kilo"), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!(once.total_clicks, 2);
    // A redelivery overlapping what was applied, as after a crash between write and commit.
    store.apply(batch[1..].to_vec()).await.expect("apply again");
    store.apply(batch.clone()).await.expect("apply again");
    assert_eq!(store.stats(&code("kilo"), DayRange::ALL, Bots::Exclude).await.expect("stats"), once);
    let more = records(3, &[clicked("kilo", 30, "v3")]);
    let mixed: Vec<LogRecord> = batch.iter().chain(&more).cloned().collect();
    store.apply(mixed).await.expect("apply mixed");
    assert_eq!(store.stats(&code("kilo"), DayRange::ALL, Bots::Exclude).await.expect("stats").total_clicks, 3);
}

pub async fn checkpoints_advance_with_the_effects(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    assert_eq!(store.checkpoints(4).await.expect("checkpoints"), vec![0, 0, 0, 0]);
    let mut batch = records(0, &[created("lima"), clicked("lima", 1, "v")]);
    batch.push(LogRecord { position: Position { partition: 3, offset: 7 }, event: Ok(created("mike")) });
    store.apply(batch).await.expect("apply");
    assert_eq!(store.checkpoints(4).await.expect("checkpoints"), vec![2, 0, 0, 8]);
    assert!(store.link(&code("mike")).await.expect("read").is_some());
}

pub async fn undecodable_records_only_move_the_checkpoint(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let mut batch = records(0, &[created("november")]);
    batch.push(LogRecord { position: Position { partition: 0, offset: 1 }, event: Err("unknown schema id 99".into()) });
    batch.extend(records(2, &[clicked("november", 1, "v")]));
    store.apply(batch).await.expect("apply");
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![3]);
    assert_eq!(store.stats(&code("november"), DayRange::ALL, Bots::Exclude).await.expect("stats").total_clicks, 1);
}

/// A store that stops taking chunks, or never answers, fails the test instead of hanging it.
async fn within_deadline<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(30), work).await.expect("the store answers within 30 s")
}

/// A link created, clicked on two days, moved, and clicked again.
fn a_moved_links_clicks(link: &str) -> [Event; 5] {
    [
        created(link),
        clicked(link, 1, "v1"),
        clicked(link, DAY_MS + 1, "v2"),
        updated(link, "https://moved.example/"),
        clicked(link, DAY_MS + 2, "v1"),
    ]
}

/// A write handed over in chunks ends as the same write handed over at once.
pub async fn chunks_of_a_write_apply_as_the_write(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    // The same events for two links, in partitions of their own: one written whole, one in chunks.
    let write = |link: &str, partition: u32| -> Vec<LogRecord> {
        records(0, &a_moved_links_clicks(link))
            .into_iter()
            .map(|r| LogRecord { position: Position { partition, ..r.position }, ..r })
            .collect()
    };
    let applied = store.apply(write("oscar", 0)).await.expect("apply");
    let (sender, chunks) = tokio::sync::mpsc::channel(1);
    let feed = async move {
        for chunk in write("papa", 1).chunks(2) {
            sender.send(Chunk::Records(chunk.to_vec())).await.expect("the store takes chunks");
        }
        sender.send(Chunk::End).await.expect("the store takes the end");
    };
    let (chunks_applied, ()) = within_deadline(async { tokio::join!(store.apply_chunks(chunks), feed) }).await;
    let chunks_applied = chunks_applied.expect("apply chunks");
    assert_eq!((applied, chunks_applied.changed), (vec![code("oscar")], vec![code("papa")]));
    assert_eq!(chunks_applied.ended_after, None, "a small write is written whole");
    assert_eq!(store.checkpoints(2).await.expect("checkpoints"), vec![5, 5]);
    let mut stats = Vec::new();
    for link in ["oscar", "papa"] {
        let target = store.link(&code(link)).await.expect("read").expect("exists").spec.target;
        assert_eq!(target.as_str(), "https://moved.example/");
        stats.push(store.stats(&code(link), DayRange::ALL, Bots::Exclude).await.expect("stats"));
    }
    assert_eq!((stats[1].total_clicks, stats[1].unique_visitors, stats[1].clicks_by_day.len()), (3, 2, 2));
    assert_eq!(stats[0], stats[1]);
}

/// Records handed over encoded, clicks left as bytes ([`EncodedRecords`]), apply as the same records
/// decoded: damaged and unknown records only move the checkpoint, records below it are passed over.
pub async fn encoded_chunks_apply_as_the_records_decoded(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let codec = std::sync::Arc::new(kurz_schemas::Codec::local(kurz_schemas::Catalog::shipped()));
    // A link's records as the log holds them, in a partition of its own.
    let framed = |link: &str| -> Vec<Vec<u8>> {
        let mut events = a_moved_links_clicks(link).to_vec();
        events.push(clicked(link, DAY_MS + 3, "v3"));
        let mut framed: Vec<Vec<u8>> = events.iter().map(|e| codec.encode(e).expect("encodes")).collect();
        let mut damaged = framed[1].clone();
        damaged.pop();
        framed.insert(2, damaged);
        framed.insert(4, kurz_schemas::frame(u32::MAX, &[0]));
        framed.push(codec.encode(&clicked(link, DAY_MS + 4, "v4")).expect("encodes"));
        framed
    };
    let decoded = |partition: u32, framed: &[Vec<u8>]| -> Vec<LogRecord> {
        (0..)
            .zip(framed)
            .map(|(offset, record)| LogRecord::decode(&codec, Position { partition, offset }, record))
            .collect()
    };
    let (romeo, sierra) = (framed("romeo"), framed("sierra"));
    let total = u64::try_from(romeo.len()).expect("a few records");
    store.apply(decoded(0, &romeo)).await.expect("apply");
    // Sierra's first three records are applied already: its encoded chunks bring them again.
    store.apply(decoded(1, &sierra)[..3].to_vec()).await.expect("apply");
    let (sender, chunks) = tokio::sync::mpsc::channel(1);
    let feed = async {
        for chunk in (0..).zip(&sierra).collect::<Vec<_>>().chunks(3) {
            let mut encoded = EncodedRecords::new(std::sync::Arc::clone(&codec));
            for (offset, record) in chunk {
                encoded.push(Position { partition: 1, offset: *offset }, record);
            }
            sender.send(Chunk::Encoded(encoded.finish())).await.expect("the store takes chunks");
        }
        sender.send(Chunk::End).await.expect("the store takes the end");
    };
    let (applied, ()) = within_deadline(async { tokio::join!(store.apply_chunks(chunks), feed) }).await;
    assert_eq!(applied.expect("apply chunks").changed, vec![code("sierra")], "the update is in the chunks");
    assert_eq!(store.checkpoints(2).await.expect("checkpoints"), vec![total, total]);
    let mut seen = Vec::new();
    for link in ["romeo", "sierra"] {
        let target = store.link(&code(link)).await.expect("read").expect("exists").spec.target;
        let stats = store.stats(&code(link), DayRange::ALL, Bots::Exclude).await.expect("stats");
        seen.push((target.as_str().to_owned(), stats));
    }
    assert_eq!((seen[1].1.total_clicks, seen[1].1.unique_visitors), (5, 4), "the damaged click is not counted");
    assert_eq!(seen[0], seen[1]);
}

/// A stream of chunks that stops before its end is an abandoned write: nothing of it is kept.
pub async fn chunks_without_their_end_write_nothing(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let (sender, chunks) = tokio::sync::mpsc::channel(1);
    let feed = async move {
        let chunk = records(0, &[created("quebec"), clicked("quebec", 1, "v")]);
        sender.send(Chunk::Records(chunk)).await.expect("the store takes chunks");
    };
    let (abandoned, ()) = within_deadline(async { tokio::join!(store.apply_chunks(chunks), feed) }).await;
    assert!(abandoned.is_err(), "a write without its end is refused");
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![0]);
    assert_eq!(store.link(&code("quebec")).await.expect("read"), None);
}

pub async fn stats_cover_the_requested_days(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let events = [
        created("oscar"),
        clicked("oscar", 10, "v1"),
        clicked("oscar", DAY_MS + 10, "v1"),
        clicked("oscar", DAY_MS + 20, "v2"),
        clicked("oscar", 3 * DAY_MS, "v3"),
    ];
    store.apply(records(0, &events)).await.expect("apply");
    let day = |n: i64| at(n * DAY_MS).day();
    let all = store.stats(&code("oscar"), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!(all.total_clicks, 4);
    assert_eq!(all.clicks_by_day, vec![(day(0), 1), (day(1), 2), (day(3), 1)]);
    assert_eq!(all.last_clicked_at, Some(at(3 * DAY_MS)));
    assert_eq!(all.top_referrers, vec![("news.example".to_owned(), 4)]);
    assert_eq!(all.browsers, vec![("Firefox".to_owned(), 4)]);
    assert_eq!(all.operating_systems, vec![("Linux".to_owned(), 4)]);
    assert_eq!(all.devices, vec![("Desktop".to_owned(), 4)]);

    let middle = store
        .stats(&code("oscar"), DayRange { from: Some(day(1)), to: Some(day(2)) }, Bots::Exclude)
        .await
        .expect("stats");
    assert_eq!((middle.total_clicks, middle.unique_visitors), (2, 2));
    assert_eq!(middle.clicks_by_day, vec![(day(1), 2)]);
    assert_eq!(middle.last_clicked_at, Some(at(DAY_MS + 20)));
    let open_start =
        store.stats(&code("oscar"), DayRange { from: None, to: Some(day(0)) }, Bots::Exclude).await.expect("stats");
    assert_eq!(open_start.total_clicks, 1);
    let never = store.stats(&code("papa"), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!((never.total_clicks, never.unique_visitors, never.last_clicked_at), (0, 0, None));
}

/// Several links' rows read together are each link's rows, in the order asked.
pub async fn rows_of_several_links_are_read_as_one_by_one(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let events = [
        created("quebec"),
        created("romeo"),
        clicked("quebec", 10, "v1"),
        clicked("romeo", DAY_MS + 10, "v2"),
        clicked("romeo", 2 * DAY_MS + 10, "v3"),
    ];
    store.apply(records(0, &events)).await.expect("apply");
    let codes = [code("romeo"), code("sierra"), code("quebec")];
    for range in [DayRange::ALL, DayRange { from: Some(at(DAY_MS).day()), to: Some(at(DAY_MS).day()) }] {
        let together = store.click_days_of(&codes, range).await.expect("rows");
        let mut one_by_one = Vec::new();
        for code in &codes {
            one_by_one.push(store.click_days(code, range).await.expect("rows"));
        }
        assert_eq!(together, one_by_one);
    }
    let all = store.click_days_of(&codes, DayRange::ALL).await.expect("rows");
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 0, 1]);
    assert!(store.click_days_of(&[], DayRange::ALL).await.expect("rows").is_empty());
}

/// A stored day row keeps people's and bots' clicks apart, across batches: stats leave bots out
/// unless asked for, and always say how many there were.
pub async fn bots_are_kept_apart_from_people(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let bot = |offset_ms: i64, agent: &str, visitor: &str| {
        Event::Clicked(LinkClicked::new(code("romeo"), at(offset_ms), None, Some(agent), Some(visitor)))
    };
    let events = [
        created("romeo"),
        clicked("romeo", 10, "person-1"),
        bot(20, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "slack"),
        clicked("romeo", 30, "person-2"),
        bot(40, "curl/8.5.0", "script"),
        bot(DAY_MS, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "google"),
    ];
    for (offset, event) in events.iter().enumerate() {
        store.apply(records(offset as u64, std::slice::from_ref(event))).await.expect("apply");
    }
    let romeo = code("romeo");
    let stats = |bots| store.stats(&romeo, DayRange::ALL, bots);
    let people = stats(Bots::Exclude).await.expect("stats");
    assert_eq!((people.total_clicks, people.bot_clicks, people.unique_visitors), (2, 3, 2));
    assert_eq!(people.clicks_by_day, vec![(at(0).day(), 2)]);
    assert_eq!(people.browsers, vec![("Firefox".to_owned(), 2)]);
    let everyone = stats(Bots::Include).await.expect("stats");
    assert_eq!((everyone.total_clicks, everyone.bot_clicks, everyone.unique_visitors), (5, 3, 5));
    assert_eq!(everyone.clicks_by_day, vec![(at(0).day(), 4), (at(DAY_MS).day(), 1)]);
    let bots = stats(Bots::Only).await.expect("stats");
    assert_eq!((bots.total_clicks, bots.unique_visitors), (3, 3));
    assert_eq!(bots.devices, vec![("Bot".to_owned(), 3)]);
    assert_eq!(bots.top_referrers, vec![("(direct)".to_owned(), 3)]);
}

pub async fn unique_visitors_count_each_visitor_once(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let mut events = vec![created("quebec")];
    events.extend((0..300).map(|i| clicked("quebec", i, &format!("visitor-{}", i % 25))));
    for (i, chunk) in events.chunks(37).enumerate() {
        store.apply(records((i * 37) as u64, chunk)).await.expect("apply");
    }
    let stats = store.stats(&code("quebec"), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!((stats.total_clicks, stats.unique_visitors), (300, 25));
}

pub async fn only_link_changes_are_reported(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let changed = store.apply(records(0, &[created("romeo"), clicked("romeo", 1, "v")])).await.expect("apply");
    assert_eq!(changed, vec![code("romeo")]);
    let changed = store.apply(records(2, &[clicked("romeo", 2, "v")])).await.expect("apply");
    assert!(changed.is_empty(), "clicks do not change the link: {changed:?}");
}

pub async fn projections_survive_a_restart(storage: impl Storage<dyn ReadStore>) {
    {
        let store = storage.open().await;
        store.apply(records(0, &[created("sierra"), clicked("sierra", 1, "v")])).await.expect("apply");
    }
    let store = storage.open().await;
    assert!(store.link(&code("sierra")).await.expect("read").is_some());
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![2]);
    assert_eq!(store.stats(&code("sierra"), DayRange::ALL, Bots::Exclude).await.expect("stats").total_clicks, 1);
}

pub async fn a_commands_own_link_events_show_at_once_and_the_projector_agrees(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let log = records(0, &[created("whiskey"), clicked("whiskey", 1, "v"), updated("whiskey", "https://new.example/")]);
    let commanded = vec![log[0].clone(), log[2].clone()];
    assert_eq!(store.apply_link_events(commanded).await.expect("apply"), vec![code("whiskey")]);
    let link = store.link(&code("whiskey")).await.expect("read").expect("visible before the projector ran");
    assert_eq!(link.spec.target.as_str(), "https://new.example/");
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![0], "checkpoints are the projector's");

    let changed = store.apply(log).await.expect("apply");
    assert!(changed.is_empty(), "the projector found the link events already folded: {changed:?}");
    assert_eq!(store.link(&code("whiskey")).await.expect("read").expect("exists"), link);
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![3]);
    assert_eq!(store.stats(&code("whiskey"), DayRange::ALL, Bots::Exclude).await.expect("stats").total_clicks, 1);
}

pub async fn a_late_link_event_never_rolls_a_link_back(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let log = records(0, &[created("xray"), updated("xray", "https://second.example/"), deleted("xray")]);
    store.apply(log[..2].to_vec()).await.expect("projector");
    // The command side brings an event the projector has already folded.
    store.apply_link_events(vec![log[0].clone()]).await.expect("apply");
    let link = store.link(&code("xray")).await.expect("read").expect("exists");
    assert_eq!(link.spec.target.as_str(), "https://second.example/");
    // And the other way round: the command side is ahead, the projector catches up.
    store.apply_link_events(vec![log[2].clone()]).await.expect("apply");
    store.apply(log).await.expect("projector");
    let link = store.link(&code("xray")).await.expect("read").expect("exists");
    assert_eq!((link.spec.target.as_str(), link.deleted_at), ("https://second.example/", Some(at(2000))));
}

/// Two projectors on one partition, as during a consumer-group rebalance: each record still counts
/// once, whichever of them applies it.
pub async fn racing_projectors_apply_each_record_once(storage: impl Storage<dyn ReadStore>) {
    let store = storage.open().await;
    let clicks: Vec<Event> = (0..200).map(|i| clicked("sierra", i, &format!("v{}", i % 7))).collect();
    let all = records(0, &clicks);
    let racers: Vec<_> = (0..4)
        .map(|racer| {
            let store = std::sync::Arc::clone(&store);
            let all = all.clone();
            tokio::spawn(async move {
                // Overlapping batches of different sizes, as two consumers' fetches would be.
                for batch in all.chunks(7 + racer * 5) {
                    store.apply(batch.to_vec()).await.expect("apply");
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.expect("racer");
    }
    let stats = store.stats(&code("sierra"), DayRange::ALL, Bots::Exclude).await.expect("stats");
    assert_eq!(stats.total_clicks, 200);
    assert_eq!(stats.unique_visitors, 7);
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![200]);
}

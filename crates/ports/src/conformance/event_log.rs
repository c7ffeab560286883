//! What every event log must do.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Storage;
use super::fixtures::{clicked, code, created};
use crate::{EventLog, PartitionRead, Position, partition_for};

async fn read_all(log: &dyn EventLog, partition: u32) -> Vec<crate::LogRecord> {
    let mut records = Vec::new();
    loop {
        let batch = log.read(partition, records.len() as u64, 1000).await.expect("read");
        if batch.is_empty() {
            return records;
        }
        records.extend(batch);
    }
}

pub async fn appends_are_read_back_in_order_with_their_positions(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let events = vec![created("alpha"), created("bravo"), clicked("alpha", 5, "v1")];
    let positions = log.append(&events).await.expect("append");
    assert_eq!(positions.len(), events.len());
    for (event, position) in events.iter().zip(&positions) {
        assert_eq!(position.partition, partition_for(event.code(), log.partitions()));
        let read = log.read(position.partition, position.offset, 1).await.expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].position, *position);
        assert_eq!(read[0].event.as_ref().expect("decodes"), event);
    }
}

/// Clicks are appended each on their own ([`EventLog::append_each`]): when all go in, as one append.
pub async fn events_appended_each_on_their_own_are_read_back_with_their_positions(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let events: Vec<_> =
        ["kilo", "lima", "oscar"].iter().cycle().zip(0..30).map(|(code, i)| clicked(code, i, "v")).collect();
    let positions = log.append_each(&events).await.expect("every event acknowledged");
    assert_eq!(positions.len(), events.len());
    for (event, position) in events.iter().zip(&positions) {
        assert_eq!(position.partition, partition_for(event.code(), log.partitions()));
        let read = log.read(position.partition, position.offset, 1).await.expect("read");
        assert_eq!(read[0].event.as_ref().expect("decodes"), event);
    }
}

pub async fn events_of_one_code_stay_in_one_partition_in_order(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let events: Vec<_> = (0..50).map(|i| clicked("charlie", i, &format!("v{i}"))).collect();
    for chunk in events.chunks(7) {
        log.append(chunk).await.expect("append");
    }
    let partition = partition_for(&code("charlie"), log.partitions());
    let read: Vec<_> = read_all(&*log, partition).await.into_iter().map(|r| r.event.expect("decodes")).collect();
    assert_eq!(read, events);
}

pub async fn reads_start_anywhere_and_respect_the_limit(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let events: Vec<_> = (0..20).map(|i| clicked("delta", i, "v")).collect();
    log.append(&events).await.expect("append");
    let partition = partition_for(&code("delta"), log.partitions());
    let middle = log.read(partition, 5, 4).await.expect("read");
    let offsets: Vec<u64> = middle.iter().map(|r| r.position.offset).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8]);
    assert_eq!(middle[0].event.as_ref().expect("decodes"), &events[5]);
    assert!(log.read(partition, 20, 10).await.expect("read").is_empty(), "nothing beyond the end");
}

/// A log that hands records encoded ([`EventLog::read_encoded`]) hands the records its decoded
/// reads hand, clicks and link events of several partitions alike.
pub async fn encoded_reads_hold_what_decoded_reads_hold(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let mut events = Vec::new();
    for link in ["echo", "foxtrot", "golf", "hotel"] {
        events.push(created(link));
        events.extend((0..5).map(|i| clicked(link, i, "v")));
    }
    log.append(&events).await.expect("append");
    let reads: Vec<PartitionRead> =
        (0..log.partitions()).map(|partition| PartitionRead { partition, from: 1, max: 4 }).collect();
    let Some(encoded) = log.read_encoded(&reads).await.expect("read") else {
        let _ = writeln!(std::io::stderr(), "this log hands records decoded only: nothing encoded to compare");
        return;
    };
    let decoded = log.read_partitions(&reads).await.expect("read");
    assert!(!decoded.is_empty());
    assert_eq!(encoded.positions().collect::<Vec<_>>(), decoded.iter().map(|r| r.position).collect::<Vec<_>>());
    assert_eq!(encoded.into_records(), decoded);
}

/// Appends of one event and of thousands, read from offsets inside, at and around each append's
/// edges: an adapter that stores appends in batches must not let them show.
pub async fn reads_start_anywhere_after_appends_of_every_size(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let mut events = Vec::new();
    for (round, size) in [1_i64, 1200, 3, 1, 700].into_iter().enumerate() {
        let round = i64::try_from(round).expect("few rounds");
        let batch: Vec<_> =
            (0..size).map(|i| clicked("india", round * 10_000 + i, &format!("visitor-{round}-{i}"))).collect();
        log.append(&batch).await.expect("append");
        events.extend(batch);
    }
    let partition = partition_for(&code("india"), log.partitions());
    let total = events.len() as u64;
    let edges = [0, 1, 2, 1200, 1201, 1202, 1203, 1204, 1205, total - 2, total - 1, total];
    for from in (0..total).step_by(97).chain(edges) {
        let read = log.read(partition, from, 5).await.expect("read");
        let offsets: Vec<u64> = read.iter().map(|r| r.position.offset).collect();
        assert_eq!(offsets, (from..total.min(from + 5)).collect::<Vec<_>>(), "reading from {from}");
        for record in read {
            let index = usize::try_from(record.position.offset).expect("small offsets");
            assert_eq!(record.event.expect("decodes"), events[index], "offset {}", record.position.offset);
        }
    }
    assert_eq!(read_all(&*log, partition).await.len(), events.len());
}

pub async fn end_offsets_follow_appends(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let before = log.end_offsets().await.expect("offsets");
    assert_eq!(before.len(), log.partitions() as usize);
    let positions = log.append(&[created("echo"), clicked("echo", 1, "v")]).await.expect("append");
    let after = log.end_offsets().await.expect("offsets");
    let partition = positions[0].partition as usize;
    assert_eq!(after[partition], before[partition] + 2);
    assert_eq!(positions[1].offset + 1, after[partition]);
}

pub async fn waiting_ends_when_records_arrive_or_time_runs_out(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let seen = log.end_offsets().await.expect("offsets");
    let started = Instant::now();
    log.wait_for_records(&seen, Duration::from_millis(200)).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "returned before the timeout with nothing new");

    let appender = Arc::clone(&log);
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        appender.append(&[created("foxtrot")]).await.expect("append");
    });
    let started = Instant::now();
    log.wait_for_records(&seen, Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(20), "did not wake up for the append");
    append.await.expect("append task");
    let now = log.end_offsets().await.expect("offsets");
    assert!(now.iter().zip(&seen).any(|(n, s)| n > s));
    let started = Instant::now();
    log.wait_for_records(&seen, Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "records already there must not wait");
}

pub async fn concurrent_appends_get_distinct_positions(storage: impl Storage<dyn EventLog>) {
    let log = storage.open().await;
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let events: Vec<_> = (0..10).map(|i| clicked(&format!("golf{task}"), i, "v")).collect();
                log.append(&events).await.expect("append")
            })
        })
        .collect();
    let mut positions = HashSet::new();
    for task in tasks {
        for position in task.await.expect("task") {
            assert!(positions.insert(position), "{position:?} handed out twice");
        }
    }
    assert_eq!(positions.len(), 320);
    let mut per_partition: BTreeMap<u32, usize> = BTreeMap::new();
    for Position { partition, .. } in &positions {
        *per_partition.entry(*partition).or_default() += 1;
    }
    for (partition, count) in per_partition {
        assert_eq!(read_all(&*log, partition).await.len(), count, "partition {partition}");
    }
}

pub async fn acknowledged_appends_survive_a_restart(storage: impl Storage<dyn EventLog>) {
    let events = vec![created("hotel"), clicked("hotel", 1, "v")];
    let positions = {
        let log = storage.open().await;
        log.append(&events).await.expect("append")
    };
    let log = storage.open().await;
    for (event, position) in events.iter().zip(positions) {
        let read = log.read(position.partition, position.offset, 1).await.expect("read");
        assert_eq!(read[0].event.as_ref().expect("decodes"), event);
    }
    let next = log.append(&[clicked("hotel", 2, "v")]).await.expect("append after restart");
    assert_eq!(next[0].offset, read_all(&*log, next[0].partition).await.len() as u64 - 1, "offsets continue");
}

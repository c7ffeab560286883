//! What every link history must do.

use kurz_domain::Event;

use super::Storage;
use super::fixtures::{clicked, code, created_by, deleted, updated};
use crate::{LinkHistory, LogRecord, Position};

fn records(partition: u32, offset: u64, events: &[Event]) -> Vec<LogRecord> {
    (offset..)
        .zip(events)
        .map(|(offset, event)| LogRecord { position: Position { partition, offset }, event: Ok(event.clone()) })
        .collect()
}

pub async fn a_links_changes_are_kept_in_order_without_its_clicks(storage: impl Storage<dyn LinkHistory>) {
    let history = storage.open().await;
    let events = [
        created_by("alpha", "ann", 0),
        created_by("bravo", "ann", 0),
        clicked("alpha", 1, "v"),
        updated("alpha", "https://moved.example/"),
        deleted("alpha"),
    ];
    history.apply(&records(0, 0, &events)).await.expect("apply");
    let alpha = history.events(&code("alpha"), 0, 100).await.expect("read");
    assert_eq!(alpha, [(0, events[0].clone()), (3, events[3].clone()), (4, events[4].clone())]);
    assert_eq!(history.events(&code("bravo"), 0, 100).await.expect("read"), [(1, events[1].clone())]);
    assert!(history.events(&code("charlie"), 0, 100).await.expect("read").is_empty());
    assert_eq!(history.events(&code("alpha"), 1, 1).await.expect("read"), [(3, events[3].clone())]);
    assert_eq!(history.events(&code("alpha"), 4, 10).await.expect("read"), [(4, events[4].clone())]);
}

pub async fn applying_a_record_twice_keeps_one_of_each(storage: impl Storage<dyn LinkHistory>) {
    let history = storage.open().await;
    let batch = records(1, 0, &[created_by("delta", "ann", 0), updated("delta", "https://b.example/")]);
    history.apply(&batch).await.expect("apply");
    history.apply(&batch).await.expect("apply again");
    history.apply(&batch[1..]).await.expect("apply a part again");
    assert_eq!(history.events(&code("delta"), 0, 100).await.expect("read").len(), 2);
    assert_eq!(history.checkpoints(2).await.expect("checkpoints"), [0, 2]);
}

pub async fn undecodable_records_only_move_the_checkpoint(storage: impl Storage<dyn LinkHistory>) {
    let history = storage.open().await;
    let batch = vec![LogRecord { position: Position { partition: 0, offset: 0 }, event: Err("unknown schema".into()) }];
    history.apply(&batch).await.expect("apply");
    assert_eq!(history.checkpoints(1).await.expect("checkpoints"), [1]);
}

pub async fn the_history_survives_a_restart_and_clears(storage: impl Storage<dyn LinkHistory>) {
    {
        let history = storage.open().await;
        history.apply(&records(0, 0, &[created_by("echo", "ann", 0)])).await.expect("apply");
    }
    let history = storage.open().await;
    assert_eq!(history.events(&code("echo"), 0, 10).await.expect("read").len(), 1);
    history.clear().await.expect("clear");
    assert!(history.events(&code("echo"), 0, 10).await.expect("read").is_empty());
    assert_eq!(history.checkpoints(1).await.expect("checkpoints"), [0]);
}

//! What every link directory must do.

use kurz_domain::listing::{ListFilter, ListPosition, Search};
use kurz_domain::{Event, Link, Owner};

use super::Storage;
use super::fixtures::{at, clicked, created_by, deleted, updated};
use crate::listing::{ListQuery, Page, page};
use crate::{LinkDirectory, LogRecord, Position};

fn records(partition: u32, offset: u64, events: &[Event]) -> Vec<LogRecord> {
    (offset..)
        .zip(events)
        .map(|(offset, event)| LogRecord { position: Position { partition, offset }, event: Ok(event.clone()) })
        .collect()
}

fn owner(name: &str) -> Owner {
    Owner::parse(name).expect("valid")
}

fn codes(links: &[Link]) -> Vec<&str> {
    links.iter().map(|link| link.code.as_str()).collect()
}

pub async fn links_list_newest_first_per_owner_and_across_owners(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let events = [
        created_by("alpha", "ann", 10),
        created_by("bravo", "bob", 20),
        created_by("charlie", "ann", 30),
        clicked("alpha", 40, "v"),
        // The same instant as charlie: the code breaks the tie, descending.
        created_by("delta", "ann", 30),
    ];
    directory.apply(&records(0, 0, &events)).await.expect("apply");
    let ann = directory.scan(Some(&owner("ann")), None, 10).await.expect("scan");
    assert_eq!(codes(&ann), ["delta", "charlie", "alpha"]);
    let everyone = directory.scan(None, None, 10).await.expect("scan");
    assert_eq!(codes(&everyone), ["delta", "charlie", "bravo", "alpha"]);
    assert!(directory.scan(Some(&owner("nobody")), None, 10).await.expect("scan").is_empty());
    assert_eq!(ann[0].spec.target.as_str(), "https://example.com/delta");
}

pub async fn scans_go_on_strictly_after_a_position(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let events: Vec<Event> = (0..7).map(|i| created_by(&format!("link{i}"), "ann", i * 100)).collect();
    directory.apply(&records(1, 0, &events)).await.expect("apply");
    let first = directory.scan(Some(&owner("ann")), None, 3).await.expect("scan");
    assert_eq!(codes(&first), ["link6", "link5", "link4"]);
    let after = ListPosition::of(&first[2]);
    let second = directory.scan(Some(&owner("ann")), Some(&after), 3).await.expect("scan");
    assert_eq!(codes(&second), ["link3", "link2", "link1"]);
    let last = directory.scan(None, Some(&ListPosition::of(&second[2])), 3).await.expect("scan");
    assert_eq!(codes(&last), ["link0"]);
}

pub async fn changes_keep_a_links_place_and_deleted_links_stay_listed(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let events = [
        created_by("echo", "ann", 10),
        created_by("foxtrot", "ann", 20),
        updated("echo", "https://moved.example/"),
        deleted("foxtrot"),
    ];
    directory.apply(&records(0, 0, &events)).await.expect("apply");
    let listed = directory.scan(Some(&owner("ann")), None, 10).await.expect("scan");
    assert_eq!(codes(&listed), ["foxtrot", "echo"]);
    assert_eq!(listed[0].deleted_at, Some(at(2000)));
    assert_eq!((listed[1].spec.target.as_str(), listed[1].created_at), ("https://moved.example/", at(10)));
}

pub async fn applying_a_record_twice_changes_nothing(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let batch = records(
        2,
        0,
        &[created_by("golf", "ann", 10), clicked("golf", 11, "v"), updated("golf", "https://b.example/")],
    );
    directory.apply(&batch).await.expect("apply");
    // Redelivered, as after a crash between the write and the consumer's commit.
    directory.apply(&batch).await.expect("apply again");
    directory.apply(&batch[..1]).await.expect("apply a part again");
    let listed = directory.scan(None, None, 10).await.expect("scan");
    assert_eq!(codes(&listed), ["golf"]);
    assert_eq!(listed[0].spec.target.as_str(), "https://b.example/");
    assert_eq!(directory.checkpoints(4).await.expect("checkpoints"), [0, 0, 3, 0]);
}

pub async fn clicks_and_undecodable_records_only_move_the_checkpoint(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let mut batch = records(0, 0, &[clicked("hotel", 1, "v")]);
    batch.push(LogRecord { position: Position { partition: 0, offset: 1 }, event: Err("unknown schema id 99".into()) });
    batch.extend(records(3, 5, &[created_by("hotel", "ann", 1)]));
    directory.apply(&batch).await.expect("apply");
    assert_eq!(directory.checkpoints(4).await.expect("checkpoints"), [2, 0, 0, 6]);
    assert_eq!(codes(&directory.scan(None, None, 10).await.expect("scan")), ["hotel"]);
}

pub async fn the_directory_survives_a_restart_and_clears(storage: impl Storage<dyn LinkDirectory>) {
    {
        let directory = storage.open().await;
        directory.apply(&records(0, 0, &[created_by("india", "ann", 1)])).await.expect("apply");
    }
    let directory = storage.open().await;
    assert_eq!(codes(&directory.scan(Some(&owner("ann")), None, 10).await.expect("scan")), ["india"]);
    assert_eq!(directory.checkpoints(1).await.expect("checkpoints"), [1]);
    directory.clear().await.expect("clear");
    assert!(directory.scan(None, None, 10).await.expect("scan").is_empty());
    assert!(directory.scan(Some(&owner("ann")), None, 10).await.expect("scan").is_empty());
    assert_eq!(directory.checkpoints(1).await.expect("checkpoints"), [0]);
}

/// Pages over a directory visit every kept link once, in order, however the filter thins them.
pub async fn pages_visit_every_matching_link_once(storage: impl Storage<dyn LinkDirectory>) {
    let directory = storage.open().await;
    let events: Vec<Event> = (0..250)
        .map(|i| created_by(&format!("{}{i:03}", if i % 3 == 0 { "sale" } else { "link" }), "ann", i))
        .collect();
    for (partition, chunk) in (0..).zip(events.chunks(100)) {
        directory.apply(&records(partition, 0, chunk)).await.expect("apply");
    }
    let walk = |filter: ListFilter, limit: usize| {
        let directory = directory.clone();
        async move {
            let mut seen = Vec::new();
            let mut after = None;
            for _ in 0..1000 {
                let query = ListQuery { owner: Some(owner("ann")), after, filter: filter.clone(), limit };
                let Page { items, next } = page(&*directory, &query, at(0)).await.expect("page");
                assert!(items.len() <= limit);
                seen.extend(items.into_iter().map(|link| link.code.as_str().to_owned()));
                match next {
                    Some(next) => after = Some(next),
                    None => return seen,
                }
            }
            panic!("paging did not end");
        }
    };
    let every: Vec<String> =
        (0..250).rev().map(|i| format!("{}{i:03}", if i % 3 == 0 { "sale" } else { "link" })).collect();
    assert_eq!(walk(ListFilter::default(), 7).await, every);
    let sales: Vec<String> = every.iter().filter(|c| c.starts_with("sale")).cloned().collect();
    let search = ListFilter { search: Some(Search::parse("sale").expect("valid")), ..ListFilter::default() };
    assert_eq!(walk(search, 10).await, sales);
    assert!(walk(ListFilter { tag: Some("none".into()), ..ListFilter::default() }, 10).await.is_empty());
    let first = page(
        &*directory,
        &ListQuery { owner: Some(owner("ann")), after: None, filter: ListFilter::default(), limit: 250 },
        at(0),
    )
    .await
    .expect("page");
    assert_eq!((first.items.len(), first.next), (250, None), "a page that holds the rest says there is no more");
}

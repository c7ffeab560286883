//! A log written by an earlier build, one record per row and every claim in the claims table, opens
//! with every record where it was and every code still claimed.

use kurz_embedded::{EmbeddedLog, LogOptions};
use kurz_ports::conformance::fixtures::{clicked, code, created};
use kurz_ports::{CodeRegistry, EventLog, partition_for};
use kurz_schemas::{Catalog, Codec};
use redb::{Database, ReadableDatabase, TableDefinition, TableHandle};

const RECORD_PER_ROW: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CLAIMS: TableDefinition<&str, ()> = TableDefinition::new("claimed_codes");
const PARTITIONS: u32 = 4;

#[tokio::test]
async fn a_log_of_one_record_per_row_is_moved_into_shared_rows_on_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    let mut events = vec![created("kilo"), created("lima")];
    // More records than the move holds between writes (16,384).
    events.extend((0..20_000).map(|i| clicked(if i % 3 == 0 { "lima" } else { "kilo" }, i, &format!("visitor-{i}"))));
    {
        let codec = Codec::local(Catalog::shipped());
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(RECORD_PER_ROW).expect("table");
            let mut next = [0_u64; PARTITIONS as usize];
            for event in &events {
                let partition = partition_for(event.code(), PARTITIONS);
                let record = codec.encode(event).expect("encodes");
                table.insert((partition, next[partition as usize]), record.as_slice()).expect("insert");
                next[partition as usize] += 1;
            }
            txn.open_table(META).expect("meta").insert("partitions", u64::from(PARTITIONS)).expect("insert");
            let mut claims = txn.open_table(CLAIMS).expect("claims");
            for claimed in ["kilo", "lima"] {
                claims.insert(claimed, ()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    let log = EmbeddedLog::open(&path, LogOptions { partitions: PARTITIONS }).expect("opens");
    let mut lengths = Vec::new();
    for partition in 0..PARTITIONS {
        let records = log.read(partition, 0, usize::MAX).await.expect("read");
        for (offset, record) in (0..).zip(&records) {
            assert_eq!(record.position.offset, offset, "partition {partition} reads back without gaps");
        }
        let read: Vec<_> = records.into_iter().map(|record| record.event.expect("decodes")).collect();
        let written: Vec<_> =
            events.iter().filter(|event| partition_for(event.code(), PARTITIONS) == partition).cloned().collect();
        assert!(read == written, "partition {partition}: every record moved, in order");
        lengths.push(read.len() as u64);
    }
    for claimed in ["kilo", "lima"] {
        assert!(!log.claim(&code(claimed)).await.expect("claim"), "{claimed} is still claimed");
    }
    assert!(log.claim(&code("mike")).await.expect("claim"));
    let appended = log.append(&[clicked("kilo", 10_000, "after")]).await.expect("append");
    assert_eq!(appended[0].offset, lengths[appended[0].partition as usize], "offsets go on where the old rows ended");
    drop(log);

    let db = Database::open(&path).expect("reopen");
    let tables: Vec<String> =
        db.begin_read().expect("read").list_tables().expect("tables").map(|t| t.name().to_owned()).collect();
    assert!(!tables.iter().any(|name| name == RECORD_PER_ROW.name()), "the old table is gone: {tables:?}");
}

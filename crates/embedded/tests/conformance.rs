//! The embedded adapters pass every port's conformance suite.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_embedded::{EmbeddedLog, EmbeddedStore, LogOptions};
use kurz_ports::conformance::Storage;
use kurz_ports::{ClickQuota, CodeRegistry, EventLog, ReadStore};

/// A fresh directory per test; `open` reopens the same files, as a restarted process would.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> Arc<EmbeddedLog> {
        Arc::new(EmbeddedLog::open(&self.path("events.redb"), LogOptions { partitions: 4 }).expect("log opens"))
    }

    fn store(&self) -> Arc<EmbeddedStore> {
        Arc::new(EmbeddedStore::open(&self.path("store.redb")).expect("store opens"))
    }
}

#[async_trait]
impl Storage<dyn EventLog> for Files {
    async fn open(&self) -> Arc<dyn EventLog> {
        self.log()
    }
}

#[async_trait]
impl Storage<dyn CodeRegistry> for Files {
    async fn open(&self) -> Arc<dyn CodeRegistry> {
        self.log()
    }
}

#[async_trait]
impl Storage<dyn ReadStore> for Files {
    async fn open(&self) -> Arc<dyn ReadStore> {
        self.store()
    }
}

#[async_trait]
impl Storage<dyn ClickQuota> for Files {
    async fn open(&self) -> Arc<dyn ClickQuota> {
        self.log()
    }
}

mod event_log {
    kurz_ports::event_log_conformance!(super::Files::new());
}

mod code_registry {
    kurz_ports::code_registry_conformance!(super::Files::new());
}

mod read_store {
    kurz_ports::read_store_conformance!(super::Files::new());
}

mod click_quota {
    kurz_ports::click_quota_conformance!(super::Files::new());
}

#[test]
fn a_log_cannot_change_its_partition_count() {
    let files = Files::new();
    drop(files.log());
    let error = EmbeddedLog::open(&files.path("events.redb"), LogOptions { partitions: 3 }).expect_err("refused");
    assert!(error.to_string().contains("partition count"), "{error}");
}

#[test]
fn a_file_is_opened_by_one_process_at_a_time() {
    let files = Files::new();
    let _open = files.store();
    assert!(EmbeddedStore::open(&files.path("store.redb")).is_err());
}

#[tokio::test]
async fn a_store_of_another_layout_is_dropped_for_a_rebuild() {
    use kurz_ports::{LogRecord, Position};
    let files = Files::new();
    {
        let store = files.store();
        let record = LogRecord {
            position: Position { partition: 0, offset: 0 },
            event: Ok(kurz_ports::conformance::fixtures::created("layout")),
        };
        store.apply(vec![record]).await.expect("apply");
    }
    {
        let db = redb::Database::create(files.path("store.redb")).expect("open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .expect("meta")
            .insert("format", 1)
            .expect("mark");
        txn.commit().expect("commit");
    }
    let store = files.store();
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![0], "rebuild starts from offset 0");
    let code = kurz_domain::Code::parse("layout").expect("valid");
    assert!(store.link(&code).await.expect("read").is_none());
}

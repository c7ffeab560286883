//! The embedded adapters pass every port's conformance suite.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use kurz_embedded::{
    EmbeddedDirectory, EmbeddedHistory, EmbeddedIdempotency, EmbeddedKeyStore, EmbeddedLog, EmbeddedOrphanVisits,
    EmbeddedStore, LogOptions,
};
use kurz_ports::conformance::Storage;
use kurz_ports::conformance::creation_log::Creations;
use kurz_ports::{
    ApiKeyStore, ClaimThenAppend, ClickQuota, CodeRegistry, EventLog, IdempotencyStore, LinkDirectory, LinkHistory,
    OrphanVisitStore, ReadStore,
};

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
impl Storage<dyn ApiKeyStore> for Files {
    async fn open(&self) -> Arc<dyn ApiKeyStore> {
        Arc::new(EmbeddedKeyStore::open(&self.path("keys.redb")).expect("key store opens"))
    }
}

#[async_trait]
impl Storage<dyn IdempotencyStore> for Files {
    async fn open(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(EmbeddedIdempotency::open(&self.path("idempotency.redb")).expect("idempotency store opens"))
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
impl Storage<Creations> for Files {
    async fn open(&self) -> Arc<Creations> {
        let log = self.log();
        Arc::new(Creations { creations: log.clone(), log: log.clone(), registry: log })
    }
}

/// The generic claim-then-append creation over the embedded registry and log, which the
/// distributed services use over Redis (or ScyllaDB) and Kafka.
struct SeparateSteps(Files);

#[async_trait]
impl Storage<Creations> for SeparateSteps {
    async fn open(&self) -> Arc<Creations> {
        let log = self.0.log();
        let creations = Arc::new(ClaimThenAppend { registry: log.clone(), log: log.clone() });
        Arc::new(Creations { creations, log: log.clone(), registry: log })
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

#[async_trait]
impl Storage<dyn LinkDirectory> for Files {
    async fn open(&self) -> Arc<dyn LinkDirectory> {
        Arc::new(EmbeddedDirectory::open(&self.path("directory.redb")).expect("directory opens"))
    }
}

#[async_trait]
impl Storage<dyn LinkHistory> for Files {
    async fn open(&self) -> Arc<dyn LinkHistory> {
        Arc::new(EmbeddedHistory::open(&self.path("history.redb")).expect("history opens"))
    }
}

mod link_directory {
    kurz_ports::link_directory_conformance!(super::Files::new());
}

mod link_history {
    kurz_ports::link_history_conformance!(super::Files::new());
}

mod event_log {
    kurz_ports::event_log_conformance!(super::Files::new());
}

mod code_registry {
    kurz_ports::code_registry_conformance!(super::Files::new());
}

mod creation_log {
    kurz_ports::creation_log_conformance!(super::Files::new());
}

mod claim_then_append {
    kurz_ports::creation_log_conformance!(super::SeparateSteps(super::Files::new()));
}

mod read_store {
    kurz_ports::read_store_conformance!(super::Files::new());
}

mod click_quota {
    kurz_ports::click_quota_conformance!(super::Files::new());
}

mod idempotency {
    kurz_ports::idempotency_store_conformance!(super::Files::new());
}

mod orphan_visits {
    kurz_ports::orphan_visit_store_conformance!(super::Files::new());
}

#[async_trait]
impl Storage<dyn OrphanVisitStore> for Files {
    async fn open(&self) -> Arc<dyn OrphanVisitStore> {
        Arc::new(EmbeddedOrphanVisits::open(&self.path("orphans.redb")).expect("orphan-visit store opens"))
    }
}

mod api_keys {
    kurz_ports::api_key_store_conformance!(super::Files::new());
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
    use redb::TableDefinition;
    let files = Files::new();
    {
        // The third layout: codes keyed as `&str`.
        let db = redb::Database::create(files.path("store.redb")).expect("open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(TableDefinition::<&str, &[u8]>::new("links"))
            .expect("links")
            .insert("layout", [1u8].as_slice())
            .expect("row");
        txn.open_table(TableDefinition::<(&str, i32), &[u8]>::new("click_days")).expect("days");
        txn.open_table(TableDefinition::<u32, u64>::new("checkpoints"))
            .expect("checkpoints")
            .insert(0, 7)
            .expect("mark");
        txn.open_table(TableDefinition::<&str, u64>::new("meta")).expect("meta").insert("format", 3).expect("mark");
        txn.commit().expect("commit");
    }
    let store = files.store();
    assert_eq!(store.checkpoints(1).await.expect("checkpoints"), vec![0], "rebuild starts from offset 0");
    let code = kurz_domain::Code::parse("layout").expect("valid");
    assert!(store.link(&code).await.expect("read").is_none());
    let record = kurz_ports::LogRecord {
        position: kurz_ports::Position { partition: 0, offset: 0 },
        event: Ok(kurz_ports::conformance::fixtures::created("layout")),
    };
    store.apply(vec![record]).await.expect("the rebuilt store takes writes");
    assert!(store.link(&code).await.expect("read").is_some());
}

//! The read-store, code-registry, link-directory and link-history conformance suites against ScyllaDB (or Cassandra), when one is configured:
//! `KURZ_TEST_SCYLLA_NODES=127.0.0.1:9042`. None can be installed where Kurz is built and tested,
//! so without it every test here says by name that it is skipped (CI included).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use kurz_ports::conformance::Storage;
use kurz_ports::{CodeRegistry, LinkDirectory, LinkHistory, ReadStore};
use kurz_scylla::{ScyllaConfig, ScyllaReadStore};

fn scylla_or_skip() -> Option<Vec<String>> {
    match std::env::var("KURZ_TEST_SCYLLA_NODES") {
        Ok(nodes) if !nodes.is_empty() => Some(nodes.split(',').map(str::to_owned).collect()),
        _ => {
            let hint = "set KURZ_TEST_SCYLLA_NODES=host:9042 to run it; none can be installed here";
            kurz_ports::conformance::skip("no ScyllaDB configured", hint, true);
            None
        }
    }
}

/// A keyspace of the test's own; `open` connects again, as a restarted process would.
struct FreshKeyspace {
    config: ScyllaConfig,
}

impl FreshKeyspace {
    fn new(nodes: Vec<String>) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let keyspace = format!("kurz_test_{}_{nanos}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}".to_owned();
        Self { config: ScyllaConfig { nodes, keyspace, replication, ..ScyllaConfig::default() } }
    }
}

#[async_trait]
impl Storage<dyn ReadStore> for FreshKeyspace {
    async fn open(&self) -> Arc<dyn ReadStore> {
        Arc::new(ScyllaReadStore::connect(&self.config).await.expect("connects to the test cluster"))
    }
}

#[async_trait]
impl Storage<dyn CodeRegistry> for FreshKeyspace {
    async fn open(&self) -> Arc<dyn CodeRegistry> {
        let store = ScyllaReadStore::connect(&self.config).await.expect("connects to the test cluster");
        Arc::new(store.code_registry().await.expect("prepares"))
    }
}

#[async_trait]
impl Storage<dyn LinkDirectory> for FreshKeyspace {
    async fn open(&self) -> Arc<dyn LinkDirectory> {
        let store = ScyllaReadStore::connect(&self.config).await.expect("connects to the test cluster");
        Arc::new(store.directory().await.expect("prepares"))
    }
}

#[async_trait]
impl Storage<dyn LinkHistory> for FreshKeyspace {
    async fn open(&self) -> Arc<dyn LinkHistory> {
        let store = ScyllaReadStore::connect(&self.config).await.expect("connects to the test cluster");
        Arc::new(store.history().await.expect("prepares"))
    }
}

macro_rules! fresh_keyspace {
    () => {
        match scylla_or_skip() {
            Some(nodes) => FreshKeyspace::new(nodes),
            None => return,
        }
    };
}

kurz_ports::read_store_conformance!(fresh_keyspace!());
kurz_ports::code_registry_conformance!(fresh_keyspace!());

mod link_directory {
    use super::*;
    kurz_ports::link_directory_conformance!(fresh_keyspace!());
}

mod link_history {
    use super::*;
    kurz_ports::link_history_conformance!(fresh_keyspace!());
}

/// A keyspace a build of another layout wrote is stale until cleared (the projector then folds it
/// again from the log); a new keyspace is marked with this build's layout at once.
#[tokio::test]
async fn a_store_of_another_layout_is_stale_until_cleared() {
    let keyspace = fresh_keyspace!();
    let store = ScyllaReadStore::connect(&keyspace.config).await.expect("connects to the test cluster");
    assert_eq!(store.stale_layout().await.expect("layout"), None, "a new store is of this layout");
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&keyspace.config.nodes)
        .build()
        .await
        .expect("connects");
    let mark = format!("UPDATE {}.read_layout SET version = 99 WHERE name = 'read_store'", keyspace.config.keyspace);
    session.query_unpaged(mark, ()).await.expect("marks another layout");
    assert_eq!(store.stale_layout().await.expect("layout"), Some(99));
    store.clear().await.expect("clears");
    assert_eq!(store.stale_layout().await.expect("layout"), None, "a cleared store is of this layout");
}

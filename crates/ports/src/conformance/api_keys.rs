//! What every API key store must do.

use std::sync::Arc;

use kurz_domain::{KeyId, Owner, Role, Timestamp};

use super::Storage;
use crate::{ApiKeyStore, StoredKey};

fn key(id: &str, owner: &str, role: Role) -> StoredKey {
    StoredKey {
        id: KeyId::parse(id).expect("valid"),
        owner: Owner::parse(owner).expect("valid"),
        role,
        digest: [id.len().to_le_bytes()[0]; 32],
        created_at: Timestamp::from_millis(1_000),
        revoked_at: None,
    }
}

pub async fn keys_are_stored_and_read_back(storage: impl Storage<dyn ApiKeyStore>) {
    let keys = storage.open().await;
    let alice = key("a1", "alice", Role::User);
    assert!(keys.insert(&alice).await.expect("insert"));
    assert!(keys.insert(&key("b2", "bob", Role::Ingest)).await.expect("insert"));
    assert_eq!(keys.get(&alice.id).await.expect("get"), Some(alice.clone()));
    assert_eq!(keys.get(&KeyId::parse("zz").expect("valid")).await.expect("get"), None);
    let ids: Vec<String> = keys.list().await.expect("list").into_iter().map(|k| k.id.to_string()).collect();
    assert_eq!(ids, ["a1", "b2"]);
}

pub async fn a_key_id_is_taken_once(storage: impl Storage<dyn ApiKeyStore>) {
    let keys = storage.open().await;
    let racing: Vec<_> = (0..20)
        .map(|i| {
            let keys = Arc::clone(&keys);
            tokio::spawn(async move {
                let mut candidate = key("c3", "carol", Role::User);
                candidate.digest = [i; 32];
                keys.insert(&candidate).await.expect("insert")
            })
        })
        .collect();
    let mut winners = 0;
    for insert in racing {
        winners += usize::from(insert.await.expect("task"));
    }
    assert_eq!(winners, 1);
}

pub async fn revocation_keeps_its_first_time(storage: impl Storage<dyn ApiKeyStore>) {
    let keys = storage.open().await;
    let dave = key("d4", "dave", Role::Admin);
    keys.insert(&dave).await.expect("insert");
    let revoked = keys.revoke(&dave.id, Timestamp::from_millis(5_000)).await.expect("revoke").expect("known");
    assert_eq!(revoked.revoked_at, Some(Timestamp::from_millis(5_000)));
    let again = keys.revoke(&dave.id, Timestamp::from_millis(9_000)).await.expect("revoke").expect("known");
    assert_eq!(again.revoked_at, Some(Timestamp::from_millis(5_000)));
    assert_eq!(keys.get(&dave.id).await.expect("get").and_then(|k| k.revoked_at), Some(Timestamp::from_millis(5_000)));
    assert_eq!(
        keys.revoke(&KeyId::parse("nobody").expect("valid"), Timestamp::from_millis(1)).await.expect("revoke"),
        None
    );
}

pub async fn keys_survive_a_restart(storage: impl Storage<dyn ApiKeyStore>) {
    let erin = key("e5", "erin", Role::User);
    {
        let keys = storage.open().await;
        keys.insert(&erin).await.expect("insert");
        keys.revoke(&erin.id, Timestamp::from_millis(7_000)).await.expect("revoke");
    }
    let keys = storage.open().await;
    let read = keys.get(&erin.id).await.expect("get").expect("kept");
    assert_eq!((read.owner, read.revoked_at), (erin.owner, Some(Timestamp::from_millis(7_000))));
}

//! The shared link cache: hot links are cached again when they change, cold ones are not, and a
//! code's "no such link" entry gives way to its creation.

use std::sync::Arc;

use kurz_domain::{Event, Link};
use kurz_ports::conformance::fixtures::{code, created, updated};
use kurz_ports::{LogRecord, Position, ReadStore};
use kurz_redis::testing::redis_or_skip;
use kurz_redis::{CachedReadStore, LinkCacheOptions, RedisConnection, RedisReadStore};

fn records(offset: u64, events: &[Event]) -> Vec<LogRecord> {
    (offset..)
        .zip(events)
        .map(|(offset, e)| LogRecord { position: Position { partition: 0, offset }, event: Ok(e.clone()) })
        .collect()
}

fn cached(url: &str, prefix: &str, text: &str) -> Option<Vec<u8>> {
    let mut connection = redis::Client::open(url).expect("url").get_connection().expect("connects");
    redis::cmd("GET").arg(format!("{prefix}cache:link:{text}")).query(&mut connection).expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_links_are_cached_again_when_they_change_and_cold_ones_are_not() {
    let Some(redis) = redis_or_skip() else { return };
    let (url, prefix) = (redis.config.url.clone(), redis.config.key_prefix.clone());
    let connection = RedisConnection::connect(&redis.config).await.expect("connects");
    let store = CachedReadStore::new(
        connection.clone(),
        Arc::new(RedisReadStore::new(connection)),
        LinkCacheOptions::default(),
    );

    store.apply_link_events(records(0, &[created("hot"), created("cold")])).await.expect("apply");
    assert!(store.link(&code("hot")).await.expect("read").is_some());
    assert!(cached(&url, &prefix, "hot").is_some(), "a read fills the cache");
    assert!(store.link(&code("ghost")).await.expect("read").is_none());
    assert_eq!(cached(&url, &prefix, "ghost"), Some(Vec::new()), "unknown codes are cached as empty");

    let changes =
        [updated("hot", "https://moved.example/"), updated("cold", "https://moved.example/"), created("ghost")];
    store.apply_link_events(records(2, &changes)).await.expect("apply");

    let hot: Link =
        kurz_ports::rows::decode_link(&cached(&url, &prefix, "hot").expect("hot link cached again")).expect("decodes");
    assert_eq!(hot.spec.target.as_str(), "https://moved.example/");
    assert!(cached(&url, &prefix, "cold").is_none(), "cold links are not pushed into the cache");
    let ghost: Link =
        kurz_ports::rows::decode_link(&cached(&url, &prefix, "ghost").expect("created over its empty entry"))
            .expect("decodes");
    assert_eq!(ghost.spec.target.as_str(), "https://example.com/ghost");
}

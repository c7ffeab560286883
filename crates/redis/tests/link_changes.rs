//! Link changes over pub/sub: announced codes reach the subscribers, and changes that come faster
//! than the bounded queue takes them make every subscriber forget everything instead of piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kurz_domain::Code;
use kurz_ports::LinkChangeListener;
use kurz_redis::testing::redis_or_skip;
use kurz_redis::{LinkChangePublisher, RedisConnection, follow_link_changes};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
struct Heard(Mutex<Vec<String>>);

impl LinkChangeListener for Heard {
    fn links_changed(&self, codes: &[Code]) {
        self.0.lock().expect("lock").extend(codes.iter().map(ToString::to_string));
    }
}

async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_announced_and_a_flood_becomes_one_forget_all() {
    let Some(redis) = redis_or_skip() else { return };
    let heard = Arc::new(Heard::default());
    let resyncs = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let follower = tokio::spawn(follow_link_changes(
        redis.config.clone(),
        heard.clone(),
        {
            let resyncs = resyncs.clone();
            move || {
                resyncs.fetch_add(1, Ordering::SeqCst);
            }
        },
        stop.clone(),
    ));
    until("the subscription", || resyncs.load(Ordering::SeqCst) == 1).await;

    let connection = RedisConnection::connect(&redis.config).await.expect("connects");
    let publisher = LinkChangePublisher::with_capacity(connection, 1);
    let code = |text: &str| Code::parse(text).expect("valid");
    publisher.links_changed(&[code("first")]);
    until("the announced code", || heard.0.lock().expect("lock").contains(&"first".to_owned())).await;

    // Far more than a queue of one holds, without yielding to the publishing task.
    for i in 0..10_000 {
        publisher.links_changed(&[code(&format!("flood{i}"))]);
    }
    until("the forget-all", || resyncs.load(Ordering::SeqCst) >= 2).await;
    assert!(heard.0.lock().expect("lock").len() < 10_000, "the flood was not queued change by change");

    stop.cancel();
    follower.await.expect("follower stops");
}

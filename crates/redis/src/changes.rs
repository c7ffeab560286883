//! Link changes announced to every query-api instance over Redis pub/sub, so their in-process
//! caches drop changed links within milliseconds.
//!
//! Pub/sub delivers to whoever is subscribed at the moment: a subscriber that was disconnected may
//! have missed announcements, so after every (re)subscription it is told to forget everything. The
//! publisher's queue is bounded: when changes come faster than Redis takes them, the ones that do
//! not fit are not queued but replaced by one [`FORGET_ALL`], so memory stays bounded and no cache
//! keeps a changed link.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use kurz_domain::Code;
use kurz_ports::LinkChangeListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::RedisConfig;
use crate::connection::RedisConnection;

fn channel(prefix: &str) -> String {
    format!("{prefix}link-changes")
}

/// The message that tells subscribers to forget every cached link (no code is `*`).
pub const FORGET_ALL: &str = "*";

/// Changes waiting to be published; a batch of changes is one entry.
const QUEUE_CAPACITY: usize = 4096;

/// Announces changed links. Told synchronously (it is a [`LinkChangeListener`]); a task publishes,
/// several changes in one message when they come together.
#[derive(Debug, Clone)]
pub struct LinkChangePublisher {
    queue: mpsc::Sender<Vec<Code>>,
    /// Changes were shed since the last message: the next one is [`FORGET_ALL`].
    overflowed: Arc<AtomicBool>,
}

impl LinkChangePublisher {
    pub fn start(redis: RedisConnection) -> Self {
        Self::with_capacity(redis, QUEUE_CAPACITY)
    }

    #[doc(hidden)]
    pub fn with_capacity(redis: RedisConnection, capacity: usize) -> Self {
        let (queue, mut receiver) = mpsc::channel::<Vec<Code>>(capacity.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        let channel = channel(redis.prefix());
        let shed = Arc::clone(&overflowed);
        tokio::spawn(async move {
            let mut pending: Vec<Vec<Code>> = Vec::new();
            while receiver.recv_many(&mut pending, 256).await > 0 {
                let message = if shed.swap(false, Ordering::SeqCst) {
                    // It covers the queued changes too.
                    pending.clear();
                    FORGET_ALL.to_owned()
                } else {
                    pending.drain(..).flatten().map(|code| code.to_string()).collect::<Vec<_>>().join(" ")
                };
                if message.is_empty() {
                    continue;
                }
                let published: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(&channel).arg(&message).query_async(&mut redis.manager()).await;
                if let Err(error) = published {
                    metrics::counter!("link_change_publish_failures_total").increment(1);
                    tracing::warn!(%error, "cannot announce link changes; caches elsewhere keep them until evicted");
                }
            }
        });
        Self { queue, overflowed }
    }
}

impl LinkChangeListener for LinkChangePublisher {
    fn links_changed(&self, codes: &[Code]) {
        if codes.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(codes.to_vec()) {
            metrics::counter!("link_changes_shed_total").increment(codes.len() as u64);
            if !self.overflowed.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    "link changes come faster than Redis takes them; every cache will be told to forget all"
                );
            }
            // Wakes the task should it have emptied the queue since: it must see the flag now, not
            // at the next change.
            let _ = self.queue.try_send(Vec::new());
        }
    }
}

/// Subscribes until `stop`, handing announced codes to `listener` and calling `resync` after every
/// (re)subscription. Reconnects with backoff while Redis is away.
pub async fn follow_link_changes(
    config: RedisConfig,
    listener: Arc<dyn LinkChangeListener>,
    resync: impl Fn() + Send + 'static,
    stop: CancellationToken,
) {
    let channel = channel(&config.key_prefix);
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let subscribed = async {
            let client = redis::Client::open(config.url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match subscribed.await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "cannot subscribe to link changes");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        resync();
        tracing::info!(%channel, "following link changes");
        let mut messages = pubsub.on_message();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    if text == FORGET_ALL {
                        resync();
                        continue;
                    }
                    let codes: Vec<Code> = text.split(' ').filter_map(|code| Code::parse(code).ok()).collect();
                    listener.links_changed(&codes);
                }
            }
        }
        tracing::warn!("link change subscription lost; resubscribing");
    }
}

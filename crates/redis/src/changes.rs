//! Link changes announced to every query-api instance over Redis pub/sub, so their in-process
//! caches drop changed links within milliseconds.
//!
//! Pub/sub delivers to whoever is subscribed at the moment: a subscriber that was disconnected may
//! have missed announcements, so after every (re)subscription it is told to forget everything.

use std::sync::Arc;
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

/// Announces changed links. Told synchronously (it is a [`LinkChangeListener`]); a task publishes,
/// several changes in one message when they come together.
#[derive(Debug, Clone)]
pub struct LinkChangePublisher {
    queue: mpsc::UnboundedSender<Vec<Code>>,
}

impl LinkChangePublisher {
    pub fn start(redis: RedisConnection) -> Self {
        let (queue, mut receiver) = mpsc::unbounded_channel::<Vec<Code>>();
        let channel = channel(redis.prefix());
        tokio::spawn(async move {
            let mut pending: Vec<Vec<Code>> = Vec::new();
            while receiver.recv_many(&mut pending, 256).await > 0 {
                let message = pending.drain(..).flatten().map(|code| code.to_string()).collect::<Vec<_>>().join(" ");
                let published: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(&channel).arg(&message).query_async(&mut redis.manager()).await;
                if let Err(error) = published {
                    metrics::counter!("link_change_publish_failures_total").increment(1);
                    tracing::warn!(%error, "cannot announce link changes; caches elsewhere keep them until evicted");
                }
            }
        });
        Self { queue }
    }
}

impl LinkChangeListener for LinkChangePublisher {
    fn links_changed(&self, codes: &[Code]) {
        if !codes.is_empty() {
            let _ = self.queue.send(codes.to_vec());
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
                    let codes: Vec<Code> = text.split(' ').filter_map(|code| Code::parse(code).ok()).collect();
                    listener.links_changed(&codes);
                }
            }
        }
        tracing::warn!("link change subscription lost; resubscribing");
    }
}

//! The HTTP edge every service shares: HTTP/1.1 with a header-read timeout (slowloris), a request
//! timeout, a cap on connections and on header size, and a shutdown deadline, so slow or silent
//! clients can neither hold resources nor hold a SIGTERM open.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::HttpConfig;

/// Serves `router` on `listener` until `stop`, then lets in-flight requests finish for at most
/// `shutdown_timeout_ms` before closing what is left.
///
/// Slow and idle clients are cut off by a watchdog per connection rather than by timers per
/// request: a connection with no request in flight for `header_read_timeout_ms` (a header that
/// never completes, or an idle keep-alive) is closed. The requests themselves only bump two
/// counters, which keeps timers and clock reads off the redirect path (a timer per request cost
/// ~700 instructions, 4% of a redirect). The watchdog counts the ticks it saw nothing happen, not
/// the time between two clock readings: a process starved of CPU for a while (a loaded machine)
/// must not take its stall for its clients' idleness and drop connections whose requests it has
/// not read yet.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("listener address")?;
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true).max_buf_size(config.max_header_bytes.max(8192)).max_headers(100);
    let idle_limit = Duration::from_millis(config.header_read_timeout_ms.max(1));
    let tick = (idle_limit / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let idle_ticks_allowed = u32::try_from(idle_limit.as_millis().div_ceil(tick.as_millis())).unwrap_or(u32::MAX);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.context("connection slots")?,
        };
        let (stream, remote) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted: wait a
                    // moment rather than spin.
                    tracing::warn!(%error, %address, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let service = Respond { router: router.clone(), remote, activity: Arc::clone(&activity) };
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let mut watchdog = tokio::time::interval(tick);
            watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut draining = false;
            let (mut seen, mut idle_ticks) = (activity.changes(), 0_u32);
            let ended = loop {
                tokio::select! {
                    biased;
                    ended = connection.as_mut() => break ended,
                    () = stop.cancelled(), if !draining => {
                        // Finish the request under way, answer it with `Connection: close`, then end.
                        connection.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    _ = watchdog.tick() => {
                        let changes = activity.changes();
                        if activity.busy() || changes != seen {
                            (seen, idle_ticks) = (changes, 0);
                        } else {
                            idle_ticks += 1;
                            if idle_ticks > idle_ticks_allowed {
                                tracing::debug!(%remote, "closing a connection with no request under way");
                                break Ok(());
                            }
                        }
                    }
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    if tokio::time::timeout(deadline, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(%address, open = connections.len(), "shutdown deadline passed; closing the remaining connections");
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Requests in flight on one connection, and how often that number changed.
#[derive(Default)]
struct Activity {
    in_flight: AtomicU32,
    changes: AtomicU64,
}

impl Activity {
    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.bump();
    }

    fn ended(&self) {
        self.bump();
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A plain load and store, not a locked add: an HTTP/1 connection serves its requests one
    /// after another, so only one of them writes at a time, and the watchdog only reads.
    fn bump(&self) {
        self.changes.store(self.changes.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// Answers one connection's requests through the router, telling it the peer's address and the
/// connection's watchdog what is under way.
#[derive(Clone)]
struct Respond {
    router: Router,
    remote: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Respond {
    type Response = Response;
    type Error = Infallible;
    type Future = UnderWay;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        self.activity.started();
        UnderWay { answer: self.router.clone().oneshot(request.map(Body::new)), activity: Arc::clone(&self.activity) }
    }
}

/// A request being answered; counted in flight until answered or dropped.
struct UnderWay {
    answer: tower::util::Oneshot<Router, Request<Body>>,
    activity: Arc<Activity>,
}

impl Future for UnderWay {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.answer).poll(cx)
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.activity.ended();
    }
}

/// What a service serves with: its listeners and routers, the edge's settings, and what needs
/// upkeep while it serves (rate limits; the target rules, whose blocklist is watched, with what to
/// tell when it changes).
pub struct Serving {
    pub listeners: crate::config::Listeners,
    pub routers: crate::ops::ServiceRouters,
    pub http: HttpConfig,
    pub limits: Option<Arc<crate::limits::Limits>>,
    pub targets: Option<(Arc<crate::targets::TargetRules>, Vec<crate::targets::OnChange>)>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").field("listeners", &self.listeners).finish_non_exhaustive()
    }
}

impl Serving {
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.listeners.admin_addr()
    }

    /// Serves until `stop`, keeping limits and the blocklist up to date meanwhile.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self { listeners, routers, http, limits, targets } = self;
        if let Some(limits) = &limits {
            limits.start_upkeep(stop.clone());
        }
        if let Some((targets, on_change)) = targets {
            targets.watch(on_change, stop.clone());
        }
        serve_all(listeners, routers, &http, stop).await
    }
}

/// Serves the main router and, when there is one, the admin router on its own listener.
pub async fn serve_all(
    listeners: crate::config::Listeners,
    routers: crate::ops::ServiceRouters,
    config: &HttpConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    match (listeners.admin, routers.admin) {
        (Some(admin_listener), Some(admin)) => {
            let main = serve(listeners.main, routers.main, config, stop.clone());
            let admin = serve(admin_listener, admin, config, stop);
            tokio::try_join!(main, admin).map(drop)
        }
        _ => serve(listeners.main, routers.main, config, stop).await,
    }
}

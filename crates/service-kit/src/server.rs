//! The HTTP edge every service shares: HTTP/1.1 with a header-read timeout (slowloris), a request
//! timeout, a cap on connections and on header size, and a shutdown deadline, so slow or silent
//! clients can neither hold resources nor hold a SIGTERM open.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::Problem;
use crate::config::HttpConfig;

/// Serves `router` on `listener` until `stop`, then lets in-flight requests finish for at most
/// `shutdown_timeout_ms` before closing what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("listener address")?;
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms.max(1)))
        .keep_alive(true)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(100);
    let request_timeout = Duration::from_millis(config.request_timeout_ms.max(1));
    let graceful = GracefulShutdown::new();
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
        let service = Respond { router: router.clone(), remote, timeout: request_timeout };
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    if tokio::time::timeout(deadline, graceful.shutdown()).await.is_err() {
        tracing::warn!(%address, open = connections.len(), "shutdown deadline passed; closing the remaining connections");
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers one connection's requests through the router, each within `timeout`. A named future
/// type rather than a boxed one: nothing is allocated per request for it.
#[derive(Clone)]
struct Respond {
    router: Router,
    remote: SocketAddr,
    timeout: Duration,
}

type Answer = Result<Result<Response, Infallible>, tokio::time::error::Elapsed>;

impl hyper::service::Service<Request<Incoming>> for Respond {
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Map<
        tokio::time::Timeout<tower::util::Oneshot<Router, Request<Body>>>,
        fn(Answer) -> Result<Response, Infallible>,
    >;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let call = self.router.clone().oneshot(request.map(Body::new));
        tokio::time::timeout(self.timeout, call).map(answer_or_timeout as fn(Answer) -> Result<Response, Infallible>)
    }
}

fn answer_or_timeout(answer: Answer) -> Result<Response, Infallible> {
    answer.unwrap_or_else(|_| {
        Ok(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "The request took too long",
            "no answer within the request timeout (http.request_timeout_ms); retry",
        )
        .into_response())
    })
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

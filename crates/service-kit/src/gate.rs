//! What every `/v1/…` request passes before its handler: the global and per-address limits, a
//! valid API key, and the per-key limit on writes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kurz_domain::Actor;

use crate::Problem;
use crate::auth::{KeyRefusal, Keys, presented_key, unauthorized};
use crate::limits::Limits;

#[derive(Debug, Clone)]
pub struct ApiGate {
    pub keys: Arc<Keys>,
    pub limits: Arc<Limits>,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
}

impl ApiGate {
    /// Puts `router`'s routes behind the gate.
    pub fn guard(self, router: axum::Router) -> axum::Router {
        router.route_layer(axum::middleware::from_fn_with_state(self, pass))
    }
}

async fn pass(State(gate): State<ApiGate>, mut request: Request, next: Next) -> Response {
    let client = client_address(request.headers(), request.extensions().get(), gate.trust_forwarded_for);
    if let Err(refusal) = gate.limits.global().and_then(|()| gate.limits.key_penalty(|| client)) {
        return refusal.into_response();
    }
    let verified = match presented_key(request.headers()) {
        Some(presented) => gate.keys.verify(presented).await,
        None => Err(KeyRefusal::Missing),
    };
    let actor: Actor = match verified {
        Ok(actor) => actor,
        Err(KeyRefusal::Unavailable(error)) => return Problem::unavailable(&error).into_response(),
        Err(refusal) => {
            if let Err(limited) = gate.limits.failed_key(client) {
                return limited.into_response();
            }
            return match refusal {
                KeyRefusal::Missing => {
                    unauthorized("send an API key as `Authorization: Bearer <key>` (or `X-Api-Key`)")
                }
                other => unauthorized(&other.to_string()),
            };
        }
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD)
        && let Err(refusal) = gate.limits.write(&actor.key_id)
    {
        return refusal.into_response();
    }
    request.extensions_mut().insert(actor);
    next.run(request).await
}

/// The client's address: with `trust_forwarded_for`, the last `X-Forwarded-For` entry — the one
/// the proxy in front of Kurz added; entries before it are whatever the client sent, and taking
/// them would let a client pick the address its limits are counted under — else the peer's.
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get(header::HeaderName::from_static("x-forwarded-for"))
            .and_then(|v| v.to_str().ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|first| first.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_forwarded_for_counts_the_entry_the_proxy_added() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().expect("header"));
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 40000)));
        let proxied = client_address(&headers, Some(&peer), true);
        assert_eq!(proxied, Some("198.51.100.7".parse().expect("address")), "not the client's own claim");
        assert_eq!(client_address(&headers, Some(&peer), false), Some(peer.0.ip()));
        assert_eq!(client_address(&HeaderMap::new(), Some(&peer), true), Some(peer.0.ip()));
    }
}

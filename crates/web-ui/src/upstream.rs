//! The JSON API, called with the signed-in person's key. The UI holds no access of its own: who may
//! see or change what, every limit and every validation rule stay the API's, said once.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

/// The largest API answer the UI reads (a page of 100 links is ~100 KB).
const MAX_ANSWER_BYTES: usize = 4 << 20;
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where API requests go: the API's router, in the same process; in distributed mode, reads go
/// to the query API over HTTP (the command API serving the UI holds no read routes).
#[derive(Debug, Clone)]
pub struct Upstream {
    api: Router,
    reads: Option<RemoteReads>,
}

#[derive(Debug, Clone)]
struct RemoteReads {
    base: String,
    http: reqwest::Client,
}

/// What of the browser's request the API must see: its address (the API's limits count per
/// address) and request id (logs tie the two together).
#[derive(Debug, Clone, Default)]
pub struct Client {
    peer: Option<ConnectInfo<SocketAddr>>,
    forwarded_for: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(),
            forwarded_for: parts.headers.get(FORWARDED_FOR).cloned(),
            request_id: parts.headers.get(REQUEST_ID).cloned(),
        })
    }
}

/// An API answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    body: Bytes,
}

/// An API error (`application/problem+json`), as far as the UI shows it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    /// The request field the problem is about, when one is.
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the API did not answer: {0}")]
    Unreachable(String),
    #[error("the API's answer ({status}) was not understood: {reason}")]
    Unexpected { status: StatusCode, reason: String },
}

impl Upstream {
    /// Everything in-process (the all-in-one): `api` holds the API and the public routes (QR codes).
    pub fn in_process(api: Router) -> Self {
        Self { api, reads: None }
    }

    /// Writes (and key management) in-process, every other `GET` from the query API at `query_api`.
    pub fn split(commands: Router, query_api: &str) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        Ok(Self { api: commands, reads: Some(RemoteReads { base: query_api.trim_end_matches('/').to_owned(), http }) })
    }

    /// Sends one API request as `key`'s holder; `body` goes as JSON.
    pub async fn call(
        &self,
        client: &Client,
        key: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, UpstreamError> {
        let response = self.send(client, key, method, path_and_query, body).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| UpstreamError::Unexpected { status, reason: e.to_string() })?;
        Ok(Answer { status, body })
    }

    /// A `GET` whose answer is passed on as it streams (an export of any size), with its status and
    /// content type only.
    pub async fn stream(&self, client: &Client, key: &str, path_and_query: &str) -> Result<Response, UpstreamError> {
        let response = self.send(client, key, Method::GET, path_and_query, None).await?;
        let (parts, body) = response.into_parts();
        let mut passed = Response::new(body);
        *passed.status_mut() = parts.status;
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            passed.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
        }
        Ok(passed)
    }

    async fn send(
        &self,
        client: &Client,
        key: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, UpstreamError> {
        if let Some(reads) = &self.reads
            && method == Method::GET
            && !path_and_query.starts_with("/v1/keys")
        {
            return reads.get(client, key, path_and_query).await;
        }
        let mut request = Request::builder().method(method).uri(path_and_query);
        let bearer = HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| UpstreamError::Unreachable("the key is not a header value".into()))?;
        request = request.header(header::AUTHORIZATION, bearer);
        for (name, value) in [(FORWARDED_FOR, &client.forwarded_for), (REQUEST_ID, &client.request_id)] {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(json).map_err(|e| UpstreamError::Unreachable(e.to_string()))?)
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        if let Some(peer) = client.peer {
            request.extensions_mut().insert(peer);
        }
        self.api.clone().oneshot(request).await.map_err(|e| UpstreamError::Unreachable(e.to_string()))
    }
}

impl RemoteReads {
    async fn get(&self, client: &Client, key: &str, path_and_query: &str) -> Result<Response, UpstreamError> {
        let mut request = self.http.get(format!("{}{path_and_query}", self.base)).bearer_auth(key);
        // The browser's address goes on, after whatever a proxy before this one said: the query
        // API counts its limits by it when it trusts `X-Forwarded-For`.
        let peer = client.peer.map(|ConnectInfo(address)| address.ip().to_string());
        let forwarded = client.forwarded_for.as_ref().and_then(|v| v.to_str().ok());
        let chain: Vec<&str> = forwarded.into_iter().chain(peer.as_deref()).collect();
        if !chain.is_empty() {
            request = request.header(FORWARDED_FOR, chain.join(", "));
        }
        if let Some(id) = &client.request_id {
            request = request.header(REQUEST_ID, id.clone());
        }
        let answer = request.send().await.map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let (status, content_type) = (answer.status(), answer.headers().get(header::CONTENT_TYPE).cloned());
        let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        }
        Ok(response)
    }
}

impl Answer {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, UpstreamError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| UpstreamError::Unexpected { status: self.status, reason: e.to_string() })
    }

    /// The problem the API answered with (empty fields when its body is not one).
    pub fn problem(&self) -> Problem {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

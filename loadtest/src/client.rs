//! One keep-alive HTTP/1.1 connection per virtual user, on hyper directly: the generator must cost
//! less than what it measures. Redirects are never followed — the 30x is the response measured.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::scenario::Request;

/// A current desktop browser: what a person clicking a link sends.
pub const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

pub struct Connection {
    address: SocketAddr,
    /// The API key sent with creates (`Authorization: Bearer`).
    key: Option<Arc<str>>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(address: SocketAddr, key: Option<Arc<str>>) -> Self {
        Self { address, key, sender: None }
    }

    fn authorised(&self, builder: hyper::http::request::Builder) -> hyper::http::request::Builder {
        match &self.key {
            Some(key) => builder.header(hyper::header::AUTHORIZATION, format!("Bearer {key}")),
            None => builder,
        }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(self.address).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just connected"))
    }

    /// Sends a request on this user's connection (opened again after it failed); the answer's body
    /// is the caller's to read.
    async fn exchange(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let sender = self.sender().await?;
        sender.ready().await?;
        sender.send_request(request).await.map_err(|error| {
            self.sender = None;
            error.into()
        })
    }

    /// Sends one request and reads the whole answer; returns its status.
    pub async fn send(&mut self, request: &Request) -> anyhow::Result<StatusCode> {
        let host = self.address.to_string();
        let builder = hyper::Request::builder().header(hyper::header::HOST, host);
        let request = match request {
            Request::Redirect(path) => builder.method(Method::GET).uri(path.as_str()).body(Full::new(Bytes::new()))?,
            Request::Create(body) => self
                .authorised(builder)
                .method(Method::POST)
                .uri("/v1/links")
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.clone())))?,
        };
        let response = self.exchange(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }

    /// Any request, with the key and a browser's `User-Agent` (a person, not a bot); returns the status
    /// and the whole body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder = self
            .authorised(hyper::Request::builder())
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.address.to_string())
            .header(hyper::header::USER_AGENT, BROWSER);
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(body.map(Bytes::from).unwrap_or_default()))?;
        let response = self.exchange(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// `POST /v1/links` returning the created code.
    pub async fn create(&mut self, target: &str) -> anyhow::Result<String> {
        self.create_limited(target, None).await
    }

    /// Creates a link, with `max_clicks` when given.
    pub async fn create_limited(&mut self, target: &str, max_clicks: Option<u64>) -> anyhow::Result<String> {
        let host = self.address.to_string();
        let mut body = serde_json::json!({ "target_url": target });
        if let Some(max_clicks) = max_clicks {
            body["max_clicks"] = max_clicks.into();
        }
        let body = body.to_string();
        let request = self
            .authorised(hyper::Request::builder())
            .method(Method::POST)
            .uri("/v1/links")
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = self.exchange(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status == StatusCode::CREATED,
            "seeding failed with {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let created: serde_json::Value = serde_json::from_slice(&body)?;
        created["code"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("created link without a code"))
    }
}

//! The reference ceiling: what a redirect costs with nothing behind it — a static in-memory map from
//! code to URL, answering 302 — served by the same stack (axum on tokio) as Kurz.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

#[derive(Debug, clap::Args)]
pub struct CeilingArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// JSON object from code to target URL.
    #[arg(long)]
    links: PathBuf,
}

#[derive(Clone)]
struct Links {
    targets: Arc<RwLock<HashMap<String, String>>>,
    created: Arc<AtomicU64>,
}

pub async fn serve(args: CeilingArgs) -> anyhow::Result<()> {
    let targets: HashMap<String, String> = serde_json::from_slice(&std::fs::read(&args.links)?)?;
    let links = Links { targets: Arc::new(RwLock::new(targets)), created: Arc::default() };
    let app = Router::new().route("/{code}", get(redirect)).route("/v1/links", post(create)).with_state(links);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    // The parent reads this line to learn the port.
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn redirect(State(links): State<Links>, Path(code): Path<String>) -> Response {
    let target = links.targets.read().expect("not poisoned").get(&code).cloned();
    match target {
        Some(target) => (StatusCode::FOUND, [(header::LOCATION, target)]).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn create(State(links): State<Links>, Json(body): Json<serde_json::Value>) -> Response {
    let code = format!("c{}", links.created.fetch_add(1, Ordering::Relaxed));
    let target = body["target_url"].as_str().unwrap_or_default().to_owned();
    links.targets.write().expect("not poisoned").insert(code.clone(), target);
    (StatusCode::CREATED, Json(serde_json::json!({ "code": code }))).into_response()
}

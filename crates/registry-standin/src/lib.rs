//! A **stand-in** for a Confluent-compatible schema registry, for tests only: no Confluent registry
//! server can be installed on the machines Kurz is tested on. It speaks the protocol
//! schema_registry_converter and Confluent's serialisers use — register a schema under a subject,
//! look a schema up by id or by subject and version — keeps everything in memory, and applies the
//! registry's default BACKWARD compatibility rule per subject. Production points
//! `kafka.schema_registry_url` at a real registry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
struct Registry {
    /// Global ids (index + 1): the same schema gets the same id in every subject.
    schemas: Vec<Stored>,
    /// Subject → schema ids, version 1 first.
    subjects: BTreeMap<String, Vec<u32>>,
}

#[derive(Debug)]
struct Stored {
    /// Identity: Avro's Parsing Canonical Form (which drops defaults and docs).
    canonical: String,
    /// As registered, defaults included: what compatibility is checked on and lookups return.
    text: String,
}

impl Registry {
    fn schema(&self, id: u32) -> &Stored {
        &self.schemas[id as usize - 1]
    }
}

type Shared = Arc<Mutex<Registry>>;

/// A running stand-in; it stops when the tokio runtime that started it ends.
#[derive(Debug, Clone)]
pub struct RegistryStandIn {
    address: SocketAddr,
}

impl RegistryStandIn {
    /// Serves on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::serve(None).await
    }

    /// Serves on a free loopback port, answering 401 to a request without these credentials
    /// (HTTP basic authentication, as Confluent's registry and its cloud do).
    pub async fn start_with_basic_auth(username: &str, password: &str) -> std::io::Result<Self> {
        use base64::Engine as _;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::serve(Some(format!("Basic {credentials}"))).await
    }

    async fn serve(authorization: Option<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let registry: Shared = Arc::default();
        let app = Router::new()
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}", post(lookup))
            .route("/subjects/{subject}/versions", post(register).get(versions))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(registry)
            .layer(axum::middleware::from_fn_with_state(authorization.map(Arc::<str>::from), authorized));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { address })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

async fn authorized(
    State(expected): State<Option<Arc<str>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request.headers().get(axum::http::header::AUTHORIZATION).map(axum::http::HeaderValue::as_bytes);
    match expected {
        Some(expected) if given != Some(expected.as_bytes()) => {
            let body = json!({"error_code": 40101, "message": "Unauthorized"});
            (StatusCode::UNAUTHORIZED, Json(body)).into_response()
        }
        _ => next.run(request).await,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Supplied {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
}

/// A registry error answer: HTTP status plus Confluent's `error_code` and message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error_code": self.code, "message": self.message }))).into_response()
    }
}

fn refuse(status: StatusCode, code: u32, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

fn subject_not_found(subject: &str) -> Refusal {
    refuse(StatusCode::NOT_FOUND, 40401, format!("subject {subject} not found"))
}

type Answer = Result<Json<Value>, Refusal>;

fn parse(supplied: &Supplied) -> Result<Schema, Refusal> {
    if supplied.schema_type.as_deref().is_some_and(|kind| kind != "AVRO") {
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, 42201, "this stand-in knows Avro schemas only"));
    }
    Schema::parse_str(&supplied.schema)
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, 42201, format!("invalid schema: {e}")))
}

fn parsed(text: &str) -> Schema {
    Schema::parse_str(text).expect("only parsed schemas are stored")
}

fn id_of(index: usize) -> u32 {
    u32::try_from(index + 1).expect("fewer than 2^32 schemas")
}

fn lock(registry: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn register(State(registry): State<Shared>, Path(subject): Path<String>, Json(body): Json<Supplied>) -> Answer {
    let schema = parse(&body)?;
    let canonical = schema.canonical_form();
    let mut registry = lock(&registry);
    let versions = registry.subjects.get(&subject).cloned().unwrap_or_default();
    if let Some(id) = versions.iter().find(|id| registry.schema(**id).canonical == canonical) {
        return Ok(Json(json!({ "id": id })));
    }
    if let Some(latest) = versions.last() {
        // BACKWARD: the new schema must read what the latest one wrote.
        let writer = parsed(&registry.schema(*latest).text);
        if let Err(problem) = SchemaCompatibility::can_read(&writer, &schema) {
            let message = format!("schema is not backward compatible with version {}: {problem}", versions.len());
            return Err(refuse(StatusCode::CONFLICT, 409, message));
        }
    }
    let index = registry.schemas.iter().position(|known| known.canonical == canonical).unwrap_or_else(|| {
        registry.schemas.push(Stored { canonical, text: body.schema });
        registry.schemas.len() - 1
    });
    let id = id_of(index);
    registry.subjects.entry(subject).or_default().push(id);
    Ok(Json(json!({ "id": id })))
}

fn registered(registry: &Registry, subject: &str, version: usize) -> Json<Value> {
    let id = registry.subjects[subject][version - 1];
    Json(json!({ "subject": subject, "version": version, "id": id, "schema": registry.schema(id).text }))
}

async fn lookup(State(registry): State<Shared>, Path(subject): Path<String>, Json(body): Json<Supplied>) -> Answer {
    let canonical = parse(&body)?.canonical_form();
    let registry = lock(&registry);
    let versions = registry.subjects.get(&subject).ok_or_else(|| subject_not_found(&subject))?;
    let index = versions
        .iter()
        .position(|id| registry.schema(*id).canonical == canonical)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, 40403, "schema not found"))?;
    Ok(registered(&registry, &subject, index + 1))
}

async fn version(State(registry): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Answer {
    let registry = lock(&registry);
    let versions = registry.subjects.get(&subject).ok_or_else(|| subject_not_found(&subject))?;
    let number = if version == "latest" { Some(versions.len()) } else { version.parse().ok() };
    let number = number
        .filter(|n| (1..=versions.len()).contains(n))
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, 40402, format!("version {version} not found")))?;
    Ok(registered(&registry, &subject, number))
}

async fn versions(State(registry): State<Shared>, Path(subject): Path<String>) -> Answer {
    let registry = lock(&registry);
    let versions = registry.subjects.get(&subject).ok_or_else(|| subject_not_found(&subject))?;
    Ok(Json(json!((1..=versions.len()).collect::<Vec<_>>())))
}

async fn subjects(State(registry): State<Shared>) -> Json<Vec<String>> {
    Json(lock(&registry).subjects.keys().cloned().collect())
}

async fn by_id(State(registry): State<Shared>, Path(id): Path<u32>) -> Answer {
    let registry = lock(&registry);
    let schema = id
        .checked_sub(1)
        .and_then(|index| registry.schemas.get(index as usize))
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, 40403, format!("schema {id} not found")))?;
    Ok(Json(json!({ "schema": schema.text })))
}

//! API keys: how they look, how they are checked on every `/v1/…` request, and the bootstrap admin
//! key a deployment starts with.
//!
//! A key is `kurz_<id>_<secret>`: the id (12 characters of `[a-z0-9]`) is public and names the key
//! in listings and on events; the secret is 32 base62 characters (190 bits). Only a SHA-256 digest
//! of the whole key is stored, and the key is shown once, when it is created.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kurz_domain::{Actor, KeyId, Owner, Permission, Role, Timestamp};
use kurz_ports::{ApiKeyStore, InfraError, StoredKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Problem;

pub const KEY_PREFIX: &str = "kurz_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
/// A presented key longer than this is refused before it is hashed.
const MAX_PRESENTED_LEN: usize = 256;
/// The id of the admin key a deployment is configured with (not stored, not revocable).
pub const BOOTSTRAP_ID: &str = "bootstrap";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the bootstrap admin key. The all-in-one process creates `<data_dir>/admin.key`
    /// when this is unset; distributed services read the file named here.
    pub bootstrap_key_file: Option<PathBuf>,
    /// How long an instance trusts what it read about a key: a revocation reaches every instance
    /// within this time.
    pub key_cache_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { bootstrap_key_file: None, key_cache_ms: 500 }
    }
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh key: its id and the whole key text (to show once).
pub fn generate() -> anyhow::Result<(KeyId, String)> {
    let id = random_text(ID_ALPHABET, ID_LEN)?;
    let secret = random_text(SECRET_ALPHABET, SECRET_LEN)?;
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    Ok((KeyId::parse(&id).expect("generated ids are valid"), key))
}

/// Uniform characters by rejection sampling (no modulo bias).
fn random_text(alphabet: &[u8], len: usize) -> anyhow::Result<String> {
    let limit = u8::try_from(256 - 256 % alphabet.len()).unwrap_or(u8::MAX);
    let mut text = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while text.len() < len {
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
        for byte in bytes.iter().filter(|b| **b < limit) {
            if text.len() == len {
                break;
            }
            text.push(char::from(alphabet[usize::from(*byte) % alphabet.len()]));
        }
    }
    Ok(text)
}

/// The key id a presented key claims, if it has the shape of a Kurz key.
fn claimed_id(presented: &str) -> Option<KeyId> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| KeyId::parse(id).ok())
        .flatten()
}

fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // Constant time: how much of a digest matched must not show in the answer's timing.
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Reads the bootstrap admin key from `path`; with `create`, writes a fresh one there first (mode
/// 0600) when the file does not exist, and logs the file's path (never the key).
pub fn bootstrap_key(path: &Path, create: bool) -> anyhow::Result<[u8; 32]> {
    if create && !path.exists() {
        let key = format!("{KEY_PREFIX}{BOOTSTRAP_ID}_{}", random_text(SECRET_ALPHABET, SECRET_LEN)?);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "{key}")?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "wrote the admin API key; send it as `Authorization: Bearer <key>`");
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the bootstrap admin key {} (write a random key of 32 or more characters there)",
            path.display()
        )
    })?;
    let key = text.trim();
    anyhow::ensure!(key.len() >= 32, "the bootstrap admin key in {} is shorter than 32 characters", path.display());
    anyhow::ensure!(key.len() <= MAX_PRESENTED_LEN, "the bootstrap admin key in {} is too long", path.display());
    Ok(digest(key))
}

/// Checks presented keys, caching what it read about each for `key_cache_ms`, and manages keys.
pub struct Keys {
    store: Arc<dyn ApiKeyStore>,
    bootstrap: Option<[u8; 32]>,
    cache: quick_cache::sync::Cache<KeyId, (Option<StoredKey>, Instant)>,
    cache_for: Duration,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("bootstrap", &self.bootstrap.is_some()).finish_non_exhaustive()
    }
}

/// Why a presented key was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefusal {
    #[error("no API key was sent")]
    Missing,
    #[error("the API key is unknown or revoked")]
    Invalid,
    #[error(transparent)]
    Unavailable(#[from] InfraError),
}

impl Keys {
    pub fn new(store: Arc<dyn ApiKeyStore>, bootstrap: Option<[u8; 32]>, config: &AuthConfig) -> Self {
        Self {
            store,
            bootstrap,
            cache: quick_cache::sync::Cache::new(10_000),
            cache_for: Duration::from_millis(config.key_cache_ms),
        }
    }

    /// The actor behind a presented key.
    pub async fn verify(&self, presented: &str) -> Result<Actor, KeyRefusal> {
        if presented.is_empty() || presented.len() > MAX_PRESENTED_LEN {
            return Err(KeyRefusal::Invalid);
        }
        let presented_digest = digest(presented);
        if let Some(bootstrap) = &self.bootstrap
            && same_digest(bootstrap, &presented_digest)
        {
            return Ok(Actor {
                key_id: KeyId::parse(BOOTSTRAP_ID).expect("valid"),
                owner: Owner::admin(),
                role: Role::Admin,
            });
        }
        let id = claimed_id(presented).ok_or(KeyRefusal::Invalid)?;
        let stored = self.stored(&id).await?;
        match stored {
            Some(key) if key.revoked_at.is_none() && same_digest(&key.digest, &presented_digest) => {
                Ok(Actor { key_id: key.id, owner: key.owner, role: key.role })
            }
            _ => Err(KeyRefusal::Invalid),
        }
    }

    async fn stored(&self, id: &KeyId) -> Result<Option<StoredKey>, InfraError> {
        if let Some((key, read_at)) = self.cache.get(id)
            && read_at.elapsed() < self.cache_for
        {
            return Ok(key);
        }
        let key = self.store.get(id).await?;
        self.cache.insert(id.clone(), (key.clone(), Instant::now()));
        Ok(key)
    }

    /// Creates a key; returns it as stored and the key text, which is never seen again.
    pub async fn create(&self, owner: Owner, role: Role, now: Timestamp) -> anyhow::Result<(StoredKey, String)> {
        loop {
            let (id, key) = generate()?;
            let stored =
                StoredKey { id, owner: owner.clone(), role, digest: digest(&key), created_at: now, revoked_at: None };
            if self.store.insert(&stored).await? {
                return Ok((stored, key));
            }
        }
    }

    pub async fn list(&self) -> Result<Vec<StoredKey>, InfraError> {
        self.store.list().await
    }

    pub async fn revoke(&self, id: &KeyId, now: Timestamp) -> Result<Option<StoredKey>, InfraError> {
        let revoked = self.store.revoke(id, now).await?;
        self.cache.remove(id);
        Ok(revoked)
    }

    pub fn has_bootstrap(&self) -> bool {
        self.bootstrap.is_some()
    }
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

pub fn unauthorized(detail: &str) -> Response {
    let mut response =
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "An API key is required", detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kurz\""));
    response
}

/// The authenticated actor of a request (see [`crate::gate::ApiGate`]).
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl Caller {
    /// 403 unless the caller's role permits `permission`.
    pub fn require(&self, permission: Permission) -> Result<&Actor, Problem> {
        if self.0.role.permits(permission) {
            Ok(&self.0)
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The key's role does not allow this",
                format!("a key with role {} may not do this", self.0.role.as_str()),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Actor>().cloned().map(Self).ok_or_else(|| unauthorized("no API key was checked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_are_unique() {
        let (id, key) = generate().expect("random");
        assert!(key.starts_with("kurz_"));
        assert_eq!(claimed_id(&key), Some(id));
        assert_eq!(key.len(), KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        assert_ne!(generate().expect("random").1, key);
    }

    #[test]
    fn malformed_keys_claim_no_id() {
        for text in ["", "kurz_", "kurz_abc", "kurz_abc_short", "bearer", &format!("kurz_ABC_{}", "a".repeat(32))] {
            assert_eq!(claimed_id(text), None, "{text}");
        }
    }

    #[test]
    fn keys_are_read_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  kurz_x "));
        assert_eq!(presented_key(&headers), Some("kurz_x"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&headers), None);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("kurz_y"));
        assert_eq!(presented_key(&headers), Some("kurz_y"));
    }

    #[test]
    fn the_bootstrap_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("admin.key");
        let first = bootstrap_key(&path, true).expect("created");
        assert_eq!(bootstrap_key(&path, true).expect("read"), first, "not made again");
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.starts_with("kurz_bootstrap_"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        assert!(bootstrap_key(&dir.path().join("missing.key"), false).is_err());
    }
}

//! The HTTP side of the client commands: where Kurz is, which key to send, and problems turned
//! into errors that say what the server said.

use std::path::{Path, PathBuf};

use anyhow::Context;
use reqwest::{Method, RequestBuilder, Response};
use serde::Deserialize;
use serde_json::Value;

use super::Connection;

/// The client settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    url: Option<String>,
    key: Option<String>,
    key_file: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("kurz").join("cli.toml"))
}

fn read_key(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the API key from {}", path.display()))?;
    Ok(text.trim().to_owned())
}

impl Client {
    pub fn connect(connection: &Connection) -> anyhow::Result<Self> {
        let file = match connection.config.clone().or_else(default_config_path) {
            Some(path) if path.exists() || connection.config.is_some() => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                toml_file(&text).with_context(|| format!("reading {}", path.display()))?
            }
            _ => ClientFile::default(),
        };
        let base = connection.url.clone().or(file.url).unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
        let key = match (&connection.key, &connection.key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(path)) => read_key(path)?,
            (None, None) => match (file.key, file.key_file) {
                (Some(key), _) => key,
                (None, Some(path)) => read_key(&path)?,
                (None, None) => read_key(Path::new("data/admin.key")).context(
                    "no API key: pass --key or --key-file, or name one in the client file (see kurz --help)",
                )?,
            },
        };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), key })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    /// Sends and reads a JSON answer; a problem (or any non-success) becomes an error carrying its
    /// title and detail.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response =
            checked(request.send().await.with_context(|| format!("reaching Kurz at {}", self.base))?).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.context("reading Kurz's answer")
    }
}

fn toml_file(text: &str) -> anyhow::Result<ClientFile> {
    use figment::providers::Format as _;
    figment::Figment::from(figment::providers::Toml::string(text)).extract().map_err(anyhow::Error::from)
}

/// The response if it succeeded, else an error saying what the server said.
pub async fn checked(response: Response) -> anyhow::Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let detail = body["detail"].as_str().unwrap_or("no detail");
    let title = body["title"].as_str().unwrap_or_else(|| status.canonical_reason().unwrap_or("error"));
    match body["field"].as_str() {
        Some(field) => anyhow::bail!("{} {title}: {field} {detail}", status.as_u16()),
        None => anyhow::bail!("{} {title}: {detail}", status.as_u16()),
    }
}

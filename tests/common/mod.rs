//! Spins the real all-in-one app on port 0 with a fresh data directory, and talks to it over HTTP.

#![allow(dead_code, reason = "each test binary uses a different part of the helpers")]

use std::path::{Path, PathBuf};

use kurz::{Application, Config, SettleHandle};
use kurz_domain::Timestamp;
use kurz_service_kit::Clock;
use kurz_service_kit::clock::ManualTime;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    /// The admin listener's base URL, when `http.admin_listen` is set.
    pub admin_base: Option<String>,
    /// The main listener's router, for requests sent in-process.
    pub router: axum::Router,
    pub client: Client,
    /// The bootstrap admin key the app wrote to `admin.key` in its data directory.
    pub admin_key: String,
    pub data_dir: PathBuf,
    pub time: ManualTime,
    settle: SettleHandle,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// 2026-11-21T00:00:00Z, where every test's manual clock starts.
pub const START: i64 = 1_795_219_200_000;

pub fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub async fn spawn_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir.path()).await;
    (app, dir)
}

pub async fn spawn_app_in(data_dir: &Path) -> TestApp {
    spawn_app_with(data_dir, |_| {}).await
}

pub async fn spawn_app_with(data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> TestApp {
    kurz_service_kit::telemetry::init_logging(&kurz_service_kit::config::LogConfig::default()).expect("logging");
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.storage.data_dir = data_dir.to_path_buf();
    config.storage.partitions = 4;
    adjust(&mut config);
    let (clock, time) = Clock::manual(Timestamp::from_millis(START));
    let app = Application::build_with_clock(config, clock).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let admin_base = app.admin_addr().map(|address| format!("http://{address}"));
    let router = app.router();
    let settle = app.settle_handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let admin_key = std::fs::read_to_string(data_dir.join("admin.key")).expect("admin key written").trim().to_owned();
    TestApp {
        base,
        admin_base,
        router,
        client: client(),
        admin_key,
        data_dir: data_dir.to_path_buf(),
        time,
        settle,
        stop,
        task,
    }
}

impl TestApp {
    /// Stops like SIGTERM would, and waits until the files are closed.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("app task").expect("app ran");
    }

    /// Waits until queued clicks are appended and the read models show the whole log.
    pub async fn settled(&self) {
        self.settle.settled().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).bearer_auth(&self.admin_key).json(body).send().await.expect("request")
    }

    /// A POST with a body sent as is, under the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Response {
        let request = self.client.post(self.url(path)).bearer_auth(&self.admin_key);
        request.header("content-type", content_type).body(body).send().await.expect("request")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.client.patch(self.url(path)).bearer_auth(&self.admin_key).json(body).send().await.expect("request")
    }

    /// A GET with the admin key (redirects ignore it).
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(&self.admin_key).send().await.expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).bearer_auth(&self.admin_key).send().await.expect("request")
    }

    /// A request with `key` instead of the admin key.
    pub fn with_key(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    /// Creates an API key with the admin key; returns its id and key text.
    pub async fn create_key(&self, owner: &str, role: &str) -> (String, String) {
        let response = self.post_json("/v1/keys", &json!({"owner": owner, "role": role})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        (body["id"].as_str().expect("id").to_owned(), body["key"].as_str().expect("key").to_owned())
    }

    /// Creates a link and returns its body; panics unless the answer is 201.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.post_json("/v1/links", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{:?}", response.text().await);
        response.json().await.expect("json")
    }

    pub async fn create_to(&self, target: &str) -> String {
        let link = self.create(json!({ "target_url": target })).await;
        link["code"].as_str().expect("code").to_owned()
    }

    pub async fn stats(&self, code: &str) -> Value {
        let response = self.get(&format!("/v1/links/{code}/stats")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }
}

/// The `kurz` binary, running.
pub struct RunningKurz {
    pub child: std::process::Child,
    /// `http://` and the address it serves on.
    pub base: String,
    /// Every log line up to the one that reports the address.
    pub startup: Vec<String>,
    /// Log lines written since; the pipe is drained whether or not they are read.
    pub logs: std::sync::mpsc::Receiver<String>,
}

/// Starts the `kurz` binary on a free port with its data in `data_dir`, JSON logs and `settings`.
pub fn start_kurz_binary(data_dir: &Path, settings: &[(&str, &str)]) -> RunningKurz {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kurz"))
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .env("KURZ_STORAGE__DATA_DIR", data_dir)
        .env("KURZ_LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(settings.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kurz starts");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end even when nobody listens, so the process never blocks on a full pipe.
        for line in stderr.lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut startup = Vec::new();
    loop {
        let Ok(line) = receiver.recv_timeout(std::time::Duration::from_mins(1)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kurz reports its address: {startup:#?}");
        };
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        startup.push(line);
        if parsed["fields"]["message"] == "kurz is serving" {
            let address = parsed["fields"]["address"].as_str().unwrap_or_default().to_owned();
            return RunningKurz { child, base: format!("http://{address}"), startup, logs: receiver };
        }
    }
}

/// Asserts a problem+json answer with the given status, returning its body.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], json!(status.as_u16()));
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
    body
}

pub fn location(response: &Response) -> &str {
    response.headers()["location"].to_str().expect("ascii")
}

//! The three distributed services as real processes, on the test broker and the test Redis.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use kurz_kafka::testing::unique_name;
use kurz_redis::testing::TestRedis;
use kurz_registry_standin::RegistryStandIn;
use serde_json::Value;

/// The shared ground of one deployment: topic, key prefix, consumer group, registry, secrets.
pub struct Deployment {
    pub brokers: String,
    pub redis: TestRedis,
    pub registry: RegistryStandIn,
    pub topic: String,
    pub group: String,
    pub dir: tempfile::TempDir,
    /// The services' own Redis (cache, quotas, claims, change channel); the read store stays on
    /// `redis`. Unset: both on `redis`.
    pub service_redis: Option<String>,
    /// Further settings for the command and query APIs.
    pub api_settings: Vec<(&'static str, String)>,
    /// Further settings for every service.
    pub settings: Vec<(&'static str, String)>,
}

/// The bootstrap admin key every test deployment is configured with.
pub const ADMIN_KEY: &str = "kurz_bootstrap_test0000000000000000000000000000000";

impl Deployment {
    pub async fn new(brokers: String, redis: TestRedis) -> Self {
        let registry = RegistryStandIn::start().await.expect("registry stand-in starts");
        Self::with_registry(brokers, redis, registry)
    }

    pub fn with_registry(brokers: String, redis: TestRedis, registry: RegistryStandIn) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("secret.key"), [7u8; 32]).expect("secret key written");
        std::fs::write(dir.path().join("admin.key"), ADMIN_KEY).expect("admin key written");
        Self {
            brokers,
            redis,
            registry,
            topic: unique_name("e2e"),
            group: unique_name("projectors"),
            dir,
            service_redis: None,
            api_settings: Vec::new(),
            settings: Vec::new(),
        }
    }

    fn environment(&self) -> Vec<(&'static str, String)> {
        let mut environment = vec![
            ("KURZ_HTTP__LISTEN", "127.0.0.1:0".into()),
            // Dozens of services and test clients share two cores here: under that load a test's
            // client can take longer than the default 15 s between connecting and sending its
            // request, which the watchdog rightly treats as an idle connection (tested on its own
            // in tests/security.rs). These tests are about other things.
            ("KURZ_HTTP__HEADER_READ_TIMEOUT_MS", "120000".into()),
            ("KURZ_KAFKA__BROKERS", self.brokers.clone()),
            ("KURZ_KAFKA__TOPIC", self.topic.clone()),
            ("KURZ_KAFKA__PARTITIONS", "4".into()),
            ("KURZ_KAFKA__REPLICATION_FACTOR", "1".into()),
            ("KURZ_KAFKA__SCHEMA_REGISTRY_URL", self.registry.url()),
            ("KURZ_REDIS__URL", self.service_redis.clone().unwrap_or_else(|| self.redis.config.url.clone())),
            ("KURZ_REDIS__KEY_PREFIX", self.redis.config.key_prefix.clone()),
            ("KURZ_READ_STORE__REDIS__URL", self.redis.config.url.clone()),
            ("KURZ_READ_STORE__REDIS__KEY_PREFIX", self.redis.config.key_prefix.clone()),
            // Fail appends within seconds while the broker is away (the default waits 30 s).
            ("KURZ_KAFKA__DELIVERY_TIMEOUT_MS", "3000".into()),
            ("KURZ_LOG__FORMAT", "json".into()),
            ("RUST_LOG", "info".into()),
        ];
        environment.extend(self.settings.iter().cloned());
        environment
    }

    /// Settings the command and query APIs share: secrets, the bootstrap admin key, `api_settings`.
    fn api_environment(&self) -> Vec<(&'static str, String)> {
        let mut environment = self.environment();
        environment.push(("KURZ_SECRET_KEY_FILE", path(&self.dir.path().join("secret.key"))));
        environment.push(("KURZ_AUTH__BOOTSTRAP_KEY_FILE", path(&self.dir.path().join("admin.key"))));
        environment.extend(self.api_settings.iter().cloned());
        environment
    }

    pub fn command_api(&self) -> Service {
        Service::start("command-api", &self.api_environment(), &[])
    }

    pub fn query_api(&self) -> Service {
        let spool = self.dir.path().join(format!("spool-{}", unique_name("query-api")));
        Service::start("query-api", &self.api_environment(), &[("KURZ_CLICKS__SPOOL_DIR", path(&spool))])
    }

    pub fn projector(&self) -> Service {
        self.projector_with(&[])
    }

    pub fn projector_with(&self, args: &[&str]) -> Service {
        let extra = [
            ("KURZ_MODE", "distributed".into()),
            ("KURZ_GROUP_ID", self.group.clone()),
            // The broker's minimum: a killed worker's partitions move on after six seconds.
            ("KURZ_SESSION_TIMEOUT_MS", "6000".into()),
        ];
        Service::start_with_args("projector", args, &self.environment(), &extra)
    }
}

fn path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A running service process; killed when dropped.
pub struct Service {
    pub name: &'static str,
    child: Child,
    pub url: String,
}

impl Service {
    fn start(name: &'static str, environment: &[(&'static str, String)], extra: &[(&'static str, String)]) -> Self {
        Self::start_with_args(name, &[], environment, extra)
    }

    fn start_with_args(
        name: &'static str,
        args: &[&str],
        environment: &[(&'static str, String)],
        extra: &[(&'static str, String)],
    ) -> Self {
        let variables = environment.iter().chain(extra).map(|(key, value)| ((*key).to_owned(), value.clone()));
        Self::start_with_exactly(name, args, &variables.collect::<Vec<_>>(), false)
    }

    /// Starts `name` with the given variables; with `only_these`, nothing else of the test's
    /// environment (as a container would see it) but `PATH`.
    pub fn start_with_exactly(
        name: &'static str,
        args: &[&str],
        variables: &[(String, String)],
        only_these: bool,
    ) -> Self {
        let mut command = Command::new(binary(name));
        command.args(args);
        if only_these {
            command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        command.envs(variables.iter().cloned());
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let message = parsed["fields"]["message"].as_str().unwrap_or_default();
                if message.ends_with("is serving") || message.ends_with("serving its ops endpoints") {
                    let _ = sender.send(parsed["fields"]["address"].as_str().unwrap_or_default().to_owned());
                } else if parsed["level"] == "ERROR" || parsed["level"] == "WARN" || parsed.is_null() {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        let address =
            receiver.recv_timeout(Duration::from_mins(1)).unwrap_or_else(|_| panic!("{name} reports its address"));
        Self { name, child, url: format!("http://{address}") }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits for the graceful exit.
    pub fn terminate(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("exits");
        assert!(exit.success(), "{} exits cleanly after SIGTERM: {exit}", self.name);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service binaries of this build, beside this test's directory (`target/<profile>/`). Built
/// once per test run with the workspace's test-time features (what `cargo test --workspace` has
/// just built, so then nothing is compiled), so that a test of this package alone never runs stale
/// binaries.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        let dir = exe.parent().and_then(Path::parent).expect("target directory").to_path_buf();
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--workspace", "--bins", "--tests", "--locked"]);
        if dir.file_name().is_some_and(|profile| profile == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building the service binaries");
        dir
    });
    dir.join(name)
}

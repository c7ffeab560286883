//! The Kurz a soak runs against, started by the soak itself: processes it can sample, and the faults
//! it causes (a Redis restart, a broker outage through the distributed tests' broker proxy).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use kurz_domain::Event;
use kurz_kafka::{KafkaConfig, KafkaEventLog};
use kurz_ports::EventLog;
use kurz_registry_standin::RegistryStandIn;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker_proxy::BrokerProxy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The all-in-one `kurz` on its embedded log and store.
    Embedded,
    /// command-api, query-api and projector on a broker (tansu) and Redis.
    Distributed,
}

#[derive(Default)]
struct LogCounts {
    lines: AtomicU64,
    warnings: AtomicU64,
}

/// A child process; killed when dropped.
pub struct Process {
    pub name: String,
    child: Child,
    logs: Arc<LogCounts>,
}

impl Process {
    /// Starts a Kurz service logging JSON and waits for the address it reports serving on.
    /// With `logs`, every line it writes is kept in `<logs>/<name>.log` too.
    fn kurz(
        name: &str,
        program: &Path,
        environment: &[(String, String)],
        logs: Option<&Path>,
    ) -> anyhow::Result<(Self, SocketAddr)> {
        let mut kept = logs
            .map(|dir| std::fs::File::create(dir.join(format!("{name}.log"))).map(std::io::BufWriter::new))
            .transpose()
            .context("creating a log file")?;
        let mut child = Command::new(program)
            .envs(environment.iter().cloned())
            .env("KURZ_LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stderr = BufReader::new(child.stderr.take().context("stderr")?);
        let logs = Arc::new(LogCounts::default());
        let counts = logs.clone();
        let (sender, receiver) = std::sync::mpsc::channel();
        let label = name.to_owned();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                counts.lines.fetch_add(1, Ordering::Relaxed);
                if let Some(file) = kept.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let message = parsed["fields"]["message"].as_str().unwrap_or_default();
                if message.ends_with("is serving") || message.ends_with("serving its ops endpoints") {
                    let _ = sender.send(parsed["fields"]["address"].as_str().unwrap_or_default().to_owned());
                }
                if parsed["level"] == "WARN" || parsed["level"] == "ERROR" || parsed.is_null() {
                    counts.warnings.fetch_add(1, Ordering::Relaxed);
                    eprintln!("[{label}] {}", line.chars().take(400).collect::<String>());
                }
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_mins(2))
            .with_context(|| format!("{name} did not report its address"))?
            .parse()?;
        Ok((Self { name: name.to_owned(), child, logs }, address))
    }

    fn other(name: &str, command: &mut Command) -> anyhow::Result<Self> {
        let child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self { name: name.to_owned(), child, logs: Arc::default() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Log lines since the last call: all, and warnings or errors.
    pub fn take_log_counts(&self) -> (u64, u64) {
        (self.logs.lines.swap(0, Ordering::Relaxed), self.logs.warnings.swap(0, Ordering::Relaxed))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Kurz and what it runs on.
pub struct System {
    /// Where creates and updates go (the all-in-one, or command-api).
    pub command: SocketAddr,
    /// Where redirects and reads go (the all-in-one, or query-api).
    pub query: SocketAddr,
    pub key: Arc<str>,
    processes: Vec<Process>,
    /// Distributed: the services' Redis (claims, leases, quotas, caches), with an append-only file.
    redis: Option<Redis>,
    /// Distributed: the Redis holding the read models, kept by snapshots only, so that a restart
    /// can bring back an older state ([`Self::roll_back_read_store`]).
    read_models: Option<Redis>,
    proxy: Option<BrokerProxy>,
    /// Distributed: the event topic, to count what reached the broker.
    log: Option<KafkaConfig>,
    _registry: Option<RegistryStandIn>,
    _dir: tempfile::TempDir,
}

/// Limits raised, not switched off: one generator address sends every request, unknown codes included.
fn limits() -> Vec<(String, String)> {
    [
        ("KURZ_LIMITS__UNKNOWN_CODES_PER_ADDRESS_PER_MINUTE", "1000000000"),
        ("KURZ_LIMITS__WRITES_PER_KEY_PER_SECOND", "10000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl System {
    /// With `logs`, the services' log lines are kept there, a file per service.
    pub async fn start(
        mode: Mode,
        bin_dir: &Path,
        tansu: Option<&Path>,
        redis_server: &Path,
        logs: Option<&Path>,
    ) -> anyhow::Result<Self> {
        if let Some(logs) = logs {
            std::fs::create_dir_all(logs).context("creating the log directory")?;
        }
        let dir = tempfile::tempdir()?;
        match mode {
            Mode::Embedded => Self::embedded(bin_dir, dir, logs),
            Mode::Distributed => Self::distributed(bin_dir, tansu, redis_server, dir, logs).await,
        }
    }

    fn embedded(bin_dir: &Path, dir: tempfile::TempDir, logs: Option<&Path>) -> anyhow::Result<Self> {
        let mut environment = limits();
        environment.push(("KURZ_HTTP__LISTEN".into(), "127.0.0.1:0".into()));
        environment.push(("KURZ_STORAGE__DATA_DIR".into(), dir.path().display().to_string()));
        let (kurz, address) = Process::kurz("kurz", &bin_dir.join("kurz"), &environment, logs)?;
        let key = std::fs::read_to_string(dir.path().join("admin.key"))?.trim().into();
        Ok(Self {
            command: address,
            query: address,
            key,
            processes: vec![kurz],
            redis: None,
            read_models: None,
            proxy: None,
            log: None,
            _registry: None,
            _dir: dir,
        })
    }

    async fn distributed(
        bin_dir: &Path,
        tansu: Option<&Path>,
        redis_server: &Path,
        dir: tempfile::TempDir,
        logs: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let tansu = tansu.context("distributed mode needs --tansu")?;
        let redis = Redis::start("redis", redis_server, &dir.path().join("redis"), Persistence::AppendOnly).await?;
        let read_models =
            Redis::start("redis-read-models", redis_server, &dir.path().join("read-models"), Persistence::Snapshots)
                .await?;
        // Clients reach the broker only through the proxy (it is the address the broker
        // advertises), so that taking the proxy down is an outage for every client.
        let broker_address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let proxy = BrokerProxy::start(broker_address).await;
        let broker = Process::other(
            "tansu",
            Command::new(tansu).args([
                "broker",
                "--listener-url",
                &format!("tcp://{broker_address}"),
                "--advertised-listener-url",
                &format!("tcp://{}", proxy.address),
                "--storage-engine",
                "memory://tansu/",
            ]),
        )?;
        wait_for(broker_address, None).await.context("tansu did not start")?;
        let registry = RegistryStandIn::start().await?;
        let key: Arc<str> = "kurz_soak_admin_0000000000000000000000000000000000".into();
        std::fs::write(dir.path().join("secret.key"), rand::random::<[u8; 32]>())?;
        std::fs::write(dir.path().join("admin.key"), key.as_bytes())?;
        let redis_url = format!("redis://127.0.0.1:{}", redis.port);
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut common = vec![
            ("KURZ_HTTP__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("KURZ_KAFKA__BROKERS".into(), proxy.address.to_string()),
            ("KURZ_KAFKA__TOPIC".into(), "kurz-soak".into()),
            ("KURZ_KAFKA__PARTITIONS".into(), "4".into()),
            ("KURZ_KAFKA__REPLICATION_FACTOR".into(), "1".into()),
            ("KURZ_KAFKA__SCHEMA_REGISTRY_URL".into(), registry.url()),
            // An API that answers 503 within seconds while the broker is away, rather than
            // holding the request for the default 30 s.
            ("KURZ_KAFKA__DELIVERY_TIMEOUT_MS".into(), "5000".into()),
            ("KURZ_REDIS__URL".into(), redis_url),
            ("KURZ_READ_STORE__REDIS__URL".into(), format!("redis://127.0.0.1:{}", read_models.port)),
        ];
        let mut api = common.clone();
        api.extend(limits());
        api.push(("KURZ_SECRET_KEY_FILE".into(), path("secret.key")));
        api.push(("KURZ_AUTH__BOOTSTRAP_KEY_FILE".into(), path("admin.key")));
        let mut query_environment = api.clone();
        query_environment.push(("KURZ_CLICKS__SPOOL_DIR".into(), path("spool")));
        common.push(("KURZ_MODE".into(), "distributed".into()));
        common.push(("KURZ_GROUP_ID".into(), "kurz-soak-projectors".into()));
        let (command_api, command) = Process::kurz("command-api", &bin_dir.join("command-api"), &api, logs)?;
        let (query_api, query) = Process::kurz("query-api", &bin_dir.join("query-api"), &query_environment, logs)?;
        let (projector, _) = Process::kurz("projector", &bin_dir.join("projector"), &common, logs)?;
        let log = KafkaConfig {
            brokers: proxy.address.to_string(),
            topic: "kurz-soak".into(),
            partitions: 4,
            replication_factor: 1,
            schema_registry_url: registry.url(),
            ..KafkaConfig::default()
        };
        Ok(Self {
            command,
            query,
            key,
            processes: vec![command_api, query_api, projector, broker],
            redis: Some(redis),
            read_models: Some(read_models),
            proxy: Some(proxy),
            log: Some(log),
            _registry: Some(registry),
            _dir: dir,
        })
    }

    /// Every process, Redis included.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().chain(self.redis.iter().chain(&self.read_models).map(|redis| &redis.process))
    }

    /// Distributed: the read models' state now is what a later roll-back brings back.
    pub async fn snapshot_read_store(&self) -> anyhow::Result<()> {
        self.read_models.as_ref().context("no read-store Redis")?.snapshot().await
    }

    /// Distributed: the read-store Redis dies and starts again from its last snapshot, losing every
    /// write it acknowledged since — as one restarted from an older file, or a failover to a replica
    /// that lagged, would. The projector must fold those records again.
    pub async fn roll_back_read_store(&mut self) -> anyhow::Result<()> {
        let redis = self.read_models.take().context("no read-store Redis")?;
        self.read_models = Some(redis.restart().await?);
        Ok(())
    }

    /// Shuts Redis down (it writes its append-only file) and starts it again on the same port.
    pub async fn restart_redis(&mut self) -> anyhow::Result<()> {
        let redis = self.redis.take().context("no Redis to restart")?;
        self.redis = Some(redis.restart().await?);
        Ok(())
    }

    /// The broker goes away: connections close, new ones are refused until [`Self::broker_up`].
    pub async fn broker_down(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.take_down().await;
        }
    }

    pub fn broker_up(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.bring_up();
        }
    }

    /// Distributed: the click events the broker holds per code (`None` on the embedded default,
    /// whose log the server holds open). Tells clicks the broker never kept from clicks the
    /// projector never folded.
    pub async fn logged_clicks(&self) -> anyhow::Result<Option<HashMap<String, u64>>> {
        let Some(config) = &self.log else { return Ok(None) };
        let log = KafkaEventLog::connect(config).await.context("reading the event topic")?;
        let mut clicks: HashMap<String, u64> = HashMap::new();
        for partition in 0..log.partitions() {
            let mut from = 0;
            loop {
                let records = log.read(partition, from, 10_000).await.context("reading the event topic")?;
                let Some(last) = records.last() else { break };
                from = last.position.offset + 1;
                for record in records {
                    if let Ok(Event::Clicked(click)) = record.event {
                        *clicks.entry(click.code.as_str().to_owned()).or_default() += 1;
                    }
                }
            }
        }
        Ok(Some(clicks))
    }

    /// Stops every process: services first, then what they run on.
    pub fn stop(mut self) {
        self.processes.clear();
        self.redis = None;
        self.read_models = None;
    }
}

/// How a soak's redis-server keeps its data.
#[derive(Clone, Copy)]
enum Persistence {
    /// An append-only file, flushed by a clean shutdown: a restart loses nothing (as a production
    /// Redis holding claims and quotas is configured).
    AppendOnly,
    /// Snapshots taken on demand ([`Redis::snapshot`]); a restart comes back at the last one.
    Snapshots,
}

/// A redis-server of the soak's own.
struct Redis {
    process: Process,
    program: PathBuf,
    dir: PathBuf,
    port: u16,
    persistence: Persistence,
}

impl Redis {
    async fn start(name: &str, program: &Path, dir: &Path, persistence: Persistence) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Self::on_port(name, program.to_owned(), dir.to_owned(), free_port()?, persistence).await
    }

    async fn on_port(
        name: &str,
        program: PathBuf,
        dir: PathBuf,
        port: u16,
        persistence: Persistence,
    ) -> anyhow::Result<Self> {
        let append_only = match persistence {
            Persistence::AppendOnly => "yes",
            Persistence::Snapshots => "no",
        };
        let process = Process::other(
            name,
            Command::new(&program)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", append_only])
                .arg("--dir")
                .arg(&dir),
        )?;
        wait_for(SocketAddr::from(([127, 0, 0, 1], port)), Some(b"PING\r\n")).await.context("redis did not start")?;
        Ok(Self { process, program, dir, port, persistence })
    }

    /// Writes the data set to `dump.rdb`, which the next start loads.
    async fn snapshot(&self) -> anyhow::Result<()> {
        let mut stream = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port))).await?;
        stream.write_all(b"SAVE\r\n").await?;
        let mut answer = [0u8; 64];
        let read = stream.read(&mut answer).await?;
        anyhow::ensure!(
            answer[..read].starts_with(b"+OK"),
            "SAVE answered {:?}",
            String::from_utf8_lossy(&answer[..read])
        );
        Ok(())
    }

    /// An append-only Redis shuts down cleanly (it flushes its file); a snapshot-only one is killed
    /// and comes back at its last snapshot.
    async fn restart(mut self) -> anyhow::Result<Self> {
        let signal = match self.persistence {
            Persistence::AppendOnly => "-TERM",
            Persistence::Snapshots => "-KILL",
        };
        Command::new("kill").arg(signal).arg(self.process.pid().to_string()).status()?;
        self.process.child.wait()?;
        let name = self.process.name.clone();
        Self::on_port(&name, self.program.clone(), self.dir.clone(), self.port, self.persistence).await
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits (at most a minute) until `address` accepts a connection and, with a probe, answers it.
async fn wait_for(address: SocketAddr, probe: Option<&[u8]>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
            let Some(probe) = probe else { return Ok(()) };
            let mut answer = [0u8; 16];
            if stream.write_all(probe).await.is_ok()
                && matches!(stream.read(&mut answer).await, Ok(n) if answer[..n].starts_with(b"+PONG"))
            {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{address} did not answer within a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

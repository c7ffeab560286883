//! Distributed mode end to end: command-api, projector and query-api as separate processes on a
//! Kafka-protocol broker (tansu) and Redis, with the fault cases that must not lose a click.

mod proxy;
mod services;
mod tls_proxy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kurz_kafka::testing::broker_or_skip;
use kurz_redis::testing::redis_or_skip;
use proxy::BrokerProxy;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use services::{Deployment, Service};

macro_rules! deployment {
    () => {{
        let Some(brokers) = broker_or_skip() else { return };
        let Some(redis) = redis_or_skip() else { return };
        Deployment::new(brokers, redis).await
    }};
}

/// A client that sends the deployment's admin key with every request (redirects ignore it).
fn client() -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", services::ADMIN_KEY);
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().expect("header value"));
    Client::builder().redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().expect("client")
}

async fn create(commands: &Service, body: Value) -> Value {
    let response = client().post(format!("{}/v1/links", commands.url)).json(&body).send().await.expect("create");
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    response.json().await.expect("json")
}

async fn redirect(queries: &Service, code: &str) -> (StatusCode, Option<String>) {
    let response = client().get(format!("{}/{code}", queries.url)).send().await.expect("redirect");
    let location = response.headers().get("location").map(|l| l.to_str().expect("ascii").to_owned());
    (response.status(), location)
}

async fn total_clicks(queries: &Service, code: &str) -> u64 {
    let response = client().get(format!("{}/v1/links/{code}/stats", queries.url)).send().await.expect("stats");
    let stats: Value = response.json().await.expect("json");
    stats["total_clicks"].as_u64().unwrap_or_default()
}

/// Polls until `check` holds: the projector catches up in its own time, and the test waits for the
/// state it needs rather than for a guessed duration.
async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn clicks_reach(queries: &Service, expected: &[(String, u64)]) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let mut counted = Vec::new();
        for (code, _) in expected {
            counted.push((code.clone(), total_clicks(queries, code).await));
        }
        if counted == expected {
            return;
        }
        let behind = counted.iter().zip(expected).all(|((_, counted), (_, served))| counted <= served);
        assert!(behind, "never more clicks than redirects served: counted {counted:?}, served {expected:?}");
        assert!(
            Instant::now() < deadline,
            "every redirect counted within a minute: counted {counted:?}, served {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_redirects_and_stats_across_separate_services() {
    let deployment = deployment!();
    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();

    // Each service documents what it serves.
    for (service, serves, not) in [(&commands, "/v1/keys", "/{code}"), (&queries, "/{code}", "/v1/keys")] {
        let doc: Value = client()
            .get(format!("{}/openapi.json", service.url))
            .send()
            .await
            .expect("document")
            .json()
            .await
            .expect("json");
        assert!(doc["paths"].get(serves).is_some() && doc["paths"].get(not).is_none(), "{}", service.url);
    }

    let mut expected = Vec::new();
    for i in 0..10_u64 {
        let link = create(&commands, json!({ "target_url": format!("https://example.com/{i}") })).await;
        let code = link["code"].as_str().expect("code").to_owned();
        // Read-your-writes across services: the command side wrote the link row before its 201.
        for _ in 0..=i {
            assert_eq!(redirect(&queries, &code).await, (StatusCode::FOUND, Some(format!("https://example.com/{i}"))));
        }
        expected.push((code, i + 1));
    }
    let alias = create(&commands, json!({ "target_url": "https://example.com/alias", "alias": "launch-2026" })).await;
    assert_eq!(alias["code"], "launch-2026");
    let taken = client()
        .post(format!("{}/v1/links", commands.url))
        .json(&json!({ "target_url": "https://example.com/other", "alias": "launch-2026" }))
        .send()
        .await
        .expect("create");
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(redirect(&queries, "unknown-code").await.0, StatusCode::NOT_FOUND);

    clicks_reach(&queries, &expected).await;
    eventually("the projector reports no lag", Duration::from_secs(30), async || {
        let text = client().get(format!("{}/metrics", projector.url)).send().await.expect("metrics");
        let text = text.text().await.expect("text");
        text.lines().any(|line| line.starts_with("projector_lag_records ") && line.ends_with(" 0"))
    })
    .await;

    // A rebuild deletes the read models (before the worker reports its address) and replays the
    // topic from offset 0 to the same links and stats.
    projector.terminate();
    let projector = deployment.projector_with(&["--rebuild"]);
    clicks_reach(&queries, &expected).await;
    let link = client().get(format!("{}/v1/links/launch-2026", queries.url)).send().await.expect("link");
    assert_eq!(link.status(), StatusCode::OK, "links are rebuilt too");
    // So are the directory and histories, projections with checkpoints of their own.
    eventually("the rebuilt directory lists every link", Duration::from_secs(30), async || {
        let page = client().get(format!("{}/v1/links?limit=100", queries.url)).send().await.expect("list");
        let page: Value = page.json().await.expect("json");
        page["items"].as_array().is_some_and(|items| items.len() == 11) && page["next_cursor"].is_null()
    })
    .await;
    let history = client().get(format!("{}/v1/links/launch-2026/history", queries.url)).send().await.expect("history");
    let history: Value = history.json().await.expect("json");
    assert_eq!(history["items"][0]["event"], "created");
    assert_eq!(history["items"][0]["changes"]["target_url"], "https://example.com/alias");

    // Changes reach the query side's in-process cache within a second.
    let (code, _) = &expected[3];
    let moved = client()
        .patch(format!("{}/v1/links/{code}", commands.url))
        .json(&json!({ "target_url": "https://moved.example/" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(moved.status(), StatusCode::OK);
    eventually("the update reaches the query side", Duration::from_secs(1), async || {
        redirect(&queries, code).await.1.as_deref() == Some("https://moved.example/")
    })
    .await;
    let deleted = client().delete(format!("{}/v1/links/{code}", commands.url)).send().await.expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    eventually("the deletion reaches the query side", Duration::from_secs(1), async || {
        redirect(&queries, code).await.0 == StatusCode::GONE
    })
    .await;

    for service in [queries, commands, projector] {
        service.terminate();
    }
}

/// Redirect traffic that runs until stopped, counting the redirects served per code.
struct Traffic {
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<BTreeMap<String, u64>>>,
}

impl Traffic {
    fn start(queries: &Service, codes: &[String]) -> Self {
        let (served, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let workers = (0..4)
            .map(|worker| {
                let (url, codes) = (queries.url.clone(), codes.to_vec());
                let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
                tokio::spawn(async move {
                    let client = client();
                    let mut counts = BTreeMap::new();
                    for code in codes.iter().cycle().skip(worker) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let response = client.get(format!("{url}/{code}")).send().await.expect("redirect");
                        assert_eq!(response.status(), StatusCode::FOUND, "redirects keep working");
                        *counts.entry(code.clone()).or_default() += 1;
                        served.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    counts
                })
            })
            .collect();
        Self { served, stop, workers }
    }

    /// Returns once `more` further redirects were served.
    async fn serve(&self, more: u64) {
        let target = self.served.load(Ordering::SeqCst) + more;
        eventually("redirect traffic moves on", Duration::from_mins(1), async || {
            self.served.load(Ordering::SeqCst) >= target
        })
        .await;
    }

    async fn finish(self) -> Vec<(String, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        for worker in self.workers {
            for (code, count) in worker.await.expect("traffic worker") {
                *total.entry(code).or_default() += count;
            }
        }
        total.into_iter().collect()
    }
}

async fn some_links(commands: &Service, count: usize) -> Vec<String> {
    let mut codes = Vec::new();
    for i in 0..count {
        let link = create(commands, json!({ "target_url": format!("https://example.com/{i}") })).await;
        codes.push(link["code"].as_str().expect("code").to_owned());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_and_restarted_counts_every_click_once() {
    let deployment = deployment!();
    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 8).await;

    let traffic = Traffic::start(&queries, &codes);
    traffic.serve(400).await;
    projector.kill_9();
    traffic.serve(400).await;
    let projector = deployment.projector();
    traffic.serve(400).await;
    let served = traffic.finish().await;

    clicks_reach(&queries, &served).await;
    for service in [queries, commands, projector] {
        service.terminate();
    }
}

/// A read store written by a build of another layout (its day rows unreadable to this one): the
/// projector folds it again from the log rather than failing to decode it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_store_of_another_layout_is_rebuilt_from_the_log() {
    let deployment = deployment!();
    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 3).await;
    let traffic = Traffic::start(&queries, &codes);
    traffic.serve(60).await;
    let served = traffic.finish().await;
    clicks_reach(&queries, &served).await;
    assert_eq!(deployment.redis.get("layout"), Some(kurz_redis::READ_LAYOUT.to_string()), "a new store is marked");
    projector.terminate();

    // What a build of another layout leaves: its mark, and day rows this build cannot read.
    deployment.redis.set("layout", "99");
    let damaged: usize =
        codes.iter().map(|code| deployment.redis.overwrite_hash(&format!("days:{code}"), &[0xff; 3])).sum();
    assert!(damaged > 0, "the clicks' day rows were there to damage");
    let stats = client().get(format!("{}/v1/links/{}/stats", queries.url, codes[0])).send().await.expect("stats");
    assert_eq!(stats.status(), StatusCode::SERVICE_UNAVAILABLE, "rows of another layout do not read");

    let projector = deployment.projector();
    clicks_reach(&queries, &served).await;
    assert_eq!(deployment.redis.get("layout"), Some(kurz_redis::READ_LAYOUT.to_string()));
    for service in [queries, commands, projector] {
        service.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_one_killed_the_survivor_takes_over_and_counts_every_click_once() {
    let deployment = deployment!();
    let first = deployment.projector();
    let second = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 8).await;

    let traffic = Traffic::start(&queries, &codes);
    traffic.serve(400).await;
    first.kill_9();
    traffic.serve(800).await;
    let served = traffic.finish().await;

    // The survivor gets the dead one's partitions once the group notices (session timeout).
    clicks_reach(&queries, &served).await;
    for service in [queries, commands, second] {
        service.terminate();
    }
}

/// A broker of this test's own (tansu from `KURZ_TEST_TANSU_BIN`), reachable only through a proxy
/// that can take it away; killed when dropped.
struct OwnBroker {
    process: std::process::Child,
    proxy: BrokerProxy,
}

impl OwnBroker {
    async fn start() -> Option<Self> {
        let upstream = free_address();
        let proxy = BrokerProxy::start(upstream).await;
        let process = tansu(upstream, proxy.address).await?;
        Some(Self { process, proxy })
    }
}

fn free_address() -> std::net::SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port();
    ([127, 0, 0, 1], port).into()
}

/// A tansu broker of the test's own (`KURZ_TEST_TANSU_BIN`) on `listen`, telling clients to
/// connect to `advertised`; listening when this returns.
async fn tansu(listen: std::net::SocketAddr, advertised: std::net::SocketAddr) -> Option<std::process::Child> {
    let Ok(tansu) = std::env::var("KURZ_TEST_TANSU_BIN") else {
        let hint = "set KURZ_TEST_TANSU_BIN, or run scripts/test.sh";
        kurz_ports::conformance::skip("no tansu binary of its own", hint, false);
        return None;
    };
    let process = std::process::Command::new(tansu)
        .args(["broker", "--listener-url", &format!("tcp://{listen}")])
        .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu starts");
    eventually("the broker listens", Duration::from_secs(10), async || {
        tokio::net::TcpStream::connect(listen).await.is_ok()
    })
    .await;
    Some(process)
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn metric(service: &Service, name: &str) -> f64 {
    let text =
        client().get(format!("{}/metrics", service.url)).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|line| line.split([' ', '{']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_broker_is_away_redirects_go_on_and_their_clicks_wait_in_the_spool() {
    let Some(broker) = OwnBroker::start().await else { return };
    let Some(redis) = redis_or_skip() else { return };
    let deployment = Deployment::new(broker.proxy.address.to_string(), redis).await;
    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 8).await;

    let traffic = Traffic::start(&queries, &codes);
    traffic.serve(300).await;
    broker.proxy.take_down().await;
    traffic.serve(300).await;
    eventually("clicks wait in the spool while the broker is away", Duration::from_mins(1), async || {
        metric(&queries, "click_spool_clicks").await > 0.0
    })
    .await;
    eventually("appends fail once the delivery timeout passes", Duration::from_mins(1), async || {
        metric(&queries, "click_append_failures_total").await > 0.0
    })
    .await;
    traffic.serve(300).await;
    broker.proxy.bring_up();
    traffic.serve(300).await;
    let served = traffic.finish().await;

    clicks_reach(&queries, &served).await;
    eventually("the spool is empty again", Duration::from_secs(10), async || {
        metric(&queries, "click_spool_clicks").await == 0.0
    })
    .await;
    for service in [queries, commands, projector] {
        service.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_is_claimed_once_under_1000_concurrent_creates_across_two_command_apis() {
    let deployment = deployment!();
    let (first, second) = (deployment.command_api(), deployment.command_api());
    let client = client();
    let creates: Vec<_> = (0..1000)
        .map(|i| {
            let url = format!("{}/v1/links", if i % 2 == 0 { &first.url } else { &second.url });
            let body = json!({ "target_url": format!("https://example.com/{i}"), "alias": "one-winner" });
            let client = client.clone();
            tokio::spawn(async move { client.post(url).json(&body).send().await.expect("create").status() })
        })
        .collect();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    for create in creates {
        *statuses.entry(create.await.expect("task").as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(201, 1), (409, 999)]));
    first.terminate();
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_instance_within_a_second() {
    let deployment = deployment!();
    let commands = [deployment.command_api(), deployment.command_api()];
    let queries = [deployment.query_api(), deployment.query_api()];
    let made = client()
        .post(format!("{}/v1/keys", commands[0].url))
        .json(&json!({"owner": "alice", "role": "user"}))
        .send()
        .await
        .expect("key created");
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.expect("json");
    let (id, key) = (made["id"].as_str().expect("id").to_owned(), made["key"].as_str().expect("key").to_owned());
    let bare = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let link = bare
        .post(format!("{}/v1/links", commands[1].url))
        .bearer_auth(&key)
        .json(&json!({"target_url": "https://example.com/alice", "alias": "alices-link"}))
        .send()
        .await
        .expect("create");
    assert_eq!(link.status(), StatusCode::CREATED);
    // Every instance has checked the key (and keeps what it read for a moment).
    let status_on = async |service: &Service| {
        let write = service.name == "command-api";
        let request = if write {
            bare.patch(format!("{}/v1/links/alices-link", service.url)).json(&json!({"tags": ["x"]}))
        } else {
            bare.get(format!("{}/v1/links/alices-link", service.url))
        };
        request.bearer_auth(&key).send().await.expect("request").status()
    };
    for service in commands.iter().chain(&queries) {
        assert_eq!(status_on(service).await, StatusCode::OK, "{} accepts the key", service.name);
    }
    let revoked = client().delete(format!("{}/v1/keys/{id}", commands[1].url)).send().await.expect("revoke");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let answered = Instant::now();
    for service in commands.iter().chain(&queries) {
        eventually("every instance refuses the revoked key", Duration::from_secs(1), async || {
            status_on(service).await == StatusCode::UNAUTHORIZED
        })
        .await;
    }
    assert!(answered.elapsed() < Duration::from_secs(1), "{:?}", answered.elapsed());
    let [first, second] = commands;
    let [third, fourth] = queries;
    for service in [first, second, third, fourth] {
        service.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_link_stops_redirecting_on_every_query_api_within_a_second() {
    let deployment = deployment!();
    let commands = deployment.command_api();
    let queries = [deployment.query_api(), deployment.query_api()];
    let link = create(&commands, json!({ "target_url": "https://example.com/soon-gone" })).await;
    let code = link["code"].as_str().expect("code");
    for query in &queries {
        // Twice: the second answer comes from the instance's in-process cache.
        for _ in 0..2 {
            assert_eq!(redirect(query, code).await.0, StatusCode::FOUND);
        }
    }
    let deleted = client().delete(format!("{}/v1/links/{code}", commands.url)).send().await.expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let answered = Instant::now();
    for query in &queries {
        eventually("the deletion reaches every query-api instance", Duration::from_secs(1), async || {
            redirect(query, code).await.0 == StatusCode::GONE
        })
        .await;
    }
    assert!(answered.elapsed() < Duration::from_secs(1));
    let [first, second] = queries;
    for service in [first, second, commands] {
        service.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clicks_is_exact_across_two_query_apis() {
    let deployment = deployment!();
    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = [deployment.query_api(), deployment.query_api()];
    let link = create(&commands, json!({ "target_url": "https://example.com/limited", "max_clicks": 50 })).await;
    let code = link["code"].as_str().expect("code").to_owned();
    let redirects: Vec<_> = (0..200)
        .map(|i| {
            let url = format!("{}/{code}", queries[i % 2].url);
            tokio::spawn(async move { client().get(url).send().await.expect("redirect").status().as_u16() })
        })
        .collect();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    for redirect in redirects {
        *statuses.entry(redirect.await.expect("task")).or_default() += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(302, 50), (410, 150)]));
    clicks_reach(&queries[0], &[(code.clone(), 50)]).await;
    // The overview sums the link's day rows; the 150 refusals are orphan visits, counted by each
    // instance and added up in Redis.
    eventually("the overview counts the link's clicks", Duration::from_secs(10), async || {
        let overview = client().get(format!("{}/v1/stats", queries[1].url)).send().await.expect("stats");
        let overview: Value = overview.json().await.expect("json");
        overview["top_links"][0] == json!({"code": code, "clicks": 50})
    })
    .await;
    eventually("both instances' orphan visits are stored", Duration::from_secs(10), async || {
        let orphans = client().get(format!("{}/v1/orphan-visits", queries[0].url)).send().await.expect("orphans");
        let orphans: Value = orphans.json().await.expect("json");
        orphans["codes"][0] == json!({"name": code, "visits": 150})
            && orphans["reasons"] == json!([{"name": "exhausted", "visits": 150}])
    })
    .await;
    let [first, second] = queries;
    for service in [first, second, commands, projector] {
        service.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_are_cached_negatively() {
    let mut deployment = deployment!();
    // 1000 lookups of unknown codes from one address: far over the enumeration limit.
    deployment.api_settings.push(("KURZ_LIMITS__UNKNOWN_CODES_PER_ADDRESS_PER_MINUTE", "0".into()));
    let queries = deployment.query_api();
    for _ in 0..20 {
        for i in 0..50 {
            assert_eq!(redirect(&queries, &format!("nothing-{i}")).await.0, StatusCode::NOT_FOUND);
        }
    }
    let lookups = |result: &'static str| {
        let queries = &queries;
        async move {
            let text = client().get(format!("{}/metrics", queries.url)).send().await.expect("metrics");
            let text = text.text().await.expect("text");
            let line = text
                .lines()
                .find(|line| line.starts_with(&format!("link_cache_total{{result=\"{result}\"}}")))
                .map(str::to_owned);
            line.and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or_default()
        }
    };
    assert_eq!(lookups("miss").await, 50, "each unknown code reached the store once");
    assert_eq!(lookups("hit").await, 950);
    queries.terminate();
}

/// A redis-server of this test's own, to take away; killed when dropped.
struct OwnRedis {
    process: std::process::Child,
    url: String,
}

impl OwnRedis {
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port();
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(process) = spawned else {
            kurz_ports::conformance::skip("no redis-server of its own", "install Debian's redis-server", false);
            return None;
        };
        eventually("the Redis listens", Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        Some(Self { process, url: format!("redis://127.0.0.1:{port}") })
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_services_redis_down_redirects_stay_3xx() {
    let mut deployment = deployment!();
    let Some(service_redis) = OwnRedis::start().await else { return };
    deployment.service_redis = Some(service_redis.url.clone());
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 6).await;
    // Half of the links in the query side's in-process cache, half only in the store.
    for code in &codes[..3] {
        assert_eq!(redirect(&queries, code).await.0, StatusCode::FOUND);
    }

    drop(service_redis);
    for _ in 0..3 {
        for code in &codes {
            assert_eq!(redirect(&queries, code).await.0, StatusCode::FOUND, "{code} redirects without Redis");
        }
        assert_eq!(redirect(&queries, "never-created").await.0, StatusCode::NOT_FOUND);
    }
    assert!(metric(&queries, "link_cache_redis_errors_total").await > 0.0, "the cache outage was felt");
    for service in [queries, commands] {
        service.terminate();
    }
}

/// The environment each deploy file gives each service, from the files themselves (see
/// `deploy/helm/checks/service_env.py`): `{"compose": {service: {variable: value}}, "helm": …}`.
fn deploy_environments() -> Option<Value> {
    let Some(python) = std::env::var_os("KURZ_TEST_DEPLOY_PYTHON") else {
        kurz_ports::conformance::skip(
            "no Python with helm-python-sdk and PyYAML",
            "set KURZ_TEST_DEPLOY_PYTHON, or run scripts/test.sh",
            false,
        );
        return None;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new(python)
        .arg(format!("{root}/deploy/helm/checks/service_env.py"))
        .arg(root)
        .output()
        .expect("the script runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("json"))
}

/// Every binary starts, and gets ready, with exactly the environment compose gives it and the one
/// the Helm chart renders for it (plus, for the chart, the service-link variables Kubernetes injects
/// into every pod of a release named `kurz`). Only what points at infrastructure is replaced by the
/// test's broker, registry, Redis and files; every other variable is the deploy file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_files_environments_start_every_service() {
    let deployment = deployment!();
    let Some(environments) = deploy_environments() else { return };
    let dir = deployment.dir.path();
    let service_links = [
        ("KURZ_COMMAND_API_SERVICE_HOST", "10.0.0.11"),
        ("KURZ_COMMAND_API_SERVICE_PORT", "80"),
        ("KURZ_COMMAND_API_PORT", "tcp://10.0.0.11:80"),
        ("KURZ_QUERY_API_SERVICE_HOST", "10.0.0.12"),
        ("KURZ_QUERY_API_SERVICE_PORT_HTTP", "80"),
        ("KURZ_QUERY_API_PORT_80_TCP_ADDR", "10.0.0.12"),
        ("KURZ_PROJECTOR_SERVICE_HOST", "10.0.0.13"),
    ];
    for source in ["compose", "helm"] {
        let topic = kurz_kafka::testing::unique_name(&format!("deploy-{source}"));
        let mut services = Vec::new();
        for name in ["command-api", "query-api", "projector"] {
            let given = environments[source][name].as_object().unwrap_or_else(|| panic!("{source} has {name}"));
            let mut variables: BTreeMap<String, String> =
                given.iter().map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned())).collect();
            if name != "projector" {
                for file in ["KURZ_SECRET_KEY_FILE", "KURZ_AUTH__BOOTSTRAP_KEY_FILE"] {
                    assert!(variables.contains_key(file), "{source} gives {name} {file}");
                }
            }
            let local = |file: &str| dir.join(file).to_string_lossy().into_owned();
            let spool = dir.join(format!("spool-{source}"));
            for (key, value) in [
                ("KURZ_HTTP__LISTEN", "127.0.0.1:0".to_owned()),
                ("KURZ_KAFKA__BROKERS", deployment.brokers.clone()),
                ("KURZ_KAFKA__SCHEMA_REGISTRY_URL", deployment.registry.url()),
                ("KURZ_KAFKA__TOPIC", topic.clone()),
                // One test broker: a topic with more replicas cannot be created.
                ("KURZ_KAFKA__REPLICATION_FACTOR", "1".to_owned()),
                ("KURZ_REDIS__URL", deployment.redis.config.url.clone()),
                ("KURZ_REDIS__KEY_PREFIX", format!("{}{source}:", deployment.redis.config.key_prefix)),
                ("KURZ_LOG__FORMAT", "json".to_owned()),
            ] {
                variables.insert(key.to_owned(), value);
            }
            for (key, file) in [("KURZ_SECRET_KEY_FILE", "secret.key"), ("KURZ_AUTH__BOOTSTRAP_KEY_FILE", "admin.key")]
            {
                if variables.contains_key(key) {
                    variables.insert(key.to_owned(), local(file));
                }
            }
            if variables.contains_key("KURZ_CLICKS__SPOOL_DIR") {
                variables.insert("KURZ_CLICKS__SPOOL_DIR".to_owned(), spool.to_string_lossy().into_owned());
            }
            if source == "helm" {
                variables.extend(service_links.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            }
            let variables: Vec<(String, String)> = variables.into_iter().collect();
            services.push(Service::start_with_exactly(name, &[], &variables, true));
        }
        for service in &services {
            eventually(&format!("{} from {source} gets ready", service.name), Duration::from_mins(1), async || {
                let ready = client().get(format!("{}/ready", service.url)).send().await;
                ready.is_ok_and(|r| r.status() == StatusCode::OK)
            })
            .await;
        }
        for service in services {
            service.terminate();
        }
    }
}

/// Every backend behind TLS and credentials, as managed services offer them: the broker over TLS
/// (librdkafka's `security.protocol=SSL`, checking the broker's certificate against a CA of our
/// own), Redis over TLS with a client certificate (the services' Redis and the read store), and a
/// schema registry that asks for basic authentication. Links are created, redirected and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_over_tls_and_with_credentials() {
    let Some(tls_redis) = kurz_redis::testing::TlsRedis::start_or_skip() else { return };
    let certificates = &tls_redis.certificates;
    let upstream = free_address();
    let terminator =
        tls_proxy::TlsTerminator::start(&certificates.server_cert, &certificates.server_key, upstream).await;
    let Some(mut broker) = tansu(upstream, terminator.address).await else { return };
    let registry = kurz_registry_standin::RegistryStandIn::start_with_basic_auth("kurz", "registry-secret")
        .await
        .expect("registry stand-in starts");

    let redis = kurz_redis::testing::TestRedis { config: tls_redis.config() };
    let mut deployment = Deployment::with_registry(terminator.address.to_string(), redis, registry);
    let file = |path: &std::path::Path| path.to_str().expect("utf-8 path").to_owned();
    deployment.settings = vec![
        ("KURZ_KAFKA__CLIENT__SECURITY_PROTOCOL", "SSL".into()),
        ("KURZ_KAFKA__CLIENT__SSL_CA_LOCATION", file(&certificates.ca)),
        ("KURZ_KAFKA__SCHEMA_REGISTRY_USERNAME", "kurz".into()),
        ("KURZ_KAFKA__SCHEMA_REGISTRY_PASSWORD", "registry-secret".into()),
    ];
    // The services' Redis and the read store's are the same TLS Redis here.
    deployment.settings.extend([
        ("KURZ_REDIS__TLS_CA_FILE", file(&certificates.ca)),
        ("KURZ_REDIS__TLS_CERT_FILE", file(&certificates.client_cert)),
        ("KURZ_REDIS__TLS_KEY_FILE", file(&certificates.client_key)),
        ("KURZ_READ_STORE__REDIS__TLS_CA_FILE", file(&certificates.ca)),
        ("KURZ_READ_STORE__REDIS__TLS_CERT_FILE", file(&certificates.client_cert)),
        ("KURZ_READ_STORE__REDIS__TLS_KEY_FILE", file(&certificates.client_key)),
    ]);

    let projector = deployment.projector();
    let commands = deployment.command_api();
    let queries = deployment.query_api();
    let codes = some_links(&commands, 3).await;
    let mut expected = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        assert_eq!(redirect(&queries, code).await, (StatusCode::FOUND, Some(format!("https://example.com/{i}"))));
        expected.push((code.clone(), 1));
    }
    clicks_reach(&queries, &expected).await;

    for service in [queries, commands, projector] {
        service.terminate();
    }
    let _ = broker.kill();
    let _ = broker.wait();
}

/// An `Idempotency-Key` holds across command-api instances: a retry sent to another instance
/// answers the first 201 (same code), and the key with another request is refused there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_on_another_instance_answers_the_same_link() {
    let deployment = deployment!();
    let projector = deployment.projector();
    let first = deployment.command_api();
    let second = deployment.command_api();
    let body = json!({"target_url": "https://example.com/order/7"});
    let send = async |service: &Service, body: &Value| {
        client()
            .post(format!("{}/v1/links", service.url))
            .header("idempotency-key", "order-7")
            .json(body)
            .send()
            .await
            .expect("answered")
    };
    let created = send(&first, &body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.expect("json");
    let retried = send(&second, &body).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    assert_eq!(retried.json::<Value>().await.expect("json")["code"], created["code"]);
    let other = send(&second, &json!({"target_url": "https://example.com/order/8"})).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for service in [first, second, projector] {
        service.terminate();
    }
}

/// The value of `name="csrf"` in a page's first form.
fn form_token(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a form with a token") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().expect("closing quote").to_owned()
}

/// The `name=value` of each `Set-Cookie`, as a `Cookie` header.
fn cookies_of(response: &reqwest::Response) -> String {
    let pairs = response.headers().get_all(reqwest::header::SET_COOKIE).iter().filter_map(|value| {
        let pair = value.to_str().ok()?.split(';').next()?;
        (!pair.ends_with('=')).then(|| pair.to_owned())
    });
    pairs.collect::<Vec<_>>().join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_api_serves_the_web_ui_with_its_reads_from_the_query_api() {
    let mut deployment = deployment!();
    let queries = deployment.query_api();
    let _projector = deployment.projector();
    deployment.api_settings.push(("KURZ_UI__QUERY_API_URL", queries.url.clone()));
    let commands = deployment.command_api();
    let browser = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    let form = browser.get(format!("{}/ui/sign-in", commands.url)).send().await.expect("sign-in page");
    assert_eq!(form.status(), StatusCode::OK);
    let pre_session = cookies_of(&form);
    let token = form_token(&form.text().await.expect("page"));
    let signed_in = browser
        .post(format!("{}/ui/sign-in", commands.url))
        .header("cookie", pre_session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}&csrf={token}", services::ADMIN_KEY))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the key was checked through the query API");
    let session = cookies_of(&signed_in);
    let page = async |path: &str| {
        let response =
            browser.get(format!("{}{path}", commands.url)).header("cookie", &session).send().await.expect("page");
        (response.status(), response.text().await.expect("body"))
    };
    let token = form_token(&page("/ui/links").await.1);
    let created = browser
        .post(format!("{}/ui/links", commands.url))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&target_url=https%3A%2F%2Fexample.com%2Fui&alias=via-ui"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::SEE_OTHER, "created in-process by the command API");
    assert_eq!(redirect(&queries, "via-ui").await.0, StatusCode::FOUND);
    // The list is the query API's, from the projected directory.
    eventually("the new link in the UI's list", Duration::from_secs(30), async || {
        page("/ui/links").await.1.contains("/ui/links/via-ui")
    })
    .await;
    let (status, link) = page("/ui/links/via-ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(link.contains("https://example.com/ui"), "{link}");
    let qr = browser
        .get(format!("{}/ui/links/via-ui/qr?format=svg", commands.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("qr");
    assert_eq!(qr.status(), StatusCode::OK);
    assert!(qr.headers()["content-type"].to_str().expect("ascii").starts_with("image/svg+xml"));
    let (status, stats_page) = page("/ui/links/via-ui/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats_page}");
    assert_eq!(page("/ui/keys").await.0, StatusCode::OK, "keys are the command API's own");
    commands.terminate();
    queries.terminate();
}

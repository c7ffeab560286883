//! `kill -9` loses no link whose create was answered 201, and no served click of a limited link:
//! the real binary, killed mid-traffic.

mod common;

use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

fn start_kurz(data_dir: &Path) -> (Child, String) {
    let common::RunningKurz { child, base, .. } = common::start_kurz_binary(data_dir, &[]);
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut kurz, base) = start_kurz(dir.path());
    let key = std::fs::read_to_string(dir.path().join("admin.key")).expect("admin key").trim().to_owned();
    let client = common::client();
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (client, base, acknowledged, killed, key) =
                (client.clone(), base.clone(), acknowledged.clone(), killed.clone(), key.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let target = format!("https://example.com/{writer}/{i}");
                    let body = json!({"target_url": target});
                    let Ok(response) =
                        client.post(format!("{base}/v1/links")).bearer_auth(&key).json(&body).send().await
                    else {
                        break;
                    };
                    if response.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(link) = response.json::<Value>().await else { break };
                    acknowledged.lock().await.push((link["code"].as_str().expect("code").to_owned(), target));
                }
            })
        })
        .collect();
    // Kill while creates are in flight, once a good number has been acknowledged.
    while acknowledged.lock().await.len() < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kurz.kill().expect("SIGKILL");
    killed.store(true, Ordering::SeqCst);
    kurz.wait().expect("reaped");
    for writer in writers {
        writer.await.expect("writer");
    }

    let (mut kurz, base) = start_kurz(dir.path());
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= 200);
    for (code, target) in &acknowledged {
        let response = client.get(format!("{base}/{code}")).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::FOUND, "{code} was answered 201 but is lost");
        assert_eq!(response.headers()["location"], target.as_str());
    }
    kurz.kill().expect("stopped");
    kurz.wait().expect("reaped");
}

/// Redirects served, per link.
type Served = Arc<Vec<AtomicU64>>;

fn total(served: &[AtomicU64]) -> u64 {
    served.iter().map(|s| s.load(Ordering::SeqCst)).sum()
}

/// `visitors` clients redirecting over `codes` in turn, counting 302s in `served`, until `killed`.
fn visit_until_killed(
    base: &str,
    codes: &[String],
    visitors: usize,
    served: &Served,
    killed: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..visitors)
        .map(|visitor| {
            let (client, base, codes, served, killed) =
                (common::client(), base.to_owned(), codes.to_vec(), served.clone(), killed.clone());
            tokio::spawn(async move {
                for i in visitor.. {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let link = i % codes.len();
                    let Ok(response) = client.get(format!("{base}/{}", codes[link])).send().await else { break };
                    if response.status() == StatusCode::FOUND {
                        served[link].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect()
}

/// Each link's `total_clicks`, once the projector shows at least the clicks served (within 30 s).
async fn counted_once_caught_up(base: &str, key: &str, codes: &[String], served: &[u64]) -> Vec<u64> {
    let client = common::client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut counted = Vec::new();
        for code in codes {
            let stats = client.get(format!("{base}/v1/links/{code}/stats")).bearer_auth(key).send().await;
            let stats: Value = stats.expect("stats").json().await.expect("json");
            counted.push(stats["total_clicks"].as_u64().expect("total_clicks"));
        }
        if counted.iter().zip(served).all(|(counted, served)| counted >= served) {
            return counted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "served clicks of limited links went uncounted: served {served:?}, counted {counted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A redirect of a link with `max_clicks` is answered only once its click is durable, in the same
/// commit as the take of its quota: after `kill -9` mid-traffic and a restart, every redirect served
/// was counted and every click taken is counted. The only slack is the requests in flight at the
/// kill (taken and counted, never answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_leaves_no_served_click_of_a_limited_link_uncounted() {
    const LINKS: usize = 6;
    const MAX_CLICKS: u64 = 300;
    const VISITORS: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut kurz, base) = start_kurz(dir.path());
    let key = std::fs::read_to_string(dir.path().join("admin.key")).expect("admin key").trim().to_owned();
    let client = common::client();
    let mut codes = Vec::new();
    for i in 0..LINKS {
        let body = json!({"target_url": format!("https://example.com/limited/{i}"), "max_clicks": MAX_CLICKS});
        let response =
            client.post(format!("{base}/v1/links")).bearer_auth(&key).json(&body).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        let link: Value = response.json().await.expect("json");
        codes.push(link["code"].as_str().expect("code").to_owned());
    }

    let served: Served = Arc::new((0..LINKS).map(|_| AtomicU64::default()).collect());
    let killed = Arc::new(AtomicBool::new(false));
    let visitors = visit_until_killed(&base, &codes, VISITORS, &served, &killed);
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while total(&served) < 600 {
        assert!(tokio::time::Instant::now() < deadline, "redirects were served too slowly: {}", total(&served));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kurz.kill().expect("SIGKILL");
    killed.store(true, Ordering::SeqCst);
    kurz.wait().expect("reaped");
    for visitor in visitors {
        visitor.await.expect("visitor");
    }

    // After the restart, each link is visited until it is used up.
    let (mut kurz, base) = start_kurz(dir.path());
    for (link, code) in codes.iter().enumerate() {
        loop {
            let response = client.get(format!("{base}/{code}")).send().await.expect("request");
            match response.status() {
                StatusCode::FOUND => served[link].fetch_add(1, Ordering::SeqCst),
                StatusCode::GONE => break,
                other => panic!("{code}: {other}"),
            };
        }
    }
    let served: Vec<u64> = served.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    let counted = counted_once_caught_up(&base, &key, &codes, &served).await;
    let (served_total, counted_total) = (served.iter().sum::<u64>(), counted.iter().sum::<u64>());
    // A take and its click are one commit: every used-up link counts exactly its clicks.
    assert_eq!(counted, vec![MAX_CLICKS; LINKS], "served {served:?}");
    // Each visitor had at most one request in flight at the kill: taken and counted, not answered.
    let in_flight = VISITORS as u64;
    assert!(
        counted_total - served_total <= in_flight,
        "counted {counted:?} vs served {served:?}: more than the requests in flight"
    );
    kurz.kill().expect("stopped");
    kurz.wait().expect("reaped");
}

//! `kill -9` loses no link whose create was answered 201: the real binary, killed mid-traffic.

mod common;

use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

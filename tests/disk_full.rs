//! A full disk: writes that cannot be made answer 503 problems and `/ready` turns 503; when space
//! comes back Kurz recovers by itself (redb's files are reopened), and after a restart every link
//! that was answered 201 is there. On a size-limited tmpfs the test mounts (it needs root, as the
//! tests have here and in CI; elsewhere it says SKIPPED by name).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestApp, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;

/// A tmpfs of `megabytes`, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if mounted {
            Some(Self { dir })
        } else {
            kurz_ports::conformance::skip("cannot mount a tmpfs", "run the tests as root", false);
            None
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

async fn create(app: &TestApp, i: usize) -> reqwest::Response {
    // Each link is ~7 KB in each of the log, the store, the directory and the history.
    let target = format!("https://example.com/{i}/{}", "x".repeat(7000));
    app.post_json("/v1/links", &json!({"target_url": target})).await
}

async fn ready(app: &TestApp) -> StatusCode {
    app.client.get(app.url("/ready")).send().await.expect("answered").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_kurz_recovers_when_space_comes_back() {
    let Some(disk) = SmallDisk::mount(24) else { return };
    // Room that the test gives back later, as an operator freeing space would.
    let reserve = disk.path().join("reserve");
    std::fs::write(&reserve, vec![0_u8; 10 << 20]).expect("reserve");
    let data: PathBuf = disk.path().join("data");
    let settings = |config: &mut kurz::Config| {
        config.storage.min_free_bytes = 1 << 20;
        config.limits.writes_per_key_per_second = 1_000_000;
    };
    let app = spawn_app_with(&data, settings).await;
    assert_eq!(ready(&app).await, StatusCode::OK);

    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..5_000 {
        let response = create(&app, i).await;
        if response.status() == StatusCode::CREATED {
            acknowledged.push(response.json::<serde_json::Value>().await.expect("json")["code"].clone());
        } else {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the disk filled up");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert!(acknowledged.len() > 20, "only {} links before the disk was full", acknowledged.len());
    assert_eq!(ready(&app).await, StatusCode::SERVICE_UNAVAILABLE, "/ready sees the full disk");

    std::fs::remove_file(&reserve).expect("space given back");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 10_000;
    loop {
        let response = create(&app, i).await;
        if response.status() == StatusCode::CREATED {
            acknowledged.push(response.json::<serde_json::Value>().await.expect("json")["code"].clone());
            break;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "creates work again within 20 s of space coming back");
        tokio::time::sleep(Duration::from_millis(100)).await;
        i += 1;
    }
    while ready(&app).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "/ready is 200 again within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settled().await;
    app.stop().await;

    let app = spawn_app_with(&data, settings).await;
    app.settled().await;
    for code in &acknowledged {
        let code = code.as_str().expect("code");
        assert_eq!(app.get(&format!("/v1/links/{code}")).await.status(), StatusCode::OK, "{code} kept");
    }
    app.stop().await;
}

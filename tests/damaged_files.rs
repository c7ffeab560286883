//! Files damaged on disk (a torn tail, say): a read model is moved aside and rebuilt from the log
//! with nothing lost; a file that is not derived (the log, the keys) is never rewritten, and Kurz
//! refuses to start with a line that says what to do.

mod common;

use std::path::Path;

use common::{spawn_app_in, spawn_app_with};
use kurz::{Application, Config};
use serde_json::json;

/// Cuts `bytes` off the end of `file`, as a torn write or a short copy would.
fn truncate(file: &Path, bytes: u64) {
    let length = std::fs::metadata(file).expect("file").len();
    std::fs::OpenOptions::new().write(true).open(file).expect("open").set_len(length - bytes).expect("truncate");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test]
async fn damaged_read_models_are_rebuilt_and_a_damaged_log_refuses_to_start() {
    let original = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(original.path()).await;
    let mut codes = Vec::new();
    for i in 0..30 {
        codes.push(app.create_to(&format!("https://example.com/{i}")).await);
    }
    app.settled().await;
    app.stop().await;

    // Every read model torn at once: Kurz starts, moves them aside, and folds the log again. The
    // orphan visits are not derived: they start afresh.
    let damaged = tempfile::tempdir().expect("temp dir");
    copy_dir(original.path(), damaged.path());
    for name in ["store.redb", "directory.redb", "history.redb", "orphans.redb"] {
        truncate(&damaged.path().join(name), 4096);
    }
    let app = spawn_app_in(damaged.path()).await;
    app.settled().await;
    for code in &codes {
        assert_eq!(app.get(&format!("/v1/links/{code}")).await.status(), 200, "{code} survived");
    }
    let listed: serde_json::Value = app.get("/v1/links?limit=100").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), codes.len());
    let history: serde_json::Value =
        app.get(&format!("/v1/links/{}/history", codes[0])).await.json().await.expect("json");
    assert_eq!(history["items"][0]["event"], json!("created"));
    for name in ["store.redb", "directory.redb", "history.redb", "orphans.redb"] {
        assert!(damaged.path().join(format!("{name}.damaged")).exists(), "{name} kept aside for a person");
    }
    app.stop().await;

    // The log and the keys are the truth: never rewritten, and the refusal says what to do.
    for name in ["events.redb", "keys.redb"] {
        let torn = tempfile::tempdir().expect("temp dir");
        copy_dir(original.path(), torn.path());
        truncate(&torn.path().join(name), 4096);
        let before = std::fs::read(torn.path().join(name)).expect("read");
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().expect("address");
        config.storage.data_dir = torn.path().to_path_buf();
        config.storage.partitions = 4;
        let Err(refused) = Application::build(config).await else { panic!("{name}: started on a damaged file") };
        let message = format!("{refused:#}");
        assert!(message.contains(name) && message.contains("restore it from a backup"), "{message}");
        assert_eq!(std::fs::read(torn.path().join(name)).expect("read"), before, "{name} left as it was");
    }
    // The original, untouched, still serves everything.
    let app = spawn_app_with(original.path(), |_| {}).await;
    assert_eq!(app.get(&format!("/v1/links/{}", codes[29])).await.status(), 200);
    app.stop().await;
}

//! The `kurz` binary's client commands, run as a user runs them, against a spawned Kurz.

mod common;

use std::path::Path;
use std::process::Output;

use common::{TestApp, spawn_app, spawn_app_in};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs `kurz <args>` against `app` with its admin key, off the runtime's threads.
async fn kurz(app: &TestApp, args: &[&str]) -> Output {
    let mut all = vec!["--url".to_owned(), app.base.clone(), "--key".to_owned(), app.admin_key.clone()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    run(all, &[]).await
}

async fn run(args: Vec<String>, env: &[(&str, &Path)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kurz"));
    command.args(&args);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("kurz runs")).await.expect("joined")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn json_out(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("json")
}

#[tokio::test]
async fn links_are_managed_from_the_terminal() {
    let (app, _dir) = spawn_app().await;
    let created = json_out(
        &kurz(&app, &["links", "create", "https://example.com/a", "--alias", "term", "--tag", "cli", "--json"]).await,
    );
    assert_eq!((created["code"].as_str(), created["tags"].clone()), (Some("term"), json!(["cli"])));
    let shown = stdout(&kurz(&app, &["links", "get", "term"]).await);
    assert!(shown.contains("target_url       https://example.com/a"), "{shown}");

    let updated =
        json_out(&kurz(&app, &["links", "update", "term", "--target-url", "https://example.com/b", "--json"]).await);
    assert_eq!(updated["target_url"], "https://example.com/b");
    let disabled =
        json_out(&kurz(&app, &["links", "update", "term", "--disable", "--reason", "paused", "--json"]).await);
    assert_eq!((disabled["enabled"].clone(), disabled["disabled_reason"].clone()), (json!(false), json!("paused")));
    app.settled().await;

    let listed = stdout(&kurz(&app, &["links", "list", "--state", "disabled"]).await);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("CODE") && lines[0].contains("STATE"), "{listed}");
    assert!(
        lines[1].starts_with("term") && lines[1].contains("https://example.com/b") && lines[1].contains("disabled")
    );
    let page = json_out(&kurz(&app, &["links", "list", "--json"]).await);
    assert_eq!(page["items"][0]["code"], "term");

    let history = stdout(&kurz(&app, &["links", "history", "term"]).await);
    let events: Vec<&str> = history.lines().skip(1).map(|l| l.split_whitespace().nth(1).expect("event")).collect();
    assert_eq!(events, ["created", "updated", "disabled"], "{history}");
    assert!(history.contains(r#"target_url="https://example.com/b""#), "{history}");
    let stats = stdout(&kurz(&app, &["links", "stats", "term"]).await);
    assert!(stats.starts_with("term: 0 clicks"), "{stats}");
    let hourly = stdout(&kurz(&app, &["links", "stats", "term", "--interval", "hour"]).await);
    assert!(hourly.lines().nth(1).is_some_and(|header| header.starts_with("HOUR")), "{hourly}");
    let overview = stdout(&kurz(&app, &["stats", "--bots", "include"]).await);
    assert!(overview.starts_with("every owner, links 1: 0 clicks"), "{overview}");
    assert!(overview.contains("TOP LINK"), "{overview}");
    assert_eq!(app.get("/never-was").await.status(), 404);
    let orphans = stdout(&kurz(&app, &["orphans"]).await);
    assert!(orphans.contains(": 1 orphan visits") && orphans.contains("never-was"), "{orphans}");
    let alices = json_out(&kurz(&app, &["stats", "--owner", "alice", "--json"]).await);
    assert_eq!((alices["owner"].as_str(), alices["links"].as_u64()), (Some("alice"), Some(0)));

    assert_eq!(stdout(&kurz(&app, &["links", "delete", "term"]).await).trim(), "deleted term");
    let gone = kurz(&app, &["links", "get", "term"]).await;
    assert_eq!(gone.status.code(), Some(1));
    let error = String::from_utf8_lossy(&gone.stderr);
    assert!(error.starts_with("error: 410") && error.contains("has been deleted"), "{error}");

    let refused = kurz(&app, &["links", "create", "javascript:alert(1)"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("422"), "the problem's status and detail");
    let wrong_key = run(
        vec!["--url".into(), app.base.clone(), "--key".into(), "kurz_nope_nope".into(), "links".into(), "list".into()],
        &[],
    )
    .await;
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("401"));
    let usage = run(vec!["links".into(), "frobnicate".into()], &[]).await;
    assert_eq!(usage.status.code(), Some(2), "a usage error");
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked() {
    let (app, _dir) = spawn_app().await;
    let key = json_out(&kurz(&app, &["keys", "create", "--owner", "alice", "--json"]).await);
    let id = key["id"].as_str().expect("id").to_owned();
    assert_eq!(key["role"], "user");
    let listed = stdout(&kurz(&app, &["keys", "list"]).await);
    assert!(listed.lines().any(|line| line.starts_with(&id) && line.contains("alice")), "{listed}");
    assert_eq!(stdout(&kurz(&app, &["keys", "revoke", &id]).await).trim(), format!("revoked {id}"));
    let keys = json_out(&kurz(&app, &["keys", "list", "--json"]).await);
    let revoked = keys["items"].as_array().expect("items").iter().find(|k| k["id"] == id.as_str()).expect("listed");
    assert!(revoked["revoked_at"].is_string());
}

/// A link's JSON without what a server of its own gives it (its base URL, its clock).
fn portable(link: &Value) -> Value {
    let mut link = link.clone();
    for field in ["short_url", "created_at", "updated_at"] {
        link.as_object_mut().expect("object").remove(field);
    }
    link
}

async fn every_link(app: &TestApp) -> Vec<Value> {
    let output = kurz(app, &["links", "list", "--all", "--limit", "100", "--json"]).await;
    let mut links: Vec<Value> =
        stdout(&output).lines().map(|line| portable(&serde_json::from_str(line).expect("json"))).collect();
    links.sort_by(|a, b| a["code"].as_str().cmp(&b["code"].as_str()));
    links
}

#[tokio::test]
async fn export_then_import_gives_a_fresh_kurz_equal_links() {
    let (source, dir) = spawn_app().await;
    for i in 0..130 {
        let mut body =
            json!({"target_url": format!("https://example.com/{i}?a=1,b=\"2\""), "tags": [format!("t{}", i % 3)]});
        if i % 10 == 0 {
            body["metadata"] = json!({"campaign": "spring, 2026", "quote": "say \"hi\""});
            body["max_clicks"] = json!(5);
            body["expires_at"] = json!("2027-06-01T00:00:00Z");
            body["forward_query"] = json!(true);
        }
        if i % 7 == 0 {
            body["enabled"] = json!(false);
            body["disabled_reason"] = json!("paused, for now");
        }
        if i % 2 == 0 {
            body["owner"] = json!("alice");
        }
        source.create(body).await;
    }
    source.create(json!({"target_url": "https://example.com/gone", "alias": "gone"})).await;
    assert!(source.delete("/v1/links/gone").await.status().is_success());
    source.settled().await;

    for format in ["csv", "ndjson"] {
        let file = dir.path().join(format!("links.{format}"));
        let file_arg = file.to_str().expect("utf-8").to_owned();
        let exported = kurz(&source, &["export", "--format", format, "--output", &file_arg]).await;
        assert!(String::from_utf8_lossy(&exported.stderr).contains("130 links exported"), "{exported:?}");

        let target_dir = tempfile::tempdir().expect("temp dir");
        let target = spawn_app_in(target_dir.path()).await;
        let imported = kurz(&target, &["import", &file_arg, "--batch", "50"]).await;
        let summary = String::from_utf8_lossy(&imported.stderr);
        assert!(imported.status.success() && summary.contains("130 created, 0 failed"), "{summary}");
        target.settled().await;
        assert_eq!(every_link(&target).await, every_link(&source).await, "{format}");
        target.stop().await;
    }
}

#[tokio::test]
async fn rebuild_folds_the_read_models_again_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir.path()).await;
    for i in 0..20 {
        app.create(json!({"target_url": format!("https://example.com/{i}")})).await;
    }
    app.settled().await;
    let before = every_link(&app).await;
    app.stop().await;

    let env = [("KURZ_STORAGE__DATA_DIR", dir.path()), ("KURZ_STORAGE__PARTITIONS", Path::new("4"))];
    let rebuilt = run(vec!["rebuild".into()], &env).await;
    let said = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(rebuilt.status.success() && said.contains("read models rebuilt: 20 records"), "{said}");

    let app = spawn_app_in(dir.path()).await;
    assert_eq!(every_link(&app).await, before);
    app.stop().await;
}

/// Retroactive truth: events keep each click's raw agent, so a rebuild with other bot markers
/// reclassifies every click already counted.
#[tokio::test]
async fn a_rebuild_with_new_bot_markers_reclassifies_past_clicks() {
    // A QA farm's real browsers: no maintained list calls them bots.
    const QA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36 AcmeQA/7";
    const PERSON: &str =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1";
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir.path()).await;
    app.create(json!({"target_url": "https://example.com/", "alias": "tested"})).await;
    for agent in [QA, QA, QA, PERSON] {
        let response = app.client.get(app.url("/tested")).header("user-agent", agent).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    app.settled().await;
    let before = app.stats("tested").await;
    assert_eq!((before["total_clicks"].as_u64(), before["bot_clicks"].as_u64()), (Some(4), Some(0)));
    app.stop().await;

    let env = [
        ("KURZ_STORAGE__DATA_DIR", dir.path()),
        ("KURZ_STORAGE__PARTITIONS", Path::new("4")),
        ("KURZ_ANALYTICS__BOT_AGENTS", Path::new(r#"["acmeqa/"]"#)),
    ];
    let rebuilt = run(vec!["rebuild".into()], &env).await;
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));

    let markers = |config: &mut kurz::Config| config.analytics.bot_agents = vec!["acmeqa/".to_owned()];
    let app = common::spawn_app_with(dir.path(), markers).await;
    let after = app.stats("tested").await;
    assert_eq!((after["total_clicks"].as_u64(), after["bot_clicks"].as_u64()), (Some(1), Some(3)), "{after}");
    assert_eq!(after["devices"], json!([{"name": "Mobile", "clicks": 1}]));
    let bots: Value = app.get("/v1/links/tested/stats?bots=only").await.json().await.expect("json");
    assert_eq!(bots["devices"], json!([{"name": "Bot", "clicks": 3}]));
    // New clicks are classified by the same markers.
    let response = app.client.get(app.url("/tested")).header("user-agent", QA).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::FOUND);
    app.settled().await;
    assert_eq!(app.stats("tested").await["bot_clicks"], 4);
    app.stop().await;

    let blank = [env[0], env[1], ("KURZ_ANALYTICS__BOT_AGENTS", Path::new(r#"[""]"#))];
    let refused = run(vec!["rebuild".into()], &blank).await;
    assert!(!refused.status.success(), "a blank marker would make every visitor a bot");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("analytics.bot_agents: a bot marker is empty"), "{said}");
}

#[tokio::test]
async fn an_import_over_the_write_limit_waits_and_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = common::spawn_app_with(dir.path(), |config| config.limits.writes_per_key_per_second = 100).await;
    let file = dir.path().join("links.ndjson");
    let lines: Vec<String> = (0..250)
        .map(|i| json!({"code": format!("slow{i:03}"), "target_url": "https://example.com/"}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("written");
    let started = std::time::Instant::now();
    let imported = kurz(&app, &["import", file.to_str().expect("utf-8"), "--batch", "100"]).await;
    let summary = String::from_utf8_lossy(&imported.stderr);
    assert!(imported.status.success() && summary.contains("250 created, 0 failed"), "{summary}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "it waited for the limit");
}

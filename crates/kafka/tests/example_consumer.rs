//! The analytics consumer example (examples/analytics_consumer.rs) decodes what Kurz writes.

use std::process::Command;

use kurz_domain::Event;
use kurz_kafka::{KafkaConfig, KafkaEventLog, testing};
use kurz_ports::EventLog;
use kurz_ports::conformance::fixtures::{clicked, created, deleted, updated};
use kurz_registry_standin::RegistryStandIn;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_decodes_every_event_kurz_writes() {
    let Some(brokers) = testing::broker_or_skip() else { return };
    let registry = RegistryStandIn::start().await.expect("registry stand-in starts");
    let config = KafkaConfig {
        brokers: brokers.clone(),
        topic: testing::unique_name("contract"),
        partitions: 3,
        replication_factor: 1,
        schema_registry_url: registry.url(),
        ..KafkaConfig::default()
    };
    let log = KafkaEventLog::connect(&config).await.expect("connects");
    let events: Vec<Event> = vec![
        created("launch-2026"),
        clicked("launch-2026", 1, "v1"),
        updated("launch-2026", "https://moved.example/"),
        clicked("launch-2026", 2, "v2"),
        deleted("launch-2026"),
        created("other"),
    ];
    log.append(&events).await.expect("append");

    // The example as built (a no-op after `cargo test`, which builds a package's examples).
    let target = std::env::current_exe().expect("test exe").parent().and_then(|d| d.parent()).expect("dir").to_owned();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--package", "kurz-kafka", "--example", "analytics_consumer"]);
    if target.file_name().is_some_and(|profile| profile == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("cargo runs").success(), "building the example");
    let examples = target.join("examples");
    let consumer = tokio::task::spawn_blocking(move || {
        Command::new(examples.join("analytics_consumer"))
            .args([&brokers, &config.topic, &registry.url(), &testing::unique_name("analytics"), "6"])
            .output()
            .expect("the example runs")
    })
    .await
    .expect("example task");
    assert!(consumer.status.success(), "example failed: {}", String::from_utf8_lossy(&consumer.stderr));

    let lines: Vec<Value> = String::from_utf8(consumer.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 6);
    let of_launch: Vec<&Value> = lines.iter().filter(|line| line["key"] == "launch-2026").collect();
    let names: Vec<&str> = of_launch.iter().map(|line| line["event"].as_str().expect("event name")).collect();
    assert_eq!(
        names,
        [
            "kurz.events.LinkCreated",
            "kurz.events.LinkClicked",
            "kurz.events.LinkUpdated",
            "kurz.events.LinkClicked",
            "kurz.events.LinkDeleted"
        ],
        "one link's events arrive in the order they happened"
    );
    assert!(of_launch.iter().all(|line| line["partition"] == of_launch[0]["partition"]), "one partition per link");
    assert_eq!(of_launch[0]["fields"]["target_url"], "https://example.com/launch-2026");
    assert_eq!(of_launch[2]["fields"]["target_url"], "https://moved.example/");
    assert_eq!(of_launch[1]["fields"]["referrer"], "https://news.example/item");
    assert_eq!(of_launch[1]["fields"]["visitor_id"], "v1");
}

//! The stand-in answers the registry calls Kurz makes the way a Confluent registry does.

use kurz_registry_standin::RegistryStandIn;
use serde_json::{Value, json};

const V1: &str = r#"{"type":"record","name":"Click","namespace":"t","fields":[{"name":"code","type":"string"}]}"#;
const V2_COMPATIBLE: &str = r#"{"type":"record","name":"Click","namespace":"t","fields":[{"name":"code","type":"string"},{"name":"country","type":["null","string"],"default":null}]}"#;
const V2_BREAKING: &str = r#"{"type":"record","name":"Click","namespace":"t","fields":[{"name":"code","type":"string"},{"name":"country","type":"string"}]}"#;

async fn post(url: &str, schema: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({ "schema": schema, "schemaType": "AVRO" }).to_string())
        .send()
        .await
        .expect("registry answers");
    (response.status().as_u16(), response.json().await.expect("json body"))
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("registry answers");
    (response.status().as_u16(), response.json().await.expect("json body"))
}

#[tokio::test]
async fn registers_once_and_enforces_backward_compatibility() {
    let registry = RegistryStandIn::start().await.expect("starts");
    let versions = format!("{}/subjects/topic-t.Click/versions", registry.url());

    let (status, first) = post(&versions, V1).await;
    assert_eq!(status, 200);
    assert_eq!(post(&versions, V1).await, (200, first.clone()), "registering again returns the same id");

    let (status, refused) = post(&versions, V2_BREAKING).await;
    assert_eq!(status, 409, "a new field without a default cannot read old data: {refused}");
    assert_eq!(refused["error_code"], 409);

    let (status, second) = post(&versions, V2_COMPATIBLE).await;
    assert_eq!(status, 200);
    assert_ne!(second["id"], first["id"]);

    let (status, latest) = get(&format!("{versions}/latest")).await;
    assert_eq!((status, &latest["version"], &latest["id"]), (200, &json!(2), &second["id"]));
    let (status, by_id) = get(&format!("{}/schemas/ids/{}", registry.url(), first["id"])).await;
    assert_eq!(status, 200);
    assert!(by_id["schema"].as_str().expect("schema text").contains("\"code\""));
    assert_eq!(get(&format!("{}/schemas/ids/999", registry.url())).await.0, 404);
    assert_eq!(get(&format!("{}/subjects/unknown/versions/latest", registry.url())).await.0, 404);
}

#[tokio::test]
async fn the_same_schema_has_one_id_across_subjects() {
    let registry = RegistryStandIn::start().await.expect("starts");
    let (_, a) = post(&format!("{}/subjects/a-t.Click/versions", registry.url()), V1).await;
    let (_, b) = post(&format!("{}/subjects/b-t.Click/versions", registry.url()), V1).await;
    assert_eq!(a["id"], b["id"]);
}

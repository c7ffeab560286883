//! The OpenAPI document at `/openapi.json` and the docs at `/docs`, served by the binary itself.
//! (scripts/contract.sh runs schemathesis against the running server with this document.)

mod common;

use std::collections::BTreeSet;

use common::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;

/// Every operation Kurz serves, as `METHOD path`.
const OPERATIONS: [&str; 20] = [
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /{code}",
    "GET /{code}/qr",
    "POST /v1/links",
    "GET /v1/links",
    "POST /v1/links/batch",
    "GET /v1/links/export",
    "GET /v1/links/{code}",
    "PATCH /v1/links/{code}",
    "DELETE /v1/links/{code}",
    "GET /v1/links/{code}/history",
    "GET /v1/links/{code}/stats",
    "GET /v1/stats",
    "GET /v1/orphan-visits",
    "POST /v1/clicks",
    "POST /v1/keys",
    "GET /v1/keys",
    "DELETE /v1/keys/{id}",
];

fn operations(doc: &Value) -> impl Iterator<Item = (String, &str, &Value)> {
    doc["paths"].as_object().expect("paths").iter().flat_map(|(path, item)| {
        item.as_object()
            .expect("path item")
            .iter()
            .map(move |(method, operation)| (format!("{} {path}", method.to_uppercase()), path.as_str(), operation))
    })
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_operation_its_errors_and_its_keys() {
    let (app, _dir) = spawn_app().await;
    // Public, like the contract it shows: no key.
    let response = app.client.get(app.url("/openapi.json")).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Kurz");

    let documented: BTreeSet<String> = operations(&doc).map(|(name, _, _)| name).collect();
    let served: BTreeSet<String> = OPERATIONS.iter().map(|&op| op.to_owned()).collect();
    assert_eq!(documented, served);

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-Api-Key");
    for (name, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        let keyed = path.starts_with("/v1/");
        assert_eq!(operation.get("security").is_some(), keyed, "{name}: a key is needed exactly under /v1/");
        if keyed {
            assert!(responses.contains_key("401"), "{name} documents 401");
            assert!(responses.contains_key("429"), "{name} documents the limits");
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{name} documents {status}");
            }
        }
        // Every error is a problem.
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with(['4', '5'])) {
            if name == "GET /ready" {
                continue;
            }
            let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(schema, "#/components/schemas/Problem", "{name} {status}");
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let name = target.strip_prefix("#/components/schemas/").expect("a schema reference");
        assert!(doc["components"]["schemas"].get(name).is_some(), "{target} resolves");
    }
}

#[tokio::test]
async fn the_docs_are_served_from_the_binary_with_nothing_fetched_elsewhere() {
    let (app, _dir) = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let bare = client.get(app.url("/docs")).send().await.expect("answered");
    assert_eq!(bare.status(), StatusCode::SEE_OTHER);
    assert_eq!(bare.headers()["location"], "/docs/");

    let page = app.client.get(app.url("/docs/")).send().await.expect("answered");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| {
            let extension = std::path::Path::new(part).extension().and_then(|e| e.to_str()).unwrap_or_default();
            ["js", "css", "png"].contains(&extension)
        })
        .collect();
    assert!(assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")), "{html}");
    for asset in &assets {
        assert!(!asset.contains("://"), "{asset} is fetched from elsewhere");
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        let response = app.client.get(app.url(&path)).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(!response.bytes().await.expect("body").is_empty(), "{path}");
    }
    let initializer = app.client.get(app.url("/docs/swagger-initializer.js")).send().await.expect("answered");
    let initializer = initializer.text().await.expect("text");
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    // No validator badge: it would call swagger.io.
    assert!(initializer.contains(r#""validatorUrl": "none""#), "{initializer}");
}

//! `POST /v1/links/batch`: up to 1000 creates in one request, each answered on its own, in order.

mod common;

use common::{expect_problem, location, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_mixed_batch_answers_each_link_in_order() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/taken", "alias": "taken"})).await;
    let batch = json!({"links": [
        {"target_url": "https://example.com/one", "tags": ["batch"]},
        {"target_url": "javascript:alert(1)"},
        {"target_url": "https://example.com/two", "alias": "taken"},
        {"target_url": "https://example.com/three", "alias": "batch-three"},
        {"target_url": 42},
        {"alias": "no-target"},
        {"target_url": "https://example.com/four", "colour": "red"},
    ]});
    let response = app.post_json("/v1/links/batch", &batch).await;
    assert_eq!(response.status(), StatusCode::MULTI_STATUS);
    let results = response.json::<Value>().await.expect("json")["results"].as_array().expect("results").clone();
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().expect("status")).collect();
    assert_eq!(statuses, [201, 422, 409, 201, 422, 422, 422]);
    let fields: Vec<&str> = results.iter().map(|r| r["problem"]["field"].as_str().unwrap_or("")).collect();
    assert_eq!(
        fields,
        ["", "links[1].target_url", "links[2].alias", "", "links[4].target_url", "links[5]", "links[6].colour"]
    );
    for failed in results.iter().filter(|r| r["status"] != 201) {
        assert_eq!(failed["problem"]["status"], failed["status"], "{failed}");
        assert!(failed["problem"]["detail"].is_string(), "{failed}");
    }

    // The created ones are links like any other.
    assert_eq!(results[3]["link"]["code"], "batch-three");
    for (result, target) in [(&results[0], "https://example.com/one"), (&results[3], "https://example.com/three")] {
        let code = result["link"]["code"].as_str().expect("code");
        let redirect = app.client.get(app.url(&format!("/{code}"))).send().await.expect("answered");
        assert_eq!(location(&redirect), target);
    }
    assert_eq!(results[0]["link"]["tags"], json!(["batch"]));
}

#[tokio::test]
async fn a_batch_holds_one_to_a_thousand_links() {
    let (app, _dir) = spawn_app().await;
    let link = json!({"target_url": "https://example.com/"});
    let full = json!({"links": vec![link.clone(); 1000]});
    let response = app.post_json("/v1/links/batch", &full).await;
    assert_eq!(response.status(), StatusCode::MULTI_STATUS);
    let results = response.json::<Value>().await.expect("json")["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 1000);
    let codes: std::collections::HashSet<&str> =
        results.iter().map(|r| r["link"]["code"].as_str().expect("every link created")).collect();
    assert_eq!(codes.len(), 1000, "a code each");

    for links in [vec![], vec![link.clone(); 1001]] {
        let response = app.post_json("/v1/links/batch", &json!({"links": links})).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], "links");
    }
}

#[tokio::test]
async fn every_link_of_a_batch_counts_against_the_write_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.limits.writes_per_key_per_second = 10).await;
    let links = vec![json!({"target_url": "https://example.com/"}); 11];
    let response = app.post_json("/v1/links/batch", &json!({"links": links})).await;
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    let links = vec![json!({"target_url": "https://example.com/"}); 5];
    let response = app.post_json("/v1/links/batch", &json!({"links": links})).await;
    assert_eq!(response.status(), StatusCode::MULTI_STATUS);
}

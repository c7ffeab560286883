//! The behaviour users rely on, on the embedded default.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{expect_problem, location, spawn_app, spawn_app_in, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

#[tokio::test]
async fn a_created_link_redirects_the_moment_201_is_answered() {
    let (app, _dir) = spawn_app().await;
    let app = Arc::new(app);
    let creators: Vec<_> = (0..8)
        .map(|worker| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                for i in 0..25 {
                    let target = format!("https://example.com/{worker}/{i}");
                    let code = app.create_to(&target).await;
                    let response = app.get(&format!("/{code}")).await;
                    assert_eq!(response.status(), StatusCode::FOUND, "{code} not visible right after 201");
                    assert_eq!(location(&response), target);
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.expect("creator");
    }
}

#[tokio::test]
async fn a_code_looked_up_before_it_existed_redirects_once_created() {
    let (app, _dir) = spawn_app().await;
    // The miss is cached negatively; the creation must evict it.
    expect_problem(app.get("/soon").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/soon").await, StatusCode::NOT_FOUND).await;
    app.create(json!({"target_url": "https://example.com/soon", "alias": "soon"})).await;
    assert_eq!(app.get("/soon").await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn redirects_are_counted_in_stats_and_head_is_not() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    for _ in 0..3 {
        let response = app
            .client
            .get(app.url(&format!("/{code}")))
            .header("referer", "https://www.news.example/story")
            .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    app.client.head(app.url(&format!("/{code}"))).send().await.expect("request");
    app.settled().await;
    let stats = app.stats(&code).await;
    assert_eq!(stats["total_clicks"], 3);
    assert_eq!(stats["unique_visitors"], 1, "one address and agent is one visitor");
    assert_eq!(stats["last_clicked_at"], "2026-11-21T00:00:00.000Z");
    assert_eq!(stats["top_referrers"], json!([{"name": "news.example", "clicks": 3}]));
    assert_eq!(stats["browsers"], json!([{"name": "Chrome", "clicks": 3}]));
    assert_eq!(stats["browser_versions"], json!([{"name": "Chrome 120", "clicks": 3}]));
    assert_eq!(stats["operating_systems"], json!([{"name": "Windows", "clicks": 3}]));
    assert_eq!(stats["devices"], json!([{"name": "Desktop", "clicks": 3}]));
}

#[tokio::test]
async fn max_clicks_is_exact_when_a_hundred_clients_race() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/prize", "alias": "prize", "max_clicks": 10})).await;
    let app = Arc::new(app);
    let racers: Vec<_> = (0..100)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get("/prize").await.status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::FOUND).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::GONE).count(), 90);
    app.settled().await;
    assert_eq!(app.stats("prize").await["total_clicks"], 10);
}

#[tokio::test]
async fn a_one_time_link_serves_once_even_across_a_restart() {
    let (app, dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/secret", "alias": "once", "max_clicks": 1})).await;
    assert_eq!(app.get("/once").await.status(), StatusCode::FOUND);
    expect_problem(app.get("/once").await, StatusCode::GONE).await;
    app.stop().await;
    let app = spawn_app_in(dir.path()).await;
    expect_problem(app.get("/once").await, StatusCode::GONE).await;
}

/// Shlink #900: chat apps fetching a shared one-time link to show its card used it up.
#[tokio::test]
async fn link_previews_leave_a_one_time_link_to_the_person_it_was_sent_to() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/secret-offer", "alias": "onetime", "max_clicks": 1})).await;
    for preview in [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0 A",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    ] {
        let response = app.client.get(app.url("/onetime")).header("user-agent", preview).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{preview}");
        assert!(response.headers().get("location").is_none(), "{preview} is not told the target");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let page = response.text().await.expect("page");
        assert!(!page.contains("example.com"), "{preview} reads no target in the page: {page}");
    }
    let head = app.client.head(app.url("/onetime")).header("user-agent", "Twitterbot/1.0").send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK, "a preview's HEAD is answered as its GET");
    assert!(head.headers().get("location").is_none());
    let person = app.client.get(app.url("/onetime")).header("user-agent", CHROME).send().await.expect("request");
    assert_eq!(person.status(), StatusCode::FOUND, "the person the link was sent to follows it");
    assert_eq!(location(&person), "https://example.com/secret-offer");
    expect_problem(app.get("/onetime").await, StatusCode::GONE).await;
    app.settled().await;
    assert_eq!(app.stats("onetime").await["total_clicks"], 1, "previews record no click");
}

/// The first complaint about shorteners' analytics: counts inflated by crawlers and previews.
#[tokio::test]
async fn stats_leave_bots_out_unless_asked_for_and_always_say_how_many() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/counted", "alias": "counted"})).await;
    let visit = |agent: &'static str| {
        let request = app.client.get(app.url("/counted")).header("user-agent", agent);
        async move { assert_eq!(request.send().await.expect("request").status(), StatusCode::FOUND, "{agent}") }
    };
    visit(CHROME).await;
    visit(CHROME).await;
    visit("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").await;
    visit("curl/8.5.0").await;
    visit("Twitterbot/1.0").await;
    app.settled().await;

    let people = app.stats("counted").await;
    assert_eq!((people["bots"].as_str(), people["total_clicks"].as_u64()), (Some("exclude"), Some(2)));
    assert_eq!(people["bot_clicks"], 3);
    assert!(people["devices"].as_array().expect("devices").iter().all(|d| d["name"] != "Bot"), "{people}");
    let app = &app;
    let stats = |bots: &str| {
        let path = format!("/v1/links/counted/stats?bots={bots}");
        async move { app.get(&path).await }
    };
    let everyone: Value = stats("include").await.json().await.expect("json");
    assert_eq!((everyone["total_clicks"].as_u64(), everyone["bot_clicks"].as_u64()), (Some(5), Some(3)));
    let bots: Value = stats("only").await.json().await.expect("json");
    assert_eq!((bots["total_clicks"].as_u64(), bots["unique_visitors"].as_u64()), (Some(3), Some(3)));
    assert_eq!(bots["devices"], json!([{"name": "Bot", "clicks": 3}]));
    expect_problem(stats("some").await, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn stats_count_visitors_languages_by_their_preferred_one() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/spoken", "alias": "spoken"})).await;
    for language in [Some("de-CH,de;q=0.9,en;q=0.8"), Some("de"), Some("en-GB;q=0.5, fr;q=0.9"), None] {
        let mut request = app.client.get(app.url("/spoken")).header("user-agent", CHROME);
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        assert_eq!(request.send().await.expect("request").status(), StatusCode::FOUND);
    }
    app.settled().await;
    let stats = app.stats("spoken").await;
    assert_eq!(
        stats["languages"],
        json!([{"name": "de", "clicks": 2}, {"name": "Unknown", "clicks": 1}, {"name": "fr", "clicks": 1}])
    );
    assert_eq!(stats["countries"], json!([{"name": "Unknown", "clicks": 4}]), "no GeoIP database configured");
}

#[tokio::test]
async fn stats_count_the_last_48_hours_by_hour() {
    const MINUTE: i64 = 60_000;
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/hourly", "alias": "hourly"})).await;
    let visit = || async { assert_eq!(app.get("/hourly").await.status(), StatusCode::FOUND) };
    // The clock starts at 2026-11-21T00:00Z: a click at 00:30, two at 02:30, one 47 hours later.
    app.time.advance(30 * MINUTE);
    visit().await;
    app.time.advance(120 * MINUTE);
    visit().await;
    visit().await;
    app.time.advance(47 * 60 * MINUTE);
    visit().await;
    app.settled().await;

    let hourly = app.get("/v1/links/hourly/stats?interval=hour").await;
    assert_eq!(hourly.status(), StatusCode::OK);
    let hourly: Value = hourly.json().await.expect("json");
    // Now is 2026-11-23T01:30Z: the 48 hours from 2026-11-21T02:00Z, not the 00:30 click.
    assert_eq!(
        hourly["clicks_by_hour"],
        json!([
            {"hour": "2026-11-21T02:00:00.000Z", "clicks": 2},
            {"hour": "2026-11-23T01:00:00.000Z", "clicks": 1},
        ])
    );
    // Everything else covers the days those hours touch.
    assert_eq!((&hourly["from"], &hourly["to"]), (&json!("2026-11-21"), &json!("2026-11-23")));
    assert_eq!(hourly["total_clicks"], 4);

    assert!(app.stats("hourly").await.get("clicks_by_hour").is_none(), "by day unless asked");
    let dated = app.get("/v1/links/hourly/stats?interval=hour&from=2026-11-20").await;
    expect_problem(dated, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_problem(app.get("/v1/links/hourly/stats?interval=minute").await, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_overview_sums_an_owners_links_and_no_one_elses() {
    const HOUR: i64 = 60 * 60_000;
    let dir = tempfile::tempdir().expect("temp dir");
    // Visitors told apart by address.
    let app = spawn_app_with(dir.path(), |config| config.http.trust_forwarded_for = true).await;
    let (_, alice) = app.create_key("alice", "user").await;
    let (_, bob) = app.create_key("bob", "user").await;
    for (key, alias) in [(&alice, "a-busy"), (&alice, "a-quiet"), (&alice, "a-unused"), (&bob, "b-other")] {
        let body = json!({"target_url": format!("https://example.com/{alias}"), "alias": alias});
        let response = app.with_key(Method::POST, "/v1/links", key).json(&body).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let visit = |code: &'static str, agent: &'static str, address: &'static str| {
        let app = &app;
        async move {
            let request = app.client.get(app.url(&format!("/{code}"))).header("user-agent", agent);
            let response = request.header("x-forwarded-for", address).send().await.expect("answered");
            assert_eq!(response.status(), StatusCode::FOUND);
        }
    };
    // Day one: three people on a-busy (one of them twice), one on a-quiet (also on a-busy), a bot.
    for address in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"] {
        visit("a-busy", CHROME, address).await;
    }
    visit("a-quiet", CHROME, "192.0.2.2").await;
    visit("a-busy", "curl/8.5.0", "192.0.2.9").await;
    visit("b-other", CHROME, "192.0.2.7").await;
    // Day two: one more click on a-quiet.
    app.time.advance(24 * HOUR);
    visit("a-quiet", CHROME, "192.0.2.4").await;
    app.settled().await;

    let overview = |key: &str, query: &str| {
        let request = app.with_key(Method::GET, &format!("/v1/stats{query}"), key);
        async move {
            let response = request.send().await.expect("answered");
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.expect("json")
        }
    };
    let alices = overview(&alice, "").await;
    assert_eq!(alices["owner"], "alice");
    assert_eq!((alices["links"].as_u64(), alices["total_clicks"].as_u64()), (Some(3), Some(6)));
    assert_eq!(alices["complete"], true);
    assert_eq!((alices["bot_clicks"].as_u64(), alices["unique_visitors"].as_u64()), (Some(1), Some(4)));
    assert_eq!(
        alices["clicks_by_day"],
        json!([{"date": "2026-11-21", "clicks": 5}, {"date": "2026-11-22", "clicks": 1}])
    );
    assert_eq!(alices["top_links"], json!([{"code": "a-busy", "clicks": 4}, {"code": "a-quiet", "clicks": 2}]));
    assert_eq!(alices["browsers"], json!([{"name": "Chrome", "clicks": 6}]));
    assert_eq!(alices["browser_versions"], json!([{"name": "Chrome 131", "clicks": 6}]));

    let with_bots = overview(&alice, "?bots=include&from=2026-11-21&to=2026-11-21").await;
    assert_eq!((with_bots["total_clicks"].as_u64(), with_bots["from"].as_str()), (Some(6), Some("2026-11-21")));
    assert_eq!(with_bots["top_links"][0], json!({"code": "a-busy", "clicks": 5}));
    let hourly = overview(&alice, "?interval=hour").await;
    assert_eq!(
        hourly["clicks_by_hour"],
        json!([
            {"hour": "2026-11-21T00:00:00.000Z", "clicks": 5},
            {"hour": "2026-11-22T00:00:00.000Z", "clicks": 1},
        ])
    );

    assert_eq!(overview(&bob, "").await["total_clicks"], 1, "bob sees his own clicks only");
    let foreign = app.with_key(Method::GET, "/v1/stats?owner=alice", &bob).send().await.expect("answered");
    expect_problem(foreign, StatusCode::FORBIDDEN).await;
    let everyone = overview(&app.admin_key, "").await;
    assert_eq!((everyone["owner"].clone(), everyone["total_clicks"].as_u64()), (Value::Null, Some(7)));
    assert_eq!(overview(&app.admin_key, "?owner=bob").await["links"], 1);
    let backwards = app.with_key(Method::GET, "/v1/stats?from=2026-11-22&to=2026-11-21", &alice);
    expect_problem(backwards.send().await.expect("answered"), StatusCode::UNPROCESSABLE_ENTITY).await;
    let anonymous = app.client.get(app.url("/v1/stats")).send().await.expect("answered");
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_preview_of_a_link_without_a_limit_is_redirected() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/open", "alias": "open"})).await;
    let response =
        app.client.get(app.url("/open")).header("user-agent", "Twitterbot/1.0").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/open");
}

#[tokio::test]
async fn raising_max_clicks_reopens_an_exhausted_link() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "limited", "max_clicks": 1})).await;
    assert_eq!(app.get("/limited").await.status(), StatusCode::FOUND);
    expect_problem(app.get("/limited").await, StatusCode::GONE).await;
    app.patch_json("/v1/links/limited", &json!({"max_clicks": 2})).await;
    assert_eq!(app.get("/limited").await.status(), StatusCode::FOUND);
    expect_problem(app.get("/limited").await, StatusCode::GONE).await;
}

#[tokio::test]
async fn an_expired_link_is_gone() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "brief", "expires_at": "2026-11-21T01:00:00Z"}))
        .await;
    let live = app.get("/brief").await;
    assert_eq!(live.status(), StatusCode::FOUND);
    assert_eq!(live.headers()["cache-control"], "no-store", "browsers must not keep an expiring redirect");
    app.time.advance(60 * 60 * 1000);
    let problem = expect_problem(app.get("/brief").await, StatusCode::GONE).await;
    assert!(problem["detail"].as_str().expect("detail").contains("expired"));
}

#[tokio::test]
async fn links_clicks_and_codes_survive_a_restart() {
    let (app, dir) = spawn_app().await;
    let mut codes = HashSet::new();
    for i in 0..20 {
        codes.insert(app.create_to(&format!("https://example.com/{i}")).await);
    }
    let first = codes.iter().next().expect("a code").clone();
    app.get(&format!("/{first}")).await;
    app.stop().await;

    let app = spawn_app_in(dir.path()).await;
    for code in &codes {
        assert_eq!(app.get(&format!("/{code}")).await.status(), StatusCode::FOUND);
    }
    app.settled().await;
    assert_eq!(app.stats(&first).await["total_clicks"], 2, "the click before the restart was kept");
    for _ in 0..20 {
        assert!(codes.insert(app.create_to("https://example.com/").await), "a code was issued twice");
    }
}

#[tokio::test]
async fn deleting_the_read_store_rebuilds_every_link_and_stat_from_the_log() {
    let (app, dir) = spawn_app().await;
    let kept = app.create_to("https://example.com/kept").await;
    app.create(json!({"target_url": "https://example.com/old", "alias": "moved"})).await;
    app.patch_json("/v1/links/moved", &json!({"target_url": "https://example.com/new"})).await;
    let removed = app.create_to("https://example.com/removed").await;
    app.delete(&format!("/v1/links/{removed}")).await;
    for _ in 0..5 {
        app.get(&format!("/{kept}")).await;
    }
    app.get("/moved").await;
    let clicks = json!({"clicks": [{"code": kept, "clicked_at": "2026-11-19T08:00:00Z", "visitor_id": "edge"}]});
    app.post_json("/v1/clicks", &clicks).await;
    app.settled().await;
    let before = (app.stats(&kept).await, app.stats("moved").await);
    app.stop().await;

    std::fs::remove_file(dir.path().join("store.redb")).expect("store deleted");
    let app = spawn_app_in(dir.path()).await;
    assert_eq!((app.stats(&kept).await, app.stats("moved").await), before, "stats rebuilt exactly");
    assert_eq!(before.0["total_clicks"], 6);
    assert_eq!(location(&app.get(&format!("/{kept}")).await), "https://example.com/kept");
    assert_eq!(location(&app.get("/moved").await), "https://example.com/new");
    expect_problem(app.get(&format!("/{removed}")).await, StatusCode::GONE).await;
    let conflict = json!({"target_url": "https://example.com/", "alias": "moved"});
    expect_problem(app.post_json("/v1/links", &conflict).await, StatusCode::CONFLICT).await;
}

//! Safe to expose: keys, roles and owners, abuse limits, the hardened HTTP edge, bounded input and
//! safe targets, over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{expect_problem, location, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `check` until it holds, failing after `within`.
async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_unauthorized(response: reqwest::Response) {
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_owned());
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"kurz\""));
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn every_api_endpoint_needs_a_key_and_redirects_and_health_do_not() {
    let (app, _dir) = spawn_app().await;
    app.create(json!({"target_url": "https://example.com/", "alias": "keyed"})).await;
    let endpoints = [
        (Method::POST, "/v1/links"),
        (Method::GET, "/v1/links/keyed"),
        (Method::PATCH, "/v1/links/keyed"),
        (Method::DELETE, "/v1/links/keyed"),
        (Method::GET, "/v1/links/keyed/stats"),
        (Method::GET, "/v1/stats"),
        (Method::GET, "/v1/orphan-visits"),
        (Method::POST, "/v1/clicks"),
        (Method::GET, "/v1/keys"),
        (Method::POST, "/v1/keys"),
        (Method::DELETE, "/v1/keys/abc"),
    ];
    for (method, path) in endpoints {
        let anonymous = app.client.request(method.clone(), app.url(path)).json(&json!({})).send().await.expect("sent");
        assert_unauthorized(anonymous).await;
        let unknown = format!("kurz_aaaaaaaaaaaa_{}", "A".repeat(32));
        assert_unauthorized(app.with_key(method.clone(), path, &unknown).send().await.expect("sent")).await;
        assert_unauthorized(app.with_key(method, path, "not a key at all").send().await.expect("sent")).await;
    }
    assert_eq!(app.client.get(app.url("/keyed")).send().await.expect("sent").status(), StatusCode::FOUND);
    assert_eq!(app.client.get(app.url("/health")).send().await.expect("sent").status(), StatusCode::OK);
    let by_header =
        app.client.get(app.url("/v1/links/keyed")).header("x-api-key", &app.admin_key).send().await.expect("sent");
    assert_eq!(by_header.status(), StatusCode::OK, "X-Api-Key works as well as Authorization");
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let (app, _dir) = spawn_app().await;
    let response = app.post_json("/v1/keys", &json!({"owner": "alice", "role": "user"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let key = created["key"].as_str().expect("key shown").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with(&format!("kurz_{id}_")) && key.len() >= 40, "{key}");
    assert_eq!((created["owner"].as_str(), created["role"].as_str()), (Some("alice"), Some("user")));

    let listed: Value = app.get("/v1/keys").await.json().await.expect("json");
    let text = listed.to_string();
    assert!(!text.contains(&key[key.len() - 20..]), "no secret in listings: {text}");
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert!(listed["items"][0].get("key").is_none());

    let create = app.with_key(Method::POST, "/v1/links", &key).json(&json!({"target_url": "https://example.com/"}));
    assert_eq!(create.send().await.expect("sent").status(), StatusCode::CREATED);
    assert_eq!(app.delete(&format!("/v1/keys/{id}")).await.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    let after = app.with_key(Method::POST, "/v1/links", &key).json(&json!({"target_url": "https://example.com/"}));
    assert_unauthorized(after.send().await.expect("sent")).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let listed: Value = app.get("/v1/keys").await.json().await.expect("json");
    assert!(listed["items"][0]["revoked_at"].is_string());
    expect_problem(app.delete("/v1/keys/nosuchkey").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.delete("/v1/keys/bootstrap").await, StatusCode::CONFLICT).await;
    let bad_role = app.post_json("/v1/keys", &json!({"owner": "alice", "role": "root"})).await;
    assert_eq!(expect_problem(bad_role, StatusCode::UNPROCESSABLE_ENTITY).await["field"], "role");
}

#[tokio::test]
async fn each_role_may_do_only_its_part() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let (_, user) = app.create_key("alice", "user").await;
    let (_, ingest) = app.create_key("edge", "ingest").await;
    let link = json!({"target_url": "https://example.com/"});
    let clicks = json!({"clicks": [{"code": code}]});

    let created = app.with_key(Method::POST, "/v1/links", &ingest).json(&link).send().await.expect("sent");
    expect_problem(created, StatusCode::FORBIDDEN).await;
    let read = app.with_key(Method::GET, &format!("/v1/links/{code}"), &ingest).send().await.expect("sent");
    expect_problem(read, StatusCode::FORBIDDEN).await;
    let reported = app.with_key(Method::POST, "/v1/clicks", &ingest).json(&clicks).send().await.expect("sent");
    assert_eq!(reported.status(), StatusCode::ACCEPTED);

    let reported = app.with_key(Method::POST, "/v1/clicks", &user).json(&clicks).send().await.expect("sent");
    expect_problem(reported, StatusCode::FORBIDDEN).await;
    let keys = app.with_key(Method::GET, "/v1/keys", &user).send().await.expect("sent");
    expect_problem(keys, StatusCode::FORBIDDEN).await;
    let made = json!({"owner": "alice", "role": "admin"});
    let escalate = app.with_key(Method::POST, "/v1/keys", &user).json(&made).send().await.expect("sent");
    expect_problem(escalate, StatusCode::FORBIDDEN).await;
    let foreign = json!({"target_url": "https://example.com/", "owner": "bob"});
    let for_bob = app.with_key(Method::POST, "/v1/links", &user).json(&foreign).send().await.expect("sent");
    expect_problem(for_bob, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn another_owners_link_is_not_found_and_admins_see_every_link() {
    let (app, _dir) = spawn_app().await;
    let (_, alice) = app.create_key("alice", "user").await;
    let (_, alice_rotated) = app.create_key("alice", "user").await;
    let (_, bob) = app.create_key("bob", "user").await;
    let body = json!({"target_url": "https://example.com/alice", "alias": "alices"});
    let created = app.with_key(Method::POST, "/v1/links", &alice).json(&body).send().await.expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);

    for (method, path) in [
        (Method::GET, "/v1/links/alices"),
        (Method::GET, "/v1/links/alices/stats"),
        (Method::PATCH, "/v1/links/alices"),
        (Method::DELETE, "/v1/links/alices"),
    ] {
        let request = app.with_key(method.clone(), path, &bob).json(&json!({"target_url": "https://evil.example/"}));
        let problem = expect_problem(request.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
        assert_eq!(problem["detail"], "no link has code alices", "the same answer as for a code nobody has");
    }
    let own = app.with_key(Method::GET, "/v1/links/alices", &alice_rotated).send().await.expect("sent");
    assert_eq!(own.status(), StatusCode::OK, "a second key of the same owner sees the link");
    assert_eq!(app.get("/v1/links/alices").await.status(), StatusCode::OK, "admin sees every owner's links");
    let unchanged = app.client.get(app.url("/alices")).send().await.expect("sent");
    assert_eq!(location(&unchanged), "https://example.com/alice");
}

#[tokio::test]
async fn links_record_their_owner_and_key_on_the_event() {
    let (app, dir) = spawn_app().await;
    let (id, alice) = app.create_key("alice", "user").await;
    let body = json!({"target_url": "https://example.com/", "alias": "owned"});
    let created = app.with_key(Method::POST, "/v1/links", &alice).json(&body).send().await.expect("sent");
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["owner"], "alice");
    let admin_made = app.create(json!({"target_url": "https://example.com/", "owner": "carol"})).await;
    assert_eq!(admin_made["owner"], "carol", "an admin may create for another owner");
    app.stop().await;
    let log =
        kurz_embedded::EmbeddedLog::open(&dir.path().join("events.redb"), kurz_embedded::LogOptions { partitions: 4 })
            .expect("log opens");
    let mut found = None;
    for partition in 0..4 {
        use kurz_ports::EventLog as _;
        for record in log.read(partition, 0, 100).await.expect("read") {
            if let Ok(kurz_domain::Event::Created(event)) = record.event
                && event.code.as_str() == "owned"
            {
                found = Some(event);
            }
        }
    }
    let event = found.expect("the creation is in the log");
    assert_eq!(event.owner.as_str(), "alice");
    assert_eq!(event.key_id.map(|k| k.to_string()), Some(id));
}

#[tokio::test]
async fn each_limit_answers_429_with_retry_after_and_ratelimit_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| {
        config.limits.unknown_codes_per_address_per_minute = 5;
        config.limits.writes_per_key_per_second = 3;
        config.limits.failed_keys_per_address_per_minute = 5;
    })
    .await;
    let assert_limited = async |response: reqwest::Response, policy: &str| {
        let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let policy_header = response.headers()["ratelimit-policy"].to_str().expect("ascii").to_owned();
        assert!(policy_header.starts_with(&format!("\"{policy}\";q=")), "{policy_header}");
        let state = response.headers()["ratelimit"].to_str().expect("ascii").to_owned();
        assert_eq!(state, format!("\"{policy}\";r=0;t={retry_after}"));
        expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    };

    // Unknown codes per address: five, then every redirect from the address waits, known or not.
    let known = app.create_to("https://example.com/known").await;
    for i in 0..5 {
        assert_eq!(app.get(&format!("/nothing-{i}")).await.status(), StatusCode::NOT_FOUND);
    }
    assert_limited(app.get("/nothing-5").await, "unknown-codes-per-address").await;
    assert_limited(app.get(&format!("/{known}")).await, "unknown-codes-per-address").await;

    // Writes per key: three a second, a burst of three.
    let link = json!({"target_url": "https://example.com/"});
    let mut created = 0;
    let mut refused = None;
    for _ in 0..10 {
        let response = app.post_json("/v1/links", &link).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
        created += 1;
    }
    // The create of `known` above took one of the three.
    assert!((2..=4).contains(&created), "{created} writes before the limit");
    assert_limited(refused.expect("the write limit was reached"), "writes-per-key").await;

    // Requests without a valid key, per address: five a minute; then the address is barred from the
    // API for a while, whatever key it sends.
    let bogus = format!("kurz_aaaaaaaaaaaa_{}", "B".repeat(32));
    let mut refused = None;
    for _ in 0..10 {
        let response = app.with_key(Method::GET, "/v1/keys", &bogus).send().await.expect("sent");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(refused.expect("the failed-key limit was reached"), "failed-keys-per-address").await;
    assert_limited(app.get("/v1/keys").await, "failed-keys-per-address").await;
}

#[tokio::test]
async fn the_global_limit_covers_redirects_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.limits.global_per_second = 5).await;
    let code = app.create_to("https://example.com/").await;
    let mut limited = 0;
    for _ in 0..20 {
        if app.get(&format!("/{code}")).await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 20 refused");
}

#[tokio::test]
async fn a_slow_header_is_cut_off_and_shutdown_does_not_wait_for_slow_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| {
        config.http.header_read_timeout_ms = 300;
        config.http.shutdown_timeout_ms = 500;
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.expect("connects");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: kurz\r\nX-Slow: ").await.expect("half a header");
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
    assert!(closed.is_ok(), "the connection is closed, not held");
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));

    // An idle keep-alive connection is closed after the same time.
    let mut idle = tokio::net::TcpStream::connect(&address).await.expect("connects");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: kurz\r\n\r\n").await.expect("request sent");
    let mut answer = vec![0; 1024];
    let read =
        tokio::time::timeout(Duration::from_secs(5), idle.read(&mut answer)).await.expect("in time").expect("answered");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut answer)).await;
    assert!(matches!(closed, Ok(Ok(0))), "the idle connection is closed: {closed:?}");

    // A request whose body never comes holds the server's drain only until the shutdown deadline.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.expect("connects");
    let head = format!(
        "POST /v1/links HTTP/1.1\r\nHost: kurz\r\nAuthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        app.admin_key
    );
    stalled.write_all(head.as_bytes()).await.expect("head sent");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("stops despite the stalled client");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_request_whose_body_stalls_is_answered_503_at_the_request_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.http.request_timeout_ms = 300).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.expect("connects");
    let head = format!(
        "POST /v1/links HTTP/1.1\r\nHost: kurz\r\nAuthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        app.admin_key
    );
    stalled.write_all(head.as_bytes()).await.expect("head sent");
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut answer)).await.expect("answered");
    let answer = String::from_utf8_lossy(&answer[..read.expect("read")]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| config.http.max_connections = 2).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let first = tokio::net::TcpStream::connect(&address).await.expect("connects");
    let second = tokio::net::TcpStream::connect(&address).await.expect("connects");
    // The kernel accepts the third connection; Kurz serves it only once a slot is free.
    let mut third = tokio::net::TcpStream::connect(&address).await.expect("connects");
    third.write_all(b"GET /health HTTP/1.1\r\nHost: kurz\r\n\r\n").await.expect("request sent");
    let mut answer = vec![0; 1024];
    let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut answer)).await;
    assert!(waited.is_err(), "served over the cap: {waited:?}");
    drop(first);
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut answer)).await.expect("served");
    assert!(String::from_utf8_lossy(&answer[..read.expect("read")]).starts_with("HTTP/1.1 200"));
    drop(second);
}

#[tokio::test]
async fn a_huge_header_is_refused() {
    let (app, _dir) = spawn_app().await;
    let response = app.client.get(app.url("/health")).header("x-filler", "a".repeat(64 * 1024)).send().await;
    match response {
        Ok(response) => assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(error) => assert!(error.is_request() || error.is_connect() || error.is_body(), "{error}"),
    }
    assert_eq!(app.get("/health").await.status(), StatusCode::OK, "and the server goes on");
}

#[tokio::test]
async fn out_of_range_timestamps_and_floods_are_refused_with_422() {
    let (app, _dir) = spawn_app().await;
    let far = json!({"target_url": "https://example.com/", "expires_at": "9999-12-31T23:59:59-01:00"});
    let problem = expect_problem(app.post_json("/v1/links", &far).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "expires_at");
    let code = app.create_to("https://example.com/").await;
    for at in ["9999-12-31T23:59:59-01:00", "1970-01-01T00:00:00Z", "2024-01-01T00:00:00Z"] {
        let clicks = json!({"clicks": [{"code": code, "clicked_at": at}]});
        let problem =
            expect_problem(app.post_json("/v1/clicks", &clicks).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], "clicks[0].clicked_at", "{at}");
    }
    // 18,500 distinct tags in a 128 KiB body: refused at the 33rd.
    let tags: Vec<String> = (0..18_500).map(|i| format!("{i:x}")).collect();
    let flood = json!({"target_url": "https://example.com/", "tags": tags});
    let problem = expect_problem(app.post_json("/v1/links", &flood).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "tags");
    let wide = app.get(&format!("/v1/links/{code}/stats?from=2000-01-01&to=2026-01-01")).await;
    assert_eq!(expect_problem(wide, StatusCode::UNPROCESSABLE_ENTITY).await["field"], "from");
}

#[tokio::test]
async fn reported_visitor_ids_count_within_their_reporters_namespace() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let (_, edge_a) = app.create_key("edge-a", "ingest").await;
    let (_, edge_b) = app.create_key("edge-b", "ingest").await;
    for key in [&edge_a, &edge_b, &edge_a] {
        let clicks = json!({"clicks": [{"code": code, "visitor_id": "v1"}]});
        let sent = app.with_key(Method::POST, "/v1/clicks", key).json(&clicks).send().await.expect("sent");
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
    }
    app.settled().await;
    let stats = app.stats(&code).await;
    assert_eq!((stats["total_clicks"].as_u64(), stats["unique_visitors"].as_u64()), (Some(3), Some(2)));
}

#[tokio::test]
async fn invented_methods_add_no_metric_series() {
    const METHODS: [&str; 10] =
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"];
    let (app, _dir) = spawn_app().await;
    let series = async || {
        let text = app.get("/metrics").await.text().await.expect("text");
        text.lines().filter(|l| l.starts_with("http_requests_total")).map(str::to_owned).collect::<Vec<_>>()
    };
    app.client.request(Method::from_bytes(b"FOOBAR0").expect("method"), app.url("/health")).send().await.expect("sent");
    for i in 1..20 {
        let method = Method::from_bytes(format!("FOOBAR{i}").as_bytes()).expect("method");
        let response = app.client.request(method, app.url("/v1/links")).send().await.expect("sent");
        assert!(response.status().is_client_error());
    }
    let after = series().await;
    // The metrics recorder is the process's, and other tests of this binary add their own series
    // meanwhile: so every series, whoever made it, must name a standard method or `OTHER`, and
    // the invented methods' requests must be counted under `OTHER`.
    let method_of =
        |line: &str| line.split("method=\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned);
    let invented: Vec<&String> =
        after.iter().filter(|l| method_of(l).is_none_or(|m| !METHODS.contains(&m.as_str()))).collect();
    assert!(invented.is_empty(), "{invented:?}");
    let other_on_links = "http_requests_total{route=\"/v1/links\",method=\"OTHER\"";
    assert!(after.iter().any(|l| l.starts_with(other_on_links)), "{after:?}");
    assert!(!after.iter().any(|l| l.contains("FOOBAR")), "{after:?}");
}

#[tokio::test]
async fn private_local_own_and_shortener_targets_are_refused() {
    let (app, _dir) = spawn_app().await;
    let own = app.base.clone();
    for target in [
        "http://127.0.0.1:9000/admin",
        "http://10.0.0.7/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd12::1]/",
        "http://localhost/",
        "https://bit.ly/abc",
        &format!("{own}/abc"),
    ] {
        let response = app.post_json("/v1/links", &json!({"target_url": target})).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], "target_url", "{target}");
    }
    let code = app.create_to("https://example.com/").await;
    let moved = app.patch_json(&format!("/v1/links/{code}"), &json!({"target_url": "http://192.168.0.1/"})).await;
    assert_eq!(expect_problem(moved, StatusCode::UNPROCESSABLE_ENTITY).await["field"], "target_url");
}

#[tokio::test]
async fn a_blocklisted_domain_is_refused_and_its_existing_links_stop_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocklist = dir.path().join("blocklist.txt");
    std::fs::write(&blocklist, "# operator's list\nmalware.example\n").expect("written");
    let data = dir.path().join("data");
    let app = spawn_app_with(&data, |config| {
        config.targets.blocklist_file = Some(blocklist.clone());
        config.targets.blocklist_reload_ms = 100;
    })
    .await;
    let refused = app.post_json("/v1/links", &json!({"target_url": "https://cdn.malware.example/x"})).await;
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "target_url");
    assert!(problem["detail"].as_str().expect("detail").contains("blocked"));

    let code = app.create_to("https://phish.example/login").await;
    assert_eq!(app.get(&format!("/{code}")).await.status(), StatusCode::FOUND);
    std::fs::write(&blocklist, "malware.example\nphish.example\n").expect("rewritten");
    eventually("the newly blocked link stops", Duration::from_secs(5), async || {
        app.get(&format!("/{code}")).await.status() == StatusCode::GONE
    })
    .await;
    std::fs::write(&blocklist, "malware.example\n").expect("rewritten");
    eventually("the unblocked link redirects again", Duration::from_secs(5), async || {
        app.get(&format!("/{code}")).await.status() == StatusCode::FOUND
    })
    .await;
}

#[tokio::test]
async fn a_disabled_link_answers_410_until_enabled_again() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let off = json!({"enabled": false, "disabled_reason": "reported as spam"});
    let response = app.patch_json(&format!("/v1/links/{code}"), &off).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!((body["enabled"].as_bool(), body["disabled_reason"].as_str()), (Some(false), Some("reported as spam")));
    let gone = expect_problem(app.get(&format!("/{code}")).await, StatusCode::GONE).await;
    assert!(gone["detail"].as_str().expect("detail").contains("disabled"));
    let response = app.patch_json(&format!("/v1/links/{code}"), &json!({"enabled": true})).await;
    assert_eq!(response.json::<Value>().await.expect("json")["enabled"], true);
    assert_eq!(app.get(&format!("/{code}")).await.status(), StatusCode::FOUND);
    let reason_alone = app.patch_json(&format!("/v1/links/{code}"), &json!({"disabled_reason": "x"})).await;
    assert_eq!(expect_problem(reason_alone, StatusCode::UNPROCESSABLE_ENTITY).await["field"], "disabled_reason");
}

#[tokio::test]
async fn with_an_admin_listener_the_main_one_serves_only_redirects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path(), |config| {
        config.http.admin_listen = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    let admin = app.admin_base.clone().expect("admin listener bound");
    let created = app
        .client
        .post(format!("{admin}/v1/links"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"target_url": "https://example.com/", "alias": "split"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(app.client.get(app.url("/split")).send().await.expect("sent").status(), StatusCode::FOUND);
    assert_eq!(app.client.get(app.url("/health")).send().await.expect("sent").status(), StatusCode::OK);
    for path in ["/v1/links/split", "/metrics", "/ready", "/openapi.json"] {
        let hidden = app.client.get(app.url(path)).bearer_auth(&app.admin_key).send().await.expect("sent");
        expect_problem(hidden, StatusCode::NOT_FOUND).await;
    }
    for path in ["/v1/links/split", "/metrics", "/ready", "/health", "/openapi.json"] {
        let shown = app.client.get(format!("{admin}{path}")).bearer_auth(&app.admin_key).send().await.expect("sent");
        assert_eq!(shown.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_first_start_writes_a_private_admin_key_file_and_logs_only_its_path() {
    let (app, dir) = spawn_app().await;
    let path = dir.path().join("admin.key");
    let text = std::fs::read_to_string(&path).expect("written");
    assert!(text.trim().starts_with("kurz_bootstrap_") && text.trim().len() >= 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    app.stop().await;
    let again = common::spawn_app_in(dir.path()).await;
    assert_eq!(again.admin_key, text.trim(), "the same key after a restart");
}

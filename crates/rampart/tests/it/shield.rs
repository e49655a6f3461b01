//! Traffic protection through the running server: the limiter suite on both backends, rules,
//! shadow mode, 429 and the RateLimit fields, two instances sharing Redis, a Redis outage and
//! recovery, client-IP resolution (spoofing), security headers, CSP reports, CORS.

use rampart_config::{Config, RateLimitBackend, RateLimitKey, RateLimitRule, SecretUrl};
use rampart_core::limiter::{MemoryLimiter, RateLimitBackend as Backend, RedisLimiter};
use rampart_domain::Action;
use rampart_domain::ratelimit::Quota;
use rampart_testkit::redis::{RedisServer, redis_url, unique_prefix};
use rampart_testkit::{TestApp, TestDb};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const S: i64 = 1_000_000;

/// One sequence of decisions, driven by an explicit clock (µs), as (allowed, remaining,
/// retry_after_ms) triples.
async fn suite<B: Backend>(b: &B) -> Vec<(bool, u32, u128)> {
    let q = Quota::new(3, Duration::from_secs(30)).unwrap(); // one per 10 s, bursts of 3
    let t0 = 1_900_000_000 * S;
    let steps: &[(&str, i64)] = &[
        ("a", 0),
        ("a", 0),
        ("a", 0),
        ("a", 0),      // burst spent: refused, retry in 10 s
        ("b", 0),      // another key is untouched
        ("a", 5 * S),  // still refused, 5 s to go
        ("a", 10 * S), // one more admitted
        ("a", 10 * S), // and refused again
        ("a", 60 * S), // long idle: the whole burst is back
        ("a", 60 * S),
        ("a", 60 * S),
        ("a", 60 * S),
    ];
    let mut out = Vec::new();
    for (key, at) in steps {
        let d = b.check(key, q, t0 + at).await.unwrap();
        out.push((d.allowed, d.remaining, d.retry_after.as_millis()));
    }
    out
}

fn expected() -> Vec<(bool, u32, u128)> {
    vec![
        (true, 2, 0),
        (true, 1, 0),
        (true, 0, 0),
        (false, 0, 10_000),
        (true, 2, 0),
        (false, 0, 5_000),
        (true, 0, 0),
        (false, 0, 10_000),
        (true, 2, 0),
        (true, 1, 0),
        (true, 0, 0),
        (false, 0, 10_000),
    ]
}

#[tokio::test]
async fn the_same_limiter_suite_decides_alike_on_memory_and_redis() {
    let memory = suite(&MemoryLimiter::new(1000)).await;
    assert_eq!(memory, expected(), "memory backend");
    let Some(url) = redis_url() else { return };
    let redis = RedisLimiter::new(&url, &unique_prefix(), Duration::from_secs(2)).unwrap();
    assert_eq!(suite(&redis).await, expected(), "redis backend");
}

/// Decisions that wait together go to Redis as one script call, decided one after another in
/// arrival order: 50 at once on two keys (bursts of 10) admit exactly 10 on each, and every
/// decision equals what the same sequence decides one call at a time (the memory backend).
#[tokio::test]
async fn concurrent_redis_decisions_are_batched_and_decided_as_in_sequence() {
    let Some(url) = redis_url() else { return };
    let redis = RedisLimiter::new(&url, &unique_prefix(), Duration::from_secs(2)).unwrap();
    let q = Quota::new(10, Duration::from_secs(60)).unwrap();
    let now = 1_900_000_000 * S;
    let key = |i: usize| if i.is_multiple_of(3) { "x" } else { "y" };
    let seen = |d: rampart_domain::ratelimit::Decision| (d.allowed, d.remaining, d.retry_after.as_millis());
    let at_once = futures::future::join_all((0..50).map(|i| redis.check(key(i), q, now + i as i64))).await;
    let at_once: Vec<_> = at_once.into_iter().map(|d| seen(d.unwrap())).collect();
    let memory = MemoryLimiter::new(1000);
    let mut one_by_one = Vec::new();
    for i in 0..50 {
        one_by_one.push(seen(memory.check(key(i), q, now + i as i64).await.unwrap()));
    }
    assert_eq!(at_once, one_by_one);
    assert_eq!(at_once.iter().filter(|d| d.0).count(), 20, "ten on each key");
    assert!(redis.calls() < 50, "batched: {} calls for 50 decisions", redis.calls());
}

/// The batching task (and so the Redis connection) runs on the runtime that made the limiter,
/// not on the runtime of the first decision: the built-in proxy's event loops have runtimes of
/// their own, and a task spawned on one of them would end with it. Here the first decision is
/// made on a runtime that then ends; the next, on the limiter's own runtime, still decides.
#[tokio::test]
async fn the_redis_batching_task_lives_on_the_runtime_that_made_the_limiter() {
    let Some(url) = redis_url() else { return };
    let redis = Arc::new(RedisLimiter::new(&url, &unique_prefix(), Duration::from_secs(2)).unwrap());
    let q = Quota::new(10, Duration::from_secs(60)).unwrap();
    let now = 1_900_000_000 * S;
    let first = redis.clone();
    // Joined off this runtime, which must stay free to run the batching task meanwhile.
    let remaining = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(first.check("k", q, now)).unwrap().remaining
            // The runtime ends here, with whatever was spawned on it.
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(remaining, 9);
    let next = redis.check("k", q, now + 1).await.expect("decides after the first decision's runtime ended");
    assert_eq!((next.allowed, next.remaining), (true, 8));
}

fn rule(name: &str, path: &str, methods: &[&str], key: RateLimitKey, limit: u32) -> RateLimitRule {
    let mut r: RateLimitRule = serde_json::from_value(json!({
        "name": name, "path": path, "methods": methods, "key": key, "limit": limit, "window_secs": 60,
    }))
    .unwrap();
    r.credential = path.starts_with("/v1/auth/");
    r
}

/// Only these rules, and the login throttle out of the way (its delays and lockouts answer
/// 429 `too_many_attempts`, which is not what these tests count).
fn only(rules: Vec<RateLimitRule>) -> impl FnOnce(&mut Config) {
    move |c| {
        quiet_throttle(c);
        c.rate_limit.rules = rules;
    }
}

fn quiet_throttle(c: &mut Config) {
    c.rate_limit.enabled = true;
    c.login.delay_base_ms = 0;
    c.login.max_failures = 1000;
    c.login.ip_max_failures = 0;
}

async fn rate_limited(res: reqwest::Response) -> bool {
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    body["code"] == "rate_limited"
}

async fn login(app: &TestApp, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.post("/v1/auth/login", &json!({ "email": "nobody@example.com", "password": "wrong password" }));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_rule_refuses_with_429_retry_after_and_the_ratelimit_fields() {
    // A fixed clock: the numbers below are exact however long the password checks take.
    let clock = Arc::new(rampart_domain::clock::FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(
        TestDb::sqlite(),
        clock,
        only(vec![rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 2)]),
    )
    .await;
    let res = login(&app, &[]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["ratelimit-policy"], "\"login\";q=2;w=60");
    assert_eq!(res.headers()["ratelimit"], "\"login\";r=1;t=30");
    assert_eq!(login(&app, &[]).await.status(), 401);
    let res = login(&app, &[]).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["retry-after"], "30");
    assert_eq!(res.headers()["ratelimit"], "\"login\";r=0;t=60");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Other routes and methods are not under the rule, and carry no fields.
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("ratelimit").is_none());
    // Refusals are counted and reported.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"rampart_rate_limit_decisions_total{rule="login",outcome="limited"} 1"#), "{metrics}");
    app.wait_for_event(Action::RateLimited).await;
}

#[tokio::test]
async fn by_default_credential_endpoints_are_limited_strictly_and_service_endpoints_not_at_all() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.rate_limit = Default::default(); // the shipped defaults, on
        quiet_throttle(c);
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..11 {
        codes.push(login(&app, &[]).await.status().as_u16());
    }
    assert_eq!(codes.iter().filter(|s| **s == 429).count(), 1, "10 logins a minute per address: {codes:?}");
    let res = app.get("/v1/me").await;
    assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=600;w=60");
    let res = app.get("/healthz").await;
    assert!(res.headers().get("ratelimit-policy").is_none(), "probes are not limited by default");
}

#[tokio::test]
async fn high_volume_refusals_make_one_event_per_key_and_interval() {
    let app = TestApp::spawn_with(
        TestDb::sqlite(),
        only(vec![rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 1)]),
    )
    .await;
    for _ in 0..20 {
        login(&app, &[]).await;
    }
    app.wait_for_event(Action::RateLimited).await;
    let n = app
        .state
        .store
        .recent_events(500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.action == Action::RateLimited)
        .count();
    assert_eq!(n, 1, "19 refusals, one event");
}

#[tokio::test]
async fn shadow_mode_counts_and_reports_but_refuses_nothing() {
    let mut r = rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 1);
    r.shadow = true;
    let app = TestApp::spawn_with(TestDb::sqlite(), only(vec![r])).await;
    for _ in 0..4 {
        let res = login(&app, &[]).await;
        assert_eq!(res.status(), 401, "never 429 in shadow mode");
        assert!(res.headers().get("ratelimit").is_none(), "a shadow rule is not announced");
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"rampart_rate_limit_decisions_total{rule="login",outcome="shadow_limited"} 3"#),
        "{metrics}"
    );
    let e = app.wait_for_event(Action::RateLimited).await;
    assert_eq!(e.details["shadow"], true);
}

#[tokio::test]
async fn user_keyed_rules_give_each_user_a_bucket_and_junk_tokens_count_by_address() {
    let app =
        TestApp::spawn_with(TestDb::sqlite(), only(vec![rule("me", "/v1/me", &["GET"], RateLimitKey::User, 2)])).await;
    app.create_user("ann@example.com", "correct horse battery staple", &[]).await;
    app.create_user("bob@example.com", "correct horse battery staple", &[]).await;
    let ann = app.login("ann@example.com", "correct horse battery staple").await.access_token;
    let bob = app.login("bob@example.com", "correct horse battery staple").await.access_token;
    assert_eq!(app.me(&ann).await.0, 200);
    assert_eq!(app.me(&ann).await.0, 200);
    assert_eq!(app.me(&ann).await.0, 429);
    assert_eq!(app.me(&bob).await.0, 200, "bob has his own bucket");
    // Junk tokens do not mint buckets: they share the address's.
    assert_eq!(app.me("junk-1").await.0, 401);
    assert_eq!(app.me("junk-2").await.0, 401);
    assert_eq!(app.me("junk-3").await.0, 429);
}

#[tokio::test]
async fn a_spoofed_forwarded_header_neither_resets_a_bucket_nor_is_read_from_an_untrusted_peer() {
    let app = TestApp::spawn_with(
        TestDb::sqlite(),
        only(vec![rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 2)]),
    )
    .await;
    login(&app, &[("x-forwarded-for", "1.1.1.1")]).await;
    login(&app, &[("forwarded", "for=2.2.2.2")]).await;
    let res = login(&app, &[("x-forwarded-for", "3.3.3.3")]).await;
    assert_eq!(res.status(), 429, "each spoofed address still counts against the real peer");
    // Events carry the real peer, not the spoofed one.
    let e =
        app.state.store.recent_events(50).await.unwrap().into_iter().find(|e| e.event.action == Action::Login).unwrap();
    assert_eq!(e.event.ip.unwrap().to_string(), "127.0.0.1");
}

#[tokio::test]
async fn through_a_trusted_proxy_the_client_is_the_first_untrusted_hop_from_the_right() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.rate_limit.rules = vec![rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 1)];
        quiet_throttle(c);
    })
    .await;
    assert_eq!(login(&app, &[("x-forwarded-for", "198.51.100.7")]).await.status(), 401);
    // Prepending a spoofed hop does not make a new client: 198.51.100.7 is still the client.
    assert_eq!(login(&app, &[("x-forwarded-for", "1.1.1.1, 198.51.100.7")]).await.status(), 429);
    // A different real client has its own bucket.
    assert_eq!(login(&app, &[("x-forwarded-for", "198.51.100.8")]).await.status(), 401);
    // The resolved address is THE address: events and the login throttle see it.
    let events = app.state.store.recent_events(50).await.unwrap();
    let ips: Vec<String> = events
        .iter()
        .filter(|e| e.event.action == Action::Login)
        .filter_map(|e| e.event.ip.map(|i| i.to_string()))
        .collect();
    assert!(ips.contains(&"198.51.100.7".to_string()) && ips.contains(&"198.51.100.8".to_string()), "{ips:?}");
    // Malformed from a trusted peer: 400, nothing counted.
    let res = login(&app, &[("x-forwarded-for", "198.51.100.9, not-an-address")]).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_request");
}

#[tokio::test]
async fn two_instances_sharing_redis_admit_n_in_total() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let db = TestDb::sqlite();
    let configure = |c: &mut Config| {
        c.rate_limit.backend = RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(SecretUrl::new(&url));
        c.rate_limit.key_prefix = prefix.clone();
        c.rate_limit.rules = vec![rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 5)];
        quiet_throttle(c);
    };
    let a = TestApp::spawn_with(TestDb::sqlite(), configure).await;
    let b = TestApp::spawn_with(db, configure).await;
    let mut admitted = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        if !rate_limited(login(app, &[]).await).await {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "a limit of 5 admits 5 across both instances");
}

#[tokio::test]
async fn a_redis_outage_keeps_login_limited_and_other_routes_serving_then_recovers() {
    let Some(mut redis) = RedisServer::start().await else { return };
    let mut login_rule = rule("login", "/v1/auth/login", &["POST"], RateLimitKey::Ip, 8);
    login_rule.fallback_limit = Some(2);
    let url = redis.url();
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.rate_limit.backend = RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(SecretUrl::new(&url));
        c.rate_limit.key_prefix = unique_prefix();
        c.rate_limit.redis_retry_ms = 50;
        c.rate_limit.redis_timeout_ms = 500;
        c.rate_limit.rules = vec![login_rule, rule("health", "/healthz", &[], RateLimitKey::Ip, 1000)];
        quiet_throttle(c);
    })
    .await;
    assert_eq!(login(&app, &[]).await.status(), 401);
    assert_eq!(app.get("/healthz").await.status(), 200);

    redis.stop();
    // Login falls back to its strict local limit (2), never to unlimited.
    let statuses: Vec<u16> =
        futures::future::join_all((0..5).map(|_| login(&app, &[]))).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    let res = login(&app, &[]).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["ratelimit-policy"], "\"login\";q=2;w=60", "the fallback limit is announced");
    // Other routes keep serving (failing open to the local limiter).
    for _ in 0..5 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    let e = app.wait_for_event(Action::RateLimitDegraded).await;
    assert_eq!(e.severity, rampart_domain::Severity::Critical);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rampart_rate_limit_degraded 1"), "{metrics}");
    assert!(metrics.contains(r#"rampart_rate_limit_decisions_total{rule="login",outcome="fallback"}"#), "{metrics}");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "Redis holds only counters: the instance stays in rotation");
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["checks"]["redis"], "degraded");

    // Recovery is automatic once Redis answers again.
    redis.restart().await;
    let mut recovered = false;
    for _ in 0..200 {
        app.get("/healthz").await;
        if app
            .state
            .store
            .recent_events(500)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.action == Action::RateLimitRecovered)
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the limiter went back to Redis");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rampart_rate_limit_degraded 0"), "{metrics}");
    assert_eq!(app.get("/readyz").await.json::<serde_json::Value>().await.unwrap()["checks"]["redis"], "ok");
    // Back on Redis (fresh, empty), login has its full limit again.
    assert_eq!(login(&app, &[]).await.headers()["ratelimit-policy"], "\"login\";q=8;w=60");
}

#[tokio::test]
async fn security_headers_on_every_response_and_hsts_only_over_https() {
    let app =
        TestApp::spawn_with(TestDb::sqlite(), |c| c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    for res in [app.get("/healthz").await, app.get("/no/such/route").await] {
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        assert!(h.contains_key("permissions-policy"));
        let csp = h["content-security-policy"].to_str().unwrap();
        for d in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "report-uri /v1/csp-report"] {
            assert!(csp.contains(d), "{csp}");
        }
        assert!(h.get("strict-transport-security").is_none(), "plain HTTP: no HSTS");
        assert!(h.get("x-request-id").is_some());
    }
    let res = app.client.get(app.url("/healthz")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    // Credential-bearing responses are never cached.
    let res = login(&app, &[]).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(app.get("/healthz").await.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn hsts_is_not_believed_from_an_untrusted_peer_and_csp_can_be_report_only() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| c.headers.csp_report_only = true).await;
    let res = app.client.get(app.url("/healthz")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
    assert!(res.headers().get("content-security-policy").is_none());
    assert!(res.headers()["content-security-policy-report-only"].to_str().unwrap().contains("object-src 'none'"));
}

#[tokio::test]
async fn csp_reports_become_security_events() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |_| {}).await;
    let report = json!({ "csp-report": {
        "document-uri": "https://app.example/page", "blocked-uri": "https://evil.example/x.js",
        "violated-directive": "script-src", "original-policy": "default-src 'none'"
    }});
    let res = app
        .client
        .post(app.url("/v1/csp-report"))
        .header("content-type", "application/csp-report")
        .body(report.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let e = app.wait_for_event(Action::CspViolation).await;
    assert_eq!(e.details["blocked_uri"], "https://evil.example/x.js");
    assert_eq!(e.details["violated_directive"], "script-src");
    let res = app.client.post(app.url("/v1/csp-report")).body("not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = app.client.post(app.url("/v1/csp-report")).body("{\"other\": 1}").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rampart_csp_reports_total 1"), "{metrics}");
}

#[tokio::test]
async fn cors_answers_listed_origins_only_and_never_with_a_wildcard() {
    let app =
        TestApp::spawn_with(TestDb::sqlite(), |c| c.cors.allowed_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-evil")
            .send()
    };
    let res = preflight("https://app.example").await.unwrap();
    assert_eq!(res.status(), 204);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-headers"], "content-type", "unlisted request headers are not allowed");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let res = preflight("https://evil.example").await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app.client.get(app.url("/healthz")).header("origin", "https://app.example").send().await.unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example");
    let res = app.client.get(app.url("/healthz")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

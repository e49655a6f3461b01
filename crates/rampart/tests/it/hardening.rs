//! Security hardening (issue 15): each attack an independent review reproduced against the
//! running service, replayed through real HTTP. Every test here failed before its fix.

use crate::mfa::{PW, code_at, enable_totp};
use rampart_domain::clock::FixedClock;
use rampart_domain::{Action, Clock, Outcome};
use rampart_testkit::{TestApp, TestDb};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

/// Item 3: with `passwords.max_age_days`, the password alone of an account with a second
/// factor yielded a `change_token` (which sets a new password and ends the owner's sessions).
/// The expiry answer now comes only after the second factor.
#[tokio::test]
async fn an_expired_password_gets_its_change_token_only_after_the_second_factor() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.passwords.max_age_days = 90;
    })
    .await;
    app.create_user("ann@example.com", PW, &[]).await;
    let token = app.login("ann@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;

    clock.advance(time::Duration::days(91));
    // The password alone: only the step-up, no change_token.
    let (status, body) = app.post_json("/v1/auth/login", &json!({"email": "ann@example.com", "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("change_token").is_none(), "{body}");
    // The second factor: now the expired password is reported, with its change_token.
    let code = code_at(&secret, clock.now());
    let (status, body) =
        app.post_json("/v1/auth/login/mfa", &json!({"mfa_token": body["mfa_token"], "code": code})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("password_expired")), "{body}");
    assert!(body["change_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body.get("access_token").is_none(), "no session while the password is expired");
}

/// Item 5: a role with `users:read` and `users:write` could not PATCH an administrator but
/// could end the administrator's sessions and lift their lockout. Every admin route that acts
/// on a user now refuses a target more powerful than the caller, and changes nothing.
#[tokio::test]
async fn every_admin_route_on_a_user_refuses_a_more_powerful_target() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.login.delay_base_ms = 0).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let (s, body) = app
        .post_bearer(
            "/v1/admin/roles",
            &admin.access_token,
            &json!({"name": "support", "permissions": ["users:read", "users:write", "users:delete"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let support = app.create_and_login("help@example.com", PW, &["support"]).await;
    let plain = app.create_user("plain@example.com", PW, &[]).await;
    let root_id = app.create_user("root2@example.com", PW, &["admin"]).await.id;

    let routes: [(Method, &str, Option<serde_json::Value>); 4] = [
        (Method::PATCH, "", Some(json!({"name": "renamed"}))),
        (Method::POST, "/unlock", None),
        (Method::DELETE, "/sessions", None),
        (Method::DELETE, "", None),
    ];
    for (method, suffix, body) in &routes {
        let path = format!("/v1/admin/users/{root_id}{suffix}");
        let (s, b) = app.send_bearer(method.clone(), &path, &support.access_token, body.as_ref()).await;
        assert_eq!((s, b["code"].as_str()), (403, Some("exceeds_own_permissions")), "{method} {path}: {b}");
    }
    // Nothing happened to the administrator: still there, same name, sessions alive.
    let (s, b) = app.get_bearer(&format!("/v1/admin/users/{root_id}"), &admin.access_token).await;
    assert_eq!((s, b["user"]["name"].clone()), (200, serde_json::Value::Null), "{b}");
    assert_eq!(app.me(&admin.access_token).await.0, 200);
    // The same routes work on a target within the caller's permissions.
    for (method, suffix, body) in &routes {
        let path = format!("/v1/admin/users/{}{suffix}", plain.id);
        let (s, b) = app.send_bearer(method.clone(), &path, &support.access_token, body.as_ref()).await;
        assert!(s == 200 || s == 202 || s == 204, "{method} {path}: {s} {b}");
    }
}

/// Item 8: a refresh on an ended session committed (marking the token used) without writing
/// its `token.refreshed` failure: the audit log now has it.
#[tokio::test]
async fn a_refresh_on_an_ended_session_is_recorded() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.login.delay_base_ms = 0).await;
    app.create_user("ann@example.com", PW, &[]).await;
    let s = app.login("ann@example.com", PW).await;
    let (status, _) = app.send_bearer(Method::POST, "/v1/auth/logout", &s.access_token, None).await;
    assert_eq!(status, 204);
    let (status, body) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": s.refresh_token})).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_refresh_token")), "{body}");
    let ended = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == Action::TokenRefreshed && e.outcome == Outcome::Failure)
        .filter(|e| e.details["reason"] == "session_ended")
        .count();
    assert_eq!(ended, 1, "one token.refreshed failure naming the ended session");
}

/// Item 10: the per-`mfa_token` cap on wrong codes was read and incremented separately, so
/// concurrent wrong codes all got checked. Fifty at once now get at most the cap's worth of
/// checks; the rest find the token spent.
#[tokio::test]
async fn fifty_concurrent_wrong_codes_get_at_most_the_cap_of_checks() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.login.max_failures = 1000;
        c.login.ip_max_failures = 1000;
        c.ip_rules.auto_block_failures = 0;
        c.mfa.challenge_max_failures = 3;
    })
    .await;
    app.create_user("race@example.com", PW, &[]).await;
    let token = app.login("race@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;
    clock.advance(time::Duration::seconds(30));
    let good = code_at(&secret, clock.now());
    let bad = if good == "111111" { "222222" } else { "111111" };
    let mt = app.mfa_token("race@example.com", PW).await.mfa_token;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let answers = futures::future::join_all((0..50).map(|_| {
        let (barrier, send) =
            (barrier.clone(), app.post_json("/v1/auth/login/mfa", &json!({"mfa_token": mt, "code": bad})));
        async move {
            barrier.wait().await;
            send.await
        }
    }))
    .await;
    let checked = answers.iter().filter(|(s, b)| *s == 401 && b["code"] == "invalid_mfa_code").count();
    let spent = answers.iter().filter(|(s, b)| *s == 401 && b["code"] == "invalid_mfa_token").count();
    assert_eq!(checked, 3, "exactly the cap's worth of codes were checked");
    assert_eq!(spent, 47, "{answers:?}");
    let (s, body) = app.post_json("/v1/auth/login/mfa", &json!({"mfa_token": mt, "code": good})).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_token")), "{body}");
}

/// Item 17: `?q=%00` in the admin user search matched every user, and a NUL was accepted in an
/// IP rule's `reason`. Control characters are refused in every text input at the boundary
/// (JSON bodies and query strings), with `validation_failed` naming the field, storing nothing.
#[tokio::test]
async fn control_characters_are_refused_in_bodies_and_queries_and_nothing_is_stored() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.login.delay_base_ms = 0).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (s, b) = app.get_bearer("/v1/admin/users?q=%00", &admin).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("validation_failed")), "{b}");
    assert_eq!(
        (b["errors"][0]["field"].as_str(), b["errors"][0]["code"].as_str()),
        (Some("q"), Some("control_character"))
    );
    let (s, b) = app
        .post_bearer(
            "/v1/admin/ip-rules",
            &admin,
            &json!({"network": "192.0.2.0/24", "action": "block", "reason": "spam\u{0}ignore"}),
        )
        .await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (400, Some("reason")), "{b}");
    let (_, rules) = app.get_bearer("/v1/admin/ip-rules", &admin).await;
    assert_eq!(rules["items"], json!([]), "nothing stored");
    for name in ["line\nbreak", "tab\there", "del\u{7f}ete"] {
        let (s, b) = app
            .post_json("/v1/auth/register", &json!({"email": "new@example.com", "password": PW, "name": name}))
            .await;
        assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("control_character")), "{name:?}: {b}");
    }
    let (s, _) = app.get_bearer("/v1/admin/users?q=new", &admin).await;
    assert_eq!(s, 200);
    let (_, users) = app.get_bearer("/v1/admin/users?q=new%40example.com", &admin).await;
    assert_eq!(users["items"], json!([]), "no account was created");
}

/// Item 1: behind a trusted proxy (which appends to `X-Forwarded-For`), a client's own
/// `Forwarded` header was preferred, so the client chose its address: an admin allowlist
/// turned from 403 to 200, and rotating the header reset rate limits and forged audit
/// addresses. Now only `server.client_ip_header` is read; every consumer sees the proxy's hop.
#[tokio::test]
async fn behind_a_proxy_a_clients_own_forwarded_header_chooses_nothing() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.login.delay_base_ms = 0;
        c.login.max_failures = 1000;
        c.login.ip_max_failures = 3;
        c.ip_rules.auto_block_failures = 0;
    })
    .await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (s, b) = app
        .post_bearer(
            "/v1/admin/ip-rules",
            &admin,
            &json!({"network": "10.9.9.0/24", "action": "allow", "scope": "admin"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // The proxy says the client is 198.51.100.7; the client adds `Forwarded: for=10.9.9.9`.
    let admin_call = |forwarded: &str| {
        app.client
            .get(app.url("/v1/admin/ip-rules"))
            .bearer_auth(&admin)
            .header("x-forwarded-for", "198.51.100.7")
            .header("forwarded", format!("for={forwarded}"))
            .header("x-real-ip", forwarded.to_string())
            .send()
    };
    let res = admin_call("10.9.9.9").await.unwrap();
    assert_eq!(res.status(), 403, "the allowlist is not opened by the client's own header");
    // The per-address login throttle and the audit address follow the proxy's hop.
    let mut statuses = Vec::new();
    for i in 0..5 {
        let res = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", "198.51.100.7")
            .header("forwarded", format!("for=203.0.113.{i}"))
            .json(&json!({"email": "ghost@example.com", "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "rotating Forwarded does not reset the address throttle");
    let ips: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == Action::Login && e.outcome != Outcome::Success)
        .filter_map(|e| e.ip.map(|i| i.to_string()))
        .collect();
    assert!(!ips.is_empty() && ips.iter().all(|i| i == "198.51.100.7"), "{ips:?}");
}

/// Item 11: `/metrics` was public. It answers only clients in `server.metrics_allow`
/// (loopback by default), as resolved through the trusted proxies; everyone else gets 404.
#[tokio::test]
async fn metrics_answer_only_the_allowed_networks() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |_| {}).await;
    assert_eq!(app.get("/metrics").await.status(), 200, "loopback is allowed by default");
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.server.metrics_allow = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let scrape =
        |client: &str| app.client.get(app.url("/metrics")).header("x-forwarded-for", client.to_string()).send();
    let res = scrape("198.51.100.7").await.unwrap();
    assert_eq!(res.status(), 404);
    let body = res.text().await.unwrap();
    assert!(!body.contains("rampart_http_requests_total"), "{body}");
    assert_eq!(scrape("10.1.2.3").await.unwrap().status(), 200, "the monitoring network scrapes");
    assert_eq!(app.get("/metrics").await.status(), 404, "loopback is no longer listed");
}

/// Issue 25: `/metrics` honours `Accept`. Prometheus asks for OpenMetrics first and gets it;
/// anything else (curl's `*/*`, no header) gets the classic text format 0.0.4, which promtool's
/// own parser accepts (`promtool check metrics`; `.ci/run` installs promtool).
#[tokio::test]
async fn metrics_speak_openmetrics_to_prometheus_and_the_text_format_to_the_rest() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |_| {}).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let scrape = |accept: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        async move {
            let res = req.send().await.unwrap();
            let ct = res.headers()["content-type"].to_str().unwrap().to_string();
            (ct, res.text().await.unwrap())
        }
    };
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (ct, om) = scrape(Some(prometheus)).await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.trim_end().ends_with("# EOF"));
    for accept in [None, Some("*/*"), Some("text/plain"), Some("application/openmetrics-text;q=0, text/plain")] {
        let (ct, text) = scrape(accept).await;
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8", "{accept:?}");
        assert!(!text.contains("# EOF") && text.contains("# TYPE rampart_http_requests_total counter"), "{text}");
    }
    let (_, text) = scrape(None).await;
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    match promtool {
        Ok(mut child) => {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            // promtool exits 1 for lint warnings too (it reports them as "…: <problem>");
            // a parse error reads "error while linting".
            assert!(!said.contains("error while linting"), "promtool cannot parse it: {said}");
        }
        Err(e) => assert!(std::env::var_os("CI").is_none(), "CI installs promtool: {e}"),
    }
}

/// Item 9: the password-hashing queue was unbounded, so a login flood left minutes of hashing
/// behind it. With the queue full, a login answers 503 `overloaded` with `Retry-After` at once
/// (and its attempt is not counted); the service recovers as soon as the flood ends.
#[tokio::test]
async fn a_login_flood_past_the_hashing_queue_is_refused_with_503_overloaded() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.passwords.max_concurrent_hashes = Some(1);
        c.passwords.hashing_queue = 1;
        c.rate_limit.enabled = false;
        c.login.delay_base_ms = 0;
        c.login.ip_max_failures = 1000;
        c.ip_rules.auto_block_failures = 0;
    })
    .await;
    app.create_user("ann@example.com", PW, &[]).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(30));
    let answers = futures::future::join_all((0..30).map(|i| {
        let barrier = barrier.clone();
        let send = app
            .client
            .post(app.url("/v1/auth/login"))
            .json(&json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}))
            .send();
        async move {
            barrier.wait().await;
            send.await.unwrap()
        }
    }))
    .await;
    let mut overloaded = 0;
    for res in answers {
        match res.status().as_u16() {
            401 => {}
            503 => {
                assert!(res.headers().get("retry-after").is_some());
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["code"], "overloaded", "{body}");
                overloaded += 1;
            }
            other => panic!("unexpected status {other}: {}", res.text().await.unwrap()),
        }
    }
    assert!(overloaded > 0, "30 concurrent logins on one thread with a queue of one: some were refused");
    assert!(!app.login("ann@example.com", PW).await.access_token.is_empty(), "service recovers");
}

/// Item 12: `POST /v1/auth/passkey/start` stored a row per anonymous request, without limit.
/// The shipped credential rules now limit it per address, and all pending passkey sign-ins
/// together are capped (`webauthn.max_pending_passkeys`).
#[tokio::test]
async fn anonymous_passkey_starts_are_limited_per_address_and_capped_in_total() {
    // The shipped rules (the test kit turns rate limits off unless a test is about them).
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.rules = rampart_config::RateLimitRule::defaults();
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(app.post_json("/v1/auth/passkey/start", &json!({})).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");

    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.rate_limit.enabled = false;
        c.webauthn.max_pending_passkeys = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.post_json("/v1/auth/passkey/start", &json!({})).await.0, 200);
    }
    let (s, b) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
    assert_eq!((s, b["code"].as_str()), (503, Some("overloaded")), "{b}");
}

/// Item 7: with e-mail verification on, registering a taken address must not tell it apart
/// from a new one: the same status, the same body, the same work (one password hash each),
/// and the owner of the taken address is told instead.
#[tokio::test]
async fn with_verification_on_a_taken_address_registers_like_a_new_one() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.accounts.verify_email = true).await;
    app.create_user("taken@example.com", PW, &[]).await;
    let before = app.state.hashing.runs();
    let (s_new, b_new) =
        app.post_json("/v1/auth/register", &json!({"email": "fresh@example.com", "password": PW})).await;
    let after_new = app.state.hashing.runs();
    let (s_taken, b_taken) =
        app.post_json("/v1/auth/register", &json!({"email": "taken@example.com", "password": PW})).await;
    let after_taken = app.state.hashing.runs();
    assert_eq!((s_new, &b_new), (202, &json!({"status": "accepted"})));
    assert_eq!((s_taken, &b_taken), (s_new, &b_new), "same status and body");
    assert_eq!(after_new - before, after_taken - after_new, "the same hashing work on both paths");
    assert!(app.has_event(Action::UserCreated, Outcome::Failure).await, "the attempt is recorded");
}

/// Item 13 (second half): an automatic block of an IPv6 client covered one address, so the
/// client stepped to the next one in its /64. Blocks, like the login throttle, cover the /64.
#[tokio::test]
async fn automatic_blocks_of_an_ipv6_client_cover_its_64() {
    // SQLite: the test ends on a refused request whose event a spawned task writes, and a
    // PostgreSQL schema drop at teardown would wait on that task's cut-off transaction.
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.login.delay_base_ms = 0;
        c.login.max_failures = 1000;
        c.login.ip_max_failures = 1000;
        c.ip_rules.auto_block_failures = 3;
    })
    .await;
    let login_from = |ip: &str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", ip.to_string())
            .json(&json!({"email": "ghost@example.com", "password": "wrong password"}))
            .send()
    };
    // Each failure from another address of the same /64.
    for i in 1..=4 {
        let _ = login_from(&format!("2001:db8:1:2::{i}")).await.unwrap();
    }
    let e = app.wait_for_event(Action::IpRuleCreated).await;
    assert_eq!(e.details["network"], "2001:db8:1:2::/64", "{:?}", e.details);
    // A fresh address of the same /64 is refused; another /64 is not.
    let res = app.client.get(app.url("/healthz")).header("x-forwarded-for", "2001:db8:1:2::99").send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app.client.get(app.url("/healthz")).header("x-forwarded-for", "2001:db8:1:3::1").send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Item 13 (first half): a well-formed junk API key (the checksum is easy to forge) cost a
/// database lookup per request. Unknown keys are now remembered briefly (bounded) and count
/// against their address like failed logins, up to an automatic block.
#[tokio::test]
async fn junk_api_keys_are_remembered_briefly_and_count_against_their_address() {
    // SQLite, for the reason given at the IPv6 test below.
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| c.ip_rules.auto_block_failures = 5).await;
    let junk = rampart_domain::apikey::ApiKey::generate(&mut rand::rngs::OsRng);
    let call = || {
        app.client
            .post(app.url("/v1/authz/check"))
            .header("x-api-key", junk.expose())
            .json(&json!({"permission": "users:read"}))
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 401);
    assert_eq!(app.state.api_keys.remembered_misses(), 1, "the unknown key is remembered");
    for _ in 0..5 {
        assert_eq!(call().await.unwrap().status(), 401);
    }
    // Past five failures the address is blocked.
    let e = app.wait_for_event(Action::IpRuleCreated).await;
    assert_eq!(e.details["network"], "127.0.0.1/32", "{:?}", e.details);
    assert_eq!(app.get("/healthz").await.status(), 403);
}

/// Item 4: a session alone minted keys that never expire, and neither a password reset nor a
/// change touched them, so a stolen 10-minute token became lasting access. Creating or rotating
/// a key now needs a recent sign-in (or the password), a completed reset revokes the keys, and
/// `api_keys.max_lifetime_days` caps a key's life.
#[tokio::test]
async fn api_keys_need_a_recent_sign_in_die_with_a_reset_and_have_a_maximum_life() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.api_keys.max_lifetime_days = Some(30);
    })
    .await;
    app.create_user("ann@example.com", PW, &["admin"]).await;
    let token = app.login("ann@example.com", PW).await.access_token;
    let create = |body: serde_json::Value| app.post_bearer("/v1/me/api-keys", &token, &body);
    // Fresh sign-in: allowed; without an expiry the key gets the maximum life.
    let (s, key) = create(json!({"name": "ci", "scopes": ["users:read"]})).await;
    assert_eq!(s, 201, "{key}");
    assert!(key["expires_at"].is_string(), "capped at api_keys.max_lifetime_days: {key}");
    let (s, b) = create(json!({"name": "long", "scopes": ["users:read"], "expires_in_days": 31})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (400, Some("expires_in_days")), "{b}");

    // Six minutes after its sign-in, a session (a stolen token, say) needs the password.
    let old = app.login("ann@example.com", PW).await.access_token;
    clock.advance(time::Duration::minutes(6));
    let (s, b) = app.post_bearer("/v1/me/api-keys", &old, &json!({"name": "x", "scopes": ["users:read"]})).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("reauthentication_required")), "{b}");
    let (s, b) = app
        .post_bearer("/v1/me/api-keys", &old, &json!({"name": "x", "scopes": ["users:read"], "password": "wrong one!"}))
        .await;
    assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("password_incorrect")), "{b}");
    let (s, b) =
        app.post_bearer("/v1/me/api-keys", &old, &json!({"name": "x", "scopes": ["users:read"], "password": PW})).await;
    assert_eq!(s, 201, "{b}");
    let id = key["id"].as_str().unwrap();
    let (s, b) = app.post_bearer(&format!("/v1/me/api-keys/{id}/rotate"), &old, &json!({})).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("reauthentication_required")), "{b}");

    // A completed password reset revokes every key.
    let first_key = key["key"].as_str().unwrap().to_string();
    let verify = |k: &str| {
        app.client
            .post(app.url("/v1/authz/check"))
            .header("x-api-key", k.to_string())
            .json(&json!({"permission": "users:read"}))
            .send()
    };
    assert_eq!(verify(&first_key).await.unwrap().status(), 200);
    let user = app
        .state
        .store
        .find_user_by_email(&rampart_domain::Email::parse("ann@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let reset = rampart_domain::OpaqueToken::generate(rampart_domain::TokenKind::ResetPassword, &mut rand::rngs::OsRng);
    let now = clock.now();
    app.state
        .store
        .create_account_token(
            reset.hash(),
            rampart_store::TokenPurpose::ResetPassword,
            user.id,
            user.email.as_str(),
            now,
            now + time::Duration::minutes(30),
            None,
        )
        .await
        .unwrap();
    let (s, b) = app
        .post_json(
            "/v1/auth/password/reset",
            &json!({"token": reset.expose(), "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(verify(&first_key).await.unwrap().status(), 401, "the reset revoked the key");
}

/// The `mfa` part of `/v1/me`: `{totp, webauthn, backup_codes_left}`.
async fn factors_of(app: &TestApp, token: &str) -> serde_json::Value {
    let (s, me) = app.me(token).await;
    assert_eq!(s, 200, "{me}");
    me["user"]["mfa"].clone()
}

/// Item 6: changing a second factor needed only the password (ASVS 7.5.1), so a session and the
/// password made a permanent bypass: new backup codes, an own passkey, TOTP off. Once an account
/// has a second factor, every factor change now also needs a current one (an authenticator code
/// or a backup code, which is then spent); the password alone changes nothing.
#[tokio::test]
async fn with_a_second_factor_the_password_alone_changes_no_factor() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        crate::webauthn::rp(c);
        c.login.delay_base_ms = 0;
    })
    .await;
    app.create_user("ann@example.com", PW, &[]).await;
    let token = app.login("ann@example.com", PW).await.access_token;
    // The first factor needs only the password.
    let (secret, backup) = enable_totp(&app, &token, clock.now()).await;
    let next_code = || {
        clock.advance(time::Duration::seconds(30));
        code_at(&secret, clock.now())
    };
    // With a current code: a passkey is added.
    let mut key = crate::webauthn::SoftKey::new();
    let reauth = json!({"password": PW, "code": next_code()});
    let passkey = crate::webauthn::register_with(&app, &token, &mut key, "Key", &reauth).await;
    let before = factors_of(&app, &token).await;
    assert_eq!(before, json!({"totp": true, "webauthn": true, "backup_codes_left": 10}));

    // A session signed in with the password alone (as a thief with the password has), and the
    // password: every factor change is refused, and nothing changes.
    let pw = json!({"password": PW});
    let delete = format!("/v1/me/mfa/webauthn/{passkey}");
    let attempts: [(Method, &str); 5] = [
        (Method::POST, "/v1/me/mfa/backup-codes"),
        (Method::POST, "/v1/me/mfa/webauthn/register/start"),
        (Method::POST, "/v1/me/mfa/totp/setup"),
        (Method::POST, "/v1/me/mfa/totp/disable"),
        (Method::DELETE, &delete),
    ];
    for (method, path) in &attempts {
        let (s, b) = app.send_bearer(method.clone(), path, &token, Some(&pw)).await;
        assert_eq!((s, b["code"].as_str()), (403, Some("second_factor_required")), "{method} {path}: {b}");
    }
    assert_eq!(factors_of(&app, &token).await, before, "nothing changed");
    let (_, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
    assert_eq!(list["items"][0]["id"], passkey.as_str(), "the passkey is still there");
    let denied = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == Action::MfaFailed && e.outcome == Outcome::Denied)
        .filter(|e| e.details["reason"] == "second_factor_required")
        .count();
    assert_eq!(denied, 5, "each refusal is in the audit log");

    // A wrong code is refused like a wrong password, and changes nothing either.
    let (s, b) =
        app.post_bearer("/v1/me/mfa/backup-codes", &token, &json!({"password": PW, "code": "not-a-code"})).await;
    assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("invalid_code")), "{b}");
    assert_eq!(factors_of(&app, &token).await, before);

    // The password and a current authenticator code: new backup codes.
    let (s, b) =
        app.post_bearer("/v1/me/mfa/backup-codes", &token, &json!({"password": PW, "code": next_code()})).await;
    assert_eq!(s, 200, "{b}");
    let fresh: Vec<String> = b["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    let (s, b) =
        app.send_bearer(Method::DELETE, &delete, &token, Some(&json!({"password": PW, "code": backup[0]}))).await;
    assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("invalid_code")), "the old set is dead: {b}");

    // The password and a backup code: the passkey goes, and the code is spent.
    let (s, b) =
        app.send_bearer(Method::DELETE, &delete, &token, Some(&json!({"password": PW, "code": fresh[0]}))).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(factors_of(&app, &token).await, json!({"totp": true, "webauthn": false, "backup_codes_left": 9}));
    let (s, b) = app.post_bearer("/v1/me/mfa/totp/disable", &token, &json!({"password": PW, "code": fresh[0]})).await;
    assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("invalid_code")), "a backup code works once: {b}");

    // The password and a current code: TOTP goes (its backup codes with it).
    let (s, b) =
        app.post_bearer("/v1/me/mfa/totp/disable", &token, &json!({"password": PW, "code": next_code()})).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(factors_of(&app, &token).await, json!({"totp": false, "webauthn": false, "backup_codes_left": 0}));

    // No factor left: the password alone sets up the first one again.
    let (s, b) = app.post_bearer("/v1/me/mfa/totp/setup", &token, &pw).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.post_bearer("/v1/me/mfa/webauthn/register/start", &token, &pw).await;
    assert_eq!(s, 200, "{b}");
}

/// Item 6 (the other way to show a factor): a session opened with the password and a second
/// factor moments ago stands in for the code, within `security.reauth_window_secs` only; a
/// recent password-only session never does, and refreshing a session does not make it recent.
#[tokio::test]
async fn a_fresh_multi_factor_sign_in_stands_in_for_the_code_within_the_window() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.security.reauth_window_secs = 300;
    })
    .await;
    app.create_user("ann@example.com", PW, &[]).await;
    let first = app.login("ann@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &first, clock.now()).await;
    let pw = json!({"password": PW});

    // Signed in with the password and a code just now: no code needed.
    clock.advance(time::Duration::seconds(30));
    let mt = app.mfa_token("ann@example.com", PW).await.mfa_token;
    let (s, mfa) =
        app.post_json("/v1/auth/login/mfa", &json!({"mfa_token": mt, "code": code_at(&secret, clock.now())})).await;
    assert_eq!(s, 200, "{mfa}");
    let token = mfa["access_token"].as_str().unwrap().to_string();
    let (s, b) = app.post_bearer("/v1/me/mfa/backup-codes", &token, &pw).await;
    assert_eq!(s, 200, "{b}");
    // The password is still asked.
    let (s, b) = app.post_bearer("/v1/me/mfa/backup-codes", &token, &json!({"password": "not the password"})).await;
    assert_eq!((s, b["errors"][0]["code"].as_str()), (400, Some("password_incorrect")), "{b}");
    // The first session (the password alone, before TOTP), 30 s old: recent, but one factor.
    let (s, b) = app.post_bearer("/v1/me/mfa/backup-codes", &first, &pw).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("second_factor_required")), "{b}");
    clock.advance(time::Duration::seconds(300));
    let (s, b) = app.post_bearer("/v1/me/mfa/webauthn/register/start", &token, &pw).await;
    assert_eq!(s, 200, "at the window's edge: {b}");

    // Past the window: the multi-factor session needs the code too, refreshed or not.
    clock.advance(time::Duration::seconds(1));
    let (s, b) = app.post_bearer("/v1/me/mfa/backup-codes", &token, &pw).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("second_factor_required")), "{b}");
    let (s, refreshed) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": mfa["refresh_token"]})).await;
    assert_eq!(s, 200, "{refreshed}");
    let refreshed = refreshed["access_token"].as_str().unwrap().to_string();
    let (s, b) = app.post_bearer("/v1/me/mfa/totp/disable", &refreshed, &pw).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("second_factor_required")), "{b}");
    let (s, b) = app
        .post_bearer(
            "/v1/me/mfa/totp/disable",
            &refreshed,
            &json!({"password": PW, "code": code_at(&secret, clock.now())}),
        )
        .await;
    assert_eq!(s, 204, "with the code: {b}");
}

/// Item 6 (throttle): a wrong code at TOTP disable was recorded but not counted, so fifteen
/// wrong codes drew no 429. Every code at a factor-gated route (the re-authentication's `code`,
/// `/totp/enable`) now counts toward the login throttle like a wrong password, with the shipped
/// settings: delays from the second failure, then the lockout, shared with the password login.
#[tokio::test]
async fn wrong_codes_at_factor_changes_count_toward_the_login_throttle() {
    // The clock stands still, so an owed delay never passes: the answers are exact.
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |_| {}).await;
    app.create_user("ann@example.com", PW, &[]).await;
    let token = app.login("ann@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;
    clock.advance(time::Duration::seconds(30));
    let good = code_at(&secret, clock.now());
    let wrong = if good == "111111" { "222222" } else { "111111" };

    let mut statuses = Vec::new();
    for _ in 0..15 {
        let res = app
            .authed(Method::POST, "/v1/me/mfa/totp/disable", &token)
            .json(&json!({"password": PW, "code": wrong}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status == 429 {
            let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1, "Retry-After: {retry}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["code"], "too_many_attempts", "{body}");
        }
        statuses.push(status);
    }
    let mut expected = vec![400, 400];
    expected.resize(15, 429);
    assert_eq!(statuses, expected, "the second failure owes a delay (login.delay_base_ms)");
    // Even the right code waits now, and so does the password login: one throttle.
    let (s, b) = app.post_bearer("/v1/me/mfa/totp/disable", &token, &json!({"password": PW, "code": good})).await;
    assert_eq!((s, b["code"].as_str()), (429, Some("too_many_attempts")), "{b}");
    let (s, _) = app.post_json("/v1/auth/login", &json!({"email": "ann@example.com", "password": PW})).await;
    assert_eq!(s, 429);
    assert_eq!(factors_of(&app, &token).await["totp"], true, "TOTP is still on");

    // Past the delays, the lockout: five failures in the window lock the account.
    clock.advance(time::Duration::seconds(60));
    let bob = app.create_and_login("bob@example.com", PW, &[]).await.access_token;
    let (s, setup) = app.post_bearer("/v1/me/mfa/totp/setup", &bob, &json!({"password": PW})).await;
    assert_eq!(s, 200, "{setup}");
    let bob_secret = crate::mfa::secret_bytes(&setup);
    let good = code_at(&bob_secret, clock.now());
    let wrong = if good == "111111" { "222222" } else { "111111" };
    let mut statuses = Vec::new();
    for _ in 0..7 {
        // Each try after the owed delay (1 s, 2 s, 4 s, …).
        clock.advance(time::Duration::seconds(10));
        statuses.push(app.post_bearer("/v1/me/mfa/totp/enable", &bob, &json!({"code": wrong})).await.0);
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429, 429], "wrong codes at /totp/enable count too");
    let (s, b) =
        app.post_bearer("/v1/me/mfa/totp/enable", &bob, &json!({"code": code_at(&bob_secret, clock.now())})).await;
    assert_eq!((s, b["code"].as_str()), (429, Some("too_many_attempts")), "locked: {b}");
    assert!(app.actions().await.iter().any(|a| a == "auth.lockout"));
}

/// The codes of a `validation_failed` answer, by field.
fn field_codes(problem: &serde_json::Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| (e["field"].as_str().unwrap_or("").to_string(), e["code"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Item 16: `аdmin@example.test` (Cyrillic а) and a fullwidth `ａdmin@…` registered beside
/// `admin@example.test`. Addresses are now normalised (NFKC, lower case, the domain's ASCII
/// form) and new local parts must pass UTS #39: the Cyrillic one is refused, the fullwidth one
/// is the same address, and logs in to the same account.
#[tokio::test]
async fn look_alike_addresses_are_refused_or_are_the_same_account() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        c.login.max_failures = 3;
    })
    .await;
    let register = |email: &str| app.post_json("/v1/auth/register", &json!({"email": email, "password": PW}));
    let (status, created) = register("admin@example.test").await;
    assert_eq!(status, 201, "{created}");

    // Mixed scripts (Latin with one Cyrillic а), an all-Cyrillic look-alike of "ape", an
    // invisible character: refused, each with its own code under `email`.
    for (email, code) in [
        ("\u{430}dmin@example.test", "email_mixed_script"),
        ("\u{430}\u{440}\u{435}@example.test", "email_confusable"),
        ("ad\u{200b}min@example.test", "email_disallowed_character"),
    ] {
        let (status, p) = register(email).await;
        assert_eq!((status, p["code"].as_str()), (400, Some("validation_failed")), "{email:?}: {p}");
        assert_eq!(field_codes(&p), vec![("email".to_string(), code.to_string())], "{email:?}");
    }
    // Fullwidth letters, @ and full stop are the address itself: taken.
    for email in ["\u{ff41}dmin@example.test", "ＡＤＭＩＮ＠ｅｘａｍｐｌｅ．ｔｅｓｔ", " Admin@EXAMPLE.test "]
    {
        let (status, p) = register(email).await;
        assert_eq!((status, p["code"].as_str()), (409, Some("email_taken")), "{email:?}: {p}");
    }
    assert_eq!(app.state.store.count_users().await.unwrap(), 1, "never a second account");

    // The other doors (the CLI, later the admin API) go through the same use case.
    let input = rampart_core::services::users::CreateUser {
        email: "\u{430}dmin@example.test".into(),
        password: rampart_domain::Secret::new(PW.into()),
        name: None,
        roles: Vec::new(),
    };
    match rampart_core::services::users::create_user(&app.state, input, rampart_domain::Actor::System, "cli").await {
        Err(rampart_core::ServiceError::Validation(problems)) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].code, "email_mixed_script");
        }
        other => panic!("{other:?}"),
    }

    // The fullwidth spelling signs in to the one account.
    let (status, tokens) =
        app.post_json("/v1/auth/login", &json!({"email": "ＡＤＭＩＮ@example.test", "password": PW})).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, me) = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["user"]["id"], created["user"]["id"]);
    assert_eq!(me["user"]["email"], "admin@example.test");

    // Spellings share one failure count: three wrong guesses in three spellings lock the
    // address for the right password in a fourth.
    for email in ["admin@example.test", "\u{ff41}dmin@example.test", "ADMIN@example.test"] {
        let (status, _) =
            app.post_json("/v1/auth/login", &json!({"email": email, "password": "not the password"})).await;
        assert_eq!(status, 401, "{email}");
    }
    let (status, p) = app.post_json("/v1/auth/login", &json!({"email": "Admin@Example.Test", "password": PW})).await;
    assert_eq!((status, p["code"].as_str()), (429, Some("too_many_attempts")), "{p}");
}

/// Item 16: an internationalised domain is stored once, in its ASCII (punycode) form, whether
/// it was typed in Unicode or punycode; both spellings reach the one account.
#[tokio::test]
async fn an_idn_domain_is_stored_in_one_form() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.login.delay_base_ms = 0).await;
    let (status, created) =
        app.post_json("/v1/auth/register", &json!({"email": "Jürgen@Bücher.example", "password": PW})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["email"], "jürgen@xn--bcher-kva.example");
    let (status, p) =
        app.post_json("/v1/auth/register", &json!({"email": "jürgen@xn--bcher-kva.example", "password": PW})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("email_taken")));
    // Decomposed ü (u + combining diaeresis) in both parts: the same address after NFKC.
    let (status, p) = app
        .post_json("/v1/auth/register", &json!({"email": "ju\u{308}rgen@bu\u{308}cher.example", "password": PW}))
        .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("email_taken")));
    for email in ["jürgen@bücher.example", "JÜRGEN@XN--BCHER-KVA.EXAMPLE"] {
        let (status, tokens) = app.post_json("/v1/auth/login", &json!({"email": email, "password": PW})).await;
        assert_eq!(status, 200, "{email}: {tokens}");
    }
    assert_eq!(app.state.store.count_users().await.unwrap(), 1);
    let (status, p) = app.post_json("/v1/auth/register", &json!({"email": "bob@xn--a.example", "password": PW})).await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(field_codes(&p), vec![("email".to_string(), "email_invalid_domain".to_string())]);
}

/// Item 16, with e-mail verification on: a fullwidth spelling of a taken address answers like
/// any registration (202), creates nothing, and the notice goes to the account's address.
#[tokio::test]
async fn with_verification_on_a_look_alike_of_a_taken_address_creates_nothing() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.accounts.verify_email = true).await;
    app.create_user("admin@example.test", PW, &[]).await;
    let (status, body) =
        app.post_json("/v1/auth/register", &json!({"email": "\u{ff41}dmin@example.test", "password": PW})).await;
    assert_eq!((status, body), (202, json!({"status": "accepted"})));
    assert_eq!(app.state.store.count_users().await.unwrap(), 1);
    let (status, p) =
        app.post_json("/v1/auth/register", &json!({"email": "\u{430}dmin@example.test", "password": PW})).await;
    assert_eq!(field_codes(&p), vec![("email".to_string(), "email_mixed_script".to_string())], "{status} {p}");
}

/// Item 19: the list of common passwords let `password12345` through, and would have let
/// `Summer2024!`, `iloveyou1234` and `qwertyuiop1!`. The strength estimate refuses them at
/// registration, change and reset, with the estimator's advice in the message.
#[tokio::test]
async fn patterned_passwords_are_refused_as_weak_everywhere_with_advice() {
    let sink = rampart_testkit::smtp::SmtpSink::start().await;
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        sink.configure(c);
    })
    .await;
    const WEAK: [&str; 4] = ["password12345", "Summer2024!", "iloveyou1234", "qwertyuiop1!"];
    let weak = |p: &serde_json::Value, field: &str, pw: &str| {
        assert_eq!(p["code"], "validation_failed", "{pw}: {p}");
        assert_eq!(field_codes(p), vec![(field.to_string(), "password_weak".to_string())], "{pw}");
        let message = p["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("password is too easy to guess (strength "), "{message}");
        assert!(message.contains("at least 3 needed"), "{message}");
        assert!(message.len() > 80, "the estimator's advice is in the message: {message}");
    };
    for pw in WEAK {
        let (status, p) =
            app.post_json("/v1/auth/register", &json!({"email": "new@example.test", "password": pw})).await;
        assert_eq!(status, 400, "{pw}");
        weak(&p, "password", pw);
    }
    assert_eq!(app.state.store.count_users().await.unwrap(), 0);

    // The account's own words: strong for a stranger, weak for Zephyrine Quillfeather.
    let (status, p) = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "zq@example.test", "name": "Zephyrine Quillfeather", "password": "quillfeather77"}),
        )
        .await;
    assert_eq!(status, 400);
    weak(&p, "password", "quillfeather77");
    let (status, p) = app
        .post_json("/v1/auth/register", &json!({"email": "stranger@example.test", "password": "quillfeather77"}))
        .await;
    assert_eq!(status, 201, "{p}");
    // And the product's name.
    let (status, p) =
        app.post_json("/v1/auth/register", &json!({"email": "other@example.test", "password": "Rampart2024!"})).await;
    assert_eq!(status, 400);
    weak(&p, "password", "Rampart2024!");

    let user = app.create_and_login("user@example.test", PW, &[]).await;
    for pw in WEAK {
        let change = json!({"current_password": PW, "new_password": pw});
        let (status, p) = app.post_bearer("/v1/me/password", &user.access_token, &change).await;
        assert_eq!(status, 400, "{pw}");
        weak(&p, "new_password", pw);
    }

    app.post_json("/v1/auth/password/forgot", &json!({"email": "user@example.test"})).await;
    let mail = sink.wait_for("user@example.test", std::time::Duration::from_secs(10)).await;
    let link = rampart_testkit::smtp::find_link(&mail.text, "token=").unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    for pw in WEAK {
        let (status, p) = app.post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": pw})).await;
        assert_eq!(status, 400, "{pw}");
        weak(&p, "new_password", pw);
    }
    let (status, _) = app
        .post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": "tangerine obelisk quietly"}))
        .await;
    assert_eq!(status, 204, "a strong password is taken, and the token was not used up by the refusals");
    app.login("user@example.test", "tangerine obelisk quietly").await;
}

/// Item 19: `passwords.min_strength = 0` turns the estimate off (the list, length rules and
/// history still apply).
#[tokio::test]
async fn min_strength_zero_turns_the_estimate_off() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.passwords.min_strength = 0).await;
    assert_eq!(app.state.password_policy().min_strength, 0);
    let (status, p) =
        app.post_json("/v1/auth/register", &json!({"email": "a@example.test", "password": "Summer2024!"})).await;
    assert_eq!(status, 201, "{p}");
    let (status, p) =
        app.post_json("/v1/auth/register", &json!({"email": "b@example.test", "password": "password"})).await;
    assert_eq!(status, 400);
    assert_eq!(field_codes(&p), vec![("password".to_string(), "password_common".to_string())]);
}

//! Accounts through the running server: registration, login throttling and lockout, sessions,
//! refresh rotation and reuse, cookie mode with CSRF, password change, reset and expiry,
//! e-mail verification, introspection.

use rampart_domain::Action;
use rampart_domain::clock::FixedClock;
use rampart_testkit::smtp::{SmtpSink, find_link};
use rampart_testkit::{TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "correct horse battery staple";

async fn body(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Fast, lock-free defaults for tests that are not about throttling.
fn no_delays(c: &mut rampart_config::Config) {
    c.login.delay_base_ms = 0;
}

async fn actions(app: &TestApp) -> Vec<(String, String)> {
    app.state
        .store
        .recent_events(500)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.action.as_str().to_string(), e.event.outcome.as_str().to_string()))
        .collect()
}

async fn has_event(app: &TestApp, action: Action, outcome: &str) -> bool {
    actions(app).await.iter().any(|(a, o)| a == action.as_str() && o == outcome)
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.authed(Method::GET, "/v1/me", token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn register_login_me_sessions_logout() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    let (status, created) = body(
        app.post_json("/v1/auth/register", &json!({"email": "Ann@Example.com", "password": PW, "name": "Ann"})).await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["email"], "ann@example.com");
    assert_eq!(created["user"]["roles"], json!(["user"]));
    assert_eq!(created["user"]["email_verified"], false);
    assert_eq!(created["user"]["mfa"], json!({"totp": false, "webauthn": false, "backup_codes_left": 0}));

    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
        .json(&json!({"email": "ann@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (status, tokens) = body(res).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));

    let (status, who) = body(app.authed(Method::GET, "/v1/me", access).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(who["user"]["id"], created["user"]["id"]);

    let (status, list) = body(app.authed(Method::GET, "/v1/me/sessions", access).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], tokens["session_id"]);
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["device"]["kind"], "desktop");
    assert!(items[0]["device"]["browser"].as_str().unwrap().starts_with("Chrome"), "{}", items[0]);

    let res = app.authed(Method::POST, "/v1/auth/logout", access).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(me(&app, access).await, 401, "a logged-out session's access token stops working here at once");
    let (status, p) = body(app.get("/v1/me").await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("unauthenticated")));
    for action in [Action::UserCreated, Action::Login, Action::Logout] {
        assert!(has_event(&app, action, "success").await, "{action:?}");
    }
}

#[tokio::test]
async fn registration_reports_every_policy_violation_and_stores_nothing() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    let (status, p) =
        body(app.post_json("/v1/auth/register", &json!({"email": "not-an-email", "password": "short"})).await).await;
    assert_eq!(status, 400);
    assert_eq!(p["code"], "validation_failed");
    let codes: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"email_invalid") && codes.contains(&"password_too_short"), "{codes:?}");

    for (password, code) in [("password123", "password_common"), ("margaret-the-great", "password_contains_email")] {
        let (status, p) = body(
            app.post_json("/v1/auth/register", &json!({"email": "margaret@example.com", "password": password})).await,
        )
        .await;
        assert_eq!(status, 400, "{password}");
        assert_eq!(p["errors"][0]["field"], "password");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    let (status, _) = body(
        app.post_json("/v1/auth/register", &json!({"email": "x@example.com", "password": PW, "role": "admin"})).await,
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused");
    assert_eq!(app.state.store.count_users().await.unwrap(), 0);

    assert_eq!(
        app.post_json("/v1/auth/register", &json!({"email": "x@example.com", "password": PW})).await.status(),
        201
    );
    let (status, p) =
        body(app.post_json("/v1/auth/register", &json!({"email": "X@example.com", "password": PW})).await).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("email_taken")));
    assert_eq!(app.state.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn registration_can_be_closed() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.accounts.registration = false).await;
    let (status, p) =
        body(app.post_json("/v1/auth/register", &json!({"email": "a@example.com", "password": PW})).await).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("registration_closed")));
}

#[tokio::test]
async fn unknown_and_known_emails_fail_identically_and_cost_the_same_hashing() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        c.login.max_failures = 100;
    })
    .await;
    app.create_user("known@example.com", PW, &[]).await;
    let attempt = |email: &'static str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-request-id", "same-request-id-for-both")
            .json(&json!({"email": email, "password": "wrong password!"}))
            .send()
    };
    // The first unknown login makes the dummy hash; after that both paths verify once.
    attempt("warmup@example.com").await.unwrap();
    let before = app.state.hashing.runs();
    let known = attempt("known@example.com").await.unwrap();
    let after_known = app.state.hashing.runs();
    let unknown = attempt("nobody@example.com").await.unwrap();
    let after_unknown = app.state.hashing.runs();
    assert_eq!(after_known - before, 1, "a known e-mail verifies one hash");
    assert_eq!(after_unknown - after_known, 1, "an unknown e-mail verifies one (dummy) hash too");

    assert_eq!(known.status(), 401);
    assert_eq!(unknown.status(), 401);
    let headers = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&known), headers(&unknown));
    let (kb, ub) = (known.bytes().await.unwrap(), unknown.bytes().await.unwrap());
    assert_eq!(kb, ub, "the 401 bodies are byte-identical");
    let p: Value = serde_json::from_slice(&kb).unwrap();
    assert_eq!(p["code"], "invalid_credentials");
}

#[tokio::test]
async fn failures_lock_the_identifier_then_an_admin_unlocks_it() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        c.login.max_failures = 3;
    })
    .await;
    app.create_user("victim@example.com", PW, &[]).await;
    app.create_user("admin@example.com", PW, &["admin"]).await;
    let admin = app.login("admin@example.com", PW).await;
    let login = |email: &'static str, pw: &'static str| {
        let req = app.post("/v1/auth/login", &json!({"email": email, "password": pw}));
        async move { req.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(login("victim@example.com", "wrong password!").await.status(), 401);
        assert_eq!(login("ghost@example.com", "wrong password!").await.status(), 401);
    }
    // Locked now: even the right password is refused, and unknown identifiers lock the same way.
    for email in ["victim@example.com", "ghost@example.com", " VICTIM@example.com"] {
        let res = login(email, PW).await;
        assert_eq!(res.status(), 429, "{email}");
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((850..=901).contains(&retry), "Retry-After {retry}");
        let (_, p) = body(res).await;
        assert_eq!(p["code"], "too_many_attempts");
    }
    assert!(has_event(&app, Action::LoginLocked, "denied").await);
    // Other accounts are not affected.
    assert_eq!(login("admin@example.com", PW).await.status(), 200);

    // A user cannot unlock; an admin can.
    let victim_id = app
        .state
        .store
        .find_user_by_email(&rampart_domain::Email::parse("victim@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let path = format!("/v1/admin/users/{}/unlock", victim_id.0);
    let res = app.authed(Method::POST, &path, admin["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(login("victim@example.com", PW).await.status(), 200);
    assert!(has_event(&app, Action::LoginUnlocked, "success").await);
    let victim = app.login("victim@example.com", PW).await;
    let res = app.authed(Method::POST, &path, victim["access_token"].as_str().unwrap()).send().await.unwrap();
    let (status, p) = body(res).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")));
}

#[tokio::test]
async fn delays_grow_between_failures() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.login.delay_base_ms = 60_000).await;
    let login = || {
        let req = app.post("/v1/auth/login", &json!({"email": "a@example.com", "password": "wrong password!"}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(login().await.status(), 401);
    assert_eq!(login().await.status(), 401, "no delay after the first failure");
    let res = login().await;
    assert_eq!(res.status(), 429, "after the second failure the next attempt waits");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=61).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn concurrent_guesses_cannot_outrun_the_lockout() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        c.login.max_failures = 5;
    })
    .await;
    app.create_user("target@example.com", PW, &[]).await;
    let attempts = (0..20).map(|_| async {
        app.post_json("/v1/auth/login", &json!({"email": "target@example.com", "password": "wrong password!"}))
            .await
            .status()
            .as_u16()
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 5, "only max_failures guesses are ever checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_session() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("r@example.com", PW, &[]).await;
    let first = app.login("r@example.com", PW).await;
    let refresh = |t: &Value| {
        let req = app.post("/v1/auth/refresh", &json!({"refresh_token": t["refresh_token"]}));
        async move { req.send().await.unwrap() }
    };
    let (status, second) = body(refresh(&first).await).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_eq!(me(&app, second["access_token"].as_str().unwrap()).await, 200);

    // The first token again: reuse. The session dies with every token it ever had.
    let (status, p) = body(refresh(&first).await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("refresh_token_reused")));
    let (status, p) = body(refresh(&second).await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));
    assert_eq!(me(&app, second["access_token"].as_str().unwrap()).await, 401);
    let critical = app
        .state
        .store
        .recent_events(50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.action == Action::RefreshTokenReused);
    assert_eq!(critical.unwrap().event.severity, rampart_domain::Severity::Critical);

    // Junk and unknown tokens are refused without revealing anything.
    for junk in ["", "rt_short", "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let (status, p) = body(app.post_json("/v1/auth/refresh", &json!({"refresh_token": junk})).await).await;
        assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")), "{junk:?}");
    }
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_give_exactly_one_success() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("c@example.com", PW, &[]).await;
    let tokens = app.login("c@example.com", PW).await;
    let refresh = json!({"refresh_token": tokens["refresh_token"]});
    let all = (0..50).map(|_| async { body(app.post_json("/v1/auth/refresh", &refresh).await).await });
    let results = futures::future::join_all(all).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    let reused = results.iter().filter(|(s, b)| *s == 401 && b["code"] == "refresh_token_reused").count();
    assert_eq!(reused, 49, "every other exchange is reuse: {statuses:?}");
    // Strict by design (no grace window): reuse ends the session, so the winner's new tokens
    // are dead too and the client must log in again.
    let winner = &results.iter().find(|(s, _)| *s == 200).unwrap().1;
    let (status, p) =
        body(app.post_json("/v1/auth/refresh", &json!({"refresh_token": winner["refresh_token"]})).await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));
    assert_eq!(me(&app, winner["access_token"].as_str().unwrap()).await, 401);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_or_all() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("s@example.com", PW, &[]).await;
    app.create_user("other@example.com", PW, &[]).await;
    let a = app.login("s@example.com", PW).await;
    let b = app.login("s@example.com", PW).await;
    let c = app.login("s@example.com", PW).await;
    let other = app.login("other@example.com", PW).await;
    assert_ne!(a["session_id"], b["session_id"], "every login is a new session");
    let token = |t: &Value| t["access_token"].as_str().unwrap().to_string();
    let (_, list) = body(app.authed(Method::GET, "/v1/me/sessions", &token(&a)).send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // Another user's session id is not found; revoking b ends it at once.
    let path = |t: &Value| format!("/v1/me/sessions/{}", t["session_id"].as_str().unwrap());
    assert_eq!(app.authed(Method::DELETE, &path(&other), &token(&a)).send().await.unwrap().status(), 404);
    assert_eq!(me(&app, &token(&other)).await, 200);
    assert_eq!(app.authed(Method::DELETE, &path(&b), &token(&a)).send().await.unwrap().status(), 204);
    assert_eq!(me(&app, &token(&b)).await, 401);
    let (status, p) =
        body(app.post_json("/v1/auth/refresh", &json!({"refresh_token": b["refresh_token"]})).await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));

    // Log out everywhere else.
    let res = app.authed(Method::DELETE, "/v1/me/sessions?keep_current=true", &token(&a)).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(me(&app, &token(&c)).await, 401);
    assert_eq!(me(&app, &token(&a)).await, 200);
    assert_eq!(me(&app, &token(&other)).await, 200, "other users keep their sessions");

    // An administrator revokes all of a user's sessions.
    app.create_user("root@example.com", PW, &["admin"]).await;
    let root = app.login("root@example.com", PW).await;
    let uid = body(app.authed(Method::GET, "/v1/me", &token(&a)).send().await.unwrap()).await.1["user"]["id"].clone();
    let res = app
        .authed(Method::DELETE, &format!("/v1/admin/users/{}/sessions", uid.as_str().unwrap()), &token(&root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(me(&app, &token(&a)).await, 401);
    assert!(has_event(&app, Action::SessionRevoked, "success").await);
}

#[tokio::test]
async fn idle_and_absolute_session_limits_apply() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.sessions.idle_timeout_days = 2;
        c.sessions.absolute_timeout_days = 3;
    })
    .await;
    app.create_user("t@example.com", PW, &[]).await;
    let t = app.login("t@example.com", PW).await;
    let refresh = |rt: Value| {
        let req = app.post("/v1/auth/refresh", &json!({"refresh_token": rt}));
        async move { req.send().await.unwrap() }
    };
    // Active every 36 hours: alive past the idle limit...
    clock.advance(time::Duration::hours(36));
    let (status, t2) = body(refresh(t["refresh_token"].clone()).await).await;
    assert_eq!(status, 200);
    clock.advance(time::Duration::hours(30));
    let (status, t3) = body(refresh(t2["refresh_token"].clone()).await).await;
    assert_eq!(status, 200, "66 h after login, 30 h after the last use: still alive");
    // ...but not past the absolute limit.
    clock.advance(time::Duration::hours(7));
    let (status, p) = body(refresh(t3["refresh_token"].clone()).await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));

    let u = app.login("t@example.com", PW).await;
    clock.advance(time::Duration::hours(49));
    let (status, _) = body(refresh(u["refresh_token"].clone()).await).await;
    assert_eq!(status, 401, "idle for longer than 2 days: ended");
}

fn cookie_of(res: &reqwest::Response) -> (String, String) {
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let value = set.split(';').next().unwrap().to_string();
    (set, value)
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_and_same_origin_for_changes() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("web@example.com", PW, &[]).await;
    let res =
        app.post_json("/v1/auth/login?session=cookie", &json!({"email": "web@example.com", "password": PW})).await;
    assert_eq!(res.status(), 200);
    let (set_cookie, cookie) = cookie_of(&res);
    for attr in ["__Host-rampart_session=rs_", "Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=7776000"] {
        assert!(set_cookie.contains(attr), "{attr} missing from {set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "__Host- cookies carry no Domain");
    let (_, login) = body(res).await;
    assert!(login.get("access_token").is_none() && login.get("refresh_token").is_none());
    let csrf = login["csrf_token"].as_str().unwrap().to_string();
    let host = app.addr.to_string();

    let res = app.client.get(app.url("/v1/me")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200, "safe requests need only the cookie");

    let change = || {
        app.client
            .post(app.url("/v1/me/password"))
            .header("cookie", &cookie)
            .json(&json!({"current_password": "not it at all", "new_password": "another fine passphrase"}))
    };
    let cases = [
        ("no CSRF token", change().header("origin", format!("http://{host}"))),
        ("wrong CSRF token", change().header("x-csrf-token", "forged").header("origin", format!("http://{host}"))),
        ("cross-site", change().header("x-csrf-token", &csrf).header("origin", "https://evil.example")),
        ("cross-site fetch", change().header("x-csrf-token", &csrf).header("sec-fetch-site", "cross-site")),
        ("no origin at all", change().header("x-csrf-token", &csrf)),
    ];
    for (name, req) in cases {
        let (status, p) = body(req.send().await.unwrap()).await;
        assert_eq!((status, p["code"].as_str()), (403, Some("csrf_failed")), "{name}");
    }
    // With both, the request reaches the handler (which then checks the current password).
    let (status, p) =
        body(change().header("x-csrf-token", &csrf).header("origin", format!("http://{host}")).send().await.unwrap())
            .await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_incorrect")), "{p}");

    let res = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(cookie_of(&res).0.contains("Max-Age=0"), "logout clears the cookie");
    let res = app.client.get(app.url("/v1/me")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn password_change_checks_the_current_password_history_and_ends_other_sessions() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("p@example.com", PW, &[]).await;
    let here = app.login("p@example.com", PW).await;
    let elsewhere = app.login("p@example.com", PW).await;
    let token = here["access_token"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        app.authed(Method::POST, "/v1/me/password", token)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let (status, p) = body(change("wrong one!", "a brand new passphrase").await.unwrap()).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_incorrect")));
    let (status, p) = body(change(PW, PW).await.unwrap()).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_reused")), "{p}");
    assert_eq!(change(PW, "a brand new passphrase").await.unwrap().status(), 204);
    assert_eq!(me(&app, token).await, 200, "the session that changed it lives on");
    assert_eq!(me(&app, elsewhere["access_token"].as_str().unwrap()).await, 401, "other sessions end");
    assert!(has_event(&app, Action::PasswordChanged, "success").await);

    // The old password is history: it cannot come back, and no longer logs in.
    let (status, p) = body(change("a brand new passphrase", PW).await.unwrap()).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_reused")));
    let res = app.post_json("/v1/auth/login", &json!({"email": "p@example.com", "password": PW})).await;
    assert_eq!(res.status(), 401);
    app.login("p@example.com", "a brand new passphrase").await;
}

async fn mail_app(sink: &SmtpSink, configure: impl FnOnce(&mut rampart_config::Config)) -> TestApp {
    let port = sink.addr().port();
    TestApp::spawn_with(TestDb::fresh().await, move |c| {
        no_delays(c);
        c.mail.transport = rampart_config::MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = rampart_config::SmtpTls::None;
        c.accounts.reset_password_url = "https://app.example.com/reset?token={token}".into();
        c.accounts.verify_email_url = "https://app.example.com/verify?token={token}".into();
        configure(c);
    })
    .await
}

async fn wait_for_subject(sink: &SmtpSink, to: &str, subject: &str) -> rampart_testkit::smtp::ReceivedMail {
    for _ in 0..200 {
        if let Some(m) = sink.messages().into_iter().find(|m| m.to.iter().any(|t| t == to) && m.subject == subject) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no mail {subject:?} to {to}; got {:?}",
        sink.messages().iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
    );
}

fn token_in(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

#[tokio::test]
async fn a_reset_email_arrives_over_smtp_and_its_link_works_once() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    app.create_user("forgetful@example.com", PW, &[]).await;
    let old = app.login("forgetful@example.com", PW).await;

    for email in ["nobody@example.com", "forgetful@example.com", "not an address"] {
        let (status, b) = body(app.post_json("/v1/auth/password/forgot", &json!({"email": email})).await).await;
        assert_eq!((status, b), (202, json!({"status": "accepted"})), "{email}");
    }
    let mail = sink.wait_for("forgetful@example.com", Duration::from_secs(10)).await;
    assert_eq!(mail.subject, "Reset your password");
    let link = find_link(&mail.text, "https://app.example.com/reset?token=").unwrap();
    let token = token_in(&link);
    assert!(token.starts_with("pr_"));

    let reset = |pw: &str| {
        let req = app.post("/v1/auth/password/reset", &json!({"token": token, "new_password": pw}));
        async move { req.send().await.unwrap() }
    };
    let (status, p) = body(reset("password").await).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("validation_failed")), "policy applies to resets");
    let (status, p) = body(reset(PW).await).await;
    assert_eq!(p["errors"][0]["code"], "password_reused", "{status} {p}");
    assert_eq!(reset("a completely new secret").await.status(), 204);
    let (status, p) = body(reset("yet another new secret").await).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")), "the link works once");

    assert_eq!(me(&app, old["access_token"].as_str().unwrap()).await, 401, "a reset ends every session");
    app.login("forgetful@example.com", "a completely new secret").await;
    assert!(has_event(&app, Action::PasswordReset, "success").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "no mail for unknown addresses: {:?}",
        sink.messages().iter().map(|m| &m.to).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn with_verification_on_registration_reveals_nothing_and_login_waits_for_the_link() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |c| c.accounts.verify_email = true).await;
    let register = |email: &str, password: &str| {
        let req = app.post("/v1/auth/register", &json!({"email": email, "password": password}));
        async move { req.send().await.unwrap() }
    };
    let (s1, b1) = body(register("new@example.com", PW).await).await;
    let (s2, b2) = body(register("new@example.com", "an attacker's password").await).await;
    assert_eq!((s1, &b1), (202, &json!({"status": "accepted"})));
    assert_eq!((s2, &b2), (s1, &b1), "a taken address answers exactly like a new one");

    let (status, p) =
        body(app.post_json("/v1/auth/login", &json!({"email": "new@example.com", "password": PW})).await).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("email_not_verified")));

    let mail = wait_for_subject(&sink, "new@example.com", "Confirm your e-mail address").await;
    let notice = wait_for_subject(&sink, "new@example.com", "Someone tried to register with your address").await;
    assert!(find_link(&notice.text, "token=").is_none(), "the notice carries no token");
    let (status, _) = body(
        app.post_json("/v1/auth/login", &json!({"email": "new@example.com", "password": "an attacker's password"}))
            .await,
    )
    .await;
    assert_eq!(status, 401, "the second registration changed nothing");
    let link = find_link(&mail.text, "https://app.example.com/verify?token=").unwrap();
    let token = token_in(&link);
    assert_eq!(app.post_json("/v1/auth/verify-email", &json!({"token": token})).await.status(), 204);
    let (status, p) = body(app.post_json("/v1/auth/verify-email", &json!({"token": token})).await).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")));
    let t = app.login("new@example.com", PW).await;
    let (_, who) =
        body(app.authed(Method::GET, "/v1/me", t["access_token"].as_str().unwrap()).send().await.unwrap()).await;
    assert_eq!(who["user"]["email_verified"], true);
    assert!(has_event(&app, Action::EmailVerified, "success").await);
}

#[tokio::test]
async fn an_expired_password_must_be_changed_before_login() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.passwords.max_age_days = 90;
    })
    .await;
    app.create_user("old@example.com", PW, &[]).await;
    app.login("old@example.com", PW).await;
    clock.advance(time::Duration::days(91));
    let (status, p) =
        body(app.post_json("/v1/auth/login", &json!({"email": "old@example.com", "password": PW})).await).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("password_expired")));
    let change_token = p["change_token"].as_str().unwrap();
    let res = app
        .post_json("/v1/auth/password/reset", &json!({"token": change_token, "new_password": "fresh and new secret"}))
        .await;
    assert_eq!(res.status(), 204);
    app.login("old@example.com", "fresh and new secret").await;
}

#[tokio::test]
async fn introspection_reports_live_tokens_to_permitted_callers() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("svc@example.com", PW, &["admin"]).await;
    app.create_user("u@example.com", PW, &[]).await;
    let svc = app.login("svc@example.com", PW).await;
    let user = app.login("u@example.com", PW).await;
    let introspect = |caller: &Value, token: &Value| {
        app.authed(Method::POST, "/v1/auth/introspect", caller["access_token"].as_str().unwrap())
            .form(&[("token", token.as_str().unwrap())])
            .send()
    };
    let (status, a) = body(introspect(&svc, &user["access_token"]).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "access_token");
    assert_eq!(a["sid"], user["session_id"]);
    let (_, r) = body(introspect(&svc, &user["refresh_token"]).await.unwrap()).await;
    assert_eq!((r["active"].as_bool(), r["token_type"].as_str()), (Some(true), Some("refresh_token")));

    let (status, p) = body(introspect(&user, &svc["access_token"]).await.unwrap()).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")), "needs tokens:introspect");

    app.authed(Method::POST, "/v1/auth/logout", user["access_token"].as_str().unwrap()).send().await.unwrap();
    let (_, a) = body(introspect(&svc, &user["access_token"]).await.unwrap()).await;
    assert_eq!(a, json!({"active": false}), "a valid signature is not enough once the session ended");
    let (_, r) = body(introspect(&svc, &json!("garbage")).await.unwrap()).await;
    assert_eq!(r, json!({"active": false}));
}

#[tokio::test]
async fn a_login_upgrades_a_hash_made_with_weaker_parameters() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        no_delays(c);
        c.passwords.argon2.iterations = 3;
    })
    .await;
    let weak = rampart_domain::PasswordHasher::new(rampart_domain::Argon2Params::default()).unwrap();
    let pw = rampart_domain::Password::parse(PW.into(), &Default::default()).unwrap();
    let phc = weak.hash(&pw, &mut rand::rngs::OsRng).unwrap();
    let id = rampart_domain::UserId(uuid::Uuid::now_v7());
    let new = rampart_domain::NewUser {
        id,
        email: rampart_domain::Email::parse("legacy@example.com").unwrap(),
        name: None,
        password_hash: phc,
        roles: vec![rampart_domain::RoleName::parse("user").unwrap()],
        created_at: time::OffsetDateTime::now_utc(),
    };
    let ev = app.state.events.event(Action::UserCreated, rampart_domain::Outcome::Success);
    app.state.store.create_user(&new, &ev).await.unwrap();
    app.login("legacy@example.com", PW).await;
    let mut upgraded = false;
    for _ in 0..100 {
        let h = app.state.store.password_hash(id).await.unwrap().unwrap();
        if h.contains("m=19456,t=3,p=1") {
            upgraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upgraded, "the stored hash was re-computed with the configured parameters");
    app.login("legacy@example.com", PW).await;
}

#[tokio::test]
async fn the_client_address_is_throttled_across_identifiers_unless_turned_off() {
    for (ip_max, expect_lock) in [(3, true), (0, false)] {
        let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
            c.login.delay_base_ms = 0;
            c.login.max_failures = 100;
            c.login.ip_max_failures = ip_max;
        })
        .await;
        app.create_user("real@example.com", PW, &[]).await;
        for i in 0..3 {
            let email = format!("spray{i}@example.com");
            assert_eq!(
                app.post_json("/v1/auth/login", &json!({"email": email, "password": "Winter2024!"})).await.status(),
                401
            );
        }
        let status =
            app.post_json("/v1/auth/login", &json!({"email": "real@example.com", "password": PW})).await.status();
        assert_eq!(status == 429, expect_lock, "ip_max_failures = {ip_max}: {status}");
    }
}

#[tokio::test]
async fn password_change_failures_count_toward_the_login_lockout_and_a_reset_lifts_it() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |c| c.login.max_failures = 2).await;
    app.create_user("shared@example.com", PW, &[]).await;
    let t = app.login("shared@example.com", PW).await;
    for _ in 0..2 {
        let res = app
            .authed(Method::POST, "/v1/me/password", t["access_token"].as_str().unwrap())
            .json(&json!({"current_password": "a wrong guess", "new_password": "some other passphrase"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    }
    let res = app.post_json("/v1/auth/login", &json!({"email": "shared@example.com", "password": PW})).await;
    assert_eq!(res.status(), 429, "re-authentication failures locked the login too");

    app.post_json("/v1/auth/password/forgot", &json!({"email": "shared@example.com"})).await;
    let mail = wait_for_subject(&sink, "shared@example.com", "Reset your password").await;
    let token = token_in(&find_link(&mail.text, "token=").unwrap());
    let res = app
        .post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": "the reset passphrase"}))
        .await;
    assert_eq!(res.status(), 204);
    app.login("shared@example.com", "the reset passphrase").await;
}

#[tokio::test]
async fn reset_links_expire_are_paced_and_void_each_other() {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let port = sink.addr().port();
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), move |c| {
        no_delays(c);
        c.mail.transport = rampart_config::MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = rampart_config::SmtpTls::None;
    })
    .await;
    app.create_user("pace@example.com", PW, &[]).await;
    let forgot = || {
        let req = app.post("/v1/auth/password/forgot", &json!({"email": "pace@example.com"}));
        async move { req.send().await.unwrap() }
    };
    let reset = |token: &str, pw: &str| {
        let req = app.post("/v1/auth/password/reset", &json!({"token": token, "new_password": pw}));
        async move { req.send().await.unwrap() }
    };
    let links =
        || sink.messages().into_iter().map(|m| token_in(&find_link(&m.text, "token=").unwrap())).collect::<Vec<_>>();
    let sink = &sink;
    let wait_count = |n: usize| async move {
        for _ in 0..200 {
            if sink.messages().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mails, got {}", sink.messages().len());
    };

    forgot().await;
    wait_count(1).await;
    forgot().await; // within a minute: no second mail
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "one reset mail per minute");

    clock.advance(time::Duration::minutes(31));
    let first = links()[0].clone();
    let (status, p) = body(reset(&first, "too late for this one").await).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")), "30 minutes and no more");

    forgot().await;
    wait_count(2).await;
    clock.advance(time::Duration::minutes(2));
    forgot().await;
    wait_count(3).await;
    let all = links();
    assert_eq!(reset(&all[2], "the newest link wins").await.status(), 204);
    let (status, _) = body(reset(&all[1], "an older link").await).await;
    assert_eq!(status, 400, "a completed reset voids the user's other reset links");
    app.login("pace@example.com", "the newest link wins").await;
}

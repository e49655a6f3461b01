//! Accounts through the running server: registration, login throttling and lockout, sessions,
//! refresh rotation and reuse, cookie mode with CSRF, password change, reset and expiry,
//! e-mail verification, introspection.

use rampart_domain::clock::FixedClock;
use rampart_domain::{Action, Outcome};
use rampart_testkit::smtp::{SmtpSink, find_link};
use rampart_testkit::{LoggedIn, TestApp, TestDb, read_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "correct horse battery staple";

/// Fast, lock-free defaults for tests that are not about throttling.
fn no_delays(c: &mut rampart_config::Config) {
    c.login.delay_base_ms = 0;
}

#[tokio::test]
async fn register_login_me_sessions_logout() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    let (status, created) =
        app.post_json("/v1/auth/register", &json!({"email": "Ann@Example.com", "password": PW, "name": "Ann"})).await;
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
    let (status, tokens) = read_json(res).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));

    let (status, who) = app.get_bearer("/v1/me", access).await;
    assert_eq!(status, 200);
    assert_eq!(who["user"]["id"], created["user"]["id"]);

    let (status, list) = app.get_bearer("/v1/me/sessions", access).await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], tokens["session_id"]);
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["device"]["kind"], "desktop");
    assert!(items[0]["device"]["browser"].as_str().unwrap().starts_with("Chrome"), "{}", items[0]);

    assert_eq!(app.send_bearer(Method::POST, "/v1/auth/logout", access, None).await.0, 204);
    assert_eq!(app.me(access).await.0, 401, "a logged-out session's access token stops working here at once");
    let (status, p) = read_json(app.get("/v1/me").await).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("unauthenticated")));
    for action in [Action::UserCreated, Action::Login, Action::Logout] {
        assert!(app.has_event(action, Outcome::Success).await, "{action:?}");
    }
}

#[tokio::test]
async fn registration_reports_every_policy_violation_and_stores_nothing() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    let (status, p) = app.post_json("/v1/auth/register", &json!({"email": "not-an-email", "password": "short"})).await;
    assert_eq!(status, 400);
    assert_eq!(p["code"], "validation_failed");
    let codes: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"email_invalid") && codes.contains(&"password_too_short"), "{codes:?}");

    for (password, code) in [("password123", "password_common"), ("margaret-the-great", "password_contains_email")] {
        let (status, p) =
            app.post_json("/v1/auth/register", &json!({"email": "margaret@example.com", "password": password})).await;
        assert_eq!(status, 400, "{password}");
        assert_eq!(p["errors"][0]["field"], "password");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    let (status, _) =
        app.post_json("/v1/auth/register", &json!({"email": "x@example.com", "password": PW, "role": "admin"})).await;
    assert_eq!(status, 400, "unknown fields are refused");
    assert_eq!(app.state.store.count_users().await.unwrap(), 0);

    assert_eq!(app.post_json("/v1/auth/register", &json!({"email": "x@example.com", "password": PW})).await.0, 201);
    let (status, p) = app.post_json("/v1/auth/register", &json!({"email": "X@example.com", "password": PW})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("email_taken")));
    assert_eq!(app.state.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn registration_can_be_closed() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.accounts.registration = false).await;
    let (status, p) = app.post_json("/v1/auth/register", &json!({"email": "a@example.com", "password": PW})).await;
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
    let admin = app.login("admin@example.com", PW).await.access_token;
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
        let (_, p) = read_json(res).await;
        assert_eq!(p["code"], "too_many_attempts");
    }
    assert!(app.has_event(Action::LoginLocked, Outcome::Denied).await);
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
    assert_eq!(app.send_bearer(Method::POST, &path, &admin, None).await.0, 204);
    assert_eq!(login("victim@example.com", PW).await.status(), 200);
    assert!(app.has_event(Action::LoginUnlocked, Outcome::Success).await);
    let victim = app.login("victim@example.com", PW).await.access_token;
    let (status, p) = app.send_bearer(Method::POST, &path, &victim, None).await;
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
        app.post_json("/v1/auth/login", &json!({"email": "target@example.com", "password": "wrong password!"})).await.0
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
    let refresh = |rt: &str| app.post_json("/v1/auth/refresh", &json!({"refresh_token": rt}));
    let (status, second) = refresh(&first.refresh_token).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first.refresh_token.as_str());
    assert_eq!(second["session_id"], first.session_id.as_str());
    assert_eq!(app.me(second["access_token"].as_str().unwrap()).await.0, 200);

    // The first token again: reuse. The session dies with every token it ever had.
    let (status, p) = refresh(&first.refresh_token).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("refresh_token_reused")));
    let (status, p) = refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));
    assert_eq!(app.me(second["access_token"].as_str().unwrap()).await.0, 401);
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
        let (status, p) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": junk})).await;
        assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")), "{junk:?}");
    }
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_give_exactly_one_success() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("c@example.com", PW, &[]).await;
    let tokens = app.login("c@example.com", PW).await;
    let refresh = json!({"refresh_token": tokens.refresh_token});
    let all = (0..50).map(|_| async { app.post_json("/v1/auth/refresh", &refresh).await });
    let results = futures::future::join_all(all).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    let reused = results.iter().filter(|(s, b)| *s == 401 && b["code"] == "refresh_token_reused").count();
    assert_eq!(reused, 49, "every other exchange is reuse: {statuses:?}");
    // Strict by design (no grace window): reuse ends the session, so the winner's new tokens
    // are dead too and the client must log in again.
    let winner = &results.iter().find(|(s, _)| *s == 200).unwrap().1;
    let (status, p) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": winner["refresh_token"]})).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));
    assert_eq!(app.me(winner["access_token"].as_str().unwrap()).await.0, 401);
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
    assert_ne!(a.session_id, b.session_id, "every login is a new session");
    let (_, list) = app.get_bearer("/v1/me/sessions", &a.access_token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // Another user's session id is not found; revoking b ends it at once.
    let revoke =
        |session: &str| app.send_bearer(Method::DELETE, &format!("/v1/me/sessions/{session}"), &a.access_token, None);
    assert_eq!(revoke(&other.session_id).await.0, 404);
    assert_eq!(app.me(&other.access_token).await.0, 200);
    assert_eq!(revoke(&b.session_id).await.0, 204);
    assert_eq!(app.me(&b.access_token).await.0, 401);
    let (status, p) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": b.refresh_token})).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));

    // Log out everywhere else.
    let (status, _) = app.send_bearer(Method::DELETE, "/v1/me/sessions?keep_current=true", &a.access_token, None).await;
    assert_eq!(status, 204);
    assert_eq!(app.me(&c.access_token).await.0, 401);
    assert_eq!(app.me(&a.access_token).await.0, 200);
    assert_eq!(app.me(&other.access_token).await.0, 200, "other users keep their sessions");

    // An administrator revokes all of a user's sessions.
    let root = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let uid = app.me(&a.access_token).await.1["user"]["id"].clone();
    let path = format!("/v1/admin/users/{}/sessions", uid.as_str().unwrap());
    assert_eq!(app.send_bearer(Method::DELETE, &path, &root.access_token, None).await.0, 204);
    assert_eq!(app.me(&a.access_token).await.0, 401);
    assert!(app.has_event(Action::SessionRevoked, Outcome::Success).await);
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
    let refresh = |rt: Value| app.post_json("/v1/auth/refresh", &json!({"refresh_token": rt}));
    // Active every 36 hours: alive past the idle limit...
    clock.advance(time::Duration::hours(36));
    let (status, t2) = refresh(json!(t.refresh_token)).await;
    assert_eq!(status, 200);
    clock.advance(time::Duration::hours(30));
    let (status, t3) = refresh(t2["refresh_token"].clone()).await;
    assert_eq!(status, 200, "66 h after login, 30 h after the last use: still alive");
    // ...but not past the absolute limit.
    clock.advance(time::Duration::hours(7));
    let (status, p) = refresh(t3["refresh_token"].clone()).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_refresh_token")));

    let u = app.login("t@example.com", PW).await;
    clock.advance(time::Duration::hours(49));
    let (status, _) = refresh(json!(u.refresh_token)).await;
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
    let res = app
        .post("/v1/auth/login?session=cookie", &json!({"email": "web@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (set_cookie, cookie) = cookie_of(&res);
    for attr in ["__Host-rampart_session=rs_", "Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=7776000"] {
        assert!(set_cookie.contains(attr), "{attr} missing from {set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "__Host- cookies carry no Domain");
    let (_, login) = read_json(res).await;
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
        let (status, p) = read_json(req.send().await.unwrap()).await;
        assert_eq!((status, p["code"].as_str()), (403, Some("csrf_failed")), "{name}");
    }
    // With both, the request reaches the handler (which then checks the current password).
    let (status, p) = read_json(
        change().header("x-csrf-token", &csrf).header("origin", format!("http://{host}")).send().await.unwrap(),
    )
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
    let token = here.access_token.as_str();
    let change = |current: &str, new: &str| {
        app.post_bearer("/v1/me/password", token, &json!({"current_password": current, "new_password": new}))
    };
    let (status, p) = change("wrong one!", "a brand new passphrase").await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_incorrect")));
    let (status, p) = change(PW, PW).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_reused")), "{p}");
    assert_eq!(change(PW, "a brand new passphrase").await.0, 204);
    assert_eq!(app.me(token).await.0, 200, "the session that changed it lives on");
    assert_eq!(app.me(&elsewhere.access_token).await.0, 401, "other sessions end");
    assert!(app.has_event(Action::PasswordChanged, Outcome::Success).await);

    // The old password is history: it cannot come back, and no longer logs in.
    let (status, p) = change("a brand new passphrase", PW).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("password_reused")));
    let (status, _) = app.post_json("/v1/auth/login", &json!({"email": "p@example.com", "password": PW})).await;
    assert_eq!(status, 401);
    app.login("p@example.com", "a brand new passphrase").await;
}

async fn mail_app(sink: &SmtpSink, configure: impl FnOnce(&mut rampart_config::Config)) -> TestApp {
    TestApp::spawn_with(TestDb::fresh().await, |c| {
        no_delays(c);
        sink.configure(c);
        c.accounts.reset_password_url = "https://app.example.com/reset?token={token}".into();
        c.accounts.verify_email_url = "https://app.example.com/verify?token={token}".into();
        configure(c);
    })
    .await
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
        let (status, b) = app.post_json("/v1/auth/password/forgot", &json!({"email": email})).await;
        assert_eq!((status, b), (202, json!({"status": "accepted"})), "{email}");
    }
    let mail = sink.wait_for("forgetful@example.com", Duration::from_secs(10)).await;
    assert_eq!(mail.subject, "Reset your password");
    let link = find_link(&mail.text, "https://app.example.com/reset?token=").unwrap();
    let token = token_in(&link);
    assert!(token.starts_with("pr_"));

    let reset = |pw: &str| app.post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": pw}));
    let (status, p) = reset("password").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("validation_failed")), "policy applies to resets");
    let (status, p) = reset(PW).await;
    assert_eq!(p["errors"][0]["code"], "password_reused", "{status} {p}");
    assert_eq!(reset("a completely new secret").await.0, 204);
    let (status, p) = reset("yet another new secret").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")), "the link works once");

    assert_eq!(app.me(&old.access_token).await.0, 401, "a reset ends every session");
    app.login("forgetful@example.com", "a completely new secret").await;
    assert!(app.has_event(Action::PasswordReset, Outcome::Success).await);
    // Nothing else was sent but the notice of the reset: each forgot request ends with its
    // event (after queueing its mail, if any), and then the mail outbox is drained.
    app.wait_for_events(3, |e| e.action == Action::PasswordResetRequested).await;
    app.mail_idle().await;
    let sent: Vec<(Vec<String>, String)> = sink.messages().into_iter().map(|m| (m.to, m.subject)).collect();
    let forgetful = vec!["forgetful@example.com".to_string()];
    assert_eq!(
        sent,
        [(forgetful.clone(), "Reset your password".into()), (forgetful, "Your password was reset".into())],
        "no mail for unknown addresses"
    );
}

#[tokio::test]
async fn with_verification_on_registration_reveals_nothing_and_login_waits_for_the_link() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |c| c.accounts.verify_email = true).await;
    let register = |email: &str, password: &str| {
        app.post_json("/v1/auth/register", &json!({"email": email, "password": password}))
    };
    let (s1, b1) = register("new@example.com", PW).await;
    let (s2, b2) = register("new@example.com", "an attacker's password").await;
    assert_eq!((s1, &b1), (202, &json!({"status": "accepted"})));
    assert_eq!((s2, &b2), (s1, &b1), "a taken address answers exactly like a new one");

    let (status, p) = app.post_json("/v1/auth/login", &json!({"email": "new@example.com", "password": PW})).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("email_not_verified")));

    let mail = sink.wait_for_subject("new@example.com", "Confirm your e-mail address", Duration::from_secs(10)).await;
    let notice = sink
        .wait_for_subject("new@example.com", "Someone tried to register with your address", Duration::from_secs(10))
        .await;
    assert!(find_link(&notice.text, "token=").is_none(), "the notice carries no token");
    let (status, _) = app
        .post_json("/v1/auth/login", &json!({"email": "new@example.com", "password": "an attacker's password"}))
        .await;
    assert_eq!(status, 401, "the second registration changed nothing");
    let link = find_link(&mail.text, "https://app.example.com/verify?token=").unwrap();
    let token = token_in(&link);
    assert_eq!(app.post_json("/v1/auth/verify-email", &json!({"token": token})).await.0, 204);
    let (status, p) = app.post_json("/v1/auth/verify-email", &json!({"token": token})).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")));
    let t = app.login("new@example.com", PW).await;
    let (_, who) = app.me(&t.access_token).await;
    assert_eq!(who["user"]["email_verified"], true);
    assert!(app.has_event(Action::EmailVerified, Outcome::Success).await);
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
    let (status, p) = app.post_json("/v1/auth/login", &json!({"email": "old@example.com", "password": PW})).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("password_expired")));
    let change_token = p["change_token"].as_str().unwrap();
    let (status, _) = app
        .post_json("/v1/auth/password/reset", &json!({"token": change_token, "new_password": "fresh and new secret"}))
        .await;
    assert_eq!(status, 204);
    app.login("old@example.com", "fresh and new secret").await;
}

#[tokio::test]
async fn introspection_reports_live_tokens_to_permitted_callers() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("svc@example.com", PW, &["admin"]).await;
    app.create_user("u@example.com", PW, &[]).await;
    let svc = app.login("svc@example.com", PW).await;
    let user = app.login("u@example.com", PW).await;
    let introspect = |caller: &LoggedIn, token: &str| {
        let req = app.authed(Method::POST, "/v1/auth/introspect", &caller.access_token).form(&[("token", token)]);
        async move { read_json(req.send().await.unwrap()).await }
    };
    let (status, a) = introspect(&svc, &user.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "access_token");
    assert_eq!(a["sid"], user.session_id.as_str());
    let (_, r) = introspect(&svc, &user.refresh_token).await;
    assert_eq!((r["active"].as_bool(), r["token_type"].as_str()), (Some(true), Some("refresh_token")));
    // RFC 7662's `scope`: what the owner's roles grant now, space-separated.
    let (_, roles) = app.get_bearer("/v1/admin/roles", &svc.access_token).await;
    let granted = roles["items"].as_array().unwrap().iter().find(|r| r["name"] == "user").unwrap()["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<Vec<_>>();
    let mut scope: Vec<&str> = a["scope"].as_str().expect("scope sent").split(' ').filter(|s| !s.is_empty()).collect();
    scope.sort_unstable();
    let mut want = granted.clone();
    want.sort_unstable();
    assert_eq!(scope, want, "{a}");
    assert_eq!(r["scope"], a["scope"]);
    assert_eq!(introspect(&svc, &svc.access_token).await.1["scope"], "*", "an administrator's");
    // Bad forms are problem documents too.
    let res = app
        .authed(Method::POST, "/v1/auth/introspect", &svc.access_token)
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(read_json(res).await.0, 415);
    let res = app
        .authed(Method::POST, "/v1/auth/introspect", &svc.access_token)
        .form(&[("nottoken", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let (status, p) = read_json(res).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_request")), "{p}");

    let (status, p) = introspect(&user, &svc.access_token).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")), "needs tokens:introspect");

    app.send_bearer(Method::POST, "/v1/auth/logout", &user.access_token, None).await;
    let (_, a) = introspect(&svc, &user.access_token).await;
    assert_eq!(a, json!({"active": false}), "a valid signature is not enough once the session ended");
    let (_, r) = introspect(&svc, "garbage").await;
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
                app.post_json("/v1/auth/login", &json!({"email": email, "password": "Winter2024!"})).await.0,
                401
            );
        }
        let (status, _) = app.post_json("/v1/auth/login", &json!({"email": "real@example.com", "password": PW})).await;
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
        let change = json!({"current_password": "a wrong guess", "new_password": "some other passphrase"});
        assert_eq!(app.post_bearer("/v1/me/password", &t.access_token, &change).await.0, 400);
    }
    let (status, _) = app.post_json("/v1/auth/login", &json!({"email": "shared@example.com", "password": PW})).await;
    assert_eq!(status, 429, "re-authentication failures locked the login too");

    app.post_json("/v1/auth/password/forgot", &json!({"email": "shared@example.com"})).await;
    let mail = sink.wait_for_subject("shared@example.com", "Reset your password", Duration::from_secs(10)).await;
    let token = token_in(&find_link(&mail.text, "token=").unwrap());
    let (status, _) = app
        .post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": "the reset passphrase"}))
        .await;
    assert_eq!(status, 204);
    app.login("shared@example.com", "the reset passphrase").await;
}

#[tokio::test]
async fn reset_links_expire_are_paced_and_void_each_other() {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        sink.configure(c);
    })
    .await;
    app.create_user("pace@example.com", PW, &[]).await;
    let forgot = || app.post_json("/v1/auth/password/forgot", &json!({"email": "pace@example.com"}));
    let reset =
        |token: &str, pw: &str| app.post_json("/v1/auth/password/reset", &json!({"token": token, "new_password": pw}));
    let links =
        || sink.messages().into_iter().map(|m| token_in(&find_link(&m.text, "token=").unwrap())).collect::<Vec<_>>();
    let wait_count = |n: usize| sink.wait_for_count(n, Duration::from_secs(10));

    forgot().await;
    wait_count(1).await;
    forgot().await; // within a minute: no second mail
    // The refusal is recorded where a mail would have been enqueued; then the queue drains.
    app.wait_for_events(1, |e| e.action == Action::PasswordResetRequested && e.outcome == Outcome::Denied).await;
    app.mail_idle().await;
    assert_eq!(sink.messages().len(), 1, "one reset mail per minute");

    clock.advance(time::Duration::minutes(31));
    let first = links()[0].clone();
    let (status, p) = reset(&first, "too late for this one").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_or_expired_token")), "30 minutes and no more");

    forgot().await;
    wait_count(2).await;
    clock.advance(time::Duration::minutes(2));
    forgot().await;
    wait_count(3).await;
    let all = links();
    assert_eq!(reset(&all[2], "the newest link wins").await.0, 204);
    let (status, _) = reset(&all[1], "an older link").await;
    assert_eq!(status, 400, "a completed reset voids the user's other reset links");
    app.login("pace@example.com", "the newest link wins").await;
}

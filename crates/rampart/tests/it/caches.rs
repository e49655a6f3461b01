//! The hot-path caches (verified tokens, sessions, the caller's account) never change an
//! answer: a cached token still expires, a revoked session ends at once, a changed account shows
//! at once, and another instance's revocation is seen within the cache's TTL.

use rampart_core::master_key::KeyOrigin;
use rampart_domain::clock::FixedClock;
use rampart_domain::{KeyRing, SessionId, SystemClock};
use rampart_server::AppState;
use rampart_store::RevokeSessions;
use rampart_testkit::{TestApp, TestDb};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "correct horse battery staple";

#[tokio::test]
async fn a_cached_token_still_expires_and_a_revoked_session_ends_at_once() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |_| {}).await;
    app.create_user("cache@example.com", PW, &[]).await;
    let (a, b) = (app.login("cache@example.com", PW).await, app.login("cache@example.com", PW).await);
    let (ta, tb) = (&a.access_token, &b.access_token);
    for _ in 0..3 {
        assert_eq!(app.me(ta).await.0, 200, "the token, its session and the account are now cached");
    }
    assert_eq!(app.me(tb).await.0, 200);

    let (status, _) = app.send_bearer(Method::DELETE, &format!("/v1/me/sessions/{}", a.session_id), tb, None).await;
    assert_eq!(status, 204);
    assert_eq!(app.me(ta).await.0, 401, "revoked: refused on the very next request");
    assert_eq!(app.me(tb).await.0, 200, "the other session lives");

    // A token verified (and cached) a moment ago expires all the same.
    let ttl = app.state.settings.tokens.access_ttl + app.state.settings.tokens.leeway;
    clock.advance(ttl - time::Duration::seconds(5));
    assert_eq!(app.me(tb).await.0, 200, "just before expiry");
    clock.advance(time::Duration::seconds(6));
    let (status, body) = app.me(tb).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_token")), "expired, though cached");
}

#[tokio::test]
async fn the_callers_account_shows_changes_at_once() {
    let app = TestApp::spawn().await;
    app.create_user("root@example.com", PW, &["admin"]).await;
    let user = app.create_user("acct@example.com", PW, &[]).await;
    let admin = app.login("root@example.com", PW).await.access_token;
    let t = app.login("acct@example.com", PW).await.access_token;
    let (_, before) = app.me(&t).await;
    assert_eq!(before["user"]["roles"], json!(["user"]));

    let path = format!("/v1/admin/users/{}", user.id.0);
    let renamed = json!({"name": "Renamed", "roles": ["user", "moderator"]});
    assert_eq!(app.send_bearer(Method::PATCH, &path, &admin, Some(&renamed)).await.0, 200);
    let (status, after) = app.me(&t).await;
    assert_eq!(status, 200);
    assert_eq!(after["user"]["name"], "Renamed");
    let mut roles: Vec<&str> = after["user"]["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["moderator", "user"]);

    assert_eq!(app.send_bearer(Method::PATCH, &path, &admin, Some(&json!({"disabled": true}))).await.0, 200);
    assert_eq!(app.me(&t).await.0, 401, "disabling ends the sessions at once");
}

#[tokio::test]
async fn another_instance_s_revocation_is_seen_within_the_cache_ttl() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| c.sessions.cache_ttl_ms = 300).await;
    let user = app.create_user("two@example.com", PW, &[]).await;
    let login = app.login("two@example.com", PW).await;
    let t = &login.access_token;
    assert_eq!(app.me(t).await.0, 200);

    // A second instance on the same database revokes the session.
    let dir = tempfile::tempdir().unwrap();
    let config = rampart_testkit::test_config(dir.path(), &app.db);
    let key: KeyRing = (*app.state.master_key).clone();
    let (other, _) = AppState::open(config, key, KeyOrigin::Environment, Arc::new(SystemClock)).await.unwrap();
    let sid = SessionId(login.session_id.parse().unwrap());
    let ev = rampart_domain::SecurityEvent::new(
        uuid::Uuid::now_v7(),
        time::OffsetDateTime::now_utc(),
        rampart_domain::Action::SessionRevoked,
        rampart_domain::Outcome::Success,
    );
    assert_eq!(
        other
            .store
            .revoke_sessions(user.id, RevokeSessions::All, time::OffsetDateTime::now_utc(), "test", &ev)
            .await
            .unwrap(),
        1
    );
    assert!(other.store.get_session(sid).await.unwrap().unwrap().revoked_at.is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if app.me(t).await.0 == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still accepted 5 s after another instance revoked it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.store.close().await;
}

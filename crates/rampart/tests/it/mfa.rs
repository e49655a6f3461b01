//! Second factors: TOTP set-up and replay refusal, backup codes, step-up login with its
//! throttling, the enrolment policy, and the cross-language check with pyotp.

use base64::Engine as _;
use rampart_domain::clock::FixedClock;
use rampart_domain::otp::Totp;
use rampart_domain::{Action, Actor, Clock as _, Outcome, SecurityEvent};
use rampart_store::RevokeSessions;
use rampart_testkit::smtp::SmtpSink;
use rampart_testkit::{TestApp, TestDb, claims, for_each_backend};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const PW: &str = "correct horse battery staple";

pub(crate) fn no_delays(c: &mut rampart_config::Config) {
    c.login.delay_base_ms = 0;
}

pub(crate) fn secret_bytes(setup: &Value) -> Vec<u8> {
    data_encoding::BASE32_NOPAD.decode(setup["secret"].as_str().unwrap().as_bytes()).unwrap()
}

pub(crate) fn code_at(secret: &[u8], t: time::OffsetDateTime) -> String {
    Totp::default().code(secret, t.unix_timestamp())
}

/// Sets up and enables TOTP for a logged-in user at the clock's time; returns the secret and
/// the backup codes.
pub(crate) async fn enable_totp(app: &TestApp, token: &str, now: time::OffsetDateTime) -> (Vec<u8>, Vec<String>) {
    let (s, setup) = app.post_bearer("/v1/me/mfa/totp/setup", token, &json!({ "password": PW })).await;
    assert_eq!(s, 200, "{setup}");
    let secret = secret_bytes(&setup);
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/enable", token, &json!({ "code": code_at(&secret, now) })).await;
    assert_eq!(s, 200, "{body}");
    let codes = body["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

#[tokio::test]
async fn totp_setup_enable_step_up_login_and_replay_refusal() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.mfa.issuer = "Acme Co".into();
    })
    .await;
    let ann = app.create_user("ann@example.com", PW, &[]).await;
    let token = app.login("ann@example.com", PW).await.access_token;

    // Re-authentication first: a wrong password stores nothing.
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/setup", &token, &json!({ "password": "wrong one!" })).await;
    assert_eq!((s, body["errors"][0]["code"].as_str()), (400, Some("password_incorrect")), "{body}");
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/enable", &token, &json!({ "code": "123456" })).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("totp_not_set_up")), "{body}");

    let (s, setup) = app.post_bearer("/v1/me/mfa/totp/setup", &token, &json!({ "password": PW })).await;
    assert_eq!(s, 200, "{setup}");
    let secret = secret_bytes(&setup);
    assert_eq!(secret.len(), 20, "160-bit secret");
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Acme%20Co:ann%40example.com?secret="), "{uri}");
    assert!(uri.contains("&issuer=Acme%20Co"), "{uri}");
    let png = base64::engine::general_purpose::STANDARD.decode(setup["qr_png_base64"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    // The secret is stored sealed, not in clear.
    let stored = app.state.store.totp(ann.id).await.unwrap().unwrap();
    assert!(stored.sealed_secret.starts_with(&format!("v1.{}.", app.state.master_key.key_id())));
    assert!(!stored.sealed_secret.contains(setup["secret"].as_str().unwrap()));

    // Still no factor: login is as before.
    assert!(!app.login("ann@example.com", PW).await.access_token.is_empty(), "one step: tokens at once");

    let t0 = clock.now();
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/enable", &token, &json!({ "code": "000000" })).await;
    let wrong_is_right = code_at(&secret, t0) == "000000";
    if !wrong_is_right {
        assert_eq!((s, body["errors"][0]["code"].as_str()), (400, Some("invalid_code")), "{body}");
    }
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/enable", &token, &json!({ "code": code_at(&secret, t0) })).await;
    assert_eq!(s, 200, "{body}");
    let codes = body["backup_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let (_, me) = app.me(&token).await;
    assert_eq!(me["user"]["mfa"], json!({ "totp": true, "webauthn": false, "backup_codes_left": 10 }));

    // Step-up: the code that enabled TOTP is spent; a later step works once.
    let mt = app.mfa_token("ann@example.com", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(&secret, t0) })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_code")), "replayed enable code: {body}");
    clock.advance(time::Duration::seconds(30));
    let t1 = clock.now();
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(&secret, t1) })).await;
    assert_eq!(s, 200, "{body}");
    let amr = claims(body["access_token"].as_str().unwrap())["amr"].clone();
    assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    // The mfa_token is spent, and the code is spent even with a fresh token.
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(&secret, t1) })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_token")), "{body}");
    let mt2 = app.mfa_token("ann@example.com", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt2, "code": code_at(&secret, t1) })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_code")), "{body}");
    // An earlier step than the last accepted one is refused too (it is within the window).
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt2, "code": code_at(&secret, t0) })).await;
    assert_eq!(s, 401);

    let seen = app.actions().await;
    for a in ["mfa.totp.setup", "mfa.totp.enabled", "auth.mfa.required", "mfa.totp.used", "mfa.failed"] {
        assert!(seen.iter().any(|s| s == a), "{a} missing from {seen:?}");
    }
}

#[tokio::test]
async fn mfa_token_expires_and_is_bound_to_its_login_mode() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), no_delays).await;
    app.create_user("exp@example.com", PW, &[]).await;
    let token = app.login("exp@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;

    let mt = app.mfa_token("exp@example.com", PW).await.mfa_token;
    clock.advance(time::Duration::seconds(301));
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(&secret, clock.now()) })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_token")), "5 minutes: {body}");
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": "mt_junk", "code": "123456" })).await;
    assert_eq!(s, 401);
    let (s, _) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": "1", "backup_code": "2" })).await;
    assert_eq!(s, 400, "exactly one answer");

    // A cookie-mode login gets its cookie after the second factor.
    let res = app
        .post("/v1/auth/login?session=cookie", &json!({ "email": "exp@example.com", "password": PW }))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true);
    clock.advance(time::Duration::seconds(30));
    let res = app
        .post("/v1/auth/login/mfa", &json!({ "mfa_token": body["mfa_token"], "code": code_at(&secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("set-cookie").unwrap().to_str().unwrap().starts_with("__Host-rampart_session="));
    let body: Value = res.json().await.unwrap();
    assert!(body["csrf_token"].is_string() && body.get("access_token").is_none(), "{body}");
}

#[tokio::test]
async fn second_factor_failures_share_the_password_lockout() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.login.max_failures = 3;
    })
    .await;
    app.create_user("lock@example.com", PW, &[]).await;
    let token = app.login("lock@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;
    clock.advance(time::Duration::seconds(60));
    let good = code_at(&secret, clock.now());
    let bad = if good == "111111" { "222222" } else { "111111" };

    let mt = app.mfa_token("lock@example.com", PW).await.mfa_token;
    for _ in 0..2 {
        let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": bad })).await;
        assert_eq!(s, 401);
    }
    // Entering the password again does not reset the count of wrong codes.
    let mt = app.mfa_token("lock@example.com", PW).await.mfa_token;
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": bad })).await;
    assert_eq!(s, 401, "the third failure locks");
    let (s, body) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": good })).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (429, Some("too_many_attempts")),
        "locked, even with the right code: {body}"
    );
    let (s, _) = app.post_json("/v1/auth/login", &json!({ "email": "lock@example.com", "password": PW })).await;
    assert_eq!(s, 429, "the password login shares the lock");
    assert!(app.actions().await.iter().any(|a| a == "auth.lockout"));

    // After the lockout, a right second factor clears the count.
    clock.advance(time::Duration::seconds(901));
    let mt = app.mfa_token("lock@example.com", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(&secret, clock.now()) })).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn an_mfa_token_takes_a_bounded_number_of_wrong_codes() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.login.max_failures = 50;
        c.mfa.challenge_max_failures = 2;
    })
    .await;
    app.create_user("cap@example.com", PW, &[]).await;
    let token = app.login("cap@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;
    clock.advance(time::Duration::seconds(30));
    let good = code_at(&secret, clock.now());
    let bad = if good == "111111" { "222222" } else { "111111" };
    let mt = app.mfa_token("cap@example.com", PW).await.mfa_token;
    for _ in 0..2 {
        assert_eq!(app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": bad })).await.0, 401);
    }
    let (s, body) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": good })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_token")), "{body}");
}

#[tokio::test]
async fn backup_codes_work_once_regenerate_and_disable_with_totp() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        sink.configure(c);
    })
    .await;
    app.create_user("bob@example.com", PW, &[]).await;
    let token = app.login("bob@example.com", PW).await.access_token;
    let (secret, codes) = enable_totp(&app, &token, clock.now()).await;
    let added = sink.wait_for("bob@example.com", Duration::from_secs(10)).await;
    assert!(added.subject.contains("TOTP") || added.text.contains("TOTP"), "{}", added.subject);
    assert_eq!(codes.len(), 10);
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);

    let mt = app.mfa_token("bob@example.com", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "backup_code": codes[0].to_uppercase() })).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    let session2 = body["access_token"].as_str().unwrap().to_string();
    let (_, me) = app.me(&session2).await;
    assert_eq!(me["user"]["mfa"]["backup_codes_left"], 9);
    let mt = app.mfa_token("bob@example.com", PW).await.mfa_token;
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "backup_code": codes[0] })).await;
    assert_eq!(s, 401, "a backup code works once");
    assert!(app.actions().await.iter().any(|a| a == "mfa.backup_code.used"));

    // Regeneration needs the password and kills the old set.
    let (s, _) = app.post_bearer("/v1/me/mfa/backup-codes", &session2, &json!({ "password": "not it at all" })).await;
    assert_eq!(s, 400);
    let (s, body) = app.post_bearer("/v1/me/mfa/backup-codes", &session2, &json!({ "password": PW })).await;
    assert_eq!(s, 200, "{body}");
    let fresh: Vec<String> =
        body["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    let mt = app.mfa_token("bob@example.com", PW).await.mfa_token;
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "backup_code": codes[1] })).await;
    assert_eq!(s, 401, "old set is dead");
    let (s, _) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "backup_code": fresh[0] })).await;
    assert_eq!(s, 200);

    // Disabling needs the password and a current code; afterwards login is one step again.
    clock.advance(time::Duration::seconds(30));
    let code = code_at(&secret, clock.now());
    let (s, _) = app
        .post_bearer("/v1/me/mfa/totp/disable", &session2, &json!({ "password": "not it at all", "code": code }))
        .await;
    assert_eq!(s, 400);
    let (s, body) =
        app.post_bearer("/v1/me/mfa/totp/disable", &session2, &json!({ "password": PW, "code": code })).await;
    assert_eq!(s, 204, "{body}");
    assert!(!app.login("bob@example.com", PW).await.access_token.is_empty(), "one step: tokens at once");
    let seen = app.actions().await;
    for a in ["mfa.backup_codes.regenerated", "mfa.totp.disabled"] {
        assert!(seen.iter().any(|s| s == a), "{a} missing");
    }
    // The notice is enqueued by the disable request itself: once the queue is empty, it is in.
    app.mail_idle().await;
    let removed = sink
        .messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == "bob@example.com"))
        .map(|m| m.subject)
        .collect::<Vec<_>>();
    assert!(sink.messages().iter().any(|m| m.subject.contains("removed")), "{removed:?}");
}

#[tokio::test]
async fn enabling_a_factor_ends_the_other_sessions() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), no_delays).await;
    app.create_user("two@example.com", PW, &[]).await;
    let a = app.login("two@example.com", PW).await.access_token;
    let b = app.login("two@example.com", PW).await.access_token;
    enable_totp(&app, &a, clock.now()).await;
    assert_eq!(app.me(&a).await.0, 200);
    assert_eq!(app.me(&b).await.0, 401, "the other session ended");
}

#[tokio::test]
async fn a_role_that_requires_a_factor_limits_the_session_to_enrolment() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.mfa.required_for_roles = vec!["admin".into()];
    })
    .await;
    app.create_user("root@example.com", PW, &["admin"]).await;
    app.create_user("plain@example.com", PW, &[]).await;
    let token = app.login("root@example.com", PW).await.access_token;
    let (s, body) = app.get_bearer("/v1/admin/users", &token).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("mfa_enrollment_required")), "{body}");
    let (s, body) = app.get_bearer("/v1/me/sessions", &token).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("mfa_enrollment_required")), "{body}");
    assert_eq!(app.me(&token).await.0, 200, "the account itself is visible");
    // Users without the role are not limited.
    let plain = app.login("plain@example.com", PW).await.access_token;
    assert_eq!(app.get_bearer("/v1/me/sessions", &plain).await.0, 200);

    enable_totp(&app, &token, clock.now()).await;
    let (s, body) = app.get_bearer("/v1/admin/users", &token).await;
    assert_eq!(s, 200, "enrolled: the limit is lifted: {body}");
}

/// A lone code submitted in parallel with many tokens: exactly one step-up succeeds.
#[tokio::test]
async fn parallel_submissions_of_one_totp_code_give_exactly_one_session() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.login.max_failures = 100;
        // Every racer gets a connection: on a loaded machine a pool timeout (503) would hide
        // the winner, and the race is what is under test.
        c.database.max_connections = 10;
        c.database.acquire_timeout_ms = 60_000;
    })
    .await;
    app.create_user("race@example.com", PW, &[]).await;
    let token = app.login("race@example.com", PW).await.access_token;
    let (secret, _) = enable_totp(&app, &token, clock.now()).await;
    clock.advance(time::Duration::seconds(30));
    let code = code_at(&secret, clock.now());
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(app.mfa_token("race@example.com", PW).await.mfa_token);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let results = futures::future::join_all(tokens.into_iter().map(|mt| {
        let (barrier, req) =
            (barrier.clone(), app.post("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code })));
        async move {
            barrier.wait().await;
            req.send().await.unwrap().status().as_u16()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|s| **s == 200).count(), 1, "{results:?}");
}

fn event(action: Action, user: uuid::Uuid) -> SecurityEvent {
    SecurityEvent::new(uuid::Uuid::now_v7(), time::OffsetDateTime::now_utc(), action, Outcome::Success)
        .actor(Actor::User(user))
}

/// The store's compare-and-swaps, on both backends: 50 concurrent uses of one TOTP step and of
/// one backup code, exactly one success each.
#[tokio::test]
async fn store_consumes_totp_steps_and_backup_codes_exactly_once_under_concurrency() {
    for_each_backend!(|db| {
        let app = TestApp::spawn_with(db, |c| c.database.max_connections = 10).await;
        let user = app.create_user("cas@example.com", PW, &[]).await;
        let store = app.db.store().await;
        let now = time::OffsetDateTime::now_utc();
        store.set_pending_totp(user.id, "v1.x.y", "x", now, &event(Action::MfaTotpSetup, user.id.0)).await.unwrap();
        let codes = [[7u8; 32], [8u8; 32]];
        assert!(
            store
                .enable_totp(user.id, 100, &codes, now, RevokeSessions::None, &event(Action::MfaTotpEnabled, user.id.0))
                .await
                .unwrap()
        );
        let totp_wins = futures::future::join_all((0..50).map(|_| {
            let store = store.clone();
            async move { store.use_totp_step(user.id, 101, &event(Action::MfaTotpUsed, user.id.0)).await.unwrap() }
        }))
        .await;
        assert_eq!(totp_wins.iter().filter(|w| **w).count(), 1, "one step, one success");
        assert!(
            !store.use_totp_step(user.id, 100, &event(Action::MfaTotpUsed, user.id.0)).await.unwrap(),
            "older step"
        );

        let code_wins = futures::future::join_all((0..50).map(|_| {
            let store = store.clone();
            async move {
                store
                    .use_backup_code(user.id, &[7u8; 32], now, |_| event(Action::MfaBackupCodeUsed, user.id.0))
                    .await
                    .unwrap()
            }
        }))
        .await;
        let wins: Vec<_> = code_wins.iter().flatten().collect();
        assert_eq!(wins.len(), 1, "one code, one success");
        assert_eq!(wins[0].0, 1, "one code left");
        assert_eq!(store.mfa_status(user.id).await.unwrap().backup_codes_left, 1);
        // Through the server's verify: the app signed a checkpoint at start-up.
        let report = rampart_core::services::audit::verify(&app.state, Actor::System, None).await.unwrap();
        assert!(report.ok, "the chain holds every concurrent event: {report:?}");
    });
}

/// Whether pyotp is importable. In CI it must be (`.ci/run` installs it); elsewhere the
/// cross-language check is skipped with a note.
fn pyotp_available() -> bool {
    let ok =
        std::process::Command::new("python3").args(["-c", "import pyotp"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have pyotp: pip install pyotp");
        eprintln!("skipping: pyotp not installed (pip install pyotp)");
    }
    ok
}

/// pyotp, reading only the `otpauth://` URI, makes codes this service accepts; a replayed one
/// is refused.
#[tokio::test]
async fn pyotp_codes_from_the_otpauth_uri_are_accepted_once() {
    if !pyotp_available() {
        return;
    }
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("py@example.com", PW, &[]).await;
    let token = app.login("py@example.com", PW).await.access_token;
    let (s, setup) = app.post_bearer("/v1/me/mfa/totp/setup", &token, &json!({ "password": PW })).await;
    assert_eq!(s, 200);
    let uri = setup["otpauth_uri"].as_str().unwrap();
    // `offset` steps ahead of now (the service accepts one step either side).
    let pyotp = |offset: i64| {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import pyotp, sys, time; t = pyotp.parse_uri(sys.argv[1]); \
                 assert t.issuer == 'Rampart' and t.name == 'py@example.com', (t.issuer, t.name); \
                 print(t.at(time.time() + 30 * int(sys.argv[2])))",
                uri,
                &offset.to_string(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (s, body) = app.post_bearer("/v1/me/mfa/totp/enable", &token, &json!({ "code": pyotp(0) })).await;
    assert_eq!(s, 200, "pyotp's current code enables TOTP: {body}");
    let next = pyotp(1);
    let mt = app.mfa_token("py@example.com", PW).await.mfa_token;
    let (s, body) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": next })).await;
    assert_eq!(s, 200, "pyotp's next code logs in: {body}");
    let mt = app.mfa_token("py@example.com", PW).await.mfa_token;
    let (s, body) = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": next })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_code")), "replay refused: {body}");
}

/// The e-mail fallback: a six-digit code mailed for one login, once a minute, single-use with
/// its `mfa_token`.
#[tokio::test]
async fn an_emailed_code_completes_a_step_up_where_configured() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.mfa.email_fallback = true;
        sink.configure(c);
    })
    .await;
    app.create_user("mail@example.com", PW, &[]).await;
    let token = app.login("mail@example.com", PW).await.access_token;
    enable_totp(&app, &token, clock.now()).await;

    let (_, body) = app.post_json("/v1/auth/login", &json!({ "email": "mail@example.com", "password": PW })).await;
    assert_eq!(body["methods"], json!(["totp", "backup_code", "email"]));
    let mt = body["mfa_token"].as_str().unwrap().to_string();
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "method": "email", "code": "123456" })).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("invalid_mfa_code")), "no code sent yet: {body}");
    assert_eq!(app.post_json("/v1/auth/login/mfa/email", &json!({ "mfa_token": mt })).await.0, 202);
    assert_eq!(app.post_json("/v1/auth/login/mfa/email", &json!({ "mfa_token": mt })).await.0, 429, "once a minute");
    // The 202 enqueued the code: once the queue is empty, the sink has it.
    app.mail_idle().await;
    let code = sink
        .messages()
        .into_iter()
        .find(|m| m.subject == "Your sign-in code")
        .and_then(|m| m.text.split("Your sign-in code is ").nth(1).map(|r| r[..6].to_string()));
    let code = code.expect("the code arrives by mail");
    let other = app.mfa_token("mail@example.com", PW).await.mfa_token;
    let (s, _) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": other, "method": "email", "code": code })).await;
    assert_eq!(s, 401, "a code belongs to its own login");
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "method": "email", "code": code })).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(app.actions().await.iter().any(|a| a == "mfa.email.sent"));
}

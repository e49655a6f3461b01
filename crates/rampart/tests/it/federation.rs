//! Federation: sign-in with the Telegram Login Widget and linked identities. Every payload is
//! signed by an independent implementation of Telegram's algorithm (`py/telegram_widget.py`,
//! Python's hashlib and hmac), so Rampart's check is held to a second reading of the spec.

use rampart_domain::{Action, Outcome};
use rampart_testkit::{TestApp, TestDb, claims};
use reqwest::Method;
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";
const BOT: &str = "7012345678:AAH1x-telegram-test-bot-token-abc";

fn configure(c: &mut rampart_config::Config, auto_register: bool) {
    c.login.delay_base_ms = 0;
    c.federation.auto_register = auto_register;
    c.federation.telegram.bot_token = Some(rampart_config::SecretString::new(BOT));
}

async fn spawn(auto_register: bool) -> TestApp {
    TestApp::spawn_with(TestDb::fresh().await, |c| configure(c, auto_register)).await
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The widget's payload for `fields`, signed with `bot` by the Python implementation.
fn signed(bot: &str, fields: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/telegram_widget.py");
    // Python signs the text of each value, as the widget's data-check-string holds it.
    let text: serde_json::Map<String, Value> = fields
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.as_str().map_or_else(|| v.to_string(), str::to_string))))
        .collect();
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(bot)
        .arg(Value::Object(text).to_string())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut payload = fields;
    payload["hash"] = signed["hash"].clone();
    payload
}

/// A fresh widget payload for Telegram user `id`, signed with the configured bot: each one
/// distinct (its photo's address numbered), as separate authorizations are.
fn widget(id: i64, username: &str) -> Value {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    signed(
        BOT,
        json!({"id": id, "first_name": "Ada", "last_name": "L", "username": username,
               "photo_url": format!("https://t.me/i/userpic/320/{n}.jpg"), "auth_date": unix_now()}),
    )
}

#[tokio::test]
async fn a_linked_identity_signs_in_is_listed_exported_and_unlinked_with_events() {
    let app = spawn(false).await;
    let user = app.create_user("ada@example.com", PW, &[]).await;
    let me = app.login("ada@example.com", PW).await;

    // Link while signed in.
    let (s, linked) = app.post_bearer("/v1/me/identities/telegram", &me.access_token, &widget(4242, "ada")).await;
    assert_eq!(s, 200, "{linked}");
    assert_eq!((linked["provider"].as_str(), linked["subject"].as_str()), (Some("telegram"), Some("4242")));
    assert_eq!(linked["username"], "ada");
    // Linking it again (a new payload) answers the same link.
    let (s, again) = app.post_bearer("/v1/me/identities/telegram", &me.access_token, &widget(4242, "ada")).await;
    assert_eq!((s, &again["id"]), (200, &linked["id"]), "{again}");
    let (s, list) = app.get_bearer("/v1/me/identities", &me.access_token).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["last_used_at"], Value::Null);

    // Sign in with it: tokens for that account, `amr` naming the federation.
    let payload = widget(4242, "ada_l");
    let (s, body) = app.post_json("/v1/auth/telegram", &payload).await;
    assert_eq!(s, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], user.id.0.to_string());
    assert_eq!(c["amr"], json!(["fed"]));
    let (s, me_body) = app.me(body["access_token"].as_str().unwrap()).await;
    assert_eq!((s, me_body["user"]["email"].as_str()), (200, Some("ada@example.com")), "{me_body}");
    // The same payload again is a replay.
    let (s, body) = app.post_json("/v1/auth/telegram", &payload).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("federated_login_replayed")), "{body}");
    // The sign-in refreshed the display data and the time.
    let (_, list) = app.get_bearer("/v1/me/identities", &me.access_token).await;
    assert_eq!(list["items"][0]["username"], "ada_l");
    assert!(list["items"][0]["last_used_at"].is_string(), "{list}");

    // Cookie mode, like /v1/auth/login?session=cookie.
    let res =
        app.client.post(app.url("/v1/auth/telegram?session=cookie")).json(&widget(4242, "ada")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"), "{cookie}");
    let body: Value = res.json().await.unwrap();
    assert!(body["csrf_token"].is_string() && body.get("access_token").is_none(), "{body}");

    // The export lists it.
    let res = app.authed(Method::GET, "/v1/me/export", &me.access_token).send().await.unwrap();
    let export: Value = res.json().await.unwrap();
    let ids = export["linked_identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{export}");
    assert_eq!((ids[0]["provider"].as_str(), ids[0]["subject"].as_str()), (Some("telegram"), Some("4242")));

    // Unlink (the account has a password, so it keeps a way in); then the identity no longer
    // signs in.
    let id = linked["id"].as_str().unwrap();
    let (s, _) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &me.access_token, None).await;
    assert_eq!(s, 204);
    let (s, _) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &me.access_token, None).await;
    assert_eq!(s, 404, "gone");
    let (_, list) = app.get_bearer("/v1/me/identities", &me.access_token).await;
    assert_eq!(list["items"], json!([]));
    let (s, body) = app.post_json("/v1/auth/telegram", &widget(4242, "ada")).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("identity_not_linked")), "{body}");

    // What was recorded, each with the provider.
    for (action, outcome) in [
        (Action::IdentityLinked, Outcome::Success),
        (Action::FederatedLogin, Outcome::Success),
        (Action::FederatedLogin, Outcome::Denied),
        (Action::IdentityUnlinked, Outcome::Success),
    ] {
        let found = app.wait_for_events(1, |e| e.action == action && e.outcome == outcome).await;
        assert_eq!(found[0].details["provider"], "telegram", "{action:?} {outcome:?}: {:?}", found[0]);
    }
    let replayed =
        app.wait_for_events(1, |e| e.action == Action::FederatedLogin && e.details["reason"] == "replayed").await;
    assert_eq!(replayed[0].outcome, Outcome::Denied);
}

#[tokio::test]
async fn tampered_wrong_bot_stale_and_hashless_payloads_are_refused_and_nothing_is_stored() {
    let app = spawn(false).await;
    let users_before = app.state.store.count_users().await.unwrap();
    let refused = |payload: Value| {
        let app = &app;
        async move {
            let (s, body) = app.post_json("/v1/auth/telegram", &payload).await;
            assert_eq!((s, body["code"].as_str()), (401, Some("invalid_telegram_login")), "{payload}: {body}");
            assert_eq!(body["type"].as_str().map(|t| t.contains("invalid_telegram_login")), Some(true), "{body}");
        }
    };
    let mut tampered = widget(77, "eve");
    tampered["username"] = json!("admin");
    refused(tampered).await;
    let mut other_id = widget(77, "eve");
    other_id["id"] = json!(78);
    refused(other_id).await;
    refused(signed("7099999999:AAH-another-bot-of-someone-else", json!({"id": 77, "auth_date": unix_now()}))).await;
    refused(signed(BOT, json!({"id": 77, "auth_date": unix_now() - 86_400 - 5}))).await;
    refused(signed(BOT, json!({"id": 77, "auth_date": unix_now() + 3600}))).await;
    let mut hashless = widget(77, "eve");
    hashless.as_object_mut().unwrap().remove("hash");
    refused(hashless).await;
    // A field the widget does not send is refused by name, not silently dropped.
    let mut extra = widget(77, "eve");
    extra["is_admin"] = json!(true);
    let (s, body) = app.post_json("/v1/auth/telegram", &extra).await;
    assert_eq!(s, 400, "{body}");

    // A right payload for an identity nobody linked, with auto_register off: 403, nothing kept.
    let (s, body) = app.post_json("/v1/auth/telegram", &widget(77, "eve")).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("identity_not_linked")), "{body}");
    assert!(app.state.store.identity_by_subject("telegram", "77").await.unwrap().is_none());
    assert_eq!(app.state.store.count_users().await.unwrap(), users_before);
    let failures =
        app.wait_for_events(6, |e| e.action == Action::FederatedLogin && e.outcome == Outcome::Failure).await;
    assert!(failures.iter().all(|e| e.details["provider"] == "telegram"), "{failures:?}");
    for reason in ["bad_signature", "stale", "from_the_future", "missing_hash"] {
        assert!(failures.iter().any(|e| e.details["reason"] == reason), "{reason}: {failures:?}");
    }

    // Without a bot token Telegram sign-in is off.
    let off = TestApp::spawn().await;
    let (s, body) = off.post_json("/v1/auth/telegram", &widget(77, "eve")).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("method_not_available")), "{body}");
}

#[tokio::test]
async fn auto_register_creates_a_passwordless_account_that_keeps_its_last_way_in() {
    let app = spawn(true).await;
    let (s, body) = app.post_json("/v1/auth/telegram", &widget(9001, "neo")).await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let (s, me) = app.me(&token).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "tg9001@telegram.invalid", "a placeholder that is never mailed: {me}");
    assert_eq!(me["user"]["name"], "Ada L");
    let created = app.wait_for_events(1, |e| e.action == Action::UserCreated && e.details["via"] == "telegram").await;
    assert_eq!(created[0].details["provider"], "telegram");
    // Signing in again finds the same account.
    let (s, again) = app.post_json("/v1/auth/telegram", &widget(9001, "neo")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(claims(again["access_token"].as_str().unwrap())["sub"], claims(&token)["sub"]);

    // Its only way in cannot be unlinked.
    let (_, list) = app.get_bearer("/v1/me/identities", &token).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let (s, body) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &token, None).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("last_sign_in_method")), "{body}");
    // With a second identity linked, one of them can go.
    let (s, second) = app.post_bearer("/v1/me/identities/telegram", &token, &widget(9002, "neo2")).await;
    assert_eq!(s, 200, "{second}");
    let (s, _) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &token, None).await;
    assert_eq!(s, 204);
    let last = second["id"].as_str().unwrap();
    let (s, body) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{last}"), &token, None).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("last_sign_in_method")), "{body}");

    // An identity linked to another account is not linked again.
    let (s, other) = app.post_json("/v1/auth/telegram", &widget(9003, "trinity")).await;
    assert_eq!(s, 200, "{other}");
    let (s, body) = app.post_bearer("/v1/me/identities/telegram", &token, &widget(9003, "trinity")).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("identity_taken")), "{body}");

    // Nothing was ever sent to the placeholder address.
    app.mail_idle().await;
    let user = uuid::Uuid::parse_str(claims(&token)["sub"].as_str().unwrap()).unwrap();
    let mail = app.state.store.mail_about(user).await.unwrap();
    assert!(mail.iter().all(|m| m.sent_at.is_none()), "{mail:?}");
}

#[tokio::test]
async fn disabled_accounts_are_refused_and_a_second_factor_still_applies() {
    let app = spawn(false).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let ann = app.create_user("ann@example.com", PW, &[]).await;
    let ann_token = app.login("ann@example.com", PW).await.access_token;
    let (s, _) = app.post_bearer("/v1/me/identities/telegram", &ann_token, &widget(501, "ann")).await;
    assert_eq!(s, 200);
    let (_, backup_codes) = crate::mfa::enable_totp(&app, &ann_token, time::OffsetDateTime::now_utc()).await;
    let (s, body) = app.post_json("/v1/auth/telegram", &widget(501, "ann")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["mfa_required"], true, "login's step-up answer: {body}");
    assert!(body["mfa_token"].is_string() && body.get("access_token").is_none(), "{body}");
    // The step-up completes as after a password, and the session names what was used.
    let (s, done) = app
        .post_json("/v1/auth/login/mfa", &json!({"mfa_token": body["mfa_token"], "backup_code": backup_codes[0]}))
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(claims(done["access_token"].as_str().unwrap())["amr"], json!(["fed", "otp", "mfa"]));

    let (s, _) = app
        .send_bearer(
            Method::PATCH,
            &format!("/v1/admin/users/{}", ann.id.0),
            &admin.access_token,
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = app.post_json("/v1/auth/telegram", &widget(501, "ann")).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("account_disabled")), "{body}");
}

/// A link is a new way in: only from a recent sign-in (`security.reauth_window_secs`).
#[tokio::test]
async fn linking_needs_a_recent_sign_in() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        configure(c, false);
        c.security.reauth_window_secs = 0;
    })
    .await;
    app.create_user("old@example.com", PW, &[]).await;
    let token = app.login("old@example.com", PW).await.access_token;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, body) = app.post_bearer("/v1/me/identities/telegram", &token, &widget(808, "old")).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("reauthentication_required")), "{body}");
    assert!(app.state.store.identity_by_subject("telegram", "808").await.unwrap().is_none());
}

/// 50 presentations of one fresh payload at once: exactly one signs in.
#[tokio::test]
async fn fifty_concurrent_presentations_of_one_payload_sign_in_once() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        configure(c, true);
        c.rate_limit.enabled = false;
        c.login.ip_max_failures = 0;
    })
    .await;
    let payload = widget(31337, "race");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let barrier = barrier.clone();
            let req = app.client.post(app.url("/v1/auth/telegram")).json(&payload);
            tokio::spawn(async move {
                barrier.wait().await;
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                (status, body["code"].as_str().map(str::to_string))
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (401, Some(code)) => assert_eq!(code, "federated_login_replayed"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn telegram_sign_in_is_rate_limited_like_login() {
    // The default rules, on as in production: 10 a minute per address, as for login.
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        configure(c, false);
        c.rate_limit.enabled = true;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (s, _) = app.post_json("/v1/auth/telegram", &signed(BOT, json!({"id": 1, "auth_date": 1}))).await;
        statuses.push(s);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[11], 429, "{statuses:?}");
}

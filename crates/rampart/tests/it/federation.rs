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

// ---------------------------------------------------------------------------------------------
// OpenID Connect, against a certified provider (panva's oidc-provider, `rampart_testkit::oidc`):
// the browser's part of the flow is real HTTP with the provider's cookies kept; the flow cookie
// Rampart sets is sent back by hand (it is `Secure`, and these requests are plain loopback HTTP).

mod oidc {
    use super::PW;
    use rampart_domain::{Action, Outcome};
    use rampart_testkit::oidc::TestIdp;
    use rampart_testkit::{TestApp, TestDb, claims};
    use reqwest::Method;
    use serde_json::{Value, json};

    const FLOW: &str = "rampart_oauth_flow";
    const CALLBACK: &str = "/v1/auth/oauth/test/callback";

    async fn app_on(db: TestDb, idp: &TestIdp, f: impl FnOnce(&mut rampart_config::Config)) -> TestApp {
        let app = TestApp::spawn_with(db, |c| {
            c.login.delay_base_ms = 0;
            c.federation.allow_networks = vec!["127.0.0.1/32".into()];
            c.federation.providers.push(idp.provider("test"));
            f(c);
        })
        .await;
        idp.setup(&[app.url(CALLBACK)]).await;
        app
    }

    async fn app_with(idp: &TestIdp, f: impl FnOnce(&mut rampart_config::Config)) -> TestApp {
        app_on(TestDb::fresh().await, idp, f).await
    }

    /// `GET …/start`: (the provider's authorization URL, the flow cookie's value, its header).
    async fn start(app: &TestApp, query: &str, bearer: Option<&str>) -> (String, String, String) {
        start_at(app, "test", query, bearer).await
    }

    async fn start_at(app: &TestApp, provider: &str, query: &str, bearer: Option<&str>) -> (String, String, String) {
        let mut req = app.client.get(app.url(&format!("/v1/auth/oauth/{provider}/start{query}")));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 302, "{:?}", res.text().await);
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let set = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{FLOW}=")))
            .expect("the flow cookie");
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
        (location, value, set)
    }

    fn param(url: &str, name: &str) -> Option<String> {
        url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The callback with the flow cookie, asking for JSON: (status, body).
    async fn finish(app: &TestApp, back: &str, flow: Option<&str>) -> (u16, Value) {
        let mut req = app.client.get(back).header("accept", "application/json");
        if let Some(flow) = flow {
            req = req.header("cookie", format!("{FLOW}={flow}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A whole sign-in through the provider: (status, body).
    async fn sign_in(app: &TestApp, idp: &TestIdp) -> (u16, Value) {
        let (to, flow, _) = start(app, "", None).await;
        let back = idp.authorize(&to).await;
        finish(app, &back, Some(&flow)).await
    }

    fn person(sub: &str, email: &str, verified: bool) -> Value {
        json!({"sub": sub, "email": email, "email_verified": verified, "name": "Ada Lovelace"})
    }

    async fn identities(app: &TestApp, token: &str) -> Vec<Value> {
        let (s, list) = app.get_bearer("/v1/me/identities", token).await;
        assert_eq!(s, 200, "{list}");
        list["items"].as_array().unwrap().clone()
    }

    fn reasons(events: &[rampart_domain::SecurityEvent]) -> Vec<String> {
        events
            .iter()
            .filter(|e| e.action == Action::FederatedLogin && e.outcome != Outcome::Success)
            .map(|e| e.details["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_first_sign_in_creates_the_account_links_the_identity_and_is_audited() {
        let idp = TestIdp::start().await;
        rampart_testkit::for_each_backend!(|db| {
            let app = app_on(db, &idp, |c| c.federation.auto_register = true).await;
            idp.account(person("idp-ada", "ada@example.com", true)).await;

            let (to, flow, set) = start(&app, "?rd=/ui/account/security", None).await;
            // Authorization code with PKCE S256, state, nonce, the exact redirect URI.
            assert!(to.starts_with(&format!("{}/auth?", idp.issuer())), "{to}");
            assert_eq!(param(&to, "response_type").as_deref(), Some("code"));
            assert_eq!(param(&to, "code_challenge_method").as_deref(), Some("S256"));
            assert_eq!(param(&to, "code_challenge").map(|c| c.len()), Some(43));
            assert_eq!(param(&to, "redirect_uri"), Some(app.url(CALLBACK)));
            assert!(param(&to, "state").is_some_and(|s| s.len() >= 43) && param(&to, "nonce").is_some(), "{to}");
            // The flow cookie: sealed (no secret readable in it), short-lived, HttpOnly, Lax.
            for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/v1/auth/oauth/", "Max-Age=600"] {
                assert!(set.contains(part), "{part}: {set}");
            }
            assert!(!flow.contains(&param(&to, "state").unwrap()), "the state is not readable in the cookie");

            let back = idp.authorize(&to).await;
            assert!(back.starts_with(&app.url(CALLBACK)), "{back}");
            let (s, tokens) = finish(&app, &back, Some(&flow)).await;
            assert_eq!(s, 200, "{tokens}");
            let access = tokens["access_token"].as_str().unwrap().to_string();
            assert_eq!(claims(&access)["amr"], json!(["fed"]));
            let (_, me) = app.me(&access).await;
            assert_eq!(
                (me["user"]["email"].as_str(), me["user"]["email_verified"].as_bool()),
                (Some("ada@example.com"), Some(true)),
                "{me}"
            );
            let linked = identities(&app, &access).await;
            assert_eq!(linked.len(), 1);
            assert_eq!(
                (linked[0]["provider"].as_str(), linked[0]["subject"].as_str()),
                (Some("test"), Some("idp-ada"))
            );

            let created = app.wait_for_event(Action::UserCreated).await;
            assert_eq!(created.details["provider"], "test");
            let signed = app.wait_for_event(Action::FederatedLogin).await;
            assert_eq!((signed.outcome, &signed.details["provider"]), (Outcome::Success, &json!("test")));

            // Again: the same account, through the link.
            let (s, again) = sign_in(&app, &idp).await;
            assert_eq!(s, 200, "{again}");
            assert_eq!(claims(again["access_token"].as_str().unwrap())["sub"], claims(&access)["sub"]);
            // Its only way in cannot be unlinked.
            let id = linked[0]["id"].as_str().unwrap();
            let (s, body) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &access, None).await;
            assert_eq!((s, body["code"].as_str()), (409, Some("last_sign_in_method")), "{body}");

            // A browser (no JSON asked): the session cookie, then on to the vetted rd.
            let (to, flow, _) = start(&app, "?rd=/ui/account/security", None).await;
            let back = idp.authorize(&to).await;
            let res = app.client.get(&back).header("cookie", format!("{FLOW}={flow}")).send().await.unwrap();
            assert_eq!(res.status(), 302);
            assert_eq!(res.headers()["location"], "/ui/account/security");
            let cookies: Vec<&str> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
            assert!(cookies.iter().any(|c| c.starts_with("__Host-rampart_session=")), "{cookies:?}");
            assert!(
                cookies.iter().any(|c| c.starts_with(&format!("{FLOW}=;")) && c.contains("Max-Age=0")),
                "{cookies:?}"
            );
            // An rd elsewhere is replaced by the account page.
            let (to, flow, _) = start(&app, "?rd=https://evil.example/x", None).await;
            let back = idp.authorize(&to).await;
            let res = app.client.get(&back).header("cookie", format!("{FLOW}={flow}")).send().await.unwrap();
            assert_eq!((res.status().as_u16(), res.headers()["location"].to_str().unwrap()), (302, "/ui/account"));
        });
    }

    #[tokio::test]
    async fn a_wrong_state_a_missing_flow_and_a_replayed_code_are_refused() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |c| c.federation.auto_register = true).await;
        idp.account(person("idp-sam", "sam@example.com", true)).await;

        let (to1, flow1, _) = start(&app, "", None).await;
        let (_, flow2, _) = start(&app, "", None).await;
        let back1 = idp.authorize(&to1).await;
        // Another flow's cookie (its state is not this one), none, and a forged one.
        for flow in [Some(flow2.as_str()), None, Some("v1.0000000000000000.AAAA")] {
            let (s, body) = finish(&app, &back1, flow).await;
            assert_eq!((s, body["code"].as_str()), (400, Some("oauth_state_invalid")), "{body}");
        }
        // The right one works once; the same callback again is refused.
        let (s, body) = finish(&app, &back1, Some(&flow1)).await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = finish(&app, &back1, Some(&flow1)).await;
        assert_eq!((s, body["code"].as_str()), (401, Some("federated_login_replayed")), "{body}");
        // The spent code under a fresh flow's state: the provider refuses it at the token endpoint.
        let (to3, flow3, _) = start(&app, "", None).await;
        let code = param(&back1, "code").unwrap();
        let state3 = param(&to3, "state").unwrap();
        let forged = format!("{}?code={code}&state={state3}", app.url(CALLBACK));
        let (s, body) = finish(&app, &forged, Some(&flow3)).await;
        assert_eq!((s, body["code"].as_str()), (502, Some("provider_failed")), "{body}");
        let events = app.events().await;
        let r = reasons(&events);
        for want in ["state_mismatch", "no_flow", "replayed", "provider_failed"] {
            assert!(r.iter().any(|x| x == want), "{want}: {r:?}");
        }
        assert!(events.iter().filter(|e| e.action == Action::FederatedLogin).all(|e| e.details["provider"] == "test"));
    }

    #[tokio::test]
    async fn id_tokens_failing_a_check_are_refused_and_sign_no_one_in() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |c| c.federation.auto_register = true).await;
        idp.account(person("idp-eve", "eve@example.com", true)).await;
        for (mode, reason) in [
            ("nonce", "wrong_nonce"),
            ("expired", "expired"),
            ("other_key", "bad_signature"),
            ("alg_none", "algorithm_not_allowed"),
            ("aud", "wrong_audience"),
            ("iss", "wrong_issuer"),
        ] {
            idp.tamper(Some(mode)).await;
            let (s, body) = sign_in(&app, &idp).await;
            assert_eq!((s, body["code"].as_str()), (401, Some("invalid_id_token")), "{mode}: {body}");
            assert!(body["detail"].as_str().unwrap().contains(reason), "{mode}: {body}");
            let r = reasons(&app.events().await);
            assert!(r.iter().any(|x| *x == format!("id_token_{reason}")), "{mode}: {r:?}");
        }
        assert!(app.state.store.identity_by_subject("test", "idp-eve").await.unwrap().is_none());
        idp.tamper(None).await;
        let (s, body) = sign_in(&app, &idp).await;
        assert_eq!(s, 200, "the real id_token: {body}");
    }

    #[tokio::test]
    async fn provider_errors_are_codes_for_the_api_and_messages_for_pages() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |_| {}).await;
        let (to, flow, _) = start(&app, "", None).await;
        let state = param(&to, "state").unwrap();
        let denied = format!("{}?error=access_denied&error_description=no&state={state}", app.url(CALLBACK));
        let (s, body) = finish(&app, &denied, Some(&flow)).await;
        assert_eq!((s, body["code"].as_str()), (403, Some("provider_denied")), "{body}");
        // A browser gets the sign-in page with the reason, under the pages' CSP.
        let res = app.client.get(&denied).header("cookie", format!("{FLOW}={flow}")).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let page = res.text().await.unwrap();
        assert!(page.contains("The provider did not sign you in."), "{page}");
        // auto_register off: an unknown identity is refused, nothing is created.
        idp.account(person("idp-new", "new@example.com", true)).await;
        let (s, body) = sign_in(&app, &idp).await;
        assert_eq!((s, body["code"].as_str()), (403, Some("identity_not_linked")), "{body}");
        // An unknown provider.
        let res = app.get("/v1/auth/oauth/nope/start").await;
        assert_eq!(res.status(), 404);
        // The sign-in page offers the provider.
        let page = app.get("/ui/login?rd=/ui/account").await.text().await.unwrap();
        assert!(page.contains("Sign in with Test IdP"), "{page}");
        assert!(page.contains("/v1/auth/oauth/test/start?rd=%2Fui%2Faccount"), "{page}");
    }

    #[tokio::test]
    async fn an_unverified_address_is_not_marked_verified_and_never_links() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |c| {
            c.federation.auto_register = true;
            c.federation.trust_email_for_linking = true;
        })
        .await;
        let ada = app.create_user("ada@example.com", PW, &[]).await;
        // The provider claims Ada's address without having verified it: refused, not linked.
        idp.account(person("idp-mallory", "ada@example.com", false)).await;
        let (s, body) = sign_in(&app, &idp).await;
        assert_eq!((s, body["code"].as_str()), (409, Some("federation_link_required")), "{body}");
        assert!(app.state.store.identity_by_subject("test", "idp-mallory").await.unwrap().is_none());
        assert!(app.state.store.list_identities(ada.id).await.unwrap().is_empty());
        assert!(reasons(&app.events().await).iter().any(|r| r == "email_unverified"));
        // A new address the provider did not verify: the account is created, unverified.
        idp.account(person("idp-newbie", "newbie@example.com", false)).await;
        let (s, tokens) = sign_in(&app, &idp).await;
        assert_eq!(s, 200, "{tokens}");
        let (_, me) = app.me(tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(
            (me["user"]["email"].as_str(), me["user"]["email_verified"].as_bool()),
            (Some("newbie@example.com"), Some(false))
        );
    }

    #[tokio::test]
    async fn an_existing_account_is_linked_only_with_proof() {
        let idp = TestIdp::start().await;
        // Without trust_email_for_linking, even a verified address does not link.
        let app = app_with(&idp, |c| c.federation.auto_register = true).await;
        let ada = app.create_user("ada@example.com", PW, &[]).await;
        idp.account(person("idp-ada", "ada@example.com", true)).await;
        let (s, body) = sign_in(&app, &idp).await;
        assert_eq!((s, body["code"].as_str()), (409, Some("federation_link_required")), "{body}");
        assert!(app.state.store.list_identities(ada.id).await.unwrap().is_empty());

        // Signed in, mode=link: linked to this account (whatever address the provider has).
        let me = app.login("ada@example.com", PW).await;
        let res = app.get("/v1/auth/oauth/test/start?mode=link").await;
        assert_eq!(res.status(), 401, "mode=link needs a session");
        idp.account(person("idp-ada", "ada.personal@example.org", true)).await;
        let (to, flow, _) = start(&app, "?mode=link", Some(&me.access_token)).await;
        let back = idp.authorize(&to).await;
        let (s, linked) = finish(&app, &back, Some(&flow)).await;
        assert_eq!(s, 200, "{linked}");
        assert_eq!((linked["provider"].as_str(), linked["subject"].as_str()), (Some("test"), Some("idp-ada")));
        let ev = app.wait_for_event(Action::IdentityLinked).await;
        assert_eq!((ev.outcome, &ev.details["provider"]), (Outcome::Success, &json!("test")));
        // Now the provider signs in to Ada's account, and the identity can be unlinked (she has
        // a password), with its event.
        let (s, tokens) = sign_in(&app, &idp).await;
        assert_eq!(s, 200, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["sub"], ada.id.0.to_string());
        let id = linked["id"].as_str().unwrap();
        let (s, _) = app.send_bearer(Method::DELETE, &format!("/v1/me/identities/{id}"), &me.access_token, None).await;
        assert_eq!(s, 204);
        let ev = app.wait_for_event(Action::IdentityUnlinked).await;
        assert_eq!(ev.details["provider"], "test");

        // With trust_email_for_linking, the provider's verified address links Ada's account.
        let idp2 = TestIdp::start().await;
        let trusting = app_with(&idp2, |c| {
            c.federation.auto_register = true;
            c.federation.trust_email_for_linking = true;
        })
        .await;
        let bob = trusting.create_user("bob@example.com", PW, &[]).await;
        idp2.account(person("idp-bob", "bob@example.com", true)).await;
        let (s, tokens) = sign_in(&trusting, &idp2).await;
        assert_eq!(s, 200, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["sub"], bob.id.0.to_string());
        let ev = trusting.wait_for_event(Action::IdentityLinked).await;
        assert_eq!(ev.details["via"], "verified_email");
    }

    #[tokio::test]
    async fn the_second_factor_still_applies_after_the_provider() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |_| {}).await;
        app.create_user("ann@example.com", PW, &[]).await;
        let me = app.login("ann@example.com", PW).await;
        idp.account(person("idp-ann", "ann@example.com", true)).await;
        let (to, flow, _) = start(&app, "?mode=link", Some(&me.access_token)).await;
        let (s, _) = finish(&app, &idp.authorize(&to).await, Some(&flow)).await;
        assert_eq!(s, 200);
        let (_, backup_codes) = crate::mfa::enable_totp(&app, &me.access_token, time::OffsetDateTime::now_utc()).await;
        let (s, body) = sign_in(&app, &idp).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["mfa_required"], true, "{body}");
        let (s, done) = app
            .post_json("/v1/auth/login/mfa", &json!({"mfa_token": body["mfa_token"], "backup_code": backup_codes[0]}))
            .await;
        assert_eq!(s, 200, "{done}");
        assert_eq!(claims(done["access_token"].as_str().unwrap())["amr"], json!(["fed", "otp", "mfa"]));
    }

    /// `response_mode=form_post` (Apple's only mode): the provider's page posts the code and
    /// state to the callback; the flow cookie is `SameSite=None` so a cross-site POST carries
    /// it; the sign-in completes through `POST …/callback`, and the same form posted again (a
    /// replayed code and state) is refused.
    #[tokio::test]
    async fn a_form_post_callback_signs_in_and_cannot_be_replayed() {
        let idp = TestIdp::start().await;
        let app = app_with(&idp, |c| {
            c.federation.auto_register = true;
            if let Some(p) = c.federation.providers.last_mut() {
                p.response_mode = Some("form_post".into());
            }
        })
        .await;
        idp.account(person("idp-fp", "fp@example.com", true)).await;
        let (to, flow, set) = start(&app, "", None).await;
        assert_eq!(param(&to, "response_mode").as_deref(), Some("form_post"), "{to}");
        assert!(set.contains("SameSite=None") && set.contains("Secure"), "{set}");
        let (action, fields) = idp.authorize_form(&to).await;
        assert_eq!(action, app.url(CALLBACK));
        assert!(fields.iter().any(|(k, _)| k == "code") && fields.iter().any(|(k, _)| k == "state"), "{fields:?}");
        let post = || {
            app.client
                .post(&action)
                .header("accept", "application/json")
                .header("cookie", format!("{FLOW}={flow}"))
                .form(&fields)
                .send()
        };
        let res = post().await.unwrap();
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        let c = claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(c["amr"], json!(["fed"]), "{c}");
        let res = post().await.unwrap();
        assert_eq!(res.status(), 401, "the same state and code again");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "federated_login_replayed", "{p}");
        assert!(app.state.settings.federation.providers.iter().all(|p| p.form_post));
    }

    /// A provider configured as plain OAuth2 (the same certified server, read through its
    /// user-info endpoint and the claim mapping), its client secret sealed with the master key.
    #[tokio::test]
    async fn a_plain_oauth2_provider_with_a_sealed_secret_signs_in_through_user_info() {
        let idp = TestIdp::start().await;
        let ring: rampart_domain::KeyRing = rampart_testkit::test_master_key().into();
        let sealed = rampart_core::services::oauth::seal_secret(&ring, rampart_testkit::oidc::CLIENT_SECRET);
        assert!(sealed.starts_with("sealed:v1.") && !sealed.contains(rampart_testkit::oidc::CLIENT_SECRET));
        let issuer = idp.issuer();
        let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
            c.login.delay_base_ms = 0;
            c.federation.auto_register = true;
            c.federation.allow_networks = vec!["127.0.0.1/32".into()];
            c.federation.providers.push(rampart_config::ProviderConfig {
                name: "plain".into(),
                kind: rampart_config::ProviderKind::Oauth2,
                client_id: rampart_testkit::oidc::CLIENT_ID.into(),
                client_secret: Some(rampart_config::SecretString::new(sealed)),
                authorization_url: Some(format!("{issuer}/auth")),
                token_url: Some(format!("{issuer}/token")),
                userinfo_url: Some(format!("{issuer}/me")),
                scopes: Some(vec!["openid".into(), "email".into(), "profile".into()]),
                ..Default::default()
            });
        })
        .await;
        idp.setup(&[app.url("/v1/auth/oauth/plain/callback")]).await;
        idp.account(person("idp-plain", "plain@example.com", true)).await;
        let (to, flow, _) = start_at(&app, "plain", "", None).await;
        assert!(param(&to, "nonce").is_none() && param(&to, "code_challenge").is_some(), "{to}");
        let back = idp.authorize(&to).await;
        let (s, tokens) = finish(&app, &back, Some(&flow)).await;
        assert_eq!(s, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        let (_, me) = app.me(access).await;
        assert_eq!(
            (me["user"]["email"].as_str(), me["user"]["email_verified"].as_bool()),
            (Some("plain@example.com"), Some(true))
        );
        assert_eq!(identities(&app, access).await[0]["provider"], "plain");
        // The id_token is not what an OAuth2 provider is read by: a forged one changes nothing.
        idp.tamper(Some("other_key")).await;
        let (s, body) = sign_in_at(&app, &idp, "plain").await;
        assert_eq!(s, 200, "{body}");
    }

    async fn sign_in_at(app: &TestApp, idp: &TestIdp, provider: &str) -> (u16, Value) {
        let (to, flow, _) = start_at(app, provider, "", None).await;
        let back = idp.authorize(&to).await;
        finish(app, &back, Some(&flow)).await
    }
}

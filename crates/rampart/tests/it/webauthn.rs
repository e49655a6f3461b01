//! WebAuthn end to end with a software authenticator (1Password's `passkey` crates: a CTAP2
//! authenticator with ES256 keys and a signature counter, behind a WebAuthn client that builds
//! the client data for an origin): registering several authenticators, the step-up login,
//! passwordless passkey login, and the refusals (replayed assertion, reused or expired
//! challenge, removed credential, wrong origin, cloned authenticator).

use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use passkey_types::{Passkey, webauthn as wa};
use rampart_domain::clock::FixedClock;
use rampart_testkit::smtp::SmtpSink;
use rampart_testkit::{MfaRequired, TestApp, TestDb, claims, for_each_backend};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const PW: &str = "correct horse battery staple";
pub(crate) const ORIGIN: &str = "https://login.example.com";

pub(crate) fn rp(c: &mut rampart_config::Config) {
    c.login.delay_base_ms = 0;
    c.webauthn.rp_id = "example.com".into();
    c.webauthn.origin = ORIGIN.into();
}

/// The user of the software authenticator: present and verified, always.
struct Verified;

#[async_trait::async_trait]
impl UserValidationMethod for Verified {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck { presence, verification })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

type SoftClient = Client<Option<Passkey>, Verified, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

/// A software security key that holds one discoverable credential and keeps a counter.
pub(crate) struct SoftKey {
    client: SoftClient,
}

impl SoftKey {
    pub(crate) fn new() -> SoftKey {
        Self::holding(None)
    }

    fn holding(passkey: Option<Passkey>) -> SoftKey {
        let mut auth = Authenticator::new(Aaguid::new_empty(), passkey, Verified, RustCryptoBackend);
        auth.set_make_credentials_with_signature_counter(true);
        SoftKey { client: Client::new(auth) }
    }

    /// A copy of the key as it is now (a clone of the authenticator).
    fn snapshot(&self) -> Option<Passkey> {
        self.client.authenticator().store().clone()
    }

    pub(crate) async fn create(&mut self, origin: &str, options: &Value) -> Value {
        let options: wa::CredentialCreationOptions = serde_json::from_value(options.clone()).unwrap();
        let cred = self.client.register(&Url::parse(origin).unwrap(), options, DefaultClientData).await.unwrap();
        serde_json::to_value(&cred).unwrap()
    }

    pub(crate) async fn get(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        // The server asks for conditional mediation (autofill UI); a direct call is the same
        // ceremony.
        options.as_object_mut().unwrap().remove("mediation");
        let options: wa::CredentialRequestOptions = serde_json::from_value(options).unwrap();
        let cred = self.client.authenticate(&Url::parse(origin).unwrap(), options, DefaultClientData).await.unwrap();
        serde_json::to_value(&cred).unwrap()
    }
}

/// Registers `key` under `name` for the user of `token`, re-authenticating with the password
/// alone (an account's first factor, or a fresh multi-factor session); returns the stored id.
async fn register(app: &TestApp, token: &str, key: &mut SoftKey, name: &str) -> String {
    register_with(app, token, key, name, &json!({ "password": PW })).await
}

/// Registers `key` under `name`, re-authenticating with `reauth` (`{password, code?}`).
pub(crate) async fn register_with(app: &TestApp, token: &str, key: &mut SoftKey, name: &str, reauth: &Value) -> String {
    let (s, start) = app.post_bearer("/v1/me/mfa/webauthn/register/start", token, reauth).await;
    assert_eq!(s, 200, "{start}");
    let credential = key.create(ORIGIN, &start["options"]).await;
    let (s, body) = app
        .post_bearer(
            "/v1/me/mfa/webauthn/register/finish",
            token,
            &json!({ "challenge_id": start["challenge_id"], "credential": credential, "name": name }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["name"], name);
    assert!(body["created_at"].is_string(), "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// A passkey login with `key` from `origin`: (status, body).
pub(crate) async fn passkey_login(app: &TestApp, key: &mut SoftKey, origin: &str) -> (u16, Value) {
    let (s, start) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
    assert_eq!(s, 200, "{start}");
    assert!(start["options"]["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().unwrap().is_empty()));
    let assertion = key.get(origin, &start["options"]).await;
    app.post_json("/v1/auth/passkey/finish", &json!({ "challenge_id": start["challenge_id"], "credential": assertion }))
        .await
}

/// Short, so the test can outlive it; long enough for the steps that rely on a fresh sign-in.
const REAUTH_WINDOW_SECS: u64 = 4;

#[tokio::test]
async fn authenticators_register_list_remove_step_up_and_log_in_with_a_passkey() {
    for_each_backend!(|db| {
        let sink = SmtpSink::start().await;
        let app = TestApp::spawn_with(db, |c| {
            rp(c);
            sink.configure(c);
            c.security.reauth_window_secs = REAUTH_WINDOW_SECS;
        })
        .await;
        let user = app.create_user("wa@example.com", PW, &[]).await;
        let token = app.login("wa@example.com", PW).await.access_token;

        // Re-authentication first: a wrong password starts nothing.
        let (s, body) = app
            .post_bearer("/v1/me/mfa/webauthn/register/start", &token, &json!({ "password": "wrong password here" }))
            .await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["errors"][0]["code"], "password_incorrect", "{body}");

        let mut key1 = SoftKey::new();
        let mut key2 = SoftKey::new();
        let id1 = register(&app, &token, &mut key1, "Key one").await;
        let added = sink.wait_for("wa@example.com", Duration::from_secs(10)).await;
        assert!(added.text.contains("security key or passkey"), "{}", added.text);
        // The account has a factor now: the password alone adds no other (ASVS 7.5.1); a
        // session just opened with the first key does.
        let (s, body) = app.post_bearer("/v1/me/mfa/webauthn/register/start", &token, &json!({ "password": PW })).await;
        assert_eq!((s, body["code"].as_str()), (403, Some("second_factor_required")), "{body}");
        let (s, tokens) = passkey_login(&app, &mut key1, ORIGIN).await;
        assert_eq!(s, 200, "{tokens}");
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let id2 = register(&app, &token, &mut key2, "Key two").await;
        let (s, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
        assert_eq!(s, 200, "{list}");
        let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Key one", "Key two"]);
        let (_, me) = app.me(&token).await;
        assert_eq!(me["user"]["mfa"]["webauthn"], true, "{me}");

        // Creation options exclude the registered authenticators (the store also refuses a
        // credential id twice).
        let (_, start) =
            app.post_bearer("/v1/me/mfa/webauthn/register/start", &token, &json!({ "password": PW })).await;
        let excluded = start["options"]["publicKey"]["excludeCredentials"].as_array().unwrap().len();
        assert_eq!(excluded, 2, "{start}");

        // Password, then the authenticator: a session with amr pwd + hwk + mfa.
        let MfaRequired { mfa_token: mfa, methods, .. } = app.mfa_token("wa@example.com", PW).await;
        assert_eq!(methods[0], "webauthn", "{methods}");
        let (s, start) = app.post_json("/v1/auth/login/webauthn/start", &json!({ "mfa_token": mfa })).await;
        assert_eq!(s, 200, "{start}");
        assert_eq!(start["options"]["publicKey"]["allowCredentials"].as_array().unwrap().len(), 2);
        let assertion = key1.get(ORIGIN, &start["options"]).await;
        let (s, tokens) = app
            .post_json(
                "/v1/auth/login/webauthn/finish",
                &json!({ "mfa_token": mfa, "challenge_id": start["challenge_id"], "credential": assertion }),
            )
            .await;
        assert_eq!(s, 200, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["amr"], json!(["pwd", "hwk", "mfa"]));

        // Passwordless: the discoverable credential names its account.
        let (s, tokens) = passkey_login(&app, &mut key2, ORIGIN).await;
        assert_eq!(s, 200, "{tokens}");
        let c = claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(c["amr"], json!(["hwk", "user", "mfa"]));
        assert_eq!(c["sub"], user.id.0.to_string());
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let (_, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
        assert!(list["items"][1]["last_used_at"].is_string(), "{list}");

        // Removing needs the password; another id is 404.
        let path = format!("/v1/me/mfa/webauthn/{id1}");
        let (s, body) =
            app.send_bearer(Method::DELETE, &path, &token, Some(&json!({ "password": "nope nope nope" }))).await;
        assert_eq!(s, 400, "{body}");
        let (s, _) = app
            .send_bearer(
                Method::DELETE,
                &format!("/v1/me/mfa/webauthn/{}", uuid::Uuid::now_v7()),
                &token,
                Some(&json!({ "password": PW })),
            )
            .await;
        assert_eq!(s, 404);
        // The same through POST …/remove, which keeps its body through any client or proxy.
        let (s, body) =
            app.post_bearer(&format!("{path}/remove"), &token, &json!({ "password": "nope nope nope" })).await;
        assert_eq!((s, body["errors"][0]["code"].as_str()), (400, Some("password_incorrect")), "{body}");
        let (s, _) = app
            .post_bearer(
                &format!("/v1/me/mfa/webauthn/{}/remove", uuid::Uuid::now_v7()),
                &token,
                &json!({ "password": PW }),
            )
            .await;
        assert_eq!(s, 404);
        // Without a body (clients and proxies drop DELETE bodies): a two-factor sign-in older
        // than the re-authentication window is not proof enough…
        tokio::time::sleep(Duration::from_secs(REAUTH_WINDOW_SECS + 1)).await;
        let (s, body) = app.send_bearer(Method::DELETE, &path, &token, None).await;
        assert_eq!((s, body["code"].as_str()), (403, Some("reauthentication_required")), "{body}");
        // …one just opened with a passkey is.
        let (s, fresh) = passkey_login(&app, &mut key2, ORIGIN).await;
        assert_eq!(s, 200, "{fresh}");
        let token = fresh["access_token"].as_str().unwrap().to_string();
        let (s, body) = app.send_bearer(Method::DELETE, &path, &token, None).await;
        assert_eq!(s, 204, "{body}");
        let (_, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0]["id"], id2.as_str());

        // The removed authenticator no longer logs in.
        let (s, body) = passkey_login(&app, &mut key1, ORIGIN).await;
        assert_eq!(s, 401, "{body}");
        assert_eq!(body["code"], "invalid_credentials", "{body}");

        // A DELETE with a body still works, and says it is deprecated (RFC 9745, RFC 8594).
        let res = app
            .authed(Method::DELETE, &format!("/v1/me/mfa/webauthn/{id2}"), &token)
            .json(&json!({ "password": PW }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(res.headers()["deprecation"], "@1796601600");
        assert!(res.headers()["sunset"].to_str().unwrap().ends_with(" GMT"));
        let (_, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
        assert_eq!(list, json!({ "items": [], "next_cursor": null }));

        let acts = app.actions().await;
        for a in ["mfa.webauthn.added", "mfa.webauthn.removed", "mfa.webauthn.used", "mfa.failed"] {
            assert!(acts.iter().any(|x| x == a), "{a} missing from {acts:?}");
        }
        // Both notices are in the outbox with their events: once it is drained, they are sent.
        app.mail_idle().await;
        let subjects: Vec<String> = sink.messages().into_iter().map(|m| m.subject).collect();
        for notice in ["A passkey was added", "A second factor was removed"] {
            assert!(subjects.iter().any(|s| s == notice), "{notice:?} not in {subjects:?}");
        }
    });
}

#[tokio::test]
async fn replayed_reused_expired_cloned_and_foreign_origin_assertions_are_refused() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), rp).await;
    app.create_user("neg@example.com", PW, &[]).await;
    let token = app.login("neg@example.com", PW).await.access_token;
    let mut key = SoftKey::new();

    // Registration from another origin: refused, nothing stored.
    let (_, start) = app.post_bearer("/v1/me/mfa/webauthn/register/start", &token, &json!({ "password": PW })).await;
    let credential = key.create("https://evil.example.com", &start["options"]).await;
    let (s, body) = app
        .post_bearer(
            "/v1/me/mfa/webauthn/register/finish",
            &token,
            &json!({ "challenge_id": start["challenge_id"], "credential": credential, "name": "evil" }),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], "invalid_credential", "{body}");
    let (_, list) = app.get_bearer("/v1/me/mfa/webauthn", &token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let mut key = SoftKey::new();
    register(&app, &token, &mut key, "Only key").await;

    // A good login, then the same challenge again: gone.
    let (_, start) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
    let assertion = key.get(ORIGIN, &start["options"]).await;
    let finish = json!({ "challenge_id": start["challenge_id"], "credential": assertion });
    let (s, body) = app.post_json("/v1/auth/passkey/finish", &finish).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = app.post_json("/v1/auth/passkey/finish", &finish).await;
    assert_eq!(s, 401, "reused challenge: {body}");

    // The same assertion against a fresh challenge: it signed another challenge.
    let (_, start) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
    let (s, body) = app
        .post_json(
            "/v1/auth/passkey/finish",
            &json!({ "challenge_id": start["challenge_id"], "credential": assertion }),
        )
        .await;
    assert_eq!(s, 401, "replayed assertion: {body}");

    // An assertion from another origin.
    let (s, body) = passkey_login(&app, &mut key, "https://evil.example.com").await;
    assert_eq!(s, 401, "foreign origin: {body}");

    // A challenge older than five minutes.
    let (_, start) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
    clock.advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    let assertion = key.get(ORIGIN, &start["options"]).await;
    let (s, body) = app
        .post_json(
            "/v1/auth/passkey/finish",
            &json!({ "challenge_id": start["challenge_id"], "credential": assertion }),
        )
        .await;
    assert_eq!(s, 401, "expired challenge: {body}");

    // A cloned authenticator: the copy's counter lags behind the original's.
    let mut clone = SoftKey::holding(key.snapshot());
    let (s, body) = passkey_login(&app, &mut key, ORIGIN).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = passkey_login(&app, &mut clone, ORIGIN).await;
    assert_eq!(s, 401, "regressed counter: {body}");

    // Step-up: a refused assertion is a wrong second factor (counted), and the ceremony is
    // bound to its mfa_token.
    let mfa = app.mfa_token("neg@example.com", PW).await.mfa_token;
    let (_, start) = app.post_json("/v1/auth/login/webauthn/start", &json!({ "mfa_token": mfa })).await;
    let bad = key.get("https://evil.example.com", &start["options"]).await;
    let (s, body) = app
        .post_json(
            "/v1/auth/login/webauthn/finish",
            &json!({ "mfa_token": mfa, "challenge_id": start["challenge_id"], "credential": bad }),
        )
        .await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["code"], "invalid_mfa_code", "{body}");
    let (_, start) = app.post_json("/v1/auth/login/webauthn/start", &json!({ "mfa_token": mfa })).await;
    let other_mfa = app.mfa_token("neg@example.com", PW).await.mfa_token;
    let good = key.get(ORIGIN, &start["options"]).await;
    let (s, body) = app
        .post_json(
            "/v1/auth/login/webauthn/finish",
            &json!({ "mfa_token": other_mfa, "challenge_id": start["challenge_id"], "credential": good }),
        )
        .await;
    assert_eq!(s, 401, "a ceremony of another mfa_token: {body}");

    let reasons: Vec<String> = app
        .state
        .store
        .recent_events(500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.action.as_str() == "mfa.failed")
        .filter_map(|e| e.event.details.get("reason").and_then(|r| r.as_str()).map(str::to_string))
        .collect();
    for r in ["invalid_challenge", "invalid_assertion"] {
        assert!(reasons.iter().any(|x| x == r), "{r} missing from {reasons:?}");
    }
}

fn event(action: rampart_domain::Action, user: uuid::Uuid) -> rampart_domain::SecurityEvent {
    rampart_domain::SecurityEvent::new(
        uuid::Uuid::now_v7(),
        time::OffsetDateTime::now_utc(),
        action,
        rampart_domain::Outcome::Success,
    )
    .actor(rampart_domain::Actor::User(user))
}

/// The store's single-use rules on both backends: 50 concurrent takes of one ceremony state and
/// 50 concurrent uses of one counter value, exactly one success each; an expired state is not
/// taken; a counter only moves forward.
#[tokio::test]
async fn store_takes_a_ceremony_once_and_moves_counters_only_forward_under_concurrency() {
    use rampart_store::{NewWebauthn, RevokeSessions, WebauthnCeremony};
    for_each_backend!(|db| {
        let app = TestApp::spawn_with(db, |c| {
            rp(c);
            c.database.max_connections = 10;
        })
        .await;
        let user = app.create_user("cas-wa@example.com", PW, &[]).await;
        let store = app.db.store().await;
        let now = time::OffsetDateTime::now_utc();
        let ttl = time::Duration::minutes(5);

        let id = uuid::Uuid::now_v7();
        store.create_webauthn_challenge(id, WebauthnCeremony::Passkey, None, None, "{}", now, now + ttl).await.unwrap();
        assert!(store.take_webauthn_challenge(id, WebauthnCeremony::Login, now).await.unwrap().is_none(), "kind");
        let takes = futures::future::join_all((0..50).map(|_| {
            let store = store.clone();
            async move { store.take_webauthn_challenge(id, WebauthnCeremony::Passkey, now).await.unwrap() }
        }))
        .await;
        assert_eq!(takes.iter().filter(|t| t.is_some()).count(), 1, "one state, one taker");

        let old = uuid::Uuid::now_v7();
        store
            .create_webauthn_challenge(old, WebauthnCeremony::Passkey, None, None, "{}", now, now + ttl)
            .await
            .unwrap();
        let later = now + ttl + time::Duration::seconds(1);
        assert!(
            store.take_webauthn_challenge(old, WebauthnCeremony::Passkey, later).await.unwrap().is_none(),
            "expired"
        );

        let cred = uuid::Uuid::now_v7();
        let new =
            NewWebauthn { id: cred, user_id: user.id, name: "k", credential_id: b"cred-1", passkey: "{}", counter: 0 };
        let added = event(rampart_domain::Action::MfaWebauthnAdded, user.id.0);
        store.add_webauthn_credential(&new, now, RevokeSessions::None, &added).await.unwrap();
        let dup = NewWebauthn { id: uuid::Uuid::now_v7(), ..new.clone() };
        assert!(
            matches!(
                store.add_webauthn_credential(&dup, now, RevokeSessions::None, &added).await,
                Err(rampart_store::StoreError::Conflict(_))
            ),
            "a credential id is registered once"
        );
        let used = || event(rampart_domain::Action::MfaWebauthnUsed, user.id.0);
        let wins = futures::future::join_all((0..50).map(|_| {
            let store = store.clone();
            let ev = used();
            async move { store.use_webauthn_credential(cred, "{}", 5, now, &ev).await.unwrap() }
        }))
        .await;
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "one counter value, one success");
        assert!(!store.use_webauthn_credential(cred, "{}", 5, now, &used()).await.unwrap(), "same counter");
        assert!(!store.use_webauthn_credential(cred, "{}", 3, now, &used()).await.unwrap(), "regressed counter");
        assert!(store.use_webauthn_credential(cred, "{}", 6, now, &used()).await.unwrap(), "advanced counter");
        assert_eq!(store.webauthn_credentials(user.id).await.unwrap()[0].counter, 6);
    });
}

/// The `[mfa]` role policy: an authenticator is an enrolled factor, and the next login steps up
/// with it.
#[tokio::test]
async fn an_authenticator_satisfies_the_role_policy() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        rp(c);
        c.mfa.required_for_roles = vec!["admin".into()];
    })
    .await;
    app.create_user("boss@example.com", PW, &["admin"]).await;
    let token = app.login("boss@example.com", PW).await.access_token;
    let (s, body) = app.get_bearer("/v1/admin/users", &token).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("mfa_enrollment_required")), "{body}");
    let mut key = SoftKey::new();
    register(&app, &token, &mut key, "Admin key").await;
    let (s, body) = app.get_bearer("/v1/admin/users", &token).await;
    assert_eq!(s, 200, "enrolled: {body}");
    let methods = app.mfa_token("boss@example.com", PW).await.methods;
    assert_eq!(methods, json!(["webauthn"]));
}

/// Refused WebAuthn answers count toward the login lockout: the step-up's toward the account's
/// (shared with wrong passwords and codes), the passkey login's toward the client address's.
#[tokio::test]
async fn refused_assertions_count_toward_the_lockout() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        rp(c);
        c.login.max_failures = 3;
        c.login.ip_max_failures = 4;
    })
    .await;
    app.create_user("lock@example.com", PW, &[]).await;
    let token = app.login("lock@example.com", PW).await.access_token;
    let mut key = SoftKey::new();
    register(&app, &token, &mut key, "Key").await;

    let mfa = app.mfa_token("lock@example.com", PW).await.mfa_token;
    let bogus = json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {} });
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (_, start) = app.post_json("/v1/auth/login/webauthn/start", &json!({ "mfa_token": mfa })).await;
        let (s, _) = app
            .post_json(
                "/v1/auth/login/webauthn/finish",
                &json!({ "mfa_token": mfa, "challenge_id": start["challenge_id"], "credential": bogus }),
            )
            .await;
        statuses.push(s);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "the account locks after max_failures refusals");
    // The lock holds for the password too.
    let (s, _) = app.post_json("/v1/auth/login", &json!({ "email": "lock@example.com", "password": PW })).await;
    assert_eq!(s, 429);

    // Passkey logins from this address: the three step-up refusals above counted toward it too,
    // so one more refusal reaches ip_max_failures (4), and then the address is locked, even for
    // a good assertion.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (_, start) = app.post_json("/v1/auth/passkey/start", &json!({})).await;
        let (s, _) = app
            .post_json(
                "/v1/auth/passkey/finish",
                &json!({ "challenge_id": start["challenge_id"], "credential": bogus }),
            )
            .await;
        statuses.push(s);
    }
    let (s, body) = passkey_login(&app, &mut key, ORIGIN).await;
    statuses.push(s);
    assert_eq!(statuses, [401, 429, 429, 429], "the address locks: {body}");
}

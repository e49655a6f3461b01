//! Data protection: the export of everything held about a person (for them and for an
//! administrator, without a secret in it and without anyone else's data), and transit
//! encryption, used through Vault's own Python client (hvac).

use rampart_domain::{Action, Actor, Outcome};
use rampart_testkit::TestApp;
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";

async fn export(app: &TestApp, path: &str, token: &str) -> (u16, String, Option<String>) {
    let res = app.authed(reqwest::Method::GET, path, token).send().await.unwrap();
    let status = res.status().as_u16();
    let disposition = res.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_string());
    (status, res.text().await.unwrap(), disposition)
}

#[tokio::test]
async fn a_person_gets_everything_held_about_them_and_no_secret_and_nobody_elses_data() {
    let app = TestApp::spawn_with(rampart_testkit::TestDb::fresh().await, |c| c.login.delay_base_ms = 0).await;
    let me = app.create_and_login("subject@example.com", PW, &[]).await;
    let other = app.create_and_login("bystander@example.com", PW, &[]).await;
    let (s, key) = app.post_bearer("/v1/me/api-keys", &me.access_token, &json!({"name": "laptop", "scopes": []})).await;
    assert_eq!(s, 201, "{key}");
    let secret = key["key"].as_str().expect("the key's secret, shown once").to_string();
    let (s, _) = app
        .send_bearer(
            reqwest::Method::PUT,
            "/v1/me/notifications",
            &me.access_token,
            Some(&json!({"new_sign_in": false})),
        )
        .await;
    assert_eq!(s, 200);
    // More events about them: sign-ins, a failed one.
    for _ in 0..3 {
        app.login("subject@example.com", PW).await;
    }
    app.post_json("/v1/auth/login", &json!({"email": "subject@example.com", "password": "wrong"})).await;
    let (s, _) = app.post_bearer("/v1/auth/logout", &other.access_token, &json!({})).await;
    assert!(s < 300);

    // A long history: more than two pages of the stream of their own events, and some done to
    // their account by the system.
    let sub: uuid::Uuid = rampart_testkit::claims(&me.access_token)["sub"].as_str().unwrap().parse().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut history: Vec<rampart_domain::SecurityEvent> = (0..1100)
        .map(|_| {
            rampart_domain::SecurityEvent::new(uuid::Uuid::now_v7(), now, Action::TokenRefreshed, Outcome::Success)
                .actor(Actor::User(sub))
        })
        .collect();
    history.extend((0..600).map(|_| {
        rampart_domain::SecurityEvent::new(uuid::Uuid::now_v7(), now, Action::UserRead, Outcome::Success)
            .actor(Actor::System)
            .resource(rampart_domain::Resource::new("user", sub))
    }));
    app.state.store.append_events(&history).await.unwrap();

    let (s, body, disposition) = export(&app, "/v1/me/export", &me.access_token).await;
    assert_eq!(s, 200, "{body}");
    assert!(disposition.unwrap().starts_with("attachment; filename=\"rampart-personal-data-"));
    let doc: Value = serde_json::from_str(&body).expect("one JSON document");
    assert_eq!(doc["format"], "rampart.personal-data.v1");
    assert_eq!(doc["profile"]["email"], "subject@example.com");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 4, "{}", doc["sessions"]);
    assert_eq!(doc["api_keys"][0]["name"], "laptop");
    assert_eq!(doc["notification_preferences"], json!({"new_sign_in": false, "security_changes": true}));
    assert!(doc["second_factors"]["totp"].is_boolean());
    let actions: Vec<&str> =
        doc["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["user.created", "auth.login", "api_key.created", "user.notifications.updated"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(actions.iter().filter(|a| **a == "auth.login").count() >= 4, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "auth.refresh").count(), 1100);
    assert_eq!(actions.iter().filter(|a| **a == "user.read").count(), 600);
    // No secret, nobody else.
    for secret_like in [secret.as_str(), "$argon2", "bystander@example.com", &other.session_id, &me.refresh_token] {
        assert!(!body.contains(secret_like), "{secret_like:?} is in the export");
    }
    let ids: std::collections::BTreeSet<&str> =
        doc["audit_events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), actions.len(), "no event twice");
    let ev = app.wait_for_event(Action::UserDataExported).await;
    assert_eq!(ev.actor, Actor::User(sub));
}

#[tokio::test]
async fn an_administrator_exports_with_users_export_and_it_is_recorded() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let moderator = app.create_and_login("mod@example.com", PW, &["moderator"]).await;
    let user = app.create_user("person@example.com", PW, &[]).await;
    let path = format!("/v1/admin/users/{}/export", user.id.0);
    let (s, _, _) = export(&app, &path, &moderator.access_token).await;
    assert_eq!(s, 403, "users:read is not users:export");
    let (s, body, _) = export(&app, &path, &admin.access_token).await;
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["profile"]["email"], "person@example.com");
    assert!(doc["audit_events"].as_array().unwrap().iter().any(|e| e["action"] == "user.created"));
    let (s, _, _) =
        export(&app, "/v1/admin/users/00000000-0000-0000-0000-000000000000/export", &admin.access_token).await;
    assert_eq!(s, 404);
    let (s, _, _) = export(&app, "/v1/admin/users/nope/export", &admin.access_token).await;
    assert_eq!(s, 404);
    let ev = app
        .wait_for_events(1, |e| e.action == Action::UserDataExported && e.outcome == Outcome::Success)
        .await
        .remove(0);
    assert_eq!(ev.severity, rampart_domain::Severity::Warning, "an administrator's export stands out");
    assert_eq!(ev.resource.unwrap().id.as_deref(), Some(user.id.0.to_string().as_str()));
}

/// Whether python3 has hvac: CI must (`.ci/run` installs it); elsewhere the test skips.
fn hvac_available() -> bool {
    let ok = std::process::Command::new("python3").args(["-c", "import hvac"]).status().is_ok_and(|s| s.success());
    assert!(ok || std::env::var_os("CI").is_none(), "CI must have hvac: see .ci/run");
    if !ok {
        eprintln!("skipping: python3 has no hvac (pip install hvac==2.3.0)");
    }
    ok
}

/// The transit API through hvac, unchanged: create, encrypt, decrypt, batches, rotate, rewrap,
/// the minimum version, tampering, data keys, derived keys, HMAC, Ed25519, scopes per key and
/// operation, deletion only when allowed (`py/transit_hvac.py`); then what Rampart recorded.
#[tokio::test]
async fn vaults_own_python_client_uses_the_transit_api_unchanged() {
    if !hvac_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("crypto@example.com", PW, &["admin"]).await;
    let make_key = |scopes: Value| {
        let app = &app;
        let token = admin.access_token.clone();
        async move {
            let (s, k) =
                app.post_bearer("/v1/me/api-keys", &token, &json!({"name": "transit", "scopes": scopes})).await;
            assert_eq!(s, 201, "{k}");
            k["key"].as_str().unwrap().to_string()
        }
    };
    let all = make_key(json!(["transit:*"])).await;
    let narrow = make_key(json!(["transit:encrypt:orders"])).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/transit_hvac.py");
    let url = app.url("");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg(script).arg(url.trim_end_matches('/')).arg(all).arg(narrow).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("ok encrypt/decrypt batch_input rotate/rewrap"), "{stdout}");

    // Key management is audited (not each use: those are counted in the metrics).
    for action in
        [Action::TransitKeyCreated, Action::TransitKeyRotated, Action::TransitKeyConfigured, Action::TransitKeyDeleted]
    {
        assert!(app.has_event(action, Outcome::Success).await, "{action:?}");
    }
    let denied = app.wait_for_events(1, |e| e.action == Action::AuthorizationDenied).await;
    assert!(denied.iter().any(|e| e.details.to_string().contains("transit:decrypt:orders")), "{denied:?}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rampart_transit_operations_total{") && l.contains("operation=\"encrypt\"")),
        "{metrics}"
    );
    // Key material is sealed at rest: no version's material is stored as it is used.
    let versions = app.state.store.transit_versions("orders").await.unwrap();
    assert_eq!(versions.len(), 2);
    for v in &versions {
        assert!(v.material.starts_with("v1."), "sealed: {}", v.material);
        assert!(app.state.master_key.open(&v.material, b"another binding").is_err(), "bound to its key and version");
    }
}

/// The hourly purge deletes each class past its `[retention]` and no more, and records one
/// `retention.purged` event with the rows per class.
#[tokio::test]
async fn the_purge_deletes_what_is_past_its_retention_and_says_how_much() {
    let clock = std::sync::Arc::new(rampart_domain::clock::FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(rampart_testkit::TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.retention.ended_sessions_days = 2;
        c.retention.notifications_days = 2;
        c.retention.exports_days = 2;
        c.exports.download_ttl_hours = 1;
    })
    .await;
    let root = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let (s, e) = app.post_bearer("/v1/admin/exports", &root.access_token, &json!({"kind": "users"})).await;
    assert_eq!(s, 201, "{e}");
    let old = app.create_and_login("old@example.com", PW, &[]).await;
    let (s, _) = app.post_bearer("/v1/auth/logout", &old.access_token, &json!({})).await;
    assert!(s < 300);
    app.mail_idle().await;
    let mail_before = app.state.store.mail_counts().await.unwrap();
    assert!(mail_before.sent + mail_before.skipped > 0, "{mail_before:?}");

    // Three days on: what ended then is past two days' retention; a session opened now is not.
    clock.advance(time::Duration::days(3));
    let fresh = app.login("old@example.com", PW).await;
    rampart_core::services::maintenance::purge(&app.state).await;
    let ev = app.wait_for_event(Action::RetentionPurged).await;
    let deleted = &ev.details["deleted"];
    for class in [
        "ended_sessions_and_tokens",
        "mfa_challenges",
        "webauthn_ceremonies",
        "federation_replays",
        "login_counters",
        "expired_ip_rules",
        "webhook_deliveries",
        "mail",
        "api_key_usage",
        "audit_events",
        "exports",
    ] {
        assert!(deleted[class].is_u64(), "{class}: {deleted}");
    }
    assert!(deleted["ended_sessions_and_tokens"].as_u64().unwrap() >= 1, "{deleted}");
    assert!(deleted["mail"].as_u64().unwrap() >= 1, "{deleted}");
    assert_eq!(deleted["exports"], 1, "expired an hour after the request, two days before the cutoff");
    assert_eq!(ev.details["retention_days"]["ended_sessions"], 2);
    assert_eq!(app.state.store.mail_counts().await.unwrap().sent, 0, "sent mail past two days is gone");
    assert_eq!(app.me(&fresh.access_token).await.0, 200, "a live session is kept");
    assert_eq!(ev.actor, Actor::System);
}

/// Erasure by crypto-shredding, on both backends: a person's address,
/// browser and the names they gave things are sealed in the audit log under their own key, so
/// the log can still be searched by address and shows them to an administrator; `DELETE /v1/me`
/// disables the account at once, an administrator can restore it within the grace, and once the
/// grace ends the maintenance run erases it. Afterwards the chain still verifies, their events
/// read as erased, and no table holds their e-mail, address, browser or key name.
#[tokio::test]
async fn an_erased_person_leaves_no_trace_while_the_audit_chain_still_verifies() {
    rampart_testkit::for_each_backend!(|db| {
        erasure_journey(db).await;
    });
}

async fn erasure_journey(db: rampart_testkit::TestDb) {
    // TEST-NET-2: an address that only ever appears in a header; nothing is sent to it.
    const IP: &str = "198.51.100.77";
    const UA: &str = "ErasureProbe/1.0 (a browser only this test uses)";
    const EMAIL: &str = "erase.me@example.com";
    const KEY_NAME: &str = "Ada's laptop key";
    let clock = std::sync::Arc::new(rampart_domain::clock::FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(db, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let person = app.create_user(EMAIL, PW, &[]).await;
    let from_them = |b: reqwest::RequestBuilder| b.header("x-forwarded-for", IP).header("user-agent", UA);
    let login = || async {
        let res = from_them(app.post("/v1/auth/login", &json!({"email": EMAIL, "password": PW}))).send().await.unwrap();
        let (s, b) = rampart_testkit::read_json(res).await;
        (s, b["access_token"].as_str().map(str::to_string))
    };
    let (s, token) = login().await;
    assert_eq!(s, 200);
    let token = token.unwrap();
    let res = from_them(app.authed(reqwest::Method::POST, "/v1/me/api-keys", &token))
        .json(&json!({"name": KEY_NAME, "scopes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Sealed at rest, yet an administrator sees them and can search by the address.
    let dump = app.db.dump().await;
    let events_at_rest: String = dump.lines().filter(|l| l.starts_with("audit_events:")).collect();
    for plain in [IP, UA, KEY_NAME] {
        assert!(!events_at_rest.contains(plain), "{plain} stored in the clear in audit_events");
    }
    let (s, found) = app.get_bearer(&format!("/v1/admin/audit?ip={IP}&actor_id={}", person.id.0), &admin).await;
    assert_eq!(s, 200, "{found}");
    let items = found["items"].as_array().unwrap();
    assert!(items.len() >= 2, "the sign-in and the key, found by address: {found}");
    assert!(items.iter().all(|e| e["ip"] == IP && e["user_agent"] == UA), "{found}");
    assert!(items.iter().any(|e| e["details"]["name"] == KEY_NAME), "{found}");

    // Asking: the password is needed, and a wrong one changes nothing.
    let delete = |password: &str| {
        from_them(app.authed(reqwest::Method::DELETE, "/v1/me", &token)).json(&json!({"password": password})).send()
    };
    let (s, p) = rampart_testkit::read_json(delete("wrong password").await.unwrap()).await;
    assert_eq!((s, p["code"].as_str()), (400, Some("validation_failed")), "{p}");
    assert!(!app.state.store.get_user(person.id).await.unwrap().unwrap().disabled);
    let (s, scheduled) = rampart_testkit::read_json(delete(PW).await.unwrap()).await;
    assert_eq!(s, 202, "{scheduled}");
    assert_eq!(scheduled["status"], "scheduled");
    let erase_after = time::OffsetDateTime::parse(
        scheduled["erase_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        (erase_after - rampart_domain::Clock::now(clock.as_ref())).whole_days(),
        30,
        "accounts.erasure_grace_days"
    );
    assert_eq!(app.me(&token).await.0, 401, "every session ended at once");
    assert_eq!(login().await.0, 403, "the account is disabled");
    let path = format!("/v1/admin/users/{}", person.id.0);
    let (s, p) = app.send_bearer(reqwest::Method::DELETE, &path, &admin, None).await;
    assert_eq!((s, p["code"].as_str()), (409, Some("erasure_scheduled")), "{p}");

    // Restored within the grace: signs in again. Then asked for again.
    let restore = format!("{path}/restore");
    assert_eq!(app.post_bearer(&restore, &admin, &json!({})).await.0, 204);
    let (s, p) = app.post_bearer(&restore, &admin, &json!({})).await;
    assert_eq!((s, p["code"].as_str()), (409, Some("erasure_not_scheduled")), "{p}");
    let (s, token) = login().await;
    assert_eq!(s, 200, "restored");
    let token = token.unwrap();
    let res = from_them(app.authed(reqwest::Method::DELETE, "/v1/me", &token))
        .json(&json!({"password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    // Not yet due: the maintenance run leaves it. Due: erased.
    rampart_core::services::maintenance::purge(&app.state).await;
    assert!(app.state.store.get_user(person.id).await.unwrap().is_some(), "erased before the grace ended");
    clock.advance(time::Duration::days(30) + time::Duration::minutes(1));
    rampart_core::services::maintenance::purge(&app.state).await;
    assert!(app.state.store.get_user(person.id).await.unwrap().is_none(), "erased when the grace ended");
    let admin = app.login("root@example.com", PW).await.access_token;
    let (s, p) = app.post_bearer(&restore, &admin, &json!({})).await;
    assert_eq!((s, p["code"].as_str()), (404, Some("not_found")), "too late to restore: {p}");
    let purged = app.wait_for_event(Action::RetentionPurged).await;
    assert_eq!(purged.details["deleted"]["erased_accounts"], 1, "{}", purged.details);

    // The chain verifies; their events are still there, their personal fields erased.
    let (s, verdict) = app.get_bearer("/v1/admin/audit/verify", &admin).await;
    assert_eq!((s, verdict["ok"].as_bool()), (200, Some(true)), "{verdict}");
    let (s, theirs) = app.get_bearer(&format!("/v1/admin/audit?actor_id={}", person.id.0), &admin).await;
    assert_eq!(s, 200);
    let theirs = theirs["items"].as_array().unwrap().clone();
    assert!(theirs.len() >= 4, "sign-ins, the key, the erasure asked for twice: {theirs:?}");
    for e in &theirs {
        assert_eq!(e["details"]["personal"], "erased", "{e}");
        assert!(e["ip"].is_null() && e["user_agent"].is_null(), "{e}");
    }
    let (_, by_ip) = app.get_bearer(&format!("/v1/admin/audit?ip={IP}&actor_id={}", person.id.0), &admin).await;
    assert_eq!(by_ip["items"], json!([]), "the address tags went with the key: {by_ip}");
    assert!(app.has_event(Action::UserDeleted, Outcome::Success).await);

    // No trace of them in any table, nor in the audit export.
    let dump = app.db.dump().await;
    for plain in [EMAIL, IP, UA, KEY_NAME] {
        let hits: Vec<&str> = dump.lines().filter(|l| l.contains(plain)).collect();
        assert!(hits.is_empty(), "{plain} is still stored: {hits:#?}");
    }
    let res = app.authed(reqwest::Method::GET, "/v1/admin/audit/export?format=jsonl", &admin).send().await.unwrap();
    let export = res.text().await.unwrap();
    assert!(export.contains(&person.id.0.to_string()), "their (erased) events are exported");
    for plain in [EMAIL, IP, UA, KEY_NAME] {
        assert!(!export.contains(plain), "{plain} in the audit export");
    }
}

/// The transit key cache (no database read or unsealing once a key is warm) never answers with
/// what a committed change made false: after a rotation the next encryption uses the new
/// version, after `min_decryption_version` is raised an old ciphertext is refused at once, and
/// after the key's deletion it is gone, on the instance that changed it and, on PostgreSQL, on
/// another instance within a second (the change notice, not the cache's 5 s bound).
#[tokio::test]
async fn cached_transit_keys_follow_every_committed_change() {
    async fn vault(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
        let res = app.client.post(app.url(path)).header("x-vault-token", token).json(&body).send().await.unwrap();
        rampart_testkit::read_json(res).await
    }
    async fn token(app: &TestApp) -> String {
        let admin = app.login("crypto@example.com", PW).await.access_token;
        let (s, k) = app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "t", "scopes": ["transit:*"]})).await;
        assert_eq!(s, 201, "{k}");
        k["key"].as_str().unwrap().to_string()
    }
    let plaintext = json!({"plaintext": "aGVsbG8="});
    let db = rampart_testkit::TestDb::fresh().await;
    let a = TestApp::spawn_with(db.shared(), |_| {}).await;
    a.create_user("crypto@example.com", PW, &["admin"]).await;
    let ta = token(&a).await;
    assert_eq!(vault(&a, &ta, "/v1/transit/keys/orders", json!({})).await.0, 200);
    let (_, v1) = vault(&a, &ta, "/v1/transit/encrypt/orders", plaintext.clone()).await;
    let old = v1["data"]["ciphertext"].as_str().unwrap().to_string();
    assert!(old.starts_with("vault:v1:"));
    // Warm: a decrypt now reads nothing; the rotation still shows at once.
    assert_eq!(vault(&a, &ta, "/v1/transit/decrypt/orders", json!({"ciphertext": old})).await.0, 200);
    assert_eq!(vault(&a, &ta, "/v1/transit/keys/orders/rotate", json!({})).await.0, 200);
    let (_, v2) = vault(&a, &ta, "/v1/transit/encrypt/orders", plaintext.clone()).await;
    assert!(v2["data"]["ciphertext"].as_str().unwrap().starts_with("vault:v2:"), "{v2}");

    // A second instance on the same database (PostgreSQL), warm with the same key.
    let b = match db.backend() {
        rampart_testkit::Backend::Postgres => Some(TestApp::spawn_with(db.shared(), |_| {}).await),
        rampart_testkit::Backend::Sqlite => None,
    };
    let tb = match &b {
        Some(b) => {
            let t = token(b).await;
            assert_eq!(vault(b, &t, "/v1/transit/decrypt/orders", json!({"ciphertext": old})).await.0, 200);
            Some(t)
        }
        None => None,
    };

    let config = json!({"min_decryption_version": 2, "deletion_allowed": true});
    assert!(vault(&a, &ta, "/v1/transit/keys/orders/config", config).await.0 < 300);
    let (s, refused) = vault(&a, &ta, "/v1/transit/decrypt/orders", json!({"ciphertext": old})).await;
    assert_eq!(s, 400, "refused at once on the instance that changed it: {refused}");
    if let (Some(b), Some(tb)) = (&b, &tb) {
        let started = std::time::Instant::now();
        loop {
            let (s, _) = vault(b, tb, "/v1/transit/decrypt/orders", json!({"ciphertext": old})).await;
            if s == 400 {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "the other instance kept the old key");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let res = a.client.delete(a.url("/v1/transit/keys/orders")).header("x-vault-token", &ta).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let (s, gone) = vault(&a, &ta, "/v1/transit/encrypt/orders", plaintext).await;
    assert!(s == 400 || s == 404, "deleted at once: {s} {gone}");
}

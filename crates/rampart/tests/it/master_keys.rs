//! Master-key rotation: every sealed secret re-sealed by `rampart master-key rotate` (the real
//! binary) while a server keeps writing, twice; then a ring of the newest key alone serves
//! everything made under the first (TOTP, backup codes, transit ciphertexts, webhook secrets,
//! access tokens, the audit chain with checkpoints signed all along). A ring lacking a key some
//! value still needs refuses to start, naming it; a run stopped half-way is finished by the next.

use crate::mfa::{PW, code_at, enable_totp, no_delays};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rampart_domain::clock::FixedClock;
use rampart_domain::webhook::WebhookSecret;
use rampart_domain::{Clock as _, KeyRing, MasterKey};
use rampart_testkit::{TestApp, TestDb, test_master_key};
use serde_json::{Value, json};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const UA: &str = "rotation-test-browser/1.0";

fn key(n: u8) -> MasterKey {
    if n == 1 { test_master_key() } else { MasterKey::from_bytes([n; 32]) }
}

fn ring(ns: &[u8]) -> KeyRing {
    KeyRing::new(ns.iter().map(|n| key(*n)).collect()).unwrap()
}

/// `rampart <args>` on `db` with `RAMPART_MASTER_KEYS` = the keys `ns`, current first.
async fn rampart(db: &TestDb, ns: &[u8], args: &[&str]) -> Output {
    let keys: Vec<String> = ns.iter().map(|n| key(*n).encode()).collect();
    let (url, args): (String, Vec<String>) = (db.url().to_string(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RAMPART_LOG__FORMAT", "json")
            .env("RAMPART_DATABASE__URL", url)
            .env("RAMPART_MASTER_KEYS", keys.join(","))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn spawn(db: &TestDb, ns: &[u8], clock: &Arc<FixedClock>) -> TestApp {
    TestApp::try_spawn_with_keys(db.shared(), ring(ns), clock.clone(), no_delays).await.expect("starts")
}

/// Vault-shaped transit calls with an API key in `X-Vault-Token`.
async fn transit(app: &TestApp, api_key: &str, path: &str, body: Value) -> (u16, Value) {
    let res = app.client.post(app.url(path)).header("X-Vault-Token", api_key).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn encrypt(app: &TestApp, api_key: &str, plain: &str) -> String {
    let (s, body) =
        transit(app, api_key, "/v1/transit/encrypt/orders", json!({ "plaintext": B64.encode(plain) })).await;
    assert_eq!(s, 200, "{body}");
    body["data"]["ciphertext"].as_str().unwrap().to_string()
}

async fn decrypt(app: &TestApp, api_key: &str, ciphertext: &str) -> String {
    let (s, body) = transit(app, api_key, "/v1/transit/decrypt/orders", json!({ "ciphertext": ciphertext })).await;
    assert_eq!(s, 200, "{body}");
    text(&B64.decode(body["data"]["plaintext"].as_str().unwrap()).unwrap())
}

async fn new_webhook(app: &TestApp, token: &str) -> (String, String) {
    let (s, w) = app
        .post_bearer(
            "/v1/admin/webhooks",
            token,
            &json!({ "url": "https://receiver.example/hook", "events": ["webhook.test"], "enabled": false }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    (w["id"].as_str().unwrap().to_string(), w["secret"].as_str().unwrap().to_string())
}

/// Writes while a rotation runs: sign-ins, new webhooks, transit encryptions. Returns what
/// it encrypted (plaintext, ciphertext) and the webhooks it made; panics on any failure.
async fn load(
    app: &TestApp,
    admin: &str,
    api_key: &str,
    stop: &AtomicBool,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let (mut encrypted, mut hooks) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Acquire) || i < 3 {
        i += 1;
        app.login("root@rotation.test", PW).await;
        hooks.push(new_webhook(app, admin).await);
        let plain = format!("under load {i}");
        encrypted.push((plain.clone(), encrypt(app, api_key, &plain).await));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (encrypted, hooks)
}

/// Rotates with the real binary while `app` takes writes; asserts the run ends with nothing
/// left under older keys and showed progress.
async fn rotate_under_load(
    app: &TestApp,
    db: &TestDb,
    ns: &[u8],
    admin: &str,
    api_key: &str,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let stop = AtomicBool::new(false);
    let writes = load(app, admin, api_key, &stop);
    let run = async {
        let out = rampart(db, ns, &["master-key", "rotate", "--batch", "2"]).await;
        stop.store(true, Ordering::Release);
        out
    };
    let ((encrypted, hooks), out) = tokio::join!(writes, run);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["key_id"], key(ns[0]).key_id(), "{report}");
    assert_eq!(report["remaining_under_older_keys"], 0, "{report}");
    assert!(report["resealed"].as_u64().unwrap() > 5, "{report}");
    for column in
        ["mfa_totp.secret", "signing_keys.private_sealed", "transit_key_versions.material", "root_keys.sealed"]
    {
        assert!(stderr.lines().any(|l| l.starts_with(&format!("{column}: "))), "progress for {column}: {stderr}");
    }
    assert!(stderr.contains("older keys may be removed"), "{stderr}");
    (encrypted, hooks)
}

/// A second-factor sign-in with the TOTP app, a step after the last one used.
async fn totp_login(app: &TestApp, clock: &FixedClock, secret: &[u8]) {
    clock.advance(time::Duration::seconds(31));
    let mt = app.mfa_token("ann@rotation.test", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "code": code_at(secret, clock.now()) })).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn rotating_twice_under_load_keeps_everything_readable_and_the_old_keys_can_go() {
    let db = TestDb::fresh().await;
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));

    // Under k1 alone: every kind of sealed secret, and a checkpoint.
    let app = spawn(&db, &[1], &clock).await;
    let admin = app.create_and_login("root@rotation.test", PW, &["admin"]).await;
    let ann = app.create_and_login("ann@rotation.test", PW, &[]).await;
    let ann_id = app.me(&ann.access_token).await.1["user"]["id"].as_str().unwrap().to_string();
    // A sign-in whose browser the audit log keeps sealed under Ann's person key.
    let res = app
        .post("/v1/auth/login", &json!({ "email": "ann@rotation.test", "password": PW }))
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (secret, backup_codes) = enable_totp(&app, &ann.access_token, clock.now()).await;
    let (hook_id, hook_secret) = new_webhook(&app, &admin.access_token).await;
    let (s, k) = app
        .post_bearer("/v1/me/api-keys", &admin.access_token, &json!({ "name": "transit", "scopes": ["transit:*"] }))
        .await;
    assert_eq!(s, 201, "{k}");
    let api_key = k["key"].as_str().unwrap().to_string();
    let (s, body) = transit(&app, &api_key, "/v1/transit/keys/orders", json!({})).await;
    assert!(s < 300, "{body}");
    let (s, body) = transit(&app, &api_key, "/v1/transit/keys/orders/rotate", json!({})).await;
    assert!(s < 300, "{body}");
    let mut encrypted = vec![("made under k1".to_string(), encrypt(&app, &api_key, "made under k1").await)];
    let old_token = admin.access_token.clone();
    app.state.signing.rotate("test").await.unwrap();
    assert!(rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().is_some());
    app.stop().await.unwrap();

    // Every instance restarted with [k2, k1]; the rotation runs while one takes writes.
    let app = spawn(&db, &[2, 1], &clock).await;
    totp_login(&app, &clock, &secret).await;
    let admin2 = app.login("root@rotation.test", PW).await.access_token;
    let (more, hooks) = rotate_under_load(&app, &db, &[2, 1], &admin2, &api_key).await;
    encrypted.extend(more);
    assert!(app.has_event(rampart_domain::Action::MasterKeyRotated, rampart_domain::Outcome::Success).await);
    assert!(rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().is_some());
    app.stop().await.unwrap();

    // k1 can go now; k2 cannot yet: a ring of k3 alone refuses to start, naming k2.
    let err = TestApp::try_spawn_with_keys(db.shared(), ring(&[3]), clock.clone(), no_delays).await.unwrap_err();
    assert!(err.to_string().contains(&key(2).key_id()), "{err}");
    assert!(!err.to_string().contains(&key(1).key_id()), "nothing is left under k1: {err}");
    let out = rampart(&db, &[3], &["master-key", "status"]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&key(2).key_id()), "{}", text(&out.stderr));

    let app = spawn(&db, &[3, 2, 1], &clock).await;
    totp_login(&app, &clock, &secret).await;
    let admin3 = app.login("root@rotation.test", PW).await.access_token;
    let (more, more_hooks) = rotate_under_load(&app, &db, &[3, 2, 1], &admin3, &api_key).await;
    encrypted.extend(more);
    assert!(rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().is_some());
    app.stop().await.unwrap();

    // The newest key alone serves everything made under the older ones.
    let app = spawn(&db, &[3], &clock).await;
    let out = rampart(&db, &[3], &["master-key", "status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["ring"], json!([key(3).key_id()]));
    assert!(status["counts"].as_array().unwrap().iter().all(|c| c["key_id"] == key(3).key_id()), "{status}");
    totp_login(&app, &clock, &secret).await;
    let mt = app.mfa_token("ann@rotation.test", PW).await.mfa_token;
    let (s, body) =
        app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mt, "backup_code": backup_codes[0] })).await;
    assert_eq!(s, 200, "a backup code made under k1: {body}");
    for (plain, ciphertext) in &encrypted {
        assert_eq!(&decrypt(&app, &api_key, ciphertext).await, plain);
    }
    assert_eq!(app.me(&old_token).await.0, 200, "an access token signed by a key sealed under k1");
    let (s, jwks) = app.get_bearer("/.well-known/jwks.json", &old_token).await;
    assert_eq!((s, jwks["keys"].as_array().map(Vec::len)), (200, Some(2)), "{jwks}");
    app.state.signing.rotate("test").await.unwrap();
    let (s, found) = app.get_bearer(&format!("/v1/admin/audit?actor_id={ann_id}"), &old_token).await;
    assert_eq!(s, 200, "{found}");
    assert!(
        found["items"].as_array().unwrap().iter().any(|e| e["user_agent"] == UA),
        "personal fields sealed under k1's era still read: {found}"
    );
    for (id, secret) in hooks.iter().chain(&more_hooks).chain([(hook_id, hook_secret)].iter()) {
        let stored = app.state.store.get_webhook(id.parse().unwrap()).await.unwrap().unwrap();
        let opened = app
            .state
            .master_key
            .open(&stored.secret_sealed, &rampart_store::sealed::aad::webhook_secret(stored.id))
            .unwrap();
        let original = WebhookSecret::parse(secret).unwrap();
        assert_eq!(WebhookSecret::from_bytes(opened).sign("msg_1", 1, b"{}"), original.sign("msg_1", 1, b"{}"));
    }
    let (s, body) =
        app.post_bearer(&format!("/v1/admin/webhooks/{}/rotate-secret", hooks[0].0), &old_token, &json!({})).await;
    assert!(s < 300, "{body}");
    assert!(rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().is_some());
    app.stop().await.unwrap();

    // The audit chain verifies over checkpoints signed while k1, k2 and k3 were current.
    let out = rampart(&db, &[3], &["audit", "verify"]).await;
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
}

/// A run stopped abruptly after one batch leaves values under both keys, all readable; the
/// next run finishes. A value no key of the ring opens (here: one row's value copied into
/// another, so its binding fails) stops the run naming the row, and is left as it was.
#[tokio::test]
async fn a_rotation_stopped_half_way_is_finished_by_the_next_run() {
    let db = TestDb::fresh().await;
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn(&db, &[1], &clock).await;
    let admin = app.create_and_login("root@rotation.test", PW, &["admin"]).await;
    let (s, k) = app
        .post_bearer("/v1/me/api-keys", &admin.access_token, &json!({ "name": "transit", "scopes": ["transit:*"] }))
        .await;
    assert_eq!(s, 201, "{k}");
    let api_key = k["key"].as_str().unwrap().to_string();
    transit(&app, &api_key, "/v1/transit/keys/orders", json!({})).await;
    let mut encrypted = Vec::new();
    for i in 0..6 {
        let (s, body) = transit(&app, &api_key, "/v1/transit/keys/orders/rotate", json!({})).await;
        assert!(s < 300, "{body}");
        let plain = format!("version {}", i + 2);
        encrypted.push((plain.clone(), encrypt(&app, &api_key, &plain).await));
    }
    app.stop().await.unwrap();

    let out = rampart(&db, &[2, 1], &["master-key", "rotate", "--batch", "2", "--crash-after-batches", "1"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = rampart(&db, &[2, 1], &["master-key", "status"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let under = |id: String| {
        status["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["key_id"] == id)
            .map(|c| c["count"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert!(under(key(1).key_id()) > 0 && under(key(2).key_id()) > 0, "a mix after the crash: {status}");
    let app = spawn(&db, &[2, 1], &clock).await;
    for (plain, ciphertext) in &encrypted {
        assert_eq!(&decrypt(&app, &api_key, ciphertext).await, plain, "readable half-way");
    }
    app.stop().await.unwrap();

    // A value bound to another row: the run fails loudly on it and writes nothing for it.
    let store = db.store().await;
    let v2 = store.transit_version("orders", 2).await.unwrap().unwrap();
    let v3 = store.transit_version("orders", 3).await.unwrap().unwrap();
    let (misplaced, restore) = if v2.material.contains(&key(1).key_id()) { (v2, 3) } else { (v3, 2) };
    assert!(misplaced.material.contains(&key(1).key_id()), "one of the two is still under k1");
    db.execute(&format!(
        "UPDATE transit_key_versions SET material = '{}' WHERE name = 'orders' AND version = {restore}",
        misplaced.material
    ))
    .await;
    let original_other = store.transit_version("orders", restore).await.unwrap().unwrap().material;
    let out = rampart(&db, &[2, 1], &["master-key", "rotate"]).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("transit_key_versions.material row orders/{restore}")), "{stderr}");
    assert_eq!(store.transit_version("orders", restore).await.unwrap().unwrap().material, original_other);
    let failed = store.recent_events(5).await.unwrap();
    assert!(
        failed.iter().any(|e| e.event.action == rampart_domain::Action::MasterKeyRotated
            && e.event.outcome == rampart_domain::Outcome::Failure),
        "the failed run is recorded"
    );
    // The overwritten version is lost (as it would be to any such damage): delete it, and the
    // next run completes.
    db.execute(&format!("DELETE FROM transit_key_versions WHERE name = 'orders' AND version = {restore}")).await;
    encrypted.retain(|(plain, _)| plain != &format!("version {restore}"));
    store.close().await;
    let out = rampart(&db, &[2, 1], &["master-key", "rotate"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["remaining_under_older_keys"], 0, "{report}");

    let app = spawn(&db, &[2], &clock).await;
    for (plain, ciphertext) in &encrypted {
        assert_eq!(&decrypt(&app, &api_key, ciphertext).await, plain);
    }
    app.stop().await.unwrap();
}

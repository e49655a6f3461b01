//! Access-token signing keys through the running server: JWKS, rotation, and verification
//! that needs no database round trip.

use rampart_core::master_key::KeyOrigin;
use rampart_domain::tokens::{self, AccessClaims, TokenError, VerifyingKeys};
use rampart_domain::{KeyRing, SystemClock};
use rampart_server::AppState;
use rampart_testkit::TestApp;
use rampart_wire::Jwks;
use std::sync::Arc;

fn claims(app: &TestApp) -> AccessClaims {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let c = &app.state.settings.tokens;
    AccessClaims {
        iss: c.issuer.clone(),
        aud: c.audience.clone(),
        sub: "u1".into(),
        sid: "s1".into(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: t,
        nbf: t,
        exp: t + 600,
        roles: vec!["user".into()],
        amr: vec!["pwd".into()],
        auth_time: Some(t),
    }
}

async fn jwks(app: &TestApp) -> Jwks {
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_jwks_alone_verifies_tokens_and_keeps_rotated_keys_while_their_tokens_live() {
    let app = TestApp::spawn().await;
    let first = jwks(&app).await;
    assert_eq!(first.keys.len(), 1, "one key is generated on first start");
    let k = &first.keys[0];
    assert_eq!((k.kty.as_str(), k.crv.as_str(), k.alg.as_str(), k.use_.as_str()), ("OKP", "Ed25519", "EdDSA", "sig"));

    // A verifier with nothing but the published JWKS accepts the server's tokens.
    let signed = claims(&app);
    let token = app.state.signing.sign(&signed).unwrap();
    let domain_jwks: Vec<tokens::PublicJwk> =
        serde_json::from_value(serde_json::to_value(&first.keys).unwrap()).unwrap();
    let outside = VerifyingKeys::from_jwks(&domain_jwks);
    let expect = app.state.signing.expectation();
    assert_eq!(tokens::verify(&token, &outside, expect, time::OffsetDateTime::now_utc()).unwrap(), signed);

    let new_kid = app.state.signing.rotate("test").await.unwrap();
    let after = jwks(&app).await;
    let kids: Vec<&str> = after.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), k.kid.as_str()], "current first, the old key still published");
    assert!(app.state.signing.verify(&token).await.is_ok(), "tokens of the old key live out their lifetime");
    let fresh = app.state.signing.sign(&claims(&app)).unwrap();
    assert_eq!(tokens::unverified_kid(&fresh).as_deref(), Some(new_kid.as_str()));
    let events = app.state.store.recent_events(20).await.unwrap();
    assert!(events.iter().any(|e| e.event.action == rampart_domain::Action::SigningKeyRotated));
}

#[tokio::test]
async fn a_rotation_by_another_instance_is_picked_up_on_the_first_unknown_kid() {
    let app = TestApp::spawn().await;
    // A second process on the same database and master key (as `rampart keys rotate-signing` is).
    let dir = tempfile::tempdir().unwrap();
    let config = rampart_testkit::test_config(dir.path(), &app.db);
    let key: KeyRing = (*app.state.master_key).clone();
    let (other, _) = AppState::open(config, key, KeyOrigin::Environment, Arc::new(SystemClock)).await.unwrap();
    let before = app.state.signing.ring().current.kid().to_string();
    assert_eq!(other.signing.ring().current.kid(), before, "both instances share the key");
    let new_kid = other.signing.rotate("other-instance").await.unwrap();
    let token = other.signing.sign(&claims(&app)).unwrap();
    assert!(!app.state.signing.ring().verifying.contains(&new_kid), "not known yet");
    assert!(app.state.signing.verify(&token).await.is_ok(), "an unknown kid triggers one reload");
    assert_eq!(app.state.signing.ring().current.kid(), new_kid);
    other.store.close().await;
}

#[tokio::test]
async fn tokens_from_a_foreign_key_or_with_wrong_claims_are_refused() {
    let app = TestApp::spawn().await;
    let stranger = tokens::SigningKey::generate(tokens::SigningAlg::EdDSA, &mut rand::rngs::OsRng);
    let foreign = stranger.sign(&claims(&app)).unwrap();
    assert_eq!(app.state.signing.verify(&foreign).await, Err(TokenError::UnknownKey));
    let mut c = claims(&app);
    c.aud = "someone-else".into();
    assert_eq!(app.state.signing.verify(&app.state.signing.sign(&c).unwrap()).await, Err(TokenError::WrongAudience));
    let mut c = claims(&app);
    c.exp = c.iat - 3600;
    assert_eq!(app.state.signing.verify(&app.state.signing.sign(&c).unwrap()).await, Err(TokenError::Expired));
}

/// Whether PyJWT (with `cryptography`) is importable. In CI it must be (`.ci/run` installs
/// it); elsewhere the cross-language check is skipped with a note.
fn pyjwt_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have PyJWT: pip install 'pyjwt[crypto]'");
        eprintln!("skipping: PyJWT not installed (pip install 'pyjwt[crypto]')");
    }
    ok
}

#[tokio::test]
async fn pyjwt_verifies_access_tokens_with_the_jwks_alone() {
    if !pyjwt_available() {
        return;
    }
    for alg in [rampart_config::TokenAlgorithm::EdDSA, rampart_config::TokenAlgorithm::ES256] {
        let app = TestApp::spawn_with(rampart_testkit::TestDb::fresh().await, |c| c.tokens.algorithm = alg).await;
        app.create_user("py@example.com", "correct horse battery staple", &[]).await;
        let tokens = app.login("py@example.com", "correct horse battery staple").await;
        let token = tokens.access_token.as_str();
        let dir = tempfile::tempdir().unwrap();
        let jwks_file = dir.path().join("jwks.json");
        std::fs::write(&jwks_file, app.get("/.well-known/jwks.json").await.text().await.unwrap()).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/verify_jwt.py");
        let run = |token: &str| {
            std::process::Command::new("python3")
                .arg(script)
                .arg(&jwks_file)
                .arg(token)
                .args(["rampart", "rampart"])
                .output()
                .unwrap()
        };
        let out = run(token);
        assert!(out.status.success(), "{alg:?}: {}", String::from_utf8_lossy(&out.stderr));
        let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["sid"], tokens.session_id.as_str(), "{alg:?}");
        assert_eq!(claims["roles"], serde_json::json!(["user"]));
        assert_eq!(claims["amr"], serde_json::json!(["pwd"]));

        // A token whose payload was altered does not verify in PyJWT either.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut payload = rampart_testkit::claims(token);
        payload["roles"] = serde_json::json!(["admin"]);
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload.to_string());
        assert!(!run(&parts.join(".")).status.success(), "{alg:?}: a forged token must not verify");
    }
}

//! The client libraries (`clients/python`, `clients/node`) against the real server: one
//! `TestApp` (SQLite) per suite, seeded with a role, users, a service key and scoped keys, plus
//! tokens only the signing key can make (another audience, expired, with a second factor fresh
//! or an hour old). Each suite runs its framework example apps in-process against it over
//! loopback: allowed, 401 without a token, 403 without the permission, 401 after revocation
//! (online mode), key scopes, a tampered token, another audience, the gateway assertion.
//!
//! The toolchains come from `.ci/run`: a virtualenv at `clients/python/.venv` with the pinned
//! test dependencies and the package installed, and `npm ci` in `clients/node`. Without them a
//! suite is skipped with a note, except in CI (`CI` set), where it fails.

use rampart_domain::tokens::AccessClaims;
use rampart_testkit::{TestApp, TestDb};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients").canonicalize().expect("clients/ exists")
}

/// Skips (locally) or fails (CI) when a toolchain is missing.
fn missing(what: &str, how: &str) -> bool {
    assert!(std::env::var_os("CI").is_none(), "CI must have {what}: {how}");
    eprintln!("skipping: {what} is missing ({how})");
    true
}

/// The server, seeded; the environment the suites read.
async fn seeded() -> (TestApp, BTreeMap<&'static str, String>) {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        // The assertion test asks the forward-auth door about a signed-in user.
        c.gateway.default_policy = rampart_domain::gateway::Policy::Authenticated;
        c.login.delay_base_ms = 0;
    })
    .await;
    let admin_email = "admin@clients.test";
    let admin = app.create_and_login(admin_email, PASSWORD, &["admin"]).await;
    let (s, body) = app
        .post_bearer(
            "/v1/admin/roles",
            &admin.access_token,
            &json!({"name": "orders-writer", "permissions": ["orders:read", "orders:write"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let service = create_key(
        &app,
        &admin.access_token,
        "backend",
        &["keys:verify", "tokens:introspect", "roles:read", "authz:check"],
    )
    .await;
    let writer_email = "writer@clients.test";
    let reader_email = "reader@clients.test";
    let writer = app.create_and_login(writer_email, PASSWORD, &["orders-writer"]).await;
    app.create_user(reader_email, PASSWORD, &[]).await;
    let key_read = create_key(&app, &writer.access_token, "reader", &["orders:read"]).await;
    let key_write = create_key(&app, &writer.access_token, "writer", &["orders:read", "orders:write"]).await;

    let mint = |edit: &dyn Fn(&mut AccessClaims)| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let settings = &app.state.settings.tokens;
        let mut c = AccessClaims {
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            sub: "00000000-0000-7000-8000-000000000001".into(),
            sid: "00000000-0000-7000-8000-000000000002".into(),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + 600,
            roles: vec!["orders-writer".into()],
            amr: vec!["pwd".into()],
            auth_time: Some(now),
        };
        edit(&mut c);
        app.state.signing.sign(&c).expect("signed")
    };
    let other_audience = mint(&|c| c.aud = "another-api".into());
    let expired = mint(&|c| {
        c.iat -= 3600;
        c.nbf -= 3600;
        c.exp = c.iat + 600;
    });
    let mfa_fresh = mint(&|c| c.amr = vec!["pwd".into(), "otp".into(), "mfa".into()]);
    let mfa_old = mint(&|c| {
        c.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
        c.auth_time = c.auth_time.map(|t| t - 3600);
    });

    let env = BTreeMap::from([
        ("RAMPART_URL", format!("http://{}", app.addr)),
        ("RAMPART_AUDIENCE", app.state.settings.tokens.audience.clone()),
        ("RAMPART_SERVICE_KEY", service),
        ("RAMPART_ADMIN_EMAIL", admin_email.to_string()),
        ("RAMPART_WRITER_EMAIL", writer_email.to_string()),
        ("RAMPART_READER_EMAIL", reader_email.to_string()),
        ("RAMPART_PASSWORD", PASSWORD.to_string()),
        ("RAMPART_KEY_READ", key_read),
        ("RAMPART_KEY_WRITE", key_write),
        ("RAMPART_TOKEN_OTHER_AUDIENCE", other_audience),
        ("RAMPART_TOKEN_EXPIRED", expired),
        ("RAMPART_TOKEN_MFA_FRESH", mfa_fresh),
        ("RAMPART_TOKEN_MFA_OLD", mfa_old),
        ("RAMPART_INTROSPECTION_TTL", "0.5".to_string()),
    ]);
    (app, env)
}

async fn create_key(app: &TestApp, token: &str, name: &str, scopes: &[&str]) -> String {
    let (s, body) = app.post_bearer("/v1/me/api-keys", token, &json!({"name": name, "scopes": scopes})).await;
    assert_eq!(s, 201, "{body}");
    body["key"].as_str().expect("the key, shown once").to_string()
}

/// Runs `program args` in `dir` with `env` (no proxy variables: traffic stays on loopback),
/// without blocking the server's runtime; panics with the output unless it succeeds.
async fn run(program: &Path, args: &[&str], dir: &Path, env: &BTreeMap<&'static str, String>) -> String {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).current_dir(dir).envs(env).kill_on_drop(true);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} finished within 5 minutes", program.display()))
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {args:?} failed:\n{text}", program.display());
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_and_its_framework_examples() {
    let dir = clients_dir().join("python");
    let python = dir.join(".venv/bin/python");
    if !python.exists() && missing("clients/python/.venv", "see .ci/run: python3 -m venv + pip install") {
        return;
    }
    let (app, env) = seeded().await;
    let out = run(&python, &["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], &dir, &env).await;
    eprintln!("{out}");
    assert!(out.contains(" passed"), "pytest ran tests:\n{out}");
    assert!(!out.contains(" skipped"), "no live test may skip here:\n{out}");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_and_its_framework_examples() {
    let dir = clients_dir().join("node");
    let node = PathBuf::from("node");
    if !dir.join("node_modules").exists() && missing("clients/node/node_modules", "see .ci/run: npm ci") {
        return;
    }
    let (app, env) = seeded().await;
    // tsc (strict) builds dist/ from src/ first: the suite tests what the package ships.
    run(&node, &["node_modules/typescript/bin/tsc", "-p", "."], &dir, &env).await;
    let out = run(&node, &["--test", "test/"], &dir, &env).await;
    eprintln!("{out}");
    assert!(out.contains("# fail 0") && !out.contains("# pass 0"), "node --test ran tests:\n{out}");
    assert!(out.contains("# skipped 0"), "no live test may skip here:\n{out}");
    drop(app);
}

//! Signed webhooks from the outbox: every delivery checked by the `standardwebhooks` Python
//! package in a real HTTP receiver (`py/webhook_receiver.py`), retries in order, rotation's
//! overlap, the SSRF guard through the API and at delivery, and the management API's refusals.

use rampart_domain::Action;
use rampart_domain::clock::FixedClock;
use rampart_testkit::{TestApp, TestDb};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// Whether the `standardwebhooks` package is importable (CI installs it; elsewhere skip).
fn standardwebhooks_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import standardwebhooks"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have standardwebhooks: pip install standardwebhooks");
        eprintln!("skipping: the standardwebhooks package is not installed (pip install standardwebhooks)");
    }
    ok
}

/// The Python receiver, on a loopback port; killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(secrets: &[&str], fail_first: u32, check: &str) -> Receiver {
        Self::start_slow(secrets, fail_first, check, 0)
    }

    /// [`Receiver::start`] answering each delivery after `delay_ms`.
    fn start_slow(secrets: &[&str], fail_first: u32, check: &str, delay_ms: u64) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("deliveries.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/webhook_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&log)
            .arg(serde_json::to_string(secrets).unwrap())
            .arg(fail_first.to_string())
            .arg(check)
            .arg(delay_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Receiver { child, port, log, _dir: dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/rampart", self.port)
    }

    fn deliveries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `n` deliveries arrived (10 s at most), and returns them.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let d = self.deliveries();
            if d.len() >= n {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} deliveries expected; got {:?}", self.deliveries());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server whose worker polls often and may deliver to loopback.
async fn app_with(clock: Option<Arc<FixedClock>>, allow_loopback: bool) -> TestApp {
    let configure = move |c: &mut rampart_config::Config| {
        c.webhooks.poll_ms = 25;
        if allow_loopback {
            c.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
        }
        c.webhooks.disable_after_days = 2;
        c.login.delay_base_ms = 0;
    };
    match clock {
        Some(clock) => TestApp::spawn_with_clock(TestDb::fresh().await, clock, configure).await,
        None => TestApp::spawn_with(TestDb::fresh().await, configure).await,
    }
}

async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.post_bearer("/v1/admin/webhooks", token, &body).await
}

async fn attempts(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let (s, body) = app.get_bearer(&format!("/v1/admin/webhooks/{endpoint}/deliveries"), token).await;
    assert_eq!(s, 200, "{body}");
    let mut items = body["items"].as_array().unwrap().clone();
    items.reverse(); // oldest first
    items
}

#[tokio::test]
async fn deliveries_verify_with_the_reference_package_and_a_failure_is_retried_under_the_same_id() {
    if !standardwebhooks_available() {
        return;
    }
    let app = app_with(None, true).await;
    let admin = app.create_and_login("admin@hooks.test", PASSWORD, &["admin"]).await;
    // The secret is known only after creation: a receiver for it starts then, and the
    // endpoint's URL is pointed at it.
    let (s, created) = create(
        &app,
        &admin.access_token,
        json!({"url": "http://127.0.0.1:9/", "events": ["auth.*"], "enabled": false}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap();
    let rx = Receiver::start(&[secret], 1, "verify");
    let (s, body) = app
        .send_bearer(
            reqwest::Method::PATCH,
            &format!("/v1/admin/webhooks/{id}"),
            &admin.access_token,
            Some(&json!({"url": rx.url(), "enabled": true})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["events"], json!(["auth.*"]));
    assert!(body.get("secret").is_none(), "the secret is shown once");

    // A sign-in (auth.login) goes out; a user.created does not (not in the filter).
    app.create_user("someone@hooks.test", PASSWORD, &[]).await;
    app.login("someone@hooks.test", PASSWORD).await;
    // First try answered 500, the second (about 5 s later) 204.
    let got = rx.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = if rx.deliveries().len() > got.len() { rx.deliveries() } else { got };
    assert_eq!(got.len(), 2, "one event, two attempts: {got:?}");
    assert_eq!(got[0]["id"], got[1]["id"], "a retry keeps its webhook-id");
    assert!(got[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!((got[0]["answered"].as_u64(), got[1]["answered"].as_u64()), (Some(500), Some(204)));
    for d in &got {
        assert_eq!(d["verified"], json!([0]), "the reference package verifies it: {d}");
        assert_eq!(d["type"], "auth.login");
        assert_eq!(d["body"]["data"]["action"], "auth.login");
        assert_eq!(d["body"]["data"]["outcome"], "success");
    }
    let log = attempts(&app, &admin.access_token, id).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[0]["attempt"].as_i64(), log[0]["status"].as_str()), (Some(1), Some("failed")));
    assert_eq!((log[0]["http_status"].as_i64(), log[0]["error"].as_str()), (Some(500), Some("http_500")));
    assert!(log[0]["next_attempt_at"].is_string());
    assert_eq!((log[1]["attempt"].as_i64(), log[1]["status"].as_str()), (Some(2), Some("delivered")));
    assert!(log[1]["next_attempt_at"].is_null() && log[1]["error"].is_null());
    let t1 =
        time::OffsetDateTime::parse(log[0]["at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    let t2 =
        time::OffsetDateTime::parse(log[1]["at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(t2 - t1 >= time::Duration::seconds(4), "the first retry waits about 5 s: {t1} → {t2}");

    // The test event reaches this endpoint (though its filter would not take webhook.test).
    let (s, body) = app.post_bearer(&format!("/v1/admin/webhooks/{id}/test"), &admin.access_token, &json!({})).await;
    assert_eq!(s, 202, "{body}");
    let got = rx.wait_for(3).await;
    assert_eq!(got[2]["type"], "webhook.test");
    assert_eq!(got[2]["answered"], 500, "a new message: its first try fails at this receiver");

    // Redelivering the delivered message sends it again under the same id.
    let (s, body) = app
        .post_bearer(
            &format!("/v1/admin/webhooks/deliveries/{}/redeliver", log[1]["id"].as_str().unwrap()),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let got = rx.wait_for(4).await;
    assert!(got.iter().skip(3).any(|d| d["id"] == got[0]["id"] && d["answered"] == 204), "{got:?}");
    assert!(app.has_event(Action::WebhookRedelivered, rampart_domain::Outcome::Success).await);
}

#[tokio::test]
async fn a_rotation_signs_with_both_secrets_during_the_overlap_then_with_the_new_one() {
    if !standardwebhooks_available() {
        return;
    }
    let app = app_with(None, true).await;
    let admin = app.create_and_login("admin@rotate.test", PASSWORD, &["admin"]).await;
    let (s, created) = create(
        &app,
        &admin.access_token,
        json!({"url": "http://127.0.0.1:9/", "events": ["webhook.test"], "enabled": false}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();
    let rotate = |grace: Value| {
        let (app, token, id) = (&app, admin.access_token.clone(), id.clone());
        async move { app.post_bearer(&format!("/v1/admin/webhooks/{id}/rotate-secret"), &token, &grace).await }
    };
    let (s, body) = rotate(json!({"grace_seconds": 3600})).await;
    assert_eq!(s, 200, "{body}");
    let new = body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let rx = Receiver::start(&[&old, &new], 0, "verify");
    let (s, _) = app
        .send_bearer(
            reqwest::Method::PATCH,
            &format!("/v1/admin/webhooks/{id}"),
            &admin.access_token,
            Some(&json!({"url": rx.url(), "enabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    app.post_bearer(&format!("/v1/admin/webhooks/{id}/test"), &admin.access_token, &json!({})).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0]["verified"], json!([0, 1]), "either secret verifies during the overlap");
    assert_eq!(got[0]["signatures"], 2);

    // A rotation without overlap: only the newest secret signs.
    let (s, body) = rotate(json!({"grace_seconds": 0})).await;
    assert_eq!(s, 200, "{body}");
    let newest = body["secret"].as_str().unwrap().to_string();
    drop(rx);
    let rx = Receiver::start(&[&old, &new, &newest], 0, "verify");
    app.send_bearer(
        reqwest::Method::PATCH,
        &format!("/v1/admin/webhooks/{id}"),
        &admin.access_token,
        Some(&json!({"url": rx.url()})),
    )
    .await;
    app.post_bearer(&format!("/v1/admin/webhooks/{id}/test"), &admin.access_token, &json!({})).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0]["verified"], json!([2]), "{got:?}");
    assert_eq!(got[0]["signatures"], 1);

    // The overlap has bounds.
    let (s, body) = rotate(json!({"grace_seconds": 604801})).await;
    assert_eq!((s, body["errors"][0]["code"].as_str()), (400, Some("out_of_range")), "{body}");
    assert!(app.has_event(Action::WebhookSecretRotated, rampart_domain::Outcome::Success).await);
}

#[tokio::test]
async fn retries_follow_the_schedule_and_an_endpoint_failing_for_days_is_disabled_and_its_creator_told() {
    if !standardwebhooks_available() {
        return;
    }
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = app_with(Some(clock.clone()), true).await;
    let admin = app.create_and_login("admin@retry.test", PASSWORD, &["admin"]).await;
    let (_, created) = create(
        &app,
        &admin.access_token,
        json!({"url": "http://127.0.0.1:9/", "events": ["webhook.test"], "enabled": false}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    // Always failing; the server's clock moves ahead of the wall clock, so signatures are
    // checked without the package's five-minute timestamp window.
    let rx = Receiver::start(&[created["secret"].as_str().unwrap()], u32::MAX, "sign");
    app.send_bearer(
        reqwest::Method::PATCH,
        &format!("/v1/admin/webhooks/{id}"),
        &admin.access_token,
        Some(&json!({"url": rx.url(), "enabled": true})),
    )
    .await;
    app.post_bearer(&format!("/v1/admin/webhooks/{id}/test"), &admin.access_token, &json!({})).await;
    rx.wait_for(1).await;
    // (wait, deliveries expected by then): each retry comes after its scheduled wait (±20 %),
    // not before.
    let steps: [(u64, usize); 6] = [(3, 1), (4, 2), (3 * 60, 2), (3 * 60, 3), (20 * 60, 3), (20 * 60, 4)];
    for (secs, expected) in steps {
        clock.advance(time::Duration::seconds(secs as i64));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = rx.deliveries();
        assert_eq!(got.len(), expected, "after +{secs} s: {got:?}");
    }
    let got = rx.deliveries();
    assert!(got.iter().all(|d| d["verified"] == json!([0]) && d["id"] == got[0]["id"]), "{got:?}");

    // Two days of failures (webhooks.disable_after_days = 2): the next failure disables it.
    clock.advance(time::Duration::days(3));
    let e = app.wait_for_event(Action::WebhookDisabled).await;
    assert_eq!(e.resource.unwrap().id.as_deref(), Some(id.as_str()));
    let admin = app.login("admin@retry.test", PASSWORD).await; // three days on: a new sign-in
    let (_, body) = app.get_bearer(&format!("/v1/admin/webhooks/{id}"), &admin.access_token).await;
    assert_eq!(body["enabled"], false);
    assert!(body["disabled_reason"].as_str().unwrap().contains("disable_after_days"));
    app.mail_idle().await;
    let mails: Vec<_> = std::fs::read_dir(app.state.settings.data.dir.join("mail"))
        .map(|d| d.filter_map(Result::ok).map(|e| std::fs::read_to_string(e.path()).unwrap()).collect())
        .unwrap_or_default();
    assert!(
        mails.iter().any(|m| m.contains("admin@retry.test") && m.contains("webhook endpoint was disabled")),
        "the creator is told: {} mails",
        mails.len()
    );
    // Enabling it again ends the streak.
    let (s, body) = app
        .send_bearer(
            reqwest::Method::PATCH,
            &format!("/v1/admin/webhooks/{id}"),
            &admin.access_token,
            Some(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(body["failing_since"].is_null() && body["disabled_reason"].is_null(), "{body}");
}

#[tokio::test]
async fn internal_addresses_are_refused_at_creation_and_at_delivery_without_a_connection() {
    let app = app_with(None, false).await;
    let admin = app.create_and_login("admin@ssrf.test", PASSWORD, &["admin"]).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
    ] {
        let (s, body) = create(&app, &admin.access_token, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(s, 400, "{url}: {body}");
        assert_eq!(body["errors"][0]["code"], "address_refused", "{url}: {body}");
    }
    // A name is judged at delivery, on what it resolves to: localhost is loopback.
    let witness = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    witness.set_nonblocking(true).unwrap();
    let port = witness.local_addr().unwrap().port();
    let (s, created) = create(
        &app,
        &admin.access_token,
        json!({"url": format!("http://localhost:{port}/hook"), "events": ["webhook.test"]}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    app.post_bearer(&format!("/v1/admin/webhooks/{id}/test"), &admin.access_token, &json!({})).await;
    let mut log = Vec::new();
    for _ in 0..200 {
        log = attempts(&app, &admin.access_token, id).await;
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0]["error"].as_str().unwrap().starts_with("refused: "), "{log:?}");
    assert!(log[0]["http_status"].is_null());
    assert!(witness.accept().is_err(), "nothing connected to the receiver");

    // Bad input: clear 400s, nothing stored.
    for (body, code) in [
        (json!({"url": "ftp://example.com/", "events": ["*"]}), "invalid_url"),
        (json!({"url": "https://user:pw@example.com/", "events": ["*"]}), "invalid_url"),
        (json!({"url": "https://example.com/", "events": []}), "invalid_events"),
        (json!({"url": "https://example.com/", "events": ["auth.**"]}), "invalid_event_filter"),
    ] {
        let (s, got) = create(&app, &admin.access_token, body.clone()).await;
        assert_eq!((s, got["errors"][0]["code"].as_str()), (400, Some(code)), "{body}: {got}");
    }
    let (s, got) =
        create(&app, &admin.access_token, json!({"url": "https://example.com/", "events": ["*"], "secret": "x"})).await;
    assert_eq!(s, 400, "unknown fields are refused: {got}");
    let (_, list) = app.get_bearer("/v1/admin/webhooks", &admin.access_token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert!(list["next_cursor"].is_null());

    // Only holders of webhooks:* may look or change.
    let user = app.create_and_login("user@ssrf.test", PASSWORD, &[]).await;
    let (s, _) = app.get_bearer("/v1/admin/webhooks", &user.access_token).await;
    assert_eq!(s, 403);
    let (s, _) = create(&app, &user.access_token, json!({"url": "https://example.com/", "events": ["*"]})).await;
    assert_eq!(s, 403);
    let (s, _) = app.get_bearer("/v1/admin/webhooks/00000000-0000-0000-0000-000000000000", &admin.access_token).await;
    assert_eq!(s, 404);
}

/// The outbox survives `kill -9`: 500 deliveries queued, the server killed while most are still
/// pending (some claimed, in flight), a new process on the same database delivers every one of
/// them, each under its own event's `webhook-id`, verified by the reference package.
#[tokio::test]
async fn deliveries_pending_at_a_kill_are_all_made_after_the_restart() {
    if !standardwebhooks_available() {
        return;
    }
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rampart.toml"),
        "[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\npoll_ms = 20\nper_endpoint_concurrency = 2\n\
         timeout_ms = 1000\nclaim_secs = 2\n[login]\ndelay_base_ms = 0\n",
    )
    .unwrap();
    let config = dir.path().join("rampart.toml");
    let env = [("RAMPART_CONFIG", config.to_str().unwrap())];
    // An administrator, made with the CLI on the same database.
    let key = hex::encode(*b"rampart test master key, tests!!");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["users", "create", "--email", "root@kill.test", "--role", "admin", "--password-stdin"])
        .current_dir(dir.path())
        .env("RAMPART_DATABASE__URL", db.url())
        .env("RAMPART_MASTER_KEY", &key)
        .env("RAMPART_CONFIG", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut cli.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(cli.wait().unwrap().success());

    let (mut first, addr) = crate::scale_out::serve_process_with(&db, dir.path(), &env);
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let call = |method: reqwest::Method, path: String, token: Option<String>, body: Value| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let mut req = client.request(method, format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, login) = call(
        reqwest::Method::POST,
        "/v1/auth/login".into(),
        None,
        json!({"email": "root@kill.test", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_string();
    let (s, created) = call(
        reqwest::Method::POST,
        "/v1/admin/webhooks".into(),
        Some(token.clone()),
        json!({"url": "http://127.0.0.1:9/", "events": ["webhook.test"], "enabled": false}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // 100 ms per answer, two at a time: about 20 deliveries a second, so most of the 500 are
    // still pending at the kill even when a busy machine takes seconds to queue them.
    let rx = Receiver::start_slow(&[created["secret"].as_str().unwrap()], 0, "verify", 100);
    let (s, _) = call(
        reqwest::Method::PATCH,
        format!("/v1/admin/webhooks/{id}"),
        Some(token.clone()),
        json!({"url": rx.url(), "enabled": true}),
    )
    .await;
    assert_eq!(s, 200);
    let mut expected = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let (s, body) =
            call(reqwest::Method::POST, format!("/v1/admin/webhooks/{id}/test"), Some(token.clone()), json!({})).await;
        assert_eq!(s, 202, "{body}");
        let event: uuid::Uuid = body["event_id"].as_str().unwrap().parse().unwrap();
        expected.insert(format!("msg_{}", event.simple()));
    }
    first.kill().unwrap(); // SIGKILL, with most deliveries pending and some in flight
    first.wait().unwrap();
    let before = rx.deliveries().len();
    assert!(before < 400, "most deliveries were still pending at the kill ({before} made)");

    let (second, _) = crate::scale_out::serve_process_with(&db, dir.path(), &env);
    let _second = crate::scale_out::Processes(vec![second]);
    let mut got = std::collections::BTreeSet::new();
    // Up to 90 s: at 20 a second the 500 take 25 s once the second instance is up.
    for _ in 0..1800 {
        got = rx
            .deliveries()
            .iter()
            .filter(|d| d["verified"] == json!([0]))
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        if expected.is_subset(&got) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "{} of 500 never delivered: {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let all = rx.deliveries();
    eprintln!("{before} delivered before the kill; {} deliveries in all for 500 messages (at least once)", all.len());
}

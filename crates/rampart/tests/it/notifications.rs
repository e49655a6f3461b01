//! Security e-mails from the mail outbox (over a real SMTP sink): what they say, who may turn
//! them off, merging and the hourly cap, and that a message queued before `kill -9` is sent by
//! the next process. Alert rules: one alert per burst, none within the cooldown, to e-mail and
//! to a webhook endpoint (a Slack-compatible body), and the API's refusals.

use rampart_domain::{Action, Outcome};
use rampart_testkit::smtp::SmtpSink;
use rampart_testkit::{TestApp, TestDb};
use serde_json::{Value, json};
use std::time::Duration;

const PW: &str = "correct horse battery staple";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const CHROME_NEXT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15";

async fn mail_app(sink: &SmtpSink, configure: impl FnOnce(&mut rampart_config::Config)) -> TestApp {
    TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        sink.configure(c);
        c.accounts.reset_password_url = "http://127.0.0.1:8080/ui/reset?token={token}".into();
        configure(c);
    })
    .await
}

/// Signs in with `user_agent`; the access token.
async fn sign_in(app: &TestApp, email: &str, user_agent: &str) -> String {
    let res = app
        .post("/v1/auth/login", &json!({"email": email, "password": PW}))
        .header("user-agent", user_agent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

/// The subjects of the messages `to` received, once the outbox has nothing pending.
async fn subjects(app: &TestApp, sink: &SmtpSink, to: &str) -> Vec<String> {
    app.mail_idle().await;
    sink.messages().into_iter().filter(|m| m.to.iter().any(|t| t == to)).map(|m| m.subject).collect()
}

#[tokio::test]
async fn security_emails_say_when_from_where_and_what_to_do_and_critical_ones_cannot_be_turned_off() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let to = "notice@example.com";
    app.create_user(to, PW, &[]).await;

    // The first sign-in ever has nothing to compare with; the same browser a version later is
    // the same device.
    sign_in(&app, to, CHROME).await;
    sign_in(&app, to, CHROME_NEXT).await;
    assert_eq!(subjects(&app, &sink, to).await, Vec::<String>::new());

    // Another browser: a new device.
    let token = sign_in(&app, to, FIREFOX).await;
    let mail = sink.wait_for(to, Duration::from_secs(10)).await;
    assert_eq!(mail.subject, "New sign-in to your account");
    for needle in
        ["When: ", " UTC", "From: 127.0.0.1", "Firefox", "Linux", "If it was not you, change your password now"]
    {
        assert!(mail.text.contains(needle), "{needle:?} in {}", mail.text);
    }
    assert!(mail.text.contains("http://127.0.0.1:8080/ui/account/security"), "{}", mail.text);
    let html = mail.html.as_deref().expect("an HTML part beside the text");
    assert!(html.contains("<h1") && html.contains("Your account was signed in to from a new device"), "{html}");
    assert!(html.contains("127.0.0.1") && html.contains("href=\"http://127.0.0.1:8080/ui/account/security\""));

    // Preferences: both optional kinds on by default; critical ones listed, not switchable.
    let (s, prefs) = app.get_bearer("/v1/me/notifications", &token).await;
    assert_eq!(s, 200);
    assert_eq!((prefs["new_sign_in"].clone(), prefs["security_changes"].clone()), (json!(true), json!(true)));
    assert!(prefs["always_on"].as_array().unwrap().contains(&json!("password_changed")), "{prefs}");
    let put = |body: Value| app.send_bearer(reqwest::Method::PUT, "/v1/me/notifications", &token, Some(&body));
    let (s, p) = put(json!({"password_changed": false})).await;
    assert_eq!((s, p["code"].as_str()), (400, Some("validation_failed")), "{p}");
    let (s, p) = put(json!({"new_sign_in": "no"})).await;
    assert_eq!(s, 400, "{p}");
    let (s, p) = put(json!({"new_sign_in": false, "security_changes": false})).await;
    assert_eq!((s, p["new_sign_in"].clone(), p["security_changes"].clone()), (200, json!(false), json!(false)));
    assert_eq!(app.get_bearer("/v1/me/notifications", &token).await.1, p, "stored");
    assert!(app.has_event(Action::NotificationsUpdated, Outcome::Success).await);

    // Turned off: a sign-in from yet another device, and an API key, send nothing...
    let before = subjects(&app, &sink, to).await.len();
    let token = sign_in(&app, to, SAFARI).await;
    let (s, key) = app.post_bearer("/v1/me/api-keys", &token, &json!({"name": "ci", "scopes": []})).await;
    assert_eq!(s, 201, "{key}");
    assert_eq!(subjects(&app, &sink, to).await.len(), before, "nothing sent while turned off");
    // ...but a password change always does.
    let (s, _) = app
        .post_bearer(
            "/v1/me/password",
            &token,
            &json!({"current_password": PW, "new_password": "a brand new passphrase", "keep_other_sessions": true}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(subjects(&app, &sink, to).await.last().map(String::as_str), Some("Your password was changed"));
}

#[tokio::test]
async fn notices_of_one_kind_are_merged_and_each_user_has_an_hourly_cap() {
    let sink = SmtpSink::start().await;
    // Merging: three API keys in a row are one notice.
    let app = mail_app(&sink, |_| {}).await;
    let to = "keys@example.com";
    let token = app.create_and_login(to, PW, &[]).await.access_token;
    for i in 0..3 {
        let (s, _) = app.post_bearer("/v1/me/api-keys", &token, &json!({"name": format!("k{i}"), "scopes": []})).await;
        assert_eq!(s, 201);
    }
    app.wait_for_events(3, |e| e.action == Action::ApiKeyCreated).await;
    assert_eq!(subjects(&app, &sink, to).await, ["An API key was created"]);
    // Skipped: two merged API-key notices, and the first sign-in's (nothing to compare it with).
    let counts = app.state.store.mail_counts().await.unwrap();
    assert_eq!((counts.sent, counts.skipped, counts.pending), (1, 3, 0), "{counts:?}");

    // The cap: nothing merged, at most two an hour.
    let capped = mail_app(&sink, |c| {
        c.notifications.merge_window_secs = 0;
        c.notifications.max_per_hour = 2;
    })
    .await;
    let to = "capped@example.com";
    let token = capped.create_and_login(to, PW, &[]).await.access_token;
    for i in 0..4 {
        let (s, _) =
            capped.post_bearer("/v1/me/api-keys", &token, &json!({"name": format!("k{i}"), "scopes": []})).await;
        assert_eq!(s, 201);
        capped.mail_idle().await; // one at a time, so the count is exact
    }
    assert_eq!(subjects(&capped, &sink, to).await.len(), 2);
    let counts = capped.state.store.mail_counts().await.unwrap();
    assert_eq!((counts.sent, counts.skipped), (2, 3), "two over the cap, and the first sign-in: {counts:?}");
}

#[tokio::test]
async fn an_administrators_changes_are_told_to_the_user_they_touch() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let admin = app.create_and_login("boss@example.com", PW, &["admin"]).await;
    let user = app.create_user("worker@example.com", PW, &[]).await;
    let path = format!("/v1/admin/users/{}", user.id.0);
    let (s, b) =
        app.send_bearer(reqwest::Method::PATCH, &path, &admin.access_token, Some(&json!({"roles": ["admin"]}))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) =
        app.send_bearer(reqwest::Method::PATCH, &path, &admin.access_token, Some(&json!({"disabled": true}))).await;
    assert_eq!(s, 200, "{b}");
    let got = subjects(&app, &sink, "worker@example.com").await;
    assert_eq!(got, ["Your roles were changed", "Your account was disabled"]);
    assert!(subjects(&app, &sink, "boss@example.com").await.is_empty(), "the administrator gets nothing");
}

/// The mail outbox survives `kill -9`: 60 verification e-mails queued while the SMTP server
/// swallows connections without answering (so some are claimed and in flight, the rest
/// waiting), the process killed, and a new one on the same database sends every one.
#[tokio::test]
async fn messages_pending_at_a_kill_are_all_sent_after_the_restart() {
    // An SMTP "server" that accepts and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().map_while(Result::ok) {
            held.push(s);
        }
    });
    let sink = SmtpSink::start().await;
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    let write_config = |port: u16| {
        std::fs::write(
            &config,
            format!(
                "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
                 timeout_secs = 30\n[notifications]\nclaim_secs = 2\npoll_ms = 50\n[rate_limit]\nenabled = false\n[accounts]\nverify_email = true\n\
                 verify_email_url = \"http://127.0.0.1/verify?token={{token}}\"\n"
            ),
        )
        .unwrap();
    };
    write_config(hole_port);
    let env = [("RAMPART_CONFIG", config.to_str().unwrap())];
    let (mut first, addr) = crate::scale_out::serve_process_with(&db, dir.path(), &env);
    let client = reqwest::Client::new();
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..60 {
        let email = format!("queued{i}@example.com");
        let res = client
            .post(format!("http://{addr}/v1/auth/register"))
            .json(&json!({"email": email, "password": PW}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "accepted; the address is confirmed by mail");
        expected.insert(email);
    }
    // Every message is in the outbox once the requests are answered (give the writes beside
    // them a moment), none sent.
    let store = db.store().await;
    for _ in 0..100 {
        if store.mail_counts().await.unwrap().pending == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.mail_counts().await.unwrap().pending, 60);
    first.kill().unwrap(); // SIGKILL, with some messages claimed and stuck in SMTP
    first.wait().unwrap();

    write_config(sink.addr().port());
    let (second, _) = crate::scale_out::serve_process_with(&db, dir.path(), &env);
    let _second = crate::scale_out::Processes(vec![second]);
    let mut got = std::collections::BTreeSet::new();
    for _ in 0..400 {
        got = sink.messages().iter().flat_map(|m| m.to.clone()).collect();
        if expected.is_subset(&got) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "{} of 60 never sent: {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(sink.messages().iter().all(|m| m.subject == "Confirm your e-mail address"));
}

fn rule(
    name: &str,
    action: &str,
    outcome: Option<&str>,
    count: u32,
    window: u32,
    cooldown: u32,
    channels: Value,
) -> Value {
    json!({
        "name": name,
        "match": {"action": action, "outcome": outcome},
        "threshold": {"count": count, "window_secs": window},
        "channels": channels,
        "cooldown_secs": cooldown,
    })
}

/// Fires on a burst of failed sign-ins: once for the burst, not again within the cooldown, to
/// an e-mail address and to a webhook endpoint in the Slack format.
#[tokio::test]
async fn an_alert_fires_once_per_burst_and_not_again_within_its_cooldown() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink, |c| {
        c.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
        c.webhooks.poll_ms = 20;
        // The burst must reach the alert, not a lockout.
        c.login.max_failures = 1000;
        c.login.ip_max_failures = 1000;
    })
    .await;
    let admin = app.create_and_login("ops@example.com", PW, &["admin"]).await;
    let t = admin.access_token.as_str();
    app.create_user("target@example.com", PW, &[]).await;

    // A Slack-compatible receiver: a loopback HTTP server keeping each body.
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/slack", listener.local_addr().unwrap());
    let kept = bodies.clone();
    let server = axum::Router::new().route(
        "/slack",
        axum::routing::post(move |body: axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });
    let (s, hook) = app
        .post_bearer("/v1/admin/webhooks", t, &json!({"url": hook_url, "events": ["webhook.test"], "format": "slack"}))
        .await;
    assert_eq!((s, hook["format"].as_str()), (201, Some("slack")), "{hook}");

    // The shipped rules are there; a custom one for this test: 5 failures in a minute.
    let (s, list) = app.get_bearer("/v1/admin/alerts", t).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for shipped in ["failed sign-ins", "lockouts", "audit verification failed", "a role grants every permission"] {
        assert!(names.contains(&shipped), "{names:?}");
    }
    let channels = json!([{"email": "oncall@example.com"}, {"webhook": hook["id"]}]);
    let (s, created) = app
        .post_bearer("/v1/admin/alerts", t, &rule("burst", "auth.login", Some("failure"), 5, 60, 3600, channels))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["builtin"], false);

    let fail = || app.post_json("/v1/auth/login", &json!({"email": "target@example.com", "password": "wrong one"}));
    for _ in 0..4 {
        assert_eq!(fail().await.0, 401);
    }
    // Four is below the threshold: give the evaluator two rounds, nothing fires.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!app.has_event(Action::AlertFired, Outcome::Success).await, "below the threshold");
    // The fifth and far more: one alert.
    for _ in 0..11 {
        assert_eq!(fail().await.0, 401);
    }
    let fired = app.wait_for_event(Action::AlertFired).await;
    assert_eq!(fired.details["rule"], "burst");
    assert!(fired.details["count"].as_u64().unwrap() >= 5);
    let mail = sink.wait_for("oncall@example.com", Duration::from_secs(10)).await;
    assert_eq!(mail.subject, "[Rampart] Alert: burst");
    assert!(mail.text.contains("auth.login (failure)"), "{}", mail.text);
    for _ in 0..200 {
        if !bodies.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slack = bodies.lock().unwrap().clone();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(slack[0]["text"].as_str().unwrap().contains("Rampart alert *burst*"), "{slack:?}");
    assert_eq!(slack[0].as_object().unwrap().len(), 1, "a Slack body is just its text");

    // Another burst within the cooldown: no second alert.
    for _ in 0..10 {
        assert_eq!(fail().await.0, 401);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fired: Vec<_> = app.events().await.into_iter().filter(|e| e.action == Action::AlertFired).collect();
    assert_eq!(fired.len(), 1, "one alert per cooldown: {fired:?}");
    let (_, list) = app.get_bearer("/v1/admin/alerts", t).await;
    let burst = list["items"].as_array().unwrap().iter().find(|r| r["name"] == "burst").unwrap();
    assert!(burst["last_fired_at"].is_string(), "{burst}");
    app.mail_idle().await;
    assert_eq!(sink.messages().iter().filter(|m| m.to == ["oncall@example.com"]).count(), 1);
}

#[tokio::test]
async fn alert_rules_refuse_bad_input_and_built_in_ones_are_disabled_not_removed() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("ops@example.com", PW, &["admin"]).await;
    let t = admin.access_token.as_str();
    let user = app.create_and_login("someone@example.com", PW, &[]).await;
    let (s, _) = app.get_bearer("/v1/admin/alerts", &user.access_token).await;
    assert_eq!(s, 403, "alerts:read is needed");

    let before = app.get_bearer("/v1/admin/alerts", t).await.1["items"].as_array().unwrap().len();
    for (bad, code) in [
        (rule("x", "auth login", None, 5, 60, 0, json!([])), "invalid_event_filter"),
        (rule("x", "auth.login", Some("maybe"), 5, 60, 0, json!([])), "invalid_outcome"),
        (rule("x", "auth.login", None, 0, 60, 0, json!([])), "out_of_range"),
        (rule("x", "auth.login", None, 5, 90_000, 0, json!([])), "out_of_range"),
        (rule("x", "auth.login", None, 5, 60, 0, json!([{"email": "not an address"}])), "invalid_email"),
        (rule("x", "auth.login", None, 5, 60, 0, json!([{"webhook": uuid::Uuid::now_v7()}])), "unknown_webhook"),
        (rule("", "auth.login", None, 5, 60, 0, json!([])), "invalid_name"),
    ] {
        let (s, p) = app.post_bearer("/v1/admin/alerts", t, &bad).await;
        assert_eq!((s, p["errors"][0]["code"].as_str()), (400, Some(code)), "{bad} → {p}");
    }
    let (s, p) = app.post_bearer("/v1/admin/alerts", t, &json!({"name": "x", "channels": [{"sms": "+1"}]})).await;
    assert_eq!(s, 400, "{p}");
    let (s, p) =
        app.post_bearer("/v1/admin/alerts", t, &rule("failed sign-ins", "auth.*", None, 5, 60, 0, json!([]))).await;
    assert_eq!(s, 409, "a taken name: {p}");
    assert_eq!(
        app.get_bearer("/v1/admin/alerts", t).await.1["items"].as_array().unwrap().len(),
        before,
        "nothing stored"
    );

    // A built-in rule: changed and disabled with PUT; DELETE is refused.
    let (_, list) = app.get_bearer("/v1/admin/alerts", t).await;
    let lockouts = list["items"].as_array().unwrap().iter().find(|r| r["name"] == "lockouts").unwrap().clone();
    let path = format!("/v1/admin/alerts/{}", lockouts["id"].as_str().unwrap());
    let (s, _) = app.send_bearer(reqwest::Method::DELETE, &path, t, None).await;
    assert_eq!(s, 409);
    let mut changed = rule("lockouts", "auth.lockout", None, 20, 600, 1800, json!([]));
    changed["enabled"] = json!(false);
    let (s, after) = app.send_bearer(reqwest::Method::PUT, &path, t, Some(&changed)).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(
        (after["enabled"].clone(), after["builtin"].clone(), after["threshold"]["count"].clone()),
        (json!(false), json!(true), json!(20))
    );
    // A custom rule goes.
    let (s, custom) = app.post_bearer("/v1/admin/alerts", t, &rule("mine", "ip.*", None, 1, 60, 0, json!([]))).await;
    assert_eq!(s, 201);
    let path = format!("/v1/admin/alerts/{}", custom["id"].as_str().unwrap());
    assert_eq!(app.send_bearer(reqwest::Method::DELETE, &path, t, None).await.0, 204);
    assert_eq!(app.send_bearer(reqwest::Method::DELETE, &path, t, None).await.0, 404);
    assert!(app.has_event(Action::AlertRuleDeleted, Outcome::Success).await);
}

/// A role granting `*` is a critical event, which the shipped rule turns into an alert.
#[tokio::test]
async fn a_role_granting_everything_fires_the_shipped_alert() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("ops@example.com", PW, &["admin"]).await;
    let (s, b) = app
        .post_bearer("/v1/admin/roles", &admin.access_token, &json!({"name": "superuser", "permissions": ["*"]}))
        .await;
    assert_eq!(s, 201, "{b}");
    let fired = app.wait_for_event(Action::AlertFired).await;
    assert_eq!(fired.details["rule"], "a role grants every permission");
    assert_eq!(fired.severity, rampart_domain::Severity::Critical);
}

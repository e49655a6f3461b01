//! IP allow and block rules through the running server: the admin API and its validation,
//! blocks that a forwarded header cannot dodge, the admin allowlist and the break-glass clear,
//! expiry, pick-up of changes made elsewhere, and automatic blocks after failed logins.

use rampart_core::services::ip_rules;
use rampart_domain::clock::FixedClock;
use rampart_domain::{Action, Actor, Clock};
use rampart_testkit::{TestApp, TestDb, read_json};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "correct horse battery staple";

/// The status and the problem code of a response.
async fn code(res: reqwest::Response) -> (u16, String) {
    let (status, body) = read_json(res).await;
    (status, body["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn admin_api_adds_lists_and_removes_rules_and_validates_each_field() {
    let app = TestApp::spawn().await;
    let token = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (status, body) = app
        .post_bearer(
            "/v1/admin/ip-rules",
            &token,
            &json!({ "network": "2001:db8::1/32", "action": "block", "reason": "abuse" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["network"], "2001:db8::/32");
    assert_eq!(body["scope"], "all");
    let id = body["id"].as_str().unwrap().to_string();

    let (status, body) = app.post_bearer("/v1/admin/ip-rules", &token, &json!({ "network": "10.0.0.0/33", "action": "deny", "scope": "api", "expires_at": "2001-01-01T00:00:00Z" }))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "validation_failed");
    let errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().into(), e["code"].as_str().unwrap().into()))
        .collect();
    for expected in [
        ("network", "invalid_cidr"),
        ("action", "invalid_choice"),
        ("scope", "invalid_choice"),
        ("expires_at", "in_the_past"),
    ] {
        assert!(errors.contains(&(expected.0.into(), expected.1.into())), "{errors:?}");
    }
    let (status, body) = app
        .post_bearer(
            "/v1/admin/ip-rules",
            &token,
            &json!({ "network": "10.0.0.0/8", "action": "block", "colour": "red" }),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");

    let (_, list) = app.get_bearer("/v1/admin/ip-rules", &token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing stored from the rejected requests");

    let path = format!("/v1/admin/ip-rules/{id}");
    assert_eq!(app.send_bearer(Method::DELETE, &path, &token, None).await.0, 204);
    assert_eq!(app.send_bearer(Method::DELETE, &path, &token, None).await.0, 404);
    let actions: Vec<Action> =
        app.state.store.recent_events(100).await.unwrap().iter().map(|e| e.event.action).collect();
    assert!(actions.contains(&Action::IpRuleCreated) && actions.contains(&Action::IpRuleDeleted));

    // Without the permission: refused.
    let ann = app.create_and_login("ann@example.com", PW, &[]).await.access_token;
    assert_eq!(app.get_bearer("/v1/admin/ip-rules", &ann).await.0, 403);
    assert_eq!(
        app.post_bearer("/v1/admin/ip-rules", &ann, &json!({ "network": "10.0.0.0/8", "action": "block" })).await.0,
        403
    );
}

#[tokio::test]
async fn a_block_cannot_be_dodged_with_a_forwarded_header_and_clear_is_the_break_glass() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |_| {}).await;
    let token = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (status, _) =
        app.post_bearer("/v1/admin/ip-rules", &token, &json!({ "network": "127.0.0.1", "action": "block" })).await;
    assert_eq!(status, 201);
    let (status, c) = code(app.get("/healthz").await).await;
    assert_eq!((status, c.as_str()), (403, "ip_blocked"));
    for (h, v) in [("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=198.51.100.1")] {
        let res = app.client.get(app.url("/healthz")).header(h, v).send().await.unwrap();
        assert_eq!(res.status(), 403, "{h} from an untrusted peer is not read");
    }
    // Locked out of the admin API too; the operator's break-glass is `rampart ip-rules clear`.
    assert_eq!(app.get_bearer("/v1/admin/ip-rules", &token).await.0, 403);
    assert_eq!(ip_rules::clear(&app.state, Actor::System, "cli").await.unwrap(), 1);
    assert_eq!(app.get("/healthz").await.status(), 200);
    let e =
        app.state.store.recent_events(50).await.unwrap().into_iter().find(|e| e.event.action == Action::IpRulesCleared);
    assert_eq!(e.unwrap().event.severity, rampart_domain::Severity::Critical);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"rampart_ip_blocks_total{scope="all"}"#), "{metrics}");
}

#[tokio::test]
async fn an_admin_allowlist_restricts_admin_routes_only_and_v6_blocks_work_through_a_trusted_proxy() {
    let app =
        TestApp::spawn_with(TestDb::sqlite(), |c| c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    let token = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    assert_eq!(
        app.post_bearer("/v1/admin/ip-rules", &token, &json!({ "network": "2001:db8:bad::/48", "action": "block" }))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post_bearer(
            "/v1/admin/ip-rules",
            &token,
            &json!({ "network": "192.0.2.0/24", "action": "allow", "scope": "admin" })
        )
        .await
        .0,
        201
    );
    let via = |ip: &'static str, path: &str| app.authed(Method::GET, path, &token).header("x-forwarded-for", ip).send();
    assert_eq!(code(via("192.0.2.10", "/v1/admin/ip-rules").await.unwrap()).await.0, 200);
    assert_eq!(code(via("198.51.100.1", "/v1/admin/ip-rules").await.unwrap()).await, (403, "ip_not_allowed".into()));
    assert_eq!(code(via("198.51.100.1", "/v1/me").await.unwrap()).await.0, 200, "non-admin routes are open");
    assert_eq!(code(via("2001:db8:bad::7", "/v1/me").await.unwrap()).await, (403, "ip_blocked".into()));
    assert_eq!(code(via("2001:db8:600d::7", "/v1/me").await.unwrap()).await.0, 200);
}

#[tokio::test]
async fn rules_expire_and_changes_made_elsewhere_apply_within_a_second() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::sqlite(), clock.clone(), |_| {}).await;
    // As `rampart ip-rules add` or another instance would: straight into storage, no local reload.
    let rule = rampart_domain::iprule::IpRule {
        id: uuid::Uuid::now_v7(),
        network: "127.0.0.0/8".parse().unwrap(),
        action: rampart_domain::iprule::IpAction::Block,
        scope: rampart_domain::iprule::IpScope::All,
        reason: "elsewhere".into(),
        created_at: clock.now(),
        expires_at: Some(clock.now() + time::Duration::minutes(10)),
        automatic: false,
    };
    let ev = app.state.events.event(Action::IpRuleCreated, rampart_domain::Outcome::Success);
    app.state.store.create_ip_rule(&rule, &ev).await.unwrap();
    let mut blocked = false;
    for _ in 0..100 {
        if app.get("/healthz").await.status() == 403 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(blocked, "picked up by the periodic reload");
    clock.advance(time::Duration::minutes(11));
    assert_eq!(app.get("/healthz").await.status(), 200, "expired");
}

#[tokio::test]
async fn repeated_failed_logins_block_the_address_automatically_and_are_audited() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.ip_rules.auto_block_failures = 3;
        c.login.delay_base_ms = 0;
        c.login.max_failures = 100;
    })
    .await;
    for i in 0..4 {
        let (status, _) = app
            .post_json("/v1/auth/login", &json!({ "email": format!("u{i}@example.com"), "password": "wrong password" }))
            .await;
        assert_eq!(status, 401);
    }
    let (status, c) = code(app.get("/healthz").await).await;
    assert_eq!((status, c.as_str()), (403, "ip_blocked"));
    let rules = app.state.store.list_ip_rules().await.unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].automatic && rules[0].expires_at.is_some());
    assert_eq!(rules[0].network.to_string(), "127.0.0.1/32");
    let e = app
        .state
        .store
        .recent_events(100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.action == Action::IpRuleCreated)
        .unwrap();
    assert_eq!(e.event.actor, Actor::System);
    assert_eq!(e.event.details["automatic"], true);
}

#[tokio::test]
async fn allowlisted_networks_are_not_blocked_automatically() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        c.ip_rules.auto_block_failures = 2;
        c.login.delay_base_ms = 0;
        c.login.max_failures = 100;
    })
    .await;
    let input = ip_rules::NewIpRule {
        network: "127.0.0.0/8".into(),
        action: "allow".into(),
        scope: "all".into(),
        reason: "office".into(),
        expires_at: None,
    };
    ip_rules::create(&app.state, None, Actor::System, input).await.unwrap();
    for i in 0..5 {
        app.post_json("/v1/auth/login", &json!({ "email": format!("u{i}@example.com"), "password": "wrong password" }))
            .await;
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.state.store.list_ip_rules().await.unwrap().len(), 1);
}

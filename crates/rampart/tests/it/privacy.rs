//! Personal data: the export of everything held about a person, for them and for an
//! administrator, without a secret in it and without anyone else's data.

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

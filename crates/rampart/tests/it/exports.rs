//! Export controls (issue 20): bulk exports need their own permission, are rate-limited per
//! administrator, recorded with filter and row count, wait over the threshold for a second
//! administrator (never the requester), and are downloaded once within their time.

use rampart_domain::clock::FixedClock;
use rampart_domain::{Action, Actor, Outcome, SecurityEvent};
use rampart_testkit::{TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple";

async fn spawn(threshold: u64, rate: u32) -> TestApp {
    TestApp::spawn_with(TestDb::fresh().await, |c| {
        c.login.delay_base_ms = 0;
        c.exports.approval_threshold_rows = threshold;
        c.exports.rate_limit_requests = rate;
    })
    .await
}

async fn download(app: &TestApp, id: &str, token: &str) -> (u16, String, Option<String>) {
    let res = app.authed(Method::GET, &format!("/v1/admin/exports/{id}/download"), token).send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    (status, res.text().await.unwrap(), ct)
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body).ok().and_then(|v| v["code"].as_str().map(str::to_string)).unwrap_or_default()
}

/// Some events, so an export has rows: `n` refreshes by the system.
async fn append_events(app: &TestApp, n: usize) {
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<SecurityEvent> = (0..n)
        .map(|_| {
            SecurityEvent::new(uuid::Uuid::now_v7(), now, Action::TokenRefreshed, Outcome::Success).actor(Actor::System)
        })
        .collect();
    app.state.store.append_events(&events).await.unwrap();
}

fn user_id(token: &str) -> String {
    rampart_testkit::claims(token)["sub"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn over_the_threshold_a_second_administrator_approves_and_the_requester_downloads_the_counted_rows_once() {
    let app = spawn(5, 100).await;
    let alice = app.create_and_login("alice@example.com", PW, &["admin"]).await.access_token;
    let bob = app.create_and_login("bob@example.com", PW, &["admin"]).await.access_token;
    append_events(&app, 20).await;
    let filter = json!({"action": "auth.refresh", "outcome": "success"});
    let (s, e) = app.post_bearer("/v1/admin/exports", &alice, &json!({"kind": "audit", "filter": filter})).await;
    assert_eq!(s, 201, "{e}");
    assert_eq!(e["status"], "pending_approval", "20 rows are over 5");
    assert_eq!(e["rows"], 20);
    assert_eq!(e["format"], "jsonl");
    let id = e["id"].as_str().unwrap().to_string();

    // Not before approval; the requester cannot approve (not through an API key of theirs either).
    let (s, body, _) = download(&app, &id, &alice).await;
    assert_eq!((s, code(&body).as_str()), (409, "export_pending_approval"), "{body}");
    let (s, p) = app.post_bearer(&format!("/v1/admin/exports/{id}/approve"), &alice, &json!({})).await;
    assert_eq!((s, p["code"].as_str()), (403, Some("export_self_approval")), "{p}");
    let (s, key) =
        app.post_bearer("/v1/me/api-keys", &alice, &json!({"name": "approver", "scopes": ["exports:approve"]})).await;
    assert_eq!(s, 201, "{key}");
    let res = app
        .client
        .post(app.url(&format!("/v1/admin/exports/{id}/approve")))
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (s, p) = rampart_testkit::read_json(res).await;
    assert_eq!((s, p["code"].as_str()), (403, Some("export_self_approval")), "{p}");

    // Events appended after the count are not in the download.
    append_events(&app, 7).await;
    let (s, listed) = app.get_bearer("/v1/admin/exports?status=pending_approval", &bob).await;
    assert_eq!(s, 200, "{listed}");
    assert!(listed["items"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()), "{listed}");
    let (s, _) = app.post_bearer(&format!("/v1/admin/exports/{id}/approve"), &bob, &json!({})).await;
    assert_eq!(s, 204);
    let (s, p) = app.post_bearer(&format!("/v1/admin/exports/{id}/approve"), &bob, &json!({})).await;
    assert_eq!((s, p["code"].as_str()), (409, Some("export_not_pending")));
    let (s, got) = app.get_bearer(&format!("/v1/admin/exports/{id}"), &bob).await;
    assert_eq!((s, got["status"].as_str()), (200, Some("ready")));
    assert_eq!(got["approved_by"].as_str(), Some(user_id(&bob).as_str()));

    // The approver does not download it; the requester does, once.
    let (s, body, _) = download(&app, &id, &bob).await;
    assert_eq!((s, code(&body).as_str()), (403, "export_not_requester"), "{body}");
    let (s, body, ct) = download(&app, &id, &alice).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(ct.as_deref(), Some("application/x-ndjson"));
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 20, "the rows counted, not the 27 there are now");
    assert!(lines.iter().all(|l| l["action"] == "auth.refresh"));
    let (s, body, _) = download(&app, &id, &alice).await;
    assert_eq!((s, code(&body).as_str()), (410, "export_downloaded"), "{body}");
    let (_, got) = app.get_bearer(&format!("/v1/admin/exports/{id}"), &bob).await;
    assert_eq!(got["status"], "downloaded");

    // Recorded: the request with its filter and rows, the approval, the download.
    let requested = app.wait_for_event(Action::ExportRequested).await;
    let d = &requested.details;
    assert_eq!((d["kind"].as_str(), d["rows"].as_u64()), (Some("audit"), Some(20)), "{d}");
    assert_eq!(
        (d["filter"]["action"].as_str(), d["filter"]["outcome"].as_str()),
        (Some("auth.refresh"), Some("success"))
    );
    assert_eq!(d["status"], "pending_approval");
    let approved = app.wait_for_event(Action::ExportApproved).await;
    assert_eq!(approved.actor, Actor::User(user_id(&bob).parse().unwrap()));
    let downloaded = app.wait_for_event(Action::ExportDownloaded).await;
    assert_eq!(downloaded.details["rows"], 20);
    assert_eq!(downloaded.details["filter"]["action"], "auth.refresh");
    assert_eq!(downloaded.resource.unwrap().id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn at_or_under_the_threshold_an_export_is_ready_at_once_and_fifty_downloads_give_one() {
    let app = spawn(1000, 100).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    for i in 0..3 {
        app.create_user(&format!("member{i}@example.com"), PW, &[]).await;
    }
    app.create_user("outsider@example.org", PW, &[]).await;
    let (s, e) = app
        .post_bearer(
            "/v1/admin/exports",
            &admin,
            &json!({"kind": "users", "format": "csv", "filter": {"q": "example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    assert_eq!((e["status"].as_str(), e["rows"].as_u64()), (Some("ready"), Some(4)), "three members and root");
    // Accounts created after the count are not in it.
    app.create_user("late@example.com", PW, &[]).await;
    let id = e["id"].as_str().unwrap().to_string();
    let path = format!("/v1/admin/exports/{id}/download");
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let answers = futures::future::join_all((0..50).map(|_| {
        let (barrier, req) = (barrier.clone(), app.authed(Method::GET, &path, &admin));
        async move {
            barrier.wait().await;
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    }))
    .await;
    let ok: Vec<&String> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, b)| *s == 410 && code(b) == "export_downloaded").count(), 49);
    let csv = ok[0];
    assert!(csv.starts_with("id,email,name,roles,email_verified,disabled,created_at\n"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains("member2@example.com") && !csv.contains("outsider@") && !csv.contains("late@"), "{csv}");
    let downloads = app.wait_for_events(1, |e| e.action == Action::ExportDownloaded).await;
    assert_eq!(downloads.len(), 1);
}

#[tokio::test]
async fn an_export_not_downloaded_or_approved_in_time_expires() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        c.login.delay_base_ms = 0;
        c.exports.approval_threshold_rows = 1;
        c.exports.download_ttl_hours = 2;
    })
    .await;
    app.create_user("alice@example.com", PW, &["admin"]).await;
    app.create_user("bob@example.com", PW, &["admin"]).await;
    let alice = app.login("alice@example.com", PW).await.access_token;
    let ask = |token: String, q: &'static str| {
        let app = &app;
        async move { app.post_bearer("/v1/admin/exports", &token, &json!({"kind": "users", "filter": {"q": q}})).await }
    };
    let (s, ready) = ask(alice.clone(), "alice").await;
    assert_eq!((s, ready["status"].as_str()), (201, Some("ready")), "{ready}");
    let (s, pending) = ask(alice.clone(), "example").await;
    assert_eq!((s, pending["status"].as_str()), (201, Some("pending_approval")), "{pending}");
    clock.advance(time::Duration::hours(2));
    let alice = app.login("alice@example.com", PW).await.access_token;
    let bob = app.login("bob@example.com", PW).await.access_token;
    let (s, body, _) = download(&app, ready["id"].as_str().unwrap(), &alice).await;
    assert_eq!((s, code(&body).as_str()), (410, "export_expired"), "{body}");
    let (s, p) = app
        .post_bearer(&format!("/v1/admin/exports/{}/approve", pending["id"].as_str().unwrap()), &bob, &json!({}))
        .await;
    assert_eq!((s, p["code"].as_str()), (410, Some("export_expired")), "{p}");
    let (_, listed) = app.get_bearer("/v1/admin/exports?status=expired", &bob).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");

    // Approved just in time, the download window starts at the approval.
    let (_, pending) = ask(alice.clone(), "example").await;
    let id = pending["id"].as_str().unwrap().to_string();
    clock.advance(time::Duration::minutes(110));
    let bob = app.login("bob@example.com", PW).await.access_token;
    let (s, _) = app.post_bearer(&format!("/v1/admin/exports/{id}/approve"), &bob, &json!({})).await;
    assert_eq!(s, 204);
    clock.advance(time::Duration::minutes(110));
    let alice = app.login("alice@example.com", PW).await.access_token;
    let (s, body, _) = download(&app, &id, &alice).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body.lines().count(), 2);
}

#[tokio::test]
async fn the_rate_limit_is_per_administrator_and_covers_direct_exports() {
    let app = spawn(1000, 2).await;
    let alice = app.create_and_login("alice@example.com", PW, &["admin"]).await.access_token;
    let bob = app.create_and_login("bob@example.com", PW, &["admin"]).await.access_token;
    let body = json!({"kind": "audit", "filter": {"action": "user"}});
    for _ in 0..2 {
        assert_eq!(app.post_bearer("/v1/admin/exports", &alice, &body).await.0, 201);
    }
    let res = app.authed(Method::POST, "/v1/admin/exports", &alice).json(&body).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "rate_limited");
    // The direct exports count against the same limit...
    let res = app.authed(Method::GET, "/v1/admin/audit/export?action=user", &alice).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let someone = app.create_user("person@example.com", PW, &[]).await;
    let res =
        app.authed(Method::GET, &format!("/v1/admin/users/{}/export", someone.id.0), &alice).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let refused =
        app.wait_for_events(1, |e| e.action == Action::RateLimited && e.details["rule"] == "exports").await.remove(0);
    assert_eq!(refused.actor, Actor::User(user_id(&alice).parse().unwrap()));
    assert_eq!(refused.details["limit"], 2);
    // ...and another administrator has their own.
    assert_eq!(app.post_bearer("/v1/admin/exports", &bob, &body).await.0, 201);
    let res = app.authed(Method::GET, "/v1/admin/audit/export?action=user", &bob).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn each_export_needs_its_own_permission() {
    let app = spawn(1000, 100).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (s, _) = app
        .post_bearer(
            "/v1/admin/roles",
            &admin,
            &json!({"name": "auditor", "permissions": ["audit:read", "audit:export"]}),
        )
        .await;
    assert_eq!(s, 201);
    let moderator = app.create_and_login("mod@example.com", PW, &["moderator"]).await.access_token;
    let auditor = app.create_and_login("auditor@example.com", PW, &["auditor"]).await.access_token;
    for kind in ["users", "audit"] {
        let (s, p) = app.post_bearer("/v1/admin/exports", &moderator, &json!({"kind": kind})).await;
        assert_eq!(s, 403, "users:read and audit:read are not export permissions: {p}");
    }
    let (s, _) = app.post_bearer("/v1/admin/exports", &auditor, &json!({"kind": "users"})).await;
    assert_eq!(s, 403, "audit:export is not users:export_list");
    let (s, e) = app.post_bearer("/v1/admin/exports", &auditor, &json!({"kind": "audit"})).await;
    assert_eq!(s, 201, "{e}");
    let (s, _) = app.get_bearer("/v1/admin/exports", &auditor).await;
    assert_eq!(s, 403, "listing needs exports:read");
    let (s, _) = app.get_bearer("/v1/admin/exports", &moderator).await;
    assert_eq!(s, 403);
    let (s, _) = app
        .post_bearer(&format!("/v1/admin/exports/{}/approve", e["id"].as_str().unwrap()), &moderator, &json!({}))
        .await;
    assert_eq!(s, 403, "approving needs exports:approve");
    // Losing the permission stops the download.
    let (s, _) = app
        .send_bearer(Method::PUT, "/v1/admin/roles/auditor", &admin, Some(&json!({"permissions": ["audit:read"]})))
        .await;
    assert_eq!(s, 200);
    let (s, body, _) = download(&app, e["id"].as_str().unwrap(), &auditor).await;
    assert_eq!(s, 403, "{body}");
    // Bad input is named.
    let (s, p) =
        app.post_bearer("/v1/admin/exports", &admin, &json!({"kind": "sessions", "format": "xml", "filter": {}})).await;
    assert_eq!(s, 400);
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["format", "kind"], "{p}");
    let (s, p) =
        app.post_bearer("/v1/admin/exports", &admin, &json!({"kind": "audit", "filter": {"outcome": "maybe"}})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (400, Some("filter.outcome")), "{p}");
    let (s, _) = app.post_bearer("/v1/admin/exports", &admin, &json!({"kind": "users", "filter": {"role": "x"}})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_direct_export_over_the_threshold_is_refused_and_one_under_it_records_filter_and_rows() {
    let app = spawn(5, 100).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    append_events(&app, 10).await;
    let res = app.authed(Method::GET, "/v1/admin/audit/export?action=auth.refresh", &admin).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "export_approval_required");
    assert!(p["detail"].as_str().unwrap().contains("POST /v1/admin/exports"), "{p}");
    let res = app.authed(Method::GET, "/v1/admin/audit/export?action=user.created", &admin).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let rows = res.text().await.unwrap().lines().count();
    assert_eq!(rows, 1);
    let ev = app.wait_for_event(Action::AuditExported).await;
    assert_eq!(ev.details["rows"], 1, "{}", ev.details);
    assert_eq!(ev.details["filter"]["action"], "user.created");
    assert_eq!(ev.details["format"], "jsonl");
    // An address in the filter is recorded as its keyed tag, as the log's own reads are: the
    // log keeps no address of someone who may be erased.
    let (s, e) =
        app.post_bearer("/v1/admin/exports", &admin, &json!({"kind": "audit", "filter": {"ip": "203.0.113.9"}})).await;
    assert_eq!((s, e["filter"]["ip"].as_str()), (201, Some("203.0.113.9")), "{e}");
    let ev = app.wait_for_event(Action::ExportRequested).await;
    assert!(ev.details["filter"]["ip_tag"].is_string(), "{}", ev.details);
    assert!(!ev.details.to_string().contains("203.0.113.9"), "{}", ev.details);
    // The per-person export records its person and its one row.
    let someone = app.create_user("person@example.com", PW, &[]).await;
    let res =
        app.authed(Method::GET, &format!("/v1/admin/users/{}/export", someone.id.0), &admin).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ev = app.wait_for_event(Action::UserDataExported).await;
    assert_eq!(ev.details["filter"]["user_id"], someone.id.0.to_string());
    assert_eq!(ev.details["rows"], 1);
}

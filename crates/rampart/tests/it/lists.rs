//! The one list shape (issue 25, `../shared/API.md` "Lists"): every list answers
//! `{items, next_cursor}` with `next_cursor: null` on the last page, takes `limit` (1 to 500)
//! and `cursor`, and refuses anything else with 400 `validation_failed` naming the parameter;
//! and the deprecation headers of the shapes that changed.

use rampart_testkit::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

/// Every page of `path` at `limit` per page, following `next_cursor`: the ids (or names) seen,
/// and the number of pages.
async fn walk(app: &TestApp, path: &str, token: &str, limit: u32, key: &str) -> (Vec<String>, usize) {
    let (mut seen, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = app.get_bearer(&url, token).await;
        assert_eq!(status, 200, "{url}: {page}");
        let object = page.as_object().unwrap();
        assert!(object.contains_key("next_cursor"), "{url}: next_cursor is always there: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize, "{url}");
        seen.extend(items.iter().map(|i| i[key].as_str().unwrap().to_string()));
        pages += 1;
        match &page["next_cursor"] {
            Value::Null => return (seen, pages),
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("{url}: next_cursor {other}"),
        }
        assert!(pages < 100, "{url}: pages never end");
    }
}

async fn refused(app: &TestApp, url: &str, token: &str, field: &str) {
    let (status, p) = app.get_bearer(url, token).await;
    assert_eq!(status, 400, "{url}: {p}");
    assert_eq!(p["code"], "validation_failed", "{url}");
    assert_eq!(p["errors"][0]["field"], field, "{url}: {p}");
}

#[tokio::test]
async fn every_list_pages_by_limit_and_cursor_and_refuses_bad_ones() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("root@example.com", "correct horse battery", &["admin"]).await.access_token;
    let user = app.create_and_login("plain@example.com", "correct horse battery", &["user"]).await;
    // Three more sessions of the user, three keys, three roles, three IP rules.
    for _ in 0..3 {
        app.login("plain@example.com", "correct horse battery").await;
    }
    for i in 0..3 {
        let (st, k) = app
            .post_bearer("/v1/me/api-keys", &user.access_token, &json!({ "name": format!("k{i}"), "scopes": [] }))
            .await;
        assert_eq!(st, 201, "{k}");
        let (st, r) = app
            .post_bearer(
                "/v1/admin/roles",
                &admin,
                &json!({ "name": format!("role-{i}"), "permissions": ["users:read"] }),
            )
            .await;
        assert_eq!(st, 201, "{r}");
        let (st, r) = app
            .post_bearer(
                "/v1/admin/ip-rules",
                &admin,
                &json!({ "network": format!("203.0.113.{i}/32"), "action": "block", "scope": "all", "reason": "test" }),
            )
            .await;
        assert_eq!(st, 201, "{r}");
    }

    // Each list, two items a page: every item once, in as many pages as it takes.
    let (sessions, pages) = walk(&app, "/v1/me/sessions", &user.access_token, 2, "id").await;
    assert_eq!((sessions.len(), pages), (4, 2));
    let (keys, pages) = walk(&app, "/v1/me/api-keys", &user.access_token, 2, "id").await;
    assert_eq!((keys.len(), pages), (3, 2));
    let (roles, _) = walk(&app, "/v1/admin/roles", &admin, 2, "name").await;
    let mut sorted = roles.clone();
    sorted.sort();
    assert_eq!(roles, sorted, "roles in name order");
    assert!(
        ["admin", "moderator", "user", "role-0", "role-1", "role-2"].iter().all(|r| roles.contains(&r.to_string()))
    );
    let (rules, pages) = walk(&app, "/v1/admin/ip-rules", &admin, 2, "id").await;
    assert_eq!((rules.len(), pages), (3, 2));
    let (users, _) = walk(&app, "/v1/admin/users", &admin, 1, "id").await;
    assert_eq!(users.len(), 2);
    // A page that exactly fills: no cursor to an empty page.
    let (_, pages) = walk(&app, "/v1/admin/ip-rules", &admin, 3, "id").await;
    assert_eq!(pages, 1);
    // The other lists have the shape too (empty, or the shipped alert rules): two at a time
    // gives what one page of 500 gives.
    for path in
        ["/v1/me/mfa/webauthn", "/v1/me/identities", "/v1/admin/alerts", "/v1/admin/webhooks", "/v1/admin/exports"]
    {
        let token = if path.starts_with("/v1/me") { &user.access_token } else { &admin };
        let (paged, _) = walk(&app, path, token, 2, "id").await;
        let (whole, pages) = walk(&app, path, token, 500, "id").await;
        assert_eq!((paged, pages), (whole, 1), "{path}");
    }

    // Deleting the item a cursor names shifts nothing: the next page starts after its key.
    let (_, first) = app.get_bearer("/v1/admin/ip-rules?limit=1", &admin).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (st, _) = app.send_bearer(Method::DELETE, &format!("/v1/admin/ip-rules/{}", rules[0]), &admin, None).await;
    assert_eq!(st, 204);
    let (_, rest) = app.get_bearer(&format!("/v1/admin/ip-rules?cursor={cursor}"), &admin).await;
    let rest: Vec<&str> = rest["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rest, vec![rules[1].as_str(), rules[2].as_str()]);

    // Limits out of 1..=500 and foreign cursors: 400 naming the parameter, on every kind of list.
    for (path, token) in [
        ("/v1/me/sessions", user.access_token.as_str()),
        ("/v1/me/api-keys", user.access_token.as_str()),
        ("/v1/admin/roles", admin.as_str()),
        ("/v1/admin/users", admin.as_str()),
        ("/v1/admin/audit", admin.as_str()),
    ] {
        refused(&app, &format!("{path}?limit=0"), token, "limit").await;
        refused(&app, &format!("{path}?limit=1001"), token, "limit").await;
        refused(&app, &format!("{path}?cursor=not-one-of-ours"), token, "cursor").await;
    }
    refused(&app, "/v1/me/sessions?limit=501", &user.access_token, "limit").await;
    let (st, p) = app.get_bearer("/v1/me/sessions?limit=abc", &user.access_token).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{p}");
    let (st, p) = app.get_bearer("/v1/me/sessions?page=2", &user.access_token).await;
    assert_eq!(st, 400, "unknown parameters are refused: {p}");
}

#[tokio::test]
async fn deprecated_shapes_still_work_and_say_so() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("root@example.com", "correct horse battery", &["admin"]).await.access_token;

    // Audit pages over 500 (the audit log's old maximum was 1000).
    let res = app.authed(Method::GET, "/v1/admin/audit?limit=800", &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["deprecation"], "@1796601600");
    assert_eq!(res.headers()["sunset"], "Wed, 30 Jun 2027 23:59:59 GMT");
    assert!(res.headers()["link"].to_str().unwrap().ends_with("rel=\"deprecation\""));
    let res = app.authed(Method::GET, "/v1/admin/audit?limit=500", &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("deprecation").is_none(), "500 is not deprecated");

    // Each use is counted for the operator.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"rampart_deprecated_uses_total{what="audit_limit_over_500"} 1"#), "{metrics}");
}

//! API keys through the running server: creation within the owner's permissions, the key
//! shown once, verification for backends (scope, revocation, rotation grace, per-key limits),
//! usage, and object-level checks.

use rampart_domain::clock::FixedClock;
use rampart_testkit::{TestApp, TestDb, read_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple";

async fn verify(app: &TestApp, service_key: &str, key: &str, scope: Option<&str>) -> Value {
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .header("x-api-key", service_key)
        .json(&json!({"key": key, "scope": scope}))
        .send()
        .await
        .unwrap();
    let (status, v) = read_json(res).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn keys_are_shown_once_scoped_within_the_owner_and_verified_by_backends() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let user = app.create_and_login("user@example.com", PW, &[]).await.access_token;

    // A key can never hold more than its owner.
    let (status, p) =
        app.post_bearer("/v1/me/api-keys", &user, &json!({"name": "mine", "scopes": ["anime:read"]})).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("scope_not_held")), "{p}");
    let (status, p) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "x", "scopes": ["Not A Scope"]})).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (400, Some("scope_invalid")));

    let (status, service) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "backend", "scopes": ["keys:verify"]})).await;
    assert_eq!(status, 201, "{service}");
    let service_key = service["key"].as_str().unwrap().to_string();
    assert!(service_key.starts_with("rk_") && service_key.len() == 49);
    assert!(service_key.starts_with(service["prefix"].as_str().unwrap()));
    let (status, client) = app
        .post_bearer(
            "/v1/me/api-keys",
            &admin,
            &json!({"name": "client", "scopes": ["anime:read"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, 201);
    let client_key = client["key"].as_str().unwrap().to_string();

    // Listed without secrets.
    let (_, list) = app.get_bearer("/v1/me/api-keys", &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&client_key[11..]), "the list never shows a secret");
    let stored = app.state.store.api_key_by_hash(rampart_domain::TokenHash::of(&client_key)).await.unwrap().unwrap();
    assert!(!format!("{stored:?}").contains(&client_key[11..]), "storage holds a hash and a prefix only");

    let ok = verify(&app, &service_key, &client_key, Some("anime:read")).await;
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["key_id"], client["id"]);
    assert_eq!(ok["scopes"], json!(["anime:read"]));
    let v = verify(&app, &service_key, &client_key, Some("anime:write")).await;
    assert_eq!((v["valid"].as_bool(), v["code"].as_str()), (Some(false), Some("insufficient_scope")));

    // Junk and typos are unknown (and need no lookup); a revoked key fails on the very next request.
    let mut typo = client_key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    for junk in ["rk_nope", std::str::from_utf8(&typo).unwrap(), ""] {
        assert_eq!(verify(&app, &service_key, junk, None).await["code"], "unknown", "{junk:?}");
    }
    let path = format!("/v1/me/api-keys/{}", client["id"].as_str().unwrap());
    assert_eq!(app.send_bearer(Method::DELETE, &path, &user, None).await.0, 404, "not the owner");
    assert_eq!(app.send_bearer(Method::DELETE, &path, &admin, None).await.0, 204);
    assert_eq!(verify(&app, &service_key, &client_key, None).await["code"], "revoked");

    // The verify endpoint itself needs keys:verify.
    let (_, weak) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "weak", "scopes": ["anime:read"]})).await;
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .header("x-api-key", weak["key"].as_str().unwrap())
        .json(&json!({"key": service_key}))
        .send()
        .await
        .unwrap();
    let (status, p) = read_json(res).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("insufficient_scope")));
    let res = app.client.post(app.url("/v1/keys/verify")).json(&json!({"key": service_key})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .header("authorization", format!("Bearer {}", &client_key))
        .json(&json!({"key": service_key}))
        .send()
        .await
        .unwrap();
    let (status, p) = read_json(res).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("invalid_api_key")), "a revoked key authenticates nothing");
    // Revoke all: every remaining key stops at once.
    assert_eq!(app.send_bearer(Method::DELETE, "/v1/me/api-keys", &admin, None).await.0, 204);
    assert_eq!(verify_status(&app, &service_key).await, 401, "the service key itself is revoked");
    let (_, list) = app.get_bearer("/v1/me/api-keys", &admin).await;
    assert_eq!(list["items"], json!([]));
    let events: Vec<String> =
        app.state.store.recent_events(100).await.unwrap().iter().map(|e| e.event.action.as_str().to_string()).collect();
    assert!(events.contains(&"api_key.created".to_string()) && events.contains(&"api_key.revoked".to_string()));
}

async fn verify_status(app: &TestApp, service_key: &str) -> u16 {
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .header("x-api-key", service_key)
        .json(&json!({"key": "rk_x"}))
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn a_rotated_key_works_until_the_grace_ends_and_not_after() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |_| {}).await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let (_, service) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "backend", "scopes": ["keys:verify"]})).await;
    let service_key = service["key"].as_str().unwrap().to_string();
    let (_, old) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "client", "scopes": ["anime:read"]})).await;
    let old_key = old["key"].as_str().unwrap().to_string();
    assert_eq!(verify(&app, &service_key, &old_key, None).await["valid"], true, "cached now");

    let path = format!("/v1/me/api-keys/{}/rotate", old["id"].as_str().unwrap());
    let (status, new) = app.post_bearer(&path, &admin, &json!({"grace_seconds": 60})).await;
    assert_eq!(status, 201, "{new}");
    let new_key = new["key"].as_str().unwrap().to_string();
    assert_eq!((new["name"].clone(), new["scopes"].clone()), (json!("client"), json!(["anime:read"])));
    assert_eq!(verify(&app, &service_key, &new_key, None).await["valid"], true);
    clock.advance(time::Duration::seconds(59));
    assert_eq!(verify(&app, &service_key, &old_key, None).await["valid"], true, "within the grace");
    clock.advance(time::Duration::seconds(1));
    assert_eq!(verify(&app, &service_key, &old_key, None).await["code"], "expired", "the grace is over");
    assert_eq!(verify(&app, &service_key, &new_key, None).await["valid"], true);
    // A rotated key cannot be rotated again.
    assert_eq!(app.post_bearer(&path, &admin, &json!({})).await.0, 404);
}

#[tokio::test]
async fn per_key_limits_are_enforced_reported_and_counted_in_usage() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let (_, service) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "backend", "scopes": ["keys:verify"]})).await;
    let service_key = service["key"].as_str().unwrap().to_string();
    let (_, limited) = app
        .post_bearer(
            "/v1/me/api-keys",
            &admin,
            &json!({"name": "limited", "scopes": ["anime:read"], "rate_limit": {"requests": 3, "per_seconds": 3600}}),
        )
        .await;
    let key = limited["key"].as_str().unwrap().to_string();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let v = verify(&app, &service_key, &key, None).await;
        assert_eq!(v["valid"], true);
        assert_eq!(v["ratelimit"]["limit"], 3);
        remaining.push(v["ratelimit"]["remaining"].as_u64().unwrap());
    }
    assert_eq!(remaining, [2, 1, 0]);
    let v = verify(&app, &service_key, &key, None).await;
    assert_eq!((v["valid"].as_bool(), v["code"].as_str()), (Some(false), Some("rate_limited")));
    assert!(v["ratelimit"]["reset_seconds"].as_u64().unwrap() > 3500);

    // The same limit applies when the key itself calls Rampart.
    let (_, svc_limited) = app
        .post_bearer(
            "/v1/me/api-keys",
            &admin,
            &json!({"name": "svc", "scopes": ["keys:verify"], "rate_limit": {"requests": 1, "per_seconds": 3600}}),
        )
        .await;
    let svc = svc_limited["key"].as_str().unwrap();
    verify(&app, svc, &service_key, None).await;
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .header("x-api-key", svc)
        .json(&json!({"key": service_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));

    let path = format!("/v1/me/api-keys/{}/usage", limited["id"].as_str().unwrap());
    let (status, usage) = app.get_bearer(&path, &admin).await;
    assert_eq!(status, 200, "{usage}");
    let hours = usage["items"].as_array().unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0]["requests"].as_i64(), hours[0]["rejected"].as_i64()), (Some(3), Some(1)));
    let (_, list) = app.get_bearer("/v1/me/api-keys", &admin).await;
    let listed = list["items"].as_array().unwrap().iter().find(|k| k["id"] == limited["id"]).unwrap().clone();
    assert!(listed["last_used_at"].is_string(), "last_used_at comes from the batched usage: {listed}");

    let user = app.create_and_login("other@example.com", PW, &[]).await.access_token;
    assert_eq!(app.get_bearer(&path, &user).await.0, 404, "not the owner");
}

#[tokio::test]
async fn introspection_accepts_an_api_key_with_the_scope() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let (_, k) = app
        .post_bearer("/v1/me/api-keys", &admin, &json!({"name": "introspector", "scopes": ["tokens:introspect"]}))
        .await;
    let user = app.create_and_login("u@example.com", PW, &[]).await.access_token;
    let res = app
        .client
        .post(app.url("/v1/auth/introspect"))
        .header("authorization", format!("Bearer {}", k["key"].as_str().unwrap()))
        .form(&[("token", user.as_str())])
        .send()
        .await
        .unwrap();
    let (status, v) = read_json(res).await;
    assert_eq!((status, v["active"].as_bool()), (200, Some(true)), "{v}");
}

#[tokio::test]
async fn removing_the_owners_role_removes_the_keys_access_at_once_and_disabling_ends_everything() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let (_, service) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "backend", "scopes": ["keys:verify"]})).await;
    let service_key = service["key"].as_str().unwrap().to_string();

    let (status, role) =
        app.post_bearer("/v1/admin/roles", &admin, &json!({"name": "reader", "permissions": ["anime:read"]})).await;
    assert_eq!(status, 201, "{role}");
    let user_token = app.create_and_login("fan@example.com", PW, &[]).await.access_token;
    let (_, me) = app.me(&user_token).await;
    let uid = me["user"]["id"].as_str().unwrap().to_string();
    let (status, u) = app
        .send_bearer(
            Method::PATCH,
            &format!("/v1/admin/users/{uid}"),
            &admin,
            Some(&json!({"roles": ["user", "reader"]})),
        )
        .await;
    assert_eq!((status, u["user"]["roles"].clone()), (200, json!(["reader", "user"])), "{u}");

    let (status, k) =
        app.post_bearer("/v1/me/api-keys", &user_token, &json!({"name": "mine", "scopes": ["anime:read"]})).await;
    assert_eq!(status, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(verify(&app, &service_key, &key, Some("anime:read")).await["valid"], true);

    // The role goes; the key's access goes with it, on the very next request.
    app.send_bearer(Method::PATCH, &format!("/v1/admin/users/{uid}"), &admin, Some(&json!({"roles": ["user"]}))).await;
    let v = verify(&app, &service_key, &key, Some("anime:read")).await;
    assert_eq!(v["code"], "insufficient_scope", "{v}");
    let v = verify(&app, &service_key, &key, None).await;
    assert_eq!(v["scopes"], json!([]), "effective scopes are within the owner's permissions");

    // Back via the role, then the role itself loses the permission.
    app.send_bearer(
        Method::PATCH,
        &format!("/v1/admin/users/{uid}"),
        &admin,
        Some(&json!({"roles": ["user", "reader"]})),
    )
    .await;
    assert_eq!(verify(&app, &service_key, &key, Some("anime:read")).await["valid"], true);
    let (status, _) =
        app.send_bearer(Method::PUT, "/v1/admin/roles/reader", &admin, Some(&json!({"permissions": []}))).await;
    assert_eq!(status, 200);
    assert_eq!(verify(&app, &service_key, &key, Some("anime:read")).await["code"], "insufficient_scope");

    // Disabling the user ends their sessions and keys at once.
    app.send_bearer(Method::PUT, "/v1/admin/roles/reader", &admin, Some(&json!({"permissions": ["anime:read"]}))).await;
    let (status, u) = app
        .send_bearer(Method::PATCH, &format!("/v1/admin/users/{uid}"), &admin, Some(&json!({"disabled": true})))
        .await;
    assert_eq!((status, u["user"]["disabled"].as_bool()), (200, Some(true)));
    assert_eq!(app.me(&user_token).await.0, 401);
    assert_eq!(verify(&app, &service_key, &key, None).await["code"], "revoked");
    let (status, _) = app.post_json("/v1/auth/login", &json!({"email": "fan@example.com", "password": PW})).await;
    assert_eq!(status, 403);

    // Erasure, asked for (the account stays, disabled, through the grace), then done at once.
    let (status, _) = app.send_bearer(Method::DELETE, &format!("/v1/admin/users/{uid}"), &admin, None).await;
    assert_eq!(status, 202);
    assert_eq!(app.get_bearer(&format!("/v1/admin/users/{uid}"), &admin).await.0, 200);
    assert_eq!(verify(&app, &service_key, &key, None).await["code"], "revoked");
    let now = format!("/v1/admin/users/{uid}?immediately=true");
    let (status, _) = app.send_bearer(Method::DELETE, &now, &admin, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.get_bearer(&format!("/v1/admin/users/{uid}"), &admin).await;
    assert_eq!(status, 404);
    assert_eq!(verify(&app, &service_key, &key, None).await["code"], "unknown");
}

#[tokio::test]
async fn admin_endpoints_are_guarded_by_named_permissions_for_sessions_and_keys() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("admin@example.com", PW, &["admin"]).await.access_token;
    let moderator = app.create_and_login("mod@example.com", PW, &["moderator"]).await.access_token;
    let user = app.create_and_login("plain@example.com", PW, &[]).await.access_token;

    let (status, list) = app.get_bearer("/v1/admin/users?q=PLAIN", &moderator).await;
    assert_eq!(status, 200, "moderators hold users:read");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["email"], "plain@example.com");
    let uid = list["items"][0]["id"].as_str().unwrap().to_string();
    let (status, p) = app
        .send_bearer(Method::PATCH, &format!("/v1/admin/users/{uid}"), &moderator, Some(&json!({"disabled": true})))
        .await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")), "but not users:write");
    let (status, _) = app.get_bearer("/v1/admin/users", &user).await;
    assert_eq!(status, 403);
    assert_eq!(app.get("/v1/admin/users").await.status(), 401);
    let denied = app
        .state
        .store
        .recent_events(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.action.as_str() == "authz.denied")
        .count();
    assert_eq!(denied, 2, "each refusal is an event");

    // Paging.
    let (_, page) = app.get_bearer("/v1/admin/users?limit=2", &admin).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app.get_bearer(&format!("/v1/admin/users?limit=2&cursor={cursor}"), &admin).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    // Out of range or a foreign cursor: refused with the field named, as the audit query does.
    for (query, field, code) in [
        ("limit=0", "limit", "out_of_range"),
        ("limit=501", "limit", "out_of_range"),
        ("cursor=zz", "cursor", "invalid_cursor"),
    ] {
        let (s, p) = app.get_bearer(&format!("/v1/admin/users?{query}"), &admin).await;
        assert_eq!((s, p["code"].as_str()), (400, Some("validation_failed")), "{query}: {p}");
        assert_eq!(
            (p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()),
            (Some(field), Some(code)),
            "{p}"
        );
    }

    // An API key with users:read can read users, not write them.
    let (_, k) = app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "ro", "scopes": ["users:read"]})).await;
    let key = k["key"].as_str().unwrap();
    let res = app.client.get(app.url("/v1/admin/users")).header("x-api-key", key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .patch(app.url(&format!("/v1/admin/users/{uid}")))
        .header("x-api-key", key)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    let (status, p) = read_json(res).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("insufficient_scope")));

    // Built-in roles are fixed; custom ones are not duplicated.
    let (status, p) =
        app.send_bearer(Method::PUT, "/v1/admin/roles/admin", &admin, Some(&json!({"permissions": []}))).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("role_builtin")));
    let (status, _) = app.send_bearer(Method::DELETE, "/v1/admin/roles/user", &admin, None).await;
    assert_eq!(status, 409);
    app.post_bearer("/v1/admin/roles", &admin, &json!({"name": "editor", "permissions": ["posts:*"]})).await;
    let (status, p) = app.post_bearer("/v1/admin/roles", &admin, &json!({"name": "editor", "permissions": []})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("role_exists")));
    let (status, p) =
        app.post_bearer("/v1/admin/roles", &admin, &json!({"name": "Bad Name", "permissions": ["x"]})).await;
    assert_eq!((status, p["errors"].as_array().unwrap().len()), (400, 2));
    let (status, _) = app.send_bearer(Method::DELETE, "/v1/admin/roles/editor", &admin, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.send_bearer(Method::DELETE, "/v1/admin/roles/editor", &admin, None).await;
    assert_eq!(status, 404);

    // authz/check: about oneself freely, about others with authz:check.
    let (_, a) = app.post_bearer("/v1/authz/check", &moderator, &json!({"permission": "audit:read"})).await;
    assert_eq!(a, json!({"allowed": true}));
    let (_, a) = app.post_bearer("/v1/authz/check", &moderator, &json!({"permission": "users:write"})).await;
    assert_eq!(a, json!({"allowed": false}));
    let (status, _) =
        app.post_bearer("/v1/authz/check", &moderator, &json!({"subject_id": uid, "permission": "users:read"})).await;
    assert_eq!(status, 403);
    let (_, a) =
        app.post_bearer("/v1/authz/check", &admin, &json!({"subject_id": uid, "permission": "users:read"})).await;
    assert_eq!(a, json!({"allowed": false}));
}

#[tokio::test]
async fn nobody_grants_more_than_they_hold_and_the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    app.post_bearer(
        "/v1/admin/roles",
        &admin,
        &json!({"name": "manager", "permissions": ["users:read", "users:write", "roles:write"]}),
    )
    .await;
    let manager = app.create_and_login("manager@example.com", PW, &["manager"]).await.access_token;
    let (_, me) = app.me(&manager).await;
    let manager_id = me["user"]["id"].as_str().unwrap().to_string();
    let (_, me) = app.me(&admin).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_string();

    // users:write is not a way to become admin, nor to touch an admin.
    let (status, p) = app
        .send_bearer(
            Method::PATCH,
            &format!("/v1/admin/users/{manager_id}"),
            &manager,
            Some(&json!({"roles": ["manager", "admin"]})),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (403, Some("exceeds_own_permissions")), "{p}");
    let (status, p) = app
        .send_bearer(Method::PATCH, &format!("/v1/admin/users/{admin_id}"), &manager, Some(&json!({"disabled": true})))
        .await;
    assert_eq!((status, p["code"].as_str()), (403, Some("exceeds_own_permissions")));
    // roles:write is not either: a role cannot be widened past its editor.
    let (status, p) =
        app.send_bearer(Method::PUT, "/v1/admin/roles/manager", &manager, Some(&json!({"permissions": ["*"]}))).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("exceeds_own_permissions")));
    let (status, _) =
        app.post_bearer("/v1/admin/roles", &manager, &json!({"name": "helper", "permissions": ["users:read"]})).await;
    assert_eq!(status, 201, "within the ceiling is fine");
    let (_, me) = app.me(&manager).await;
    assert_eq!(me["user"]["roles"], json!(["manager"]), "nothing changed");

    // The last enabled administrator cannot be disabled, demoted or erased.
    for (method, body_) in [
        (Method::PATCH, Some(json!({"disabled": true}))),
        (Method::PATCH, Some(json!({"roles": ["user"]}))),
        (Method::DELETE, None),
    ] {
        let (status, p) = app.send_bearer(method, &format!("/v1/admin/users/{admin_id}"), &admin, body_.as_ref()).await;
        assert_eq!((status, p["code"].as_str()), (409, Some("last_admin")));
    }
    // With a second administrator, the first may step down.
    let (status, _) = app
        .send_bearer(
            Method::PATCH,
            &format!("/v1/admin/users/{manager_id}"),
            &admin,
            Some(&json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send_bearer(Method::PATCH, &format!("/v1/admin/users/{admin_id}"), &admin, Some(&json!({"roles": ["user"]})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.me(&admin).await.0, 401, "losing a role ends the sessions");
}

#[tokio::test]
async fn usage_of_an_erased_users_key_does_not_block_later_flushes() {
    let app = TestApp::spawn().await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await.access_token;
    let (_, service) =
        app.post_bearer("/v1/me/api-keys", &admin, &json!({"name": "svc", "scopes": ["keys:verify"]})).await;
    let service_key = service["key"].as_str().unwrap().to_string();
    let doomed = app.create_and_login("doomed@example.com", PW, &[]).await.access_token;
    let (_, me) = app.me(&doomed).await;
    let (_, k) = app.post_bearer("/v1/me/api-keys", &doomed, &json!({"name": "k", "scopes": []})).await;
    let doomed_key = k["key"].as_str().unwrap();
    // The doomed key authenticates a call, so its usage is counted in memory…
    let res = app
        .client
        .post(app.url("/v1/authz/check"))
        .header("x-api-key", doomed_key)
        .json(&json!({"permission": "a:b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // …and its owner is erased before the flush.
    let (status, _) = app
        .send_bearer(
            Method::DELETE,
            &format!("/v1/admin/users/{}?immediately=true", me["user"]["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    verify(&app, &service_key, &service_key, None).await;
    let path = format!("/v1/me/api-keys/{}/usage", service["id"].as_str().unwrap());
    let (status, usage) = app.get_bearer(&path, &admin).await;
    assert_eq!(status, 200);
    assert!(usage["items"][0]["requests"].as_i64().unwrap() >= 2, "later usage is written: {usage}");
}

#[tokio::test]
async fn the_audit_verify_endpoint_reports_tampering_and_is_itself_audited() {
    let app = TestApp::spawn().await;
    let moderator = app.create_and_login("mod@example.com", PW, &["moderator"]).await.access_token;
    let user = app.create_and_login("u@example.com", PW, &[]).await.access_token;
    let (status, v) = app.get_bearer("/v1/admin/audit/verify", &moderator).await;
    assert_eq!(status, 200, "moderators hold audit:read");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["events_checked"].as_u64().unwrap() > 5);
    assert_eq!(app.get_bearer("/v1/admin/audit/verify", &user).await.0, 403);

    let seqs: Vec<i64> = app.state.store.recent_events(1000).await.unwrap().iter().map(|e| e.seq).collect();
    let victim = seqs[seqs.len() / 2];
    app.db.execute(&format!("UPDATE audit_events SET outcome = 'denied' WHERE seq = {victim}")).await;
    let (_, v) = app.get_bearer("/v1/admin/audit/verify", &moderator).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad_seq"].as_i64()), (Some(false), Some(victim)), "{v}");
    let newest = app.state.store.recent_events(1).await.unwrap().remove(0).event;
    assert_eq!((newest.action.as_str(), newest.severity), ("audit.verified", rampart_domain::Severity::Critical));
}

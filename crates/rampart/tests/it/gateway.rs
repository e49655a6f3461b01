//! The gateway (issue 16): the three doors spoken as Traefik/Caddy (`forward-auth`), nginx
//! (`auth-request`) and Envoy (`ext-authz`) speak them, the rules' decisions through real HTTP,
//! the identity assertion verified with the JWKS alone, the caches never outliving a change,
//! reloads, the admin's explain. (Real nginx and Caddy in front of a real upstream: `proxies`.)

use crate::mfa::{PW, code_at, enable_totp};
use rampart_domain::Clock;
use rampart_domain::clock::FixedClock;
use rampart_testkit::{TestApp, TestDb};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) const RULES: &str = r#"
[[gateway.rules]]
id = "public"
paths = ["/public/**", "/healthz"]
policy = "public"

[[gateway.rules]]
id = "orders-write"
paths = ["/v1/orders/**"]
methods = ["POST", "PUT", "DELETE"]
policy = "authenticated"
require = { all = ["orders:write"] }
audience = "orders-api"

[[gateway.rules]]
id = "orders"
paths = ["/v1/orders/**"]
policy = "authenticated"
rate_limit = { requests = 3, per_seconds = 60 }

[[gateway.rules]]
id = "payments"
paths = ["/pay/**"]
policy = "authenticated"
mfa = true
max_auth_age_secs = 300

[[gateway.rules]]
id = "admin"
paths = ["/admin/**"]
policy = "authenticated"
require = { any = ["role:admin"] }
forward_headers = true

[[gateway.rules]]
id = "api-only"
paths = ["/api/**"]
policy = "authenticated"
authn = ["api_key"]
on_unauthenticated = "401"
"#;

/// Applies [`RULES`] to a configuration.
pub(crate) fn with_rules(c: &mut rampart_config::Config) {
    let parsed: rampart_config::Config = toml_config(RULES);
    c.gateway.rules = parsed.gateway.rules;
    c.login.delay_base_ms = 0;
}

fn toml_config(s: &str) -> rampart_config::Config {
    toml::from_str(s).unwrap_or_else(|e| panic!("{e}"))
}

/// Asks the forward-auth door (as Traefik and Caddy do) about `method host uri`.
async fn fwd(app: &TestApp, method: &str, host: &str, uri: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/authz/forward-auth"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Verifies an assertion with the JWKS alone (what an upstream does), returning its claims.
pub(crate) async fn verify_assertion(app: &TestApp, headers: &HeaderMap, audience: &str) -> Value {
    let token = headers.get("x-rampart-jwt-assertion").expect("an assertion").to_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("rampart-assertion+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[audience]);
    v.set_issuer(&["rampart"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).unwrap_or_else(|e| panic!("{e}: {token}"));
    data.claims
}

#[tokio::test]
async fn public_routes_pass_anonymously_with_an_anonymous_assertion() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let r = fwd(&app, "GET", "app.example.com", "/public/logo.png?v=1", &[("x-rampart-jwt-assertion", "forged")]).await;
    assert_eq!(r.status(), 200);
    let claims = verify_assertion(&app, r.headers(), "app.example.com").await;
    assert_eq!((claims["sub"].as_str(), claims["rule"].as_str()), (Some("anonymous"), Some("public")), "{claims}");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    // Nothing matched: the default policy (deny).
    let r = fwd(&app, "GET", "app.example.com", "/elsewhere", &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-rampart-deny-reason"], "forbidden");
}

#[tokio::test]
async fn api_calls_get_401_and_browsers_the_sign_in_page_with_where_they_were_going() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let r = fwd(&app, "GET", "app.example.com", "/v1/orders/7", &[("accept", "application/json")]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");

    let html = [("accept", "text/html,application/xhtml+xml")];
    let r = fwd(&app, "GET", "app.example.com", "/v1/orders/7?tab=items", &html).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/ui/login?rd=https%3A%2F%2Fapp.example.com%2Fv1%2Forders%2F7%3Ftab%3Ditems",
        "the sign-in page, with rd"
    );
    let r = fwd(&app, "POST", "app.example.com", "/v1/orders/7", &html).await;
    assert_eq!(r.status(), 303, "a form post is sent on with GET");
    // A script asking for HTML is not a page load.
    let r =
        fwd(&app, "GET", "app.example.com", "/v1/orders/7", &[html[0], ("x-requested-with", "XMLHttpRequest")]).await;
    assert_eq!(r.status(), 401);
    // A rule that says 401 means 401, even for a browser.
    let r = fwd(&app, "GET", "app.example.com", "/api/x", &html).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn permissions_decide_and_the_assertion_says_who_and_what() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let (s, body) = app
        .post_bearer("/v1/admin/roles", &admin.access_token, &json!({"name": "clerk", "permissions": ["orders:write"]}))
        .await;
    assert_eq!(s, 201, "{body}");
    let plain = app.create_and_login("plain@example.com", PW, &[]).await;
    let clerk = app.create_and_login("clerk@example.com", PW, &["clerk"]).await;

    let r =
        fwd(&app, "POST", "app.example.com", "/v1/orders/1", &[("authorization", &bearer(&plain.access_token))]).await;
    assert_eq!(r.status(), 403);
    let r =
        fwd(&app, "POST", "app.example.com", "/v1/orders/1", &[("authorization", &bearer(&clerk.access_token))]).await;
    assert_eq!(r.status(), 200);
    let claims = verify_assertion(&app, r.headers(), "orders-api").await;
    assert_eq!(claims["sid"], clerk.session_id.as_str());
    assert_eq!(claims["rule"], "orders-write");
    assert_eq!(claims["permissions"], json!(["orders:write"]));
    assert_eq!(claims["roles"], json!(["clerk"]));
    assert_eq!(claims["amr"], json!(["pwd"]));
    // Roles: the admin page, with the plain identity headers this rule asks for.
    let r = fwd(&app, "GET", "app.example.com", "/admin/x", &[("authorization", &bearer(&admin.access_token))]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["remote-email"], "root@example.com");
    assert_eq!(r.headers()["remote-groups"], "admin");
    let r = fwd(&app, "GET", "app.example.com", "/admin/x", &[("authorization", &bearer(&clerk.access_token))]).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("remote-user").is_none());

    // Taking the role away takes effect on the next request (no cached answer survives it).
    let (s, body) = app
        .post_bearer("/v1/admin/roles", &admin.access_token, &json!({"name": "clerk2", "permissions": ["orders:read"]}))
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app
        .send_bearer(
            reqwest::Method::PUT,
            "/v1/admin/roles/clerk",
            &admin.access_token,
            Some(&json!({"permissions": ["orders:read"]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let r =
        fwd(&app, "POST", "app.example.com", "/v1/orders/1", &[("authorization", &bearer(&clerk.access_token))]).await;
    assert_eq!(r.status(), 403, "the role no longer grants orders:write");
}

#[tokio::test]
async fn a_revoked_session_is_refused_on_the_next_request() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let ann = app.create_and_login("ann@example.com", PW, &[]).await;
    let auth = [("authorization", bearer(&ann.access_token))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(fwd(&app, "GET", "app.example.com", "/v1/orders/1", &auth).await.status(), 200);
    let r = app.authed(reqwest::Method::POST, "/v1/auth/logout", &ann.access_token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(fwd(&app, "GET", "app.example.com", "/v1/orders/1", &auth).await.status(), 401);
}

#[tokio::test]
async fn api_keys_count_where_rules_accept_them_and_never_for_a_step_up() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let ann = app.create_and_login("ann@example.com", PW, &["admin"]).await;
    let (s, key) = app
        .post_bearer(
            "/v1/me/api-keys",
            &ann.access_token,
            &json!({"name": "ci", "scopes": ["orders:read"], "password": PW}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_string();
    let r = fwd(&app, "GET", "app.example.com", "/api/things", &[("x-api-key", &key)]).await;
    assert_eq!(r.status(), 200);
    let claims = verify_assertion(&app, r.headers(), "app.example.com").await;
    assert!(claims["sub"].as_str().unwrap().starts_with("apikey:"), "{claims}");
    // A bearer token does not count where only keys do.
    let r = fwd(&app, "GET", "app.example.com", "/api/things", &[("authorization", &bearer(&ann.access_token))]).await;
    assert_eq!(r.status(), 401);
    // A key cannot show a second factor.
    let r = fwd(&app, "GET", "app.example.com", "/pay/now", &[("x-api-key", &key)]).await;
    assert_eq!(
        (r.status().as_u16(), r.headers()["x-rampart-deny-reason"].to_str().unwrap()),
        (403, "step_up_impossible")
    );
    // A junk key is simply not a credential.
    let r = fwd(&app, "GET", "app.example.com", "/api/things", &[("x-api-key", "rak_junk")]).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_payment_needs_a_fresh_second_factor() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), with_rules).await;
    let pwd_only = app.create_and_login("ann@example.com", PW, &[]).await;
    let r =
        fwd(&app, "POST", "app.example.com", "/pay/now", &[("authorization", &bearer(&pwd_only.access_token))]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_user_authentication"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "step_up_required");
    let r = fwd(
        &app,
        "GET",
        "app.example.com",
        "/pay/now",
        &[("authorization", &bearer(&pwd_only.access_token)), ("accept", "text/html")],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().ends_with("&step_up=1"));

    let (secret, _) = enable_totp(&app, &pwd_only.access_token, clock.now()).await;
    let mfa = app.mfa_token("ann@example.com", PW).await;
    clock.advance(time::Duration::seconds(31));
    let (s, body) = app
        .post_json("/v1/auth/login/mfa", &json!({"mfa_token": mfa.mfa_token, "code": code_at(&secret, clock.now())}))
        .await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let r = fwd(&app, "POST", "app.example.com", "/pay/now", &[("authorization", &bearer(&token))]).await;
    assert_eq!(r.status(), 200);
    let claims = verify_assertion(&app, r.headers(), "app.example.com").await;
    assert!(claims["amr"].as_array().unwrap().contains(&json!("mfa")), "{claims}");
    // Six minutes later the factor is no longer fresh (the access token itself still is not
    // expired: the session is what counts).
    clock.advance(time::Duration::minutes(6));
    let (s, body) = app.post_json("/v1/auth/refresh", &json!({"refresh_token": body["refresh_token"]})).await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let r = fwd(&app, "POST", "app.example.com", "/pay/now", &[("authorization", &bearer(&token))]).await;
    assert_eq!(r.status(), 401, "max_auth_age_secs = 300");
}

#[tokio::test]
async fn rule_limits_count_per_principal_and_nginx_gets_a_403() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let ann = app.create_and_login("ann@example.com", PW, &[]).await;
    let bob = app.create_and_login("bob@example.com", PW, &[]).await;
    let ann_auth = bearer(&ann.access_token);
    for _ in 0..3 {
        assert_eq!(
            fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("authorization", &ann_auth)]).await.status(),
            200
        );
    }
    let r = fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("authorization", &ann_auth)]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let r = fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("authorization", &bearer(&bob.access_token))]).await;
    assert_eq!(r.status(), 200, "another principal has its own budget");
    // nginx's door: only 200/401/403.
    let r = app
        .client
        .get(app.url("/authz/auth-request"))
        .header("x-original-method", "GET")
        .header("x-original-url", "https://app.example.com/v1/orders/1")
        .header("authorization", &ann_auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-rampart-deny-reason"], "rate_limited");
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn nginx_and_envoy_shapes_reach_the_same_decisions() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    let ann = app.create_and_login("ann@example.com", PW, &[]).await;
    let nginx = |url: &str, extra: Option<(&str, String)>| {
        let mut r = app
            .client
            .get(app.url("/authz/auth-request"))
            .header("x-original-method", "GET")
            .header("x-original-url", url);
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r
    };
    let r = nginx("https://app.example.com/public/a", None).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-rampart-jwt-assertion"));
    // A browser that must sign in: nginx only takes 401 here; the sign-in page is in Location.
    let r = nginx("https://app.example.com/v1/orders/1", Some(("accept", "text/html".into()))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/ui/login?rd=https%3A%2F%2Fapp.example.com"));
    let r = nginx("https://app.example.com/v1/orders/1", Some(("authorization", bearer(&ann.access_token))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Envoy: the method, the Host and the path after the prefix.
    let envoy = |method: reqwest::Method, path: &str| {
        app.client.request(method, app.url(&format!("/authz/ext-authz{path}"))).header("host", "app.example.com")
    };
    let r = envoy(reqwest::Method::GET, "/public/a?b=c").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = envoy(reqwest::Method::DELETE, "/v1/orders/1")
        .header("authorization", bearer(&ann.access_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "orders-write needs orders:write");
    // A proxy that does not say what it forwards gets a clear 400, never an allow.
    let r = app.client.get(app.url("/authz/forward-auth")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "gateway_request_incomplete");
}

/// Paths are normalised before rules see them, and tricks that would read differently
/// upstream are refused outright.
#[tokio::test]
async fn path_tricks_cannot_reach_a_protected_route_through_a_public_one() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    for uri in [
        "/public/..%2Fadmin/x",
        "/public/%2e%2e/admin/x",
        "/public/../admin/x",
        "/public/..;/admin/x",
        "/public\\..\\admin",
    ] {
        let r = fwd(&app, "GET", "app.example.com", uri, &[]).await;
        assert_ne!(r.status(), 200, "{uri} passed as public");
    }
    for uri in ["/public//a/b", "/public/./a/b", "/public/a/../b", "/public/%61"] {
        let r = fwd(&app, "GET", "APP.example.com.", uri, &[]).await;
        assert_eq!(r.status(), 200, "{uri}: an equivalent public path still passes");
    }
}

#[tokio::test]
async fn a_session_cookie_shared_with_the_parent_domain_counts_at_the_gateway() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        with_rules(c);
        c.sessions.cookie_domain = Some("example.com".into());
    })
    .await;
    app.create_user("ann@example.com", PW, &[]).await;
    let r = app
        .client
        .post(app.url("/v1/auth/login?session=cookie"))
        .json(&json!({"email": "ann@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("__Secure-rampart_session=") && set.contains("; Domain=example.com"), "{set}");
    let value = set.split(';').next().unwrap().to_string();
    let r = fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("cookie", &value)]).await;
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/v1/me")).header("cookie", &value).send().await.unwrap();
    assert_eq!(r.status(), 200, "Rampart's own API reads the shared cookie too");
    // The host-only cookie name does not count in this mode.
    let host_only = value.replace("__Secure-", "__Host-");
    assert_eq!(fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("cookie", &host_only)]).await.status(), 401);
}

#[tokio::test]
async fn the_admin_sees_the_rules_and_why_a_request_gets_its_answer() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        with_rules(c);
        // A rule no request can reach: the public rule before it takes all of /public/.
        let extra = toml_config("[[gateway.rules]]\nid = \"late\"\npaths = [\"/public/late\"]\npolicy = \"deny\"\n");
        c.gateway.rules.extend(extra.gateway.rules);
    })
    .await;
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let (s, rules) = app.get_bearer("/v1/admin/gateway/rules", &admin.access_token).await;
    assert_eq!(s, 200, "{rules}");
    assert_eq!(rules["default_policy"], "deny");
    assert_eq!(rules["rules"].as_array().unwrap().len(), 7);
    assert_eq!(rules["shadowed"], json!([{"rule": "late", "by": "public"}]));
    let (s, ex) = app
        .post_bearer(
            "/v1/admin/gateway/explain",
            &admin.access_token,
            &json!({"method": "POST", "url": "https://app.example.com/v1/orders/9", "headers": {"authorization": bearer(&admin.access_token)}}),
        )
        .await;
    assert_eq!(s, 200, "{ex}");
    assert_eq!((ex["rule"].as_str(), ex["decision"].as_str()), (Some("orders-write"), Some("allow")), "{ex}");
    assert!(ex["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("public")), "{ex}");
    let (s, ex) = app
        .post_bearer(
            "/v1/admin/gateway/explain",
            &admin.access_token,
            &json!({"method": "GET", "url": "https://app.example.com/v1/orders/9"}),
        )
        .await;
    assert_eq!(
        (s, ex["rule"].as_str(), ex["decision"].as_str()),
        (200, Some("orders"), Some("unauthenticated")),
        "{ex}"
    );
    let (s, p) = app
        .post_bearer("/v1/admin/gateway/explain", &admin.access_token, &json!({"method": "GET", "url": "nope"}))
        .await;
    assert_eq!((s, p["errors"][0]["code"].as_str()), (400, Some("invalid_url")), "{p}");
    let plain = app.create_and_login("plain@example.com", PW, &[]).await;
    assert_eq!(app.get_bearer("/v1/admin/gateway/rules", &plain.access_token).await.0, 403);
}

#[tokio::test]
async fn a_changed_rules_file_takes_effect_and_a_broken_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, "[[rules]]\nid = \"all\"\npaths = [\"/**\"]\npolicy = \"public\"\n").unwrap();
    let path = file.clone();
    let app = TestApp::spawn_with(TestDb::fresh().await, move |c| {
        c.gateway.rules_file = Some(path);
    })
    .await;
    let ask = || fwd(&app, "GET", "app.example.com", "/x", &[]);
    assert_eq!(ask().await.status(), 200);
    std::fs::write(&file, "[[rules]]\nid = \"all\"\npaths = [\"/**\"]\npolicy = \"deny\"\n# changed\n").unwrap();
    let mut status = 200;
    for _ in 0..50 {
        status = ask().await.status().as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 403, "the new rules are in force within the poll interval");
    app.wait_for_event(rampart_domain::Action::GatewayRulesLoaded).await;
    std::fs::write(&file, "[[rules]]\nid = \"all\"\npaths = [\"re:(\"]\npolicy = \"public\"\n").unwrap();
    app.wait_for_event(rampart_domain::Action::GatewayRulesRejected).await;
    assert_eq!(ask().await.status(), 403, "a broken file leaves the rules in force");
}

/// When Rampart cannot decide (its database is gone), the answer is 503, never a 401.
#[tokio::test]
async fn rampart_failing_is_a_503_not_a_401() {
    let app = TestApp::spawn_with(TestDb::sqlite(), with_rules).await;
    app.create_user("ann@example.com", PW, &[]).await;
    app.state.store.close().await;
    let r =
        fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[("cookie", "__Host-rampart_session=rs_whatever")]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
}

#[tokio::test]
async fn decisions_are_counted_by_rule_and_outcome() {
    let app = TestApp::spawn_with(TestDb::fresh().await, with_rules).await;
    fwd(&app, "GET", "app.example.com", "/public/a", &[]).await;
    fwd(&app, "GET", "app.example.com", "/v1/orders/1", &[]).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"rampart_gateway_decisions_total{rule="public",outcome="allow"} 1"#), "{metrics}");
    assert!(
        metrics.contains(r#"rampart_gateway_decisions_total{rule="orders",outcome="unauthenticated"} 1"#),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// The built-in proxy (`[gateway] upstream` and `listen`).

/// A real upstream on loopback: echoes what it received as JSON, answers 500 while `failing`,
/// echoes WebSocket messages on `/ws`, and counts the requests that reached it.
struct Upstream {
    addr: std::net::SocketAddr,
    failing: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

async fn upstream() -> Upstream {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use std::sync::atomic::Ordering;
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (f, h) = (failing.clone(), hits.clone());
    let echo = move |req: axum::extract::Request| {
        let (f, h) = (f.clone(), h.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            if f.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
            }
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or_default())))
                .collect();
            axum::Json(json!({"method": req.method().as_str(), "uri": req.uri().to_string(), "headers": headers}))
                .into_response()
        }
    };
    let ws = |up: WebSocketUpgrade| async move {
        up.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err() {
                    break;
                }
            }
        })
    };
    use axum::response::IntoResponse;
    // Answers after a pause: a request still in flight when shutdown begins.
    let slow = {
        let hits = hits.clone();
        move || async move {
            hits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            "slow"
        }
    };
    let app = axum::Router::new()
        .route("/public/ws", axum::routing::get(ws))
        .route("/public/slow", axum::routing::get(slow))
        .fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { addr, failing, hits }
}

async fn proxied_app(up: &Upstream) -> TestApp {
    proxied_app_with(up, |_| {}).await
}

async fn proxied_app_with(up: &Upstream, more: impl FnOnce(&mut rampart_config::Config) + Send + 'static) -> TestApp {
    let upstream = format!("http://{}", up.addr);
    TestApp::spawn_with(TestDb::fresh().await, move |c| {
        with_rules(c);
        more(c);
        c.gateway.upstream = Some(upstream);
        c.gateway.listen = Some("127.0.0.1:0".parse().unwrap());
        c.gateway.login_url = "https://auth.example.com/ui/login".into();
        c.gateway.proxy.breaker_consecutive_failures = 3;
        c.gateway.proxy.breaker_base_ejection_secs = 1;
    })
    .await
}

fn via_gateway(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.gateway_addr.expect("the gateway listens"))
}

#[tokio::test]
async fn the_built_in_proxy_forwards_what_the_rules_allow_with_the_assertion_and_nothing_forged() {
    let up = upstream().await;
    let app = proxied_app(&up).await;
    let r = app
        .client
        .get(via_gateway(&app, "/public/page?x=1"))
        .header("host", "app.example.com")
        .header("x-rampart-jwt-assertion", "forged")
        .header("remote-user", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["uri"], "/public/page?x=1");
    assert!(seen["headers"].get("remote-user").is_none(), "{seen}");
    let mut h = HeaderMap::new();
    h.insert("x-rampart-jwt-assertion", seen["headers"]["x-rampart-jwt-assertion"].as_str().unwrap().parse().unwrap());
    let claims = verify_assertion(&app, &h, "app.example.com").await;
    assert_eq!(claims["sub"], "anonymous", "the client's forged copy was replaced");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");

    // Refusals never reach the upstream.
    let before = up.hits.load(std::sync::atomic::Ordering::SeqCst);
    let r = app.client.get(via_gateway(&app, "/v1/orders/1")).header("host", "app.example.com").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(via_gateway(&app, "/v1/orders/1"))
        .header("host", "app.example.com")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://auth.example.com/ui/login?rd=http%3A%2F%2Fapp.example.com")
    );
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), before);

    let ann = app.create_and_login("ann@example.com", PW, &[]).await;
    let r = app
        .client
        .post(via_gateway(&app, "/v1/orders/1").replace("/v1/orders/1", "/admin/x"))
        .header("host", "app.example.com")
        .bearer_auth(&ann.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "admin needs role:admin");
    let r = app
        .client
        .get(via_gateway(&app, "/v1/orders/1"))
        .header("host", "app.example.com")
        .bearer_auth(&ann.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-rampart-jwt-assertion", seen["headers"]["x-rampart-jwt-assertion"].as_str().unwrap().parse().unwrap());
    let claims = verify_assertion(&app, &h, "app.example.com").await;
    assert_eq!(claims["sid"], ann.session_id.as_str());
}

#[tokio::test]
async fn the_breaker_ejects_a_failing_upstream_answers_at_once_and_restores_it() {
    use std::sync::atomic::Ordering;
    let up = upstream().await;
    let app = proxied_app(&up).await;
    let get = || app.client.get(via_gateway(&app, "/public/x")).header("host", "app.example.com").send();
    up.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(get().await.unwrap().status(), 500);
    }
    let hits = up.hits.load(Ordering::SeqCst);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "upstream_unavailable");
    assert_eq!(up.hits.load(Ordering::SeqCst), hits, "while open, nothing reaches the upstream");
    let ev = app.wait_for_event(rampart_domain::Action::GatewayUpstreamEjected).await;
    assert_eq!(ev.details["reason"]["consecutive_failures"], 3, "{:?}", ev.details);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(&format!("rampart_gateway_upstream_state{{upstream=\"{}\"}} 2", up.addr)), "{metrics}");

    // Recovered: after the ejection a probe goes through and closes the breaker.
    up.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get().await.unwrap().status(), 200);
    app.wait_for_event(rampart_domain::Action::GatewayUpstreamRestored).await;
    assert_eq!(get().await.unwrap().status(), 200);
}

/// The built-in proxy's listener runs on event loops of its own (`gateway.proxy.threads`), all
/// accepting on one socket: connections are answered whichever loop takes them; at shutdown a
/// request in flight on a loop is still answered, the loops stop, and nothing listens after.
#[tokio::test]
async fn the_built_in_proxy_serves_on_its_event_loops_and_drains_them_at_shutdown() {
    use std::sync::atomic::Ordering;
    let up = upstream().await;
    let mut app = proxied_app_with(&up, |c| c.gateway.proxy.threads = Some(3)).await;
    for i in 0..12 {
        // A connection each.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let r = client.get(via_gateway(&app, &format!("/public/{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "connection {i}");
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 12);
    let slow = tokio::spawn(app.client.get(via_gateway(&app, "/public/slow")).send());
    while up.hits.load(Ordering::SeqCst) < 13 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.begin_shutdown();
    let r = slow.await.unwrap().expect("the request in flight is answered");
    assert_eq!((r.status().as_u16(), r.text().await.unwrap().as_str()), (200, "slow"));
    let gateway = app.gateway_addr.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await.expect("the event loops stop").unwrap();
    assert!(tokio::net::TcpStream::connect(gateway).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn websockets_pass_through_the_built_in_proxy() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let up = upstream().await;
    let app = proxied_app(&up).await;
    let url = format!("ws://{}/public/ws", app.gateway_addr.unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(res.status(), 101);
    for i in 0..5 {
        ws.send(Message::Text(format!("hello {i}").into())).await.unwrap();
        let got = ws.next().await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), format!("hello {i}"));
    }
    ws.close(None).await.unwrap();
}

/// The doors sit in front of every request a proxy's users make: the shipped per-address API
/// limit (600 a minute) does not apply to them (the rules' per-principal limits do), and an IP
/// refusal tells nginx why in `X-Rampart-Deny-Reason`.
#[tokio::test]
async fn the_doors_are_not_under_the_shipped_api_limit_and_ip_refusals_say_why() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |c| {
        with_rules(c);
        c.rate_limit.enabled = true;
        c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    for i in 0..650 {
        let r = fwd(&app, "GET", "app.example.com", "/public/a", &[("x-forwarded-for", "198.51.100.4")]).await;
        assert_eq!(r.status(), 200, "request {i}");
    }
    let admin = app.create_and_login("root@example.com", PW, &["admin"]).await;
    let (s, body) = app
        .post_bearer(
            "/v1/admin/ip-rules",
            &admin.access_token,
            &json!({"network": "203.0.113.9/32", "action": "block"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let r = app
        .client
        .get(app.url("/authz/auth-request"))
        .header("x-original-method", "GET")
        .header("x-original-url", "https://app.example.com/public/a")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-rampart-deny-reason"], "ip_blocked");
}

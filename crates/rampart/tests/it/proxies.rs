//! Real proxies (issue 16, deliverable 7): Debian's nginx (`auth_request` → `/authz/auth-request`)
//! and Caddy (`forward_auth` → `/authz/forward-auth`), running the README's configurations in
//! front of Rampart and a real upstream, `tests/upstream/echo_app.py`, which verifies
//! `X-Rampart-Jwt-Assertion` with PyJWT against the JWKS alone and echoes what reached it.
//! Each test starts one Rampart, one upstream and both proxies, and runs every step through
//! both. (The doors' shapes for Traefik and Envoy, without a proxy: `gateway`.)

use crate::mfa::{PW, code_at, enable_totp};
use rampart_domain::Clock;
use rampart_domain::clock::FixedClock;
use rampart_testkit::proxies::{
    APP_HOST, CADDYFILE, NGINX_SERVER, Proxy, Upstream, proxy_client, trust_loopback_proxy,
};
use rampart_testkit::{TestApp, TestDb, read_json};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use std::sync::Arc;

const RULES: &str = r#"
[[gateway.rules]]
id = "public"
paths = ["/public/**"]
policy = "public"

[[gateway.rules]]
id = "orders-write"
paths = ["/v1/orders/**"]
methods = ["POST", "PUT", "PATCH", "DELETE"]
policy = "authenticated"
require = { all = ["orders:write"] }
audience = "orders-api"

[[gateway.rules]]
id = "admin"
paths = ["/admin/**"]
policy = "authenticated"
require = { any = ["role:admin"] }
forward_headers = true

[[gateway.rules]]
id = "payments"
paths = ["/pay/**"]
policy = "authenticated"
mfa = true
max_auth_age_secs = 300

[[gateway.rules]]
id = "app"
paths = ["/**"]
policy = "authenticated"
"#;

/// What a client forges, hoping the upstream believes it (`_` spellings included: a WSGI app
/// reads `Remote_User` as `Remote-User`).
const FORGED: [(&str, &str); 6] = [
    ("x-rampart-jwt-assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0."),
    ("x_rampart_jwt_assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0x."),
    ("remote-user", "forged-root"),
    ("remote_user", "forged-root_"),
    ("remote-email", "forged@example.com"),
    ("remote-groups", "forged-group"),
];

/// One Rampart, one upstream, nginx and Caddy in front.
struct Stack {
    app: TestApp,
    proxies: [Proxy; 2],
    client: reqwest::Client,
    _upstream: Upstream,
}

impl Stack {
    async fn start(clock: Arc<dyn Clock>) -> Stack {
        let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock, |c| {
            trust_loopback_proxy(c);
            let parsed: rampart_config::Config = toml::from_str(RULES).unwrap();
            c.gateway.rules = parsed.gateway.rules;
            c.gateway.allowed_redirect_hosts = vec![APP_HOST.into()];
            c.login.delay_base_ms = 0;
        })
        .await;
        let upstream = Upstream::start(&app.url("/.well-known/jwks.json"), &[APP_HOST, "orders-api"]).await;
        let (rampart, app_url) = (app.url(""), upstream.url());
        let (nginx, caddy) = tokio::join!(Proxy::nginx(&rampart, &app_url), Proxy::caddy(&rampart, &app_url));
        Stack { app, proxies: [nginx, caddy], client: proxy_client(), _upstream: upstream }
    }

    fn get(&self, proxy: &Proxy, path: &str) -> RequestBuilder {
        self.client.get(proxy.url(path))
    }
}

/// The upstream's echo of a request that reached it, with the assertion it verified; panics
/// (with the proxy's log) when the proxy answered by itself or verification failed.
async fn upstream_saw(proxy: &Proxy, req: RequestBuilder) -> Value {
    let (status, body) = read_json(req.send().await.unwrap()).await;
    assert_eq!(status, 200, "{}: {body}\n{}", proxy.name(), proxy.log());
    assert!(body["headers"].is_object(), "{}: not the upstream's answer: {body}", proxy.name());
    assert!(body["error"].is_null(), "{}: the upstream could not verify the assertion: {body}", proxy.name());
    body
}

/// A request the proxy refused on Rampart's word: its status (the upstream never saw it).
async fn refused(proxy: &Proxy, req: RequestBuilder) -> reqwest::Response {
    let res = req.send().await.unwrap();
    assert_ne!(res.status(), 200, "{}: reached the upstream", proxy.name());
    res
}

/// Every value of `name` that reached the upstream.
fn arrived<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// None of the forged headers reached the upstream: exactly one assertion arrived (the one it
/// verified), no forged value arrived under any name, and the plain identity headers are
/// absent or Rampart's own (`expected_user`).
fn nothing_forged_arrived(proxy: &Proxy, echo: &Value, expected_user: Option<&str>) {
    assert_eq!(arrived(echo, "x-rampart-jwt-assertion").len(), 1, "{}: {echo}", proxy.name());
    for (name, values) in echo["headers"].as_object().unwrap() {
        for (_, forged) in FORGED {
            assert!(
                !values.as_array().unwrap().iter().any(|v| v == forged),
                "{}: the client's {forged:?} reached the upstream as {name}: {echo}",
                proxy.name()
            );
        }
    }
    match expected_user {
        Some(user) => assert_eq!(arrived(echo, "remote-user"), [user], "{}: {echo}", proxy.name()),
        None => {
            for name in ["remote-user", "remote-email", "remote-groups"] {
                assert_eq!(arrived(echo, name), Vec::<&str>::new(), "{}: {name} arrived: {echo}", proxy.name());
            }
        }
    }
}

fn forge(mut req: RequestBuilder) -> RequestBuilder {
    for (name, value) in FORGED {
        req = req.header(name, value);
    }
    req
}

fn as_page_load(req: RequestBuilder) -> RequestBuilder {
    req.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
}

#[tokio::test]
async fn public_routes_pass_anonymously_api_calls_get_401_and_permissions_403() {
    let s = Stack::start(Arc::new(rampart_domain::SystemClock)).await;
    let admin_id = s.app.create_user("root@example.com", PW, &["admin"]).await.id.0.to_string();
    let admin = s.app.login("root@example.com", PW).await;
    let (status, body) = s
        .app
        .post_bearer("/v1/admin/roles", &admin.access_token, &json!({"name": "clerk", "permissions": ["orders:write"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let plain_id = s.app.create_user("plain@example.com", PW, &[]).await.id.0.to_string();
    let plain = s.app.login("plain@example.com", PW).await;
    let clerk = s.app.create_and_login("clerk@example.com", PW, &["clerk"]).await;

    for p in &s.proxies {
        // Public: anonymous, yet with an assertion the upstream verified (so a client's own
        // copy never got through), and none of the forged headers.
        let echo = upstream_saw(p, forge(s.get(p, "/public/logo.png?v=1"))).await;
        assert_eq!(echo["path"], "/public/logo.png?v=1");
        let claims = &echo["claims"];
        assert_eq!((claims["sub"].as_str(), claims["rule"].as_str()), (Some("anonymous"), Some("public")), "{echo}");
        assert_eq!(claims["aud"], APP_HOST);
        nothing_forged_arrived(p, &echo, None);

        // Protected, no credentials: an API call gets 401, and forged headers change nothing.
        let res = refused(p, forge(s.get(p, "/v1/orders/7").header("accept", "application/json"))).await;
        assert_eq!(res.status(), 401, "{}", p.name());
        let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
        assert!(challenge.as_deref().is_some_and(|c| c.starts_with("Bearer")), "{}: {:?}", p.name(), res.headers());

        // Signed in (bearer), a client's forged identity still never arrives.
        let echo = upstream_saw(p, forge(s.get(p, "/v1/orders/7").bearer_auth(&plain.access_token))).await;
        assert_eq!((echo["claims"]["sub"].as_str(), echo["claims"]["rule"].as_str()), (Some(&*plain_id), Some("app")));
        assert_eq!(echo["claims"]["sid"], plain.session_id.as_str());
        nothing_forged_arrived(p, &echo, None);

        // Permissions: a plain user may not write orders; a clerk may (audience orders-api).
        let write = |token: &str| s.client.post(p.url("/v1/orders/7")).bearer_auth(token).json(&json!({"qty": 1}));
        let res = refused(p, write(&plain.access_token)).await;
        assert_eq!(res.status(), 403, "{}", p.name());
        let echo = upstream_saw(p, write(&clerk.access_token)).await;
        assert_eq!(echo["method"], "POST");
        assert_eq!(
            (echo["claims"]["aud"].as_str(), echo["claims"]["rule"].as_str()),
            (Some("orders-api"), Some("orders-write"))
        );
        assert_eq!(echo["claims"]["permissions"], json!(["orders:write"]));

        // Roles, and a rule that forwards plain identity headers: Rampart's, not the client's.
        let res = refused(p, s.get(p, "/admin/users").bearer_auth(&clerk.access_token)).await;
        assert_eq!(res.status(), 403, "{}", p.name());
        let echo = upstream_saw(p, forge(s.get(p, "/admin/users").bearer_auth(&admin.access_token))).await;
        assert_eq!(echo["claims"]["rule"], "admin");
        nothing_forged_arrived(p, &echo, Some(&admin_id));
        assert_eq!(
            (arrived(&echo, "remote-email"), arrived(&echo, "remote-groups")),
            (vec!["root@example.com"], vec!["admin"])
        );
    }
}

#[tokio::test]
async fn a_browser_is_sent_to_sign_in_comes_back_signed_in_and_a_revoked_session_is_refused() {
    let s = Stack::start(Arc::new(rampart_domain::SystemClock)).await;
    let ann = s.app.create_user("ann@example.com", PW, &[]).await;

    for p in &s.proxies {
        // A page load: to the sign-in page, with where the browser was going.
        let original = p.url("/reports/7?tab=items");
        let res = refused(p, as_page_load(s.get(p, "/reports/7?tab=items"))).await;
        assert_eq!(res.status(), 302, "{}", p.name());
        let rd: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
        assert_eq!(res.headers()["location"].to_str().unwrap(), format!("/ui/login?rd={rd}"), "{}", p.name());

        // Signing in (the page does not exist yet: the JSON API in cookie mode, as it will).
        let res = s
            .app
            .post("/v1/auth/login?session=cookie", &json!({"email": "ann@example.com", "password": PW}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        assert!(cookie.starts_with("__Host-rampart_session="), "{cookie}");
        let (_, login) = read_json(res).await;

        // Back where it was going: the upstream sees Ann.
        let echo = upstream_saw(p, as_page_load(s.get(p, "/reports/7?tab=items")).header("cookie", &cookie)).await;
        assert_eq!(echo["path"], "/reports/7?tab=items");
        let claims = &echo["claims"];
        assert_eq!(
            (claims["sub"].as_str(), claims["sid"].as_str()),
            (Some(&*ann.id.0.to_string()), login["session_id"].as_str())
        );
        assert_eq!(claims["amr"], json!(["pwd"]));

        // Signed out: the very next request through the proxy is refused.
        let res = s
            .app
            .client
            .post(s.app.url("/v1/auth/logout"))
            .header("cookie", &cookie)
            .header("x-csrf-token", login["csrf_token"].as_str().unwrap())
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        let res = refused(p, as_page_load(s.get(p, "/reports/7?tab=items")).header("cookie", &cookie)).await;
        assert_eq!(res.status(), 302, "{}: back to the sign-in page", p.name());
        let res = refused(p, s.get(p, "/reports/7").header("cookie", &cookie)).await;
        assert_eq!(res.status(), 401, "{}", p.name());
    }
}

#[tokio::test]
async fn an_mfa_rule_needs_a_fresh_second_factor() {
    // The clock starts 31 s behind, so after the one TOTP step forward it is about now: the
    // upstream checks the assertions' times against its own clock.
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc() - time::Duration::seconds(31)));
    let s = Stack::start(clock.clone()).await;
    let ann = s.app.create_and_login("ann@example.com", PW, &[]).await;

    for p in &s.proxies {
        let res = refused(p, s.get(p, "/pay/now").bearer_auth(&ann.access_token)).await;
        assert_eq!(res.status(), 401, "{}: a password is not enough", p.name());
        let res = refused(p, as_page_load(s.get(p, "/pay/now")).bearer_auth(&ann.access_token)).await;
        assert_eq!(res.status(), 302, "{}", p.name());
        assert!(res.headers()["location"].to_str().unwrap().ends_with("&step_up=1"), "{}", p.name());
    }

    let (secret, _) = enable_totp(&s.app, &ann.access_token, clock.now()).await;
    let mfa = s.app.mfa_token("ann@example.com", PW).await;
    clock.advance(time::Duration::seconds(31));
    let (status, body) = s
        .app
        .post_json("/v1/auth/login/mfa", &json!({"mfa_token": mfa.mfa_token, "code": code_at(&secret, clock.now())}))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    for p in &s.proxies {
        let echo = upstream_saw(p, s.get(p, "/pay/now").bearer_auth(&token)).await;
        assert_eq!(echo["claims"]["rule"], "payments");
        assert!(echo["claims"]["amr"].as_array().unwrap().contains(&json!("mfa")), "{echo}");
    }

    // Six minutes on, the session's factor is no longer fresh (max_auth_age_secs = 300).
    clock.advance(time::Duration::minutes(6));
    let (status, body) = s.app.post_json("/v1/auth/refresh", &json!({"refresh_token": body["refresh_token"]})).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    for p in &s.proxies {
        let res = refused(p, s.get(p, "/pay/now").bearer_auth(&token)).await;
        assert_eq!(res.status(), 401, "{}", p.name());
    }
}

/// The README's nginx and Caddy configurations are the files the proxies above run.
#[test]
fn the_readme_shows_the_configurations_the_tests_run() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for (name, conf) in [("nginx", NGINX_SERVER), ("Caddy", CADDYFILE)] {
        assert!(readme.contains(conf), "the README's {name} configuration differs from the one the tests run:\n{conf}");
    }
}

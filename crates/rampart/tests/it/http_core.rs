//! The HTTP core through the real server: service endpoints, problems, request ids, metrics,
//! and the committed OpenAPI document.

use rampart_testkit::TestApp;
use rampart_wire::{Health, Problem, Ready};
use reqwest::StatusCode;

async fn problem(res: reqwest::Response) -> Problem {
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let header_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let p: Problem = res.json().await.unwrap();
    assert_eq!(p.request_id.as_deref(), Some(header_id.as_str()), "the body names the same request id");
    assert_eq!(p.type_, format!("urn:rampart:problem:{}", p.code));
    p
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Health>().await.unwrap().status, "ok");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Ready = res.json().await.unwrap();
    assert_eq!(ready.status, "ready");
    assert_eq!(ready.checks["database"], "ok");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_does_not_answer() {
    let app = TestApp::spawn().await;
    app.state.store.close().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let p = problem(res).await;
    assert_eq!(p.code, "not_ready");
    assert_eq!(p.status, 503);
    // Liveness is not readiness: the process still answers.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    let p = problem(app.get("/no/such/path").await).await;
    assert_eq!((p.status, p.code.as_str()), (404, "not_found"));
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.headers().contains_key("allow"));
    let p = problem(res).await;
    assert_eq!(p.code, "method_not_allowed");
    // Every answer passes the whole stack, whoever gave it: an API route, a web page, either
    // fallback (the request id and the security headers are the stack's).
    let page = app.client.delete(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
    let answers = [
        (app.get("/no/such/path").await, "not_found"),
        (app.client.delete(app.url("/healthz")).send().await.unwrap(), "method_not_allowed"),
        (page, "method_not_allowed"),
    ];
    for (res, code) in answers {
        let url = res.url().clone();
        assert!(res.headers().contains_key("x-request-id"), "{url}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(problem(res).await.code, code, "{url}");
    }
}

#[tokio::test]
async fn request_ids_are_kept_when_well_formed_and_generated_otherwise() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "client-trace:42/a.b_c").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-trace:42/a.b_c");

    for bad in ["has spaces", "<script>", &"x".repeat(200)] {
        let res = app.client.get(app.url("/no-such")).header("x-request-id", bad).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, bad);
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 7, "generated ids are UUIDv7");
        assert_eq!(problem(res).await.request_id.unwrap(), id);
    }
    let a = app.get("/healthz").await.headers()["x-request-id"].clone();
    let b = app.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::spawn_with(rampart_testkit::TestDb::fresh().await, |c| c.server.body_limit_bytes = 1024).await;
    let res = app.client.post(app.url("/healthz")).body(vec![b'x'; 4096]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(res).await.code, "payload_too_large");
}

/// The configured limit is the extractors' limit too, above axum's own default of 2 MiB: a
/// 2.5 MB sign-in body (padded JSON) within a 3 MiB limit is read and judged, not refused.
#[tokio::test]
async fn bodies_within_a_limit_above_two_mib_reach_the_handler() {
    let app =
        TestApp::spawn_with(rampart_testkit::TestDb::fresh().await, |c| c.server.body_limit_bytes = 3 << 20).await;
    let login = r#"{"email":"nobody@example.com","password":"not the password"}"#;
    let padded = format!("{login}{}", " ".repeat(2_500_000));
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(res).await.code, "invalid_credentials");
    let over = format!("{login}{}", " ".repeat(3 << 20));
    let res = app.client.post(app.url("/v1/auth/login")).body(over).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Below the router (issue 25): an over-long request target and an oversized header section
/// are problem documents with the request id, not hyper's empty answers; both limits are
/// exact (one byte under passes).
#[tokio::test]
async fn long_targets_get_414_and_large_headers_431_as_problems() {
    let app = TestApp::spawn().await;
    let target = |len: usize| format!("/healthz?pad={}", "a".repeat(len - "/healthz?pad=".len()));
    let res = app.client.get(app.url(&target(8 * 1024 + 1))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(problem(res).await.code, "uri_too_long");
    assert_eq!(app.client.get(app.url(&target(8 * 1024))).send().await.unwrap().status(), StatusCode::OK);

    // Ten headers of 3.5 KiB: 35 KiB, over the 32 KiB limit; nine are not.
    let value = "v".repeat(3584);
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..10 {
        req = req.header(format!("x-pad-{i}"), &value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(problem(res).await.code, "headers_too_large");
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..8 {
        req = req.header(format!("x-pad-{i}"), &value);
    }
    assert_eq!(req.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/definitely/not/here/12345").await;
    let res =
        app.client.get(app.url("/metrics")).header("accept", "application/openmetrics-text").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"rampart_http_requests_total{method="GET",route="/healthz",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"rampart_http_request_duration_seconds_bucket{le="#), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(!text.contains("12345"), "raw paths never become labels");
    assert!(
        text.contains(r#"rampart_security_events_total{action="system.config.loaded",outcome="success"} 1"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
}

/// Fails when `docs/openapi.json` differs from what the code generates.
/// Update it with `RAMPART_BLESS=1 cargo test --test it openapi`.
#[tokio::test]
async fn openapi_document_matches_the_committed_copy() {
    let app = TestApp::spawn().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let served = res.text().await.unwrap();
    let generated = rampart_server::openapi::render(&rampart_server::openapi_doc());
    assert_eq!(served, generated, "the served document is the generated one");

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("RAMPART_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the code; run `RAMPART_BLESS=1 cargo test --test it openapi` and commit it"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Generated clients name their methods by operationId: each is one operation's. (The
    // gateway's doors answer every method with one handler, for proxies, not clients.)
    let mut seen = std::collections::BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/authz/") {
            continue;
        }
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId {id} names both {other} and {method} {path}");
            }
        }
    }
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
}

#[tokio::test]
async fn users_created_through_the_service_hash_with_argon2id_and_record_an_event() {
    let app = TestApp::spawn().await;
    let user = app.create_user("Admin@Example.com", "a long enough password", &["admin"]).await;
    assert_eq!(user.email, "admin@example.com");
    assert_eq!(user.roles, ["admin"]);
    let phc = app.state.store.password_hash(user.id).await.unwrap().unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains("a long enough password"));
    let ev = app.state.store.recent_events(1).await.unwrap().remove(0).event;
    assert_eq!(ev.action, rampart_domain::Action::UserCreated);
    assert_eq!(ev.resource.unwrap().id.unwrap(), user.id.to_string());
    assert!(!ev.details.to_string().contains("password"));
}

#[tokio::test]
async fn the_server_stops_gracefully() {
    let app = TestApp::spawn().await;
    let url = app.url("/healthz");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
    app.stop().await.unwrap();
    assert!(reqwest::get(&url).await.is_err(), "nothing listens after shutdown");
}

/// Every security-event kind is emitted somewhere in the code (issue 7's coverage rule): a new
/// `Action` nobody records, or a feature that lost its event, fails here.
#[test]
fn every_event_kind_is_emitted_by_some_code_path() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = String::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("tests") && !path.ends_with("target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("event.rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    // `Action::Login` must appear as itself, not as the start of `Action::LoginLocked`.
    let used = |name: &str| {
        sources
            .match_indices(name)
            .any(|(i, m)| sources[i + m.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '_'))
    };
    let silent: Vec<&str> =
        rampart_domain::Action::ALL.iter().filter(|a| !used(&format!("Action::{a:?}"))).map(|a| a.as_str()).collect();
    assert!(silent.is_empty(), "actions no code path records: {silent:?}");
}

//! The production middleware stack, exercised with test-only routes (a slow one, a panicking
//! one, one that reads JSON and sets a cookie), so limits, errors, redaction and shutdown are
//! checked without adding such routes to the real API.

use crate::limits::ApiJson;
use crate::router::with_core_layers;
use crate::{serve_gracefully, telemetry};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use rampart_config::Config;
use rampart_core::metrics::Metrics;
use rampart_domain::Secret;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LoginLike {
    email: String,
    password: Secret<String>,
    refresh_token: Option<Secret<String>>,
}

async fn login_like(ApiJson(body): ApiJson<LoginLike>) -> impl IntoResponse {
    // A careless handler logging its whole input still prints no secret.
    tracing::info!(?body, "handler saw the body");
    (
        [
            (header::SET_COOKIE, "__Host-rampart_session=setcookie-secret-value; Path=/; Secure; HttpOnly"),
            (header::LOCATION, "https://app.example/callback?code=location-code-value&state=abc"),
        ],
        "ok",
    )
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(400)).await;
    "done"
}

async fn very_slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(120)).await;
    "never"
}

async fn boom() -> &'static str {
    panic!("secret internal state: db password is hunter2")
}

fn app(config: &Config) -> Router {
    let routes = Router::new()
        .route("/login", post(login_like))
        .route("/slow", get(slow))
        .route("/very-slow", get(very_slow))
        .route("/boom", get(boom));
    with_core_layers(routes, &config.settings().unwrap().server, Arc::new(Metrics::new("sqlite")))
}

async fn body_json(res: axum::response::Response) -> serde_json::Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}

fn login_request(body: &str) -> Request<Body> {
    Request::post("/login").header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_at_trace_level_never_contain_credentials_but_always_the_request_id() {
    let captured = Captured::default();
    let sink = captured.clone();
    let dispatch = telemetry::dispatch("trace", true, move || sink.clone()).unwrap();
    let _guard = tracing::dispatcher::set_default(&dispatch);

    let secrets = [
        "eyJhbGciOiJFZERTQSJ9.jwt-secret-payload.sig",
        "cookie-secret-value",
        "setcookie-secret-value",
        "rk_apikeysecretvalue0123456789",
        "csrf-secret-value",
        "query-secret-token",
        "query-secret-password",
        "body-password-secret",
        "body-refresh-secret",
        "custom-auth-header-secret",
        "referer-reset-token",
        "encoded-name-password",
        "fragment-access-token",
        "location-code-value",
    ];
    // The query names the security review found logged in clear (issue 15, item 18).
    let named =
        ["pwd", "pass", "otp", "totp", "jwt", "csrf", "sid", "sig", "signature", "credential", "X-Amz-Signature"];
    let named_values: Vec<String> = named.iter().map(|n| format!("leaked-{}-value", n.to_lowercase())).collect();
    let extra_query: String = named.iter().zip(&named_values).map(|(n, v)| format!("&{n}={v}")).collect();
    let req = Request::post(format!(
        "/login?token=query-secret-token&password=query-secret-password&limit=5&%70assword=encoded-name-password{extra_query}"
    ))
    .header(header::CONTENT_TYPE, "application/json")
    .header(header::AUTHORIZATION, format!("Bearer {}", secrets[0]))
    .header(header::COOKIE, format!("__Host-rampart_session={}", secrets[1]))
    .header("x-api-key", secrets[3])
    .header("x-csrf-token", secrets[4])
    .header("x-upstream-auth", secrets[9])
    .header("x-request-id", "redaction-test-1")
    .header(
        header::REFERER,
        "https://app.example/reset?token=referer-reset-token&step=2#access_token=fragment-access-token",
    )
    .body(Body::from(
        serde_json::json!({"email": "a@example.com", "password": secrets[7], "refresh_token": secrets[8]}).to_string(),
    ))
    .unwrap();
    let res = app(&Config::default()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::SET_COOKIE).is_some());

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("handler saw the body"), "the handler's log line is there: {out}");
    assert!(out.contains("request received") && out.contains("response headers"), "headers were logged: {out}");
    for secret in secrets.iter().copied().chain(named_values.iter().map(String::as_str)) {
        assert!(!out.contains(secret), "log output leaks {secret:?}:\n{out}");
    }
    assert!(out.contains("[redacted]"));
    assert!(out.contains("limit=5"), "non-secret query values are kept");
    assert!(out.contains("step=2") && out.contains("state=abc"), "URL headers keep their harmless parts: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 4);
    for line in lines.iter().filter(|l| l.contains("\"spans\"")) {
        assert!(line.contains("redaction-test-1"), "a line of the request without its id: {line}");
    }
    let in_request = lines.iter().filter(|l| l.contains("handler saw the body") || l.contains("request completed"));
    assert_eq!(in_request.clone().count(), 2);
    for line in in_request {
        assert!(line.contains("redaction-test-1"), "{line}");
    }
}

#[tokio::test]
async fn declared_oversized_bodies_get_413_before_reading() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 64;
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "1000000")
        .body(Body::from("{}"))
        .unwrap();
    let res = app(&config).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json");
    let p = body_json(res).await;
    assert_eq!(p["code"], "payload_too_large");
    assert!(p["detail"].as_str().unwrap().contains("64 bytes"));
}

#[tokio::test]
async fn streamed_oversized_bodies_get_413_too() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 64;
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok("{\"email\":\"".into()), Ok("a".repeat(200)), Ok("\"}".into())];
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let res = app(&config).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body_json(res).await["code"], "payload_too_large");
}

#[tokio::test]
async fn json_rejections_are_problems_with_stable_codes() {
    let config = Config::default();
    let cases = [
        ("{not json", "invalid_json", StatusCode::BAD_REQUEST),
        (r#"{"email":"a@b.c","password":"x","admin":true}"#, "validation_failed", StatusCode::BAD_REQUEST),
        (r#"{"email":"a@b.c"}"#, "validation_failed", StatusCode::BAD_REQUEST),
        (r#"{"email":5,"password":"x"}"#, "validation_failed", StatusCode::BAD_REQUEST),
    ];
    for (body, code, status) in cases {
        let res = app(&config).oneshot(login_request(body)).await.unwrap();
        assert_eq!(res.status(), status, "{body}");
        let p = body_json(res).await;
        assert_eq!(p["code"], code, "{body}: {p}");
        assert_eq!(p["status"], status.as_u16());
    }
    let no_type = Request::post("/login").body(Body::from("{}")).unwrap();
    let res = app(&config).oneshot(no_type).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body_json(res).await["code"], "unsupported_media_type");
}

#[tokio::test(start_paused = true)]
async fn slow_requests_are_cut_off_with_a_problem() {
    let mut config = Config::default();
    config.server.request_timeout_secs = 5;
    let res = app(&config).oneshot(Request::get("/very-slow").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("x-request-id"));
    let p = body_json(res).await;
    assert_eq!(p["code"], "request_timeout");
    assert!(p["detail"].as_str().unwrap().contains("5 s"));
}

/// A client that announces more body than it sends is the client's fault: 408 `body_timeout`
/// (and the connection closes), not the 503 of a slow service.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_arrives_is_a_408() {
    let mut config = Config::default();
    config.server.request_timeout_secs = 5;
    let first: Result<bytes::Bytes, std::io::Error> = Ok(bytes::Bytes::from_static(b"{\"email\": "));
    let stalled = futures::StreamExt::chain(futures::stream::iter([first]), futures::stream::pending());
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "100")
        .body(Body::from_stream(stalled))
        .unwrap();
    let res = app(&config).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(res.headers()["connection"], "close");
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p = body_json(res).await;
    assert_eq!(p["code"], "body_timeout");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_that_reveals_nothing() {
    let res = app(&Config::default()).oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let p = body_json(res).await;
    assert_eq!(p["code"], "internal_error");
    assert_eq!(p["request_id"], id.as_str());
    assert!(!p.to_string().contains("hunter2"));
}

/// The test app behind `serve_gracefully` on a loopback port: its address, the shutdown
/// trigger, and the server task.
async fn serve_with_grace(
    grace: Duration,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let server = tokio::spawn(serve_gracefully(listener, app(&Config::default()).into_make_service(), shutdown, grace));
    (addr, tx, server)
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, tx, server) = serve_with_grace(Duration::from_secs(10)).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("done"), "{response}");
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn graceful_shutdown_gives_up_after_the_grace_period() {
    let (addr, tx, server) = serve_with_grace(Duration::from_millis(200)).await;
    let client = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /very-slow HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops within the grace")
        .unwrap()
        .unwrap();
    client.abort();
}

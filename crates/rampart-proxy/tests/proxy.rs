//! The proxy end to end on loopback: a real upstream, an axum front door calling
//! `Proxy::forward` as the gateway will, and a plain client (or a WebSocket client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use futures::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use rampart_proxy::{
    BreakerSettings, BreakerState, Proxy, ProxySettings, Transition, TransitionHook, Upstream, UpstreamSettings,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// An upstream that answers with what it received: method, target, headers, body length.
async fn echo_upstream() -> SocketAddr {
    upstream(|req: http::Request<hyper::body::Incoming>| async move {
        let (head, body) = req.into_parts();
        let len = body.collect().await.unwrap().to_bytes().len();
        let seen = serde_json::json!({
            "method": head.method.as_str(),
            "target": head.uri.to_string(),
            "headers": echo_headers(&head.headers),
            "body_len": len,
        });
        http::Response::builder()
            .header("content-type", "application/json")
            .header("connection", "x-upstream-hop")
            .header("x-upstream-hop", "must not reach the client")
            .header("keep-alive", "timeout=5")
            .header("x-upstream-end", "kept")
            .body(full(seen.to_string()))
            .unwrap()
    })
    .await
}

/// Every value the echo upstream saw for `name`.
fn seen(json: &serde_json::Value, name: &str) -> Vec<String> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == name)
        .map(|p| p[1].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn hop_by_hop_and_client_rampart_headers_never_reach_the_upstream() {
    let up = echo_upstream().await;
    let upstream = Upstream::new("echo", &format!("http://{up}/base/"), UpstreamSettings::default()).unwrap();
    let proxy = Proxy::new(ProxySettings::default()).unwrap();
    let extra = vec![
        (HeaderName::from_static("x-rampart-jwt-assertion"), HeaderValue::from_static("signed-by-rampart")),
        (HeaderName::from_static("remote-user"), HeaderValue::from_static("alice")),
    ];
    let front = front(proxy, upstream, extra).await;

    let res = send(
        front,
        "POST",
        "/orders/7?expand=lines",
        &[
            ("host", "app.example.com"),
            ("connection", "keep-alive, x-client-hop"),
            ("x-client-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "trailers"),
            ("x-rampart-jwt-assertion", "forged"),
            ("X-Rampart-User", "admin"),
            ("accept", "application/json"),
        ],
        full("hello"),
    )
    .await;
    assert_eq!(res.status, 200);
    let json = res.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["target"], "/base/orders/7?expand=lines", "joined to the base path");
    assert_eq!(json["body_len"], 5);
    for gone in ["connection", "x-client-hop", "keep-alive", "proxy-authorization", "te", "x-rampart-user"] {
        assert!(seen(&json, gone).is_empty(), "{gone} reached the upstream: {json}");
    }
    assert_eq!(seen(&json, "x-rampart-jwt-assertion"), ["signed-by-rampart"], "only the caller's copy");
    assert_eq!(seen(&json, "remote-user"), ["alice"]);
    assert_eq!(seen(&json, "accept"), ["application/json"]);
    assert_eq!(seen(&json, "host"), [up.to_string()], "Host is the upstream's");
    assert_eq!(seen(&json, "x-forwarded-host"), ["app.example.com"]);
    assert_eq!(seen(&json, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&json, "x-forwarded-for"), ["127.0.0.1"]);

    // And on the way back.
    assert_eq!(res.header("x-upstream-end"), Some("kept"));
    assert_eq!(res.header("x-upstream-hop"), None);
    assert_eq!(res.header("keep-alive"), None);
}

#[tokio::test]
async fn x_forwarded_for_is_appended_and_host_kept_when_asked() {
    let up = echo_upstream().await;
    let settings = UpstreamSettings { preserve_host: true, ..UpstreamSettings::default() };
    let (front, _) = proxied(up, settings).await;
    let res = send(
        front,
        "GET",
        "/",
        &[("host", "app.example.com"), ("x-forwarded-for", "198.51.100.1, 198.51.100.2")],
        empty(),
    )
    .await;
    let json = res.json();
    assert_eq!(seen(&json, "x-forwarded-for"), ["198.51.100.1, 198.51.100.2, 127.0.0.1"]);
    assert_eq!(seen(&json, "host"), ["app.example.com"]);
}

#[tokio::test]
async fn x_forwarded_for_is_replaced_at_the_edge() {
    let up = echo_upstream().await;
    let upstream = Upstream::new("echo", &format!("http://{up}"), UpstreamSettings::default()).unwrap();
    let settings = ProxySettings { forwarded_for: rampart_proxy::ForwardedFor::Replace, ..ProxySettings::default() };
    let front = front(Proxy::new(settings).unwrap(), upstream, vec![]).await;
    let res = send(front, "GET", "/", &[("x-forwarded-for", "10.0.0.1")], empty()).await;
    assert_eq!(seen(&res.json(), "x-forwarded-for"), ["127.0.0.1"]);
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    // A WebSocket echo server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        ws.send(msg).await.unwrap();
                    } else if msg.is_close() {
                        break;
                    }
                }
            });
        }
    });
    let (front, upstream) = proxied(ws_addr, UpstreamSettings::default()).await;

    let stream = TcpStream::connect(front).await.unwrap();
    let (mut ws, res) = tokio_tungstenite::client_async(format!("ws://{front}/socket"), stream).await.unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..20 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(format!("hello {i}")));
    }
    let big = vec![7u8; 1024 * 1024];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data(), big);
    ws.close(None).await.unwrap();
    // The tunnel holds no concurrency slot.
    assert_eq!(upstream.in_flight(), 0);
}

/// An upstream that fails with 500 while `failing` is set, counting hits.
async fn flaky_upstream(failing: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> SocketAddr {
    upstream(move |_req| {
        let (failing, hits) = (failing.clone(), hits.clone());
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let status = if failing.load(Ordering::SeqCst) { 500 } else { 200 };
            http::Response::builder().status(status).body(full("upstream says so")).unwrap()
        }
    })
    .await
}

fn recording_hook() -> (TransitionHook, Arc<Mutex<Vec<Transition>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: TransitionHook = {
        let seen = seen.clone();
        Arc::new(move |name: &str, t: &Transition| {
            assert_eq!(name, "flaky");
            seen.lock().unwrap().push(t.clone());
        })
    };
    (hook, seen)
}

fn states(seen: &Mutex<Vec<Transition>>) -> Vec<(BreakerState, BreakerState)> {
    seen.lock().unwrap().iter().map(|t| (t.from, t.to)).collect()
}

#[tokio::test]
async fn breaker_opens_on_5xx_refuses_without_upstream_hits_then_probes_and_closes() {
    use BreakerState::*;
    let failing = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let up = flaky_upstream(failing.clone(), hits.clone()).await;
    let settings = UpstreamSettings {
        breaker: BreakerSettings {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(5),
            half_open_probes: 1,
            ..BreakerSettings::default()
        },
        ..UpstreamSettings::default()
    };
    let (hook, transitions) = recording_hook();
    let upstream = Upstream::with_hook("flaky", &format!("http://{up}"), settings, hook).unwrap();
    let front = front(Proxy::new(ProxySettings::default()).unwrap(), upstream.clone(), vec![]).await;

    // Three 500s pass through as they are, and open the breaker.
    for _ in 0..3 {
        let res = get(front, "/").await;
        assert_eq!(res.status, 500);
        assert_eq!(res.body, "upstream says so");
    }
    assert_eq!(upstream.state(), Open);
    assert_eq!(states(&transitions), [(Closed, Open)]);
    assert_eq!(transitions.lock().unwrap()[0].ejected_for, Some(Duration::from_secs(1)));

    // While open: 503 at once with Retry-After, and the upstream is not asked.
    for _ in 0..5 {
        let res = get(front, "/").await;
        assert_eq!(res.status, 503);
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.problem().code, "upstream_unavailable");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Half-open: the probe fails, and the breaker opens again for twice as long.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(upstream.state(), HalfOpen);
    assert_eq!(get(front, "/").await.status, 500);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(upstream.state(), Open);
    assert_eq!(states(&transitions), [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]);
    assert_eq!(transitions.lock().unwrap()[2].ejected_for, Some(Duration::from_secs(2)));
    assert_eq!(get(front, "/").await.status, 503);
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    // The upstream recovers: the next probe succeeds and closes the breaker.
    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2050)).await;
    assert_eq!(get(front, "/").await.status, 200);
    assert_eq!(upstream.state(), Closed);
    assert_eq!(
        states(&transitions),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    for _ in 0..5 {
        assert_eq!(get(front, "/").await.status, 200);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 10);
}

/// An address nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn breaker_opens_on_refused_connections() {
    let addr = closed_port().await;
    let settings = UpstreamSettings {
        max_retries: 0,
        breaker: BreakerSettings { consecutive_failures: 2, ..BreakerSettings::default() },
        ..UpstreamSettings::default()
    };
    let (front, upstream) = proxied(addr, settings).await;
    for _ in 0..2 {
        let res = get(front, "/").await;
        assert_eq!(res.status, 502);
        assert_eq!(res.problem().code, "upstream_unavailable");
    }
    assert_eq!(upstream.state(), BreakerState::Open);
    let res = get(front, "/").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("30"), "the default base ejection");
}

/// Points an upstream at a port that starts listening only after `delay`, counting the
/// requests it then serves.
async fn late_upstream(delay: Duration, hits: Arc<AtomicUsize>) -> SocketAddr {
    let addr = closed_port().await;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        serve_upstream(listener, move |_req| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                http::Response::new(full("late but here"))
            }
        })
        .await;
    });
    addr
}

#[tokio::test]
async fn a_get_is_retried_after_a_connection_failure() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = late_upstream(Duration::from_millis(300), hits.clone()).await;
    let settings =
        UpstreamSettings { max_retries: 2, retry_backoff: Duration::from_secs(1), ..UpstreamSettings::default() };
    let (front, _) = proxied(addr, settings).await;
    // The first try is refused (nothing listens yet); the retry a second later gets through.
    let res = get(front, "/").await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, "late but here");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = late_upstream(Duration::from_millis(300), hits.clone()).await;
    // A retry would come a second later, when the upstream listens, and succeed.
    let settings =
        UpstreamSettings { max_retries: 2, retry_backoff: Duration::from_secs(1), ..UpstreamSettings::default() };
    let (front, _) = proxied(addr, settings).await;
    let res = send(front, "POST", "/", &[], full("pay once")).await;
    assert_eq!(res.status, 502);
    assert_eq!(res.problem().code, "upstream_unavailable");
    // A body-less POST is not retried either.
    let res = send(front, "POST", "/", &[], empty()).await;
    assert_eq!(res.status, 502);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the upstream later");
    // It is up now: requests go through.
    assert_eq!(send(front, "POST", "/", &[], full("now")).await.status, 200);
}

#[tokio::test]
async fn the_concurrency_limit_answers_503_overloaded_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let hits = Arc::new(AtomicUsize::new(0));
    let up = {
        let (gate, hits) = (gate.clone(), hits.clone());
        upstream(move |_req| {
            let (gate, hits) = (gate.clone(), hits.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                http::Response::new(full("done"))
            }
        })
        .await
    };
    let settings = UpstreamSettings { max_concurrent: 2, ..UpstreamSettings::default() };
    let (front, upstream) = proxied(up, settings).await;

    let held: Vec<_> = (0..2).map(|_| tokio::spawn(get(front, "/slow"))).collect();
    while hits.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(upstream.in_flight(), 2);
    let res = get(front, "/").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(res.problem().code, "overloaded");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "refused without queueing");

    gate.add_permits(3);
    for h in held {
        assert_eq!(h.await.unwrap().status, 200);
    }
    assert_eq!(get(front, "/").await.status, 200);
    assert_eq!(upstream.in_flight(), 0);
    assert_eq!(upstream.state(), BreakerState::Closed, "load shedding is not an upstream failure");
}

#[tokio::test]
async fn a_slow_first_byte_answers_504() {
    let up = upstream(|_req| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        http::Response::new(full("too late"))
    })
    .await;
    let settings = UpstreamSettings {
        first_byte_timeout: Duration::from_millis(200),
        breaker: BreakerSettings { consecutive_failures: 1, ..BreakerSettings::default() },
        ..UpstreamSettings::default()
    };
    let (front, upstream) = proxied(up, settings).await;
    let res = get(front, "/").await;
    assert_eq!(res.status, 504);
    let p = res.problem();
    assert_eq!(p.code, "upstream_timeout");
    assert!(p.detail.contains("first byte"), "{}", p.detail);
    assert_eq!(upstream.state(), BreakerState::Open, "a timeout counts as a failure");
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_off_after_the_idle_timeout() {
    let up = upstream(|_req| async {
        let (mut tx, body) = futures::channel::mpsc::channel::<Result<http_body::Frame<bytes::Bytes>, _>>(1);
        tokio::spawn(async move {
            tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"first chunk")))).await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            let _ = tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"too late")))).await;
        });
        let body =
            http_body_util::StreamBody::new(body.map(|r: Result<_, std::convert::Infallible>| r.map_err(Into::into)));
        http::Response::new(BodyExt::boxed_unsync(body))
    })
    .await;
    let settings = UpstreamSettings { idle_timeout: Duration::from_millis(200), ..UpstreamSettings::default() };
    let (front, upstream) = proxied(up, settings).await;
    let res = client().request(http::Request::get(format!("http://{front}/")).body(empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first chunk");
    let rest = tokio::time::timeout(Duration::from_secs(2), body.collect()).await.expect("cut off in time");
    assert!(rest.is_err(), "the body ends in an error, not quietly");
    assert_eq!(upstream.in_flight(), 0, "the slot is given back");
}

/// An upstream that declares `declared` bytes, sends "first chunk" and then nothing for 3 s.
async fn stalling_upstream(declared: usize) -> SocketAddr {
    upstream(move |_req| async move {
        let (mut tx, body) = futures::channel::mpsc::channel::<Result<http_body::Frame<bytes::Bytes>, _>>(1);
        tokio::spawn(async move {
            tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"first chunk")))).await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            let _ = tx.send(Ok(http_body::Frame::data(bytes::Bytes::from(vec![b'x'; declared - 11])))).await;
        });
        let body =
            http_body_util::StreamBody::new(body.map(|r: Result<_, std::convert::Infallible>| r.map_err(Into::into)));
        http::Response::builder()
            .header("content-length", declared.to_string())
            .body(BodyExt::boxed_unsync(body))
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn a_small_answer_is_read_whole_before_it_is_passed_on() {
    // Declared and small: the proxy reads it all first, so a stall mid-body is the upstream's
    // failure, answered 504 before anything reached the client, and counted by the breaker.
    let settings = UpstreamSettings {
        idle_timeout: Duration::from_millis(200),
        breaker: BreakerSettings { consecutive_failures: 1, ..BreakerSettings::default() },
        ..UpstreamSettings::default()
    };
    let (front, upstream) = proxied(stalling_upstream(64).await, settings).await;
    let res = tokio::time::timeout(Duration::from_secs(2), get(front, "/")).await.expect("answered in time");
    assert_eq!(res.status, 504);
    let p = res.problem();
    assert_eq!(p.code, "upstream_timeout");
    assert!(p.detail.contains("idle"), "{}", p.detail);
    assert_eq!(upstream.in_flight(), 0, "the slot is given back");
    assert_eq!(upstream.state(), BreakerState::Open, "a body that stalls counts as a failure");

    // A whole small answer holds no slot once its head is out, read or not by the client.
    let (front, upstream) = proxied(echo_upstream().await, UpstreamSettings::default()).await;
    let res = client().request(http::Request::get(format!("http://{front}/x")).body(empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.in_flight(), 0, "read whole: nothing left in flight");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["target"], "/x");
}

#[tokio::test]
async fn a_large_answer_streams_with_its_head_first() {
    // Declared but over the read-ahead size: the head comes at once, the body as it arrives.
    let settings = UpstreamSettings { idle_timeout: Duration::from_millis(200), ..UpstreamSettings::default() };
    let (front, upstream) = proxied(stalling_upstream(1024 * 1024).await, settings).await;
    let res = tokio::time::timeout(
        Duration::from_secs(2),
        client().request(http::Request::get(format!("http://{front}/")).body(empty()).unwrap()),
    )
    .await
    .expect("head in time")
    .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "first chunk");
    let rest = tokio::time::timeout(Duration::from_secs(2), body.collect()).await.expect("cut off in time");
    assert!(rest.is_err(), "the body ends in an error, not quietly");
    assert_eq!(upstream.in_flight(), 0, "the slot is given back");
}

#[tokio::test]
async fn an_upstream_that_stops_reading_the_upload_answers_504() {
    // Accepts the connection, reads the head, then reads nothing more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    });
    let settings = UpstreamSettings { idle_timeout: Duration::from_millis(300), ..UpstreamSettings::default() };
    let (front, _) = proxied(addr, settings).await;
    let produced = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let req = http::Request::post(format!("http://{front}/"))
        .body(Generated::new(64 * 1024 * 1024, produced).boxed_unsync())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), client().request(req)).await.expect("answered in time");
    let res = res.unwrap();
    assert_eq!(res.status(), 504);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let p: rampart_wire::Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(p.code, "upstream_timeout");
    assert!(p.detail.contains("idle"), "{}", p.detail);
}

#[tokio::test]
async fn invalid_upstreams_are_refused_with_their_name() {
    let bad = |url: &str| Upstream::new("orders", url, UpstreamSettings::default()).unwrap_err().to_string();
    assert!(bad("ftp://127.0.0.1").contains("orders"));
    assert!(bad("127.0.0.1:8000").contains("invalid base URL"));
    assert!(bad("http://127.0.0.1:8000/?q=1").contains("query"));
    let settings = UpstreamSettings { max_concurrent: 0, ..UpstreamSettings::default() };
    let e = Upstream::new("orders", "http://127.0.0.1:8000", settings).unwrap_err().to_string();
    assert!(e.contains("max_concurrent"), "{e}");
}

//! The proxy's own connections to a plain `http://` upstream: reused across requests, dropped
//! when idle too long, a connection the upstream closed while idle never costs a request its
//! answer, and one that breaks off mid-answer is never reused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_proxy::{Proxy, ProxySettings, Upstream, UpstreamSettings};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Connections an upstream has accepted, and how many of them have ended.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    ended: AtomicUsize,
}

impl Counts {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }
}

/// A keep-alive hyper upstream counting its connections: `/small` answers 5 bytes, `/empty`
/// 204, `/slow` 5 bytes after 50 ms, `/large` 256 KiB (streamed through the proxy), anything else echoes the body's length.
async fn counting_upstream() -> (SocketAddr, Arc<Counts>) {
    listen(|stream, c| async move {
        let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let res = match req.uri().path() {
                "/small" => http::Response::new(full("small")),
                "/slow" => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    http::Response::new(full("small"))
                }
                "/empty" => http::Response::builder().status(204).body(empty()).unwrap(),
                "/large" => http::Response::new(full(vec![b'x'; 256 * 1024])),
                _ => {
                    let len = req.into_body().collect().await.unwrap().to_bytes().len();
                    http::Response::new(full(len.to_string()))
                }
            };
            Ok::<_, Infallible>(res)
        });
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        c.ended.fetch_add(1, Ordering::SeqCst);
    })
    .await
}

/// A loopback upstream counting the connections it accepts; each is served by `serve` on its
/// own task.
async fn listen<F, Fut>(serve: F) -> (SocketAddr, Arc<Counts>)
where
    F: Fn(tokio::net::TcpStream, Arc<Counts>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            c.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, c.clone()));
        }
    });
    (addr, counts)
}

async fn proxied_with(addr: SocketAddr, proxy: ProxySettings) -> (SocketAddr, Upstream) {
    let upstream = Upstream::new("test", &format!("http://{addr}"), UpstreamSettings::default()).unwrap();
    (front(Proxy::new(proxy).unwrap(), upstream.clone(), vec![]).await, upstream)
}

/// Waits (up to 2 s) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 2 s");
}

#[tokio::test]
async fn one_connection_carries_request_after_request() {
    let (up, counts) = counting_upstream().await;
    let (front, upstream) = proxied_with(up, ProxySettings::default()).await;
    for _ in 0..10 {
        let res = get(front, "/small").await;
        assert_eq!((res.status.as_u16(), &res.body[..]), (200, &b"small"[..]));
    }
    for _ in 0..3 {
        assert_eq!(get(front, "/empty").await.status, 204);
        let res = send(front, "POST", "/upload", &[], full(vec![b'y'; 1000])).await;
        assert_eq!(res.body, "1000");
    }
    assert_eq!(counts.accepted(), 1, "small answers give their connection back at once");

    // A streamed answer gives its connection back once the client has read it all (its own
    // task drives it meanwhile), so the request after it finds it in the pool.
    for _ in 0..3 {
        let res = get(front, "/large").await;
        assert_eq!(res.body.len(), 256 * 1024);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(get(front, "/small").await.body, "small");
    }
    assert_eq!(counts.accepted(), 1, "streamed answers give their connection back too");
    assert_eq!(upstream.in_flight(), 0);
}

#[tokio::test]
async fn concurrent_requests_open_connections_that_the_pool_then_keeps() {
    let (up, counts) = counting_upstream().await;
    let settings = ProxySettings { pool_max_idle_per_host: 2, ..ProxySettings::default() };
    let (front, _) = proxied_with(up, settings).await;
    let burst = || futures::future::join_all((0..6).map(|_| get(front, "/slow")));
    for res in burst().await {
        assert_eq!(res.body, "small");
    }
    let opened = counts.accepted();
    assert!(opened >= 2, "six at once need more than one connection ({opened})");
    // At most two are kept: the others are closed as they come back.
    eventually("the surplus closed", || counts.ended() >= opened - 2).await;
    for _ in 0..4 {
        assert_eq!(get(front, "/small").await.body, "small");
    }
    assert_eq!(counts.accepted(), opened, "one after the other, the kept ones serve");
}

#[tokio::test]
async fn an_idle_connection_expires_and_is_closed() {
    let (up, counts) = counting_upstream().await;
    let settings = ProxySettings { pool_idle_timeout: Duration::from_millis(150), ..ProxySettings::default() };
    let (front, _) = proxied_with(up, settings).await;
    assert_eq!(get(front, "/small").await.body, "small");
    assert_eq!(get(front, "/small").await.body, "small");
    assert_eq!(counts.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(front, "/small").await.body, "small");
    assert_eq!(counts.accepted(), 2, "the expired connection is not used");
    eventually("the expired connection closed", || counts.ended() == 1).await;
}

/// One request as a raw upstream reads it: its request line and body (by Content-Length).
/// `None` when the connection ends first.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((head.lines().next().unwrap_or_default().to_owned(), body));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What a raw upstream received: request line and body, in order.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A raw upstream whose every connection serves `answered` requests (200 `ok`, keep-alive
/// announced) and then, after `linger`, closes; with `read_last`, it first reads one more
/// request and closes without answering it (an upstream closing just as a request came).
async fn closing_upstream(answered: usize, linger: Duration, read_last: bool) -> (SocketAddr, Seen, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let counts = Arc::new(Counts::default());
    let (s, c) = (seen.clone(), counts.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            c.accepted.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..answered {
                    let Some(req) = read_request(&mut stream, &mut buf).await else { return };
                    s.lock().unwrap().push(req);
                    let answer = b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok";
                    stream.write_all(answer).await.unwrap();
                }
                if read_last && let Some(req) = read_request(&mut stream, &mut buf).await {
                    s.lock().unwrap().push(req);
                }
                tokio::time::sleep(linger).await;
                drop(stream);
            });
        }
    });
    (addr, seen, counts)
}

fn lines(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|(line, body)| format!("{line} {}", String::from_utf8_lossy(body))).collect()
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_costs_no_answer() {
    // Each connection answers once and is closed by the upstream 20 ms later, while pooled.
    let (up, seen, counts) = closing_upstream(1, Duration::from_millis(20), false).await;
    let (front, upstream) = proxied_with(up, ProxySettings::default()).await;
    assert_eq!(get(front, "/one").await.body, "ok");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let res = get(front, "/two").await;
    assert_eq!((res.status.as_u16(), &res.body[..]), (200, &b"ok"[..]), "no 502 for a stale connection");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let res = send(front, "POST", "/three", &[], full("body three")).await;
    assert_eq!(res.status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let res = send(front, "POST", "/four", &[], full("body four")).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        lines(&seen),
        [
            "GET /one HTTP/1.1 ",
            "GET /two HTTP/1.1 ",
            "POST /three HTTP/1.1 body three",
            "POST /four HTTP/1.1 body four"
        ],
        "each request reached the upstream exactly once"
    );
    assert_eq!(counts.accepted(), 4);
    assert_eq!(upstream.state(), rampart_proxy::BreakerState::Closed);
}

#[tokio::test]
async fn a_pooled_connection_dropped_under_a_request_retries_a_get_but_never_resends_a_post() {
    // Each connection answers its first request, then reads a second and closes unanswered: to
    // the proxy, a pooled connection that broke just as a request went out on it.
    let (up, seen, counts) = closing_upstream(1, Duration::ZERO, true).await;
    let (front, _) = proxied_with(up, ProxySettings::default()).await;
    assert_eq!(get(front, "/warm").await.body, "ok");

    let res = get(front, "/get").await;
    assert_eq!((res.status.as_u16(), &res.body[..]), (200, &b"ok"[..]), "a GET is tried again on a new connection");
    assert_eq!(counts.accepted(), 2);

    // Now the second connection is pooled, and will drop the next request unanswered.
    let res = send(front, "POST", "/post", &[], full("once only")).await;
    assert_eq!(res.status, 502, "a POST that may have been received is not sent again");
    assert_eq!(res.problem().code, "upstream_unavailable");
    assert_eq!(
        lines(&seen),
        ["GET /warm HTTP/1.1 ", "GET /get HTTP/1.1 ", "GET /get HTTP/1.1 ", "POST /post HTTP/1.1 once only"],
        "the POST reached the upstream once"
    );
    assert_eq!(counts.accepted(), 2, "no new connection was opened for the POST");
}

/// A raw upstream answering `/short` with 100 of 1,000 declared bytes, `/long` with 100,000 of
/// 300,000, then closing; anything else is a whole `ok`.
async fn breaking_upstream() -> (SocketAddr, Arc<Counts>) {
    listen(|mut stream, _| async move {
        let mut buf = Vec::new();
        while let Some((line, _)) = read_request(&mut stream, &mut buf).await {
            let (declared, sent) = match line.split(' ').nth(1) {
                Some("/short") => (1000, 100),
                Some("/long") => (300_000, 100_000),
                _ => {
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
                    continue;
                }
            };
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&vec![b'z'; sent]).await.unwrap();
            return;
        }
    })
    .await
}

#[tokio::test]
async fn an_answer_that_breaks_off_mid_body_is_an_error_and_its_connection_is_not_reused() {
    let (up, counts) = breaking_upstream().await;
    let (front, upstream) = proxied_with(up, ProxySettings::default()).await;
    assert_eq!(get(front, "/").await.body, "ok");

    // Small: read whole first, so the client gets a 502 rather than a short body.
    let res = get(front, "/short").await;
    assert_eq!(res.status, 502);
    assert_eq!(res.problem().code, "upstream_unavailable");
    assert_eq!(get(front, "/").await.body, "ok");
    assert_eq!(counts.accepted(), 2, "the broken connection was not reused");

    // Large: streamed, so the head is out; the body ends in an error, not quietly short.
    let res =
        client().request(http::Request::get(format!("http://{front}/long")).body(empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(5), res.into_body().collect()).await.expect("ended in time");
    assert!(body.is_err(), "a body cut short is an error");
    assert_eq!(get(front, "/").await.body, "ok");
    assert_eq!(counts.accepted(), 3, "the broken connection was not reused");
    assert_eq!(upstream.in_flight(), 0);
}

/// A front door on a thread of its own, with a current-thread runtime that keeps its own
/// upstream connections (as the built-in proxy's event loops do); it runs until `stop` is sent
/// or dropped, and its connections are closed then.
fn event_loop(proxy: Proxy, upstream: Upstream) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let _own = rampart_proxy::connections_per_thread();
            addr_tx.send(front(proxy, upstream, vec![]).await).unwrap();
            let _ = stopped.await;
        });
    });
    (addr_rx.recv().unwrap(), stop)
}

/// Each event loop keeps the connections it dialled: another loop dials its own rather than
/// take one registered with the first loop's runtime, each reuses its own, and a loop's
/// connections are closed when it ends.
#[tokio::test]
async fn event_loops_keep_their_own_connections() {
    let (up, counts) = counting_upstream().await;
    let upstream = Upstream::new("test", &format!("http://{up}"), UpstreamSettings::default()).unwrap();
    let proxy = Proxy::new(ProxySettings::default()).unwrap();
    let (a, stop_a) = event_loop(proxy.clone(), upstream.clone());
    let (b, _stop_b) = event_loop(proxy, upstream);
    assert_eq!(get(a, "/small").await.body, "small");
    assert_eq!(counts.accepted(), 1);
    assert_eq!(get(b, "/small").await.body, "small");
    assert_eq!(counts.accepted(), 2, "the second loop dialled its own");
    for front in [a, b, a, b] {
        assert_eq!(get(front, "/small").await.body, "small");
    }
    assert_eq!(counts.accepted(), 2, "each loop reuses its own");
    assert_eq!(counts.ended(), 0);
    stop_a.send(()).unwrap();
    eventually("the ended loop's connection closed", || counts.ended() == 1).await;
    assert_eq!(get(b, "/small").await.body, "small");
    assert_eq!(counts.accepted(), 2);
}

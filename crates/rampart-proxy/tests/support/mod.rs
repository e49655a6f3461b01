//! What the proxy's tests share: a real upstream (a hyper server on 127.0.0.1, port 0, with a
//! handler of the test's choosing), a front door (an axum server that calls
//! `Proxy::forward`, as the gateway will), a plain client, and bodies generated chunk by chunk.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{ConnectInfo, Request, State};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_proxy::{BoxError, Downstream, Proxy, ProxySettings, Upstream, UpstreamSettings};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::net::TcpListener;

pub type TestBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Starts an upstream on 127.0.0.1 that answers every request with `handler` (HTTP/1.1,
/// upgrades allowed). Returns its address.
pub async fn upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_upstream(listener, handler));
    addr
}

/// Serves `handler` on an already bound listener.
pub async fn serve_upstream<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<TestBody>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

#[derive(Clone)]
struct Front {
    proxy: Proxy,
    upstream: Upstream,
    extra: Arc<Vec<(HeaderName, HeaderValue)>>,
}

/// Starts the front door on 127.0.0.1: an axum server whose every route forwards to
/// `upstream` through `proxy`, adding `extra`. Returns its address.
pub async fn front(proxy: Proxy, upstream: Upstream, extra: Vec<(HeaderName, HeaderValue)>) -> SocketAddr {
    async fn forward(
        State(front): State<Front>,
        ConnectInfo(client): ConnectInfo<SocketAddr>,
        req: Request,
    ) -> axum::response::Response {
        let res = front.proxy.forward(&front.upstream, req, Downstream::http(client.ip()), &front.extra).await;
        res.map(axum::body::Body::new)
    }
    let state = Front { proxy, upstream, extra: Arc::new(extra) };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

/// A proxy with default settings, an upstream at `addr` with `settings`, and a front door.
pub async fn proxied(addr: SocketAddr, settings: UpstreamSettings) -> (SocketAddr, Upstream) {
    let upstream = Upstream::new("test", &format!("http://{addr}"), settings).unwrap();
    let proxy = Proxy::new(ProxySettings::default()).unwrap();
    (front(proxy, upstream.clone(), vec![]).await, upstream)
}

/// A plain HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An answer, read whole (for small bodies).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The problem document, checked for Rampart's shape.
    pub fn problem(&self) -> rampart_wire::Problem {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        let p: rampart_wire::Problem = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(p.status, self.status.as_u16());
        assert_eq!(p.type_, format!("urn:rampart:problem:{}", p.code));
        p
    }
}

/// Sends a request to `addr` and reads the whole answer.
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: TestBody) -> Answer {
    let mut req = http::Request::builder().method(method).uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client().request(req.body(body).unwrap()).await.unwrap();
    let (head, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer { status: head.status, headers: head.headers, body }
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, "GET", path, &[], empty()).await
}

/// The bytes every generated body is made of: position `i` holds `i % 251`.
pub fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| (0..CHUNK + 251).map(|i| (i % 251) as u8).collect())
}

pub const CHUNK: usize = 64 * 1024;

/// A body of `len` bytes made chunk by chunk as it is polled (no allocation: slices of one
/// static pattern), counting what it has handed out in `produced`.
pub struct Generated {
    remaining: u64,
    offset: u64,
    produced: Arc<AtomicU64>,
}

impl Generated {
    pub fn new(len: u64, produced: Arc<AtomicU64>) -> Self {
        Self { remaining: len, offset: 0, produced }
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = (CHUNK as u64).min(self.remaining) as usize;
        let start = (self.offset % 251) as usize;
        let chunk = Bytes::from_static(&pattern()[start..start + n]);
        self.offset += n as u64;
        self.remaining -= n as u64;
        self.produced.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Checks a received chunk against the pattern at `offset`.
pub fn check_chunk(offset: u64, chunk: &[u8]) {
    let mut pos = offset;
    for piece in chunk.chunks(CHUNK) {
        let start = (pos % 251) as usize;
        assert!(piece == &pattern()[start..start + piece.len()], "corrupted at byte {pos}");
        pos += piece.len() as u64;
    }
}

/// The process's resident set, in bytes (`VmRSS` of /proc/self/status).
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Lowercase header names and values as the echo upstream reports them.
pub fn echo_headers(headers: &HeaderMap) -> serde_json::Value {
    let pairs: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("<binary>").to_owned())).collect();
    serde_json::json!(pairs)
}

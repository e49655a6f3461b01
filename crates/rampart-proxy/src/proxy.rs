//! [`Proxy::forward`]: one request to one upstream and its answer back, streamed, through the
//! upstream's concurrency limit and circuit breaker, under the timeouts, with retries where
//! they are safe; protocol upgrades (WebSocket) carried as a byte tunnel.
//!
//! A plain `http://` upstream is spoken to over the proxy's own connections (`pool`), which the
//! request's task drives itself; an `https://` one through hyper-util's pooled TLS client.

use crate::body::{BoxError, OutBody, Progress, ProxyBody, Upload, Wait};
use crate::breaker::Outcome;
use crate::headers::{self, Hop};
use crate::pool::{self, Conn};
use crate::problem::Refusal;
use crate::settings::ProxySettings;
use crate::upstream::{Dial, Pass, Upstream};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::OnUpgrade;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::error::Error as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The client side of the hop the request came in on, as the caller established it (the
/// client address from its trusted-proxy rules, the scheme from its listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downstream {
    /// The client's address, appended to (or put in) `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// Whether the client spoke TLS to Rampart: `X-Forwarded-Proto: https` or `http`.
    pub https: bool,
}

impl Downstream {
    /// A client that came over plain HTTP.
    pub fn http(client_ip: IpAddr) -> Self {
        Self { client_ip, https: false }
    }

    /// A client that came over HTTPS.
    pub fn https(client_ip: IpAddr) -> Self {
        Self { client_ip, https: true }
    }
}

/// Why the proxy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The TLS client could not be set up (an extra root certificate is not valid DER, say).
    #[error("TLS client: {0}")]
    Tls(String),
}

/// The reverse proxy: its own HTTP/1.1 connections for plain upstreams (pooled per upstream,
/// driven by the request's task), and a pooled TLS client shared by all `https` upstreams.
/// Cheap to clone; build one at start-up.
#[derive(Clone, Debug)]
pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, OutBody>,
    settings: Arc<ProxySettings>,
}

/// How a try at the upstream failed.
#[derive(Debug)]
enum Failed {
    /// No connection (refused, unreachable, or too slow when `timed_out`): nothing was sent,
    /// so an idempotent request may be tried again.
    Connect { timed_out: bool },
    /// A wait ran out: `first byte` or `idle` (the request body going up).
    Timeout(&'static str),
    /// The client stopped sending its body: not the upstream's fault.
    ClientStalled,
    /// The client's body failed (it went away): not the upstream's fault.
    ClientGone,
    /// The connection broke, or the upstream answered something that is not HTTP.
    Broken,
    /// A pooled connection broke before any answer came: the upstream may have closed it just
    /// as the request went out, so an idempotent request may be tried again on a new one.
    Stale,
}

impl Proxy {
    /// A proxy with these settings (the bundled Mozilla roots and any extra ones for `https`
    /// upstreams, ring as the crypto provider, HTTP/1.1 only).
    pub fn new(settings: ProxySettings) -> Result<Self, ProxyError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in &settings.extra_root_certificates {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| ProxyError::Tls(format!("extra root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);

        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self { client, settings: Arc::new(settings) })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &ProxySettings {
        &self.settings
    }

    /// Forwards `req` to `upstream` and returns the answer to send back; never fails: the
    /// proxy's own refusals are problem+json answers (see [`Refusal`]).
    ///
    /// The caller has decided the request may pass. The request's path and query are joined to
    /// the upstream's base URL; hop-by-hop headers are dropped both ways; `X-Forwarded-For`,
    /// `-Proto` and `-Host` are set; every inbound `X-Rampart-*` header is dropped and then
    /// `extra` (the identity headers) added. Bodies stream both ways. A request asking to
    /// upgrade (`Connection: upgrade`, `Upgrade: websocket`) that the upstream accepts with 101
    /// is carried as a tunnel, provided the request holds hyper's `OnUpgrade` (a hyper or axum
    /// server's request does).
    pub async fn forward<B>(
        &self,
        upstream: &Upstream,
        mut req: Request<B>,
        downstream: Downstream,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(slot) = upstream.try_slot() else {
            tracing::debug!(upstream = upstream.name(), "upstream at its concurrency limit");
            return Refusal::Overloaded.into_response();
        };
        let pass = match upstream.admit() {
            Ok(pass) => pass,
            Err(retry_after) => return Refusal::Ejected { retry_after }.into_response(),
        };
        let Some(uri) = upstream.target(req.uri()) else {
            return Refusal::BadTarget.into_response();
        };
        let upgrade = headers::requested_upgrade(req.headers())
            .and_then(|protocol| req.extensions_mut().remove::<OnUpgrade>().map(|on| (protocol, on)));

        let (parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        let settings = upstream.settings();
        let hop = Hop {
            client_ip: downstream.client_ip,
            proto: if downstream.https { "https" } else { "http" },
            host,
            upstream_host: upstream.host_header(),
            preserve_host: settings.preserve_host,
            forwarded_for: self.settings.forwarded_for,
            upgrade: upgrade.as_ref().map(|(protocol, _)| protocol.clone()),
        };
        // Only a request with nothing to send can be sent again.
        let bodiless = body.is_end_stream();
        let retryable = is_idempotent(&parts.method) && bodiless;
        // A request that may be tried again sends a copy each time (the try consumes what it
        // sends); one that is tried once takes them.
        let mut out_headers = headers::request_headers(parts.headers, &hop, extra);

        let mut body = Some(body);
        let mut attempt = 0u32;
        // Whether the next try dials a new connection (a pooled one just broke).
        let mut fresh = false;
        let (answer, conn) = loop {
            let progress = Progress::new(bodiless);
            let out: OutBody = match (retryable, body.take()) {
                (false, Some(b)) => Upload::new(b, progress.clone()).boxed_unsync(),
                _ => Empty::new().map_err(|never| match never {}).boxed_unsync(),
            };
            let mut out_req = Request::new(out);
            *out_req.method_mut() = parts.method.clone();
            *out_req.uri_mut() = uri.clone();
            *out_req.version_mut() = Version::HTTP_11;
            *out_req.headers_mut() = if retryable { out_headers.clone() } else { std::mem::take(&mut out_headers) };

            match self.send(out_req, &progress, upstream, fresh).await {
                Ok(done) => break done,
                Err(Failed::Stale) if retryable && !fresh => {
                    // Once, at once: the upstream closed an idle connection as it was reused.
                    fresh = true;
                    tracing::debug!(upstream = upstream.name(), "pooled connection broke; retrying on a new one");
                }
                Err(Failed::Connect { .. }) if retryable && attempt < settings.max_retries => {
                    attempt += 1;
                    let pause = settings.retry_backoff.saturating_mul(1 << (attempt - 1).min(16));
                    tracing::debug!(upstream = upstream.name(), attempt, "connect failed; retrying");
                    tokio::time::sleep(pause).await;
                }
                Err(failed) => return refuse(upstream, pass, failed),
            }
        };

        let status = answer.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            pass.record(Outcome::Success);
            let Some((_, inbound)) = upgrade else {
                // A switch nobody asked for (or that cannot be carried) is not passed on.
                return Refusal::Unreachable.into_response();
            };
            return switch(upstream, answer, inbound, slot, conn);
        }

        let (head, incoming) = answer.into_parts();
        let body = if incoming.is_end_stream() {
            drop(slot);
            if let Some(conn) = conn {
                self.release(upstream, conn).await;
            }
            ProxyBody::empty()
        } else if let Some(declared) = incoming.size_hint().exact().filter(|n| *n <= READ_AHEAD_MAX) {
            // A small answer of known length is read whole first, as nginx's proxy buffering
            // does: its head and body then leave in one write, and the upstream connection is
            // free again before the client has read a byte. A body that breaks off or stalls
            // is the upstream's failure, answered before anything reached the client.
            let mut conn = conn;
            match read_whole(incoming, declared, settings.idle_timeout, conn.as_mut()).await {
                Ok(bytes) => {
                    drop(slot);
                    if let Some(conn) = conn {
                        self.release(upstream, conn).await;
                    }
                    ProxyBody::full(bytes)
                }
                Err(failed) => return refuse(upstream, pass, failed),
            }
        } else {
            // The body outlives this task: a task of its own drives the connection meanwhile.
            if let Some(conn) = conn {
                self.settle_in_background(upstream, conn);
            }
            ProxyBody::stream(incoming, settings.idle_timeout, slot)
        };
        pass.record(if status.is_server_error() { Outcome::Failure } else { Outcome::Success });
        let mut res = Response::new(body);
        *res.status_mut() = head.status;
        *res.headers_mut() = headers::passed_response_headers(head.headers);
        res
    }

    /// Sends one try, waiting for the answer's head under the upload's idle timeout and then the
    /// first-byte timeout. A plain upstream's answer comes with the connection it came on,
    /// which the caller drives from then on; `fresh` asks for a new one rather than a pooled one.
    async fn send(
        &self,
        req: Request<OutBody>,
        progress: &Progress,
        upstream: &Upstream,
        fresh: bool,
    ) -> Result<(Response<hyper::body::Incoming>, Option<Conn>), Failed> {
        let settings = upstream.settings();
        match upstream.plain() {
            Some(dial) => {
                let exchange = self.exchange(req, progress, upstream, dial, fresh);
                timed(exchange, progress, settings).await.map(|(res, conn)| (res, Some(conn)))
            }
            None => {
                let request = async { self.client.request(req).await.map_err(|e| classify(&e, progress, upstream)) };
                timed(request, progress, settings).await.map(|res| (res, None))
            }
        }
    }

    /// One try at a plain upstream, on a pooled connection (unless `fresh`) or a new one, driven
    /// by this task until the answer's head has come. A request the pooled connection never
    /// took (it had ended: the upstream closed it while it was idle) is sent again, once, on a
    /// new connection, as hyper-util's client does with its `retry_canceled_requests`: nothing
    /// of it was sent, so even a request with a body goes only once.
    async fn exchange(
        &self,
        mut req: Request<OutBody>,
        progress: &Progress,
        upstream: &Upstream,
        dial: &Dial,
        fresh: bool,
    ) -> Result<(Response<hyper::body::Incoming>, Conn), Failed> {
        let pooled = if fresh { None } else { upstream.pool().take(self.settings.pool_idle_timeout).await };
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.dial(upstream, dial).await?,
        };
        loop {
            let sent = conn.send.try_send_request(req);
            match pool::driven(Some(&mut conn), sent).await {
                Ok(res) => return Ok((res, conn)),
                Err(mut e) => match e.take_message() {
                    Some(back) if conn.reused => {
                        tracing::debug!(upstream = upstream.name(), error = %e.error(), "pooled connection had ended; resending on a new one");
                        req = back;
                        conn = self.dial(upstream, dial).await?;
                    }
                    _ => return Err(classify_conn(e.error(), conn.reused, progress, upstream)),
                },
            }
        }
    }

    /// A new connection to a plain upstream, within the connect timeout, with `TCP_NODELAY`.
    async fn dial(&self, upstream: &Upstream, dial: &Dial) -> Result<Conn, Failed> {
        let connect = async {
            if let Some(addr) = dial.literal {
                return TcpStream::connect(addr).await;
            }
            let mut last = None;
            for addr in tokio::net::lookup_host((dial.host.as_str(), dial.port)).await? {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")))
        };
        let stream = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let failed = Failed::Connect { timed_out: e.kind() == std::io::ErrorKind::TimedOut };
                tracing::debug!(upstream = upstream.name(), error = %e, ?failed, "upstream connect failed");
                return Err(failed);
            }
            Err(_) => {
                tracing::debug!(upstream = upstream.name(), "upstream connect timed out");
                return Err(Failed::Connect { timed_out: true });
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(upstream = upstream.name(), error = %e, "TCP_NODELAY not set");
        }
        Conn::handshake(TokioIo::new(stream)).await.map_err(|e| {
            tracing::debug!(upstream = upstream.name(), error = %e, "upstream handshake failed");
            Failed::Connect { timed_out: false }
        })
    }

    /// Puts a connection whose answer is over back in the upstream's pool; one still busy (an
    /// upload the upstream did not wait for) is settled by a task of its own.
    async fn release(&self, upstream: &Upstream, mut conn: Conn) {
        // One more poll lets the connection finish the exchange it has read to the end (unless
        // the last one already did).
        let open = conn.is_idle() || std::future::poll_fn(|cx| Poll::Ready(conn.drive(cx))).await;
        if open && conn.is_idle() {
            upstream.pool().put(conn, self.settings.pool_max_idle_per_host, self.settings.pool_idle_timeout);
        } else if open {
            self.settle_in_background(upstream, conn);
        }
    }

    /// Drives `conn` on a task of its own until its exchange is over (the answer's body read
    /// by whoever holds it, the upload sent), then pools it; or until it ends.
    fn settle_in_background(&self, upstream: &Upstream, mut conn: Conn) {
        let upstream = upstream.clone();
        let (max_idle, max_age) = (self.settings.pool_max_idle_per_host, self.settings.pool_idle_timeout);
        tokio::spawn(async move {
            if conn.settle().await {
                upstream.pool().put(conn, max_idle, max_age);
            }
        });
    }
}

/// Waits for `fut` (an answer's head) under the upload's idle timeout and then the first-byte
/// timeout.
async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, Failed>>,
    progress: &Progress,
    settings: &crate::settings::UpstreamSettings,
) -> Result<T, Failed> {
    tokio::pin!(fut);
    loop {
        let (deadline, _) = progress.deadline(settings.first_byte_timeout, settings.idle_timeout);
        tokio::select! {
            res = &mut fut => return res,
            () = tokio::time::sleep_until(deadline) => {
                // The body may have moved meanwhile; give up only if the deadline holds.
                let (deadline, wait) = progress.deadline(settings.first_byte_timeout, settings.idle_timeout);
                if deadline <= Instant::now() {
                    return Err(match wait {
                        Wait::Upload if progress.stalled_on_client() => Failed::ClientStalled,
                        Wait::Upload => Failed::Timeout("idle"),
                        Wait::FirstByte => Failed::Timeout("first byte"),
                    });
                }
            }
        }
    }
}

/// Answers declaring at most this many bytes are read whole before they are passed on.
const READ_AHEAD_MAX: u64 = 64 * 1024;

/// The whole of a small body of `declared` bytes, no chunk taking longer than `idle` to come,
/// driving `conn` (a plain upstream's connection) meanwhile. One chunk (the usual case) is
/// passed on as it is, without a copy.
async fn read_whole(
    mut body: hyper::body::Incoming,
    declared: u64,
    idle: std::time::Duration,
    mut conn: Option<&mut Conn>,
) -> Result<Bytes, Failed> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    let mut received = 0u64;
    loop {
        // Polled once without a timer: a chunk already there costs no timer entry.
        let ready = std::future::poll_fn(|cx| {
            Poll::Ready(pool::poll_driven(conn.as_deref_mut(), cx, |cx| Pin::new(&mut body).poll_frame(cx)))
        })
        .await;
        let frame = match ready {
            Poll::Ready(f) => f,
            Poll::Pending => match tokio::time::timeout(idle, pool::driven(conn.as_deref_mut(), body.frame())).await {
                Ok(f) => f,
                Err(_) => return Err(Failed::Timeout("idle")),
            },
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "upstream response body broke off");
                return Err(Failed::Broken);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers: none come with a declared length
            },
        };
        received += data.len() as u64;
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = bytes::BytesMut::with_capacity(f.len() + data.len());
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
        // hyper reads no further than the declared length: once it is all here, the body's end
        // is known without driving the connection again to be told so.
        if received == declared {
            break;
        }
    }
    let whole = match (rest, first) {
        (Some(buf), _) => buf.freeze(),
        (None, first) => first.unwrap_or_default(),
    };
    // hyper holds the upstream to its Content-Length; a body that ended short of it anyway is
    // not passed on as if it were whole.
    if whole.len() as u64 != declared {
        tracing::debug!(declared, got = whole.len(), "upstream response body shorter than declared");
        return Err(Failed::Broken);
    }
    Ok(whole)
}

/// GET, HEAD, OPTIONS, PUT and DELETE: the methods that may be sent twice.
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE)
}

fn classify(e: &hyper_util::client::legacy::Error, progress: &Progress, upstream: &Upstream) -> Failed {
    let mut timed_out = false;
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            timed_out = true;
        }
        source = cause.source();
    }
    let failed = if e.is_connect() {
        Failed::Connect { timed_out }
    } else if progress.client_failed() {
        Failed::ClientGone
    } else {
        Failed::Broken
    };
    tracing::debug!(upstream = upstream.name(), error = ?e, ?failed, "upstream request failed");
    failed
}

/// Why a try on a plain upstream's connection failed before the answer's head came: a pooled
/// connection that broke is `Stale` (tried again when that is safe).
fn classify_conn(e: &hyper::Error, reused: bool, progress: &Progress, upstream: &Upstream) -> Failed {
    let failed = if progress.client_failed() {
        Failed::ClientGone
    } else if reused {
        Failed::Stale
    } else {
        Failed::Broken
    };
    tracing::debug!(upstream = upstream.name(), error = ?e, ?failed, "upstream request failed");
    failed
}

/// The answer to a failed request, after telling the breaker whose fault it was.
fn refuse(upstream: &Upstream, pass: Pass, failed: Failed) -> Response<ProxyBody> {
    let refusal = match failed {
        Failed::Connect { timed_out: true } => Refusal::Timeout { phase: "connect" },
        Failed::Connect { timed_out: false } | Failed::Broken | Failed::Stale => Refusal::Unreachable,
        Failed::Timeout(phase) => Refusal::Timeout { phase },
        Failed::ClientStalled => Refusal::ClientStalled,
        Failed::ClientGone => Refusal::Unreachable,
    };
    match failed {
        Failed::ClientStalled | Failed::ClientGone => drop(pass),
        _ => {
            tracing::info!(upstream = upstream.name(), ?failed, "upstream request failed");
            pass.record(Outcome::Failure);
        }
    }
    refusal.into_response()
}

/// Passes the upstream's 101 on and joins the two upgraded connections once the client's side
/// has switched too. The tunnel does not hold a concurrency slot. A plain upstream's connection
/// (`conn`) is driven by the tunnel's task until it hands its socket over.
fn switch(
    upstream: &Upstream,
    mut answer: Response<hyper::body::Incoming>,
    inbound: OnUpgrade,
    slot: tokio::sync::OwnedSemaphorePermit,
    conn: Option<Conn>,
) -> Response<ProxyBody> {
    drop(slot);
    let outbound = hyper::upgrade::on(&mut answer);
    let name = upstream.name().to_owned();
    tokio::spawn(async move {
        let handover = async {
            if let Some(mut conn) = conn {
                conn.run_to_end().await;
            }
        };
        let ((), joined) = tokio::join!(handover, async { tokio::try_join!(inbound, outbound) });
        let (client, server) = match joined {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(upstream = %name, error = %e, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
        match tokio::io::copy_bidirectional(&mut client, &mut server).await {
            Ok((up, down)) => tracing::debug!(upstream = %name, up, down, "tunnel closed"),
            Err(e) => tracing::debug!(upstream = %name, error = %e, "tunnel broke off"),
        }
    });
    let mut res = Response::new(ProxyBody::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *res.headers_mut() = headers::response_headers(answer.headers(), true);
    res
}

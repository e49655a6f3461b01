//! Outbound requests to addresses someone else chose (webhook receivers, identity providers):
//! an HTTP/1.1 POST and GET client whose every connection goes through an address guard.
//!
//! The guard sees the addresses the connection will actually use: a host name is resolved
//! here ([`Resolve`]), every address it gives is judged, and only the ones allowed are handed
//! to the connector, which dials nothing else, so a name that resolves to an internal address
//! (DNS rebinding included: there is one resolution, and it is the one connected to) is
//! refused without being dialled. A literal address in the URL is judged before anything is
//! sent. Redirects are not followed (a 3xx is the receiver's answer), the answer is read up to
//! a cap and the whole exchange has a deadline.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Judges one address: `Err(reason)` refuses it.
pub type AddressGuard = Arc<dyn Fn(IpAddr) -> Result<(), &'static str> + Send + Sync>;

/// Resolves a host name to addresses (the system resolver in service; a stub in tests).
pub type Resolve = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> + Send + Sync>;

/// The system resolver (`getaddrinfo` through tokio).
pub fn system_resolver() -> Resolve {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// How the client runs.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // holds closures
pub struct OutboundSettings {
    /// The deadline of one exchange: connecting, sending, and reading the answer.
    pub timeout: Duration,
    /// Bytes of the answer kept; the rest is not read.
    pub response_bytes: usize,
    /// Judges every address before it is dialled.
    pub guard: AddressGuard,
    /// Resolves host names.
    pub resolve: Resolve,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAnswer {
    /// The status code.
    pub status: u16,
    /// The start of the answer's body (lossy UTF-8), at most `response_bytes`.
    pub body: String,
    /// From sending to the end of what was read.
    pub latency: Duration,
}

/// Why nothing (or nothing usable) came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an http(s) URL with a host (or a header value that cannot be sent).
    #[error("invalid URL: {0}")]
    Url(String),
    /// The guard refused every address of the host (`reason` of the first: `loopback`, …).
    #[error("refused: the receiver's address is {0}")]
    Refused(&'static str),
    /// The host name did not resolve.
    #[error("cannot resolve the host: {0}")]
    Resolve(String),
    /// No connection to any allowed address.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The deadline ran out.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// The connection broke or the answer was not HTTP.
    #[error("the exchange failed: {0}")]
    Broken(String),
}

/// The guarded resolver handed to the connector.
#[derive(Clone)]
struct GuardedResolver {
    guard: AddressGuard,
    resolve: Resolve,
}

/// The refusal carried through the connector's error, found again by [`classify`].
#[derive(Debug)]
struct RefusedAddress(&'static str);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "address refused: {}", self.0)
    }
}

impl std::error::Error for RefusedAddress {}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (guard, resolve) = (self.guard.clone(), self.resolve.clone());
        Box::pin(async move {
            let addrs = resolve(name.as_str().to_string()).await?;
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|ip| match guard(*ip) {
                    Ok(()) => true,
                    Err(why) => {
                        first_refusal.get_or_insert(why);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(match first_refusal {
                    Some(why) => io::Error::new(io::ErrorKind::PermissionDenied, RefusedAddress(why)),
                    None => io::Error::new(io::ErrorKind::NotFound, "no address"),
                });
            }
            Ok(allowed.into_iter())
        })
    }
}

/// A guarded POST client. Cheap to clone (one connection pool).
#[derive(Clone)]
#[allow(missing_debug_implementations)] // holds closures
pub struct OutboundClient {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    settings: OutboundSettings,
}

impl OutboundClient {
    /// A client with these settings (the bundled Mozilla roots for https, ring, HTTP/1.1).
    pub fn new(settings: OutboundSettings) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        #[allow(clippy::expect_used)] // ring supports the default protocol versions
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            guard: settings.guard.clone(),
            resolve: settings.resolve.clone(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { client, settings }
    }

    /// POSTs `body` to `url` with `headers`; any answer, 2xx or not, is an `OutboundAnswer`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<OutboundAnswer, OutboundError> {
        self.send(Method::POST, url, headers, body).await
    }

    /// GETs `url` with `headers`, under the same guard, deadline and cap as [`Self::post`].
    pub async fn get(&self, url: &str, headers: &[(&'static str, String)]) -> Result<OutboundAnswer, OutboundError> {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<OutboundAnswer, OutboundError> {
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| OutboundError::Url(e.to_string()))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(OutboundError::Url("the scheme must be http or https".into())),
        }
        let host = uri.host().ok_or_else(|| OutboundError::Url("no host".into()))?;
        // The connector dials a literal address without asking the resolver: judged here.
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            (self.settings.guard)(ip).map_err(OutboundError::Refused)?;
        }
        let mut req = Request::builder().method(method).uri(uri.clone());
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|e| OutboundError::Url(format!("header {name}: {e}")))?;
            req = req.header(HeaderName::from_static(name), value);
        }
        let req = req.body(Full::new(body)).map_err(|e| OutboundError::Url(e.to_string()))?;
        let started = Instant::now();
        let cap = self.settings.response_bytes;
        let exchange = async {
            let res = self.client.request(req).await.map_err(classify)?;
            let status = res.status().as_u16();
            let mut body = res.into_body();
            let mut kept: Vec<u8> = Vec::new();
            // Read up to the cap, then stop (the connection is dropped, not drained).
            while kept.len() < cap {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let room = cap - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(Err(e)) => return Err(OutboundError::Broken(e.to_string())),
                    None => break,
                }
            }
            Ok((status, String::from_utf8_lossy(&kept).into_owned()))
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Ok(Ok((status, body))) => Ok(OutboundAnswer { status, body, latency: started.elapsed() }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OutboundError::Timeout(self.settings.timeout.as_millis())),
        }
    }
}

/// Sorts a client error: the guard's refusal, a resolution or connection failure, or else.
fn classify(e: hyper_util::client::legacy::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RefusedAddress>() {
            return OutboundError::Refused(r.0);
        }
        if let Some(io) = s.downcast_ref::<io::Error>()
            && let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<RefusedAddress>())
        {
            return OutboundError::Refused(r.0);
        }
        source = s.source();
    }
    if e.is_connect() {
        let text = format!("{e:?}");
        if text.contains("dns error") {
            return OutboundError::Resolve(text);
        }
        return OutboundError::Connect(
            std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string()),
        );
    }
    OutboundError::Broken(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A guard refusing what the caller's rule refuses: loopback and private, metadata.
    fn guard() -> AddressGuard {
        Arc::new(|ip: IpAddr| match ip {
            IpAddr::V4(v4) if v4.is_loopback() => Err("loopback"),
            IpAddr::V4(v4) if v4.is_private() => Err("private"),
            IpAddr::V4(v4) if v4.octets() == [169, 254, 169, 254] => Err("metadata"),
            IpAddr::V6(v6) if v6.is_loopback() => Err("loopback"),
            _ => Ok(()),
        })
    }

    /// A resolver answering `addrs` for every name and counting its calls.
    fn stub(addrs: Vec<IpAddr>, calls: Arc<AtomicUsize>) -> Resolve {
        Arc::new(move |_host: String| {
            calls.fetch_add(1, Ordering::SeqCst);
            let addrs = addrs.clone();
            Box::pin(async move { Ok(addrs) })
        })
    }

    fn client(resolve: Resolve) -> OutboundClient {
        OutboundClient::new(OutboundSettings {
            timeout: Duration::from_secs(2),
            response_bytes: 64,
            guard: guard(),
            resolve,
        })
    }

    /// A listener that counts the connections it is offered (there must be none).
    async fn witness() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((_s, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn literal_internal_addresses_are_refused_before_anything_is_sent() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = client(stub(vec![], calls.clone()));
        let (addr, seen) = witness().await;
        for url in [
            format!("http://127.0.0.1:{}/hook", addr.port()),
            format!("http://[::1]:{}/hook", addr.port()),
            "http://169.254.169.254/latest/meta-data/".into(),
            "http://10.0.0.1/hook".into(),
        ] {
            let e = c.post(&url, &[], Bytes::from_static(b"{}")).await.unwrap_err();
            assert!(matches!(e, OutboundError::Refused(_)), "{url}: {e:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "literal addresses need no resolution");
        assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing was dialled");
    }

    #[tokio::test]
    async fn a_name_resolving_to_internal_addresses_is_refused_without_dialling() {
        let (addr, seen) = witness().await;
        for (ips, why) in [
            (vec!["127.0.0.1".parse().unwrap()], "loopback"),
            (vec!["10.0.0.1".parse().unwrap(), "169.254.169.254".parse().unwrap()], "private"),
            (vec!["169.254.169.254".parse().unwrap()], "metadata"),
            (vec!["::1".parse().unwrap()], "loopback"),
        ] {
            let calls = Arc::new(AtomicUsize::new(0));
            let c = client(stub(ips, calls.clone()));
            let e = c.post(&format!("http://receiver.test:{}/hook", addr.port()), &[], Bytes::new()).await.unwrap_err();
            assert_eq!(e, OutboundError::Refused(why));
            assert_eq!(calls.load(Ordering::SeqCst), 1, "resolved once, and that answer judged");
        }
        assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing was dialled");
    }

    #[tokio::test]
    async fn only_the_allowed_addresses_of_a_name_are_dialled() {
        // A receiver on loopback; the guard here allows one loopback address only.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { break };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let body = "x".repeat(500);
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 302 Found\r\nlocation: http://10.0.0.1/\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                });
            }
        });
        let only: AddressGuard =
            Arc::new(|ip: IpAddr| if ip == IpAddr::from([127, 0, 0, 1]) { Ok(()) } else { Err("private") });
        let calls = Arc::new(AtomicUsize::new(0));
        let c = OutboundClient::new(OutboundSettings {
            timeout: Duration::from_secs(2),
            response_bytes: 64,
            guard: only,
            resolve: stub(vec!["10.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()], calls),
        });
        let answer = c.post(&format!("http://receiver.test:{port}/hook"), &[], Bytes::new()).await.unwrap();
        assert_eq!(answer.status, 302, "a redirect is the answer, not followed");
        assert_eq!(answer.body.len(), 64, "the answer is kept up to the cap");
    }
}

//! An `https` upstream: the proxy verifies its certificate against the bundled roots plus the
//! extra ones it is given. The fixtures are a test CA and a certificate it signed for
//! `127.0.0.1` and `localhost`, valid for a century (made with `openssl`, kept as DER; the key
//! is a test key and nothing else).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_proxy::{Proxy, ProxySettings, Upstream, UpstreamSettings};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use support::*;
use tokio::net::TcpListener;

const CA: &[u8] = include_bytes!("fixtures/ca.der");
const CERT: &[u8] = include_bytes!("fixtures/localhost.der");
const KEY: &[u8] = include_bytes!("fixtures/localhost.key.der");

/// A TLS upstream on 127.0.0.1 answering "secure hello" and the scheme it saw forwarded.
async fn tls_upstream() -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(CERT.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let host = req.headers()["host"].to_str().unwrap().to_owned();
                    Ok::<_, Infallible>(http::Response::new(full(format!("secure hello, {host}"))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_upstream_signed_by_an_extra_root_is_reached() {
    let addr = tls_upstream().await;
    let upstream = Upstream::new("secure", &format!("https://{addr}"), UpstreamSettings::default()).unwrap();
    let settings = ProxySettings { extra_root_certificates: vec![CA.to_vec()], ..ProxySettings::default() };
    let front = front(Proxy::new(settings).unwrap(), upstream, vec![]).await;
    let res = get(front, "/").await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, format!("secure hello, {addr}"));
}

#[tokio::test]
async fn an_https_upstream_with_an_unknown_issuer_is_refused() {
    let addr = tls_upstream().await;
    let settings = UpstreamSettings { max_retries: 0, ..UpstreamSettings::default() };
    let upstream = Upstream::new("secure", &format!("https://{addr}"), settings).unwrap();
    let front = front(Proxy::new(ProxySettings::default()).unwrap(), upstream, vec![]).await;
    let res = get(front, "/").await;
    assert_eq!(res.status, 502);
    assert_eq!(res.problem().code, "upstream_unavailable");
}

#[test]
fn an_invalid_extra_root_is_refused() {
    let settings = ProxySettings { extra_root_certificates: vec![b"not DER".to_vec()], ..ProxySettings::default() };
    assert!(Proxy::new(settings).unwrap_err().to_string().contains("extra root certificate"));
}

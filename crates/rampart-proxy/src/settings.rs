//! The proxy's runtime settings: plain values with their defaults, built once by whoever reads
//! the configuration (`rampart-config`'s gateway section) and passed in.

use crate::breaker::BreakerSettings;
use std::time::Duration;

/// Settings shared by every upstream: the connection pool and the TLS client.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// How long a TCP connect (and, for `https` upstreams, the TLS handshake) may take.
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// At most this many idle connections are kept per upstream host. Default 256.
    pub pool_max_idle_per_host: usize,
    /// What becomes of a client's own `X-Forwarded-For`. Default [`ForwardedFor::Append`].
    pub forwarded_for: ForwardedFor,
    /// Extra trust anchors for `https` upstreams (DER certificates), beside the bundled Mozilla
    /// roots: a private CA that signs internal services. Default none.
    pub extra_root_certificates: Vec<Vec<u8>>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            forwarded_for: ForwardedFor::Append,
            extra_root_certificates: Vec::new(),
        }
    }
}

/// What the proxy does with an `X-Forwarded-For` the request arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedFor {
    /// Keep the chain and append the client's address (`a, b, client`), like nginx's
    /// `$proxy_add_x_forwarded_for`. Right when the hops before Rampart are trusted proxies.
    Append,
    /// Replace it with the client's address alone: right when Rampart is the edge, so a client
    /// cannot put addresses of its choosing in front of its own.
    Replace,
}

/// Settings of one upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSettings {
    /// How long the upstream may take to start answering (status line and headers) once the
    /// request body has been sent. Default 30 s.
    pub first_byte_timeout: Duration,
    /// The longest gap between two body chunks, either way (the request body going up, the
    /// response body coming down). Default 60 s.
    pub idle_timeout: Duration,
    /// How many times a request is tried again after a connection failure; only idempotent
    /// methods (GET, HEAD, OPTIONS, PUT, DELETE) without a body are (and those once more, not
    /// counted here, when a pooled connection breaks before any answer). Default 2.
    pub max_retries: u32,
    /// The pause before the first retry, doubling for each further one. Default 25 ms.
    pub retry_backoff: Duration,
    /// At most this many requests in flight to this upstream (from admission until the
    /// response body ends; an upgraded connection stops counting once switched). Beyond it a
    /// request is answered 503 `overloaded` at once. Default 1024.
    pub max_concurrent: usize,
    /// Send the client's `Host` upstream instead of the upstream's own authority. Default false.
    pub preserve_host: bool,
    /// The circuit breaker.
    pub breaker: BreakerSettings,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            first_byte_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_backoff: Duration::from_millis(25),
            max_concurrent: 1024,
            preserve_host: false,
            breaker: BreakerSettings::default(),
        }
    }
}

impl UpstreamSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.first_byte_timeout.is_zero() {
            Some("first_byte_timeout must be positive")
        } else if self.idle_timeout.is_zero() {
            Some("idle_timeout must be positive")
        } else if self.max_concurrent == 0 {
            Some("max_concurrent must be at least 1")
        } else {
            self.breaker.problem()
        }
    }
}

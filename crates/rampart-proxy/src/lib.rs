//! The gateway's built-in reverse proxy: forwards requests the gateway has allowed to an
//! upstream, streaming, and carries WebSocket (any `Upgrade`) connections.
//!
//! - [`Proxy`] holds the pooled rustls TLS client shared by all `https` upstreams (a plain
//!   `http` upstream is spoken to over the proxy's own connections, pooled per upstream and
//!   driven by the request's own task); [`Proxy::forward`] sends one request and returns the
//!   answer to send back.
//! - [`Upstream`] is one destination with its [`UpstreamSettings`]: timeouts (connect, first
//!   byte, idle), retries (idempotent, body-less requests after a connection failure, or once after a
//!   pooled connection broke before any answer), a
//!   concurrency limit (beyond it, 503 `overloaded` at once: no queue) and a circuit
//!   [`Breaker`] with Envoy's outlier-detection semantics (while open, 503
//!   `upstream_unavailable` with `Retry-After` at once). Breaker transitions reach a
//!   [`TransitionHook`] (for audit events and a state metric).
//! - Headers: hop-by-hop dropped both ways, `X-Forwarded-For`/`-Proto`/`-Host` set, `Host`
//!   rewritten (or kept), every inbound `X-Rampart-*` dropped before the caller's identity
//!   headers are added.
//! - The proxy's own answers are problem+json ([`Refusal`]), as every Rampart error.
//!
//! - [`outbound::OutboundClient`]: POSTs to addresses someone else chose (webhook receivers),
//!   every connection through the caller's address guard, checked on the addresses actually
//!   dialled (the SSRF guard's mechanism; the rule itself is the caller's).
//!
//! The crate knows nothing of rules or identities: the caller decides, then forwards.
#![warn(missing_docs)]

mod body;
pub mod breaker;
mod headers;
pub mod outbound;
mod pool;
mod problem;
mod proxy;
mod settings;
mod upstream;

pub use body::{BoxError, IdleTimeout, ProxyBody};
pub use breaker::{Breaker, BreakerSettings, BreakerState, OpenReason, Transition};
pub use headers::RAMPART_PREFIX;
pub use pool::{ThreadConnections, connections_per_thread};
pub use problem::{PROBLEM_JSON, Refusal};
pub use proxy::{Downstream, Proxy, ProxyError};
pub use settings::{ForwardedFor, ProxySettings, UpstreamSettings};
pub use upstream::{TransitionHook, Upstream, UpstreamError};

//! Traffic protection as tower layers, configured from `[server] trusted_proxies`,
//! `[rate_limit]`, `[headers]` and `[cors]`: client-IP resolution ([`client_ip`]), rate limits
//! ([`rate_limit`] over [`limiter`]), IP allow/block rules ([`ip_filter`]), security headers
//! and CORS ([`headers`]).
//!
//! They protect Rampart's own API now and are written against `Router<AppState>` and plain
//! `axum::middleware` functions, so gateway mode can put the same layers in front of an
//! upstream later. Order (outermost first): security headers → (the core stack: request id,
//! log span, metrics, panic, timeout, body limit) → client IP → IP rules → CORS → rate limit →
//! route.

pub mod client_ip;
pub mod headers;
pub mod ip_filter;
pub mod limiter;
pub mod rate_limit;

use crate::AppState;
use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use rampart_config::Config;
use std::sync::Arc;

/// The shield's state, built once from the configuration.
#[derive(Debug)]
pub struct Shield {
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    pub rate_limits: rate_limit::RateLimits,
    pub headers: Arc<headers::SecurityHeaders>,
    pub cors: Arc<headers::Cors>,
}

impl Shield {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let trusted: Arc<[ipnet::IpNet]> = config.server.trusted_proxies.clone().into();
        Ok(Self {
            rate_limits: rate_limit::RateLimits::from_config(&config.rate_limit)?,
            headers: Arc::new(headers::SecurityHeaders::new(&config.headers, trusted.clone())),
            cors: Arc::new(headers::Cors::new(&config.cors)),
            trusted_proxies: trusted,
        })
    }
}

/// The layers that sit between the core stack and the routes: rate limit (innermost), CORS,
/// IP rules, client IP.
pub(crate) fn inner_layers(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let trusted = state.shield.trusted_proxies.clone();
    let cors = state.shield.cors.clone();
    routes
        .layer(from_fn_with_state(state.clone(), rate_limit::middleware))
        .layer(from_fn(move |req, next| headers::cors(cors.clone(), req, next)))
        .layer(from_fn_with_state(state.clone(), ip_filter::middleware))
        .layer(from_fn(move |req, next| client_ip::middleware(trusted.clone(), req, next)))
}

/// The outermost layer: security headers on every response, whatever answered it.
pub(crate) fn outer_layer(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let h = state.shield.headers.clone();
    routes.layer(from_fn(move |req, next| headers::security_headers(h.clone(), req, next)))
}

//! Traffic protection as tower layers, configured from `[server] trusted_proxies`,
//! `[rate_limit]`, `[headers]` and `[cors]`: client-IP resolution ([`client_ip`]), rate limits
//! ([`rate_limit`]), IP allow/block rules ([`ip_filter`]), security headers
//! and CORS ([`headers`]).
//!
//! They are plain `axum::middleware` functions, so gateway mode can put the same layers in
//! front of an upstream. Where each sits in the stack: `crate::router`. The limiter itself
//! (memory and Redis) is `rampart_core::limiter`.

pub mod client_ip;
pub mod headers;
pub mod ip_filter;
pub mod rate_limit;

use rampart_config::Settings;
use std::sync::Arc;

/// The shield's state, built once from the configuration.
#[derive(Debug)]
pub struct Shield {
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The header the trusted proxies write the client's address into.
    pub client_ip_header: rampart_config::ClientIpHeader,
    pub rate_limits: rate_limit::RateLimits,
    pub headers: Arc<headers::SecurityHeaders>,
    pub cors: Arc<headers::Cors>,
}

impl Shield {
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let trusted = settings.server.trusted_proxies.clone();
        Ok(Self {
            rate_limits: rate_limit::RateLimits::from_settings(&settings.rate_limit)?,
            headers: Arc::new(headers::SecurityHeaders::new(&settings.headers)),
            client_ip_header: settings.server.client_ip_header,
            cors: Arc::new(headers::Cors::new(&settings.cors)),
            trusted_proxies: trusted,
        })
    }
}

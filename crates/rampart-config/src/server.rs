//! The `[server]` section: where Rampart listens and the limits every request meets.

use crate::settings::{checked, secs};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413 `payload_too_large`.
    pub body_limit_bytes: usize,
    /// A request still running after this many seconds gets 503 `request_timeout`.
    pub request_timeout_secs: u64,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub shutdown_grace_secs: u64,
    /// JSON bodies nested deeper than this are refused (400 `validation_failed`, `too_deep`).
    pub json_max_depth: usize,
    /// JSON strings (keys or values) longer than this many bytes are refused (`too_long`).
    pub json_max_string_bytes: usize,
    /// Proxies (CIDRs) whose `X-Forwarded-For`/`Forwarded` are believed, hop by hop from the
    /// right. None by default: the client is the TCP peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header the trusted proxy writes the client's address into; the others are
    /// ignored, since proxies pass a client's own copies of them through untouched.
    pub client_ip_header: ClientIpHeader,
    /// Networks (CIDRs) that may read `GET /metrics`; everyone else gets 404. Loopback by
    /// default: metrics disclose internals (routes, error rates, limiter state).
    pub metrics_allow: Vec<ipnet::IpNet>,
}

/// Which forwarding header names the client behind `server.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, read from the right through trusted hops (nginx, Caddy, Traefik, ALB).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239) `for=` values, read the same way.
    Forwarded,
    /// `X-Real-IP`: one address, set by the proxy.
    XRealIp,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            json_max_depth: 32,
            json_max_string_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::default(),
            metrics_allow: ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect(),
        }
    }
}

/// `[server]`, ready to use.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// A request still running after this long gets 503 `request_timeout`.
    pub request_timeout: Duration,
    /// How long in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
    pub json_max_depth: usize,
    pub json_max_string_bytes: usize,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    pub client_ip_header: ClientIpHeader,
    pub metrics_allow: Arc<[ipnet::IpNet]>,
}

impl ServerConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.body_limit_bytes == 0 {
            p.push("server.body_limit_bytes: must be at least 1".into());
        }
        if !(1..=256).contains(&self.json_max_depth) {
            p.push(format!("server.json_max_depth: must be between 1 and 256; got {}", self.json_max_depth));
        }
        if self.json_max_string_bytes == 0 {
            p.push("server.json_max_string_bytes: must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            p.push("server.request_timeout_secs: must be at least 1".into());
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<ServerSettings, Vec<String>> {
        checked(self.problems(), || ServerSettings {
            listen: self.listen,
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: secs(self.request_timeout_secs),
            shutdown_grace: secs(self.shutdown_grace_secs),
            json_max_depth: self.json_max_depth,
            json_max_string_bytes: self.json_max_string_bytes,
            trusted_proxies: self.trusted_proxies.clone().into(),
            client_ip_header: self.client_ip_header,
            metrics_allow: self.metrics_allow.clone().into(),
        })
    }
}

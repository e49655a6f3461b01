//! The `[webhooks]` section: how signed webhooks are delivered (the endpoints themselves live
//! in the database: `/v1/admin/webhooks`).

use crate::settings::{checked, millis, secs, span};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Networks a receiver may be in although they are not public (loopback, private,
    /// link-local and metadata addresses are refused otherwise), e.g. `["10.20.0.0/16"]` for
    /// receivers inside your own network. Checked on the address actually connected to.
    pub allow_networks: Vec<String>,
    /// Time for one delivery: connecting, sending and reading the answer.
    pub timeout_ms: u64,
    /// Deliveries in flight to one endpoint at most.
    pub per_endpoint_concurrency: u32,
    /// Deliveries in flight in all, on this instance.
    pub concurrency: u32,
    /// The receiver's answer is kept in the delivery log up to this many bytes (the rest is
    /// not read).
    pub response_bytes: u32,
    /// An endpoint whose deliveries have failed without a success for this long is disabled
    /// (and its creator e-mailed). 0: never.
    pub disable_after_days: u32,
    /// How often the worker looks for due deliveries.
    pub poll_ms: u64,
    /// How long a worker holds the deliveries it claimed; a worker that dies meanwhile leaves
    /// them to be claimed again after this.
    pub claim_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            timeout_ms: 10_000,
            per_endpoint_concurrency: 4,
            concurrency: 32,
            response_bytes: 1024,
            disable_after_days: 5,
            poll_ms: 500,
            claim_secs: 60,
        }
    }
}

/// `[webhooks]`, ready to use.
#[derive(Debug, Clone)]
pub struct WebhooksSettings {
    pub allow_networks: Vec<ipnet::IpNet>,
    pub timeout: Duration,
    pub per_endpoint_concurrency: usize,
    pub concurrency: usize,
    pub response_bytes: usize,
    /// `None`: endpoints are never disabled automatically.
    pub disable_after: Option<time::Duration>,
    pub poll: Duration,
    pub claim: time::Duration,
}

impl WebhooksConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for n in &self.allow_networks {
            if n.parse::<ipnet::IpNet>().is_err() && n.parse::<std::net::IpAddr>().is_err() {
                p.push(format!("webhooks.allow_networks: {n:?} is not a network (10.20.0.0/16) or an address"));
            }
        }
        for (key, v) in [("webhooks.timeout_ms", self.timeout_ms), ("webhooks.poll_ms", self.poll_ms)] {
            if v == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        if self.per_endpoint_concurrency == 0 || self.concurrency == 0 {
            p.push("webhooks.per_endpoint_concurrency and webhooks.concurrency: must be at least 1".into());
        }
        if self.claim_secs * 1000 <= self.timeout_ms {
            p.push(
                "webhooks.claim_secs: must be longer than webhooks.timeout_ms (a claim outlives its delivery)".into(),
            );
        }
        p
    }

    pub fn settings(&self) -> Result<WebhooksSettings, Vec<String>> {
        checked(self.problems(), || WebhooksSettings {
            allow_networks: self
                .allow_networks
                .iter()
                .filter_map(|n| {
                    n.parse::<ipnet::IpNet>().ok().or_else(|| n.parse::<std::net::IpAddr>().ok().map(Into::into))
                })
                .collect(),
            timeout: millis(self.timeout_ms),
            per_endpoint_concurrency: self.per_endpoint_concurrency as usize,
            concurrency: self.concurrency as usize,
            response_bytes: self.response_bytes as usize,
            disable_after: (self.disable_after_days > 0)
                .then(|| span(secs(u64::from(self.disable_after_days) * 86_400))),
            poll: millis(self.poll_ms),
            claim: span(secs(self.claim_secs)),
        })
    }
}

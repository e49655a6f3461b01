//! The webhook worker's way out: `rampart_core`'s [`Transport`] over the guarded outbound
//! client of `rampart_proxy` ([`OutboundClient`]), with the SSRF rule of this configuration
//! (`rampart_domain::webhook::address_allowed` over `webhooks.allow_networks`).

use bytes::Bytes;
use rampart_core::App;
use rampart_core::services::webhooks::{Answer, Outgoing, Transport, TransportError, address_rule};
use rampart_proxy::outbound::{OutboundClient, OutboundError, OutboundSettings, Resolve};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Deliveries over HTTP(S), every connection through the address guard.
#[allow(missing_debug_implementations)] // its client holds closures
pub struct HttpTransport {
    client: OutboundClient,
}

impl HttpTransport {
    /// With `resolve` for host names (`rampart_proxy::outbound::system_resolver` in service).
    pub fn new(state: &App, resolve: Resolve) -> Self {
        let rule = address_rule(state);
        let settings = OutboundSettings {
            timeout: state.settings.webhooks.timeout,
            response_bytes: state.settings.webhooks.response_bytes,
            guard: Arc::new(rule),
            resolve,
        };
        Self { client: OutboundClient::new(settings) }
    }
}

impl Transport for HttpTransport {
    fn send(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Result<Answer, TransportError>> + Send + '_>> {
        Box::pin(async move {
            let started = Instant::now();
            match self.client.post(&out.url, &out.headers, Bytes::from(out.body)).await {
                Ok(a) => Ok(Answer { status: a.status, body: a.body, latency: a.latency }),
                Err(e) => {
                    let kind = match &e {
                        OutboundError::Url(_) => "invalid_url",
                        OutboundError::Refused(_) => "refused",
                        OutboundError::Resolve(_) => "resolve",
                        OutboundError::Connect(_) => "connect",
                        OutboundError::Timeout(_) => "timeout",
                        OutboundError::Broken(_) => "broken",
                    };
                    Err(TransportError { kind, message: e.to_string(), latency: started.elapsed() })
                }
            }
        })
    }
}

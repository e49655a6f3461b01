//! The way out to identity providers: `rampart_core`'s [`ProviderHttp`] over the guarded
//! outbound client of `rampart_proxy` ([`OutboundClient`]), with the webhooks' SSRF rule
//! (`rampart_domain::webhook::address_allowed`) over `federation.allow_networks`: a provider
//! on a private or loopback address is refused unless the operator listed its network.

use bytes::Bytes;
use rampart_core::App;
use rampart_core::services::oauth::{HttpAnswer, HttpFailure, ProviderHttp};
use rampart_proxy::outbound::{OutboundClient, OutboundSettings, Resolve};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Discovery documents and key sets can be large (Microsoft's); a token answer is small.
const ANSWER_BYTES: usize = 512 * 1024;

/// Requests to providers, every connection through the address guard.
#[allow(missing_debug_implementations)] // its client holds closures
pub struct OAuthTransport {
    client: OutboundClient,
}

impl OAuthTransport {
    /// With `resolve` for host names (`rampart_proxy::outbound::system_resolver` in service).
    pub fn new(state: &App, resolve: Resolve) -> Self {
        let allow = state.settings.federation.allow_networks.clone();
        let settings = OutboundSettings {
            timeout: state.settings.federation.timeout,
            response_bytes: ANSWER_BYTES,
            guard: Arc::new(move |ip| rampart_domain::webhook::address_allowed(ip, &allow)),
            resolve,
        };
        Self { client: OutboundClient::new(settings) }
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<HttpAnswer, HttpFailure>> + Send + 'a>>;

impl ProviderHttp for OAuthTransport {
    fn get<'a>(&'a self, url: &'a str, headers: Vec<(&'static str, String)>) -> Pending<'a> {
        Box::pin(async move {
            match self.client.get(url, &headers).await {
                Ok(a) if a.body.len() >= ANSWER_BYTES => Err(format!("{url}: answer too large")),
                Ok(a) => Ok(HttpAnswer { status: a.status, body: a.body }),
                Err(e) => Err(format!("{url}: {e}")),
            }
        })
    }

    fn post_form<'a>(&'a self, url: &'a str, headers: Vec<(&'static str, String)>, form: String) -> Pending<'a> {
        Box::pin(async move {
            match self.client.post(url, &headers, Bytes::from(form)).await {
                Ok(a) => Ok(HttpAnswer { status: a.status, body: a.body }),
                Err(e) => Err(format!("{url}: {e}")),
            }
        })
    }
}

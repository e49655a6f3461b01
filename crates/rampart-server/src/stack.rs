//! The per-request stack, layers 1–11 of [`crate::router`], as one middleware.
//!
//! Each layer is a plain `async fn(…, req, next)` in its own module, where `next` is the rest
//! of the stack as an async closure; [`middleware`] nests them in order. Composed this way the
//! whole stack is one future: one clone of the route's service and one allocation per request,
//! where eleven `from_fn` layers each cloned and boxed the service below them.

use crate::shield::{client_ip, headers, ip_filter, rate_limit};
use crate::state::AppState;
use crate::telemetry::Redaction;
use crate::{http_metrics, limits, request_id, telemetry};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rampart_config::ServerSettings;
use rampart_core::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// Layers 2–7, which need no application state (so unit tests run them around test routes).
#[derive(Debug)]
pub(crate) struct Core {
    metrics: Arc<Metrics>,
    redaction: Redaction,
    body_limit: usize,
    json: limits::JsonLimits,
    timeout: Duration,
}

impl Core {
    pub(crate) fn new(server: &ServerSettings, metrics: Arc<Metrics>, redaction: Redaction) -> Self {
        Self {
            metrics,
            redaction,
            body_limit: server.body_limit_bytes,
            json: limits::JsonLimits {
                max_depth: server.json_max_depth,
                max_string_bytes: server.json_max_string_bytes,
            },
            timeout: server.request_timeout,
        }
    }

    /// Request id (2), log span (3), metrics (4), panic (5), timeout (6), body limit (7), then
    /// `next`.
    pub(crate) async fn run(&self, req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
        request_id::scope(req, async |req| {
            telemetry::span(&self.redaction, req, async |req| {
                http_metrics::observe(&self.metrics, req, async |req| {
                    limits::catch_panic(req, async |req| {
                        // Boxed: a future is moved whole each time it is nested one level
                        // deeper, so the stack is cut in two heap-held halves.
                        Box::pin(limits::timeout(self.timeout, req, async |req| {
                            limits::body_limit(self.body_limit, self.json, req, next).await
                        }))
                        .await
                    })
                    .await
                })
                .await
            })
            .await
        })
        .await
    }
}

/// The whole stack's configuration, built once.
#[derive(Debug)]
pub(crate) struct Stack {
    state: AppState,
    core: Core,
}

impl Stack {
    pub(crate) fn new(state: AppState) -> Self {
        let redaction = Redaction::new(&state.settings.log.redact);
        let core = Core::new(&state.settings.server, state.metrics.clone(), redaction);
        Self { state, core }
    }
}

/// Layers 1–11 around the matched route.
pub(crate) async fn middleware(State(stack): State<Arc<Stack>>, req: Request, next: Next) -> Response {
    let shield = &stack.state.shield;
    // The client's address and scheme, resolved once: the security headers need the scheme,
    // layer 8 the address.
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    let https = matches!(resolved, Some(Ok((_, Some(true)))));
    headers::security_headers(&shield.headers, https, req, async |req| {
        stack
            .core
            .run(req, async |req| {
                Box::pin(client_ip::apply(resolved, req, async |req| {
                    ip_filter::check(&stack.state, req, async |req| {
                        headers::cors(&shield.cors, req, async |req| {
                            rate_limit::limit(&stack.state, req, async |req| next.run(req).await).await
                        })
                        .await
                    })
                    .await
                }))
                .await
            })
            .await
    })
    .await
}

/// Layers 2–7 around test routes: the production code, without application state.
#[cfg(test)]
pub(crate) async fn core_middleware(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    core.run(req, async |req| next.run(req).await).await
}

/// The built-in proxy's listener: request id, client address, IP rules (the gateway's own
/// decision does the rest).
pub(crate) async fn proxy_middleware(State(stack): State<Arc<Stack>>, req: Request, next: Next) -> Response {
    let shield = &stack.state.shield;
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    request_id::scope(req, async |req| {
        client_ip::apply(resolved, req, async |req| {
            ip_filter::check(&stack.state, req, async |req| next.run(req).await).await
        })
        .await
    })
    .await
}

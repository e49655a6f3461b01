//! The per-request stack, layers 1–11 of [`crate::router`], as one function.
//!
//! Each layer is a plain `async fn(…, req, next)` in its own module, where `next` is the rest
//! of the stack as an async closure; [`run`] nests them in order. Composed this way the whole
//! stack is one future, where eleven `from_fn` layers each cloned and boxed the service below
//! them. The API handlers and fallbacks run it inside their own future ([`Stacked`]); the web
//! pages' router has it as a middleware ([`middleware`]).

use crate::shield::{client_ip, headers, ip_filter, rate_limit};
use crate::state::AppState;
use crate::telemetry::Redaction;
use crate::{http_metrics, limits, request_id, telemetry};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::middleware::Next;
use axum::response::Response;
use rampart_config::ServerSettings;
use rampart_core::metrics::Metrics;
use std::future::Future;
use std::pin::Pin;
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

/// Layers 1–11 around `next` (the matched route's handler, or the rest of a router).
pub(crate) async fn run(state: &AppState, req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
    let shield = &state.shield;
    // The client's address and scheme, resolved once: the security headers need the scheme,
    // layer 8 the address.
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    let https = matches!(resolved, Some(Ok((_, Some(true)))));
    headers::security_headers(&shield.headers, https, req, async |req| {
        state
            .stack
            .run(req, async |req| {
                Box::pin(client_ip::apply(resolved, req, async |req| {
                    ip_filter::check(state, req, async |req| {
                        headers::cors(&shield.cors, req, async |req| {
                            rate_limit::limit(state, req, async |req| next(req).await).await
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

/// Layers 1–11 as a middleware, around a whole router (the web pages').
pub(crate) async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    run(&state, req, async |req| next.run(req).await).await
}

/// A handler with layers 1–11 around it, run inside its own future: how the API routes and
/// the fallbacks are mounted. The same stack as [`middleware`], without what a middleware
/// costs per request (a clone of the boxed route below it, a second boxed future, the route
/// machinery run twice).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stacked<H>(pub H);

impl<H, T> Handler<T, AppState> for Stacked<H>
where
    H: Handler<T, AppState>,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, req: Request, state: AppState) -> Self::Future {
        Box::pin(async move {
            let outer = state.clone();
            run(&outer, req, async move |req| self.0.call(req, state).await).await
        })
    }
}

/// Layers 2–7 around test routes: the production code, without application state.
#[cfg(test)]
pub(crate) async fn core_middleware(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    core.run(req, async |req| next.run(req).await).await
}

/// The built-in proxy's listener: request id, client address, IP rules (the gateway's own
/// decision does the rest).
pub(crate) async fn proxy_middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let shield = &state.shield;
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    request_id::scope(req, async |req| {
        client_ip::apply(resolved, req, async |req| {
            ip_filter::check(&state, req, async |req| next.run(req).await).await
        })
        .await
    })
    .await
}

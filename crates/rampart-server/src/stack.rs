//! The per-request stack, layers 1–11 of [`crate::router`], as one function.
//!
//! Each layer is a plain function in its own module: what it reads from the request before
//! it goes in (which may answer instead: a refusal, a preflight) and what it puts on the answer
//! coming out. [`run`] and [`Core::run`] call them in order, straight through, in one async
//! function; only what must wrap the rest of the request wraps it: the request id's task-local
//! scope, the log span, the panic catch and the timeout. Nested as `async fn(req, next)` layers,
//! each level's future held the whole stack below it and moved it on every request (a quarter
//! of the stack's instructions were copies). The API handlers and fallbacks run the stack
//! inside their own future ([`Stacked`]); the web pages' router has it as a middleware
//! ([`middleware`]).

use crate::shield::{client_ip, headers, ip_filter, rate_limit};
use crate::state::AppState;
use crate::telemetry::Redaction;
use crate::{http_metrics, limits, request_id, telemetry};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::middleware::Next;
use axum::response::Response;
use futures::FutureExt as _;
use rampart_config::ServerSettings;
use rampart_core::metrics::Metrics;
use std::future::Future;
use std::panic::AssertUnwindSafe;
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
    pub(crate) async fn run(&self, mut req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
        let id = request_id::assign(&mut req);
        let span = telemetry::request_span(&self.redaction, &req, &id);
        let observed = http_metrics::Observed::start(&req);
        let (req, watch) = limits::watch_body(req);
        let (body_limit, json, timeout) = (self.body_limit, self.json, self.timeout);
        // Layers 5–7 and `next` in one heap-held future: the wrappers outside it move a
        // pointer, not everything below.
        let guarded = Box::pin(
            AssertUnwindSafe(tokio::time::timeout(timeout, async move {
                match limits::body_limit(body_limit, json, req).await {
                    Ok(req) => next(req).await,
                    Err(refused) => refused,
                }
            }))
            .catch_unwind(),
        );
        let answer = async {
            match guarded.await {
                Ok(Ok(res)) => res,
                Ok(Err(_elapsed)) => limits::timed_out(timeout, watch.as_deref()),
                Err(panic) => limits::panic_response(panic),
            }
        };
        let mut res = request_id::scope(id.clone(), telemetry::logged(&self.redaction, span, answer)).await;
        observed.finish(&self.metrics, &res);
        request_id::stamp(&mut res, id);
        res
    }
}

/// Layers 1–11 around `next` (the matched route's handler, or the rest of a router).
pub(crate) async fn run(state: &AppState, req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
    let shield = &state.shield;
    // The client's address and scheme, resolved once: the security headers need the scheme,
    // layer 8 the address.
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    let https = matches!(resolved, Some(Ok((_, Some(true)))));
    let outgoing = headers::Outgoing::of(https, &req);
    let mut res = state
        .stack
        .run(req, async |mut req| {
            if let Some(refused) = client_ip::apply(resolved, &mut req) {
                return refused;
            }
            if let Some(refused) = ip_filter::check(state, &req) {
                return refused;
            }
            let cors = match headers::cors(&shield.cors, &req) {
                headers::CorsStep::Continue(cors) => cors,
                headers::CorsStep::Answered(preflight) => return preflight,
            };
            let (refused, limits) = rate_limit::limit(state, &req).await;
            let mut res = match refused {
                Some(refused) => refused,
                None => next(req).await,
            };
            limits.finish(&mut res);
            cors.finish(&shield.cors, &mut res);
            res
        })
        .await;
    outgoing.finish(&shield.headers, &mut res);
    res
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

/// The built-in proxy's stack: request id, client address, IP rules (the gateway's own
/// decision does the rest), then `next`. Called by the proxy listener's service directly: it
/// has one route, so no router or middleware sits between the connection and it.
pub(crate) async fn proxy(state: &AppState, mut req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
    let shield = &state.shield;
    let resolved = client_ip::resolve_request(&req, &shield.trusted_proxies, shield.client_ip_header);
    let id = request_id::assign(&mut req);
    let mut res = request_id::scope(id.clone(), async {
        if let Some(refused) = client_ip::apply(resolved, &mut req) {
            return refused;
        }
        if let Some(refused) = ip_filter::check(state, &req) {
            return refused;
        }
        next(req).await
    })
    .await;
    request_id::stamp(&mut res, id);
    res
}

//! The gateway's built-in proxy mode (`[gateway] upstream` and `listen`): a listener of its own
//! where every request is decided by the gateway's rules (the same decision core as the
//! forward-auth doors) and, when allowed, forwarded by `rampart_proxy` to the upstream with the
//! identity assertion; refusals are answered in the doors' terms (sign-in redirect, 401, 403,
//! 429). The circuit breaker's transitions become `gateway.upstream.ejected`/`restored` events
//! and the `rampart_gateway_upstream_state` gauge.
//!
//! Its own small layer stack: request id, client IP (the same trusted-proxy rules), IP rules.
//! Not Rampart's API stack: no body limit or request timeout (bodies stream, WebSockets stay
//! open), no security headers or CORS (the upstream's answers are its own).

use crate::auth::request_context;
use crate::routes::gateway::{Door, Original, ask_for, identity_headers, render, unavailable, upper};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use rampart_config::GatewaySettings;
use rampart_core::events::SecurityEvents;
use rampart_core::metrics::Metrics;
use rampart_core::services::gateway::{self, Verdict};
use rampart_domain::{Action, Actor, Outcome, Severity};
use rampart_proxy::{
    BreakerSettings, BreakerState, Downstream, OpenReason, Proxy, ProxySettings, Transition, Upstream, UpstreamSettings,
};
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The proxy and its one upstream.
#[derive(Debug)]
pub struct BuiltInProxy {
    proxy: Proxy,
    upstream: Upstream,
}

impl BuiltInProxy {
    /// The proxy of `[gateway]`, when `upstream` is set.
    pub fn from_settings(
        g: &GatewaySettings,
        metrics: Arc<Metrics>,
        events: SecurityEvents,
    ) -> Result<Option<BuiltInProxy>, String> {
        let Some(url) = &g.upstream else { return Ok(None) };
        let c = &g.proxy;
        let proxy = Proxy::new(ProxySettings {
            connect_timeout: Duration::from_secs(c.connect_timeout_secs),
            ..ProxySettings::default()
        })
        .map_err(|e| format!("gateway.upstream: {e}"))?;
        let settings = UpstreamSettings {
            first_byte_timeout: Duration::from_secs(c.first_byte_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_retries: c.max_retries,
            max_concurrent: c.max_concurrent,
            breaker: BreakerSettings {
                consecutive_failures: c.breaker_consecutive_failures,
                failure_ratio: c.breaker_failure_ratio,
                base_ejection: Duration::from_secs(c.breaker_base_ejection_secs),
                max_ejection: Duration::from_secs(c.breaker_max_ejection_secs),
                ..BreakerSettings::default()
            },
            ..UpstreamSettings::default()
        };
        let name = url.host_str().map_or_else(
            || "upstream".to_string(),
            |h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            },
        );
        metrics.set_upstream_state(&name, BreakerState::Closed.as_gauge());
        let hook: rampart_proxy::TransitionHook =
            Arc::new(move |name: &str, t: &Transition| observe(&metrics, &events, name, t));
        let upstream =
            Upstream::with_hook(name, url.as_str(), settings, hook).map_err(|e| format!("gateway.upstream: {e}"))?;
        Ok(Some(BuiltInProxy { proxy, upstream }))
    }
}

/// A breaker transition: the state gauge always; an event when the upstream is ejected or
/// comes back.
fn observe(metrics: &Metrics, events: &SecurityEvents, name: &str, t: &Transition) {
    metrics.set_upstream_state(name, t.to.as_gauge());
    let (action, severity) = match t.to {
        BreakerState::Open => (Action::GatewayUpstreamEjected, Severity::Warning),
        BreakerState::Closed => (Action::GatewayUpstreamRestored, Severity::Info),
        BreakerState::HalfOpen => return,
    };
    let reason = match t.reason {
        Some(OpenReason::ConsecutiveFailures { failures }) => serde_json::json!({ "consecutive_failures": failures }),
        Some(OpenReason::FailureRatio { failures, requests }) => {
            serde_json::json!({ "failures": failures, "requests": requests })
        }
        Some(OpenReason::ProbeFailed) => serde_json::json!("probe_failed"),
        None => serde_json::Value::Null,
    };
    let ev = events
        .event(action, if t.to == BreakerState::Open { Outcome::Failure } else { Outcome::Success })
        .actor(Actor::System)
        .severity(severity)
        .details(serde_json::json!({
            "upstream": name,
            "from": t.from.as_str(),
            "reason": reason,
            "ejections": t.ejections,
            "ejected_for_secs": t.ejected_for.map(|d| d.as_secs()),
        }));
    tracing::warn!(upstream = name, from = t.from.as_str(), to = t.to.as_str(), "gateway upstream breaker");
    let events = events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.record(ev).await {
            tracing::warn!(error = %e, "cannot record an upstream breaker event");
        }
    });
}

/// The built-in proxy's service: every path and method, through its small stack
/// ([`crate::stack::proxy`]) to [`handle`]. A plain service, not a router: with one route,
/// a router and a middleware would only add their own work to every proxied request.
pub fn service(
    state: AppState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static {
    tower::service_fn(move |req: Request| {
        let state = state.clone();
        async move { Ok(crate::stack::proxy(&state, req, async |req| handle(&state, req).await).await) }
    })
}

async fn handle(state: &AppState, req: Request) -> Response {
    let Some(built_in) = state.built_in_proxy.as_ref() else { return unavailable() };
    let (mut parts, body) = req.into_parts();
    let ctx = request_context(&parts);
    // Plain identity headers come from the gateway or not at all (the proxy drops X-Rampart-*).
    // One pass over the names a request has (a few) says whether there is anything to remove;
    // a removal by name hashes it, three of them on every request cost more than the pass.
    const PLAIN: [&str; 3] = ["remote-user", "remote-email", "remote-groups"];
    if parts.headers.keys().any(|k| PLAIN.contains(&k.as_str())) {
        for name in PLAIN {
            parts.headers.remove(name);
        }
    }
    let original = Original {
        method: upper(parts.method.as_str()),
        proto: Cow::Borrowed("http"),
        host: Cow::Borrowed(
            parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .unwrap_or_default(),
        ),
        uri: Cow::Borrowed(parts.uri.path_and_query().map_or("/", |p| p.as_str())),
    };
    let verdict = {
        let ask = ask_for(state, &original, &parts.headers);
        gateway::decide(state, &state.shield.rate_limits.limiter, &ctx, &ask).await
    };
    match verdict {
        Ok(Verdict::Allow { assertion, identity, .. }) => {
            let extra = identity_headers(assertion, identity.as_ref());
            let ip = ctx.ip.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            let req = Request::from_parts(parts, body);
            built_in.proxy.forward(&built_in.upstream, req, Downstream::http(ip), &extra).await.map(Body::new)
        }
        Ok(v) => render(state, Door::BuiltIn, &original, v),
        Err(e) => {
            tracing::error!(error = %e, "gateway cannot decide");
            unavailable()
        }
    }
}

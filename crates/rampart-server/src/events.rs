//! The security-event pipeline: the one way features record what happened.
//!
//! A feature builds a [`SecurityEvent`] (usually through [`RequestContext::event`], which fills
//! in request id, client IP and user agent) and either hands it to a storage method that writes
//! it in the same transaction as the state change, then calls [`SecurityEvents::observed`], or,
//! for events without a state change, calls [`SecurityEvents::record`]. Either way the event
//! is also logged on the `rampart::security` target and counted in the metrics.

use crate::metrics::Metrics;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use rampart_domain::{Action, Clock, Outcome, SecurityEvent};
use rampart_store::{Store, StoreError};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SecurityEvents {
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl SecurityEvents {
    pub fn new(store: Store, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self { store, metrics, clock }
    }

    /// A fresh event stamped now, with a UUIDv7 id.
    pub fn event(&self, action: Action, outcome: Outcome) -> SecurityEvent {
        SecurityEvent::new(uuid::Uuid::now_v7(), self.clock.now(), action, outcome)
    }

    /// A fresh event carrying the request's context when there is a request (HTTP), and none
    /// when there is not (CLI).
    pub fn event_for(&self, ctx: Option<&RequestContext>, action: Action, outcome: Outcome) -> SecurityEvent {
        match ctx {
            Some(ctx) => ctx.event(self, action, outcome),
            None => self.event(action, outcome),
        }
    }

    /// Persists an event that belongs to no state change, then logs and counts it.
    pub async fn record(&self, event: SecurityEvent) -> Result<(), StoreError> {
        self.store.append_event(&event).await?;
        self.observed(&event);
        Ok(())
    }

    /// Logs and counts an event that storage already persisted with its state change.
    pub fn observed(&self, e: &SecurityEvent) {
        self.metrics.observe_event(e.action.as_str(), e.outcome.as_str());
        tracing::info!(
            target: "rampart::security",
            event_id = %e.id,
            action = e.action.as_str(),
            outcome = e.outcome.as_str(),
            severity = e.severity.as_str(),
            actor_type = e.actor.kind(),
            actor_id = e.actor.id().map(tracing::field::display),
            resource_type = e.resource.as_ref().map(|r| r.kind.as_str()),
            resource_id = e.resource.as_ref().and_then(|r| r.id.as_deref()),
            ip = e.ip.map(tracing::field::display),
            "security event"
        );
    }
}

/// Who is asking, as far as the transport tells: request id, client address (resolved through
/// trusted proxies by `shield::client_ip`; the TCP peer otherwise), user agent.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// An event carrying this request's context.
    pub fn event(&self, events: &SecurityEvents, action: Action, outcome: Outcome) -> SecurityEvent {
        events
            .event(action, outcome)
            .ip(self.ip)
            .user_agent(self.user_agent.as_deref())
            .request_id(self.request_id.as_deref())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestContext {
            request_id: crate::request_id::current(),
            ip: parts
                .extensions
                .get::<crate::shield::client_ip::ClientIp>()
                .map(|c| c.0)
                .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())),
            user_agent: parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }
}

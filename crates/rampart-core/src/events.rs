//! The security-event pipeline: the one way features record what happened.
//!
//! A feature builds a [`SecurityEvent`] (usually through [`RequestContext::event`], which fills
//! in request id, client IP and user agent) and either hands it to a storage method that writes
//! it in the same transaction as the state change, then calls [`SecurityEvents::observed`], or,
//! for events without a state change, calls [`SecurityEvents::record`]. Either way the event
//! is also logged on the `rampart::security` target and counted in the metrics.

use crate::metrics::Metrics;
use crate::rfc3339;
use rampart_domain::{Action, Clock, Outcome, SecurityEvent};
use rampart_store::{Store, StoreError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct SecurityEvents {
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    aggregated: Arc<Mutex<HashMap<(Action, String), Pending>>>,
    /// Wakes the mail worker when an event with a security notice was committed.
    mail_wake: Arc<tokio::sync::Notify>,
}

/// A high-volume event already written once in this interval, and what came after it.
#[derive(Debug)]
struct Pending {
    template: SecurityEvent,
    suppressed: u64,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
}

/// How many distinct keys are aggregated separately per interval; past that, the rest of an
/// action's occurrences share one overflow key (`*`), so a flood of distinct keys (addresses)
/// cannot grow memory without bound.
pub const AGGREGATE_MAX_KEYS: usize = 10_000;

impl SecurityEvents {
    pub fn new(store: Store, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self { store, metrics, clock, aggregated: Arc::default(), mail_wake: Arc::default() }
    }

    /// These events, waking `mail_wake` (the mailer's, [`crate::mail::Mailer::wake_handle`])
    /// when one that gives rise to a security notice is observed.
    pub fn waking(mut self, mail_wake: Arc<tokio::sync::Notify>) -> Self {
        self.mail_wake = mail_wake;
        self
    }

    /// Records a high-volume event (refusals of a locked client, denied permissions, rate-limit
    /// hits) at most twice per `key` and aggregation interval: the first occurrence at once,
    /// the rest as one summary at the interval's end ([`SecurityEvents::flush_aggregated`])
    /// whose details carry `aggregated: {count, first, last}`. Every occurrence is counted in
    /// the metrics and logged.
    pub async fn record_aggregated(&self, key: &str, event: SecurityEvent) -> Result<(), StoreError> {
        let first_time = {
            let mut map = self.aggregated.lock().unwrap_or_else(|p| p.into_inner());
            let overflow = map.len() >= AGGREGATE_MAX_KEYS && !map.contains_key(&(event.action, key.to_string()));
            let k = (event.action, if overflow { "*".to_string() } else { key.to_string() });
            match map.get_mut(&k) {
                Some(p) => {
                    p.suppressed += 1;
                    p.first.get_or_insert(event.ts);
                    p.last = Some(event.ts);
                    false
                }
                None => {
                    map.insert(k, Pending { template: event.clone(), suppressed: 0, first: None, last: None });
                    true
                }
            }
        };
        if first_time {
            self.record(event).await
        } else {
            self.observed(&event);
            Ok(())
        }
    }

    /// Writes one summary event per key that had occurrences after its first in the interval,
    /// and starts a new interval. Run periodically and at shutdown.
    pub async fn flush_aggregated(&self, interval_secs: u64) {
        let pending = std::mem::take(&mut *self.aggregated.lock().unwrap_or_else(|p| p.into_inner()));
        for p in pending.into_values() {
            if p.suppressed == 0 {
                continue;
            }
            let mut ev = p.template;
            ev.id = uuid::Uuid::now_v7();
            ev.ts = self.clock.now();
            let summary = serde_json::json!({
                "count": p.suppressed,
                "first": p.first.map(rfc3339),
                "last": p.last.map(rfc3339),
                "interval_secs": interval_secs,
            });
            match ev.details.as_object_mut() {
                Some(d) => {
                    d.insert("aggregated".into(), summary);
                }
                None => ev.details = serde_json::json!({ "aggregated": summary }),
            }
            // The summary is counted in the metrics already (each occurrence was): store it only.
            if let Err(e) = self.store.append_event(&ev).await {
                tracing::warn!(error = %e, action = ev.action.as_str(), "could not write an aggregated event");
            }
        }
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
        if rampart_domain::notice::notice_for(e).is_some() {
            self.mail_wake.notify_one();
        }
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
/// trusted proxies by the server's client-IP layer; the TCP peer otherwise), user agent, route.
/// The server builds it from each request; the CLI and background work pass none.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The route asked for (its pattern, e.g. `/v1/admin/users/{id}`, where the router matched
    /// one; the path otherwise), named in refusals so the dashboard can count them by route.
    pub route: Option<String>,
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

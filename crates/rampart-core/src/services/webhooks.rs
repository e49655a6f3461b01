//! Signed webhooks (Standard Webhooks): managing endpoints (`/v1/admin/webhooks`), and the
//! delivery worker that drains the outbox.
//!
//! Every recorded event queues a delivery to each enabled endpoint whose filters take it, in
//! the transaction that records the event (the store's outbox, migration 0018). The worker
//! ([`run_worker`]) claims due deliveries, signs each with the endpoint's secret (and, during a
//! rotation's overlap, the previous one too), sends it through a [`Transport`] (the server's
//! guarded HTTP client: no internal addresses unless listed in `webhooks.allow_networks`, no
//! redirects, the answer read up to a cap) and records the attempt. A failure is tried again
//! on [`rampart_domain::webhook::RETRY_SCHEDULE`], with jitter; an endpoint failing for
//! `webhooks.disable_after_days` is disabled and its creator e-mailed. A worker killed
//! mid-delivery leaves its claim to run out, and the delivery goes again under the same
//! `webhook-id` (at least once).

use crate::App;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use rampart_domain::webhook::{EventFilter, WebhookSecret, address_allowed, retry_delay, signature_header};
use rampart_domain::{Action, Actor, Outcome, Resource, Severity};
use rampart_store::{AttemptOutcome, ClaimedMessage, StoredWebhook, WebhookAttempt, WebhookChange};
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The most endpoints there may be.
pub const MAX_ENDPOINTS: usize = 100;
/// The most filters one endpoint may have.
pub const MAX_FILTERS: usize = 50;
/// The longest overlap of a secret rotation (seven days).
pub const MAX_GRACE_SECS: u64 = 7 * 86_400;
/// The overlap when none is asked for (one day).
pub const DEFAULT_GRACE_SECS: u64 = 86_400;

/// One delivery to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What the receiver answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The start of the answer (at most `webhooks.response_bytes`).
    pub body: String,
    pub latency: Duration,
}

/// Why a delivery got no answer.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// A stable word for the log: `refused`, `timeout`, `connect`, `resolve`, `invalid_url`, `broken`.
    pub kind: &'static str,
    pub message: String,
    pub latency: Duration,
}

/// How deliveries leave the process (the server's guarded HTTP client).
pub trait Transport: Send + Sync {
    fn send(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Result<Answer, TransportError>> + Send + '_>>;
}

/// The guard's rule for this configuration: a public address, or one in `allow_networks`.
pub fn address_rule(state: &App) -> impl Fn(IpAddr) -> Result<(), &'static str> + Send + Sync + 'static {
    let allow = state.settings.webhooks.allow_networks.clone();
    move |ip| address_allowed(ip, &allow)
}

/// An endpoint as submitted.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    /// `standard` (the default) or `slack`.
    pub format: Option<String>,
}

/// The bodies an endpoint may take: Standard Webhooks, or a Slack-compatible incoming webhook's.
pub const FORMATS: [&str; 2] = ["standard", "slack"];

fn check_format(format: Option<&str>, errors: &mut Vec<FieldProblem>) {
    if let Some(f) = format
        && !FORMATS.contains(&f)
    {
        errors.push(problem("format", "invalid_format", "\"standard\" or \"slack\""));
    }
}

/// A Slack-compatible incoming webhook's body for an event: one line of text.
pub fn slack_text(e: &rampart_domain::SecurityEvent) -> String {
    let when = e.ts.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut text = format!("*{}* ({}, {}) at {when}", e.action.as_str(), e.outcome.as_str(), e.severity.as_str());
    if let Some(rule) = e.details.get("rule").and_then(serde_json::Value::as_str) {
        let count = e.details.get("count").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let window = e.details.get("window_secs").and_then(serde_json::Value::as_u64).unwrap_or(0);
        text = format!(":rotating_light: Rampart alert *{rule}*: {count} matching events in {window} s ({when})");
    }
    text
}

fn problem(field: &str, code: &str, message: &str) -> FieldProblem {
    FieldProblem::new(field, code, message)
}

/// Checks a URL: `http` or `https`, a host, no credentials in it, at most 2,000 characters,
/// and, when the host is a literal address, one the guard allows (a host name is judged at
/// each delivery, on the addresses it then resolves to).
fn check_url(state: &App, url: &str, errors: &mut Vec<FieldProblem>) {
    let parsed = match url::Url::parse(url) {
        Ok(u) if url.len() <= 2000 => u,
        _ => {
            errors.push(problem("url", "invalid_url", "an absolute http or https URL of at most 2,000 characters"));
            return;
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        errors.push(problem("url", "invalid_url", "an absolute http or https URL"));
        return;
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        errors.push(problem("url", "invalid_url", "credentials do not belong in the URL"));
        return;
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    if let Some(ip) = literal
        && let Err(why) = address_rule(state)(ip)
    {
        errors.push(problem(
            "url",
            "address_refused",
            &format!("a {why} address is not a webhook receiver (list its network in webhooks.allow_networks)"),
        ));
    }
}

fn check_filters(events: &[String], errors: &mut Vec<FieldProblem>) -> Vec<EventFilter> {
    if events.is_empty() || events.len() > MAX_FILTERS {
        errors.push(problem("events", "invalid_events", "one to 50 filters: \"*\", \"auth.*\" or an action name"));
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in events {
        match EventFilter::parse(e) {
            Some(f) if !out.contains(&f) => out.push(f),
            Some(_) => {}
            None => errors.push(problem(
                "events",
                "invalid_event_filter",
                &format!("{e:?} is not \"*\", \"category.*\" or an action name like auth.login"),
            )),
        }
    }
    out
}

fn seal(state: &App, id: Uuid, secret: &WebhookSecret) -> String {
    state.master_key.seal(secret.expose(), &aad(id), &mut rand::rngs::OsRng)
}

fn aad(id: Uuid) -> Vec<u8> {
    rampart_store::sealed::aad::webhook_secret(id)
}

fn details(w: &StoredWebhook) -> serde_json::Value {
    serde_json::json!({
        "url": w.url,
        "events": w.filters.iter().map(EventFilter::text).collect::<Vec<_>>(),
        "enabled": w.enabled,
    })
}

/// Adds an endpoint; returns it and its secret's text (shown this once).
pub async fn create(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    input: EndpointInput,
) -> Result<(StoredWebhook, String), ServiceError> {
    let mut errors = Vec::new();
    let url = input.url.unwrap_or_default();
    check_url(state, &url, &mut errors);
    let filters = check_filters(&input.events.unwrap_or_default(), &mut errors);
    check_format(input.format.as_deref(), &mut errors);
    let description = input.description.unwrap_or_default();
    if description.chars().count() > 500 {
        errors.push(problem("description", "too_long", "at most 500 characters"));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    if state.store.list_webhooks().await?.len() >= MAX_ENDPOINTS {
        return Err(ServiceError::Validation(vec![problem("url", "too_many", "at most 100 endpoints")]));
    }
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let secret = WebhookSecret::generate(&mut rand::rngs::OsRng);
    let w = StoredWebhook {
        id,
        url,
        description,
        enabled: input.enabled.unwrap_or(true),
        filters,
        secret_sealed: seal(state, id, &secret),
        previous_secret_sealed: None,
        previous_until: None,
        created_by: match actor {
            Actor::User(u) => Some(u),
            _ => None,
        },
        created_at: now,
        updated_at: now,
        failing_since: None,
        disabled_reason: None,
        format: input.format.unwrap_or_else(|| "standard".into()),
    };
    let event = state
        .events
        .event_for(ctx, Action::WebhookCreated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("webhook", id))
        .details(details(&w));
    state.store.create_webhook(&w, &event).await?;
    state.events.observed(&event);
    Ok((w, secret.reveal()))
}

pub async fn list(state: &App) -> Result<Vec<StoredWebhook>, ServiceError> {
    Ok(state.store.list_webhooks().await?)
}

pub async fn get(state: &App, id: Uuid) -> Result<StoredWebhook, ServiceError> {
    state.store.get_webhook(id).await?.ok_or(ServiceError::NotFound)
}

/// Changes an endpoint (only the fields given).
pub async fn update(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    id: Uuid,
    input: EndpointInput,
) -> Result<StoredWebhook, ServiceError> {
    let mut errors = Vec::new();
    if let Some(url) = &input.url {
        check_url(state, url, &mut errors);
    }
    let filters = input.events.as_ref().map(|e| check_filters(e, &mut errors));
    if input.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errors.push(problem("description", "too_long", "at most 500 characters"));
    }
    check_format(input.format.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    let change = WebhookChange {
        url: input.url,
        description: input.description,
        enabled: input.enabled,
        filters,
        format: input.format,
    };
    let event = state
        .events
        .event_for(ctx, Action::WebhookUpdated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("webhook", id))
        .details(serde_json::json!({
            "url": change.url,
            "events": change.filters.as_ref().map(|f| f.iter().map(EventFilter::text).collect::<Vec<_>>()),
            "enabled": change.enabled,
        }));
    if !state.store.update_webhook(id, &change, state.clock.now(), &event).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    get(state, id).await
}

/// Removes an endpoint with its pending deliveries and log.
pub async fn delete(state: &App, ctx: Option<&RequestContext>, actor: Actor, id: Uuid) -> Result<(), ServiceError> {
    let event = state
        .events
        .event_for(ctx, Action::WebhookDeleted, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("webhook", id));
    if !state.store.delete_webhook(id, &event).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    Ok(())
}

/// Replaces the endpoint's secret; the old one keeps signing for `grace_secs` (default one
/// day, at most seven; 0: it stops at once). Returns the new secret's text.
pub async fn rotate_secret(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    id: Uuid,
    grace_secs: Option<u64>,
) -> Result<String, ServiceError> {
    let grace = grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(ServiceError::Validation(vec![problem(
            "grace_seconds",
            "out_of_range",
            "from 0 to 604800 (seven days)",
        )]));
    }
    let now = state.clock.now();
    let secret = WebhookSecret::generate(&mut rand::rngs::OsRng);
    let until = (grace > 0).then(|| now + time::Duration::seconds(grace as i64));
    let event = state
        .events
        .event_for(ctx, Action::WebhookSecretRotated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("webhook", id))
        .details(serde_json::json!({ "grace_seconds": grace }));
    if !state.store.rotate_webhook_secret(id, &seal(state, id, &secret), until, now, &event).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    Ok(secret.reveal())
}

/// Queues a `webhook.test` event for this endpoint alone.
pub async fn send_test(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    id: Uuid,
) -> Result<Uuid, ServiceError> {
    let event = state
        .events
        .event_for(ctx, Action::WebhookTest, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("webhook", id))
        .details(serde_json::json!({ "message": "a test delivery from Rampart" }));
    if !state.store.queue_webhook_test(id, &event).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    Ok(event.id)
}

/// The delivery log of an endpoint, newest first: `status` `delivered` or `failed`, a page of
/// `limit` after the cursor (the last attempt's id of the previous page).
pub async fn deliveries(
    state: &App,
    id: Uuid,
    status: Option<&str>,
    cursor: Option<Uuid>,
    limit: u32,
) -> Result<(Vec<WebhookAttempt>, Option<Uuid>), ServiceError> {
    if let Some(s) = status
        && !matches!(s, "delivered" | "failed")
    {
        return Err(ServiceError::Validation(vec![problem("status", "invalid_choice", "delivered or failed")]));
    }
    get(state, id).await?;
    let before = match cursor {
        Some(c) => match state.store.get_webhook_attempt(c).await? {
            Some(a) if a.endpoint_id == id => Some((a.at, a.id)),
            _ => {
                return Err(ServiceError::Validation(vec![problem(
                    "cursor",
                    "invalid_cursor",
                    "not a cursor of this list",
                )]));
            }
        },
        None => None,
    };
    let mut rows = state.store.list_webhook_attempts(id, status, before, limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|a| a.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// Queues the message of a logged attempt again, due now.
pub async fn redeliver(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    attempt: Uuid,
) -> Result<(), ServiceError> {
    let a = state.store.get_webhook_attempt(attempt).await?.ok_or(ServiceError::NotFound)?;
    let event = state
        .events
        .event_for(ctx, Action::WebhookRedelivered, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("webhook", a.endpoint_id))
        .details(serde_json::json!({ "event_id": a.event_id, "attempt_id": a.id }));
    if !state.store.redeliver_webhook(a.event_id, a.endpoint_id, state.clock.now(), &event).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    Ok(())
}

/// The `webhook-id` of an event's deliveries (the same for every attempt and endpoint).
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// Drains the outbox until `stop` resolves: every `webhooks.poll_ms`, claims what is due (as
/// many as there are free delivery slots) and sends each in its own task, at most
/// `webhooks.concurrency` at once and `webhooks.per_endpoint_concurrency` per endpoint.
pub async fn run_worker(state: App, transport: Arc<dyn Transport>, stop: impl Future<Output = ()>) {
    let settings = state.settings.webhooks.clone();
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let per_endpoint: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>> = Arc::default();
    let work = async {
        loop {
            let free = slots.available_permits();
            if free > 0 {
                let now = state.clock.now();
                match state.store.claim_webhook_messages(now, now + settings.claim, free as u32).await {
                    Ok(claimed) => {
                        for m in claimed {
                            let Ok(permit) = slots.clone().acquire_owned().await else { return };
                            let gate = {
                                let mut map = per_endpoint.lock().unwrap_or_else(|e| e.into_inner());
                                map.entry(m.endpoint_id)
                                    .or_insert_with(|| Arc::new(Semaphore::new(settings.per_endpoint_concurrency)))
                                    .clone()
                            };
                            let (state, transport) = (state.clone(), transport.clone());
                            tokio::spawn(async move {
                                let _slot = permit;
                                let Ok(_gate) = gate.acquire_owned().await else { return };
                                if let Err(e) = deliver(&state, transport.as_ref(), &m).await {
                                    tracing::warn!(error = %e, event = %m.event_id, "webhook delivery not recorded; it goes again when its claim runs out");
                                }
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim webhook deliveries"),
                }
            }
            tokio::time::sleep(settings.poll).await;
        }
    };
    tokio::select! {
        () = work => {}
        () = stop => {}
    }
}

/// One attempt at one message: build, sign, send, record.
pub async fn deliver(state: &App, transport: &dyn Transport, m: &ClaimedMessage) -> Result<(), ServiceError> {
    let attempt = m.attempts + 1;
    let Some(endpoint) = state.store.get_webhook(m.endpoint_id).await? else { return Ok(()) };
    let at = state.clock.now();
    let mut log = WebhookAttempt {
        id: Uuid::now_v7(),
        event_id: m.event_id,
        endpoint_id: m.endpoint_id,
        attempt: attempt as i32,
        at,
        status: "failed".into(),
        http_status: None,
        latency_ms: 0,
        error: None,
        response: None,
        next_attempt_at: None,
    };
    let give_up = |log: &mut WebhookAttempt, why: &str| {
        log.error = Some(why.to_string());
    };
    if !endpoint.enabled {
        give_up(&mut log, "endpoint_disabled");
        state.store.record_webhook_attempt(&log, AttemptOutcome::GaveUp, None).await?;
        return Ok(());
    }
    let Some(stored) = state.store.event_by_id(m.event_id).await? else {
        give_up(&mut log, "event_purged");
        state.store.record_webhook_attempt(&log, AttemptOutcome::GaveUp, None).await?;
        return Ok(());
    };
    let body = if endpoint.format == "slack" {
        serde_json::to_vec(&serde_json::json!({ "text": slack_text(&stored.event) }))
    } else {
        serde_json::to_vec(&serde_json::json!({
            "type": stored.event.action.as_str(),
            "timestamp": stored.event.ts.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "data": stored.chained().to_json(),
        }))
    }
    .unwrap_or_default();
    let secrets = secrets_in_force(state, &endpoint, at)?;
    let id = message_id(m.event_id);
    let ts = at.unix_timestamp();
    let signature = signature_header(&secrets.iter().collect::<Vec<_>>(), &id, ts, &body);
    let out = Outgoing {
        url: endpoint.url.clone(),
        headers: vec![
            ("content-type", "application/json".into()),
            ("user-agent", concat!("Rampart-Webhooks/", env!("CARGO_PKG_VERSION")).into()),
            ("webhook-id", id),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    };
    let delivered = match transport.send(out).await {
        Ok(answer) => {
            log.http_status = Some(i32::from(answer.status));
            log.latency_ms = answer.latency.as_millis() as i64;
            log.response = Some(answer.body);
            if (200..300).contains(&answer.status) {
                true
            } else {
                log.error = Some(format!("http_{}", answer.status));
                false
            }
        }
        Err(e) => {
            log.latency_ms = e.latency.as_millis() as i64;
            log.error = Some(format!("{}: {}", e.kind, e.message));
            false
        }
    };
    let mut disable = None;
    let outcome = if delivered {
        log.status = "delivered".into();
        AttemptOutcome::Delivered
    } else {
        if let (Some(limit), Some(since)) = (state.settings.webhooks.disable_after, endpoint.failing_since)
            && at - since >= limit
        {
            disable = Some(
                state
                    .events
                    .event(Action::WebhookDisabled, Outcome::Success)
                    .actor(Actor::System)
                    .severity(Severity::Warning)
                    .resource(Resource::new("webhook", endpoint.id))
                    .details(serde_json::json!({ "url": endpoint.url, "failing_since": since.unix_timestamp() })),
            );
        }
        match retry_delay(attempt, rand::rngs::OsRng.r#gen::<f64>()) {
            Some(d) if disable.is_none() => {
                let next = at + d;
                log.next_attempt_at = Some(next);
                AttemptOutcome::RetryAt(next)
            }
            _ => AttemptOutcome::GaveUp,
        }
    };
    let reason = "failing for webhooks.disable_after_days";
    state.store.record_webhook_attempt(&log, outcome, disable.as_ref().map(|e| (reason, e))).await?;
    if let Some(event) = &disable {
        state.events.observed(event);
        tell_the_creator(state, &endpoint).await;
    }
    Ok(())
}

/// The secrets signing now: the current one, and the previous one during its overlap.
fn secrets_in_force(state: &App, w: &StoredWebhook, now: OffsetDateTime) -> Result<Vec<WebhookSecret>, ServiceError> {
    let open = |sealed: &str| {
        state.master_key.open(sealed, &aad(w.id)).map(WebhookSecret::from_bytes).map_err(|_| {
            ServiceError::Internal(format!("webhook {} secret does not open under the master key", w.id).into())
        })
    };
    let mut out = vec![open(&w.secret_sealed)?];
    if let (Some(prev), Some(until)) = (&w.previous_secret_sealed, w.previous_until)
        && until > now
    {
        out.push(open(prev)?);
    }
    Ok(out)
}

async fn tell_the_creator(state: &App, w: &StoredWebhook) {
    let Some(creator) = w.created_by else { return };
    let Ok(Some(user)) = state.store.get_user(rampart_domain::UserId(creator)).await else { return };
    let mail = OutgoingMail {
        to: user.email.to_string(),
        subject: "A webhook endpoint was disabled".into(),
        text: format!(
            "Rampart disabled the webhook endpoint {url} because its deliveries kept failing for {days} days.\n\n\
             Deliveries queued for it are no longer sent. Once the receiver works again, enable the endpoint \
             (PATCH /v1/admin/webhooks/{id} with {{\"enabled\": true}}) and redeliver what it missed from its \
             delivery log.\n",
            url = w.url,
            days = state.settings.webhooks.disable_after.map(|d| d.whole_days()).unwrap_or(0),
            id = w.id,
        ),
        html: None,
    };
    super::notifications::queue(state, mail, Some(user.id));
}

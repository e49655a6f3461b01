//! Alert rules over the audit log: "50 failed sign-ins in 5 minutes", "any failed audit
//! verification", with a cooldown so one incident is one alert, sent to e-mail addresses and
//! webhook endpoints (signed, or a Slack-compatible body).
//!
//! The evaluator ([`run_evaluator`]) reads the log forward from where it started (the longest
//! enabled window back), counts each rule's matches in a sliding window, and fires a rule when
//! its count is reached: [`rampart_store::Store::fire_alert`] moves the rule's `last_fired_at`
//! only when its cooldown is over, so instances watching the same database fire it once.

use crate::App;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use rampart_domain::alert::{Channel, MAX_WINDOW_SECS, Match, Window};
use rampart_domain::webhook::EventFilter;
use rampart_domain::{Action, Actor, Email, Outcome, Resource, Severity};
use rampart_store::{AlertSends, StoredAlertRule};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// How often the evaluator reads the log.
pub const EVALUATE_EVERY: Duration = Duration::from_millis(500);
/// Events read per step at most.
const STEP: u32 = 5000;
/// Custom rules at most.
const MAX_RULES: usize = 200;
const MAX_CHANNELS: usize = 10;
const MAX_COOLDOWN_SECS: u32 = 7 * 86_400;

/// A rule as given to create or replace it.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub name: String,
    pub action: String,
    pub outcome: Option<String>,
    pub severity: Option<String>,
    pub count: u32,
    pub window_secs: u32,
    pub cooldown_secs: u32,
    pub channels: Vec<Channel>,
    pub enabled: Option<bool>,
}

/// A stored rule's match and channels (`None`: the row is not one Rampart wrote).
pub fn parsed(r: &StoredAlertRule) -> Option<(Match, Vec<Channel>)> {
    let m = Match {
        action: EventFilter::parse(&r.action)?,
        outcome: match &r.outcome {
            Some(o) => Some(Outcome::parse(o)?),
            None => None,
        },
        severity: match &r.severity {
            Some(s) => Some(Severity::parse(s)?),
            None => None,
        },
    };
    Some((m, serde_json::from_str(&r.channels).ok()?))
}

fn problem(field: &str, code: &str, message: &str) -> FieldProblem {
    FieldProblem::new(field, code, message)
}

async fn check(state: &App, input: &RuleInput) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    let name_len = input.name.trim().chars().count();
    if name_len == 0 || name_len > 100 || input.name.chars().any(char::is_control) {
        errors.push(problem("name", "invalid_name", "1 to 100 characters"));
    }
    if EventFilter::parse(&input.action).is_none() {
        errors.push(problem("match.action", "invalid_event_filter", "an action name like auth.login, or auth.*"));
    }
    if input.outcome.as_deref().is_some_and(|o| Outcome::parse(o).is_none()) {
        errors.push(problem("match.outcome", "invalid_outcome", "success, failure or denied"));
    }
    if input.severity.as_deref().is_some_and(|s| Severity::parse(s).is_none()) {
        errors.push(problem("match.severity", "invalid_severity", "info, warning or critical"));
    }
    if !(1..=100_000).contains(&input.count) {
        errors.push(problem("threshold.count", "out_of_range", "1 to 100000"));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&input.window_secs) {
        errors.push(problem("threshold.window_secs", "out_of_range", "1 to 86400"));
    }
    if input.cooldown_secs > MAX_COOLDOWN_SECS {
        errors.push(problem("cooldown_secs", "out_of_range", "0 to 604800"));
    }
    if input.channels.len() > MAX_CHANNELS {
        errors.push(problem("channels", "too_many", "at most 10 channels"));
    }
    for c in &input.channels {
        match c {
            Channel::Email(address) if Email::parse(address).is_err() => {
                errors.push(problem("channels", "invalid_email", &format!("{address:?} is not an e-mail address")));
            }
            Channel::Webhook(id) if state.store.get_webhook(*id).await?.is_none() => {
                errors.push(problem("channels", "unknown_webhook", &format!("no webhook endpoint {id}")));
            }
            _ => {}
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ServiceError::Validation(errors)) }
}

fn details(r: &StoredAlertRule) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "action": r.action,
        "outcome": r.outcome,
        "severity": r.severity,
        "count": r.count,
        "window_secs": r.window_secs,
        "cooldown_secs": r.cooldown_secs,
        "channels": serde_json::from_str::<serde_json::Value>(&r.channels).unwrap_or_default(),
        "enabled": r.enabled,
    })
}

fn stored(id: Uuid, input: RuleInput, builtin: bool, now: time::OffsetDateTime) -> StoredAlertRule {
    StoredAlertRule {
        id,
        name: input.name.trim().to_string(),
        action: input.action,
        outcome: input.outcome,
        severity: input.severity,
        count: input.count as i32,
        window_secs: input.window_secs as i32,
        cooldown_secs: input.cooldown_secs as i32,
        channels: serde_json::to_string(&input.channels).unwrap_or_else(|_| "[]".into()),
        enabled: input.enabled.unwrap_or(true),
        builtin,
        last_fired_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn conflict(e: rampart_store::StoreError) -> ServiceError {
    match e {
        rampart_store::StoreError::Conflict(why) => ServiceError::Conflict(why),
        e => e.into(),
    }
}

pub async fn list(state: &App) -> Result<Vec<StoredAlertRule>, ServiceError> {
    Ok(state.store.list_alert_rules().await?)
}

pub async fn get(state: &App, id: Uuid) -> Result<StoredAlertRule, ServiceError> {
    state.store.get_alert_rule(id).await?.ok_or(ServiceError::NotFound)
}

/// Adds a rule.
pub async fn create(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    input: RuleInput,
) -> Result<StoredAlertRule, ServiceError> {
    check(state, &input).await?;
    if state.store.list_alert_rules().await?.iter().filter(|r| !r.builtin).count() >= MAX_RULES {
        return Err(ServiceError::Validation(vec![problem("name", "too_many", "at most 200 rules")]));
    }
    let rule = stored(Uuid::now_v7(), input, false, state.clock.now());
    let event = state
        .events
        .event_for(ctx, Action::AlertRuleCreated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("alert_rule", rule.id))
        .details(details(&rule));
    state.store.create_alert_rule(&rule, &event).await.map_err(conflict)?;
    state.events.observed(&event);
    Ok(rule)
}

/// Replaces a rule's definition (a built-in one too: its thresholds, channels, or `enabled`).
pub async fn replace(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    id: Uuid,
    input: RuleInput,
) -> Result<StoredAlertRule, ServiceError> {
    let before = get(state, id).await?;
    check(state, &input).await?;
    let mut rule = stored(id, input, before.builtin, before.created_at);
    rule.updated_at = state.clock.now();
    let event = state
        .events
        .event_for(ctx, Action::AlertRuleUpdated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("alert_rule", id))
        .details(details(&rule));
    if !state.store.update_alert_rule(&rule, &event).await.map_err(conflict)? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    get(state, id).await
}

/// Removes a custom rule (a built-in one is disabled instead: `409`).
pub async fn delete(state: &App, ctx: Option<&RequestContext>, actor: Actor, id: Uuid) -> Result<(), ServiceError> {
    let event = state
        .events
        .event_for(ctx, Action::AlertRuleDeleted, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("alert_rule", id));
    if !state.store.delete_alert_rule(id, &event).await.map_err(conflict)? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&event);
    Ok(())
}

/// A rule being watched.
struct Watched {
    rule: StoredAlertRule,
    matcher: Match,
    channels: Vec<Channel>,
}

/// Watches the log and fires rules until `stop` resolves.
pub async fn run_evaluator(state: App, stop: impl Future<Output = ()>) {
    let work = async {
        let mut windows: HashMap<Uuid, Window> = HashMap::new();
        let mut next: Option<i64> = None;
        loop {
            if let Err(e) = step(&state, &mut windows, &mut next).await {
                tracing::warn!(error = %e, "alert evaluation failed; trying again");
            }
            tokio::time::sleep(EVALUATE_EVERY).await;
        }
    };
    tokio::select! {
        () = work => {}
        () = stop => {}
    }
}

async fn step(state: &App, windows: &mut HashMap<Uuid, Window>, next: &mut Option<i64>) -> Result<(), ServiceError> {
    let watched: Vec<Watched> = state
        .store
        .list_alert_rules()
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .filter_map(|rule| parsed(&rule).map(|(matcher, channels)| Watched { rule, matcher, channels }))
        .collect();
    windows.retain(|id, _| watched.iter().any(|w| w.rule.id == *id));
    let from = match *next {
        Some(n) => n,
        None => {
            // At start: back as far as the longest window, so a burst spanning a restart counts.
            let longest = watched.iter().map(|w| i64::from(w.rule.window_secs)).max().unwrap_or(0);
            let since = state.clock.now() - time::Duration::seconds(longest);
            match state.store.first_seq_since(since).await? {
                Some(seq) => seq,
                None => state.store.last_seq().await? + 1,
            }
        }
    };
    let heads = state.store.event_heads_from(from, STEP).await?;
    *next = Some(heads.last().map_or(from, |h| h.seq + 1));
    for h in &heads {
        // An alert's own event never counts (a rule over `*` would feed itself).
        if h.action == Action::AlertFired.as_str() {
            continue;
        }
        let (Some(outcome), Some(severity)) = (Outcome::parse(&h.outcome), Severity::parse(&h.severity)) else {
            continue;
        };
        for w in &watched {
            if !w.matcher.matches(&h.action, outcome, severity) {
                continue;
            }
            let window = time::Duration::seconds(i64::from(w.rule.window_secs));
            let count = windows.entry(w.rule.id).or_default().push(h.ts, h.weight, window);
            if count >= w.rule.count.max(1) as u64 && fire(state, w, count, h.seq).await? {
                windows.entry(w.rule.id).or_default().clear();
            }
        }
    }
    Ok(())
}

/// Fires `w` unless its cooldown holds it; true when it fired.
async fn fire(state: &App, w: &Watched, count: u64, last_seq: i64) -> Result<bool, ServiceError> {
    let now = state.clock.now();
    let event = state
        .events
        .event(Action::AlertFired, Outcome::Success)
        .actor(Actor::System)
        .severity(Severity::Critical)
        .resource(Resource::new("alert_rule", w.rule.id))
        .details(serde_json::json!({
            "rule": w.rule.name,
            "action": w.rule.action,
            "outcome": w.rule.outcome,
            "count": count,
            "window_secs": w.rule.window_secs,
            "last_seq": last_seq,
        }));
    let mut sends = AlertSends::default();
    for c in &w.channels {
        match c {
            Channel::Webhook(id) => sends.endpoints.push(*id),
            Channel::Email(to) => {
                let mail = OutgoingMail {
                    to: to.clone(),
                    subject: format!("[{}] Alert: {}", state.settings.ui.product_name, w.rule.name),
                    text: format!(
                        "The alert rule \"{name}\" fired: {count} events matching {action}{outcome} within {window} seconds \
                         (the threshold is {threshold}).\n\nLook at the audit log (GET /v1/admin/audit?action={action}) for \
                         what happened. The rule stays quiet for {cooldown} seconds, so this incident sends no more alerts.\n",
                        name = w.rule.name,
                        action = w.rule.action,
                        outcome = w.rule.outcome.as_deref().map(|o| format!(" ({o})")).unwrap_or_default(),
                        window = w.rule.window_secs,
                        threshold = w.rule.count,
                        cooldown = w.rule.cooldown_secs,
                    ),
                    html: None,
                };
                let id = Uuid::now_v7();
                sends.mails.push((id, super::notifications::seal(state, id, &mail)));
            }
        }
    }
    let cooled = now - time::Duration::seconds(i64::from(w.rule.cooldown_secs));
    let fired = state.store.fire_alert(w.rule.id, cooled, &event, &sends).await?;
    if fired {
        state.events.observed(&event);
        state.mailer.wake();
        tracing::warn!(rule = %w.rule.name, count, "alert fired");
    }
    Ok(fired)
}

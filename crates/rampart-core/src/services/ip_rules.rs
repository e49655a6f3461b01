//! IP rules: adding, removing and clearing them (admin API and CLI alike), the in-memory copy
//! every request is checked against (reloaded every second, and at once after a change on this
//! instance), and automatic temporary blocks after repeated failed authentications.

use crate::App;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::limiter::MemoryLimiter;
use rampart_domain::iprule::{self, IpAction, IpRule, IpScope};
use rampart_domain::{Action, Actor, Outcome, Resource, Severity};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// How often every instance reloads the rules (so CLI and other instances' changes apply
/// within this long).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The rules in memory, and the failed-authentication counters of the automatic blocker.
#[derive(Debug)]
pub struct IpRules {
    rules: RwLock<Arc<Vec<IpRule>>>,
    failures: MemoryLimiter,
}

impl Default for IpRules {
    fn default() -> Self {
        Self { rules: RwLock::new(Arc::new(Vec::new())), failures: MemoryLimiter::new(100_000) }
    }
}

impl IpRules {
    pub fn current(&self) -> Arc<Vec<IpRule>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reloads the rules from storage (keeps the old copy when storage fails).
    pub async fn reload(&self, state: &App) {
        match state.store.list_ip_rules().await {
            Ok(rules) => *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules),
            Err(e) => tracing::warn!(error = %e, "cannot reload IP rules; keeping the ones in memory"),
        }
    }
}

/// Every rule, expired ones that are not purged yet included (the console's list).
pub async fn list(state: &App) -> Result<Vec<IpRule>, ServiceError> {
    Ok(state.store.list_ip_rules().await?)
}

/// A rule to add, as submitted.
#[derive(Debug, Clone)]
pub struct NewIpRule {
    pub network: String,
    pub action: String,
    pub scope: String,
    pub reason: String,
    pub expires_at: Option<OffsetDateTime>,
}

/// Parses and checks a submitted rule; every problem named by field and code.
pub fn validate(input: &NewIpRule, now: OffsetDateTime) -> Result<(ipnet::IpNet, IpAction, IpScope), ServiceError> {
    let mut errors = Vec::new();
    let err = |field: &str, code: &str, message: &str| FieldProblem::new(field, code, message);
    let network = iprule::parse_cidr(&input.network);
    if network.is_none() {
        errors.push(err("network", "invalid_cidr", "an IPv4 or IPv6 address or network (192.0.2.0/24, 2001:db8::/32)"));
    }
    let action = IpAction::parse(&input.action);
    if action.is_none() {
        errors.push(err("action", "invalid_choice", "allow or block"));
    }
    let scope = IpScope::parse(&input.scope);
    if scope.is_none() {
        errors.push(err("scope", "invalid_choice", "all or admin"));
    }
    if input.reason.chars().count() > 500 {
        errors.push(err("reason", "too_long", "at most 500 characters"));
    }
    if input.expires_at.is_some_and(|t| t <= now) {
        errors.push(err("expires_at", "in_the_past", "must be in the future"));
    }
    match (network, action, scope) {
        (Some(n), Some(a), Some(s)) if errors.is_empty() => Ok((n, a, s)),
        _ => Err(ServiceError::Validation(errors)),
    }
}

/// Adds a rule (recorded as `ip_rule.created` in the same transaction) and applies it here at once.
pub async fn create(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    input: NewIpRule,
) -> Result<IpRule, ServiceError> {
    let now = state.clock.now();
    let (network, action, scope) = validate(&input, now)?;
    let rule = IpRule {
        id: Uuid::now_v7(),
        network,
        action,
        scope,
        reason: input.reason,
        created_at: now,
        expires_at: input.expires_at,
        automatic: false,
    };
    let event = state
        .events
        .event_for(ctx, Action::IpRuleCreated, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("ip_rule", rule.id))
        .details(details(&rule));
    state.store.create_ip_rule(&rule, &event).await?;
    state.events.observed(&event);
    state.ip_rules.reload(state).await;
    Ok(rule)
}

fn details(rule: &IpRule) -> serde_json::Value {
    serde_json::json!({
        "network": rule.network.to_string(),
        "action": rule.action.as_str(),
        "scope": rule.scope.as_str(),
        "reason": rule.reason,
        "expires_at": rule.expires_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "automatic": rule.automatic,
    })
}

/// Removes a rule; false when there is none with this id.
pub async fn remove(state: &App, ctx: Option<&RequestContext>, actor: Actor, id: Uuid) -> Result<bool, ServiceError> {
    let event = state
        .events
        .event_for(ctx, Action::IpRuleDeleted, Outcome::Success)
        .actor(actor)
        .severity(Severity::Warning)
        .resource(Resource::new("ip_rule", id));
    let done = state.store.delete_ip_rule(id, &event).await?;
    if done {
        state.events.observed(&event);
        state.ip_rules.reload(state).await;
    }
    Ok(done)
}

/// Removes every rule (break-glass); returns how many there were.
pub async fn clear(state: &App, actor: Actor, via: &str) -> Result<u64, ServiceError> {
    let event = state
        .events
        .event(Action::IpRulesCleared, Outcome::Success)
        .actor(actor)
        .severity(Severity::Critical)
        .details(serde_json::json!({ "via": via }));
    let n = state.store.clear_ip_rules(&event).await?;
    state.events.observed(&event);
    state.ip_rules.reload(state).await;
    Ok(n)
}

/// Counts a failed authentication from `ip`; past the configured threshold the address is
/// blocked for `auto_block_secs` (unless an allow rule for all routes holds it), recorded as
/// `ip_rule.created` with `automatic: true`.
pub async fn failed_authentication(state: &App, ctx: &RequestContext) {
    let Some(auto) = &state.settings.ip_rules.auto_block else { return };
    let Some(ip) = ctx.ip else { return };
    let quota = auto.failures;
    let now = state.clock.now();
    let now_us = i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX / 4);
    // Counted like the login throttle: per address, per /64 for IPv6.
    let key = rampart_domain::ThrottleKey::address(ip).storage_key();
    if state.ip_rules.failures.decide(&key, quota, now_us).allowed {
        return;
    }
    let rules = state.ip_rules.current();
    if !iprule::may_auto_block(&rules, ip, now)
        || !matches!(iprule::verdict(&rules, ip, false, now), iprule::IpVerdict::Allowed)
    {
        return; // allowlisted, or already blocked
    }
    let rule = IpRule {
        id: Uuid::now_v7(),
        network: iprule::auto_block_network(ip),
        action: IpAction::Block,
        scope: IpScope::All,
        reason: format!("{} failed authentications within {} s", quota.limit, quota.period.as_secs()),
        created_at: now,
        expires_at: Some(now + auto.duration),
        automatic: true,
    };
    let event = state
        .events
        .event(Action::IpRuleCreated, Outcome::Success)
        .actor(Actor::System)
        .severity(Severity::Critical)
        .ip(Some(ip))
        .request_id(ctx.request_id.as_deref())
        .resource(Resource::new("ip_rule", rule.id))
        .details(details(&rule));
    match state.store.create_ip_rule(&rule, &event).await {
        Ok(()) => {
            state.events.observed(&event);
            tracing::warn!(%ip, secs = auto.duration.whole_seconds(), "address blocked automatically after repeated failed authentications");
            state.ip_rules.reload(state).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot store an automatic IP block"),
    }
}

//! Housekeeping: the hourly purge of what is past its retention (`[retention]`): ended
//! sessions, spent tokens and ceremonies, claimed federation payloads and flows past their life, stale throttle counters, expired IP rules, webhook
//! delivery logs, sent mail, bulk exports' records, API-key usage, audit events. Each run is one `retention.purged`
//! event with the rows deleted per class.

use crate::App;
use crate::services;
use rampart_domain::{Action, Actor, Outcome};
use serde_json::{Map, Value, json};

/// Runs every purge; a class that fails is logged and reported as `null`, the others go on.
pub async fn purge(state: &App) {
    let now = state.clock.now();
    let r = &state.settings.retention;
    let mut counts = Map::new();
    let mut note = |class: &str, result: Result<u64, rampart_store::StoreError>| {
        let value = match result {
            Ok(n) => json!(n),
            Err(e) => {
                tracing::warn!(error = %e, class, "purge failed");
                Value::Null
            }
        };
        counts.insert(class.to_string(), value);
    };
    note("ended_sessions_and_tokens", state.store.purge_ended(now, r.ended_sessions).await);
    note("mfa_challenges", state.store.purge_mfa_challenges(now - r.expired_tokens).await);
    note("webauthn_ceremonies", state.store.purge_webauthn_challenges(now - r.expired_tokens).await);
    note("federation_replays", state.store.purge_federation_replays(now).await);
    note("login_counters", state.store.purge_throttle(now, state.settings.login.counter_lifetime).await);
    note("expired_ip_rules", state.store.purge_ip_rules(now - r.expired_ip_rules).await);
    note("webhook_deliveries", state.store.purge_webhook_deliveries(now - r.webhook_deliveries).await);
    note("mail", state.store.purge_mail(now - r.notifications).await);
    note("exports", state.store.purge_exports(now - r.exports).await);
    note("api_key_usage", state.store.purge_api_key_usage(now - state.settings.api_keys.usage_retention).await);
    note("erased_accounts", services::privacy::erase_due(state).await);
    note("audit_events", services::audit::purge_expired(state).await.map(|r| r.map_or(0, |r| r.deleted)));
    let days = |d: time::Duration| json!(d.whole_days());
    let retention_days = json!({
        "ended_sessions": days(r.ended_sessions),
        "expired_tokens": days(r.expired_tokens),
        "expired_ip_rules": days(r.expired_ip_rules),
        "webhook_deliveries": days(r.webhook_deliveries),
        "mail": days(r.notifications),
        "exports": days(r.exports),
        "api_key_usage": days(state.settings.api_keys.usage_retention),
        "audit_events": state.settings.audit.retention.map(days),
    });
    let deleted: u64 = counts.values().filter_map(Value::as_u64).sum();
    let event = state
        .events
        .event(Action::RetentionPurged, Outcome::Success)
        .actor(Actor::System)
        .details(json!({ "deleted": counts, "total": deleted, "retention_days": retention_days }));
    if let Err(e) = state.events.record(event).await {
        tracing::warn!(error = %e, "the purge's event was not recorded");
    }
    if deleted > 0 {
        tracing::info!(rows = deleted, "purged what is past its retention");
    }
}

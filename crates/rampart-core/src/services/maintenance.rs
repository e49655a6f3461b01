//! Housekeeping: deleting what can no longer be used (ended sessions, spent tokens, stale
//! throttle counters, old usage rows, expired rules, audit events past retention).

use crate::App;
use crate::services;

/// Deletes ended sessions (with their refresh tokens), expired account tokens and mfa_tokens a
/// day after they stopped working, and throttle counters whose window and lock are over.
pub async fn purge(state: &App) {
    let now = state.clock.now();
    let longest = state.settings.login.counter_lifetime;
    match state.store.purge_ended(now, time::Duration::days(1)).await {
        Ok(n) if n > 0 => tracing::info!(rows = n, "purged ended sessions and expired tokens"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purge of ended sessions failed"),
    }
    let retention = state.settings.api_keys.usage_retention;
    if let Err(e) = state.store.purge_api_key_usage(now - retention).await {
        tracing::warn!(error = %e, "purge of API key usage failed");
    }
    if let Err(e) = state.store.purge_ip_rules(now - time::Duration::days(1)).await {
        tracing::warn!(error = %e, "purge of expired IP rules failed");
    }
    if let Err(e) = state.store.purge_throttle(now, longest).await {
        tracing::warn!(error = %e, "purge of login counters failed");
    }
    if let Err(e) = services::audit::purge_expired(state).await {
        tracing::warn!(error = %e, "purge of expired audit events failed");
    }
    if let Err(e) = state.store.purge_mfa_challenges(now - time::Duration::days(1)).await {
        tracing::warn!(error = %e, "purge of mfa challenges failed");
    }
    if let Err(e) = state.store.purge_webauthn_challenges(now).await {
        tracing::warn!(error = %e, "purge of webauthn challenges failed");
    }
    if let Err(e) = state.store.purge_mail(services::notifications::purge_before(state, now)).await {
        tracing::warn!(error = %e, "purge of sent mail failed");
    }
}

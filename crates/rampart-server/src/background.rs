//! Periodic work while serving, one task per job in a [`JoinSet`], all stopped together at
//! shutdown: the signing-key refresh (and due rotation), IP-rule reloads, API-key usage
//! flushes, audit checkpoints, aggregated-event summaries, the SIEM output, the limiter's
//! sweep and the hourly purge.

use crate::state::AppState;
use rampart_core::services;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// How often ended sessions, spent tokens and stale throttle counters are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs `job` every `period`, the first time after one period (the state was just loaded).
fn every<F, Fut>(jobs: &mut JoinSet<()>, state: &AppState, period: Duration, job: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let state = state.clone();
    jobs.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            job(state.clone()).await;
        }
    });
}

/// Starts every job; dropping (or `abort_all` on) the returned set stops them together.
pub async fn start(state: &AppState) -> JoinSet<()> {
    let mut jobs = JoinSet::new();
    every(&mut jobs, state, rampart_core::signing::REFRESH_INTERVAL, |state| async move {
        if let Err(e) = state.signing.tick().await {
            tracing::warn!(error = %e, "signing keys: refresh failed; keeping the keys in memory");
        }
        let now_us = i64::try_from(state.clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        state.shield.rate_limits.limiter.local().sweep(now_us);
    });
    every(&mut jobs, state, services::ip_rules::RELOAD_INTERVAL, |state| async move {
        state.ip_rules.reload(&state).await;
    });
    every(&mut jobs, state, services::api_keys::USAGE_FLUSH_INTERVAL, |state| async move {
        state.api_keys.flush(&state).await;
    });
    let audit = &state.settings.audit;
    every(&mut jobs, state, audit.checkpoint_interval, |state| async move {
        if let Err(e) = services::audit::sign_checkpoint(&state).await {
            tracing::warn!(error = %e, "audit: signing a checkpoint failed");
        }
    });
    every(&mut jobs, state, audit.aggregate_interval, |state| async move {
        state.events.flush_aggregated(state.settings.audit.aggregate_interval.as_secs()).await;
    });
    if state.siem.lock().await.is_some() {
        every(&mut jobs, state, services::audit::SIEM_POLL_INTERVAL, |state| async move {
            if let Some(s) = state.siem.lock().await.as_mut()
                && let Err(e) = s.ship(&state).await
            {
                tracing::warn!(error = %e, "SIEM output: reading new events failed");
            }
        });
    }
    // The purge runs once shortly after start, then hourly.
    let first = state.clone();
    jobs.spawn(async move {
        tokio::time::sleep(rampart_core::signing::REFRESH_INTERVAL).await;
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            services::maintenance::purge(&first).await;
        }
    });
    jobs
}

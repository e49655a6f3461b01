//! Periodic work while serving, one task per job in a [`JoinSet`], all stopped together at
//! shutdown: the invalidation bus's listener (`rampart_store`'s `bus`) and its monitor, the
//! signing-key refresh (and due rotation, and a re-read after a rotation anywhere), IP-rule and
//! gateway-rule reloads (the latter also on SIGHUP), API-key usage flushes, audit checkpoints,
//! aggregated-event summaries, the SIEM output, the limiter's sweep, the hourly purge and the
//! webhook outbox's delivery worker, the mail outbox's worker and the alert evaluator.
//!
//! Jobs that touch the audit log (checkpoints, summaries, the SIEM output, the purge, which
//! cuts only at a checkpoint) take one lock in turn, as they did when one loop ran them all.
//! A checkpoint is signed at start, so the start-up events are anchored at once.
//!
//! Checkpoint signing, the SIEM output and the purge are singletons: with several instances on
//! one PostgreSQL database, only the instance that leads a job (`rampart_store::Leadership`, an
//! advisory lock held on a connection of its own) runs it; another takes over within one period
//! when the leader stops. The other jobs fill or read this instance's own memory and run
//! everywhere.

use crate::state::AppState;
use rampart_core::services;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// How often ended sessions, spent tokens and stale throttle counters are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// When a job runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// At start, then every period.
    Now,
    /// After one period (what it does was just done while the state was opened).
    AfterAPeriod,
}

/// Runs `job` every `period`.
fn every<F, Fut>(jobs: &mut JoinSet<()>, state: &AppState, period: Duration, first: First, job: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let state = state.clone();
    jobs.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        if first == First::AfterAPeriod {
            tick.tick().await;
        }
        loop {
            tick.tick().await;
            job(state.clone()).await;
        }
    });
}

/// This instance's leadership of a singleton job, shared by the job's runs.
fn singleton(state: &AppState, job: &str) -> Arc<tokio::sync::Mutex<rampart_store::Leadership>> {
    Arc::new(tokio::sync::Mutex::new(state.store.leadership(job)))
}

/// Starts every job; dropping (or `abort_all` on) the returned set stops them together.
pub async fn start(state: &AppState) -> JoinSet<()> {
    let mut jobs = JoinSet::new();
    // The webhook outbox's worker, on every instance (their claims never overlap).
    let transport: Arc<dyn services::webhooks::Transport> =
        Arc::new(crate::webhook_transport::HttpTransport::new(&state.core, rampart_proxy::outbound::system_resolver()));
    let core = state.core.clone();
    jobs.spawn(async move { services::webhooks::run_worker(core, transport, std::future::pending()).await });
    // The mail outbox's worker, on every instance too.
    let core = state.core.clone();
    jobs.spawn(async move { services::notifications::run_worker(core, std::future::pending()).await });
    // The alert rules' evaluator, on every instance (a rule fires once per cooldown however
    // many watch: the store's conditional update decides).
    let core = state.core.clone();
    jobs.spawn(async move { services::alerts::run_evaluator(core, std::future::pending()).await });
    if state.store.bus_state() != rampart_store::BusState::None {
        // Other instances' changes (PostgreSQL's LISTEN; SQLite has no bus).
        let bus = state.clone();
        jobs.spawn(async move { bus.store.follow_invalidations().await });
        // The bus's state as a metric, and its losses and returns as events.
        let seen = Arc::new(std::sync::Mutex::new((0u64, false))); // (drops seen, down reported)
        every(&mut jobs, state, Duration::from_millis(500), First::Now, move |state| {
            let seen = seen.clone();
            async move {
                use rampart_domain::{Action, Outcome, Severity};
                let up = state.store.bus_state() == rampart_store::BusState::Listening;
                state.metrics.set_bus_down(!up);
                let drops = state.store.bus_drops();
                let mut report = Vec::new();
                {
                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    if drops > s.0 && !s.1 {
                        report.push((Action::InvalidationBusDown, Outcome::Failure, Severity::Warning));
                        s.1 = true;
                    }
                    if s.1 && up {
                        report.push((Action::InvalidationBusRestored, Outcome::Success, Severity::Info));
                        s.1 = false;
                    }
                    s.0 = drops;
                }
                for (action, outcome, severity) in report {
                    let ev =
                        state.events.event(action, outcome).actor(rampart_domain::Actor::System).severity(severity);
                    if let Err(e) = state.events.record(ev).await {
                        tracing::warn!(error = %e, "cannot record the invalidation bus's change");
                    }
                }
            }
        });
    }
    // A signing-key rotation (here, or on another instance: the bus) re-reads the key ring
    // within a quarter second, not at the next refresh: the JWKS every instance serves then
    // holds the new key before clients meet tokens signed with it.
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(state.store.signing_epoch()));
    every(&mut jobs, state, Duration::from_millis(250), First::AfterAPeriod, move |state| {
        let seen = seen.clone();
        async move {
            let now = state.store.signing_epoch();
            if seen.swap(now, std::sync::atomic::Ordering::AcqRel) != now
                && let Err(e) = state.signing.reload().await
            {
                tracing::warn!(error = %e, "signing keys: reloading after a rotation failed; the next refresh retries");
            }
        }
    });
    let audit_lock = Arc::new(tokio::sync::Mutex::new(()));
    every(&mut jobs, state, rampart_core::signing::REFRESH_INTERVAL, First::AfterAPeriod, |state| async move {
        if let Err(e) = state.signing.tick().await {
            tracing::warn!(error = %e, "signing keys: refresh failed; keeping the keys in memory");
        }
        let now_us = i64::try_from(state.clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        state.shield.rate_limits.limiter.local().sweep(now_us);
    });
    every(&mut jobs, state, services::ip_rules::RELOAD_INTERVAL, First::Now, |state| async move {
        state.ip_rules.reload(&state).await;
    });
    if state.settings.gateway.rules_file.is_some() {
        // The gateway's rules file: read again when it changed (polled), and on SIGHUP.
        every(&mut jobs, state, services::gateway::RELOAD_INTERVAL, First::Now, |state| async move {
            services::gateway::reload(&state, false).await;
        });
        let hup = state.clone();
        jobs.spawn(async move {
            let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; the gateway rules file is still reloaded when it changes");
                return;
            };
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the gateway rules");
                services::gateway::reload(&hup, true).await;
            }
        });
    }
    every(&mut jobs, state, services::api_keys::USAGE_FLUSH_INTERVAL, First::Now, |state| async move {
        state.api_keys.flush(&state).await;
    });
    let audit = &state.settings.audit;
    let lock = audit_lock.clone();
    let lead = singleton(state, "audit.checkpoint");
    every(&mut jobs, state, audit.checkpoint_interval, First::Now, move |state| {
        let (lock, lead) = (lock.clone(), lead.clone());
        async move {
            if !lead.lock().await.lead(&state.store).await {
                return;
            }
            let _turn = lock.lock().await;
            if let Err(e) = services::audit::sign_checkpoint(&state).await {
                tracing::warn!(error = %e, "audit: signing a checkpoint failed");
            }
        }
    });
    let lock = audit_lock.clone();
    every(&mut jobs, state, audit.aggregate_interval, First::AfterAPeriod, move |state| {
        let lock = lock.clone();
        async move {
            let _turn = lock.lock().await;
            state.events.flush_aggregated(state.settings.audit.aggregate_interval.as_secs()).await;
        }
    });
    if state.siem.lock().await.is_some() {
        let lock = audit_lock.clone();
        let lead = singleton(state, "audit.siem");
        every(&mut jobs, state, services::audit::SIEM_POLL_INTERVAL, First::Now, move |state| {
            let (lock, lead) = (lock.clone(), lead.clone());
            async move {
                if !lead.lock().await.lead(&state.store).await {
                    return;
                }
                let _turn = lock.lock().await;
                if let Some(s) = state.siem.lock().await.as_mut()
                    && let Err(e) = s.ship(&state).await
                {
                    tracing::warn!(error = %e, "SIEM output: reading new events failed");
                }
            }
        });
    }
    // The purge runs once shortly after start, then hourly.
    let first = state.clone();
    let lead = singleton(state, "maintenance.purge");
    jobs.spawn(async move {
        tokio::time::sleep(rampart_core::signing::REFRESH_INTERVAL).await;
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !lead.lock().await.lead(&first.store).await {
                continue;
            }
            let _turn = audit_lock.lock().await;
            services::maintenance::purge(&first).await;
        }
    });
    jobs
}

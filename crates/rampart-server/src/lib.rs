//! Rampart's HTTP server: the only crate that speaks HTTP.
//!
//! [`Application::build`] turns a validated [`Config`] and master key into a bound, migrated,
//! ready-to-serve application (the same path for `rampart serve` and the test kit, which binds
//! port 0); [`Application::run_until`] serves until a shutdown future resolves, then lets
//! in-flight requests finish.
//!
//! Middleware, outermost first: security headers → request id → request log span → metrics →
//! panic → timeout → body limit → client IP → CORS → rate limit → the route (see [`shield`]).

pub mod auth;
pub mod error;
pub mod events;
pub mod hashing;
#[cfg(test)]
mod layer_tests;
pub mod limits;
pub mod mail;
pub mod master_key;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod services;
pub mod shield;
pub mod signing;
pub mod telemetry;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use events::SecurityEvents;
use hashing::HashingPool;
use master_key::KeyOrigin;
use metrics::Metrics;
use rampart_config::Config;
use rampart_domain::{
    Action, Actor, Clock, MasterKey, Outcome, PasswordHasher, PasswordPolicy, Resource, SecurityEvent, SessionPolicy,
    Severity, ThrottlePolicy,
};
use rampart_store::{ConnectOptions, MigrationReport, Store, StoreError};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

/// Everything a handler may need, built once at start-up. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub master_key: Arc<MasterKey>,
    pub metrics: Arc<Metrics>,
    pub events: SecurityEvents,
    pub hashing: HashingPool,
    pub signing: signing::SigningKeys,
    pub auth: auth::AuthKeys,
    pub mailer: mail::Mailer,
    pub mail_pacing: services::accounts::MailPacing,
    pub api_keys: services::api_keys::ApiKeys,
    /// The WebAuthn relying party (`[webauthn]`).
    pub webauthn: services::webauthn::RelyingParty,
    /// The SIEM output, opened by `serve`'s background work (never by CLI commands).
    pub siem: tokio::sync::Mutex<Option<services::audit::SiemTail>>,
    pub shield: shield::Shield,
    pub ip_rules: services::ip_rules::IpRules,
    /// A hash of a random password at the configured cost, verified for unknown e-mail
    /// addresses so that their login costs what a real one does. Made on first use.
    dummy_hash: tokio::sync::OnceCell<String>,
    openapi_json: String,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("access-token signing keys: {0}")]
    Signing(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
}

impl AppState {
    /// Connects and migrates the database, wires the state, loads (or creates) the token
    /// signing keys, and records the start-up events (migrations applied, master key
    /// generated). Used by `serve` and by CLI commands.
    pub async fn open(
        config: Config,
        master_key: MasterKey,
        key_origin: KeyOrigin,
        clock: Arc<dyn Clock>,
    ) -> Result<(AppState, MigrationReport), StartupError> {
        let store = connect_store(&config).await?;
        let (report, migrated) = migrate(&store, clock.as_ref(), "startup").await?;
        let metrics = Arc::new(Metrics::new(store.backend().as_str()));
        let events = SecurityEvents::new(store.clone(), metrics.clone(), clock.clone());
        let master_key = Arc::new(master_key);
        if let Some(event) = &migrated {
            events.observed(event);
        }
        if let KeyOrigin::Generated(path) = &key_origin {
            events
                .record(
                    events
                        .event(Action::MasterKeyGenerated, Outcome::Success)
                        .actor(Actor::System)
                        .severity(Severity::Warning)
                        .resource(Resource::new("master_key", master_key.key_id()))
                        .details(serde_json::json!({ "path": path.display().to_string() })),
                )
                .await?;
        }
        let signing = signing::SigningKeys::load(
            store.clone(),
            master_key.clone(),
            config.tokens.clone(),
            clock.clone(),
            events.clone(),
        )
        .await
        .map_err(|e| StartupError::Signing(e.to_string()))?;
        let hasher = PasswordHasher::new(config.passwords.argon2).map_err(|e| StartupError::Config(e.to_string()))?;
        let permits = config
            .passwords
            .max_concurrent_hashes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let hashing = HashingPool::new(hasher, permits, config.passwords.hashing_nice)
            .map_err(|e| StartupError::Config(format!("cannot start the password hashing threads: {e}")))?;
        let mailer = mail::Mailer::from_config(&config.mail, &config.data.dir)
            .map_err(|e| StartupError::Config(format!("mail: {e}")))?;
        let shield = shield::Shield::from_config(&config).map_err(StartupError::Config)?;
        let webauthn = services::webauthn::RelyingParty::from_config(&config.webauthn)
            .map_err(|e| StartupError::Config(format!("webauthn: {e}")))?;
        let state = AppState(Arc::new(Inner {
            shield,
            ip_rules: Default::default(),
            webauthn,
            hashing,
            auth: auth::AuthKeys::derive(&master_key),
            mailer,
            mail_pacing: Default::default(),
            api_keys: Default::default(),
            siem: Default::default(),
            dummy_hash: tokio::sync::OnceCell::new(),
            openapi_json: openapi::render(&openapi_doc()),
            config,
            store,
            clock,
            master_key,
            metrics,
            events,
            signing,
        }));
        state.ip_rules.reload(&state).await;
        Ok((state, report))
    }

    pub fn password_policy(&self) -> PasswordPolicy {
        let p = &self.config.passwords;
        PasswordPolicy {
            min_length: p.min_length,
            reject_common: p.reject_common,
            reject_email_local_part: p.reject_email_local_part,
            composition: p.composition,
        }
    }

    pub fn session_policy(&self) -> SessionPolicy {
        let s = &self.config.sessions;
        let days = |d: u64| time::Duration::days(i64::try_from(d).unwrap_or(i64::MAX / 86_400));
        SessionPolicy { idle: days(s.idle_timeout_days), absolute: days(s.absolute_timeout_days) }
    }

    /// The throttle rules for login identifiers and for client addresses.
    pub fn throttle_policies(&self) -> (ThrottlePolicy, ThrottlePolicy) {
        let l = &self.config.login;
        let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2));
        let millis = |s: u64| time::Duration::milliseconds(i64::try_from(s).unwrap_or(i64::MAX / 2));
        let identifier = ThrottlePolicy {
            max_failures: l.max_failures,
            window: secs(l.window_secs),
            lockout: secs(l.lockout_secs),
            delay_base: millis(l.delay_base_ms),
        };
        // Many people may share an address: no delays, a higher threshold.
        let ip = ThrottlePolicy { max_failures: l.ip_max_failures, delay_base: time::Duration::ZERO, ..identifier };
        (identifier, ip)
    }

    /// See `Inner::dummy_hash`.
    pub async fn dummy_hash(&self) -> Result<String, ApiError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let mut bytes = [0u8; 24];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                let password = rampart_domain::Password::parse(hex::encode(bytes), &PasswordPolicy::ACCEPT_ANY)
                    .map_err(|_| ApiError::internal(std::io::Error::other("dummy password refused")))?;
                self.hashing.hash(password).await.map_err(ApiError::internal)
            })
            .await
            .cloned()
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::service::healthz))
        .routes(routes!(routes::service::readyz))
        .routes(routes!(routes::service::metrics))
        .routes(routes!(routes::service::openapi_json))
        .routes(routes!(routes::tokens::jwks))
        .routes(routes!(routes::auth::register))
        .routes(routes!(routes::auth::login))
        .routes(routes!(routes::auth::refresh))
        .routes(routes!(routes::auth::logout))
        .routes(routes!(routes::auth::csrf))
        .routes(routes!(routes::auth::forgot_password))
        .routes(routes!(routes::auth::reset_password))
        .routes(routes!(routes::auth::verify_email))
        .routes(routes!(routes::auth::introspect))
        .routes(routes!(routes::me::me))
        .routes(routes!(routes::me::change_password))
        .routes(routes!(routes::me::list_sessions, routes::me::revoke_all_sessions))
        .routes(routes!(routes::me::revoke_session))
        .routes(routes!(routes::mfa::totp_setup))
        .routes(routes!(routes::mfa::totp_enable))
        .routes(routes!(routes::mfa::totp_disable))
        .routes(routes!(routes::mfa::backup_codes))
        .routes(routes!(routes::mfa::login_mfa))
        .routes(routes!(routes::mfa::login_mfa_email))
        .routes(routes!(routes::webauthn::register_start))
        .routes(routes!(routes::webauthn::register_finish))
        .routes(routes!(routes::webauthn::list))
        .routes(routes!(routes::webauthn::remove))
        .routes(routes!(routes::webauthn::login_start))
        .routes(routes!(routes::webauthn::login_finish))
        .routes(routes!(routes::webauthn::passkey_start))
        .routes(routes!(routes::webauthn::passkey_finish))
        .routes(routes!(routes::api_keys::create, routes::api_keys::list, routes::api_keys::revoke_all))
        .routes(routes!(routes::api_keys::revoke))
        .routes(routes!(routes::api_keys::rotate))
        .routes(routes!(routes::api_keys::usage))
        .routes(routes!(routes::api_keys::verify))
        .routes(routes!(routes::admin::list_users))
        .routes(routes!(routes::admin::get_user, routes::admin::update_user, routes::admin::delete_user))
        .routes(routes!(routes::admin::list_roles, routes::admin::create_role))
        .routes(routes!(routes::admin::put_role, routes::admin::delete_role))
        .routes(routes!(routes::admin::authz_check))
        .routes(routes!(routes::audit::list))
        .routes(routes!(routes::audit::stats))
        .routes(routes!(routes::audit::export))
        .routes(routes!(routes::audit::verify))
        .routes(routes!(routes::admin::unlock_user))
        .routes(routes!(routes::admin::revoke_user_sessions))
        .routes(routes!(routes::csp::csp_report))
        .routes(routes!(routes::ip_rules::list_ip_rules, routes::ip_rules::create_ip_rule))
        .routes(routes!(routes::ip_rules::delete_ip_rule))
}

/// The OpenAPI document of every route, generated from the code.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The full router with every layer, ready to serve.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    let routes = shield::inner_layers(with_fallbacks(routes), &state);
    let routes = with_outer_layers(routes, &state.config, state.metrics.clone());
    shield::outer_layer(routes, &state).with_state(state)
}

fn with_fallbacks<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.fallback(limits::not_found).method_not_allowed_fallback(limits::method_not_allowed)
}

/// The cross-cutting layers every route gets, in the order of the crate docs. Generic over the
/// router state so unit tests can put test-only routes behind exactly the production stack.
#[cfg(test)]
pub(crate) fn with_core_layers<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Router<S> {
    with_outer_layers(with_fallbacks(routes), config, metrics)
}

/// The core stack around routes that already have their fallbacks (and inner layers).
fn with_outer_layers<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Router<S> {
    let limit = config.server.body_limit_bytes;
    let timeout = Duration::from_secs(config.server.request_timeout_secs);
    let json = limits::JsonLimits {
        max_depth: config.server.json_max_depth,
        max_string_bytes: config.server.json_max_string_bytes,
    };
    routes
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn(move |req, next| limits::json_limits(json, req, next)))
        .layer(from_fn(move |req, next| limits::body_limit(limit, req, next)))
        .layer(from_fn(move |req, next| limits::timeout(timeout, req, next)))
        .layer(CatchPanicLayer::custom(limits::panic_response))
        .layer(from_fn_with_state(metrics, metrics::middleware))
        .layer(from_fn(telemetry::middleware))
        .layer(from_fn(request_id::middleware))
}

/// A bound, migrated application, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    local_addr: SocketAddr,
}

impl Application {
    /// Opens the state (see [`AppState::open`]), records the configuration it runs with, and
    /// binds the listener.
    pub async fn build(
        config: Config,
        master_key: MasterKey,
        key_origin: KeyOrigin,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        let started = Instant::now();
        let config_digest = hex::encode(Sha256::digest(config.to_redacted_toml().as_bytes()));
        let listen = config.server.listen;
        let (state, report) = AppState::open(config, master_key, key_origin, clock).await?;
        // The SIEM output starts here, so it ships this run's events from the first.
        *state.siem.lock().await = services::audit::SiemTail::open(&state)
            .await
            .map_err(|e| StartupError::Config(format!("audit.siem_file: cannot open: {e}")))?;
        let ev = &state.events;
        ev.record(
            ev.event(Action::ConfigLoaded, Outcome::Success)
                .actor(Actor::System)
                .details(serde_json::json!({ "sha256": config_digest, "version": env!("CARGO_PKG_VERSION") })),
        )
        .await?;
        let listener = TcpListener::bind(listen).await.map_err(|source| StartupError::Bind { addr: listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: listen, source })?;
        tracing::info!(
            backend = state.store.backend().as_str(),
            migrations_applied = report.applied.len(),
            master_key_id = %state.master_key.key_id(),
            startup_ms = started.elapsed().as_secs_f64() * 1000.0,
            "ready on http://{local_addr}"
        );
        Ok(Application { listener, state, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (for at most `server.shutdown_grace_secs`), and closes the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_secs);
        let store = self.state.store.clone();
        let background = tokio::spawn(background_tasks(self.state.clone()));
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let state = self.state.clone();
        let result = serve_gracefully(self.listener, app, shutdown, grace).await;
        background.abort();
        state.api_keys.flush(&state).await;
        services::audit::at_shutdown(&state).await;
        // Handlers cut off by the grace period may still hold connections: do not wait for them.
        if tokio::time::timeout(Duration::from_secs(5), store.close()).await.is_err() {
            tracing::warn!("database connections still busy at exit; closing anyway");
        }
        result
    }
}

/// How often ended sessions, spent tokens and stale throttle counters are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Periodic work while serving: refresh (and, when due, rotate) the signing keys; purge what
/// can no longer be used.
async fn background_tasks(state: AppState) {
    let mut tick = tokio::time::interval(signing::REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the ring was just loaded
    let mut last_purge: Option<Instant> = None;
    let mut usage_tick = tokio::time::interval(services::api_keys::USAGE_FLUSH_INTERVAL);
    usage_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let audit = &state.config.audit;
    let mut checkpoint_tick = tokio::time::interval(Duration::from_secs(audit.checkpoint_interval_secs));
    checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut aggregate_tick = tokio::time::interval(Duration::from_secs(audit.aggregate_interval_secs));
    aggregate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    aggregate_tick.tick().await;
    let siem_on = state.siem.lock().await.is_some();
    let mut siem_tick = tokio::time::interval(services::audit::SIEM_POLL_INTERVAL);
    siem_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ip_rules_tick = tokio::time::interval(services::ip_rules::RELOAD_INTERVAL);
    ip_rules_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ip_rules_tick.tick() => {
                state.ip_rules.reload(&state).await;
                continue;
            }
            _ = usage_tick.tick() => {
                state.api_keys.flush(&state).await;
                continue;
            }
            _ = checkpoint_tick.tick() => {
                if let Err(e) = services::audit::sign_checkpoint(&state).await {
                    tracing::warn!(error = %e, "audit: signing a checkpoint failed");
                }
                continue;
            }
            _ = aggregate_tick.tick() => {
                state.events.flush_aggregated(state.config.audit.aggregate_interval_secs).await;
                continue;
            }
            _ = siem_tick.tick(), if siem_on => {
                if let Some(s) = state.siem.lock().await.as_mut()
                    && let Err(e) = s.ship(&state).await
                {
                    tracing::warn!(error = %e, "SIEM output: reading new events failed");
                }
                continue;
            }
        }
        let now_us = i64::try_from(state.clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        state.shield.rate_limits.limiter.local().sweep(now_us);
        if let Err(e) = state.signing.tick().await {
            tracing::warn!(error = %e, "signing keys: refresh failed; keeping the keys in memory");
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_INTERVAL) {
            last_purge = Some(Instant::now());
            purge(&state).await;
        }
    }
}

/// Deletes ended sessions (with their refresh tokens), expired account tokens and mfa_tokens a
/// day after they stopped working, and throttle counters whose window and lock are over.
async fn purge(state: &AppState) {
    let now = state.clock.now();
    let l = &state.config.login;
    let longest = time::Duration::seconds(i64::try_from(l.window_secs.max(l.lockout_secs)).unwrap_or(i64::MAX / 2));
    match state.store.purge_ended(now, time::Duration::days(1)).await {
        Ok(n) if n > 0 => tracing::info!(rows = n, "purged ended sessions and expired tokens"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purge of ended sessions failed"),
    }
    let retention = time::Duration::days(i64::try_from(state.config.api_keys.usage_retention_days).unwrap_or(90));
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
}

/// `axum::serve` with graceful shutdown bounded by `grace`.
pub async fn serve_gracefully<M, S>(
    listener: TcpListener,
    make_service: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()>
where
    M: for<'a> tower::Service<
            axum::serve::IncomingStream<'a, TcpListener>,
            Error = std::convert::Infallible,
            Response = S,
        > + Send
        + 'static,
    for<'a> <M as tower::Service<axum::serve::IncomingStream<'a, TcpListener>>>::Future: Send,
    S: tower::Service<axum::extract::Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, make_service).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = signalled_tx.send(());
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        _ = signalled_rx => match tokio::time::timeout(grace, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; stopping anyway");
                Ok(())
            }
        },
    }
}

/// Applies pending migrations and, when any ran, records `system.migrations.applied` (details:
/// which, how many in all, `via`). The one path for `serve`, the CLI commands and
/// `rampart migrate`; returns the event so a caller with metrics can log and count it.
pub async fn migrate(
    store: &Store,
    clock: &dyn Clock,
    via: &'static str,
) -> Result<(MigrationReport, Option<SecurityEvent>), StoreError> {
    let report = store.migrate().await?;
    if report.applied.is_empty() {
        return Ok((report, None));
    }
    let event = SecurityEvent::new(uuid::Uuid::now_v7(), clock.now(), Action::MigrationsApplied, Outcome::Success)
        .actor(Actor::System)
        .details(serde_json::json!({ "applied": report.applied, "total": report.total, "via": via }));
    store.append_event(&event).await?;
    Ok((report, Some(event)))
}

/// Connects to the configured database (creating the data directory for the default SQLite).
pub async fn connect_store(config: &Config) -> Result<Store, StartupError> {
    if config.database.url.is_none() {
        create_private_dir(&config.data.dir)
            .map_err(|source| StartupError::DataDir { path: config.data.dir.clone(), source })?;
    }
    let opts = ConnectOptions {
        max_connections: config.database.max_connections,
        busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
        acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
        session_cache_ttl: Duration::from_millis(config.sessions.cache_ttl_ms),
    };
    Ok(Store::connect(&config.database_url(), &opts).await?)
}

/// Creates `dir` (and parents) readable by the owner only: it holds the database with password
/// hashes and possibly the master key. An existing directory is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

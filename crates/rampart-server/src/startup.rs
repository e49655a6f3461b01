//! Start-up and shutdown: [`Application::build`] turns a validated [`Config`] and master key
//! into a bound, migrated, ready-to-serve application (the same path for `rampart serve` and
//! the test kit, which binds port 0); [`Application::run_until`] serves until a shutdown future
//! resolves, stops the background jobs, lets in-flight requests finish, and closes the database.

use crate::state::AppState;
use rampart_config::Config;
use rampart_core::master_key::KeyOrigin;
use rampart_core::services;
use rampart_core::startup::StartupError;
use rampart_domain::{Action, Actor, Clock, KeyRing, Outcome};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A bound, migrated application, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    local_addr: SocketAddr,
    /// The built-in proxy's listener (`[gateway] listen`), when configured.
    gateway: Option<(TcpListener, SocketAddr)>,
}

impl Application {
    /// Opens the state (see [`AppState::open`]), records the configuration it runs with, and
    /// binds the listener.
    pub async fn build(
        config: Config,
        master_key: impl Into<KeyRing>,
        key_origin: KeyOrigin,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        let started = Instant::now();
        let config_digest = hex::encode(Sha256::digest(config.to_redacted_toml().as_bytes()));
        let listen = config.server.listen;
        let gateway_listen = config.gateway.listen;
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
        let gateway = match gateway_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
                let bound = l.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
                tracing::info!(upstream = ?state.settings.gateway.upstream.as_ref().map(|u| u.as_str()), "gateway proxy on http://{bound}");
                Some((l, bound))
            }
            None => None,
        };
        tracing::info!(
            backend = state.store.backend().as_str(),
            migrations_applied = report.applied.len(),
            master_key_id = %state.master_key.key_id(),
            older_master_keys = %state.master_key.older_ids().collect::<Vec<_>>().join(","),
            startup_ms = started.elapsed().as_secs_f64() * 1000.0,
            "ready on http://{local_addr}"
        );
        Ok(Application { listener, state, local_addr, gateway })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The built-in proxy's address, when it listens.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway.as_ref().map(|(_, a)| *a)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (for at most `server.shutdown_grace_secs`), and closes the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.state.settings.server.shutdown_grace;
        let store = self.state.store.clone();
        // One shutdown for both listeners.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // The built-in proxy's listener, on event loops of its own (see `ProxyLoops`).
        let mut gateway = match self.gateway {
            Some((listener, _)) => Some(ProxyLoops::start(listener, &self.state, &stop_rx, grace)?),
            None => None,
        };
        let mut background = crate::background::start(&self.state).await;
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
            crate::router::service(self.state.clone()),
        );
        let state = self.state.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let result = serve_gracefully(self.listener, app, stopped(stop_rx), grace).await;
        if let Some(loops) = &mut gateway {
            loops.finished().await;
        }
        background.abort_all();
        while background.join_next().await.is_some() {}
        state.api_keys.flush(&state).await;
        services::audit::at_shutdown(&state).await;
        // Handlers cut off by the grace period may still hold connections: do not wait for them.
        if tokio::time::timeout(Duration::from_secs(5), store.close()).await.is_err() {
            tracing::warn!("database connections still busy at exit; closing anyway");
        }
        if let Some(loops) = gateway {
            loops.release().await;
        }
        result
    }
}

/// The built-in proxy's event loops: `[gateway.proxy] threads` threads (default: one per core),
/// each running a current-thread Tokio runtime that accepts on its own handle of the one
/// listening socket and serves the connections it accepted from start to end, as nginx's
/// worker processes do. A proxied request's connection task, its upstream connection (each
/// loop keeps the ones it dialled: [`rampart_proxy::connections_per_thread`]) and the
/// per-thread caches it touches (the assertion's checked value, request ids) then stay on one
/// core; on the main runtime's worker threads, work stealing moved them between cores (see
/// bench/RESULTS.md, "The built-in proxy, eighth pass"). All loops share one socket (no
/// `SO_REUSEPORT`): a second Rampart on the same address still fails to bind.
///
/// Store and Redis work started on a loop: the Redis limiter's batching task (and so its
/// connection) runs on the runtime that built the limiter, the main one. A PostgreSQL
/// connection that the pool opens for a request on a loop is registered with that loop's
/// runtime, which drives it for whoever uses it next; so a loop's runtime runs on, idle, after
/// its listener has drained, until the application has closed its store ([`Self::release`]).
struct ProxyLoops {
    /// One per loop: how its listener ended.
    finished: Vec<tokio::sync::oneshot::Receiver<std::io::Result<()>>>,
    /// Dropped to let the loops' runtimes end.
    release: tokio::sync::watch::Sender<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ProxyLoops {
    fn start(
        listener: TcpListener,
        state: &AppState,
        stop: &tokio::sync::watch::Receiver<bool>,
        grace: Duration,
    ) -> std::io::Result<ProxyLoops> {
        let count = state
            .settings
            .gateway
            .proxy
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get));
        let listener = listener.into_std()?;
        let (release, released) = tokio::sync::watch::channel(());
        let mut loops = ProxyLoops { finished: Vec::with_capacity(count), release, threads: Vec::with_capacity(count) };
        for n in 0..count {
            let socket = listener.try_clone()?;
            let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
                crate::gateway_proxy::service(state.clone()),
            );
            let (done, finished) = tokio::sync::oneshot::channel();
            let stop = stop.clone();
            let mut released = released.clone();
            let thread = std::thread::Builder::new().name(format!("rampart-proxy-{n}")).spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    // Closed at the end of this block, while the runtime they use still runs.
                    let _connections = rampart_proxy::connections_per_thread();
                    let served = match TcpListener::from_std(socket) {
                        Ok(l) => serve_gracefully(l, app, stopped(stop), grace).await,
                        Err(e) => Err(e),
                    };
                    let _ = done.send(served);
                    // Ends when the sender is dropped.
                    while released.changed().await.is_ok() {}
                });
            })?;
            loops.finished.push(finished);
            loops.threads.push(thread);
        }
        Ok(loops)
    }

    /// Waits until every loop's listener has stopped and its connections have drained.
    async fn finished(&mut self) {
        for done in self.finished.drain(..) {
            match done.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "gateway proxy listener"),
                Err(_) => tracing::warn!("a gateway proxy event loop ended early"),
            }
        }
    }

    /// Lets the loops' runtimes end, and waits for their threads.
    async fn release(self) {
        let ProxyLoops { release, threads, .. } = self;
        drop(release);
        let joined = tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok())).await;
        if !matches!(joined, Ok(true)) {
            tracing::warn!("a gateway proxy event loop panicked");
        }
    }
}

/// Resolves once the shared shutdown signal is given (or its sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The listener `serve_gracefully` accepts on: every connection with `TCP_NODELAY`, so an answer
/// written in more than one piece (a streamed body, a proxied download) is not held back by
/// Nagle's algorithm waiting for the client's delayed ACK.
pub type NodelayListener = axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)>;

fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
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
            axum::serve::IncomingStream<'a, NodelayListener>,
            Error = std::convert::Infallible,
            Response = S,
        > + Send
        + 'static,
    for<'a> <M as tower::Service<axum::serve::IncomingStream<'a, NodelayListener>>>::Future: Send,
    S: tower::Service<axum::extract::Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    use axum::serve::ListenerExt as _;
    let listener: NodelayListener = listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream));
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

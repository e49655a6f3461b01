//! The connections to a plain `http://` upstream, driven by the request's own task.
//!
//! hyper-util's pooled client spawns a task per connection and hands every request to it
//! through channels: each proxied request then crosses tasks (and often worker threads) twice,
//! with a wake-up each way. Here a request takes an idle [`Conn`] (or dials one) and polls the
//! connection's state machine itself, together with the answer it waits for, as nginx drives
//! both sides of a request in one event loop. Only an answer that outlives the request's task
//! (a streamed body, an upgrade) hands its connection to a spawned task, which drives it to the
//! end of that answer and puts it back.
//!
//! The [`Pool`] keeps the idle connections of one upstream, newest first out (the one most
//! likely still open and warm), at most `pool_max_idle_per_host`, none older than
//! `pool_idle_timeout` (checked when the pool is used: nothing runs while it is idle). Nothing
//! polls an idle connection, so one the upstream closed meanwhile is only noticed when it is
//! taken: it is polled once then, and dropped if it has ended or cannot take a request.
//!
//! A thread that runs a current-thread runtime of its own (the built-in proxy's event loops)
//! keeps the connections it released for its own later requests, apart from other threads'
//! ([`connections_per_thread`]): a connection is registered with the I/O driver of the
//! runtime that dialled it, so a request on another runtime that took it would be woken
//! through that runtime's thread on every read, and the two threads would share the pool's
//! lock on every request.

use crate::body::OutBody;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The connection's state machine (hyper's, with upgrades handed over when a 101 comes):
/// ready when the connection has ended.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One HTTP/1.1 connection to an upstream: the handle requests are sent on and the state
/// machine that reads and writes the socket, which whoever holds the `Conn` polls.
pub(crate) struct Conn {
    pub(crate) send: hyper::client::conn::http1::SendRequest<OutBody>,
    /// `None` once the connection has ended (which also hands back a request still queued).
    driver: Option<Driver>,
    /// Whether it was taken from the pool: the upstream may have closed it while it was idle.
    pub(crate) reused: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("open", &self.driver.is_some()).field("reused", &self.reused).finish()
    }
}

impl Conn {
    /// A connection fresh from its handshake over `io`.
    pub(crate) async fn handshake<T>(io: T) -> hyper::Result<Self>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
        Ok(Self { send, driver: Some(Box::pin(conn.with_upgrades())), reused: false })
    }

    /// Polls the connection's state machine (reading and writing what can be); false once the
    /// connection has ended.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(driver) = &mut self.driver
            && let Poll::Ready(end) = driver.as_mut().poll(cx)
        {
            if let Err(e) = end {
                tracing::debug!(error = %e, "upstream connection ended");
            }
            // Dropping the state machine answers whatever request is still queued on it.
            self.driver = None;
        }
        self.driver.is_some()
    }

    /// Whether it is open and waiting for a request (the last exchange is over both ways).
    pub(crate) fn is_idle(&self) -> bool {
        self.driver.is_some() && self.send.is_ready()
    }

    /// Drives the connection until it ends (after a 101: once it has handed its socket over to
    /// the upgrade).
    pub(crate) async fn run_to_end(&mut self) {
        std::future::poll_fn(|cx| if self.drive(cx) { Poll::Pending } else { Poll::Ready(()) }).await;
    }

    /// Drives the connection until the exchange on it is over (true: it can be pooled) or it
    /// ends (false).
    pub(crate) async fn settle(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            match self.send.poll_ready(cx) {
                Poll::Ready(ready) => Poll::Ready(ready.is_ok() && self.driver.is_some()),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// Polls `fut` and drives `conn` in the same poll, so that the answer `fut` waits for (a
/// response head, a body chunk) is read by this task. Without a connection, it is `fut`.
pub(crate) async fn driven<F>(mut conn: Option<&mut Conn>, fut: F) -> F::Output
where
    F: Future,
{
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| poll_driven(conn.as_deref_mut(), cx, |cx| fut.as_mut().poll(cx))).await
}

/// Polls `poll`; when it is not ready, drives `conn` (when there is one) and polls it again.
///
/// What one drive reads often carries more than the wait in hand (an answer's head arrives
/// with its body), so the next wait finds it ready without driving the connection: every
/// drive that finds nothing to do costs hyper's whole read/write/flush round. A drive that
/// `poll` needs after all (the body's reader asking for the next chunk) is not lost: the
/// connection's state machine registered this task's waker and wakes it.
pub(crate) fn poll_driven<T>(
    conn: Option<&mut Conn>,
    cx: &mut Context<'_>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    if let Poll::Ready(out) = poll(cx) {
        return Poll::Ready(out);
    }
    let Some(conn) = conn else { return Poll::Pending };
    conn.drive(cx);
    poll(cx)
}

/// The idle connections of one upstream. See the module documentation.
pub(crate) struct Pool {
    /// Names this pool's queue on threads that keep their own ([`connections_per_thread`]);
    /// unique in the process, so a queue is never taken for another pool's.
    id: u64,
    idle: Mutex<VecDeque<Idle>>,
}

impl Default for Pool {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self { id: NEXT.fetch_add(1, Ordering::Relaxed), idle: Mutex::default() }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle", &self.lock().len()).finish()
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A thread's own idle connections: each pool's (by its id) queue.
type ThreadPools = Vec<(u64, VecDeque<Idle>)>;

thread_local! {
    /// This thread's own idle connections, once it asked to keep them.
    static LOCAL: RefCell<Option<ThreadPools>> = const { RefCell::new(None) };
}

/// Makes this thread keep the upstream connections it releases for its own later requests
/// (see the module documentation), until the guard is dropped, which closes them. For a thread
/// that runs a current-thread Tokio runtime of its own: hold the guard inside the runtime, so
/// that the connections are closed while their runtime still runs.
#[must_use = "the thread keeps its own connections only while the guard lives"]
pub fn connections_per_thread() -> ThreadConnections {
    LOCAL.with_borrow_mut(|l| l.get_or_insert_with(Vec::new).clear());
    ThreadConnections { _not_send: std::marker::PhantomData }
}

/// See [`connections_per_thread`].
#[derive(Debug)]
pub struct ThreadConnections {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ThreadConnections {
    fn drop(&mut self) {
        // Nothing to close if the thread's storage is already gone (the guard outlived it).
        let kept = LOCAL.try_with(|l| l.borrow_mut().take()).ok().flatten();
        drop(kept);
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        // The queue holds only connections: after a panic elsewhere it is still usable.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on this pool's queue: this thread's own when it keeps one, else the shared one.
    fn with_idle<T>(&self, f: impl FnOnce(&mut VecDeque<Idle>) -> T) -> T {
        LOCAL.with_borrow_mut(|local| match local {
            Some(pools) => {
                let at = match pools.iter().position(|(id, _)| *id == self.id) {
                    Some(at) => at,
                    None => {
                        pools.push((self.id, VecDeque::new()));
                        pools.len() - 1
                    }
                };
                f(&mut pools[at].1)
            }
            None => f(&mut self.lock()),
        })
    }

    /// The newest idle connection that is still open, if any. Each is polled once (on this
    /// task) to notice an upstream that closed it meanwhile; those that ended, or outlived
    /// `max_age`, are dropped.
    pub(crate) async fn take(&self, max_age: Duration) -> Option<Conn> {
        loop {
            let (taken, expired) = self.with_idle(|idle| {
                let expired = sweep(idle, max_age);
                (idle.pop_back(), expired)
            });
            drop(expired);
            let Idle { mut conn, .. } = taken?;
            let alive = std::future::poll_fn(|cx| Poll::Ready(conn.drive(cx))).await;
            if alive && conn.send.is_ready() {
                conn.reused = true;
                return Some(conn);
            }
            tracing::debug!("pooled upstream connection closed while idle; dropped");
        }
    }

    /// Keeps `conn` for a later request if it is idle and there is room (`max_idle`); else it
    /// is closed.
    pub(crate) fn put(&self, conn: Conn, max_idle: usize, max_age: Duration) {
        if max_idle == 0 || !conn.is_idle() {
            return;
        }
        let dropped = self.with_idle(|idle| {
            let mut dropped = sweep(idle, max_age);
            while idle.len() >= max_idle {
                dropped.extend(idle.pop_front());
            }
            idle.push_back(Idle { conn, since: Instant::now() });
            dropped
        });
        // Closing sockets happens outside the lock.
        drop(dropped);
    }
}

/// Removes the connections idle for longer than `max_age` (the oldest, at the front).
fn sweep(idle: &mut VecDeque<Idle>, max_age: Duration) -> Vec<Idle> {
    let mut expired = Vec::new();
    while idle.front().is_some_and(|i| i.since.elapsed() >= max_age) {
        expired.extend(idle.pop_front());
    }
    expired
}

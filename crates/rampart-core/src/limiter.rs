//! The rate limiter: one interface ([`RateLimitBackend`]) over GCRA
//! (`rampart_domain::ratelimit`), two backends — [`MemoryLimiter`] (sharded, bounded, idle
//! keys evicted) and [`RedisLimiter`] (one script call per decision, or per batch of the
//! decisions that wait under load) — and [`Limiter`], which
//! uses Redis when configured and falls back to this process when Redis fails.

use rampart_domain::ratelimit::{Decision, GCRA_BATCH_LUA, GCRA_LUA, Quota, batch_reply, gcra};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered something unexpected")]
    Protocol,
    #[error("too many decisions wait for redis")]
    Busy,
    /// The failure of a call that decided several requests at once.
    #[error("{0}")]
    Shared(Arc<LimiterError>),
}

/// One limiter decision for `key` under `quota` at `now_us` (µs since the epoch, the caller's
/// clock, so tests drive time and every backend decides alike).
pub trait RateLimitBackend: Send + Sync {
    fn check(
        &self,
        key: &str,
        quota: Quota,
        now_us: i64,
    ) -> impl Future<Output = Result<Decision, LimiterError>> + Send;
}

const SHARDS: usize = 64;

/// One shard: key → theoretical arrival time (µs), and the latest time it decided at.
type Shard = Mutex<ShardState>;

#[derive(Debug, Default)]
struct ShardState {
    keys: HashMap<Box<str>, i64>,
    latest_us: i64,
}

/// In-process GCRA: one TAT per key in 64 independently locked shards (a lock is held for one
/// hash-map operation, never across an await). Bounded: at `max_keys` a shard first drops its
/// idle keys (TAT passed: the same as absent), then the key nearest to idle.
#[derive(Debug)]
pub struct MemoryLimiter {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

impl MemoryLimiter {
    pub fn new(max_keys: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(ShardState::default())).collect();
        Self { shards, per_shard: max_keys.div_ceil(SHARDS).max(1), hasher: RandomState::new() }
    }

    fn shard(&self, key: &str) -> &Shard {
        let i = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// The decision, synchronously (the memory backend never waits).
    pub fn decide(&self, key: &str, quota: Quota, now_us: i64) -> Decision {
        let mut state = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        // Time never runs backwards within a shard: a request whose time was read before
        // another's but reaches the lock after it (it waited on Redis, or was preempted)
        // decides at the later time, so reordering cannot refuse a request within the burst.
        let now_us = now_us.max(state.latest_us);
        state.latest_us = now_us;
        let map = &mut state.keys;
        // One lookup for a known key (the usual case): the slot is read and written in place.
        let slot = map.get_mut(key);
        let (decision, new_tat) = gcra(slot.as_deref().copied(), now_us, quota);
        if let Some(tat) = new_tat {
            if let Some(v) = slot {
                *v = tat;
            } else {
                if map.len() >= self.per_shard {
                    map.retain(|_, t| *t > now_us);
                }
                if map.len() >= self.per_shard
                    && let Some(oldest) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
                map.insert(key.into(), tat);
            }
        }
        decision
    }

    /// Drops every idle key (run periodically).
    pub fn sweep(&self, now_us: i64) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(|e| e.into_inner()).keys.retain(|_, t| *t > now_us);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).keys.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateLimitBackend for MemoryLimiter {
    async fn check(&self, key: &str, quota: Quota, now_us: i64) -> Result<Decision, LimiterError> {
        Ok(self.decide(key, quota, now_us))
    }
}

/// GCRA in Redis: one atomic script per call, the connection manager reconnecting by itself,
/// every decision bounded by `timeout`.
///
/// Concurrent decisions are batched. One task per limiter sends the decisions waiting for it
/// as one call while the previous call is answered: a lone decision goes out at once as one
/// `EVALSHA` of [`GCRA_LUA`]; under load, whatever queued meanwhile (up to [`MAX_BATCH`]) goes
/// as one `EVALSHA` of [`GCRA_BATCH_LUA`], which decides them one after another inside Redis,
/// in arrival order: exactly what one call each would have decided, for one round trip.
pub struct RedisLimiter {
    shared: Arc<Shared>,
    /// The batching task's queue, started on the first decision.
    queue: OnceLock<mpsc::Sender<Pending>>,
    /// The runtime the limiter was made on, which runs the batching task and so owns the
    /// connection: not the runtime of whichever request decides first (the built-in proxy's
    /// event loops have runtimes of their own).
    home: Option<tokio::runtime::Handle>,
}

struct Shared {
    client: redis::Client,
    /// Set on the first successful connection; the manager reconnects by itself after that.
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    script: redis::Script,
    batch: redis::Script,
    prefix: String,
    timeout: Duration,
    calls: AtomicU64,
}

/// One decision waiting for the batching task.
struct Pending {
    /// With the prefix.
    key: String,
    quota: Quota,
    now_us: i64,
    /// When the caller stops waiting: `timeout` after it asked.
    deadline: tokio::time::Instant,
    reply: oneshot::Sender<Result<Decision, LimiterError>>,
}

/// Most decisions in one call.
pub const MAX_BATCH: usize = 256;
/// Most decisions waiting; past it a decision fails at once (and the rule's `on_redis_error`
/// applies) rather than queueing without bound behind a slow Redis.
const MAX_QUEUED: usize = 16 * 1024;

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").field("prefix", &self.shared.prefix).finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Does not connect yet (Rampart starts while Redis is down and uses the fallback). Made
    /// inside a Tokio runtime, its batching task and connection live on that runtime; else on
    /// the runtime of the first decision.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, LimiterError> {
        Ok(Self {
            shared: Arc::new(Shared {
                client: redis::Client::open(url)?,
                conn: tokio::sync::OnceCell::new(),
                script: redis::Script::new(GCRA_LUA),
                batch: redis::Script::new(GCRA_BATCH_LUA),
                prefix: prefix.to_string(),
                timeout,
                calls: AtomicU64::new(0),
            }),
            queue: OnceLock::new(),
            home: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// The script's SHA-1 (what `EVALSHA` names), for benchmarks comparing a raw round trip.
    pub fn script_hash(&self) -> &str {
        self.shared.script.get_hash()
    }

    /// Script calls made so far (one per batch), for tests and benchmarks.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    fn queue(&self) -> &mpsc::Sender<Pending> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(MAX_QUEUED);
            // Ends when the limiter (the only sender) is dropped.
            let batches = run_batches(self.shared.clone(), rx);
            match &self.home {
                Some(home) => home.spawn(batches),
                None => tokio::spawn(batches),
            };
            tx
        })
    }
}

impl Shared {
    async fn connection(&self) -> Result<redis::aio::ConnectionManager, LimiterError> {
        let c = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_number_of_retries(1);
                let connect = redis::aio::ConnectionManager::new_with_config(self.client.clone(), config);
                tokio::time::timeout(self.timeout, connect)
                    .await
                    .map_err(|_| LimiterError::Timeout(self.timeout))?
                    .map_err(LimiterError::from)
            })
            .await?;
        Ok(c.clone())
    }

    /// One call deciding `batch` in order: the four numbers of each decision.
    async fn call(&self, batch: &[Pending]) -> Result<Vec<i64>, LimiterError> {
        let mut conn = self.connection().await?;
        let script = if batch.len() == 1 { &self.script } else { &self.batch };
        let mut call = script.prepare_invoke();
        for p in batch {
            call.key(p.key.as_str());
        }
        for p in batch {
            call.arg(p.now_us).arg(p.quota.period_us()).arg(p.quota.emission_us()).arg(p.quota.limit);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        if batch.len() == 1 {
            let reply: Vec<i64> = call.invoke_async(&mut conn).await?;
            if reply.len() == 4 { Ok(reply) } else { Err(LimiterError::Protocol) }
        } else {
            // One string of numbers (see `GCRA_BATCH_LUA`), its count checked as it is read.
            let text: Vec<u8> = call.invoke_async(&mut conn).await?;
            batch_reply(&text, batch.len()).ok_or(LimiterError::Protocol)
        }
    }
}

fn decision(quota: Quota, reply: &[i64]) -> Result<Decision, LimiterError> {
    let [allowed, remaining, retry, reset] = *reply else { return Err(LimiterError::Protocol) };
    let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    Ok(Decision {
        allowed: allowed == 1,
        limit: quota.limit,
        remaining: u32::try_from(remaining).unwrap_or(0),
        retry_after: us(retry),
        reset_after: us(reset),
    })
}

/// The batching task: takes what waits (at least one decision), sends it as one call bounded
/// by the earliest deadline among it, answers each, and starts over.
async fn run_batches(shared: Arc<Shared>, mut queue: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = tokio::time::Instant::now();
        // A caller that already stopped waiting is not decided for: counting it would spend
        // its budget on a request the fallback answered.
        batch.retain(|p| p.deadline > now && !p.reply.is_closed());
        let Some(deadline) = batch.iter().map(|p| p.deadline).min() else { continue };
        match tokio::time::timeout_at(deadline, shared.call(&batch)).await {
            Ok(Ok(reply)) => {
                for (p, r) in batch.drain(..).zip(reply.chunks_exact(4)) {
                    let _ = p.reply.send(decision(p.quota, r));
                }
            }
            Ok(Err(e)) => {
                let e = Arc::new(e);
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(LimiterError::Shared(e.clone())));
                }
            }
            Err(_) => {
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(LimiterError::Timeout(shared.timeout)));
                }
            }
        }
    }
}

impl RateLimitBackend for RedisLimiter {
    async fn check(&self, key: &str, quota: Quota, now_us: i64) -> Result<Decision, LimiterError> {
        let timeout = self.shared.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut prefixed = String::with_capacity(self.shared.prefix.len() + key.len());
        prefixed.push_str(&self.shared.prefix);
        prefixed.push_str(key);
        let (reply, answer) = oneshot::channel();
        let pending = Pending { key: prefixed, quota, now_us, deadline, reply };
        self.queue().try_send(pending).map_err(|_| LimiterError::Busy)?;
        // The task answers every decision by its deadline (or drops it when the limiter is
        // dropped): no timer of its own per decision.
        answer.await.unwrap_or(Err(LimiterError::Timeout(timeout)))
    }
}

/// Where a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Redis,
    /// Redis is configured but failed: this process decided, with the rule's fallback quota.
    Fallback,
}

/// A change of the shared store's health, for the caller to log, count and record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Degraded,
    Recovered,
}

/// The limiter Rampart uses: Redis when configured, else memory. After a Redis failure it
/// decides locally (with the fallback quota the caller passes) for `retry` before trying Redis
/// again, so an outage costs one timeout per `retry`, not one per request; the first success
/// ends the degradation.
#[derive(Debug)]
pub struct Limiter {
    local: MemoryLimiter,
    redis: Option<RedisLimiter>,
    degraded: AtomicBool,
    /// Milliseconds since `epoch` before which Redis is not tried again.
    retry_at_ms: AtomicU64,
    epoch: Instant,
    retry: Duration,
}

impl Limiter {
    pub fn memory(max_keys: usize) -> Self {
        Self::with(MemoryLimiter::new(max_keys), None, Duration::from_secs(1))
    }

    pub fn with(local: MemoryLimiter, redis: Option<RedisLimiter>, retry: Duration) -> Self {
        Self {
            local,
            redis,
            degraded: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            retry,
        }
    }

    pub fn local(&self) -> &MemoryLimiter {
        &self.local
    }

    /// The in-process limiter when it is the only one (no Redis): its decisions need no
    /// `await`, so a caller can decide synchronously.
    pub fn memory_only(&self) -> Option<&MemoryLimiter> {
        if self.redis.is_none() { Some(&self.local) } else { None }
    }

    /// Whether a shared store (Redis) is configured.
    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Decides for `key`; `fallback` is the quota used locally while Redis fails.
    pub async fn check(
        &self,
        key: &str,
        quota: Quota,
        fallback: Quota,
        now_us: i64,
    ) -> (Decision, Source, Option<Transition>) {
        let Some(redis) = &self.redis else { return (self.local.decide(key, quota, now_us), Source::Memory, None) };
        if self.elapsed_ms() >= self.retry_at_ms.load(Ordering::SeqCst) {
            match redis.check(key, quota, now_us).await {
                Ok(d) => {
                    let recovered = self.degraded.swap(false, Ordering::SeqCst);
                    return (d, Source::Redis, recovered.then_some(Transition::Recovered));
                }
                Err(e) => {
                    let retry_ms = u64::try_from(self.retry.as_millis()).unwrap_or(u64::MAX);
                    self.retry_at_ms.store(self.elapsed_ms().saturating_add(retry_ms), Ordering::SeqCst);
                    let first = !self.degraded.swap(true, Ordering::SeqCst);
                    if first {
                        tracing::warn!(error = %e, "rate limiter: Redis failed; deciding locally until it answers");
                    } else {
                        tracing::debug!(error = %e, "rate limiter: Redis still failing");
                    }
                    let d = self.local.decide(&format!("fallback:{key}"), fallback, now_us);
                    return (d, Source::Fallback, first.then_some(Transition::Degraded));
                }
            }
        }
        (self.local.decide(&format!("fallback:{key}"), fallback, now_us), Source::Fallback, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded_and_evicts_idle_keys_first() {
        let m = MemoryLimiter::new(64); // one key per shard
        let q = Quota::new(1, Duration::from_secs(10)).unwrap();
        for i in 0..1000 {
            m.decide(&format!("k{i}"), q, 0);
        }
        assert!(m.len() <= 64, "{}", m.len());
        m.sweep(10_000_001);
        assert!(m.is_empty(), "every key is idle after its period");
    }

    #[test]
    fn a_time_read_earlier_but_decided_later_does_not_refuse_within_the_burst() {
        // 2 per minute: two requests read the clock at t and t - 1 µs but reach the limiter in
        // the other order (one waited on a failing Redis). Both are within the burst.
        let m = MemoryLimiter::new(64);
        let q = Quota::new(2, Duration::from_secs(60)).unwrap();
        let t = 1_000_000_000;
        assert!(m.decide("k", q, t).allowed);
        assert!(m.decide("k", q, t - 1).allowed, "decided at the later time");
        assert!(!m.decide("k", q, t - 2).allowed, "the third is over the limit");
    }
}

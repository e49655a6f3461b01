//! Password hashing off the async runtime, on a fixed set of threads.
//!
//! argon2id at OWASP cost takes tens of milliseconds of a core and ~19 MiB each. Run inline on
//! the runtime, a burst of logins would stall every other request; run unbounded on the
//! blocking pool, it would exhaust memory. So hashes queue for N dedicated threads (default:
//! the number of cores): at most N run at once, and their memory is reused by the same N
//! threads rather than spread over whichever blocking threads tokio happened to start.
//!
//! The queue is bounded (`passwords.hashing_queue`): when it is full a new job is refused at
//! once ([`HashingError::Overloaded`], 503 `overloaded` with `Retry-After`), and a queued job
//! whose requester has gone (its request timed out or the client hung up) is skipped, so a
//! login flood cannot leave minutes of hashing behind it.
//!
//! The threads run at a lower scheduling priority (`passwords.hashing_nice`, default 10), so a
//! login storm yields the cores to the other requests (token checks, key verifies) instead of
//! sharing them evenly: bench/run's scenario (e) measures `GET /v1/me` during one.

use rampart_domain::password::HashError;
use rampart_domain::{Password, PasswordHasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

type Job = Box<dyn FnOnce(&PasswordHasher) + Send>;

#[derive(Debug, Clone)]
pub struct HashingPool {
    hasher: Arc<PasswordHasher>,
    jobs: mpsc::SyncSender<Job>,
    runs: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("hashing task failed: {0}")]
    Task(String),
    #[error("every hashing thread is busy and the queue is full")]
    Overloaded,
}

impl HashingPool {
    /// Starts `threads` hashing threads (at least one) at niceness `nice` (0: unchanged), with
    /// room for `queue` waiting jobs (at least one).
    pub fn new(hasher: PasswordHasher, threads: usize, nice: i32, queue: usize) -> std::io::Result<Self> {
        let hasher = Arc::new(hasher);
        let (jobs, queue) = mpsc::sync_channel::<Job>(queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let (queue, hasher) = (queue.clone(), hasher.clone());
            std::thread::Builder::new().name(format!("rampart-hash-{i}")).spawn(move || {
                if nice != 0 {
                    // Linux: `setpriority(PRIO_PROCESS, 0)` sets the calling thread's niceness.
                    if let Err(e) = rustix::process::setpriority_process(None, nice) {
                        tracing::warn!(error = %e, nice, "cannot lower the hashing threads' priority");
                    }
                }
                loop {
                    // The lock is held only to take one job, never while hashing.
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { break }; // the pool is gone
                    // A panicking job drops its answer channel (its caller sees an error); the
                    // thread lives on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&hasher)));
                }
            })?;
        }
        Ok(Self { hasher, jobs, runs: Arc::new(AtomicU64::new(0)) })
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// How many jobs have run on the pool (each one hash or verification batch). Lets tests
    /// prove that paths which must cost the same (known and unknown login) do the same work.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs `f` with the hasher on one of the hashing threads, once one is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, HashingError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |h| {
            // The requester is gone (timed out, hung up): nobody would read the answer.
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(f(h));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => return Err(HashingError::Overloaded),
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(HashingError::Task("the hashing threads have stopped".into()));
            }
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        answered.await.map_err(|_| HashingError::Task("the hashing job panicked".into()))
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashingError> {
        self.run(move |h| h.hash(&password, &mut rand::rngs::OsRng)).await?.map_err(HashingError::from)
    }

    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashingError> {
        let password = rampart_domain::Secret::new(password);
        self.run(move |h| h.verify(password.expose(), &phc)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_domain::{Argon2Params, PasswordPolicy};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_abandoned_jobs_are_skipped() {
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 1, 0, 1).unwrap();
        // Hold the only thread until released.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |_| {
                    let _ = started_tx.send(());
                    let _ = hold.recv();
                })
                .await
            }
        });
        started.await.unwrap();
        // One job fits in the queue; its requester then gives up.
        let ran = Arc::new(AtomicUsize::new(0));
        let queued = tokio::spawn({
            let (pool, ran) = (pool.clone(), ran.clone());
            async move { pool.run(move |_| ran.fetch_add(1, Ordering::SeqCst)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The queue is full: refused at once, not queued.
        assert!(matches!(pool.run(|_| ()).await, Err(HashingError::Overloaded)));
        queued.abort();
        let _ = queued.await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // The abandoned job was skipped; the pool serves again once the thread took it off the
        // queue.
        let mut answer = None;
        for _ in 0..200 {
            match pool.run(|_| 7).await {
                Ok(v) => {
                    answer = Some(v);
                    break;
                }
                Err(HashingError::Overloaded) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(answer, Some(7));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "nobody waited for it, so it did not run");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_than_the_permitted_number_at_once() {
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 2, 0, 64).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move |h| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let pw = Password::parse(format!("password-{i}"), &PasswordPolicy::ACCEPT_ANY).unwrap();
                        let out = h.hash(&pw, &mut rand::rngs::OsRng);
                        running.fetch_sub(1, Ordering::SeqCst);
                        out
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_ok());
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "peak concurrency {peak}");
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 1, 0, 64).unwrap();
        let phc =
            pool.hash(Password::parse("correct horse".into(), &PasswordPolicy::default()).unwrap()).await.unwrap();
        assert!(pool.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!pool.verify("wrong horse".into(), phc).await.unwrap());
    }

    /// Niceness of the calling thread, from `/proc/thread-self/stat` (field 19).
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        stat.rsplit(')').next().unwrap().split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_niceness_and_survive_a_panicking_job() {
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 1, 7, 64).unwrap();
        assert_eq!(pool.run(|_| own_nice()).await.unwrap(), 7, "the hashing thread is niced");
        assert_eq!(own_nice(), 0, "the caller's thread is not");
        assert!(pool.run(|_| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(pool.run(|_| 5).await.unwrap(), 5, "the one thread still serves");
    }
}

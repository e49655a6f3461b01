//! Password hashing off the async runtime, on a bounded pool.
//!
//! argon2id at OWASP cost takes tens of milliseconds of a core and ~19 MiB each. Run inline on
//! the runtime, a burst of logins would stall every other request; run unbounded on the
//! blocking pool, it would exhaust memory. So each hash waits for one of N permits
//! (default: the number of cores) and then runs on tokio's blocking pool.

use rampart_domain::password::HashError;
use rampart_domain::{Password, PasswordHasher};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct HashingPool {
    hasher: Arc<PasswordHasher>,
    permits: Arc<Semaphore>,
    runs: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("hashing task failed: {0}")]
    Task(String),
}

impl HashingPool {
    pub fn new(hasher: PasswordHasher, max_concurrent: usize) -> Self {
        Self {
            hasher: Arc::new(hasher),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            runs: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// How many jobs have run on the pool (each one hash or verification batch). Lets tests
    /// prove that paths which must cost the same (known and unknown login) do the same work.
    pub fn runs(&self) -> u64 {
        self.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` with the hasher on the blocking pool once a permit is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, HashingError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| HashingError::Task(e.to_string()))?;
        let hasher = self.hasher.clone();
        self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = tokio::task::spawn_blocking(move || {
            let out = f(&hasher);
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashingError::Task(e.to_string()))?;
        Ok(out)
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
    async fn never_runs_more_than_the_permitted_number_at_once() {
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move |h| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let pw = Password::parse(format!("password-{i}"), &PasswordPolicy::default()).unwrap();
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
        let pool = HashingPool::new(PasswordHasher::new(Argon2Params::default()).unwrap(), 1);
        let phc =
            pool.hash(Password::parse("correct horse".into(), &PasswordPolicy::default()).unwrap()).await.unwrap();
        assert!(pool.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!pool.verify("wrong horse".into(), phc).await.unwrap());
    }
}

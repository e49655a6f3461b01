//! Singleton jobs across instances: work that must run on one instance at a time (checkpoint
//! signing, the purges, the SIEM tail) asks its [`Leadership`] before each run.
//!
//! On PostgreSQL the leader of a job holds a session-level advisory lock on a connection of
//! its own, keyed by the schema and the job's name (instances of other deployments, or other
//! tests, in the same database never contend). The lock lives as long as that connection: an
//! instance that stops, crashes or loses its connection frees it, and the next instance to ask
//! takes over (within one period of the job). On SQLite there is one process per database file,
//! which always leads.

use crate::{Db, Store};
use sqlx::Connection;

/// One job's leadership as seen by this instance. Dropping it gives the job up.
pub struct Leadership {
    job: String,
    held: Option<sqlx::PgConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").field("job", &self.job).field("held", &self.held.is_some()).finish()
    }
}

impl Store {
    /// This instance's leadership of `job` (held by none yet: [`Leadership::lead`] takes it).
    pub fn leadership(&self, job: &str) -> Leadership {
        Leadership { job: job.to_string(), held: None }
    }
}

impl Leadership {
    /// Whether this instance should run the job now: it already leads and its lock's
    /// connection still answers, or it takes the lock now because no live instance holds it.
    /// A database error means "not now" (logged): the job is skipped, never run twice.
    pub async fn lead(&mut self, store: &Store) -> bool {
        let Db::Postgres(pool) = &store.db else { return true };
        if let Some(conn) = self.held.as_mut() {
            if conn.ping().await.is_ok() {
                return true;
            }
            tracing::warn!(job = %self.job, "singleton job: the leader's connection was lost; asking again");
            self.held = None;
        }
        let conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(job = %self.job, error = %e, "singleton job: no connection; skipped");
                return false;
            }
        };
        // Detached: the lock must outlive this call, on a connection the pool does not reuse.
        let mut conn = conn.detach();
        let took: Result<(bool,), sqlx::Error> =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext(current_schema()), hashtext($1))")
                .bind(&self.job)
                .fetch_one(&mut conn)
                .await;
        match took {
            Ok((true,)) => {
                tracing::info!(job = %self.job, "singleton job: this instance leads it");
                self.held = Some(conn);
                true
            }
            Ok((false,)) => {
                let _ = conn.close().await;
                false
            }
            Err(e) => {
                tracing::warn!(job = %self.job, error = %e, "singleton job: cannot ask for the lock; skipped");
                false
            }
        }
    }
}

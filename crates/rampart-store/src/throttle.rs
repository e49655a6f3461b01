//! Login throttle counters (see `rampart_domain::throttle` for the rules).

use crate::ts::Ts;
use crate::{Result, Store, with_tx};
use rampart_domain::{Attempts, ThrottlePolicy, Verdict};
use time::{Duration, OffsetDateTime};

#[derive(sqlx::FromRow)]
struct Row {
    failures: i64,
    window_started_at: OffsetDateTime,
    last_failure_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
}

impl From<Row> for Attempts {
    fn from(r: Row) -> Attempts {
        Attempts {
            failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
            window_started_at: r.window_started_at,
            last_failure_at: r.last_failure_at,
            locked_until: r.locked_until,
        }
    }
}

/// What [`Store::throttle_attempt`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptDecision {
    /// Counted against every key; for each key, whether this attempt reached its lockout
    /// (which takes effect if the attempt turns out to have failed).
    Counted(Vec<bool>),
    /// Refused without counting: some key is locked or must wait this long.
    Refused { retry_after: Duration, locked: bool },
}

/// Reads a key's counters inside an open transaction, holding its row lock (PostgreSQL) for
/// the rest of it. Creates an empty row first, so concurrent first attempts serialize too.
macro_rules! lock_row {
    ($tx:expr, $key:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_started_at, last_failure_at) VALUES ($1, 0, $2, $2) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind($key)
        .bind(Ts($now))
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE login_throttle SET failures = failures WHERE key = $1")
            .bind($key)
            .execute(&mut *$tx)
            .await?;
        let row: Row = sqlx::query_as(
            "SELECT failures, window_started_at, last_failure_at, locked_until FROM login_throttle WHERE key = $1",
        )
        .bind($key)
        .fetch_one(&mut *$tx)
        .await?;
        Attempts::from(row)
    }};
}

macro_rules! write_row {
    ($tx:expr, $key:expr, $a:expr) => {{
        sqlx::query(
            "UPDATE login_throttle SET failures = $1, window_started_at = $2, last_failure_at = $3, locked_until = $4 \
             WHERE key = $5",
        )
        .bind(i64::from($a.failures))
        .bind(Ts($a.window_started_at))
        .bind(Ts($a.last_failure_at))
        .bind($a.locked_until.map(Ts))
        .bind($key)
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// Checks every key and, if all allow an attempt now, counts it against each, atomically.
    pub async fn throttle_attempt(
        &self,
        keys: &[(&str, ThrottlePolicy)],
        now: OffsetDateTime,
    ) -> Result<AttemptDecision> {
        let decision = with_tx!(self, |tx| {
            let mut current = Vec::with_capacity(keys.len());
            for (key, _) in keys {
                current.push(lock_row!(tx, *key, now));
            }
            let mut refused: Option<(Duration, bool)> = None;
            for ((_, policy), a) in keys.iter().zip(&current) {
                let verdict = policy.check(Some(a), now);
                if let Some(wait) = verdict.retry_after() {
                    let locked = matches!(verdict, Verdict::Locked(_));
                    let (w, l) = refused.unwrap_or((Duration::ZERO, false));
                    refused = Some((w.max(wait), l || locked));
                }
            }
            match refused {
                Some((retry_after, locked)) => AttemptDecision::Refused { retry_after, locked },
                None => {
                    let mut locks = Vec::with_capacity(keys.len());
                    for ((key, policy), a) in keys.iter().zip(current) {
                        let (next, locks_now) = policy.count(Some(a), now);
                        write_row!(tx, *key, next);
                        locks.push(locks_now);
                    }
                    AttemptDecision::Counted(locks)
                }
            }
        });
        Ok(decision)
    }

    /// After a right password: forgets the counters of `clear` and takes the attempt back
    /// from each of `uncount`.
    pub async fn throttle_succeeded(
        &self,
        clear: &[&str],
        uncount: &[(&str, ThrottlePolicy)],
        now: OffsetDateTime,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            for key in clear {
                sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(*key).execute(&mut *tx).await?;
            }
            for (key, policy) in uncount {
                let a = lock_row!(tx, *key, now);
                let next = policy.uncount(a);
                write_row!(tx, *key, next);
            }
        });
        Ok(())
    }

    /// Forgets the counters of `key` (an administrator's unlock). Returns whether there were any.
    pub async fn throttle_clear(&self, key: &str) -> Result<bool> {
        let n = with_tx!(self, |tx| {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&mut *tx).await?.rows_affected()
        });
        Ok(n > 0)
    }
}

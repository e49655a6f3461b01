//! Login throttle counters (see `rampart_domain::throttle` for the rules).

use crate::ts::Ts;
use crate::tx::Finish;
use crate::{Result, Store, with_pool, with_tx};
use rampart_domain::{Attempts, ThrottlePolicy, UserId, Verdict};
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

fn refusal(verdict: Verdict) -> Option<AttemptDecision> {
    verdict
        .retry_after()
        .map(|retry_after| AttemptDecision::Refused { retry_after, locked: matches!(verdict, Verdict::Locked(_)) })
}

impl Store {
    /// Checks every key and, if all allow an attempt now, counts it against each, atomically.
    ///
    /// A refusal writes nothing: the keys are first only read, so a locked client sending a
    /// fresh identifier with every request cannot grow the table. Keys are checked in the
    /// order given (put the cheapest refusal, the client address, first).
    pub async fn throttle_attempt(
        &self,
        keys: &[(&str, ThrottlePolicy)],
        now: OffsetDateTime,
    ) -> Result<AttemptDecision> {
        let sql =
            "SELECT failures, window_started_at, last_failure_at, locked_until FROM login_throttle WHERE key = $1";
        for (key, policy) in keys {
            let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(sql).bind(*key).fetch_optional(pool).await)?;
            if let Some(refused) = refusal(policy.check(row.map(Attempts::from).as_ref(), now)) {
                return Ok(refused);
            }
        }
        let decision = with_tx!(self, |tx| {
            // Re-checked under the row locks: another attempt may have counted meanwhile.
            let mut current = Vec::with_capacity(keys.len());
            for (key, policy) in keys {
                let a = lock_row!(tx, *key, now);
                if let Some(refused) = refusal(policy.check(Some(&a), now)) {
                    // Refused after all: the empty rows `lock_row!` created go too.
                    return Ok(Finish::Rollback(refused));
                }
                current.push(a);
            }
            let mut locks = Vec::with_capacity(keys.len());
            for ((key, policy), a) in keys.iter().zip(current) {
                let (next, locks_now) = policy.count(Some(a), now);
                write_row!(tx, *key, next);
                locks.push(locks_now);
            }
            AttemptDecision::Counted(locks)
        });
        Ok(decision)
    }

    /// After a right password: takes the attempt back from each of `uncount` (lifting a lock
    /// only where this very attempt set it) and forgets the counters of `clear`. Callers pass
    /// address keys in `uncount` and identifier keys in `clear`, or both in `uncount` in
    /// `throttle_attempt`'s order.
    pub async fn throttle_succeeded(
        &self,
        clear: &[&str],
        uncount: &[(&str, ThrottlePolicy, bool)],
        now: OffsetDateTime,
    ) -> Result<()> {
        // Rows are locked in the order `throttle_attempt` locks them (the client address before
        // the identifier): the other order deadlocks on PostgreSQL against a concurrent attempt.
        with_tx!(self, |tx| {
            for (key, policy, locked_by_this) in uncount {
                let a = lock_row!(tx, *key, now);
                let next = policy.uncount(a, *locked_by_this);
                write_row!(tx, *key, next);
            }
            for key in clear {
                sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(*key).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Deletes counters whose window and lock are both over (run periodically).
    pub async fn purge_throttle(&self, now: OffsetDateTime, longest_window: Duration) -> Result<u64> {
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM login_throttle WHERE window_started_at < $1 AND (locked_until IS NULL OR locked_until < $2)",
            )
            .bind(Ts(now - longest_window))
            .bind(Ts(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// Names `user` as the account the lock on `key` fell on (a wrong password or code for an
    /// existing account reached its lockout), so the console can list locked-out users.
    pub async fn throttle_lock_owner(&self, key: &str, user: UserId) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE login_throttle SET user_id = $1 WHERE key = $2")
                .bind(user.0)
                .bind(key)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
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

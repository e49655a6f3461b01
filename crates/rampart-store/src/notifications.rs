//! The mail outbox, notification preferences and what the notice worker asks of the audit log
//! (migration 0019).
//!
//! A security notice's row is written by [`Tx::insert_event`](crate::tx::Tx) with its event
//! ([`NOTICE`]); a message a use case built whole is queued by [`Store::queue_mail`]. Workers take
//! due rows with [`Store::claim_mail`], the same way as the webhook outbox (`outbox.rs`).

use crate::ts::Ts;
use crate::{Result, Store, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use rampart_domain::notice::Preferences;
use time::OffsetDateTime;
use uuid::Uuid;

/// Queues a notice: `$1` the row's id, `$2` the notice kind, `$3` the event id, `$4` its time,
/// `$5` the user. Nothing is written when the user does not exist (any more).
pub(crate) const NOTICE: &str = "INSERT INTO mail_outbox (id, kind, user_id, event_id, state, attempts, \
     next_attempt_at, created_at) SELECT $1, $2, id, $3, 'pending', 0, $4, $4 FROM users WHERE id = $5";

/// `kind` of a message built whole by a use case (its content is in `sealed`).
pub const MESSAGE_KIND: &str = "message";

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub id: Uuid,
    /// A notice kind (`new_sign_in`, …) or [`MESSAGE_KIND`].
    pub kind: String,
    pub user_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    /// A message's recipient, subject and body, sealed by the caller.
    pub sealed: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at: OffsetDateTime,
}

/// What became of a claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent(OffsetDateTime),
    /// Failed for now; due again then. The note says why (no address in it).
    RetryAt(OffsetDateTime, String),
    /// Failed for good.
    Failed(String),
    /// Not sent on purpose: turned off, merged with an earlier notice, over the hourly cap, a
    /// sign-in from a known device.
    Skipped(String),
}

/// The outbox's rows by state, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl Store {
    /// Queues a message built whole by a use case (`sealed`: its recipient, subject and body).
    pub async fn queue_mail(&self, id: Uuid, user: Option<Uuid>, sealed: &str, now: OffsetDateTime) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO mail_outbox (id, kind, user_id, event_id, sealed, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, NULL, $4, 'pending', 0, $5, $5)"
        )
        .bind(id)
        .bind(MESSAGE_KIND)
        .bind(user)
        .bind(sealed)
        .bind(Ts(now))
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Takes up to `limit` messages due at `now` that no live claim holds, until `hold_until`.
    pub async fn claim_mail(
        &self,
        now: OffsetDateTime,
        hold_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>> {
        const DUE: &str = "SELECT id FROM mail_outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
                           AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY next_attempt_at LIMIT $3";
        let claim = |due: &str| {
            format!(
                "UPDATE mail_outbox SET claimed_until = $2 WHERE id IN ({due}) AND state = 'pending' \
                 AND (claimed_until IS NULL OR claimed_until <= $1) \
                 RETURNING id, kind, user_id, event_id, sealed, attempts, created_at"
            )
        };
        type Row = (Uuid, String, Option<Uuid>, Option<Uuid>, Option<String>, i32, OffsetDateTime);
        let rows: Vec<Row> = self.claim_due(DUE, claim, now, hold_until, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, user_id, event_id, sealed, attempts, created_at)| ClaimedMail {
                id,
                kind,
                user_id,
                event_id,
                sealed,
                attempts: u32::try_from(attempts).unwrap_or(0),
                created_at,
            })
            .collect())
    }

    /// Records what became of a claimed row (`attempts`: counting this one).
    pub async fn finish_mail(&self, id: Uuid, attempts: u32, outcome: &MailOutcome) -> Result<()> {
        let (state, next, sent, note): (&str, Option<OffsetDateTime>, Option<OffsetDateTime>, Option<&str>) =
            match outcome {
                MailOutcome::Sent(at) => ("sent", None, Some(*at), None),
                MailOutcome::RetryAt(at, note) => ("pending", Some(*at), None, Some(note)),
                MailOutcome::Failed(note) => ("failed", None, None, Some(note)),
                MailOutcome::Skipped(note) => ("skipped", None, None, Some(note)),
            };
        // The sealed body is dropped once the message is done with: it may hold a live link.
        let sql = if state == "pending" {
            "UPDATE mail_outbox SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
             sent_at = $4, note = $5, claimed_until = NULL WHERE id = $6"
        } else {
            "UPDATE mail_outbox SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
             sent_at = $4, note = $5, claimed_until = NULL, sealed = NULL WHERE id = $6"
        };
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(state)
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(next.map(Ts))
            .bind(sent.map(Ts))
            .bind(note)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Notices sent to `user`, in one read: all of them since `all_since`, and those of `kind`
    /// since `kind_since` (the hourly cap and the merge window).
    pub async fn notices_sent_since(
        &self,
        user: Uuid,
        kind: &str,
        all_since: OffsetDateTime,
        kind_since: OffsetDateTime,
    ) -> Result<(i64, i64)> {
        let row: (Option<i64>, Option<i64>) = with_pool!(self, |pool| sqlx::query_as(
            "SELECT sum(CASE WHEN sent_at >= $3 THEN 1 ELSE 0 END), \
             sum(CASE WHEN kind = $2 AND sent_at >= $4 THEN 1 ELSE 0 END) FROM mail_outbox \
             WHERE user_id = $1 AND state = 'sent' AND sent_at >= $5 AND kind <> $6"
        )
        .bind(user)
        .bind(kind)
        .bind(Ts(all_since))
        .bind(Ts(kind_since))
        .bind(Ts(all_since.min(kind_since)))
        .bind(MESSAGE_KIND)
        .fetch_one(pool)
        .await)?;
        Ok((row.0.unwrap_or(0), row.1.unwrap_or(0)))
    }

    /// Records that `user` signed in at `at` from the device `mark`, and says what was known
    /// before: whether this device was seen at or after `since`, and whether any device of the
    /// user was ever recorded.
    pub async fn see_device(
        &self,
        user: Uuid,
        mark: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(bool, bool)> {
        let known = with_tx!(self, |tx| {
            let last: Option<(OffsetDateTime,)> =
                sqlx::query_as("SELECT last_seen FROM known_devices WHERE user_id = $1 AND mark = $2")
                    .bind(user)
                    .bind(mark.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            let any: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM known_devices WHERE user_id = $1 LIMIT 1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO known_devices (user_id, mark, last_seen) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, mark) DO UPDATE SET last_seen = excluded.last_seen \
                 WHERE known_devices.last_seen < excluded.last_seen",
            )
            .bind(user)
            .bind(mark.to_string())
            .bind(Ts(at))
            .execute(&mut *tx)
            .await?;
            (last.is_some_and(|(t,)| t >= since), any.is_some())
        });
        Ok(known)
    }

    /// The devices a user signed in from (mark, last seen), newest first.
    pub async fn known_devices(&self, user: Uuid) -> Result<Vec<(String, OffsetDateTime)>> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT mark, last_seen FROM known_devices WHERE user_id = $1 ORDER BY last_seen DESC"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?)
    }

    /// A user's notification preferences (the defaults when never set).
    pub async fn notification_prefs(&self, user: Uuid) -> Result<Preferences> {
        let row: Option<(bool, bool)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT new_sign_in, security_changes FROM notification_prefs WHERE user_id = $1"
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map_or_else(Preferences::default, |(new_sign_in, security_changes)| Preferences {
            new_sign_in,
            security_changes,
        }))
    }

    /// Stores a user's notification preferences with the event recording the change.
    pub async fn set_notification_prefs(
        &self,
        user: Uuid,
        prefs: Preferences,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO notification_prefs (user_id, new_sign_in, security_changes, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET new_sign_in = excluded.new_sign_in, \
                 security_changes = excluded.security_changes, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(prefs.new_sign_in)
            .bind(prefs.security_changes)
            .bind(Ts(now))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// The outbox's rows by state.
    pub async fn mail_counts(&self) -> Result<MailCounts> {
        let rows: Vec<(String, i64)> =
            with_pool!(self, |pool| sqlx::query_as("SELECT state, count(*) FROM mail_outbox GROUP BY state")
                .fetch_all(pool)
                .await)?;
        let mut c = MailCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" => c.pending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                "skipped" => c.skipped = n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Sent and given-up rows older than `before` are deleted (the hourly purge); the sealed
    /// body of each was dropped when it was done with.
    pub async fn purge_mail(&self, before: OffsetDateTime) -> Result<u64> {
        let done = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM mail_outbox WHERE state <> 'pending' AND created_at < $1"
        )
        .bind(Ts(before))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

/// A mail outbox row about a user, as a personal-data export shows it (never the body).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRecord {
    pub kind: String,
    pub state: String,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

impl Store {
    /// The mail outbox rows about `user`, oldest first.
    pub async fn mail_about(&self, user: Uuid) -> Result<Vec<MailRecord>> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT kind, state, created_at, sent_at FROM mail_outbox WHERE user_id = $1 ORDER BY created_at, id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?)
    }
}

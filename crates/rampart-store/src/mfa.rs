//! Second factors: the sealed TOTP secret with its last accepted time step, backup-code hashes,
//! and the `mfa_token`s of step-up logins.
//!
//! Every single-use thing is consumed by one conditional `UPDATE` (compare-and-swap), never a
//! read-then-write: a TOTP step with `WHERE last_step < $step`, a backup code and an
//! `mfa_token` with `WHERE used_at IS NULL`. Of concurrent uses exactly one changes a row.

use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Result, RevokeSessions, Store, StoreError, with_pool, with_tx};
use rampart_domain::{SecurityEvent, TokenHash, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A user's TOTP row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotp {
    /// The secret sealed with the master key (`v1.<key id>.<…>`), AAD = the user id.
    pub sealed_secret: String,
    pub enabled: bool,
    pub last_step: i64,
}

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MfaStatus {
    pub totp: bool,
    pub backup_codes_left: u32,
    /// Registered WebAuthn authenticators.
    pub webauthn: u32,
}

impl MfaStatus {
    /// Whether the user has a real second factor (backup codes alone are a fallback of one).
    pub fn any(&self) -> bool {
        self.totp || self.webauthn > 0
    }
}

/// An `mfa_token` that still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub user_id: UserId,
    pub cookie_mode: bool,
    pub ip: Option<String>,
    pub failures: u32,
    /// The keyed hash of the e-mailed code, once one was sent.
    pub email_code_hash: Option<Vec<u8>>,
    /// How the user got this far: `pwd` (a password), `fed` (an external identity).
    pub first_factor: String,
}

/// `user_id, cookie_mode, ip, failures, email_code_hash, first_factor` of `mfa_challenges`.
type ChallengeRow = (Uuid, bool, Option<String>, i64, Option<Vec<u8>>, String);

/// Replaces a user's backup codes inside an open transaction.
macro_rules! replace_codes_in {
    ($tx:expr, $user:expr, $codes:expr, $now:expr) => {{
        sqlx::query("DELETE FROM mfa_backup_codes WHERE user_id = $1").bind($user.0).execute(&mut *$tx).await?;
        for hash in $codes {
            sqlx::query("INSERT INTO mfa_backup_codes (user_id, hash, created_at) VALUES ($1, $2, $3)")
                .bind($user.0)
                .bind(hash.to_vec())
                .bind(Ts($now))
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

impl Store {
    /// Which factors `user` has, in one round trip.
    pub async fn mfa_status(&self, user: UserId) -> Result<MfaStatus> {
        let (totp, codes, webauthn): (i64, i64, i64) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL), \
                 (SELECT COUNT(*) FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL), \
                 (SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1)",
            )
            .bind(user.0)
            .fetch_one(pool)
            .await
        })?;
        Ok(MfaStatus {
            totp: totp > 0,
            backup_codes_left: u32::try_from(codes).unwrap_or(0),
            webauthn: u32::try_from(webauthn).unwrap_or(0),
        })
    }

    pub async fn totp(&self, user: UserId) -> Result<Option<StoredTotp>> {
        let row: Option<(String, Option<OffsetDateTime>, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT secret, enabled_at, last_step FROM mfa_totp WHERE user_id = $1")
                .bind(user.0)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(sealed_secret, enabled, last_step)| StoredTotp {
            sealed_secret,
            enabled: enabled.is_some(),
            last_step,
        }))
    }

    /// Stores a new, not yet enabled TOTP secret (replacing a pending one). Fails with
    /// [`StoreError::Conflict`] when TOTP is already enabled.
    pub async fn set_pending_totp(
        &self,
        user: UserId,
        sealed_secret: &str,
        key_id: &str,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NULL")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            let inserted = tx
                .swapped(
                    sqlx::query(
                        "INSERT INTO mfa_totp (user_id, secret, key_id, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id) DO NOTHING",
                    )
                    .bind(user.0)
                    .bind(sealed_secret)
                    .bind(key_id)
                    .bind(Ts(now)),
                )
                .await?;
            if !inserted {
                return Err(StoreError::Conflict("totp already enabled".into()));
            }
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Enables the pending TOTP secret with the step of its first right code, replaces the
    /// backup codes, optionally ends other sessions, and records `event`. `false` when there is
    /// no pending secret or that step was used already (nothing changes then).
    #[allow(clippy::too_many_arguments)]
    pub async fn enable_totp(
        &self,
        user: UserId,
        step: i64,
        codes: &[[u8; 32]],
        now: OffsetDateTime,
        revoke: RevokeSessions,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swapped(
                    sqlx::query(
                        "UPDATE mfa_totp SET enabled_at = $1, last_step = $2 \
                         WHERE user_id = $3 AND enabled_at IS NULL AND last_step < $2",
                    )
                    .bind(Ts(now))
                    .bind(step)
                    .bind(user.0),
                )
                .await?;
            if !done {
                return Ok(Finish::Rollback(false));
            }
            replace_codes_in!(tx, user, codes, now);
            tx.revoke_sessions(user, revoke, now, "mfa_changed").await?;
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Accepts a TOTP code's time step once: moves `last_step` forward only if `step` is later
    /// (the replay guard), recording `event` when it did.
    pub async fn use_totp_step(&self, user: UserId, step: i64, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE mfa_totp SET last_step = $1 WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_step < $1",
                )
                .bind(step)
                .bind(user.0),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Removes an enabled TOTP and the backup codes (which belong to it), optionally ending
    /// other sessions. `false` (nothing changed) when TOTP is not enabled. The caller has
    /// re-authenticated first (a code it checked was spent then).
    pub async fn disable_totp(
        &self,
        user: UserId,
        now: OffsetDateTime,
        revoke: RevokeSessions,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swapped(sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL").bind(user.0))
                .await?;
            if !done {
                return Ok(Finish::Rollback(false));
            }
            sqlx::query("DELETE FROM mfa_backup_codes WHERE user_id = $1").bind(user.0).execute(&mut *tx).await?;
            tx.revoke_sessions(user, revoke, now, "mfa_changed").await?;
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Replaces the backup codes (the old set stops working), recording `event`.
    pub async fn replace_backup_codes(
        &self,
        user: UserId,
        codes: &[[u8; 32]],
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            replace_codes_in!(tx, user, codes, now);
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Uses a backup code once. When this call consumed it: how many are still unused, and the
    /// event `make_event` built from that number, recorded in the same transaction. `None` when
    /// the code is unknown or already used.
    pub async fn use_backup_code(
        &self,
        user: UserId,
        hash: &[u8; 32],
        now: OffsetDateTime,
        make_event: impl FnOnce(u32) -> SecurityEvent,
    ) -> Result<Option<(u32, SecurityEvent)>> {
        let used = with_tx!(self, |tx| {
            let used = tx
                .swapped(
                    sqlx::query(
                        "UPDATE mfa_backup_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL",
                    )
                    .bind(Ts(now))
                    .bind(user.0)
                    .bind(hash.to_vec()),
                )
                .await?;
            if !used {
                return Ok(Finish::Rollback(None));
            }
            let (left,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user.0)
                    .fetch_one(&mut *tx)
                    .await?;
            let left = u32::try_from(left).unwrap_or(0);
            let event = make_event(left);
            tx.invalidates(Cache::Accounts);
            tx.insert_event(&event).await?;
            Some((left, event))
        });
        Ok(used)
    }

    /// Stores the hash of a new `mfa_token` and records `event`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_mfa_challenge(
        &self,
        hash: TokenHash,
        user: UserId,
        cookie_mode: bool,
        first_factor: &str,
        ip: Option<&str>,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO mfa_challenges (hash, user_id, cookie_mode, ip, created_at, expires_at, first_factor) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(hash.0.to_vec())
            .bind(user.0)
            .bind(cookie_mode)
            .bind(ip)
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .bind(first_factor)
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// The challenge behind an `mfa_token`, if it is unused, unexpired and has fewer than
    /// `max_failures` wrong codes.
    pub async fn mfa_challenge(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
        max_failures: u32,
    ) -> Result<Option<MfaChallenge>> {
        let row: Option<ChallengeRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, cookie_mode, ip, failures, email_code_hash, first_factor FROM mfa_challenges \
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3",
            )
            .bind(hash.0.to_vec())
            .bind(Ts(now))
            .bind(i64::from(max_failures))
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(challenge))
    }

    /// Attaches (the keyed hash of) an e-mailed code to a live challenge, replacing an earlier
    /// one, unless one was sent after `resend_after`; records `event` when it did.
    pub async fn set_mfa_email_code(
        &self,
        hash: TokenHash,
        code_hash: &[u8; 32],
        now: OffsetDateTime,
        resend_after: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE mfa_challenges SET email_code_hash = $1, email_code_sent_at = $2 \
                     WHERE hash = $3 AND used_at IS NULL AND expires_at > $2 \
                     AND (email_code_sent_at IS NULL OR email_code_sent_at <= $4)",
                )
                .bind(code_hash.to_vec())
                .bind(Ts(now))
                .bind(hash.0.to_vec())
                .bind(Ts(resend_after)),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Takes one attempt at a live challenge that has attempts left, in one statement: the
    /// count moves before the answer is checked, so of any number of concurrent attempts at
    /// most `max_attempts` in all get to check a code. `None`: unknown, used, expired or spent.
    pub async fn claim_mfa_attempt(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<MfaChallenge>> {
        let row: Option<ChallengeRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE mfa_challenges SET failures = failures + 1 \
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3 \
                 RETURNING user_id, cookie_mode, ip, failures, email_code_hash, first_factor",
            )
            .bind(hash.0.to_vec())
            .bind(Ts(now))
            .bind(i64::from(max_attempts))
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(challenge))
    }

    /// Uses an `mfa_token` once: `true` for exactly one caller, while it is unexpired.
    pub async fn consume_mfa_challenge(&self, hash: TokenHash, now: OffsetDateTime) -> Result<bool> {
        let used = with_tx!(self, |tx| {
            tx.swapped(
                sqlx::query(
                    "UPDATE mfa_challenges SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(Ts(now))
                .bind(hash.0.to_vec()),
            )
            .await?
        });
        Ok(used)
    }

    /// Deletes challenges that ended before `before` (run periodically).
    pub async fn purge_mfa_challenges(&self, before: OffsetDateTime) -> Result<u64> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mfa_challenges WHERE expires_at < $1")
                .bind(Ts(before))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }
}

fn challenge((user, cookie_mode, ip, failures, email_code_hash, first_factor): ChallengeRow) -> MfaChallenge {
    MfaChallenge {
        first_factor,
        user_id: UserId(user),
        cookie_mode,
        ip,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        email_code_hash,
    }
}

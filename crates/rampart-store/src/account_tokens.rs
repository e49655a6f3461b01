//! Single-use tokens sent by e-mail (verification, password reset) or handed out at login for
//! an expired password. Stored as SHA-256; consumed by a compare-and-swap on `used_at`, in the
//! same transaction as the change they authorize.

use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Result, RevokeSessions, Store, StoreError, with_pool, with_tx};
use rampart_domain::{SecurityEvent, TokenHash, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a token authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// Handed out by a login whose password has expired: allows setting a new one.
    ExpiredPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::ExpiredPassword => "expired_password",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [TokenPurpose::VerifyEmail, TokenPurpose::ResetPassword, TokenPurpose::ExpiredPassword]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A valid (unused, unexpired) token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub purpose: TokenPurpose,
    pub user_id: UserId,
    pub email: String,
}

impl Store {
    /// Stores a token (its hash) for `user`, with `event` when given.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_account_token(
        &self,
        hash: TokenHash,
        purpose: TokenPurpose,
        user: UserId,
        email: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        event: Option<&SecurityEvent>,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO account_tokens (hash, purpose, user_id, email, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash.0.to_vec())
            .bind(purpose.as_str())
            .bind(user.0)
            .bind(email)
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .execute(&mut *tx)
            .await?;
            if let Some(event) = event {
                tx.insert_event(event).await?;
            }
        });
        Ok(())
    }

    /// When the newest token of `purpose` was issued to `user`, if any (to pace e-mails).
    pub async fn last_account_token_at(&self, user: UserId, purpose: TokenPurpose) -> Result<Option<OffsetDateTime>> {
        let row: Option<(OffsetDateTime,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT created_at FROM account_tokens WHERE user_id = $1 AND purpose = $2 \
                 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(user.0)
            .bind(purpose.as_str())
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(t,)| t))
    }

    /// The token hashed `hash` if it is unused and unexpired at `now`.
    pub async fn find_account_token(&self, hash: TokenHash, now: OffsetDateTime) -> Result<Option<AccountToken>> {
        let row: Option<(String, Uuid, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT purpose, user_id, email FROM account_tokens \
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(hash.0.to_vec())
            .bind(Ts(now))
            .fetch_optional(pool)
            .await
        })?;
        row.map(|(purpose, user, email)| {
            let purpose = TokenPurpose::parse(&purpose)
                .ok_or_else(|| StoreError::Corrupt(format!("account token: unknown purpose {purpose:?}")))?;
            Ok(AccountToken { purpose, user_id: UserId(user), email })
        })
        .transpose()
    }

    /// Uses a password token (reset or expired-password): sets the new password, revokes every
    /// session, voids the user's other password tokens, forgets the login throttle of
    /// `throttle_key`, and records `event`, all in one transaction. Fails with
    /// [`StoreError::Conflict`] when the token was used (or expired) meanwhile.
    pub async fn complete_password_reset(
        &self,
        hash: TokenHash,
        user: UserId,
        new_hash: &str,
        now: OffsetDateTime,
        throttle_key: &str,
        event: &SecurityEvent,
    ) -> Result<u64> {
        let revoked = with_tx!(self, |tx| {
            // The user row first: concurrent resets of one user queue here instead of
            // deadlocking on each other's tokens.
            sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
                .bind(Ts(now))
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            let used = tx
                .swapped(
                    sqlx::query(
                        "UPDATE account_tokens SET used_at = $1 WHERE hash = $2 AND user_id = $3 AND used_at IS NULL \
                         AND expires_at > $1 AND purpose IN ('reset_password', 'expired_password')",
                    )
                    .bind(Ts(now))
                    .bind(hash.0.to_vec())
                    .bind(user.0),
                )
                .await?;
            if !used {
                return Err(StoreError::Conflict("the token was used already".into()));
            }
            tx.void_password_tokens(user, now).await?;
            tx.set_password(user, new_hash, now).await?;
            // The e-mailed link proved the mailbox: the address counts as verified.
            sqlx::query(
                "UPDATE users SET email_verified = $1 WHERE id = $2 AND email IN \
                 (SELECT email FROM account_tokens WHERE hash = $3 AND purpose = 'reset_password')",
            )
            .bind(true)
            .bind(user.0)
            .bind(hash.0.to_vec())
            .execute(&mut *tx)
            .await?;
            let revoked = tx.revoke_sessions(user, RevokeSessions::All, now, "password_reset").await?;
            sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(throttle_key).execute(&mut *tx).await?;
            tx.insert_event(event).await?;
            revoked
        });
        Ok(revoked)
    }

    /// Uses a verification token: marks the address verified if it is still the user's, with
    /// `event` (built once the user is known). Returns the user, or `None` for a token that is
    /// unknown, used or expired.
    pub async fn verify_email(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
        event: impl Fn(UserId) -> SecurityEvent,
    ) -> Result<Option<(UserId, SecurityEvent)>> {
        let out = with_tx!(self, |tx| {
            let row: Option<(Uuid, String)> = sqlx::query_as(
                "UPDATE account_tokens SET used_at = $1 WHERE hash = $2 AND purpose = 'verify_email' \
                 AND used_at IS NULL AND expires_at > $1 RETURNING user_id, email",
            )
            .bind(Ts(now))
            .bind(hash.0.to_vec())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user, email)) = row else { return Ok(Finish::Rollback(None)) };
            let verified = tx
                .swapped(
                    sqlx::query("UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3 AND email = $4")
                        .bind(true)
                        .bind(Ts(now))
                        .bind(user)
                        .bind(&email),
                )
                .await?;
            if !verified {
                // The address changed since the token was sent: the token is spent, nothing else.
                return Ok(Finish::Commit(None));
            }
            tx.invalidates(Cache::Accounts);
            let ev = event(UserId(user));
            tx.insert_event(&ev).await?;
            Some((UserId(user), ev))
        });
        Ok(out)
    }
}

//! WebAuthn: registered authenticators (the library's credential as JSON, with its signature
//! counter) and the server-side state of ceremonies in flight.
//!
//! A ceremony's state is taken once: `DELETE … RETURNING` of an unexpired row, so of two
//! concurrent finishes exactly one gets it. A counter moves only forward
//! (`UPDATE … WHERE counter < $new`, or both zero for authenticators without one), so a
//! replayed or cloned authenticator's assertion changes nothing.

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Result, RevokeSessions, Store, StoreError, with_pool, with_tx};
use rampart_domain::{SecurityEvent, TokenHash, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebauthnCeremony {
    /// Adding an authenticator to a signed-in account.
    Register,
    /// The second step of a password login, bound to its `mfa_token`.
    Login,
    /// A passwordless login with a discoverable credential (no user known yet).
    Passkey,
}

impl WebauthnCeremony {
    fn as_str(self) -> &'static str {
        match self {
            WebauthnCeremony::Register => "register",
            WebauthnCeremony::Login => "login",
            WebauthnCeremony::Passkey => "passkey",
        }
    }
}

/// A taken ceremony state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnChallenge {
    pub user_id: Option<UserId>,
    /// For [`WebauthnCeremony::Login`]: the hash of the `mfa_token` it belongs to.
    pub mfa_hash: Option<Vec<u8>>,
    /// The library's ceremony state, as JSON.
    pub state: String,
}

/// A registered authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebauthn {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub credential_id: Vec<u8>,
    /// The library's credential, as JSON.
    pub passkey: String,
    pub counter: i64,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

type CredRow = (Uuid, Uuid, String, Vec<u8>, String, i64, OffsetDateTime, Option<OffsetDateTime>);

const CRED_COLUMNS: &str = "id, user_id, name, credential_id, passkey, counter, created_at, last_used_at";

fn cred(row: CredRow) -> StoredWebauthn {
    let (id, user, name, credential_id, passkey, counter, created_at, last_used_at) = row;
    StoredWebauthn { id, user_id: UserId(user), name, credential_id, passkey, counter, created_at, last_used_at }
}

/// A new authenticator to store.
#[derive(Debug, Clone)]
pub struct NewWebauthn<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: &'a str,
    pub credential_id: &'a [u8],
    pub passkey: &'a str,
    pub counter: i64,
}

impl Store {
    /// Stores a ceremony's state until `expires_at`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_webauthn_challenge(
        &self,
        id: Uuid,
        kind: WebauthnCeremony,
        user: Option<UserId>,
        mfa_hash: Option<TokenHash>,
        state: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO webauthn_challenges (id, kind, user_id, mfa_hash, state, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(kind.as_str())
            .bind(user.map(|u| u.0))
            .bind(mfa_hash.map(|h| h.0.to_vec()))
            .bind(state)
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// How many unexpired ceremonies of `kind` are stored.
    pub async fn pending_webauthn_challenges(&self, kind: WebauthnCeremony, now: OffsetDateTime) -> Result<u64> {
        let (n,): (i64,) = with_pool!(self, |pool| {
            sqlx::query_as("SELECT COUNT(*) FROM webauthn_challenges WHERE kind = $1 AND expires_at > $2")
                .bind(kind.as_str())
                .bind(Ts(now))
                .fetch_one(pool)
                .await
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Takes (deletes and returns) an unexpired ceremony state of `kind`: once, for exactly
    /// one caller.
    pub async fn take_webauthn_challenge(
        &self,
        id: Uuid,
        kind: WebauthnCeremony,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>> {
        let row: Option<(Option<Uuid>, Option<Vec<u8>>, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM webauthn_challenges WHERE id = $1 AND kind = $2 AND expires_at > $3 \
                 RETURNING user_id, mfa_hash, state",
            )
            .bind(id)
            .bind(kind.as_str())
            .bind(Ts(now))
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(user, mfa_hash, state)| WebauthnChallenge { user_id: user.map(UserId), mfa_hash, state }))
    }

    /// Deletes ceremony states that expired before `before` (run periodically).
    pub async fn purge_webauthn_challenges(&self, before: OffsetDateTime) -> Result<u64> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at < $1")
                .bind(Ts(before))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// A user's authenticators, oldest first.
    pub async fn webauthn_credentials(&self, user: UserId) -> Result<Vec<StoredWebauthn>> {
        let rows: Vec<CredRow> = with_pool!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {CRED_COLUMNS} FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user.0)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(cred).collect())
    }

    /// The authenticator with this credential id (any account).
    pub async fn webauthn_credential_by_credential_id(&self, credential_id: &[u8]) -> Result<Option<StoredWebauthn>> {
        let row: Option<CredRow> = with_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {CRED_COLUMNS} FROM webauthn_credentials WHERE credential_id = $1"))
                .bind(credential_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(cred))
    }

    /// Stores a new authenticator, optionally ending other sessions, and records `event`.
    /// [`StoreError::Conflict`] when that credential id is registered already (to any account).
    pub async fn add_webauthn_credential(
        &self,
        new: &NewWebauthn<'_>,
        now: OffsetDateTime,
        revoke: RevokeSessions,
        event: &SecurityEvent,
    ) -> Result<()> {
        let user = new.user_id;
        with_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO webauthn_credentials (id, user_id, name, credential_id, passkey, counter, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(new.id)
            .bind(user.0)
            .bind(new.name)
            .bind(new.credential_id)
            .bind(new.passkey)
            .bind(new.counter)
            .bind(Ts(now))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict("webauthn credential already registered".into()));
                }
                other => other?,
            };
            tx.revoke_sessions(user, revoke, now, "mfa_changed").await?;
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Removes one of `user`'s authenticators, optionally ending other sessions, recording
    /// `event`. `false` when there is no such authenticator of this user.
    pub async fn remove_webauthn_credential(
        &self,
        user: UserId,
        id: Uuid,
        now: OffsetDateTime,
        revoke: RevokeSessions,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swapped(
                    sqlx::query("DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2")
                        .bind(id)
                        .bind(user.0),
                )
                .await?;
            if !done {
                return Ok(Finish::Rollback(false));
            }
            tx.revoke_sessions(user, revoke, now, "mfa_changed").await?;
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Records a use of an authenticator: its updated credential and counter, only if the
    /// counter moved forward (or the authenticator keeps none: both zero), with `event`.
    /// `false` when the row is gone or the counter did not advance (a replay or a clone).
    pub async fn use_webauthn_credential(
        &self,
        id: Uuid,
        passkey: &str,
        counter: i64,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE webauthn_credentials SET passkey = $1, counter = $2, last_used_at = $3 \
                     WHERE id = $4 AND (counter < $2 OR (counter = 0 AND $2 = 0))",
                )
                .bind(passkey)
                .bind(counter)
                .bind(Ts(now))
                .bind(id),
                event,
            )
            .await?
        });
        Ok(done)
    }
}

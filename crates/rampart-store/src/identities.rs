//! Federation: external identities linked to accounts (`user_identities`, one account per
//! provider and subject), accounts created from one, and the payloads a provider signed that
//! were seen once (`federation_replays`: claimed by one `INSERT`, so of concurrent
//! presentations exactly one wins).

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::tx::Finish;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::federation::ExternalIdentity;
use rampart_domain::{Email, RoleName, SecurityEvent, User, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored link between an account and an external identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    pub id: Uuid,
    pub user_id: UserId,
    pub provider: String,
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

type Row = (Uuid, Uuid, String, String, Option<String>, Option<String>, OffsetDateTime, Option<OffsetDateTime>);

/// Inserts a link (binds: id, user, provider, subject, username, display name, time); no row
/// when the identity is linked already.
const INSERT: &str = "INSERT INTO user_identities (id, user_id, provider, subject, username, display_name, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, subject) DO NOTHING";

const COLUMNS: &str = "id, user_id, provider, subject, username, display_name, created_at, last_used_at";

fn linked(row: Row) -> LinkedIdentity {
    let (id, user, provider, subject, username, display_name, created_at, last_used_at) = row;
    LinkedIdentity { id, user_id: UserId(user), provider, subject, username, display_name, created_at, last_used_at }
}

/// What linking an identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked(LinkedIdentity),
    /// The identity is linked to this account already (nothing written).
    AlreadyLinked(LinkedIdentity),
    /// The identity is linked to another account (nothing written).
    LinkedElsewhere,
}

/// What unlinking an identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    /// No such identity on this account.
    NotFound,
    /// The account has no password and no other identity: it would have no way in left.
    LastWayIn,
}

/// An account created from an external identity: no password (`password_hash` NULL), the
/// `user` role.
#[derive(Debug, Clone)]
pub struct NewFederatedUser {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    /// Only when the provider said it verified the address.
    pub email_verified: bool,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Claims a provider-signed payload (`nonce`: e.g. a Telegram widget `hash`) until
    /// `expires_at`: `true` for the first presentation only. Purges claims expired by `now`.
    pub async fn claim_federation_nonce(
        &self,
        provider: &str,
        nonce: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let inserted = with_tx!(self, |tx| {
            sqlx::query("DELETE FROM federation_replays WHERE expires_at < $1").bind(Ts(now)).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO federation_replays (provider, nonce, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (provider, nonce) DO NOTHING",
            )
            .bind(provider)
            .bind(nonce)
            .bind(Ts(expires_at))
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Deletes the claims of provider payloads that would be refused as stale anyway (run
    /// hourly with the other purges; a claim also clears them as it goes).
    pub async fn purge_federation_replays(&self, now: OffsetDateTime) -> Result<u64> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM federation_replays WHERE expires_at < $1")
                .bind(Ts(now))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// The identity `provider` knows as `subject`, with the account it is linked to.
    pub async fn identity_by_subject(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>> {
        let row: Option<Row> = with_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM user_identities WHERE provider = $1 AND subject = $2"))
                .bind(provider)
                .bind(subject)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(linked))
    }

    /// A user's linked identities, oldest first.
    pub async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>> {
        let rows: Vec<Row> = with_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM user_identities WHERE user_id = $1 ORDER BY created_at, id"))
                .bind(user.0)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(linked).collect())
    }

    /// A sign-in through an identity: its time, and the display data the provider sent now.
    pub async fn identity_used(&self, id: Uuid, identity: &ExternalIdentity, now: OffsetDateTime) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE user_identities SET last_used_at = $1, username = $2, display_name = $3 WHERE id = $4")
                .bind(Ts(now))
                .bind(identity.username.as_deref())
                .bind(identity.display_name.as_deref())
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Links `identity` to `user` and records `event`, unless it is linked already (to this
    /// account or another: then nothing is written).
    pub async fn link_identity(
        &self,
        user: UserId,
        identity: &ExternalIdentity,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<LinkOutcome> {
        let provider = identity.provider.as_str();
        if let Some(existing) = self.identity_by_subject(provider, &identity.subject).await? {
            return Ok(if existing.user_id == user {
                LinkOutcome::AlreadyLinked(existing)
            } else {
                LinkOutcome::LinkedElsewhere
            });
        }
        let id = Uuid::now_v7();
        let outcome = with_tx!(self, |tx| {
            let q = sqlx::query(INSERT)
                .bind(id)
                .bind(user.0)
                .bind(provider.to_string())
                .bind(identity.subject.clone())
                .bind(identity.username.clone())
                .bind(identity.display_name.clone())
                .bind(Ts(now));
            if tx.execute(q).await? == 0 {
                return Ok(Finish::Rollback(false));
            }
            tx.insert_event(event).await?;
            true
        });
        if !outcome {
            // A concurrent link of the same identity won.
            return Ok(match self.identity_by_subject(provider, &identity.subject).await? {
                Some(existing) if existing.user_id == user => LinkOutcome::AlreadyLinked(existing),
                _ => LinkOutcome::LinkedElsewhere,
            });
        }
        Ok(LinkOutcome::Linked(LinkedIdentity {
            id,
            user_id: user,
            provider: provider.to_string(),
            subject: identity.subject.clone(),
            username: identity.username.clone(),
            display_name: identity.display_name.clone(),
            created_at: now,
            last_used_at: None,
        }))
    }

    /// Creates an account from an external identity, linked to it, and records `event`, in one
    /// transaction. [`StoreError::EmailTaken`] when the address is taken, and
    /// [`StoreError::Conflict`] when the identity was linked meanwhile: nothing is left behind.
    pub async fn create_federated_user(
        &self,
        new: &NewFederatedUser,
        identity: &ExternalIdentity,
        event: &SecurityEvent,
    ) -> Result<User> {
        let role = RoleName::USER.to_string();
        with_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO users (id, email, name, password_hash, email_verified, created_at, updated_at, \
                 password_changed_at) VALUES ($1, $2, $3, NULL, $4, $5, $5, $5)",
            )
            .bind(new.id.0)
            .bind(new.email.as_str())
            .bind(new.name.as_deref())
            .bind(new.email_verified)
            .bind(Ts(new.created_at))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::EmailTaken),
                other => other?,
            };
            sqlx::query("INSERT INTO user_roles (user_id, role_name) VALUES ($1, $2)")
                .bind(new.id.0)
                .bind(&role)
                .execute(&mut *tx)
                .await?;
            let q = sqlx::query(INSERT)
                .bind(Uuid::now_v7())
                .bind(new.id.0)
                .bind(identity.provider.as_str().to_string())
                .bind(identity.subject.clone())
                .bind(identity.username.clone())
                .bind(identity.display_name.clone())
                .bind(Ts(new.created_at));
            if tx.execute(q).await? == 0 {
                return Err(StoreError::Conflict("identity linked already".into()));
            }
            tx.insert_event(event).await?;
        });
        Ok(User {
            id: new.id,
            email: new.email.clone(),
            name: new.name.clone(),
            roles: vec![RoleName::from_stored(role)],
            email_verified: new.email_verified,
            disabled: false,
            created_at: new.created_at,
            password_changed_at: new.created_at,
        })
    }

    /// Unlinks identity `id` from `user` and records `event`, unless it is the account's last
    /// way in (no password and no other identity). The account's row is locked first, so two
    /// concurrent unlinks of its last two identities cannot both succeed.
    pub async fn unlink_identity(&self, user: UserId, id: Uuid, event: &SecurityEvent) -> Result<UnlinkOutcome> {
        let outcome = with_tx!(self, |tx| {
            sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            let found: Option<(Uuid,)> =
                sqlx::query_as("SELECT id FROM user_identities WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Ok(Finish::Rollback(UnlinkOutcome::NotFound));
            }
            let (others, has_password): (i64, bool) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM user_identities WHERE user_id = $1 AND id <> $2), \
                 EXISTS (SELECT 1 FROM users WHERE id = $1 AND password_hash IS NOT NULL)",
            )
            .bind(user.0)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 && !has_password {
                return Ok(Finish::Rollback(UnlinkOutcome::LastWayIn));
            }
            sqlx::query("DELETE FROM user_identities WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            tx.insert_event(event).await?;
            UnlinkOutcome::Unlinked
        });
        Ok(outcome)
    }
}

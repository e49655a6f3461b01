//! API keys (hashed) and their hourly usage.

use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Result, Store, with_pool, with_tx};
use rampart_domain::{SecurityEvent, TokenHash, UserId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// A key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    #[sqlx(json)]
    pub scopes: Vec<String>,
    pub rate_limit_requests: Option<i64>,
    pub rate_limit_per_seconds: Option<i64>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub rotated_to: Option<Uuid>,
}

impl StoredApiKey {
    /// Not revoked and not expired at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// Requests counted for one key in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageCount {
    pub key_id: Uuid,
    /// The start of the hour.
    pub hour: OffsetDateTime,
    pub requests: i64,
    pub rejected: i64,
    pub last_used_at: OffsetDateTime,
}

pub(crate) const KEY_COLUMNS: &str = "id, user_id, name, prefix, scopes, rate_limit_requests, rate_limit_per_seconds, \
     created_at, expires_at, last_used_at, revoked_at, rotated_to";

macro_rules! insert_key {
    ($tx:expr, $k:expr, $hash:expr) => {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes, rate_limit_requests, \
             rate_limit_per_seconds, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind($k.id)
        .bind($k.user_id)
        .bind(&$k.name)
        .bind(&$k.prefix)
        .bind($hash.0.to_vec())
        .bind(Json(&$k.scopes))
        .bind($k.rate_limit_requests)
        .bind($k.rate_limit_per_seconds)
        .bind(Ts($k.created_at))
        .bind($k.expires_at.map(Ts))
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Stores a new key, unless its owner already has `max_live` live keys (Conflict).
    pub async fn create_api_key(
        &self,
        key: &StoredApiKey,
        hash: TokenHash,
        max_live: i64,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(key.user_id)
                .execute(&mut *tx)
                .await?;
            let (live,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(key.user_id)
            .bind(Ts(key.created_at))
            .fetch_one(&mut *tx)
            .await?;
            if live >= max_live {
                return Err(crate::StoreError::Conflict(format!("at most {max_live} live API keys per user")));
            }
            insert_key!(tx, key, hash);
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// A user's keys that are not revoked, newest first.
    pub async fn list_api_keys(&self, user: UserId) -> Result<Vec<StoredApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC"
        );
        let keys: Vec<StoredApiKey> = with_pool!(self, |pool| sqlx::query_as(&sql).bind(user.0).fetch_all(pool).await)?;
        Ok(keys)
    }

    pub async fn api_key(&self, user: UserId, id: Uuid) -> Result<Option<StoredApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 AND user_id = $2");
        let key: Option<StoredApiKey> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).bind(user.0).fetch_optional(pool).await)?;
        Ok(key)
    }

    /// The key with this hash, whatever its state (the caller checks liveness).
    pub async fn api_key_by_hash(&self, hash: TokenHash) -> Result<Option<StoredApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1");
        let key: Option<StoredApiKey> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(hash.0.to_vec()).fetch_optional(pool).await)?;
        Ok(key)
    }

    /// Revokes one of `user`'s keys (another user's id matches nothing) with `event`.
    pub async fn revoke_api_key(
        &self,
        user: UserId,
        id: Uuid,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.invalidates(Cache::ApiKeys);
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                )
                .bind(Ts(now))
                .bind(id)
                .bind(user.0),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Replaces one of `user`'s live keys with `new`: the old one keeps working until
    /// `old_until` (the grace period), then stops. A key already rotated or revoked is not
    /// rotated again (returns false).
    pub async fn rotate_api_key(
        &self,
        user: UserId,
        old: Uuid,
        new: &StoredApiKey,
        hash: TokenHash,
        old_until: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swapped(
                    sqlx::query(
                        "UPDATE api_keys SET rotated_to = $1, \
                         expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
                         WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL AND rotated_to IS NULL",
                    )
                    .bind(new.id)
                    .bind(Ts(old_until))
                    .bind(old)
                    .bind(user.0),
                )
                .await?;
            if !done {
                return Ok(Finish::Rollback(false));
            }
            insert_key!(tx, new, hash);
            tx.insert_event(event).await?;
            tx.invalidates(Cache::ApiKeys);
            true
        });
        Ok(done)
    }

    /// Adds a batch of usage counts (one upsert per key and hour) and moves `last_used_at`.
    pub async fn record_api_key_usage(&self, batch: &[UsageCount]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // A fixed order, so concurrent flushes (several instances) lock rows in the same order.
        let mut batch = batch.to_vec();
        batch.sort_by_key(|u| (u.key_id, u.hour));
        with_tx!(self, |tx| {
            for u in &batch {
                // Counts of a key deleted meanwhile (its user erased) are dropped, not an error
                // that would block every later flush.
                sqlx::query(
                    "INSERT INTO api_key_usage (key_id, hour, requests, rejected) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $1) \
                     ON CONFLICT (key_id, hour) DO UPDATE SET requests = api_key_usage.requests + excluded.requests, \
                     rejected = api_key_usage.rejected + excluded.rejected",
                )
                .bind(u.key_id)
                .bind(Ts(u.hour))
                .bind(u.requests)
                .bind(u.rejected)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                )
                .bind(Ts(u.last_used_at))
                .bind(u.key_id)
                .execute(&mut *tx)
                .await?;
            }
        });
        Ok(())
    }

    /// Hourly counts of one key in `[since, until)`, oldest first.
    pub async fn api_key_usage(
        &self,
        key: Uuid,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, i64, i64)>> {
        let rows: Vec<(OffsetDateTime, i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT hour, requests, rejected FROM api_key_usage WHERE key_id = $1 AND hour >= $2 AND hour < $3 \
                 ORDER BY hour",
            )
            .bind(key)
            .bind(Ts(since))
            .bind(Ts(until))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// The permissions a user's roles grant now (what a key of theirs can at most do).
    pub async fn user_permissions(&self, user: UserId) -> Result<Vec<String>> {
        let rows: Vec<(Json<Vec<String>>,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT r.permissions FROM roles r JOIN user_roles ur ON ur.role_name = r.name \
                 JOIN users u ON u.id = ur.user_id WHERE ur.user_id = $1 AND NOT u.disabled",
            )
            .bind(user.0)
            .fetch_all(pool)
            .await
        })?;
        let mut perms: Vec<String> = rows.into_iter().flat_map(|(p,)| p.0).collect();
        perms.sort();
        perms.dedup();
        Ok(perms)
    }
}

impl Store {
    /// Any key by id (for the CLI, which acts for every owner).
    pub async fn api_key_by_id(&self, id: Uuid) -> Result<Option<StoredApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let key: Option<StoredApiKey> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(key)
    }
}

impl Store {
    /// Revokes every live key of `user`, with `event`; returns their ids.
    pub async fn revoke_all_api_keys(
        &self,
        user: UserId,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<Vec<Uuid>> {
        let ids = with_tx!(self, |tx| {
            let rows: Vec<(Uuid,)> = sqlx::query_as(
                "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .bind(Ts(now))
            .bind(user.0)
            .fetch_all(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
            tx.invalidates(Cache::ApiKeys);
            rows.into_iter().map(|(id,)| id).collect::<Vec<_>>()
        });
        Ok(ids)
    }

    /// Deletes hourly usage older than `before`.
    pub async fn purge_api_key_usage(&self, before: OffsetDateTime) -> Result<u64> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM api_key_usage WHERE hour < $1")
                .bind(Ts(before))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }
}

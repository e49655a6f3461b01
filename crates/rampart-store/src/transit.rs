//! Transit keys and their versions (migration 0020). Materials are sealed by the caller.

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use time::OffsetDateTime;
use uuid::Uuid;

/// A key's settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredTransitKey {
    pub name: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub derived: bool,
    pub deletion_allowed: bool,
    pub min_decryption_version: i32,
    pub latest_version: i32,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One version's sealed material.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransitVersion {
    pub version: i32,
    pub material: String,
    pub created_at: OffsetDateTime,
}

const KEY_COLUMNS: &str =
    "name, type, derived, deletion_allowed, min_decryption_version, latest_version, created_by, created_at, updated_at";

impl Store {
    pub async fn transit_key(&self, name: &str) -> Result<Option<StoredTransitKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM transit_keys WHERE name = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql).bind(name).fetch_optional(pool).await)?)
    }

    /// Every version of a key, oldest first.
    pub async fn transit_versions(&self, name: &str) -> Result<Vec<TransitVersion>> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT version, material, created_at FROM transit_key_versions WHERE name = $1 ORDER BY version"
        )
        .bind(name)
        .fetch_all(pool)
        .await)?)
    }

    /// One version of a key.
    pub async fn transit_version(&self, name: &str, version: i32) -> Result<Option<TransitVersion>> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT version, material, created_at FROM transit_key_versions WHERE name = $1 AND version = $2"
        )
        .bind(name)
        .bind(version)
        .fetch_optional(pool)
        .await)?)
    }

    /// Creates a key with its first version. A name taken: `Conflict`.
    pub async fn create_transit_key(&self, k: &StoredTransitKey, material: &str, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            tx.invalidates(crate::tx::Cache::Transit);
            let done = sqlx::query(
                "INSERT INTO transit_keys (name, type, derived, deletion_allowed, min_decryption_version, \
                 latest_version, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(&k.name)
            .bind(&k.kind)
            .bind(k.derived)
            .bind(k.deletion_allowed)
            .bind(k.min_decryption_version)
            .bind(k.latest_version)
            .bind(k.created_by)
            .bind(Ts(k.created_at))
            .execute(&mut *tx)
            .await;
            match done {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(format!("key {:?} exists", k.name)));
                }
                other => other?,
            };
            sqlx::query(
                "INSERT INTO transit_key_versions (name, version, material, created_at) VALUES ($1, 1, $2, $3)",
            )
            .bind(&k.name)
            .bind(material)
            .bind(Ts(k.created_at))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Adds version `latest + 1` with `material` (sealed for that version by `seal`); the new
    /// version number, `None` when there is no such key. Concurrent rotations each get their
    /// own version (the key row is locked by the update).
    pub async fn rotate_transit_key(
        &self,
        name: &str,
        seal: impl Fn(i32) -> String + Send + Sync,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<Option<i32>> {
        let version = with_tx!(self, |tx| {
            tx.invalidates(crate::tx::Cache::Transit);
            let row: Option<(i32,)> = sqlx::query_as(
                "UPDATE transit_keys SET latest_version = latest_version + 1, updated_at = $1 WHERE name = $2 \
                 RETURNING latest_version",
            )
            .bind(Ts(now))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((version,)) = row else { return Ok(crate::tx::Finish::Rollback(None)) };
            sqlx::query(
                "INSERT INTO transit_key_versions (name, version, material, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(name)
            .bind(version)
            .bind(seal(version))
            .bind(Ts(now))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
            Some(version)
        });
        Ok(version)
    }

    /// Changes `min_decryption_version` and `deletion_allowed` (`None`: unchanged); false when
    /// there is no such key.
    pub async fn configure_transit_key(
        &self,
        name: &str,
        min_decryption_version: Option<i32>,
        deletion_allowed: Option<bool>,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.invalidates(crate::tx::Cache::Transit);
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE transit_keys SET min_decryption_version = COALESCE($1, min_decryption_version), \
                     deletion_allowed = COALESCE($2, deletion_allowed), updated_at = $3 WHERE name = $4",
                )
                .bind(min_decryption_version)
                .bind(deletion_allowed)
                .bind(Ts(now))
                .bind(name),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Deletes a key whose `deletion_allowed` is set, with every version. `Ok(None)`: no such
    /// key; `Ok(Some(false))`: deletion is not allowed.
    pub async fn delete_transit_key(&self, name: &str, event: &SecurityEvent) -> Result<Option<bool>> {
        let done = with_tx!(self, |tx| {
            tx.invalidates(crate::tx::Cache::Transit);
            let row: Option<(bool,)> = sqlx::query_as("SELECT deletion_allowed FROM transit_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                None => return Ok(crate::tx::Finish::Rollback(None)),
                Some((false,)) => return Ok(crate::tx::Finish::Rollback(Some(false))),
                Some((true,)) => {}
            }
            sqlx::query("DELETE FROM transit_keys WHERE name = $1").bind(name).execute(&mut *tx).await?;
            tx.insert_event(event).await?;
            Some(true)
        });
        Ok(done)
    }
}

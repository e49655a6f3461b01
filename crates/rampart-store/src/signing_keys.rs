//! The `signing_keys` table: access-token signing keys, private halves sealed.

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::tx::Cache;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use time::OffsetDateTime;

/// A signing key as stored. `private_sealed` is opaque here: only the server holds the
/// master key that opens it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: String,
    pub private_sealed: String,
    #[sqlx(json)]
    pub public_jwk: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

impl Store {
    /// Every key retired after `since` or not retired, newest first.
    pub async fn signing_keys(&self, since: OffsetDateTime) -> Result<Vec<StoredSigningKey>> {
        let keys: Vec<StoredSigningKey> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT kid, alg, private_sealed, public_jwk, created_at, retired_at FROM signing_keys \
                 WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC",
            )
            .bind(Ts(since))
            .fetch_all(pool)
            .await
        })?;
        Ok(keys)
    }

    /// Makes `new` the current key, retiring `replacing` at `new.created_at`, with `event`, in
    /// one transaction. `replacing` is the key the caller believes current (`None`: none yet);
    /// if another instance rotated first, nothing changes and this answers
    /// [`StoreError::Conflict`], so concurrent rotations cannot leave two current keys.
    pub async fn rotate_signing_key(
        &self,
        new: &StoredSigningKey,
        replacing: Option<&str>,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            tx.invalidates(Cache::SigningKeys);
            let retired = match replacing {
                Some(kid) => {
                    tx.swapped(
                        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL")
                            .bind(Ts(new.created_at))
                            .bind(kid),
                    )
                    .await?
                }
                None => false,
            };
            let (current,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL")
                .fetch_one(&mut *tx)
                .await?;
            if current != 0 || (replacing.is_some() && !retired) {
                return Err(StoreError::Conflict("another signing key became current first".into()));
            }
            let inserted = sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.kid)
            .bind(&new.alg)
            .bind(&new.private_sealed)
            .bind(sqlx::types::Json(&new.public_jwk))
            .bind(Ts(new.created_at))
            .execute(&mut *tx)
            .await;
            match inserted {
                // Two first starts racing: the one-current index lets only one win.
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict("another signing key became current first".into()));
                }
                other => other?,
            };
            tx.insert_event(event).await?;
        });
        Ok(())
    }
}

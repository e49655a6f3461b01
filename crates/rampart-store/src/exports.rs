//! Bulk exports under four-eyes control (migration 0022): the request with its frozen filter
//! and row count, the second administrator's approval, and the one download. Each change is a
//! conditional update that commits with its event, so two approvals, or fifty downloads at
//! once, change the row once.

use crate::ts::Ts;
use crate::{Result, Store, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use time::OffsetDateTime;
use uuid::Uuid;

/// An export as stored. `status` is the stored one (`pending_approval`, `ready`,
/// `downloaded`); whether it expired is read from `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredExport {
    pub id: Uuid,
    pub kind: String,
    pub format: String,
    /// The filter as JSON text (its shape is the kind's).
    pub filter: String,
    /// Audit exports: the newest event when the rows were counted.
    pub through_seq: Option<i64>,
    /// When the rows were counted (users exports: those created by then).
    pub as_of: OffsetDateTime,
    pub rows: i64,
    pub status: String,
    pub requested_by: Uuid,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<OffsetDateTime>,
    pub downloaded_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, kind, format, filter, through_seq, as_of, rows, status, requested_by, approved_by, \
                       approved_at, downloaded_at, created_at, expires_at";

impl Store {
    /// Records a new export with `event`.
    pub async fn create_export(&self, e: &StoredExport, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO exports (id, kind, format, filter, through_seq, as_of, rows, status, requested_by, \
                 approved_by, approved_at, downloaded_at, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, $10, $11)",
            )
            .bind(e.id)
            .bind(&e.kind)
            .bind(&e.format)
            .bind(&e.filter)
            .bind(e.through_seq)
            .bind(Ts(e.as_of))
            .bind(e.rows)
            .bind(&e.status)
            .bind(e.requested_by)
            .bind(Ts(e.created_at))
            .bind(Ts(e.expires_at))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    pub async fn export(&self, id: Uuid) -> Result<Option<StoredExport>> {
        let sql = format!("SELECT {COLUMNS} FROM exports WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Exports newest first, at most `limit`; only those stored as `status` when given.
    pub async fn list_exports(&self, status: Option<&str>, limit: u32) -> Result<Vec<StoredExport>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM exports WHERE ($1 IS NULL OR status = $1) ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql).bind(status).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// `pending_approval` → `ready`, by `approver` (never the requester), while it has not
    /// expired; the download window then runs to `expires_at`. False when the export was not
    /// in that state (another approval won, it expired, or it is not there): nothing changed.
    pub async fn approve_export(
        &self,
        id: Uuid,
        approver: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE exports SET status = 'ready', approved_by = $1, approved_at = $2, expires_at = $3 \
                     WHERE id = $4 AND status = 'pending_approval' AND requested_by <> $1 AND expires_at > $2",
                )
                .bind(approver)
                .bind(Ts(now))
                .bind(Ts(expires_at))
                .bind(id),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// `ready` → `downloaded`, for its requester, while it has not expired: the one download.
    /// False when another download (or the clock) came first: nothing changed.
    pub async fn claim_export_download(
        &self,
        id: Uuid,
        requester: Uuid,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE exports SET status = 'downloaded', downloaded_at = $1 \
                     WHERE id = $2 AND status = 'ready' AND requested_by = $3 AND expires_at > $1",
                )
                .bind(Ts(now))
                .bind(id)
                .bind(requester),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Deletes the records of exports downloaded, or expired, before `cutoff` (the retention
    /// purge); their events stay in the audit log. The number deleted.
    pub async fn purge_exports(&self, cutoff: OffsetDateTime) -> Result<u64> {
        let done = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM exports WHERE (downloaded_at IS NOT NULL AND downloaded_at < $1) OR expires_at < $1"
        )
        .bind(Ts(cutoff))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

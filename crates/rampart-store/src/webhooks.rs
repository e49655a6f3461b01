//! Webhook endpoints, the outbox of their deliveries and the delivery log (migration 0018).
//!
//! The outbox rows are written by [`Tx::insert_event`](crate::tx::Tx) with every event
//! ([`FAN_OUT`]), so an event and its deliveries commit or roll back together. Workers take due
//! rows with [`Store::claim_webhook_messages`] (`outbox.rs`: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the one query whose text differs by backend).

use crate::audit::{CHAIN_COLUMNS, ChainRow};
use crate::ts::Ts;
use crate::{Result, Store, StoreError, StoredEvent, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use rampart_domain::webhook::EventFilter;
use time::OffsetDateTime;
use uuid::Uuid;

/// Queues an event's deliveries: `$1` the event id, `$2` its time, `$3` its action.
pub(crate) const FAN_OUT: &str = "INSERT INTO webhook_messages (event_id, endpoint_id, state, attempts, \
     next_attempt_at, created_at) \
     SELECT DISTINCT $1, e.id, 'pending', 0, $2, $2 FROM webhook_endpoints e \
     JOIN webhook_filters f ON f.endpoint_id = e.id \
     WHERE e.enabled AND ((f.kind = 'exact' AND f.pattern = $3) \
     OR (f.kind = 'prefix' AND substr(CAST($3 AS TEXT), 1, length(f.pattern)) = f.pattern))";

/// An endpoint as stored; its secrets are sealed (the caller opens them with the master key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub enabled: bool,
    pub filters: Vec<EventFilter>,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_until: Option<OffsetDateTime>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub failing_since: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    /// `standard` (Standard Webhooks) or `slack` (a Slack-compatible `{"text"}` body).
    pub format: String,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    description: String,
    enabled: bool,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<OffsetDateTime>,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    failing_since: Option<OffsetDateTime>,
    disabled_reason: Option<String>,
    format: String,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, enabled, secret, previous_secret, previous_until, created_by, \
                                created_at, updated_at, failing_since, disabled_reason, format";

/// What a change of an endpoint sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub filters: Option<Vec<EventFilter>>,
    pub format: Option<String>,
}

/// A delivery a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// One attempt of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookAttempt {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub attempt: i32,
    pub at: OffsetDateTime,
    /// `delivered` or `failed`.
    pub status: String,
    pub http_status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the receiver's answer (at most the worker's cap).
    pub response: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// What becomes of a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at this time.
    RetryAt(OffsetDateTime),
    /// Failed for good (the schedule is spent, or the event is gone).
    GaveUp,
}

impl Store {
    async fn filters_of(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, EventFilter)>> {
        let mut out = Vec::new();
        for id in ids {
            let rows: Vec<(String, String)> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT kind, pattern FROM webhook_filters WHERE endpoint_id = $1 ORDER BY kind, pattern",
                )
                .bind(*id)
                .fetch_all(pool)
                .await
            })?;
            for (kind, pattern) in rows {
                let f = EventFilter::from_stored(&kind, &pattern)
                    .ok_or_else(|| StoreError::Corrupt(format!("webhook_filters {id}: bad kind {kind}")))?;
                out.push((*id, f));
            }
        }
        Ok(out)
    }

    fn assemble(rows: Vec<EndpointRow>, mut filters: Vec<(Uuid, EventFilter)>) -> Vec<StoredWebhook> {
        rows.into_iter()
            .map(|r| {
                let mine: Vec<EventFilter> =
                    filters.iter().filter(|(id, _)| *id == r.id).map(|(_, f)| f.clone()).collect();
                filters.retain(|(id, _)| *id != r.id);
                StoredWebhook {
                    id: r.id,
                    url: r.url,
                    description: r.description,
                    enabled: r.enabled,
                    filters: mine,
                    secret_sealed: r.secret,
                    previous_secret_sealed: r.previous_secret,
                    previous_until: r.previous_until,
                    created_by: r.created_by,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    failing_since: r.failing_since,
                    disabled_reason: r.disabled_reason,
                    format: r.format,
                }
            })
            .collect()
    }

    /// Every endpoint, oldest first.
    pub async fn list_webhooks(&self) -> Result<Vec<StoredWebhook>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id");
        let rows: Vec<EndpointRow> = with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        let filters = self.filters_of(&rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
        Ok(Self::assemble(rows, filters))
    }

    pub async fn get_webhook(&self, id: Uuid) -> Result<Option<StoredWebhook>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: Option<EndpointRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let filters = self.filters_of(&[id]).await?;
        Ok(Self::assemble(vec![row], filters).pop())
    }

    /// Stores a new endpoint with its filters and `event`.
    pub async fn create_webhook(&self, w: &StoredWebhook, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, description, enabled, secret, previous_secret, previous_until, \
                 created_by, created_at, updated_at, format) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $7, $8)",
            )
            .bind(w.id)
            .bind(&w.url)
            .bind(&w.description)
            .bind(w.enabled)
            .bind(&w.secret_sealed)
            .bind(w.created_by)
            .bind(Ts(w.created_at))
            .bind(&w.format)
            .execute(&mut *tx)
            .await?;
            for f in &w.filters {
                let (kind, pattern) = f.stored();
                sqlx::query("INSERT INTO webhook_filters (endpoint_id, kind, pattern) VALUES ($1, $2, $3)")
                    .bind(w.id)
                    .bind(kind)
                    .bind(pattern.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Applies `change` to an endpoint with `event`; false when there is no such endpoint.
    /// Enabling an endpoint ends its failure streak.
    pub async fn update_webhook(
        &self,
        id: Uuid,
        change: &WebhookChange,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            if !tx
                .swapped(
                    sqlx::query("UPDATE webhook_endpoints SET updated_at = $1 WHERE id = $2").bind(Ts(now)).bind(id),
                )
                .await?
            {
                return Ok(crate::tx::Finish::Rollback(false));
            }
            if let Some(url) = &change.url {
                sqlx::query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
                    .bind(url)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(f) = &change.format {
                sqlx::query("UPDATE webhook_endpoints SET format = $1 WHERE id = $2")
                    .bind(f)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(d) = &change.description {
                sqlx::query("UPDATE webhook_endpoints SET description = $1 WHERE id = $2")
                    .bind(d)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(enabled) = change.enabled {
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = $1, failing_since = NULL, disabled_reason = NULL \
                     WHERE id = $2",
                )
                .bind(enabled)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(filters) = &change.filters {
                sqlx::query("DELETE FROM webhook_filters WHERE endpoint_id = $1").bind(id).execute(&mut *tx).await?;
                for f in filters {
                    let (kind, pattern) = f.stored();
                    sqlx::query("INSERT INTO webhook_filters (endpoint_id, kind, pattern) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(kind)
                        .bind(pattern.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Removes an endpoint with `event`; its filters, pending deliveries and log go with it (the
    /// foreign keys cascade, on SQLite too: the pool turns `foreign_keys` on).
    pub async fn delete_webhook(&self, id: Uuid, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id), event).await?
        });
        Ok(done)
    }

    /// Replaces the secret; the old one keeps signing until `previous_until` (`None`: not at all).
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        new_sealed: &str,
        previous_until: Option<OffsetDateTime>,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE webhook_endpoints SET previous_secret = CASE WHEN $1 IS NULL THEN NULL ELSE secret END, \
                     previous_until = $1, secret = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(previous_until.map(Ts))
                .bind(new_sealed.to_string())
                .bind(Ts(now))
                .bind(id),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Records `event` (a `webhook.test`) and queues it for `endpoint` alone.
    pub async fn queue_webhook_test(&self, endpoint: Uuid, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM webhook_endpoints WHERE id = $1")
                .bind(endpoint)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(crate::tx::Finish::Rollback(false));
            }
            sqlx::query(
                "INSERT INTO webhook_messages (event_id, endpoint_id, state, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, 'pending', 0, $3, $3)",
            )
            .bind(event.id)
            .bind(endpoint)
            .bind(Ts(event.ts))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Takes up to `limit` deliveries due at `now` that no live claim holds, and holds them
    /// until `hold_until` (a worker that dies leaves them to be claimed again then).
    pub async fn claim_webhook_messages(
        &self,
        now: OffsetDateTime,
        hold_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>> {
        const DUE: &str = "SELECT event_id, endpoint_id FROM webhook_messages WHERE state = 'pending' \
                           AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
                           ORDER BY next_attempt_at LIMIT $3";
        // The outer conditions repeat the inner ones: on PostgreSQL a row another claimer
        // changed meanwhile is re-checked against them, not taken twice.
        let claim = |due: &str| {
            format!(
                "UPDATE webhook_messages SET claimed_until = $2 WHERE (event_id, endpoint_id) IN ({due}) \
                 AND state = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1) \
                 RETURNING event_id, endpoint_id, attempts"
            )
        };
        let rows: Vec<(Uuid, Uuid, i32)> = self.claim_due(DUE, claim, now, hold_until, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(event_id, endpoint_id, attempts)| ClaimedMessage {
                event_id,
                endpoint_id,
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
            .collect())
    }

    /// The audit event a delivery carries (`None`: purged since).
    pub async fn event_by_id(&self, id: Uuid) -> Result<Option<StoredEvent>> {
        let sql = format!("SELECT {CHAIN_COLUMNS} FROM audit_events WHERE id = $1");
        let row: Option<ChainRow> = with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.reveal(vec![StoredEvent::try_from(row)?]).await?.pop())
    }

    /// Logs an attempt and moves its message on: delivered, due again, or given up. A success
    /// ends the endpoint's failure streak; a failure starts one if none is running. With
    /// `disable` (the streak has lasted too long) the endpoint is disabled too, with that event.
    pub async fn record_webhook_attempt(
        &self,
        a: &WebhookAttempt,
        outcome: AttemptOutcome,
        disable: Option<(&str, &SecurityEvent)>,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO webhook_attempts (id, event_id, endpoint_id, attempt, at, status, http_status, latency_ms, \
                 error, response, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(a.id)
            .bind(a.event_id)
            .bind(a.endpoint_id)
            .bind(a.attempt)
            .bind(Ts(a.at))
            .bind(&a.status)
            .bind(a.http_status)
            .bind(a.latency_ms)
            .bind(&a.error)
            .bind(&a.response)
            .bind(a.next_attempt_at.map(Ts))
            .execute(&mut *tx)
            .await?;
            let (state, next) = match outcome {
                AttemptOutcome::Delivered => ("delivered", a.at),
                AttemptOutcome::RetryAt(t) => ("pending", t),
                AttemptOutcome::GaveUp => ("failed", a.at),
            };
            sqlx::query(
                "UPDATE webhook_messages SET state = $1, attempts = $2, next_attempt_at = $3, claimed_until = NULL \
                 WHERE event_id = $4 AND endpoint_id = $5",
            )
            .bind(state)
            .bind(a.attempt)
            .bind(Ts(next))
            .bind(a.event_id)
            .bind(a.endpoint_id)
            .execute(&mut *tx)
            .await?;
            if outcome == AttemptOutcome::Delivered {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
                    .bind(a.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL")
                    .bind(Ts(a.at))
                    .bind(a.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((reason, event)) = disable {
                tx.swap_and_record(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2 WHERE id = $3 AND enabled",
                    )
                    .bind(false)
                    .bind(reason.to_string())
                    .bind(a.endpoint_id),
                    event,
                )
                .await?;
            }
        });
        Ok(())
    }

    /// The delivery log of an endpoint, newest first, optionally only `delivered` or `failed`
    /// attempts, older than the attempt `before` (a cursor), at most `limit`.
    pub async fn list_webhook_attempts(
        &self,
        endpoint: Uuid,
        status: Option<&str>,
        before: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<WebhookAttempt>> {
        let (before_at, before_id) = match before {
            Some((t, id)) => (Some(Ts(t)), Some(id)),
            None => (None, None),
        };
        let rows: Vec<WebhookAttempt> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, event_id, endpoint_id, attempt, at, status, http_status, latency_ms, error, response, \
                 next_attempt_at FROM webhook_attempts WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2) \
                 AND ($3 IS NULL OR at < $3 OR (at = $3 AND id < $4)) ORDER BY at DESC, id DESC LIMIT $5",
            )
            .bind(endpoint)
            .bind(status.map(str::to_string))
            .bind(before_at)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    pub async fn get_webhook_attempt(&self, id: Uuid) -> Result<Option<WebhookAttempt>> {
        let row: Option<WebhookAttempt> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, event_id, endpoint_id, attempt, at, status, http_status, latency_ms, error, response, \
                 next_attempt_at FROM webhook_attempts WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// Queues the message of an attempt again, due at `now` (its attempt count goes on), with
    /// `event`; false when the message is gone (its endpoint removed).
    pub async fn redeliver_webhook(
        &self,
        event_id: Uuid,
        endpoint: Uuid,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(
                sqlx::query(
                    "UPDATE webhook_messages SET state = 'pending', next_attempt_at = $1, claimed_until = NULL \
                     WHERE event_id = $2 AND endpoint_id = $3",
                )
                .bind(Ts(now))
                .bind(event_id)
                .bind(endpoint),
                event,
            )
            .await?
        });
        Ok(done)
    }

    /// Counts of messages by state (`pending`, `delivered`, `failed`), for metrics and tests.
    pub async fn webhook_message_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT state, COUNT(*) FROM webhook_messages GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }
}

impl Store {
    /// Deletes delivery-log rows older than `before`, and deliveries made or given up on that
    /// were queued before it; pending ones stay whatever their age. Rows deleted in all.
    pub async fn purge_webhook_deliveries(&self, before: OffsetDateTime) -> Result<u64> {
        let n = with_tx!(self, |tx| {
            let attempts =
                sqlx::query("DELETE FROM webhook_attempts WHERE at < $1").bind(Ts(before)).execute(&mut *tx).await?;
            let messages = sqlx::query("DELETE FROM webhook_messages WHERE state <> 'pending' AND created_at < $1")
                .bind(Ts(before))
                .execute(&mut *tx)
                .await?;
            attempts.rows_affected() + messages.rows_affected()
        });
        Ok(n)
    }
}

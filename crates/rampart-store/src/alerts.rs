//! Alert rules, firing them once per cooldown, and the evaluator's read of the audit log
//! (migration 0019).

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use time::OffsetDateTime;
use uuid::Uuid;

/// A rule as stored. `channels` is the JSON list of channels; `action` the filter's text.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAlertRule {
    pub id: Uuid,
    pub name: String,
    pub action: String,
    pub outcome: Option<String>,
    pub severity: Option<String>,
    pub count: i32,
    pub window_secs: i32,
    pub cooldown_secs: i32,
    pub channels: String,
    pub enabled: bool,
    pub builtin: bool,
    pub last_fired_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, action, outcome, severity, count, window_secs, cooldown_secs, channels, enabled, \
                       builtin, last_fired_at, created_at, updated_at";

/// What an alert sends when it fires, besides its event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSends {
    /// Webhook endpoints to deliver the `alert.fired` event to.
    pub endpoints: Vec<Uuid>,
    /// Mail outbox rows: (id, sealed message).
    pub mails: Vec<(Uuid, String)>,
}

/// One audit row as the evaluator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead {
    pub seq: i64,
    pub ts: OffsetDateTime,
    pub action: String,
    pub outcome: String,
    pub severity: String,
    /// How many occurrences it stands for (an aggregated summary's count).
    pub weight: u64,
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    seq: i64,
    ts: OffsetDateTime,
    action: String,
    outcome: String,
    severity: String,
    details: sqlx::types::Json<serde_json::Value>,
}

impl Store {
    pub async fn list_alert_rules(&self) -> Result<Vec<StoredAlertRule>> {
        let sql = format!("SELECT {COLUMNS} FROM alert_rules ORDER BY builtin DESC, name");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?)
    }

    pub async fn get_alert_rule(&self, id: Uuid) -> Result<Option<StoredAlertRule>> {
        let sql = format!("SELECT {COLUMNS} FROM alert_rules WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Adds a rule. A name already taken: `Conflict`.
    pub async fn create_alert_rule(&self, r: &StoredAlertRule, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            let done = sqlx::query(
                "INSERT INTO alert_rules (id, name, action, outcome, severity, count, window_secs, cooldown_secs, \
                 channels, enabled, builtin, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(r.id)
            .bind(&r.name)
            .bind(&r.action)
            .bind(&r.outcome)
            .bind(&r.severity)
            .bind(r.count)
            .bind(r.window_secs)
            .bind(r.cooldown_secs)
            .bind(&r.channels)
            .bind(r.enabled)
            .bind(r.builtin)
            .bind(Ts(r.created_at))
            .bind(Ts(r.updated_at))
            .execute(&mut *tx)
            .await;
            match done {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(format!("an alert rule named {:?} exists", r.name)));
                }
                other => other?,
            };
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Replaces a rule's definition (not its id, `builtin` or `last_fired_at`). `false`: no such
    /// rule. A name already taken: `Conflict`.
    pub async fn update_alert_rule(&self, r: &StoredAlertRule, event: &SecurityEvent) -> Result<bool> {
        let found = with_tx!(self, |tx| {
            let done = sqlx::query(
                "UPDATE alert_rules SET name = $1, action = $2, outcome = $3, severity = $4, count = $5, \
                 window_secs = $6, cooldown_secs = $7, channels = $8, enabled = $9, updated_at = $10 WHERE id = $11",
            )
            .bind(&r.name)
            .bind(&r.action)
            .bind(&r.outcome)
            .bind(&r.severity)
            .bind(r.count)
            .bind(r.window_secs)
            .bind(r.cooldown_secs)
            .bind(&r.channels)
            .bind(r.enabled)
            .bind(Ts(r.updated_at))
            .bind(r.id)
            .execute(&mut *tx)
            .await;
            let done = match done {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(format!("an alert rule named {:?} exists", r.name)));
                }
                other => other?,
            };
            if done.rows_affected() == 0 {
                return Ok(crate::tx::Finish::Rollback(false));
            }
            tx.insert_event(event).await?;
            true
        });
        Ok(found)
    }

    /// Removes a custom rule. A built-in one: `Conflict` (disable it instead). `false`: none.
    pub async fn delete_alert_rule(&self, id: Uuid, event: &SecurityEvent) -> Result<bool> {
        let found = with_tx!(self, |tx| {
            let row: Option<(bool,)> = sqlx::query_as("SELECT builtin FROM alert_rules WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                None => return Ok(crate::tx::Finish::Rollback(false)),
                Some((true,)) => {
                    return Err(StoreError::Conflict("a built-in rule cannot be removed; disable it".into()));
                }
                Some((false,)) => {}
            }
            sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.insert_event(event).await?;
            true
        });
        Ok(found)
    }

    /// Fires a rule unless it fired after `cooled` (its cooldown is not over): records `event`,
    /// queues its deliveries to `sends.endpoints` (enabled ones; the event's own fan-out may
    /// have queued some already) and its e-mails, all in one transaction. `false`: still
    /// cooling down (another instance may just have fired it), nothing written.
    pub async fn fire_alert(
        &self,
        id: Uuid,
        cooled: OffsetDateTime,
        event: &SecurityEvent,
        sends: &AlertSends,
    ) -> Result<bool> {
        let fired = with_tx!(self, |tx| {
            let done = sqlx::query(
                "UPDATE alert_rules SET last_fired_at = $1 WHERE id = $2 AND enabled \
                 AND (last_fired_at IS NULL OR last_fired_at <= $3)",
            )
            .bind(Ts(event.ts))
            .bind(id)
            .bind(Ts(cooled))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(crate::tx::Finish::Rollback(false));
            }
            tx.insert_event(event).await?;
            for endpoint in &sends.endpoints {
                sqlx::query(
                    "INSERT INTO webhook_messages (event_id, endpoint_id, state, attempts, next_attempt_at, created_at) \
                     SELECT $1, id, 'pending', 0, $2, $2 FROM webhook_endpoints WHERE id = $3 AND enabled \
                     ON CONFLICT (event_id, endpoint_id) DO NOTHING",
                )
                .bind(event.id)
                .bind(Ts(event.ts))
                .bind(endpoint)
                .execute(&mut *tx)
                .await?;
            }
            for (mail_id, sealed) in &sends.mails {
                sqlx::query(
                    "INSERT INTO mail_outbox (id, kind, user_id, event_id, sealed, state, attempts, next_attempt_at, \
                     created_at) VALUES ($1, $2, NULL, $3, $4, 'pending', 0, $5, $5)",
                )
                .bind(mail_id)
                .bind(crate::MESSAGE_KIND)
                .bind(event.id)
                .bind(sealed)
                .bind(Ts(event.ts))
                .execute(&mut *tx)
                .await?;
            }
            true
        });
        Ok(fired)
    }

    /// The first event at or after `since` (`None`: none yet), where the evaluator starts.
    pub async fn first_seq_since(&self, since: OffsetDateTime) -> Result<Option<i64>> {
        let row: (Option<i64>,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT min(seq) FROM audit_events WHERE ts >= $1")
                .bind(Ts(since))
                .fetch_one(pool)
                .await)?;
        Ok(row.0)
    }

    /// The newest event's position (0 for an empty log).
    pub async fn last_seq(&self) -> Result<i64> {
        let row: (Option<i64>,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT max(seq) FROM audit_events").fetch_one(pool).await)?;
        Ok(row.0.unwrap_or(0))
    }

    /// Events from position `from` on (inclusive), in log order, at most `limit`. Events are
    /// appended under the chain head's lock, so positions are committed in order and a reader
    /// moving forward misses none.
    pub async fn event_heads_from(&self, from: i64, limit: u32) -> Result<Vec<EventHead>> {
        let rows: Vec<HeadRow> = with_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT seq, ts, action, outcome, severity, details FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2"
        )
        .bind(from)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| EventHead {
                seq: r.seq,
                ts: r.ts,
                action: r.action,
                outcome: r.outcome,
                severity: r.severity,
                weight: rampart_domain::alert::weight(&r.details.0),
            })
            .collect())
    }
}

//! The `audit_events` table: writing security events and reading them back.

use crate::{Result, Store, StoreError, with_pool};
use rampart_domain::{Action, Actor, Outcome, Resource, SecurityEvent, Severity};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// An event as stored, with its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: SecurityEvent,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    id: Uuid,
    ts: OffsetDateTime,
    action: String,
    outcome: String,
    severity: String,
    actor_type: String,
    actor_id: Option<Uuid>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: Json<serde_json::Value>,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self> {
        let bad = |what: &str, v: &str| StoreError::Corrupt(format!("audit event {}: unknown {what} {v:?}", r.seq));
        let action = Action::parse(&r.action).ok_or_else(|| bad("action", &r.action))?;
        let outcome = Outcome::parse(&r.outcome).ok_or_else(|| bad("outcome", &r.outcome))?;
        let severity = Severity::parse(&r.severity).ok_or_else(|| bad("severity", &r.severity))?;
        let actor = Actor::from_parts(&r.actor_type, r.actor_id).ok_or_else(|| bad("actor", &r.actor_type))?;
        let ip = match &r.ip {
            Some(ip) => Some(ip.parse().map_err(|_| bad("ip", ip))?),
            None => None,
        };
        let resource = r.resource_type.map(|kind| Resource { kind, id: r.resource_id });
        let event = SecurityEvent {
            id: r.id,
            ts: r.ts,
            action,
            outcome,
            severity,
            actor,
            resource,
            ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            details: r.details.0,
        };
        Ok(StoredEvent { seq: r.seq, event })
    }
}

/// Inserts one event with whatever executor it is given (a pool or an open transaction).
/// Generic over the backend so that both arms of `with_pool!`/`with_tx!` share it.
pub(crate) async fn insert_event<'e, DB, E>(executor: E, e: &SecurityEvent) -> Result<()>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    Uuid: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    crate::ts::Ts: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Uuid>: for<'q> sqlx::Encode<'q, DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Json<&'q serde_json::Value>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO audit_events (id, ts, action, outcome, severity, actor_type, actor_id, \
         resource_type, resource_id, ip, user_agent, request_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(e.id)
    .bind(crate::ts::Ts(e.ts))
    .bind(e.action.as_str())
    .bind(e.outcome.as_str())
    .bind(e.severity.as_str())
    .bind(e.actor.kind())
    .bind(e.actor.id())
    .bind(e.resource.as_ref().map(|r| r.kind.clone()))
    .bind(e.resource.as_ref().and_then(|r| r.id.clone()))
    .bind(e.ip.map(|ip| ip.to_string()))
    .bind(e.user_agent.clone())
    .bind(e.request_id.clone())
    .bind(Json(&e.details))
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    /// The newest events first, at most `limit`.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, id, ts, action, outcome, severity, actor_type, actor_id, resource_type, \
                 resource_id, ip, user_agent, request_id, details FROM audit_events ORDER BY seq DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    pub async fn count_events(&self) -> Result<i64> {
        let (n,): (i64,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await)?;
        Ok(n)
    }
}

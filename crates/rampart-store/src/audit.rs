//! The `audit_events` table: writing security events and reading them back.

use crate::{Result, Store, StoreError, with_pool, with_tx};
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
struct ChainRow {
    #[sqlx(flatten)]
    event: EventRow,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
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

/// Appends one event to the hash chain inside an open write transaction `$tx`: locks the
/// chain head (the row lock serializes appenders across instances on PostgreSQL; SQLite write
/// transactions are serial already), links the event to it, inserts it and moves the head.
/// Every store method calls this last in its transaction, so the head lock is always the last
/// lock taken and appenders cannot deadlock.
macro_rules! insert_event {
    ($tx:expr, $e:expr) => {{
        let e: &rampart_domain::SecurityEvent = $e;
        let (prev,): (Vec<u8>,) = sqlx::query_as("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
            .fetch_one(&mut *$tx)
            .await?;
        let prev: [u8; 32] =
            prev.try_into().map_err(|_| $crate::StoreError::Corrupt("audit chain head is not 32 bytes".into()))?;
        let hash = e.chain_hash(&prev);
        sqlx::query(
            "INSERT INTO audit_events (id, ts, action, outcome, severity, actor_type, actor_id, \
             resource_type, resource_id, ip, user_agent, request_id, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(e.id)
        .bind($crate::ts::Ts(e.ts))
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
        .bind(sqlx::types::Json(&e.details))
        .bind(prev.to_vec())
        .bind(hash.to_vec())
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(hash.to_vec()).execute(&mut *$tx).await?;
    }};
}
pub(crate) use insert_event;

/// What [`Store::verify_audit_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub ok: bool,
    pub events_checked: u64,
    /// The first event whose link does not hold (edited, or after a deleted, inserted or moved
    /// event); one past the last event when events were cut off the end.
    pub first_bad_seq: Option<i64>,
}

const VERIFY_PAGE: i64 = 1000;

impl Store {
    /// Walks the whole chain in `seq` order, a page at a time, recomputing every link, and
    /// checks that the head is the last event's hash.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        let mut prev = rampart_domain::event::CHAIN_GENESIS;
        let mut after = 0i64;
        let mut checked = 0u64;
        loop {
            let rows: Vec<ChainRow> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT seq, id, ts, action, outcome, severity, actor_type, actor_id, resource_type, resource_id, \
                     ip, user_agent, request_id, details, prev_hash, hash FROM audit_events WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(pool)
                .await
            })?;
            let Some(last) = rows.last() else { break };
            after = last.event.seq;
            let n = rows.len();
            for row in rows {
                let seq = row.event.seq;
                let bad = || ChainReport { ok: false, events_checked: checked, first_bad_seq: Some(seq) };
                let event = match StoredEvent::try_from(row.event) {
                    Ok(e) => e.event,
                    Err(_) => return Ok(bad()),
                };
                let linked = row.prev_hash.as_deref() == Some(&prev[..]);
                let hash = event.chain_hash(&prev);
                if !linked || row.hash.as_deref() != Some(&hash[..]) {
                    return Ok(bad());
                }
                prev = hash;
                checked += 1;
            }
            if n < VERIFY_PAGE as usize {
                break;
            }
        }
        let (head,): (Vec<u8>,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT hash FROM audit_head WHERE id = 1").fetch_one(pool).await)?;
        if head != prev {
            return Ok(ChainReport { ok: false, events_checked: checked, first_bad_seq: Some(after + 1) });
        }
        Ok(ChainReport { ok: true, events_checked: checked, first_bad_seq: None })
    }

    /// Links events written before the chain existed (hash still NULL), in `seq` order, once.
    pub(crate) async fn link_unchained_events(&self) -> Result<u64> {
        let sql = "SELECT seq, id, ts, action, outcome, severity, actor_type, actor_id, resource_type, resource_id, \
                   ip, user_agent, request_id, details, prev_hash, hash FROM audit_events WHERE hash IS NULL ORDER BY seq";
        let n = with_tx!(self, |tx| {
            let (head,): (Vec<u8>,) = sqlx::query_as("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
                .fetch_one(&mut *tx)
                .await?;
            let mut prev: [u8; 32] =
                head.try_into().map_err(|_| StoreError::Corrupt("audit chain head is not 32 bytes".into()))?;
            let rows: Vec<ChainRow> = sqlx::query_as(sql).fetch_all(&mut *tx).await?;
            let n = rows.len() as u64;
            for row in rows {
                let seq = row.event.seq;
                let event = StoredEvent::try_from(row.event)?.event;
                let hash = event.chain_hash(&prev);
                sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3")
                    .bind(prev.to_vec())
                    .bind(hash.to_vec())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                prev = hash;
            }
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(prev.to_vec()).execute(&mut *tx).await?;
            n
        });
        Ok(n)
    }

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

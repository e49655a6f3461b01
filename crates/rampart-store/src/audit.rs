//! The `audit_events` table: writing security events and reading them back.

use crate::Param;
use crate::tx::Finish;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::audit::{AuditFilter, AuditKeys, ChainFault, ChainOrigin, ChainedEvent, Checkpoint, NO_CHECKPOINT};
use rampart_domain::{Action, Actor, Outcome, Resource, SecurityEvent, Severity};
use sqlx::types::Json;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// An event as stored, with its position in the log and its links of the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: SecurityEvent,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
}

impl StoredEvent {
    /// The event with its chain links, for the export encodings.
    pub fn chained(&self) -> ChainedEvent<'_> {
        ChainedEvent {
            seq: self.seq,
            event: &self.event,
            prev_hash: self.prev_hash.as_deref(),
            hash: self.hash.as_deref(),
        }
    }
}

impl TryFrom<ChainRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(r: ChainRow) -> Result<Self> {
        let (seq, event) = decode(r.event)?;
        Ok(StoredEvent { seq, event, prev_hash: r.prev_hash, hash: r.hash })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChainRow {
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
    personal: Option<String>,
}

fn decode(r: EventRow) -> Result<(i64, SecurityEvent)> {
    {
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
            sealed_personal: r.personal,
        };
        Ok((r.seq, event))
    }
}

/// What [`Store::verify_audit_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub ok: bool,
    pub events_checked: u64,
    /// Signed checkpoints found valid and matching the chain.
    pub checkpoints_checked: u64,
    /// The first event that cannot be vouched for: the one whose link does not hold (edited,
    /// or after a deleted, inserted or moved event); after a checkpoint mismatch, the first
    /// event after the last checkpoint that still matched; one past the last event when events
    /// were cut off the end.
    pub first_bad_seq: Option<i64>,
    pub fault: Option<ChainFault>,
    /// The checkpoint the chain starts from after a retention purge (`None`: from genesis).
    pub anchored_at: Option<i64>,
}

impl ChainReport {
    fn bad(checked: u64, checkpoints: u64, seq: i64, fault: ChainFault, anchored_at: Option<i64>) -> Self {
        ChainReport {
            ok: false,
            events_checked: checked,
            checkpoints_checked: checkpoints,
            first_bad_seq: Some(seq),
            fault: Some(fault),
            anchored_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    seq: i64,
    hash: Vec<u8>,
    signed_at: OffsetDateTime,
    key_id: String,
    prev_mac: Option<Vec<u8>>,
    mac: Vec<u8>,
}

impl TryFrom<CheckpointRow> for Checkpoint {
    type Error = StoreError;

    fn try_from(r: CheckpointRow) -> Result<Self> {
        let corrupt = || StoreError::Corrupt(format!("audit checkpoint {}: hash or mac is not 32 bytes", r.seq));
        Ok(Checkpoint {
            seq: r.seq,
            hash: r.hash.as_slice().try_into().map_err(|_| corrupt())?,
            signed_at: r.signed_at,
            key_id: r.key_id.clone(),
            prev_mac: match &r.prev_mac {
                Some(p) => Some(p.as_slice().try_into().map_err(|_| corrupt())?),
                None => None,
            },
            mac: r.mac.as_slice().try_into().map_err(|_| corrupt())?,
        })
    }
}

const VERIFY_PAGE: i64 = 1000;
pub(crate) const CHAIN_COLUMNS: &str = "seq, id, ts, action, outcome, severity, actor_type, actor_id, resource_type, resource_id, \
                             ip, user_agent, request_id, details, prev_hash, hash, personal";

/// The outcome of a retention purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// The checkpoint the remaining chain now starts from.
    pub through_seq: i64,
    pub deleted: u64,
}

/// How a filter's columns are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Let the planner use the column indexes (a page of the newest matches).
    Indexed,
    /// Walk the primary key in `seq` order and test each row (an export's keyset pages). The
    /// columns are wrapped in `COALESCE(c, c)`, a no-op both dialects cannot answer from an
    /// index: otherwise SQLite, without statistics, reads a common action's whole index and
    /// sorts it for every page, which makes a large export quadratic.
    BySeq,
}

/// `WHERE …` for a filter, with placeholders numbered from `$1`, and the values to bind.
fn filter_sql(f: &AuditFilter, scan: Scan, audit: &AuditKeys) -> (String, Vec<Param>) {
    let col = |c: &str| if scan == Scan::BySeq { format!("COALESCE({c}, {c})") } else { c.to_string() };
    let mut clauses: Vec<String> = Vec::new();
    let mut params = Vec::new();
    // Adds a parameter and names its placeholder.
    let mut p = |v: Param| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(id) = f.actor_id {
        clauses.push(format!("{} = {}", col("actor_id"), p(Param::Uuid(id))));
    }
    if let Some(email) = &f.actor_email {
        let n = p(Param::Text(email.clone()));
        clauses.push(format!("{} = (SELECT u.id FROM users u WHERE u.email = {n})", col("actor_id")));
    }
    if let Some(a) = &f.action {
        // `AuditFilter::validate` allows only [a-z0-9_.] here, so the pattern needs no escaping
        // but for `_`, which LIKE reads as "any one character"; it is escaped.
        let exact = p(Param::Text(a.clone()));
        let prefix = p(Param::Text(format!("{}.%", a.replace('_', "\\_"))));
        let action = col("action");
        clauses.push(format!("({action} = {exact} OR {action} LIKE {prefix} ESCAPE '\\')"));
    }
    if let Some(t) = &f.resource_type {
        clauses.push(format!("{} = {}", col("resource_type"), p(Param::Text(t.clone()))));
    }
    if let Some(r) = &f.resource_id {
        clauses.push(format!("{} = {}", col("resource_id"), p(Param::Text(r.clone()))));
    }
    if let Some(o) = f.outcome {
        clauses.push(format!("{} = {}", col("outcome"), p(Param::Text(o.as_str().into()))));
    }
    if let Some(s) = f.severity {
        clauses.push(format!("{} = {}", col("severity"), p(Param::Text(s.as_str().into()))));
    }
    if let Some(ip) = f.ip {
        // A sealed event keeps only its address's keyed tag (`rampart_domain::personal`).
        let (plain, tag) = (p(Param::Text(ip.to_string())), p(Param::Bytes(audit.ip_tag(ip).to_vec())));
        clauses.push(format!("({} = {plain} OR {} = {tag})", col("ip"), col("ip_tag")));
    }
    if let Some(t) = f.since {
        clauses.push(format!("{} >= {}", col("ts"), p(Param::Ts(t))));
    }
    if let Some(t) = f.until {
        clauses.push(format!("{} < {}", col("ts"), p(Param::Ts(t))));
    }
    if clauses.is_empty() {
        clauses.push("1 = 1".into());
    }
    (clauses.join(" AND "), params)
}

impl Store {
    /// Walks the whole chain in `seq` order, a page at a time, recomputing every link (the
    /// keyed HMAC, or the unkeyed hash up to the sealed origin), checking every checkpoint (its
    /// MAC, that it carries the MAC of the one before it, signing times in order, and that the
    /// chain still has the link it vouches for), and that the head is the last event's hash.
    /// After a retention purge the walk starts from the checkpoint the purge cut at, which must
    /// be validly signed and recorded by an `audit.purged` event.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        let keys = &*self.audit;
        // The head first: the chain is verified up to the event it names, so events appended
        // while the chain is read (a live server) are neither a fault nor a moving target.
        let (head, head_cp_seq, head_cp_mac): (Vec<u8>, Option<i64>, Vec<u8>) = with_pool!(self, |pool| {
            sqlx::query_as("SELECT hash, checkpoint_seq, checkpoint_mac FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await
        })?;
        let first: Option<(Option<i64>,)> =
            with_pool!(self, |pool| sqlx::query_as("SELECT MIN(seq) FROM audit_events").fetch_optional(pool).await)?;
        let first = first.and_then(|(s,)| s);
        let origin = match self.chain_origin().await? {
            Some(o) if keys.origin_valid(&o) => o,
            _ => return Ok(ChainReport::bad(0, 0, first.unwrap_or(0), ChainFault::BadOrigin, None)),
        };
        let mut reached: Option<i64> = None;
        // The anchor: the newest checkpoint before the first event (only a purge leaves one).
        let anchor: Option<Checkpoint> = match first {
            Some(first) => self.newest_checkpoint_at_or_before(first - 1).await?,
            None => None,
        };
        let anchored_at = anchor.as_ref().map(|a| a.seq);
        let mut checkpoints_ok = 0u64;
        let mut prev = rampart_domain::event::CHAIN_GENESIS;
        let mut after = i64::MIN;
        // The checkpoint before the next event (its MAC goes into keyed links).
        let mut last_cp: Option<Checkpoint> = None;
        let mut head_checkpoint_seen = head_cp_seq.is_none();
        let cp_acceptable =
            |cp: &Checkpoint| keys.checkpoint_valid(cp) && (cp.prev_mac.is_some() || origin.is_legacy(cp.seq));
        if let Some(a) = anchor {
            if !cp_acceptable(&a) {
                return Ok(ChainReport::bad(0, 0, a.seq, ChainFault::BadCheckpointSignature, anchored_at));
            }
            checkpoints_ok += 1;
            prev = a.hash;
            after = a.seq;
            head_checkpoint_seen |= head_cp_seq == Some(a.seq) && head_cp_mac == a.mac;
            last_cp = Some(a);
        }
        let mut purge_recorded = anchored_at.is_none();
        let mut last_good_checkpoint = after;
        let mut checked = 0u64;
        loop {
            let rows: Vec<ChainRow> = with_pool!(self, |pool| {
                sqlx::query_as(&format!(
                    "SELECT {CHAIN_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(pool)
                .await
            })?;
            let Some(last) = rows.last() else { break };
            let page_last = last.event.seq;
            let n = rows.len();
            let mut checkpoints: std::collections::VecDeque<Checkpoint> =
                self.checkpoints_between(after + 1, page_last).await?.into();
            for row in rows {
                let seq = row.event.seq;
                let bad = |fault| ChainReport::bad(checked, checkpoints_ok, seq, fault, anchored_at);
                // A checkpoint over an event that is gone: the chain was cut there.
                if checkpoints.front().is_some_and(|cp| cp.seq < seq) {
                    let from = self.first_seq_after(last_good_checkpoint).await?.unwrap_or(seq);
                    return Ok(ChainReport::bad(
                        checked,
                        checkpoints_ok,
                        from,
                        ChainFault::CheckpointMismatch,
                        anchored_at,
                    ));
                }
                let event = match decode(row.event) {
                    Ok((_, e)) => e,
                    Err(_) => return Ok(bad(ChainFault::BrokenLink)),
                };
                let hash = if origin.is_legacy(seq) {
                    event.legacy_chain_hash(&prev)
                } else {
                    keys.link(&prev, &last_cp.as_ref().map_or(NO_CHECKPOINT, |c| c.mac), &event)
                };
                let linked = row.prev_hash.as_deref() == Some(&prev[..]);
                if !linked || row.hash.as_deref() != Some(&hash[..]) {
                    // An intact event after a deleted checkpoint fails the same way as an edited
                    // one; the checkpoints say which: the next one does not carry the MAC of the
                    // last one seen, or the head names a newer one than that.
                    let last_mac = last_cp.as_ref().map_or(NO_CHECKPOINT, |c| c.mac);
                    let next_cp = self.checkpoints_between(seq, i64::MAX).await?.into_iter().next();
                    let gap_before_next =
                        next_cp.is_some_and(|c| keys.checkpoint_valid(&c) && c.prev_mac.is_some_and(|p| p != last_mac));
                    let head_checkpoint_gone = match head_cp_seq {
                        None => false,
                        Some(_) if head_cp_mac == last_mac => false,
                        Some(h) => {
                            self.checkpoints_between(h, h).await?.first().is_none_or(|c| c.mac[..] != head_cp_mac[..])
                        }
                    };
                    if linked && !origin.is_legacy(seq) && (gap_before_next || head_checkpoint_gone) {
                        return Ok(bad(ChainFault::MissingCheckpoint));
                    }
                    return Ok(bad(ChainFault::BrokenLink));
                }
                if origin.legacy_through == Some(seq) && hash != origin.legacy_head {
                    // The unkeyed part was rewritten consistently: none of it is vouched for.
                    let from = first.unwrap_or(seq);
                    return Ok(ChainReport::bad(checked, checkpoints_ok, from, ChainFault::BadOrigin, anchored_at));
                }
                if !purge_recorded
                    && event.action == Action::AuditPurged
                    && event.details.get("through_seq").and_then(|v| v.as_i64()) == anchored_at
                {
                    purge_recorded = true;
                }
                if checkpoints.front().is_some_and(|cp| cp.seq == seq) {
                    let Some(cp) = checkpoints.pop_front() else { break };
                    if !cp_acceptable(&cp) {
                        return Ok(ChainReport::bad(
                            checked,
                            checkpoints_ok,
                            cp.seq,
                            ChainFault::BadCheckpointSignature,
                            anchored_at,
                        ));
                    }
                    if last_cp.as_ref().is_some_and(|before| cp.signed_at < before.signed_at) {
                        let fault = ChainFault::CheckpointOutOfOrder;
                        return Ok(ChainReport::bad(checked, checkpoints_ok, cp.seq, fault, anchored_at));
                    }
                    let expected = last_cp.as_ref().map_or(NO_CHECKPOINT, |c| c.mac);
                    if cp.prev_mac.is_some_and(|p| p != expected) {
                        let fault = ChainFault::MissingCheckpoint;
                        return Ok(ChainReport::bad(checked, checkpoints_ok, cp.seq, fault, anchored_at));
                    }
                    if cp.hash != hash {
                        let from = self.first_seq_after(last_good_checkpoint).await?.unwrap_or(cp.seq);
                        let fault = ChainFault::CheckpointMismatch;
                        return Ok(ChainReport::bad(checked, checkpoints_ok, from, fault, anchored_at));
                    }
                    checkpoints_ok += 1;
                    last_good_checkpoint = cp.seq;
                    head_checkpoint_seen |= head_cp_seq == Some(cp.seq) && head_cp_mac == cp.mac;
                    last_cp = Some(cp);
                }
                prev = hash;
                checked += 1;
                if head == hash {
                    reached = Some(seq);
                    break;
                }
            }
            after = reached.unwrap_or(page_last);
            if reached.is_some() || n < VERIFY_PAGE as usize {
                break;
            }
        }
        // Rows past the head read first are either appends made since (each links to the
        // chain, and they moved the head) or tampering: the first must link to that head, and
        // the head must have moved.
        if let Some(at) = reached {
            let next: Option<ChainRow> = with_pool!(self, |pool| {
                sqlx::query_as(&format!("SELECT {CHAIN_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 1"))
                    .bind(at)
                    .fetch_optional(pool)
                    .await
            })?;
            if let Some(row) = next {
                let seq = row.event.seq;
                if row.prev_hash.as_deref() != Some(&head[..]) {
                    return Ok(ChainReport::bad(checked, checkpoints_ok, seq, ChainFault::BrokenLink, anchored_at));
                }
                let (now_head,): (Vec<u8>,) = with_pool!(self, |pool| {
                    sqlx::query_as("SELECT hash FROM audit_head WHERE id = 1").fetch_one(pool).await
                })?;
                if now_head == head {
                    return Ok(ChainReport::bad(checked, checkpoints_ok, seq, ChainFault::HeadMismatch, anchored_at));
                }
            }
        }
        // Past the snapshot, a checkpoint is legitimate only over an event that exists (one
        // signed since the head was read); any other was left behind by events cut off the end.
        let mut cut_off = self.checkpoints_between(after + 1, i64::MAX).await?;
        if reached.is_some() {
            let mut orphaned = Vec::new();
            for cp in cut_off {
                let found: Option<(i64,)> = with_pool!(self, |pool| {
                    sqlx::query_as("SELECT seq FROM audit_events WHERE seq = $1")
                        .bind(cp.seq)
                        .fetch_optional(pool)
                        .await
                })?;
                if found.is_none() {
                    orphaned.push(cp);
                }
            }
            cut_off = orphaned;
        }
        if !cut_off.is_empty() {
            let from = self.first_seq_after(last_good_checkpoint).await?.unwrap_or(after + 1);
            return Ok(ChainReport::bad(checked, checkpoints_ok, from, ChainFault::CheckpointMismatch, anchored_at));
        }
        if head != prev {
            return Ok(ChainReport::bad(
                checked,
                checkpoints_ok,
                after.max(0) + 1,
                ChainFault::HeadMismatch,
                anchored_at,
            ));
        }
        // The newest checkpoint (the head names it) must still be there.
        if !head_checkpoint_seen {
            let seq = head_cp_seq.unwrap_or(0);
            return Ok(ChainReport::bad(checked, checkpoints_ok, seq, ChainFault::MissingCheckpoint, anchored_at));
        }
        if !purge_recorded {
            let seq = first.unwrap_or(0);
            return Ok(ChainReport::bad(checked, checkpoints_ok, seq, ChainFault::UnrecordedPurge, anchored_at));
        }
        Ok(ChainReport {
            ok: true,
            events_checked: checked,
            checkpoints_checked: checkpoints_ok,
            first_bad_seq: None,
            fault: None,
            anchored_at,
        })
    }

    /// The chain's origin, when sealed.
    async fn chain_origin(&self) -> Result<Option<ChainOrigin>> {
        type Row = (Option<i64>, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>);
        let row: Option<Row> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT legacy_through_seq, legacy_head, key_id, mac FROM audit_chain_origin WHERE id = 1")
                .fetch_optional(pool)
                .await
        })?;
        let Some((legacy_through, Some(head), Some(key_id), Some(mac))) = row else { return Ok(None) };
        let (Ok(legacy_head), Ok(mac)) = (<[u8; 32]>::try_from(head), <[u8; 32]>::try_from(mac)) else {
            return Ok(None);
        };
        Ok(Some(ChainOrigin { legacy_through, legacy_head, key_id, mac }))
    }

    /// Seals the chain's origin (only ever called by the run that applied the migration that
    /// introduced the keyed chain): links the events written before the chain existed (their
    /// hash still NULL) the old, unkeyed way, then signs where the unkeyed links end and that
    /// link. Returns how many events it linked.
    pub(crate) async fn seal_chain_origin(&self) -> Result<u64> {
        let keys = Arc::clone(&self.audit);
        let sql = format!("SELECT {CHAIN_COLUMNS} FROM audit_events WHERE hash IS NULL AND seq <= $1 ORDER BY seq");
        let linked = with_tx!(self, |tx| {
            let (head,): (Vec<u8>,) = sqlx::query_as("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
                .fetch_one(&mut *tx)
                .await?;
            let mut prev: [u8; 32] =
                head.try_into().map_err(|_| StoreError::Corrupt("audit chain head is not 32 bytes".into()))?;
            let (through,): (Option<i64>,) =
                sqlx::query_as("SELECT legacy_through_seq FROM audit_chain_origin WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let rows: Vec<ChainRow> =
                sqlx::query_as(&sql).bind(through.unwrap_or(i64::MIN)).fetch_all(&mut *tx).await?;
            let n = rows.len() as u64;
            for row in rows {
                let seq = row.event.seq;
                let (_, event) = decode(row.event)?;
                let hash = event.legacy_chain_hash(&prev);
                sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3")
                    .bind(prev.to_vec())
                    .bind(hash.to_vec())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                prev = hash;
            }
            if n > 0 {
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(prev.to_vec())
                    .execute(&mut *tx)
                    .await?;
            }
            let legacy_head = match through {
                None => rampart_domain::event::CHAIN_GENESIS,
                Some(t) => {
                    let (h,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT hash FROM audit_events WHERE seq = $1")
                        .bind(t)
                        .fetch_one(&mut *tx)
                        .await?;
                    h.and_then(|h| <[u8; 32]>::try_from(h).ok())
                        .ok_or_else(|| StoreError::Corrupt(format!("audit event {t}: no 32-byte link")))?
                }
            };
            let origin = keys.seal_origin(through, legacy_head);
            sqlx::query("UPDATE audit_chain_origin SET legacy_head = $1, key_id = $2, mac = $3 WHERE id = 1")
                .bind(origin.legacy_head.to_vec())
                .bind(origin.key_id.clone())
                .bind(origin.mac.to_vec())
                .execute(&mut *tx)
                .await?;
            n
        });
        Ok(linked)
    }

    /// Signs the chain's newest link as a checkpoint at `now`, chained to the newest
    /// checkpoint, unless that link is signed already. Under the head lock: appends and other
    /// signers (other instances) wait, so checkpoints form one chain and every append after
    /// this one links to it. `None`: nothing new to sign.
    pub async fn sign_checkpoint(&self, now: OffsetDateTime) -> Result<Option<Checkpoint>> {
        let keys = Arc::clone(&self.audit);
        let cp = with_tx!(self, |tx| {
            let (_, signed_seq, prev_mac): (Vec<u8>, Option<i64>, Vec<u8>) = sqlx::query_as(
                "UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash, checkpoint_seq, checkpoint_mac",
            )
            .fetch_one(&mut *tx)
            .await?;
            let newest: Option<(i64, Option<Vec<u8>>)> =
                sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((seq, Some(hash))) = newest else { return Ok(Finish::Rollback(None)) };
            if signed_seq.is_some_and(|s| s >= seq) {
                return Ok(Finish::Rollback(None));
            }
            let corrupt = || StoreError::Corrupt(format!("audit event {seq}: link or checkpoint MAC is not 32 bytes"));
            let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt())?;
            let prev_mac: [u8; 32] = prev_mac.try_into().map_err(|_| corrupt())?;
            // Signing times follow the chain even when signers' clocks disagree a little (the
            // time is read before the lock), so verification can hold them to their order.
            let last_signed: Option<(OffsetDateTime,)> = match signed_seq {
                Some(s) => {
                    sqlx::query_as("SELECT signed_at FROM audit_checkpoints WHERE seq = $1")
                        .bind(s)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            let signed_at = last_signed.map_or(now, |(t,)| t.max(now));
            let cp = keys.sign_checkpoint(seq, hash, prev_mac, signed_at);
            insert_checkpoint_sql(&cp).execute(&mut *tx).await?;
            sqlx::query("UPDATE audit_head SET checkpoint_seq = $1, checkpoint_mac = $2 WHERE id = 1")
                .bind(cp.seq)
                .bind(cp.mac.to_vec())
                .execute(&mut *tx)
                .await?;
            Some(cp)
        });
        Ok(cp)
    }

    async fn checkpoints_between(&self, from: i64, to: i64) -> Result<Vec<Checkpoint>> {
        let rows: Vec<CheckpointRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, hash, signed_at, key_id, prev_mac, mac FROM audit_checkpoints \
                 WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Checkpoint::try_from).collect()
    }

    async fn first_seq_after(&self, seq: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT seq FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 1")
                .bind(seq)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(s,)| s))
    }

    /// The newest link of the chain, `(seq, hash)`, to sign as a checkpoint. Appenders take
    /// the head lock before their insert and hold it to commit, so committed events are in
    /// `seq` order and this is the head.
    pub async fn newest_link(&self) -> Result<Option<(i64, [u8; 32])>> {
        let row: Option<(i64, Vec<u8>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT seq, hash FROM audit_events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        row.map(|(seq, h)| {
            let h: [u8; 32] =
                h.try_into().map_err(|_| StoreError::Corrupt(format!("audit event {seq}: hash is not 32 bytes")))?;
            Ok((seq, h))
        })
        .transpose()
    }

    /// The newest signed checkpoint.
    pub async fn newest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.newest_checkpoint_at_or_before(i64::MAX).await
    }

    /// The newest signed checkpoint at or before `seq`.
    pub async fn newest_checkpoint_at_or_before(&self, seq: i64) -> Result<Option<Checkpoint>> {
        let row: Option<CheckpointRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, hash, signed_at, key_id, prev_mac, mac FROM audit_checkpoints \
                 WHERE seq <= $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(seq)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Checkpoint::try_from).transpose()
    }

    /// Stores a checkpoint as given, without moving the head's record of the newest one:
    /// for tests that plant forged or stale checkpoints. The server signs through
    /// [`Store::sign_checkpoint`].
    pub async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<bool> {
        let inserted =
            with_pool!(self, |pool| insert_checkpoint_sql(cp).execute(pool).await.map(|r| r.rows_affected() == 1))?;
        Ok(inserted)
    }

    /// Deletes the events older than `cutoff`, up to and including the newest signed
    /// checkpoint older than it, which stays as the anchor the remaining chain verifies from;
    /// older checkpoints go too. `event` (an `audit.purged`) is completed with what was done
    /// and written in the same transaction. `None` when no checkpoint is old enough.
    pub async fn purge_audit_before(
        &self,
        cutoff: OffsetDateTime,
        event: SecurityEvent,
    ) -> Result<Option<PurgeReport>> {
        let report = with_tx!(self, |tx| {
            let cut: Option<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT c.seq, c.hash FROM audit_checkpoints c JOIN audit_events e ON e.seq = c.seq \
                 WHERE e.ts < $1 ORDER BY c.seq DESC LIMIT 1",
            )
            .bind(crate::ts::Ts(cutoff))
            .fetch_optional(&mut *tx)
            .await?;
            match cut {
                None => None,
                Some((through, hash)) => {
                    let deleted = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
                        .bind(through)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1").bind(through).execute(&mut *tx).await?;
                    let mut event = event;
                    if let Some(d) = event.details.as_object_mut() {
                        d.insert("through_seq".into(), through.into());
                        d.insert("anchor_hash".into(), hex::encode(&hash).into());
                        d.insert("deleted".into(), deleted.into());
                    }
                    tx.insert_event(&event).await?;
                    Some(PurgeReport { through_seq: through, deleted })
                }
            }
        });
        Ok(report)
    }

    /// The newest events first, at most `limit`.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>> {
        self.query_events(&AuditFilter::default(), None, limit).await
    }

    /// Events matching `filter`, newest first, older than `before_seq` when given (the cursor
    /// of the previous page), at most `limit`.
    ///
    /// With an action filter, the actions it names are found first (one index seek each,
    /// [`Store::actions_named`]) and each (action, outcome)'s newest matches are read from the
    /// `(action, outcome, seq)` index, the branches merged by `seq` (migration 0017): a page costs about its size per
    /// action named, however many events there are, where one OR over the table read every
    /// event to find a rare action, or every match of a common one to sort them.
    pub async fn query_events(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let actions = match &filter.action {
            Some(a) => {
                let named = self.actions_named(a).await?;
                let named: Vec<String> = named.into_iter().filter(|x| filter.action_matches(x)).collect();
                if named.is_empty() {
                    return Ok(Vec::new());
                }
                Some(named)
            }
            None => None,
        };
        let outcomes: Vec<Outcome> = match filter.outcome {
            Some(o) => vec![o],
            None => Outcome::ALL.to_vec(),
        };
        let rest = AuditFilter { action: None, outcome: None, ..filter.clone() };
        let (mut clause, mut params) = filter_sql(&rest, Scan::Indexed, &self.audit);
        if let Some(b) = before_seq {
            params.push(Param::Int(b));
            clause.push_str(&format!(" AND seq < ${}", params.len()));
        }
        params.push(Param::Int(i64::from(limit)));
        let limit_param = format!("${}", params.len());
        let sql = match actions {
            None => {
                if let Some(o) = filter.outcome {
                    params.push(Param::Text(o.as_str().into()));
                    clause.push_str(&format!(" AND outcome = ${}", params.len()));
                }
                format!("SELECT {CHAIN_COLUMNS} FROM audit_events WHERE {clause} ORDER BY seq DESC LIMIT {limit_param}")
            }
            Some(actions) => {
                // A branch per (action, outcome): each reads its newest matches in index order.
                let mut branches = Vec::new();
                for action in actions {
                    params.push(Param::Text(action));
                    let a = params.len();
                    for o in &outcomes {
                        params.push(Param::Text(o.as_str().into()));
                        branches.push(format!(
                            "SELECT * FROM (SELECT {CHAIN_COLUMNS} FROM audit_events WHERE action = ${a} \
                             AND outcome = ${} AND {clause} ORDER BY seq DESC LIMIT {limit_param}) AS b{}",
                            params.len(),
                            branches.len()
                        ));
                    }
                }
                format!("{} ORDER BY seq DESC LIMIT {limit_param}", branches.join(" UNION ALL "))
            }
        };
        let rows: Vec<ChainRow> =
            with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        self.reveal(rows.into_iter().map(StoredEvent::try_from).collect::<Result<_>>()?).await
    }

    /// The distinct actions recorded in the byte range [`action`, `action` + "/"), which holds
    /// `action` and every `action.…` (the filter's alphabet is `[a-z0-9_.]`, and `.` is the
    /// one byte of it below `/`; the caller keeps only exact matches). A loose index scan: one
    /// seek into the `(action, outcome, seq)` index per action found, not a read of their events.
    async fn actions_named(&self, action: &str) -> Result<Vec<String>> {
        let rows: Vec<(Option<String>,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "WITH RECURSIVE found (action) AS ( \
                   SELECT (SELECT e.action FROM audit_events e WHERE e.action >= $1 AND e.action < $2 \
                           ORDER BY e.action LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT e.action FROM audit_events e WHERE e.action > found.action AND e.action < $2 \
                           ORDER BY e.action LIMIT 1) \
                   FROM found WHERE found.action IS NOT NULL) \
                 SELECT action FROM found WHERE action IS NOT NULL",
            )
            .bind(action)
            .bind(format!("{action}/"))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().filter_map(|(a,)| a).collect())
    }

    /// Events matching `filter`, oldest first, after `after_seq`, at most `limit`: the pages
    /// of an export (keyset pagination, so each page costs the same however deep).
    pub async fn export_page(&self, filter: &AuditFilter, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.export_page_through(filter, after_seq, i64::MAX, limit).await
    }

    /// [`Store::export_page`] up to `through_seq` inclusive: the pages of an export whose rows
    /// were counted when the newest event was `through_seq` (events appended since are not in
    /// it).
    pub async fn export_page_through(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        through_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let (mut clause, mut params) = filter_sql(filter, Scan::BySeq, &self.audit);
        params.push(Param::Int(after_seq));
        clause.push_str(&format!(" AND seq > ${}", params.len()));
        params.push(Param::Int(through_seq));
        clause.push_str(&format!(" AND seq <= ${}", params.len()));
        params.push(Param::Int(i64::from(limit)));
        let sql =
            format!("SELECT {CHAIN_COLUMNS} FROM audit_events WHERE {clause} ORDER BY seq LIMIT ${}", params.len());
        let rows: Vec<ChainRow> =
            with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        self.reveal(rows.into_iter().map(StoredEvent::try_from).collect::<Result<_>>()?).await
    }

    /// Counts of events matching `filter` by action and outcome, sorted by action then outcome.
    pub async fn event_stats(&self, filter: &AuditFilter) -> Result<Vec<(String, String, i64)>> {
        let (clause, params) = filter_sql(filter, Scan::Indexed, &self.audit);
        let sql = format!(
            "SELECT action, outcome, COUNT(*) FROM audit_events WHERE {clause} GROUP BY action, outcome ORDER BY action, outcome"
        );
        let rows: Vec<(String, String, i64)> =
            with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// How many events match `filter` up to `through_seq` inclusive (what
    /// [`Store::export_page_through`] pages through), counting at most `cap` when given (a
    /// direct export only needs to know whether it is over the threshold).
    pub async fn count_matching(&self, filter: &AuditFilter, through_seq: i64, cap: Option<i64>) -> Result<i64> {
        let (mut clause, mut params) = filter_sql(filter, Scan::Indexed, &self.audit);
        params.push(Param::Int(through_seq));
        clause.push_str(&format!(" AND seq <= ${}", params.len()));
        let sql = match cap {
            Some(cap) => {
                params.push(Param::Int(cap));
                format!(
                    "SELECT COUNT(*) FROM (SELECT 1 AS one FROM audit_events WHERE {clause} LIMIT ${}) AS capped",
                    params.len()
                )
            }
            None => format!("SELECT COUNT(*) FROM audit_events WHERE {clause}"),
        };
        let (n,): (i64,) = with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_one(pool).await)?;
        Ok(n)
    }

    /// The newest event's `seq` (0 when there is none). Events commit in `seq` order (appenders
    /// hold the chain-head lock), so none at or below it can appear later.
    pub async fn newest_seq(&self) -> Result<i64> {
        let (n,): (Option<i64>,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT MAX(seq) FROM audit_events").fetch_one(pool).await)?;
        Ok(n.unwrap_or(0))
    }

    pub async fn count_events(&self) -> Result<i64> {
        let (n,): (i64,) =
            with_pool!(self, |pool| sqlx::query_as("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await)?;
        Ok(n)
    }
}

/// The insert of a checkpoint; signing the same link twice keeps the first.
fn insert_checkpoint_sql<DB: sqlx::Database>(
    cp: &Checkpoint,
) -> sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments<'static>>
where
    i64: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    Option<Vec<u8>>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    crate::ts::Ts: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (seq) DO NOTHING",
    )
    .bind(cp.seq)
    .bind(cp.hash.to_vec())
    .bind(crate::ts::Ts(cp.signed_at))
    .bind(cp.key_id.clone())
    .bind(cp.prev_mac.map(|p| p.to_vec()))
    .bind(cp.mac.to_vec())
}

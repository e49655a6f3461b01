//! The audit log's use cases (HTTP and CLI share these): verifying the chain, signing
//! checkpoints, retention, querying, statistics, streamed export, and the SIEM output.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use bytes::Bytes;
use futures::Stream;
use rampart_config::SiemSink;
use rampart_domain::audit::{AuditFilter, Checkpoint};
use rampart_domain::{Action, Actor, Outcome, Severity};
use rampart_store::{ChainReport, PurgeReport, StoreError, StoredEvent};
use std::io::Write;

/// Verifies the whole chain and its checkpoints, and records the verdict as `audit.verified`
/// (a broken chain is a critical event).
pub async fn verify(state: &App, actor: Actor, ctx: Option<&RequestContext>) -> Result<ChainReport, ServiceError> {
    let report = state.store.verify_audit_chain().await?;
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    let ev = state
        .events
        .event_for(ctx, Action::AuditVerified, outcome)
        .actor(actor)
        .severity(if report.ok { Severity::Info } else { Severity::Critical })
        .details(serde_json::json!({
            "events_checked": report.events_checked,
            "checkpoints_checked": report.checkpoints_checked,
            "first_bad_seq": report.first_bad_seq,
            "fault": report.fault.map(|f| f.as_str()),
        }));
    state.events.record(ev).await?;
    Ok(report)
}

/// Signs the chain head as a checkpoint unless it is signed already, and logs it on the
/// `rampart::audit` target (so a copy of every checkpoint also leaves the database: the
/// witness against events and checkpoints cut off the end together).
pub async fn sign_checkpoint(state: &App) -> Result<Option<Checkpoint>, StoreError> {
    let Some(cp) = state.store.sign_checkpoint(state.clock.now()).await? else { return Ok(None) };
    tracing::info!(
        target: "rampart::audit",
        seq = cp.seq,
        hash = %hex::encode(cp.hash),
        mac = %hex::encode(cp.mac),
        prev_mac = %cp.prev_mac.map(hex::encode).unwrap_or_default(),
        key_id = %cp.key_id,
        "audit checkpoint signed"
    );
    Ok(Some(cp))
}

/// Purges events past `audit.retention_days` up to the newest checkpoint older than that
/// (recorded as `audit.purged` in the same transaction). `None`: nothing old enough, or
/// retention is off.
pub async fn purge_expired(state: &App) -> Result<Option<PurgeReport>, StoreError> {
    let Some(retention) = state.settings.audit.retention else { return Ok(None) };
    let days = retention.whole_days();
    let cutoff = state.clock.now() - retention;
    let ev = state
        .events
        .event(Action::AuditPurged, Outcome::Success)
        .actor(Actor::System)
        .details(serde_json::json!({ "retention_days": days, "cutoff": crate::rfc3339(cutoff) }));
    let report = state.store.purge_audit_before(cutoff, ev).await?;
    if let Some(r) = &report {
        tracing::info!(target: "rampart::audit", through_seq = r.through_seq, deleted = r.deleted, "audit events purged");
    }
    Ok(report)
}

/// The audit read of `GET /v1/admin/audit`: one page, newest first, with the cursor of the
/// next; the read is itself recorded (with the filter).
pub async fn query(
    state: &App,
    actor: Actor,
    ctx: &RequestContext,
    filter: &AuditFilter,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<(Vec<StoredEvent>, Option<i64>), ServiceError> {
    // One more than asked tells whether there is a next page.
    let mut events = state.store.query_events(filter, before_seq, limit + 1).await?;
    let next = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    record_access(
        state,
        actor,
        Some(ctx),
        Action::AuditRead,
        filter,
        serde_json::json!({ "view": "events", "returned": events.len() }),
    )
    .await?;
    Ok((events, next))
}

/// Counts by action and outcome for a filter (the stats view); recorded like a query.
pub async fn stats(
    state: &App,
    actor: Actor,
    ctx: &RequestContext,
    filter: &AuditFilter,
) -> Result<Vec<(String, String, i64)>, ServiceError> {
    let rows = state.store.event_stats(filter).await?;
    record_access(state, actor, Some(ctx), Action::AuditRead, filter, serde_json::json!({ "view": "stats" })).await?;
    Ok(rows)
}

async fn record_access(
    state: &App,
    actor: Actor,
    ctx: Option<&RequestContext>,
    action: Action,
    filter: &AuditFilter,
    extra: serde_json::Value,
) -> Result<(), ServiceError> {
    let mut details = filter_json(filter, |ip| state.store.ip_tag(ip));
    if let (Some(d), Some(x)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(x.clone());
    }
    let ev = state.events.event_for(ctx, action, Outcome::Success).actor(actor).details(details);
    state.events.record(ev).await?;
    Ok(())
}

/// The filter as a record of the search keeps it; an address searched for is kept as its keyed
/// tag (`ip_tag`), which finds the same events but does not hold the address of a person who may
/// later be erased.
fn filter_json(f: &AuditFilter, ip_tag: impl Fn(std::net::IpAddr) -> String) -> serde_json::Value {
    // The names of `GET /v1/admin/audit`'s query, as an export stores them; no address and no
    // e-mail searched for stays in the record.
    let mut filter = super::exports::audit_filter_json(f);
    if let Some(o) = filter.as_object_mut() {
        o.remove("ip");
        o.remove("actor_email");
        o.insert("ip_tag".into(), serde_json::json!(f.ip.map(ip_tag)));
    }
    serde_json::json!({ "filter": filter })
}

/// The export encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    JsonLines,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<ExportFormat> {
        [ExportFormat::JsonLines, ExportFormat::Csv].into_iter().find(|f| f.as_str() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// Rows read per page of an export.
const EXPORT_PAGE: u32 = 1000;

/// A direct export (`GET /v1/admin/audit/export`, the console's export): counted against the
/// administrator's `[exports]` rate limit; the rows are counted up to the newest event now, and
/// over `exports.approval_threshold_rows` refused (`export_approval_required`: such exports go
/// through `POST /v1/admin/exports`); recorded with its filter and row count (committed before
/// the first byte is sent); then the matching events stream oldest first, one page of
/// 1,000 rows in memory at a time, up to that newest event, so the rows sent are the
/// rows counted and an export of millions of events runs in constant memory.
pub async fn export(
    state: &App,
    limiter: &crate::limiter::Limiter,
    caller: &crate::authz::Caller,
    ctx: Option<&RequestContext>,
    filter: AuditFilter,
    format: ExportFormat,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ServiceError> {
    super::exports::admit(state, limiter, ctx, caller).await?;
    let through_seq = state.store.newest_seq().await?;
    let rows = super::exports::direct_audit_rows(state, &filter, through_seq).await?;
    recorded_export(state, caller.actor(), ctx, filter, format, rows, through_seq).await
}

/// The operator's export (`rampart audit export`, as `system`): recorded with its filter and
/// row count like any other, without the administrators' rate limit or threshold (whoever runs
/// it holds the database and the master key).
pub async fn export_by_operator(
    state: &App,
    filter: AuditFilter,
    format: ExportFormat,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ServiceError> {
    let through_seq = state.store.newest_seq().await?;
    let rows = u64::try_from(state.store.count_matching(&filter, through_seq, None).await?).unwrap_or(0);
    recorded_export(state, Actor::System, None, filter, format, rows, through_seq).await
}

async fn recorded_export(
    state: &App,
    actor: Actor,
    ctx: Option<&RequestContext>,
    filter: AuditFilter,
    format: ExportFormat,
    rows: u64,
    through_seq: i64,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ServiceError> {
    let details = serde_json::json!({ "format": format.as_str(), "rows": rows, "through_seq": through_seq });
    record_access(state, actor, ctx, Action::AuditExported, &filter, details).await?;
    Ok(super::exports::audit_rows(state, filter, through_seq, format))
}

/// How often the SIEM output looks for new events.
pub const SIEM_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What shutdown owes the audit log: the summaries of aggregated events, a checkpoint of the
/// final head, and the last lines of the SIEM output.
pub async fn at_shutdown(state: &App) {
    state.events.flush_aggregated(state.settings.audit.aggregate_interval.as_secs()).await;
    if let Err(e) = sign_checkpoint(state).await {
        tracing::warn!(error = %e, "audit: signing the final checkpoint failed");
    }
    if let Some(t) = state.siem.lock().await.as_mut()
        && let Err(e) = t.ship(state).await
    {
        tracing::warn!(error = %e, "SIEM output: final read failed");
    }
}

/// The SIEM output: every event written to the log, as one Elastic Common Schema JSON line,
/// to stdout or a file. It follows the table by `seq` (committed events appear in `seq` order:
/// appenders hold the chain-head lock to commit), so it ships every event of every code path
/// and of other instances alike, with its chain hashes; signed checkpoints go out too.
pub struct SiemTail {
    out: Box<dyn Write + Send>,
    after: i64,
    last_checkpoint: i64,
}

impl std::fmt::Debug for SiemTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiemTail").field("after", &self.after).field("last_checkpoint", &self.last_checkpoint).finish()
    }
}

impl SiemTail {
    /// Opens the configured output, starting after the newest event (what happened before
    /// start-up was shipped by the previous run). `None` when the output is off. `serve`
    /// opens it at start-up; CLI commands never do.
    pub async fn open(state: &App) -> std::io::Result<Option<SiemTail>> {
        let out: Box<dyn Write + Send> = match &state.settings.audit.siem {
            None => return Ok(None),
            Some(SiemSink::Stdout) => Box::new(std::io::stdout()),
            Some(SiemSink::File(path)) => {
                let mut o = std::fs::OpenOptions::new();
                o.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                Box::new(std::io::LineWriter::new(o.open(path)?))
            }
        };
        let after = state.store.newest_link().await.map_err(std::io::Error::other)?.map_or(0, |(s, _)| s);
        let last_checkpoint =
            state.store.newest_checkpoint().await.map_err(std::io::Error::other)?.map_or(0, |c| c.seq);
        Ok(Some(SiemTail { out, after, last_checkpoint }))
    }

    /// Writes what was appended since the last call.
    pub async fn ship(&mut self, state: &App) -> Result<usize, StoreError> {
        let mut shipped = 0;
        loop {
            let page = state.store.export_page(&AuditFilter::default(), self.after, EXPORT_PAGE).await?;
            for e in &page {
                self.line(&e.chained().to_ecs());
                self.after = e.seq;
            }
            shipped += page.len();
            if page.len() < EXPORT_PAGE as usize {
                break;
            }
        }
        if let Some(cp) = state.store.newest_checkpoint().await?
            && cp.seq > self.last_checkpoint
        {
            self.last_checkpoint = cp.seq;
            self.line(&serde_json::json!({
                "@timestamp": crate::rfc3339(cp.signed_at),
                "ecs": { "version": "8.11.0" },
                "event": { "kind": "state", "action": "audit.checkpoint", "provider": "rampart", "dataset": "rampart.audit" },
                "rampart": { "checkpoint": {
                    "seq": cp.seq, "hash": hex::encode(cp.hash), "mac": hex::encode(cp.mac), "key_id": cp.key_id,
                } },
            }));
        }
        let _ = self.out.flush();
        Ok(shipped)
    }

    fn line(&mut self, v: &serde_json::Value) {
        let mut buf = serde_json::to_vec(v).unwrap_or_default();
        buf.push(b'\n');
        if let Err(e) = self.out.write_all(&buf) {
            tracing::warn!(error = %e, "SIEM output: write failed");
        }
    }
}

/// The security events the signed-in user did (sign-ins, factor and password changes, keys,
/// sessions), newest first: the account's "activity" page. Their own events, so the read is
/// not itself recorded the way an administrator's audit read is.
pub async fn my_activity(
    state: &App,
    auth: &crate::authz::Authenticated,
    limit: u32,
) -> Result<Vec<StoredEvent>, ServiceError> {
    let filter = AuditFilter { actor_id: Some(auth.user_id.0), ..AuditFilter::default() };
    Ok(state.store.query_events(&filter, None, limit).await?)
}

//! `/v1/admin/audit*`: reading, counting, exporting and verifying the audit log. Reading and
//! verifying need `audit:read`, exporting `audit:export`; each use is itself recorded.

use super::paging;
use crate::AppState;
use crate::auth::{AuditExport, AuditRead, Guard};
use crate::deprecation;
use crate::error::ApiError;
use crate::limits::ApiQuery;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rampart_core::FieldProblem;
use rampart_core::RequestContext;
use rampart_core::ServiceError;
use rampart_core::services::audit::{self as service, ExportFormat};
use rampart_domain::audit::AuditFilter;
use rampart_domain::{Outcome, Severity};
use rampart_store::StoredEvent;
use rampart_wire::{
    AuditActor, AuditCount, AuditEvent, AuditPage, AuditResource, AuditStats, AuditVerification, Problem,
};
use serde::Deserialize;

/// The filter every audit view takes (all optional; each narrows), and the few parameters of
/// one view (a view refuses the others').
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// The acting user's or key's id.
    pub actor_id: Option<String>,
    /// An action or a dotted prefix of one: `auth` matches `auth.login` and `auth.refresh.reused`.
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
    /// The client address, exactly.
    pub ip: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// `GET /v1/admin/audit` only: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `GET /v1/admin/audit` only: events per page, default 50, 1 to 500 (501 to 1000 still
    /// work until 2027-06-30 and are answered with `Deprecation` and `Sunset` headers).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `GET /v1/admin/audit/export` only: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

impl FilterQuery {
    /// Parses every filter field, reporting all bad ones at once (400 `validation_failed`),
    /// and refuses the view-specific parameters not in `allowed`.
    pub(crate) fn parse(&self, allowed: &[&str], errors: &mut Vec<FieldProblem>) -> AuditFilter {
        for (name, present) in
            [("cursor", self.cursor.is_some()), ("limit", self.limit.is_some()), ("format", self.format.is_some())]
        {
            if present && !allowed.contains(&name) {
                errors.push(FieldProblem::new(name, "not_allowed", "not a parameter of this view"));
            }
        }
        let since = paging::time_param("since", self.since.as_deref(), errors);
        let until = paging::time_param("until", self.until.as_deref(), errors);
        let actor_id = self.actor_id.as_ref().and_then(|s| match s.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldProblem::new("actor_id", "invalid_id", "must be a UUID"));
                None
            }
        });
        let outcome = self.outcome.as_ref().and_then(|s| {
            let o = Outcome::parse(s);
            if o.is_none() {
                errors.push(FieldProblem::new("outcome", "invalid_outcome", "must be success, failure or denied"));
            }
            o
        });
        let severity = self.severity.as_ref().and_then(|s| {
            let v = Severity::parse(s);
            if v.is_none() {
                errors.push(FieldProblem::new("severity", "invalid_severity", "must be info, warning or critical"));
            }
            v
        });
        let ip = self.ip.as_ref().and_then(|s| match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errors.push(FieldProblem::new("ip", "invalid_ip", "must be an IPv4 or IPv6 address"));
                None
            }
        });
        let filter = AuditFilter {
            actor_id,
            actor_email: None,
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            outcome,
            severity,
            ip,
            since,
            until,
        };
        if let Err(es) = filter.validate() {
            errors.extend(es.into_iter().map(|e| {
                let message = match e.code {
                    "invalid_action" => "dotted lowercase segments (a-z, 0-9, _), at most 64 characters",
                    "before_since" => "must not be before since",
                    _ => "between 1 and 200 characters",
                };
                FieldProblem::new(e.field, e.code, message)
            }));
        }
        filter
    }
}

fn view(e: &StoredEvent) -> AuditEvent {
    let v = &e.event;
    AuditEvent {
        id: v.id.to_string(),
        seq: e.seq,
        ts: crate::views::rfc3339(v.ts),
        action: v.action.as_str().into(),
        outcome: v.outcome.as_str().into(),
        severity: v.severity.as_str().into(),
        actor: AuditActor { kind: v.actor.kind().into(), id: v.actor.id().map(|i| i.to_string()) },
        resource: v.resource.as_ref().map(|r| AuditResource { kind: r.kind.clone(), id: r.id.clone() }),
        ip: v.ip.map(|i| i.to_string()),
        user_agent: v.user_agent.clone(),
        request_id: v.request_id.clone(),
        details: v.details.clone(),
        prev_hash: e.prev_hash.as_deref().map(hex::encode),
        hash: e.hash.as_deref().map(hex::encode),
    }
}

/// Events matching the filter, newest first, a page at a time. Needs `audit:read`; the read
/// is recorded (`audit.read`, with the filter).
#[utoipa::path(get, path = "/v1/admin/audit", tag = "audit", operation_id = "listAuditEvents", security(("bearer" = []), ("api_key" = [])),
    params(FilterQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditPage,
            headers(("Deprecation" = String, description = "Only when `limit` is over 500 (RFC 9745)"),
                    ("Sunset" = String, description = "Only when `limit` is over 500 (RFC 8594)"))),
        (status = 400, description = "`validation_failed`: a filter value, the cursor or the limit", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AuditRead>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let filter = q.parse(&["cursor", "limit"], &mut errors);
    let cursor = q.cursor.as_ref().and_then(|c| match c.parse::<i64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.push(paging::invalid_cursor());
            None
        }
    });
    // Up to 1000 was the audit log's own maximum before every list took at most 500.
    let limit = paging::limit_of(q.limit, 1000, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors).into());
    }
    let (events, next) = service::query(&state, guard.caller.actor(), &ctx, &filter, cursor, limit).await?;
    let page = AuditPage { items: events.iter().map(view).collect(), next_cursor: next.map(|n| n.to_string()) };
    let mut res = axum::Json(page).into_response();
    if limit > paging::MAX_LIMIT {
        deprecation::AUDIT_LIMIT_OVER_500.mark(res.headers_mut(), &state.metrics);
    }
    Ok(res)
}

/// Counts of the events matching the filter, by action and outcome. Needs `audit:read`; the
/// read is recorded.
#[utoipa::path(get, path = "/v1/admin/audit/stats", tag = "audit", security(("bearer" = []), ("api_key" = [])),
    params(FilterQuery),
    responses(
        (status = 200, description = "Counts", body = AuditStats),
        (status = 400, description = "`validation_failed`: a filter value", body = Problem),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AuditRead>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<axum::Json<AuditStats>, ApiError> {
    let mut errors = Vec::new();
    let filter = q.parse(&[], &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors).into());
    }
    let rows = service::stats(&state, guard.caller.actor(), &ctx, &filter).await?;
    Ok(axum::Json(AuditStats {
        since: filter.since.map(crate::views::rfc3339),
        until: filter.until.map(crate::views::rfc3339),
        total: rows.iter().map(|r| r.2).sum(),
        items: rows.into_iter().map(|(action, outcome, count)| AuditCount { action, outcome, count }).collect(),
    }))
}

/// The events matching the filter, oldest first, streamed as JSON Lines (the event shape of
/// `GET /v1/admin/audit`, one per line) or CSV (a header row, then one row per event), in
/// constant memory however many there are. Needs `audit:export`; counts against the
/// administrator's `[exports]` rate limit (429 with `Retry-After`); more rows than
/// `exports.approval_threshold_rows` is refused with 403 `export_approval_required` (request
/// it with `POST /v1/admin/exports` instead); recorded (`audit.exported`, with the filter and
/// the row count) before the first byte. The rows are those up to the newest event when the
/// request came.
#[utoipa::path(get, path = "/v1/admin/audit/export", tag = "audit", operation_id = "exportAuditLog", security(("bearer" = []), ("api_key" = [])),
    params(FilterQuery),
    responses(
        (status = 200, description = "The events: JSON Lines (`format=jsonl`, the default) or CSV (`format=csv`)", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`validation_failed`: the format or a filter value", body = Problem),
        (status = 403, description = "Lacks audit:export, or `export_approval_required`: over the threshold", body = Problem),
        (status = 429, description = "`rate_limited`: the administrator's export limit", body = Problem),
    ))]
pub async fn export(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AuditExport>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let filter = q.parse(&["format"], &mut errors);
    let format = match q.format.as_deref() {
        None | Some("jsonl") => Some(ExportFormat::JsonLines),
        Some("csv") => Some(ExportFormat::Csv),
        Some(_) => {
            errors.push(FieldProblem::new("format", "invalid_format", "jsonl or csv"));
            None
        }
    };
    let (Some(format), true) = (format, errors.is_empty()) else {
        return Err(ServiceError::Validation(errors).into());
    };
    let limiter = &state.shield.rate_limits.limiter;
    let stream = service::export(&state, limiter, &guard.caller, Some(&ctx), filter, format).await?;
    let name = format!("attachment; filename=\"rampart-audit.{}\"", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Verifies the audit log's hash chain and its signed checkpoints: any edited, deleted,
/// inserted or re-ordered event is found and the first bad `seq` named; a chain rewritten
/// whole (every hash recomputed) fails at the first checkpoint it no longer matches. Needs
/// `audit:read`; the check is itself recorded.
#[utoipa::path(get, path = "/v1/admin/audit/verify", tag = "audit", operation_id = "verifyAuditLog", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The verdict", body = AuditVerification)))]
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AuditRead>,
) -> Result<axum::Json<AuditVerification>, ApiError> {
    let r = service::verify(&state, guard.caller.actor(), Some(&ctx)).await?;
    Ok(axum::Json(crate::views::verification(&r)))
}

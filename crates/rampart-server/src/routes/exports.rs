//! `/v1/admin/exports`: bulk exports under control. Requesting and downloading need the
//! kind's permission (`users:export_list`, `audit:export`; checked by the use case, since the
//! kind is in the body or the export); listing and reading `exports:read`; approving
//! `exports:approve`, by an administrator other than the requester.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::{Caller, ExportsApprove, ExportsRead, Guard};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::{ApiJson, ApiQuery};
use crate::routes::audit::FilterQuery;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::services::audit::ExportFormat;
use rampart_core::services::exports::{self, Export, ExportFilter};
use rampart_core::{FieldProblem, RequestContext, ServiceError};
use rampart_domain::export::{ExportKind, ExportStatus};
use rampart_wire::{ExportList, ExportRequest, ExportView, Problem};
use serde::Deserialize;

fn view(e: &Export) -> ExportView {
    let t = crate::views::rfc3339;
    ExportView {
        id: e.id.to_string(),
        kind: e.kind.as_str().into(),
        format: e.format.as_str().into(),
        status: e.status.as_str().into(),
        rows: e.rows,
        filter: e.filter.clone(),
        as_of: t(e.as_of),
        requested_by: e.requested_by.to_string(),
        approved_by: e.approved_by.map(|u| u.to_string()),
        approved_at: e.approved_at.map(t),
        downloaded_at: e.downloaded_at.map(t),
        created_at: t(e.created_at),
        expires_at: t(e.expires_at),
    }
}

/// The filter of a users export.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFilter {
    q: Option<String>,
}

/// Reads the body's kind, format and filter, reporting every bad field at once.
fn parse(req: ExportRequest) -> Result<(ExportFilter, ExportFormat), ApiError> {
    let mut errors = Vec::new();
    let format = match req.format.as_deref() {
        None => Some(ExportFormat::JsonLines),
        Some(f) => {
            let parsed = ExportFormat::parse(f);
            if parsed.is_none() {
                errors.push(FieldProblem::new("format", "invalid_format", "jsonl or csv"));
            }
            parsed
        }
    };
    let raw = req.filter.unwrap_or_else(|| serde_json::json!({}));
    let bad_filter = |e: serde_json::Error| FieldProblem::new("filter", "invalid_filter", e.to_string());
    let filter = match ExportKind::parse(&req.kind) {
        None => {
            errors.push(FieldProblem::new("kind", "invalid_kind", "users or audit"));
            None
        }
        Some(ExportKind::Users) => match serde_json::from_value::<UsersFilter>(raw) {
            Ok(f) => Some(ExportFilter::Users { q: f.q.filter(|q| !q.is_empty()) }),
            Err(e) => {
                errors.push(bad_filter(e));
                None
            }
        },
        Some(ExportKind::Audit) => match serde_json::from_value::<FilterQuery>(raw) {
            Ok(q) => {
                let mut problems = Vec::new();
                let f = q.parse(&[], &mut problems);
                errors.extend(problems.into_iter().map(|mut p| {
                    p.field = format!("filter.{}", p.field);
                    p
                }));
                Some(ExportFilter::Audit(f))
            }
            Err(e) => {
                errors.push(bad_filter(e));
                None
            }
        },
    };
    match (filter, format) {
        (Some(filter), Some(format)) if errors.is_empty() => Ok((filter, format)),
        _ => Err(ServiceError::Validation(errors).into()),
    }
}

/// Requests a bulk export. Needs the kind's permission (`users:export_list` or
/// `audit:export`) and counts against the administrator's `[exports]` rate limit. The rows are
/// counted now with the filter frozen (audit events up to the newest one, accounts created by
/// now): the download holds exactly these. Over `exports.approval_threshold_rows` the export
/// waits for a second administrator (`pending_approval`); otherwise it is `ready`. Recorded
/// as `export.requested` with the filter and the row count.
#[utoipa::path(post, path = "/v1/admin/exports", tag = "admin", operation_id = "createExport",
    security(("bearer" = []), ("api_key" = [])),
    request_body = ExportRequest,
    responses(
        (status = 201, description = "The export: `ready` or `pending_approval`", body = ExportView),
        (status = 400, description = "`validation_failed`: kind, format or a filter value", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks the kind's permission", body = Problem, content_type = PROBLEM_JSON),
        (status = 429, description = "`rate_limited`: the administrator's export limit (`Retry-After`)", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn create_export(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<(StatusCode, axum::Json<ExportView>), ApiError> {
    let (filter, format) = parse(req)?;
    let limiter = &state.shield.rate_limits.limiter;
    let e = exports::create(&state, limiter, &ctx, &caller, filter, format).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&e))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportListQuery {
    /// Only exports in this status: `pending_approval` (what waits for an approver), `ready`,
    /// `downloaded` or `expired`.
    #[param(nullable)]
    pub status: Option<String>,
    /// Items per page: default 50, 1 to 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The exports, newest first (at most 200). Needs `exports:read`.
#[utoipa::path(get, path = "/v1/admin/exports", tag = "admin", operation_id = "listExports",
    security(("bearer" = []), ("api_key" = [])),
    params(ExportListQuery),
    responses(
        (status = 200, description = "The exports", body = ExportList),
        (status = 400, description = "`validation_failed`: the status", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks exports:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn list_exports(
    State(state): State<AppState>,
    _guard: Guard<ExportsRead>,
    ApiQuery(q): ApiQuery<ExportListQuery>,
) -> Result<axum::Json<ExportList>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ExportStatus::parse(s).ok_or_else(|| {
            ServiceError::field("status", "invalid_status", "pending_approval, ready, downloaded or expired")
        })?),
    };
    let all = exports::list(&state, status).await?;
    let asked = ListQuery { limit: q.limit, cursor: q.cursor };
    let (page, next_cursor) = paging::by_uuid(all, &asked, Order::Descending, |e| e.id)?;
    Ok(axum::Json(ExportList { items: page.iter().map(view).collect(), next_cursor }))
}

/// One export. Needs `exports:read`.
#[utoipa::path(get, path = "/v1/admin/exports/{id}", tag = "admin", operation_id = "getExport",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The export", body = ExportView),
        (status = 403, description = "Lacks exports:read", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such export", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn get_export(
    State(state): State<AppState>,
    _guard: Guard<ExportsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<ExportView>, ApiError> {
    Ok(axum::Json(view(&exports::get(&state, &id).await?)))
}

/// Approves an export waiting for approval. Needs `exports:approve`, and an administrator
/// other than the requester (403 `export_self_approval`, also through another of the
/// requester's API keys). Its download window starts now. Recorded as `export.approved`.
#[utoipa::path(post, path = "/v1/admin/exports/{id}/approve", tag = "admin", operation_id = "approveExport",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 204, description = "Approved: its requester may download it, once"),
        (status = 403, description = "Lacks exports:approve, or `export_self_approval`", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such export", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`export_not_pending`: approved already, or ready without approval", body = Problem, content_type = PROBLEM_JSON),
        (status = 410, description = "`export_expired`", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn approve_export(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<ExportsApprove>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    exports::approve(&state, &ctx, &guard.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Downloads a ready export, once, streamed: JSON Lines (one event, or one account, per line)
/// or CSV. Only its requester, still holding the kind's permission; recorded as
/// `export.downloaded` before the first byte. The rows are those counted when it was
/// requested.
#[utoipa::path(get, path = "/v1/admin/exports/{id}/download", tag = "admin", operation_id = "downloadExport",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The rows: JSON Lines or CSV, as the export was requested", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 403, description = "Lacks the kind's permission, or `export_not_requester`", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such export", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`export_pending_approval`: not approved yet", body = Problem, content_type = PROBLEM_JSON),
        (status = 410, description = "`export_downloaded` (an export is downloaded once) or `export_expired`", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn download_export(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (e, stream) = exports::download(&state, &ctx, &caller, &id).await?;
    let name = format!("attachment; filename=\"rampart-{}-{}.{}\"", e.kind.as_str(), e.id, e.format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, e.format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

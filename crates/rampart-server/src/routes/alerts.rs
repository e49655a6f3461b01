//! `/v1/admin/alerts`: threshold rules over the audit log (`alerts:read`, `alerts:write`).
//! Built-in rules ship enabled and may be changed or disabled, not removed.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::{AlertsRead, AlertsWrite, Guard};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::{ApiJson, ApiQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_core::services::alerts::{self, RuleInput};
use rampart_core::{FieldProblem, RequestContext, ServiceError};
use rampart_domain::alert::Channel;
use rampart_store::StoredAlertRule;
use rampart_wire::{AlertChannel, AlertMatch, AlertRuleList, AlertRuleRequest, AlertRuleView, AlertThreshold, Problem};
use uuid::Uuid;

fn id_of(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn view(r: &StoredAlertRule) -> AlertRuleView {
    let channels = alerts::parsed(r).map(|(_, c)| c).unwrap_or_default();
    AlertRuleView {
        id: r.id.to_string(),
        name: r.name.clone(),
        matcher: AlertMatch { action: r.action.clone(), outcome: r.outcome.clone(), severity: r.severity.clone() },
        threshold: AlertThreshold { count: r.count as u32, window_secs: r.window_secs as u32 },
        channels: channels
            .into_iter()
            .map(|c| match c {
                Channel::Email(a) => AlertChannel::Email(a),
                Channel::Webhook(id) => AlertChannel::Webhook(id.to_string()),
            })
            .collect(),
        cooldown_secs: r.cooldown_secs as u32,
        enabled: r.enabled,
        builtin: r.builtin,
        last_fired_at: r.last_fired_at.map(rfc3339),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

fn input(req: AlertRuleRequest) -> Result<RuleInput, ServiceError> {
    let mut channels = Vec::new();
    for c in req.channels {
        channels.push(match c {
            AlertChannel::Email(a) => Channel::Email(a),
            AlertChannel::Webhook(id) => Channel::Webhook(id.parse().map_err(|_| {
                ServiceError::Validation(vec![FieldProblem::new(
                    "channels",
                    "unknown_webhook",
                    format!("{id:?} is not a webhook endpoint's id"),
                )])
            })?),
        });
    }
    Ok(RuleInput {
        name: req.name,
        action: req.matcher.action,
        outcome: req.matcher.outcome,
        severity: req.matcher.severity,
        count: req.threshold.count,
        window_secs: req.threshold.window_secs,
        cooldown_secs: req.cooldown_secs,
        channels,
        enabled: req.enabled,
    })
}

/// Every rule, built-in ones first.
#[utoipa::path(get, path = "/v1/admin/alerts", tag = "alerts", operation_id = "listAlerts",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The rules", body = AlertRuleList),
        (status = 401, description = "No valid credential", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks alerts:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn list_alerts(
    State(state): State<AppState>,
    _guard: Guard<AlertsRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<AlertRuleList>, ApiError> {
    let all = alerts::list(&state).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Ascending, |r| r.id)?;
    Ok(axum::Json(AlertRuleList { items: page.iter().map(view).collect(), next_cursor }))
}

/// Adds a rule.
#[utoipa::path(post, path = "/v1/admin/alerts", tag = "alerts", operation_id = "createAlert",
    security(("bearer" = []), ("api_key" = [])),
    request_body = AlertRuleRequest,
    responses(
        (status = 201, description = "The rule", body = AlertRuleView),
        (status = 400, description = "validation_failed: `invalid_event_filter`, `out_of_range`, `invalid_email`, `unknown_webhook`…", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks alerts:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn create_alert(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AlertsWrite>,
    ApiJson(req): ApiJson<AlertRuleRequest>,
) -> Result<(StatusCode, axum::Json<AlertRuleView>), ApiError> {
    let rule = alerts::create(&state, Some(&ctx), guard.caller.actor(), input(req)?).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&rule))))
}

/// Replaces a rule (a built-in one too: its threshold, channels, cooldown, or `enabled`).
#[utoipa::path(put, path = "/v1/admin/alerts/{id}", tag = "alerts", operation_id = "putAlert",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The rule's id")),
    request_body = AlertRuleRequest,
    responses(
        (status = 200, description = "The rule as it is now", body = AlertRuleView),
        (status = 400, description = "validation_failed", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks alerts:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such rule", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn put_alert(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AlertsWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AlertRuleRequest>,
) -> Result<axum::Json<AlertRuleView>, ApiError> {
    let rule = alerts::replace(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?, input(req)?).await?;
    Ok(axum::Json(view(&rule)))
}

/// Removes a custom rule; a built-in one is `409` (disable it with `PUT` instead).
#[utoipa::path(delete, path = "/v1/admin/alerts/{id}", tag = "alerts", operation_id = "deleteAlert",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Lacks alerts:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such rule", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "A built-in rule", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn delete_alert(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<AlertsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    alerts::delete(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/v1/admin/ip-rules`: list, add and remove IP allow and block rules (`ip_rules:read`,
//! `ip_rules:write`). Changes apply on this instance at once and on the others within a second.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::{Guard, IpRulesRead, IpRulesWrite};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::{ApiJson, ApiQuery};
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_core::FieldProblem;
use rampart_core::RequestContext;
use rampart_core::ServiceError;
use rampart_core::services::ip_rules::{self, NewIpRule};
use rampart_wire::{IpRuleList, IpRuleRequest, IpRuleView, Problem};

/// Every rule, expired ones that are not purged yet included.
#[utoipa::path(get, path = "/v1/admin/ip-rules", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The rules, oldest first", body = IpRuleList),
        (status = 403, description = "Lacks ip_rules:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn list_ip_rules(
    State(state): State<AppState>,
    _guard: Guard<IpRulesRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<IpRuleList>, ApiError> {
    let rules = state.store.list_ip_rules().await?;
    let (page, next_cursor) = paging::by_uuid(rules, &q, Order::Ascending, |r| r.id)?;
    Ok(axum::Json(IpRuleList { items: page.iter().map(views::ip_rule_view).collect(), next_cursor }))
}

/// Adds an allow or block rule for a network, for every route or admin routes only.
#[utoipa::path(post, path = "/v1/admin/ip-rules", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    request_body = IpRuleRequest,
    responses(
        (status = 201, description = "The rule", body = IpRuleView),
        (status = 400, description = "validation_failed, naming each field", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks ip_rules:write", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn create_ip_rule(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<IpRulesWrite>,
    ApiJson(req): ApiJson<IpRuleRequest>,
) -> Result<(StatusCode, axum::Json<IpRuleView>), ApiError> {
    let expires_at = match req.expires_at.as_deref() {
        None => None,
        Some(s) => {
            Some(time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
                ServiceError::Validation(vec![FieldProblem::new(
                    "expires_at",
                    "invalid_datetime",
                    "an RFC 3339 date and time (2026-12-31T23:59:59Z)",
                )])
            })?)
        }
    };
    let input =
        NewIpRule { network: req.network, action: req.action, scope: req.scope, reason: req.reason, expires_at };
    let rule = ip_rules::create(&state, Some(&ctx), guard.caller.actor(), input).await?;
    Ok((StatusCode::CREATED, axum::Json(views::ip_rule_view(&rule))))
}

/// Removes a rule.
#[utoipa::path(delete, path = "/v1/admin/ip-rules/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such rule", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn delete_ip_rule(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<IpRulesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id.parse().map_err(|_| ApiError::NotFound)?;
    if ip_rules::remove(&state, Some(&ctx), guard.caller.actor(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

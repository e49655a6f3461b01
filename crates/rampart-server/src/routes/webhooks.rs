//! `/v1/admin/webhooks`: signed webhook endpoints (`webhooks:read`, `webhooks:write`), their
//! secrets, test deliveries and delivery logs. Deliveries follow Standard Webhooks.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::{Guard, WebhooksRead, WebhooksWrite};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::{ApiJson, ApiQuery};
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_core::services::webhooks::{self, EndpointInput};
use rampart_core::{RequestContext, ServiceError};
use rampart_wire::{
    Problem, RotateSecretRequest, RotateSecretResponse, WebhookAttemptList, WebhookCreated, WebhookList, WebhookPatch,
    WebhookQueued, WebhookRequest, WebhookView,
};
use serde::Deserialize;
use uuid::Uuid;

fn id_of(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// Every endpoint.
#[utoipa::path(get, path = "/v1/admin/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "No valid credential", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks webhooks:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    _guard: Guard<WebhooksRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<WebhookList>, ApiError> {
    let all = webhooks::list(&state).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Ascending, |w| w.id)?;
    Ok(axum::Json(WebhookList { items: page.iter().map(views::webhook_view).collect(), next_cursor }))
}

/// Adds an endpoint. Its signing secret is in this answer only.
#[utoipa::path(post, path = "/v1/admin/webhooks", tag = "webhooks", operation_id = "createWebhook",
    security(("bearer" = []), ("api_key" = [])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "The endpoint and its secret", body = WebhookCreated),
        (status = 400, description = "validation_failed: `invalid_url`, `address_refused`, `invalid_event_filter`…", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid credential", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    ApiJson(req): ApiJson<WebhookRequest>,
) -> Result<(StatusCode, axum::Json<WebhookCreated>), ApiError> {
    let input = EndpointInput {
        url: Some(req.url),
        events: Some(req.events),
        description: req.description,
        enabled: req.enabled,
        format: req.format,
    };
    let (w, secret) = webhooks::create(&state, Some(&ctx), guard.caller.actor(), input).await?;
    Ok((StatusCode::CREATED, axum::Json(WebhookCreated { webhook: views::webhook_view(&w), secret })))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/admin/webhooks/{id}", tag = "webhooks", operation_id = "getWebhook",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 403, description = "Lacks webhooks:read", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    _guard: Guard<WebhooksRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let w = webhooks::get(&state, id_of(&id)?).await?;
    Ok(axum::Json(views::webhook_view(&w)))
}

/// Changes an endpoint: only the fields sent.
#[utoipa::path(patch, path = "/v1/admin/webhooks/{id}", tag = "webhooks", operation_id = "updateWebhook",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The endpoint as it is now", body = WebhookView),
        (status = 400, description = "validation_failed", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn update_webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WebhookPatch>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let input = EndpointInput {
        url: req.url,
        events: req.events,
        description: req.description,
        enabled: req.enabled,
        format: req.format,
    };
    let w = webhooks::update(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?, input).await?;
    Ok(axum::Json(views::webhook_view(&w)))
}

/// Removes an endpoint, its pending deliveries and its log.
#[utoipa::path(delete, path = "/v1/admin/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret. The old one keeps signing beside the new one for
/// `grace_seconds` (default a day), so receivers can switch without losing a delivery.
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotateWebhookSecret",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = RotateSecretRequest,
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotateSecretResponse),
        (status = 400, description = "validation_failed (`grace_seconds` out of range)", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    Path(id): Path<String>,
    body: Option<ApiJson<RotateSecretRequest>>,
) -> Result<axum::Json<RotateSecretResponse>, ApiError> {
    let grace = body.and_then(|ApiJson(b)| b.grace_seconds);
    let secret = webhooks::rotate_secret(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?, grace).await?;
    Ok(axum::Json(RotateSecretResponse { secret }))
}

/// Queues a `webhook.test` event for this endpoint alone.
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/test", tag = "webhooks", operation_id = "testWebhook",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "Queued", body = WebhookQueued),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn test_webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<WebhookQueued>), ApiError> {
    let event = webhooks::send_test(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(WebhookQueued { event_id: Some(event.to_string()) })))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `delivered` or `failed`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Default 50, at most 500.
    pub limit: Option<u32>,
}

/// The endpoint's delivery log, newest attempt first.
#[utoipa::path(get, path = "/v1/admin/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "Attempts", body = WebhookAttemptList),
        (status = 400, description = "validation_failed", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks webhooks:read", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such endpoint", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    _guard: Guard<WebhooksRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<axum::Json<WebhookAttemptList>, ApiError> {
    let mut errors = Vec::new();
    let limit = paging::limit_of(q.limit, paging::MAX_LIMIT, &mut errors);
    let cursor = match q.cursor.as_deref() {
        None => None,
        Some(c) => match c.parse::<Uuid>() {
            Ok(u) => Some(u),
            Err(_) => {
                errors.push(paging::invalid_cursor());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors).into());
    }
    let (items, next) = webhooks::deliveries(&state, id_of(&id)?, q.status.as_deref(), cursor, limit).await?;
    Ok(axum::Json(WebhookAttemptList {
        items: items.iter().map(views::webhook_attempt_view).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// Queues the message of a logged attempt again (the same `webhook-id`), due now.
#[utoipa::path(post, path = "/v1/admin/webhooks/deliveries/{id}/redeliver", tag = "webhooks", operation_id = "redeliverWebhook",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "An attempt's id, from a delivery log")),
    responses(
        (status = 202, description = "Queued", body = WebhookQueued),
        (status = 403, description = "Lacks webhooks:write", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such attempt", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn redeliver_webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<WebhookQueued>), ApiError> {
    webhooks::redeliver(&state, Some(&ctx), guard.caller.actor(), id_of(&id)?).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(WebhookQueued { event_id: None })))
}

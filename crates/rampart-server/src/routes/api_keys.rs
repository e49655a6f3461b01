//! `/v1/me/api-keys` (the caller's own keys) and `/v1/keys/verify` (for backends).

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::{Authenticated, Caller};
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::views::rfc3339;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::services::api_keys as keys;
use rampart_core::{RequestContext, ServiceError};
use rampart_domain::apikey::ApiKey;
use rampart_domain::{Actor, UserId};
use rampart_store::StoredApiKey;
use rampart_wire::{
    ApiKeyList, ApiKeyUsage, ApiKeyView, CreateApiKeyRequest, CreatedApiKey, InvalidKey, Problem, RateLimitSpec,
    RateLimitState, RotateApiKeyRequest, UsageHour, ValidKey, VerifyKeyRequest, VerifyKeyResponse,
};
use serde::Deserialize;
use uuid::Uuid;

fn limit_of(k: &StoredApiKey) -> Option<RateLimitSpec> {
    match (k.rate_limit_requests, k.rate_limit_per_seconds) {
        (Some(r), Some(p)) => Some(RateLimitSpec {
            requests: u32::try_from(r).unwrap_or(u32::MAX),
            per_seconds: u32::try_from(p).unwrap_or(u32::MAX),
        }),
        _ => None,
    }
}

fn view(k: &StoredApiKey) -> ApiKeyView {
    ApiKeyView {
        id: k.id.to_string(),
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        scopes: k.scopes.clone(),
        expires_at: k.expires_at.map(rfc3339),
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        rate_limit: limit_of(k),
    }
}

fn created(k: &StoredApiKey, secret: &ApiKey) -> Response {
    let body = CreatedApiKey {
        id: k.id.to_string(),
        key: rampart_wire::Sensitive(secret.expose().to_string()),
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        scopes: k.scopes.clone(),
        expires_at: k.expires_at.map(rfc3339),
        created_at: rfc3339(k.created_at),
        rate_limit: limit_of(k),
    };
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    res
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

/// Creates a key. Its scopes must be within the caller's permissions; the key is shown once.
#[utoipa::path(post, path = "/v1/me/api-keys", tag = "api-keys", security(("bearer" = []), ("cookie" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; `key` is shown this once", body = CreatedApiKey),
        (status = 400, description = "`validation_failed` (`scope_not_held`, `scope_invalid`, …)", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let new = keys::NewKey {
        name: req.name,
        scopes: req.scopes,
        expires_in_days: req.expires_in_days,
        rate_limit: req.rate_limit.map(|r| keys::KeyRateLimit { requests: r.requests, per_seconds: r.per_seconds }),
    };
    let password = req.password.as_ref().map(|p| p.0.as_str());
    let (key, secret) = keys::create_own(&state, &ctx, &auth, password, new).await?;
    Ok(created(&key, &secret))
}

/// The caller's keys (never the secrets), with `last_used_at`.
#[utoipa::path(get, path = "/v1/me/api-keys", tag = "api-keys", operation_id = "listApiKeys", security(("bearer" = []), ("cookie" = [])),
    params(ListQuery),
    responses((status = 200, description = "Keys, oldest first", body = ApiKeyList)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<ApiKeyList>, ApiError> {
    let all = keys::list_own(&state, &auth).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Ascending, |k| k.id)?;
    Ok(axum::Json(ApiKeyList { items: page.iter().map(view).collect(), next_cursor }))
}

/// Revokes one of the caller's keys; it fails verification on the very next request.
#[utoipa::path(delete, path = "/v1/me/api-keys/{id}", tag = "api-keys", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such key of the caller", body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if !keys::revoke(&state, auth.user_id, id, Actor::User(auth.user_id.0), Some(&ctx)).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every key of the caller ("I leaked something").
#[utoipa::path(delete, path = "/v1/me/api-keys", tag = "api-keys", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "All revoked")))]
pub async fn revoke_all(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    keys::revoke_all(&state, &ctx, auth.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a key with a new one (same name, scopes and limit). The old key keeps working for
/// `grace_seconds` (default 0), then stops.
#[utoipa::path(post, path = "/v1/me/api-keys/{id}/rotate", tag = "api-keys", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Key id")), request_body = RotateApiKeyRequest,
    responses(
        (status = 201, description = "The new key, shown this once", body = CreatedApiKey),
        (status = 404, description = "No such live key of the caller", body = Problem),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RotateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let password = req.password.as_ref().map(|p| p.0.as_str());
    let (new, secret) = keys::rotate_own(&state, &ctx, &auth, password, id, req.grace_seconds.unwrap_or(0)).await?;
    Ok(created(&new, &secret))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339; default 7 days ago.
    #[param(nullable)]
    pub since: Option<String>,
    /// RFC 3339; default now.
    #[param(nullable)]
    pub until: Option<String>,
    /// Hours per page: default 50, 1 to 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Requests per hour of one of the caller's keys (counted in memory, written every 10 s).
#[utoipa::path(get, path = "/v1/me/api-keys/{id}/usage", tag = "api-keys", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Key id"), UsageQuery),
    responses((status = 200, description = "Hourly counts", body = ApiKeyUsage), (status = 404, description = "No such key of the caller", body = Problem)))]
pub async fn usage(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<ApiKeyUsage>, ApiError> {
    let id = parse_id(&id)?;
    let now = state.clock.now();
    let mut errors = Vec::new();
    let since = paging::time_param("since", q.since.as_deref(), &mut errors).unwrap_or(now - time::Duration::days(7));
    let until =
        paging::time_param("until", q.until.as_deref(), &mut errors).unwrap_or(now + time::Duration::seconds(1));
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors).into());
    }
    let page = ListQuery { limit: q.limit, cursor: q.cursor };
    let (_, rows) = keys::usage_own(&state, &auth, id, since, until).await?;
    let (rows, next_cursor) =
        paging::keyset(rows, &page, Order::Ascending, |(hour, _, _)| *hour, paging::parse_time, |h| rfc3339(*h))?;
    let items = rows
        .into_iter()
        .map(|(hour, requests, rejected)| UsageHour { hour: rfc3339(hour), requests, rejected })
        .collect();
    Ok(axum::Json(ApiKeyUsage { items, next_cursor }))
}

/// For backends: is this key valid (and does it hold `scope`)? Answers 200 either way; the
/// caller authenticates with an API key holding `keys:verify` (or a session with that
/// permission). Answered from memory after a key's first lookup; a revoked key fails at once.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "api-keys", operation_id = "verifyApiKey", security(("api_key" = []), ("bearer" = [])),
    request_body = VerifyKeyRequest,
    responses(
        (status = 200, description = "`{valid: true, …}` or `{valid: false, code}`", body = VerifyKeyResponse),
        (status = 401, description = "Caller not authenticated", body = Problem),
        (status = 403, description = "Caller lacks `keys:verify`", body = Problem),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    ApiJson(req): ApiJson<VerifyKeyRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorded(&state, &ctx, "keys:verify").await?;
    let ratelimit = |l: Option<keys::LimitState>| {
        l.map(|l| RateLimitState { limit: l.limit, remaining: l.remaining, reset_seconds: l.reset.as_secs() })
    };
    let answer = match keys::verify(&state, &req.key.0, req.scope.as_deref()).await {
        // Without a limit of its own, the answer is a function of the key's lookup alone.
        Ok((p, None)) => {
            let body = state
                .rendered_keys
                .body(p.key.id, p, |p| serde_json::to_vec(&valid_key(p, None)))
                .map_err(ServiceError::internal)?;
            return Ok(crate::views::json_response(body));
        }
        Ok((p, limit)) => valid_key(&p, ratelimit(limit)),
        Err((code, _, limit)) => {
            VerifyKeyResponse::Invalid(InvalidKey { valid: false, code: code.into(), ratelimit: ratelimit(limit) })
        }
    };
    Ok(axum::Json(answer).into_response())
}

/// `{valid: true, …}` for a key that verified: its scopes as far as its owner still holds them.
fn valid_key(p: &keys::KeyPrincipal, ratelimit: Option<RateLimitState>) -> VerifyKeyResponse {
    VerifyKeyResponse::Valid(ValidKey {
        valid: true,
        key_id: p.key.id.to_string(),
        owner_id: UserId(p.key.user_id).0.to_string(),
        scopes: p
            .key
            .scopes
            .iter()
            .filter(|s| rampart_domain::apikey::covers(&p.owner_permissions, s))
            .cloned()
            .collect(),
        expires_at: p.key.expires_at.map(rfc3339),
        ratelimit,
    })
}

//! `/v1/me/*`: the caller's own account and sessions.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::views::session_view;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_core::RequestContext;
use rampart_core::ServiceError;
use rampart_core::services::{notifications, passwords, privacy, sessions};
use rampart_domain::SessionId;
use rampart_wire::{
    ChangePasswordRequest, NotificationPreferences, NotificationPreferencesUpdate, Problem, SessionList, UserEnvelope,
};
use serde::Deserialize;

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The account", body = UserEnvelope), (status = 401, description = "Not logged in", body = Problem)))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<axum::response::Response, ApiError> {
    let (user, mfa) = sessions::account(&state, &auth).await?;
    let body = state.rendered_accounts.account(user, mfa).map_err(ServiceError::internal)?;
    Ok(crate::views::json_response(body))
}

/// Changes the password. Needs the current one (failures count toward the login lockout);
/// other sessions end unless `keep_other_sessions`.
#[utoipa::path(post, path = "/v1/me/password", tag = "me", security(("bearer" = []), ("cookie" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "`validation_failed`: `password_incorrect`, `password_reused`, policy codes", body = Problem),
        (status = 429, description = "`too_many_attempts`", body = Problem),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    passwords::change_password(
        &state,
        &ctx,
        &auth,
        &req.current_password.0,
        &req.new_password.0,
        req.keep_other_sessions,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions, newest first, with the device each was opened from.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(ListQuery),
    responses((status = 200, description = "Sessions", body = SessionList)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<SessionList>, ApiError> {
    let all = sessions::list(&state, &auth).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Descending, |s| s.id.0)?;
    let items = page.iter().map(|s| session_view(s, s.id == auth.session.id)).collect();
    Ok(axum::Json(SessionList { items, next_cursor }))
}

/// Ends one of the caller's sessions (at once, on Rampart's own endpoints).
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such live session of the caller", body = Problem)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id.parse().map(SessionId).map_err(|_| ServiceError::NotFound)?;
    sessions::revoke_own(&state, &ctx, &auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevokeAllQuery {
    /// Keep the session making this request.
    #[serde(default)]
    pub keep_current: bool,
}

/// "Log out everywhere": ends every session of the caller, optionally but this one.
#[utoipa::path(delete, path = "/v1/me/sessions", tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(RevokeAllQuery), responses((status = 204, description = "Revoked")))]
pub async fn revoke_all_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<RevokeAllQuery>,
) -> Result<StatusCode, ApiError> {
    sessions::revoke_all_own(&state, &ctx, &auth, q.keep_current).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn preferences_view(p: rampart_domain::notice::Preferences) -> NotificationPreferences {
    use rampart_domain::notice::{Category, NoticeKind};
    NotificationPreferences {
        new_sign_in: p.new_sign_in,
        security_changes: p.security_changes,
        always_on: NoticeKind::ALL
            .into_iter()
            .filter(|k| k.category() == Category::Critical)
            .map(|k| k.as_str().to_string())
            .collect(),
    }
}

/// The security e-mails the caller gets. Critical ones (password, second factors removed,
/// lockouts, an administrator's changes) always go.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "me", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Preferences", body = NotificationPreferences),
        (status = 401, description = "Not logged in", body = Problem),
    ))]
pub async fn notifications(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<axum::Json<NotificationPreferences>, ApiError> {
    let prefs = notifications::preferences(&state, auth.user_id).await?;
    Ok(axum::Json(preferences_view(prefs)))
}

/// Turns the optional security e-mails on or off (only the fields sent change).
#[utoipa::path(put, path = "/v1/me/notifications", tag = "me", security(("bearer" = []), ("cookie" = [])),
    request_body = NotificationPreferencesUpdate,
    responses(
        (status = 200, description = "Preferences as they are now", body = NotificationPreferences),
        (status = 400, description = "`validation_failed` (an unknown field, such as a critical notice)", body = Problem),
        (status = 401, description = "Not logged in", body = Problem),
    ))]
pub async fn set_notifications(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<NotificationPreferencesUpdate>,
) -> Result<axum::Json<NotificationPreferences>, ApiError> {
    let change =
        notifications::PreferencesChange { new_sign_in: req.new_sign_in, security_changes: req.security_changes };
    let prefs = notifications::set_preferences(&state, &ctx, auth.user_id, change).await?;
    Ok(axum::Json(preferences_view(prefs)))
}

fn export_response(
    user: uuid::Uuid,
    stream: impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"rampart-personal-data-{user}.json\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Everything Rampart holds about the caller, as one JSON document (GDPR access and
/// portability): profile, sessions and devices, second factors' metadata, API keys' metadata
/// and usage, notification preferences, the e-mails sent, and the audit events about them.
/// Never a secret. Recorded as `user.exported`.
#[utoipa::path(get, path = "/v1/me/export", tag = "me", operation_id = "exportMe", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The document (`format`: `rampart.personal-data.v1`), streamed", content_type = "application/json", body = Object),
        (status = 401, description = "Not logged in", body = Problem),
    ))]
pub async fn export(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
) -> Result<axum::response::Response, ApiError> {
    let stream = privacy::export(&state, Some(&ctx), rampart_domain::Actor::User(auth.user_id.0), auth.user_id).await?;
    Ok(export_response(auth.user_id.0, stream))
}

/// The same document about any user, for an administrator (`users:export`); counts against
/// the administrator's `[exports]` rate limit (429 with `Retry-After`); recorded as
/// `user.exported` with the administrator as actor, the person as filter and one row.
#[utoipa::path(get, path = "/v1/admin/users/{id}/export", tag = "admin", operation_id = "exportUser", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The document, streamed", content_type = "application/json", body = Object),
        (status = 403, description = "Lacks users:export", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 429, description = "`rate_limited`: the administrator's export limit", body = Problem),
    ))]
pub async fn admin_export(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: crate::auth::Guard<crate::auth::UsersExport>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let limiter = &state.shield.rate_limits.limiter;
    let (user, stream) = rampart_core::services::exports::person(&state, limiter, &ctx, &guard.caller, &id).await?;
    Ok(export_response(user.0, stream))
}

fn erasure_view(e: privacy::Erasure) -> rampart_wire::ErasureScheduled {
    rampart_wire::ErasureScheduled {
        status: "scheduled".into(),
        erase_after: e.erase_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }
}

/// Asks for the caller's erasure (GDPR art. 17). The account is disabled at once (every session
/// ends, API keys stop working) and erased after `accounts.erasure_grace_days` (default 30)
/// unless an administrator restores it first. Erasure deletes the account and everything held
/// about it, and destroys the key its personal data in the audit log is sealed under: the events
/// stay in the verified chain with those fields unreadable. Re-authentication as for a second
/// factor change: the password, and a current `code` when the account has a second factor.
#[utoipa::path(delete, path = "/v1/me", tag = "me", operation_id = "deleteMe", security(("bearer" = []), ("cookie" = [])),
    request_body = rampart_wire::FactorReauth,
    responses(
        (status = 202, description = "Scheduled", body = rampart_wire::ErasureScheduled),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 401, description = "Not logged in", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<rampart_wire::FactorReauth>,
) -> Result<(StatusCode, axum::Json<rampart_wire::ErasureScheduled>), ApiError> {
    let erasure = privacy::request_own_erasure(&state, &ctx, &auth, crate::routes::mfa::reauth(&req)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(erasure_view(erasure))))
}

pub(crate) fn erasure_response(e: Option<privacy::Erasure>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match e {
        Some(e) => (StatusCode::ACCEPTED, axum::Json(erasure_view(e))).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

//! `/v1/me/*`: the caller's own account and sessions.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::views::{session_view, user_view_with};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_core::RequestContext;
use rampart_core::ServiceError;
use rampart_core::services::{notifications, passwords, sessions};
use rampart_domain::SessionId;
use rampart_wire::{
    ChangePasswordRequest, NotificationPreferences, NotificationPreferencesUpdate, Problem, SessionList, UserEnvelope,
};
use serde::Deserialize;

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The account", body = UserEnvelope), (status = 401, description = "Not logged in", body = Problem)))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<axum::Json<UserEnvelope>, ApiError> {
    let (user, mfa) = sessions::account(&state, &auth).await?;
    Ok(axum::Json(UserEnvelope { user: user_view_with(&user, &mfa) }))
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
    responses((status = 200, description = "Sessions", body = SessionList)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<axum::Json<SessionList>, ApiError> {
    let items = sessions::list(&state, &auth).await?.iter().map(|s| session_view(s, s.id == auth.session.id)).collect();
    Ok(axum::Json(SessionList { items, next_cursor: None }))
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

//! `/v1/me/*`: the caller's own account and sessions.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::events::RequestContext;
use crate::limits::ApiJson;
use crate::services::accounts;
use crate::views::{session_view, user_view_with};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rampart_domain::{Actor, SessionId};
use rampart_store::RevokeSessions;
use rampart_wire::{ChangePasswordRequest, Problem, SessionList, UserEnvelope};
use serde::Deserialize;

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The account", body = UserEnvelope), (status = 401, description = "Not logged in", body = Problem)))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<axum::Json<UserEnvelope>, ApiError> {
    let (user, mfa) = state.store.account(auth.user_id).await?.ok_or(ApiError::InvalidToken)?;
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
    accounts::change_password(
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
    let sessions = state.store.list_sessions(auth.user_id, state.clock.now()).await?;
    let items = sessions.iter().map(|s| session_view(s, s.id == auth.session.id)).collect();
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
    let id = id.parse().map(SessionId).map_err(|_| ApiError::NotFound)?;
    let ev = ctx
        .event(&state.events, rampart_domain::Action::SessionRevoked, rampart_domain::Outcome::Success)
        .actor(Actor::User(auth.user_id.0))
        .resource(rampart_domain::Resource::new("session", id))
        .details(serde_json::json!({ "reason": "user", "scope": "one" }));
    if state.store.revoke_session(auth.user_id, id, state.clock.now(), "user", &ev).await? {
        state.events.observed(&ev);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
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
    Query(q): Query<RevokeAllQuery>,
) -> Result<StatusCode, ApiError> {
    let which = if q.keep_current { RevokeSessions::AllExcept(auth.session.id) } else { RevokeSessions::All };
    accounts::revoke_sessions(&state, &ctx, Actor::User(auth.user_id.0), auth.user_id, which, "user").await?;
    Ok(StatusCode::NO_CONTENT)
}

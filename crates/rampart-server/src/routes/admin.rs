//! `/v1/admin/*` (permission-guarded): the account parts — unlock and revoke sessions.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::events::RequestContext;
use crate::services::accounts;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_domain::{Actor, User, UserId};
use rampart_store::RevokeSessions;
use rampart_wire::Problem;

async fn target(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id = id.parse().map(UserId).map_err(|_| ApiError::NotFound)?;
    state.store.get_user(id).await?.ok_or(ApiError::NotFound)
}

/// Lifts a login lockout of the user's address. Needs `users:write`.
#[utoipa::path(post, path = "/v1/admin/users/{id}/unlock", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 403, description = "Lacks `users:write`", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn unlock_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin.require(&state, "users:write").await?;
    let user = target(&state, &id).await?;
    accounts::unlock(&state, &ctx, &admin, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of the user. Needs `users:write`.
#[utoipa::path(delete, path = "/v1/admin/users/{id}/sessions", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Lacks `users:write`", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin.require(&state, "users:write").await?;
    let user = target(&state, &id).await?;
    accounts::revoke_sessions(&state, &ctx, Actor::User(admin.user_id.0), user.id, RevokeSessions::All, "admin")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/v1/admin/*` and `/v1/authz/check`. Every handler takes a [`Guard`] naming its permission,
//! so none can run for a caller without it (session or API key alike).

use super::paging::{self, ListQuery};
use crate::AppState;
use crate::auth::{Caller, Guard, RolesRead, RolesWrite, UsersDelete, UsersRead, UsersWrite};
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::views::user_view;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::admin;
use rampart_domain::{User, UserId};
use rampart_store::Role;
use rampart_wire::{
    AdminUserEnvelope, AdminUserList, AdminUserView, AuthzCheckRequest, AuthzCheckResponse, Problem, RoleList,
    RoleRequest, RoleView, UpdateUserRequest,
};
use serde::Deserialize;

fn admin_view(u: &User) -> AdminUserView {
    AdminUserView { user: user_view(u), disabled: u.disabled }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Part of the e-mail address or name.
    #[param(nullable)]
    pub q: Option<String>,
    /// Default 50, at most 500.
    #[param(nullable)]
    pub limit: Option<u32>,
    #[param(nullable)]
    pub cursor: Option<String>,
}

/// Lists or searches users. Needs `users:read`.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(UserListQuery), responses(
        (status = 200, description = "A page of users", body = AdminUserList),
        (status = 400, description = "`validation_failed`: `limit` `out_of_range` (1 to 500), `cursor` `invalid_cursor`", body = Problem),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersRead>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> Result<axum::Json<AdminUserList>, ApiError> {
    let after = match &q.cursor {
        Some(c) => Some(
            c.parse()
                .map(UserId)
                .map_err(|_| ApiError::from(rampart_core::ServiceError::Validation(vec![paging::invalid_cursor()])))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(paging::DEFAULT_LIMIT);
    let page = admin::list_users(&state, &ctx, &guard.caller, q.q.as_deref(), after, limit).await?;
    Ok(axum::Json(AdminUserList {
        items: page.users.iter().map(admin_view).collect(),
        next_cursor: page.next.map(|id| id.0.to_string()),
    }))
}

/// One user. Needs `users:read`.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = AdminUserEnvelope), (status = 404, description = "No such user", body = Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<AdminUserEnvelope>, ApiError> {
    let user = admin::get_user(&state, &ctx, &guard.caller, &id).await?;
    Ok(axum::Json(AdminUserEnvelope { user: admin_view(&user) }))
}

/// Changes a user's name, roles or disabled flag. Disabling ends every session and API key of
/// the user at once; a role change applies at once on Rampart's endpoints and to the user's
/// keys, and to access tokens at their next refresh. Needs `users:write`.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")), request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user", body = AdminUserEnvelope),
        (status = 400, description = "`validation_failed` (`unknown_role`, …)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<axum::Json<AdminUserEnvelope>, ApiError> {
    let changes = admin::UserChanges { name: req.name, roles: req.roles, disabled: req.disabled };
    let user = admin::update_user(&state, &ctx, &guard.caller, &id, changes).await?;
    Ok(axum::Json(AdminUserEnvelope { user: admin_view(&user) }))
}

/// `?immediately=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EraseQuery {
    /// Erase now instead of after `accounts.erasure_grace_days` (no restore possible).
    #[serde(default)]
    pub immediately: bool,
}

/// Erases a user (GDPR art. 17). By default as `DELETE /v1/me` does: disabled now, erased after
/// `accounts.erasure_grace_days`, restorable until then (202). `?immediately=true` erases at
/// once (204). Erasure deletes the account and everything held about it and destroys the key
/// its personal data in the audit log is sealed under. Needs `users:delete`.
#[utoipa::path(delete, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id"), EraseQuery),
    responses(
        (status = 202, description = "Scheduled", body = rampart_wire::ErasureScheduled),
        (status = 204, description = "Erased (`immediately`)"),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "`erasure_scheduled` (already) or `last_admin`", body = Problem),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersDelete>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EraseQuery>,
) -> Result<Response, ApiError> {
    let erasure = admin::delete_user(&state, &ctx, &guard.caller, &id, q.immediately).await?;
    Ok(crate::routes::me::erasure_response(erasure))
}

/// Takes back a scheduled erasure within its grace: the account is enabled again (its sessions
/// stay ended). Needs `users:delete`.
#[utoipa::path(post, path = "/v1/admin/users/{id}/restore", tag = "admin", operation_id = "restoreUser", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Restored"),
        (status = 404, description = "No such user (or already erased)", body = Problem),
        (status = 409, description = "`erasure_not_scheduled`", body = Problem),
    ))]
pub async fn restore_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersDelete>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::restore_user(&state, &ctx, &guard.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a login lockout of the user's address. Needs `users:write`.
#[utoipa::path(post, path = "/v1/admin/users/{id}/unlock", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 403, description = "Lacks `users:write`", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn unlock_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::unlock_user(&state, &ctx, &guard.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of the user. Needs `users:write`.
#[utoipa::path(delete, path = "/v1/admin/users/{id}/sessions", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Lacks `users:write`", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::revoke_user_sessions(&state, &ctx, &guard.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_view(r: &Role) -> RoleView {
    RoleView {
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: r.permissions.clone(),
        builtin: r.builtin,
    }
}

/// Every role with its permissions. Needs `roles:read`.
#[utoipa::path(get, path = "/v1/admin/roles", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses((status = 200, description = "Roles, in name order", body = RoleList)))]
pub async fn list_roles(
    State(state): State<AppState>,
    _guard: Guard<RolesRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<RoleList>, ApiError> {
    let roles = admin::list_roles(&state).await?;
    let (page, next_cursor) = paging::by_name(roles, &q, |r| r.name.clone())?;
    Ok(axum::Json(RoleList { items: page.iter().map(role_view).collect(), next_cursor }))
}

/// Creates a custom role. Needs `roles:write`.
#[utoipa::path(post, path = "/v1/admin/roles", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    request_body = RoleRequest,
    responses((status = 201, description = "Created", body = RoleView), (status = 409, description = "`role_exists`", body = Problem)))]
pub async fn create_role(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<RolesWrite>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<Response, ApiError> {
    let name = req.name.clone().unwrap_or_default();
    let role = admin::save_role(&state, &ctx, &guard.caller, &name, req.description, &req.permissions, true).await?;
    Ok((StatusCode::CREATED, axum::Json(role_view(&role))).into_response())
}

/// Creates or changes a custom role (built-in roles are fixed: 409 `role_builtin`). Needs
/// `roles:write`. Takes effect at once for its holders' permissions and keys.
#[utoipa::path(put, path = "/v1/admin/roles/{name}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("name" = String, Path, description = "Role name")), request_body = RoleRequest,
    responses((status = 200, description = "Saved", body = RoleView), (status = 409, description = "`role_builtin`", body = Problem)))]
pub async fn put_role(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<RolesWrite>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<axum::Json<RoleView>, ApiError> {
    if req.name.as_ref().is_some_and(|n| *n != name) {
        return Err(ApiError::InvalidRequest("the body's name differs from the path's".into()));
    }
    let role = admin::save_role(&state, &ctx, &guard.caller, &name, req.description, &req.permissions, false).await?;
    Ok(axum::Json(role_view(&role)))
}

/// Deletes a custom role; its holders lose it at once. Needs `roles:write`.
#[utoipa::path(delete, path = "/v1/admin/roles/{name}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("name" = String, Path, description = "Role name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such role", body = Problem),
        (status = 409, description = "`role_builtin`", body = Problem),
    ))]
pub async fn delete_role(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<RolesWrite>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::delete_role(&state, &ctx, &guard.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Does a subject hold a permission? Without `subject_id`, about the caller itself (for an API
/// key: its scopes within its owner's permissions). Asking about another user needs
/// `authz:check`.
#[utoipa::path(post, path = "/v1/authz/check", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    request_body = AuthzCheckRequest,
    responses(
        (status = 200, description = "The answer", body = AuthzCheckResponse),
        (status = 403, description = "Lacks `authz:check`", body = Problem),
        (status = 404, description = "`not_found`: no user has `subject_id`", body = Problem),
    ))]
pub async fn authz_check(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    ApiJson(req): ApiJson<AuthzCheckRequest>,
) -> Result<axum::Json<AuthzCheckResponse>, ApiError> {
    let allowed = admin::check(&state, &ctx, &caller, req.subject_id.as_deref(), &req.permission).await?;
    Ok(axum::Json(AuthzCheckResponse { allowed }))
}

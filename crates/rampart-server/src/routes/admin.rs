//! `/v1/admin/*` and `/v1/authz/check`. Every handler takes a [`Guard`] naming its permission,
//! so none can run for a caller without it (session or API key alike).

use crate::AppState;
use crate::auth::{Caller, Guard, RolesRead, RolesWrite, UsersDelete, UsersRead, UsersWrite};
use crate::error::ApiError;
use crate::events::RequestContext;
use crate::limits::ApiJson;
use crate::services::accounts;
use crate::views::user_view;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_domain::{Action, Outcome, Resource, RoleName, User, UserId, apikey, permission};
use rampart_store::{RevokeSessions, Role};
use rampart_wire::{
    AdminUserEnvelope, AdminUserList, AdminUserView, AuthzCheckRequest, AuthzCheckResponse, FieldError, Problem,
    RoleList, RoleRequest, RoleView, UpdateUserRequest,
};
use serde::Deserialize;

async fn target(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id = id.parse().map(UserId).map_err(|_| ApiError::NotFound)?;
    state.store.get_user(id).await?.ok_or(ApiError::NotFound)
}

/// Refuses (403 `exceeds_own_permissions`) unless the caller could itself hold every one of
/// `permissions`: nobody grants, or acts on a user holding, more than they have.
async fn within_ceiling(state: &AppState, caller: &Caller, permissions: &[String], what: &str) -> Result<(), ApiError> {
    for p in permissions {
        if !caller.covers(state, p).await? {
            return Err(ApiError::Forbidden {
                code: "exceeds_own_permissions",
                detail: format!("{what} needs {p:?}, which you do not hold"),
            });
        }
    }
    Ok(())
}

/// The permissions the given roles grant.
async fn permissions_of(state: &AppState, roles: &[String]) -> Result<Vec<String>, ApiError> {
    let all = state.store.list_roles().await?;
    Ok(all.into_iter().filter(|r| roles.contains(&r.name)).flat_map(|r| r.permissions).collect())
}

/// Refuses (409 `last_admin`) a change that would leave no enabled administrator.
async fn keep_an_admin(state: &AppState, user: &User, still_admin_after: bool) -> Result<(), ApiError> {
    let is_admin = !user.disabled && permissions_of(state, &user.roles).await?.iter().any(|p| p == "*");
    if is_admin && !still_admin_after && state.store.count_admins().await? <= 1 {
        return Err(ApiError::Conflict {
            code: "last_admin",
            detail: "this is the last enabled administrator; make another one first".into(),
        });
    }
    Ok(())
}

fn admin_view(u: &User) -> AdminUserView {
    AdminUserView { user: user_view(u), disabled: u.disabled }
}

fn field(name: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: name.into(), code: code.into(), message: message.into() }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Part of the e-mail address or name.
    pub q: Option<String>,
    /// Default 50, at most 500.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists or searches users. Needs `users:read`.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(UserListQuery), responses((status = 200, description = "A page of users", body = AdminUserList)))]
pub async fn list_users(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersRead>,
    Query(q): Query<UserListQuery>,
) -> Result<axum::Json<AdminUserList>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let after = match &q.cursor {
        Some(c) => Some(c.parse().map(UserId).map_err(|_| ApiError::InvalidRequest("bad cursor".into()))?),
        None => None,
    };
    let page = state.store.list_users(q.q.as_deref().filter(|s| !s.is_empty()), after, limit).await?;
    // Reading account data is data access on a sensitive endpoint: recorded.
    let ev = ctx
        .event(&state.events, Action::UserRead, Outcome::Success)
        .actor(guard.caller.actor())
        .details(serde_json::json!({ "view": "list", "query": q.q, "returned": page.users.len() }));
    state.events.record(ev).await?;
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
    let user = target(&state, &id).await?;
    let ev = ctx
        .event(&state.events, Action::UserRead, Outcome::Success)
        .actor(guard.caller.actor())
        .resource(Resource::new("user", user.id));
    state.events.record(ev).await?;
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
    let user = target(&state, &id).await?;
    let mut errors = Vec::new();
    let name = req.name.as_ref().map(|n| n.trim().to_string());
    if let Some(n) = &name
        && (n.chars().count() > crate::services::users::MAX_NAME_CHARS || n.chars().any(char::is_control))
    {
        errors.push(field("name", "name_invalid", "at most 200 characters, no control characters"));
    }
    let roles = match &req.roles {
        Some(roles) => {
            let mut out = Vec::new();
            for r in roles {
                match RoleName::parse(r) {
                    Ok(r) => out.push(r.as_str().to_string()),
                    Err(e) => errors.push(field("roles", "role_invalid", e.to_string())),
                }
            }
            out.sort();
            out.dedup();
            Some(out)
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Nobody acts on a user more powerful than themselves, or grants what they lack.
    within_ceiling(&state, &guard.caller, &permissions_of(&state, &user.roles).await?, "changing this user").await?;
    let new_permissions = match &roles {
        Some(r) => permissions_of(&state, r).await?,
        None => permissions_of(&state, &user.roles).await?,
    };
    if roles.is_some() {
        within_ceiling(&state, &guard.caller, &new_permissions, "granting these roles").await?;
    }
    let still_admin = req.disabled != Some(true) && new_permissions.iter().any(|p| p == "*");
    keep_an_admin(&state, &user, still_admin).await?;
    let roles_removed = roles.as_ref().is_some_and(|r| user.roles.iter().any(|old| !r.contains(old)));
    let ev = ctx
        .event(&state.events, Action::UserUpdated, Outcome::Success)
        .actor(guard.caller.actor())
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({
            "name_changed": name.is_some(),
            "roles": roles,
            "disabled": req.disabled,
            "roles_before": user.roles,
        }));
    let name_arg = name.as_deref().map(|n| if n.is_empty() { None } else { Some(n) });
    let now = state.clock.now();
    if !state.store.update_user(user.id, name_arg, roles.as_deref(), req.disabled, now, &ev).await? {
        return Err(ApiError::NotFound);
    }
    state.events.observed(&ev);
    state.api_keys.evict_user(user.id);
    if roles_removed && req.disabled != Some(true) {
        // Access tokens carry roles: end the sessions so no token outlives a lost role.
        accounts::revoke_sessions(&state, &ctx, guard.caller.actor(), user.id, RevokeSessions::All, "roles_changed")
            .await?;
    }
    let user = state.store.get_user(user.id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(AdminUserEnvelope { user: admin_view(&user) }))
}

/// Erases a user and everything held about them except the audit log (GDPR). Needs
/// `users:delete`.
#[utoipa::path(delete, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Erased"), (status = 404, description = "No such user", body = Problem)))]
pub async fn delete_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    guard: Guard<UsersDelete>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = target(&state, &id).await?;
    within_ceiling(&state, &guard.caller, &permissions_of(&state, &user.roles).await?, "erasing this user").await?;
    keep_an_admin(&state, &user, false).await?;
    let ev = ctx
        .event(&state.events, Action::UserDeleted, Outcome::Success)
        .actor(guard.caller.actor())
        .resource(Resource::new("user", user.id));
    if !state.store.delete_user(user.id, &ev).await? {
        return Err(ApiError::NotFound);
    }
    state.events.observed(&ev);
    state.api_keys.evict_user(user.id);
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
    let user = target(&state, &id).await?;
    accounts::unlock(&state, &ctx, guard.caller.actor(), &user).await?;
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
    let user = target(&state, &id).await?;
    accounts::revoke_sessions(&state, &ctx, guard.caller.actor(), user.id, RevokeSessions::All, "admin").await?;
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
    responses((status = 200, description = "Roles", body = RoleList)))]
pub async fn list_roles(
    State(state): State<AppState>,
    _guard: Guard<RolesRead>,
) -> Result<axum::Json<RoleList>, ApiError> {
    let roles = state.store.list_roles().await?;
    Ok(axum::Json(RoleList { items: roles.iter().map(role_view).collect() }))
}

fn validate_role(name: &str, permissions: &[String]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if RoleName::parse(name).is_err() {
        errors.push(field("name", "role_invalid", "lowercase letters, digits, - and _, starting with a letter"));
    }
    for p in permissions {
        if !apikey::is_valid_scope(p) {
            errors.push(field(
                "permissions",
                "permission_invalid",
                format!("{p:?} is not resource:action, resource:* or *"),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(errors)) }
}

async fn save_role(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    name: &str,
    req: &RoleRequest,
) -> Result<RoleView, ApiError> {
    let mut permissions = req.permissions.clone();
    permissions.sort();
    permissions.dedup();
    validate_role(name, &permissions)?;
    within_ceiling(state, caller, &permissions, "this role").await?;
    // Changing an existing role needs its current permissions too.
    within_ceiling(state, caller, &permissions_of(state, &[name.to_string()]).await?, "changing this role").await?;
    let description = req.description.clone().unwrap_or_default();
    let ev = ctx
        .event(&state.events, Action::RoleChanged, Outcome::Success)
        .actor(caller.actor())
        .resource(Resource::new("role", name))
        .details(serde_json::json!({ "permissions": permissions }));
    state.store.put_role(name, &description, &permissions, &ev).await.map_err(|e| match e {
        rampart_store::StoreError::Conflict(detail) => ApiError::Conflict { code: "role_builtin", detail },
        e => e.into(),
    })?;
    state.events.observed(&ev);
    for user in state.store.users_with_role(name).await? {
        state.api_keys.evict_user(user);
    }
    Ok(RoleView { name: name.to_string(), description, permissions, builtin: false })
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
    if state.store.list_roles().await?.iter().any(|r| r.name == name) {
        return Err(ApiError::Conflict {
            code: "role_exists",
            detail: format!("role {name:?} exists; PUT changes it"),
        });
    }
    let role = save_role(&state, &ctx, &guard.caller, &name, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(role)).into_response())
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
    Ok(axum::Json(save_role(&state, &ctx, &guard.caller, &name, &req).await?))
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
    let holders = state.store.users_with_role(&name).await?;
    within_ceiling(
        &state,
        &guard.caller,
        &permissions_of(&state, std::slice::from_ref(&name)).await?,
        "deleting this role",
    )
    .await?;
    let ev = ctx
        .event(&state.events, Action::RoleDeleted, Outcome::Success)
        .actor(guard.caller.actor())
        .resource(Resource::new("role", &name));
    let deleted = state.store.delete_role(&name, &ev).await.map_err(|e| match e {
        rampart_store::StoreError::Conflict(detail) => ApiError::Conflict { code: "role_builtin", detail },
        e => e.into(),
    })?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    state.events.observed(&ev);
    for user in holders {
        state.api_keys.evict_user(user);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Does a subject hold a permission? Without `subject_id`, about the caller itself (for an API
/// key: its scopes within its owner's permissions). Asking about another user needs
/// `authz:check`.
#[utoipa::path(post, path = "/v1/authz/check", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    request_body = AuthzCheckRequest,
    responses((status = 200, description = "The answer", body = AuthzCheckResponse), (status = 403, description = "Lacks `authz:check`", body = Problem)))]
pub async fn authz_check(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    ApiJson(req): ApiJson<AuthzCheckRequest>,
) -> Result<axum::Json<AuthzCheckResponse>, ApiError> {
    if !apikey::is_valid_scope(&req.permission) || req.permission.ends_with('*') {
        return Err(ApiError::Validation(vec![field(
            "permission",
            "permission_invalid",
            "a concrete resource:action",
        )]));
    }
    let allowed = match &req.subject_id {
        None => match &caller {
            Caller::Session(a) => permission::allows(&state.store.user_permissions(a.user_id).await?, &req.permission),
            Caller::Key(k) => k.allows(&req.permission),
        },
        Some(subject) => {
            caller.require_recorded(&state, &ctx, <crate::auth::AuthzCheck as crate::auth::Permission>::NAME).await?;
            let id = subject.parse().map(UserId).map_err(|_| ApiError::NotFound)?;
            state.store.get_user(id).await?.ok_or(ApiError::NotFound)?;
            permission::allows(&state.store.user_permissions(id).await?, &req.permission)
        }
    };
    Ok(axum::Json(AuthzCheckResponse { allowed }))
}

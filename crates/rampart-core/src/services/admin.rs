//! The administrator's use cases: users (list, read, change, erase, unlock, end sessions),
//! roles, and permission checks for backends. Two rules hold everywhere here: nobody acts on a
//! user more powerful than themselves or grants what they lack (`exceeds_own_permissions`),
//! and the last enabled administrator cannot be removed (`last_admin`). Reading account data
//! is recorded.

use crate::App;
use crate::authz::Caller;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::services::{passwords, privacy, sessions};
use rampart_domain::{Action, Outcome, Permission, Resource, RoleName, Severity, User, UserId, permission};
use rampart_store::{RevokeSessions, Role, StoreError};

/// The user an administrator names by id; `not_found` for a malformed or unknown id.
pub async fn target(state: &App, id: &str) -> Result<User, ServiceError> {
    let id = id.parse().map(UserId).map_err(|_| ServiceError::NotFound)?;
    state.store.get_user(id).await?.ok_or(ServiceError::NotFound)
}

/// The permissions the given roles grant.
async fn permissions_of<R: AsRef<str>>(state: &App, roles: &[R]) -> Result<Vec<String>, ServiceError> {
    let all = state.store.list_roles().await?;
    Ok(all.into_iter().filter(|r| roles.iter().any(|x| x.as_ref() == r.name)).flat_map(|r| r.permissions).collect())
}

/// Refuses (409 `last_admin`) a change that would leave no enabled administrator.
async fn keep_an_admin(state: &App, user: &User, still_admin_after: bool) -> Result<(), ServiceError> {
    let is_admin = !user.disabled && permissions_of(state, &user.roles).await?.iter().any(|p| p == "*");
    if is_admin && !still_admin_after && state.store.count_admins().await? <= 1 {
        return Err(ServiceError::LastAdmin);
    }
    Ok(())
}

/// A page of users, searched by `query` (e-mail or name), after the cursor `after`.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserId>,
}

pub async fn list_users(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    query: Option<&str>,
    after: Option<UserId>,
    limit: u32,
) -> Result<UserPage, ServiceError> {
    // Out of range is refused, as the audit query refuses it, not silently clamped.
    if !(1..=500).contains(&limit) {
        return Err(ServiceError::field("limit", "out_of_range", "between 1 and 500"));
    }
    let page = state.store.list_users(query.filter(|s| !s.is_empty()), after, limit).await?;
    // Reading account data is data access on a sensitive endpoint: recorded.
    let ev = ctx
        .event(&state.events, Action::UserRead, Outcome::Success)
        .actor(caller.actor())
        .details(serde_json::json!({ "view": "list", "query": query, "returned": page.users.len() }));
    state.events.record(ev).await?;
    Ok(UserPage { users: page.users, next: page.next })
}

pub async fn get_user(state: &App, ctx: &RequestContext, caller: &Caller, id: &str) -> Result<User, ServiceError> {
    let user = target(state, id).await?;
    let ev = ctx
        .event(&state.events, Action::UserRead, Outcome::Success)
        .actor(caller.actor())
        .resource(Resource::new("user", user.id));
    state.events.record(ev).await?;
    Ok(user)
}

/// What an administrator changes of a user; `None` leaves a field as it is. An empty name
/// clears it.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Changes a user within the caller's ceiling; removing a role ends the user's sessions (access
/// tokens carry roles).
pub async fn update_user(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
    changes: UserChanges,
) -> Result<User, ServiceError> {
    let user = target(state, id).await?;
    let mut errors = Vec::new();
    let name = changes.name.as_ref().map(|n| n.trim().to_string());
    if let Some(n) = &name
        && (n.chars().count() > crate::services::users::MAX_NAME_CHARS || n.chars().any(char::is_control))
    {
        errors.push(FieldProblem::new("name", "name_invalid", "at most 200 characters, no control characters"));
    }
    let roles = match &changes.roles {
        Some(roles) => {
            let mut out = Vec::new();
            for r in roles {
                match RoleName::parse(r) {
                    Ok(r) => out.push(r),
                    Err(e) => errors.push(FieldProblem::new("roles", "role_invalid", e.to_string())),
                }
            }
            out.sort();
            out.dedup();
            Some(out)
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    // Nobody acts on a user more powerful than themselves, or grants what they lack.
    caller.require_covers(state, &permissions_of(state, &user.roles).await?, "changing this user").await?;
    let new_permissions = match &roles {
        Some(r) => permissions_of(state, r).await?,
        None => permissions_of(state, &user.roles).await?,
    };
    if roles.is_some() {
        caller.require_covers(state, &new_permissions, "granting these roles").await?;
    }
    let still_admin = changes.disabled != Some(true) && new_permissions.iter().any(|p| p == "*");
    keep_an_admin(state, &user, still_admin).await?;
    let roles_removed = roles.as_ref().is_some_and(|r| user.roles.iter().any(|old| !r.contains(old)));
    let ev = ctx
        .event(&state.events, Action::UserUpdated, Outcome::Success)
        .actor(caller.actor())
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({
            "name_changed": name.is_some(),
            "roles": roles,
            "disabled": changes.disabled,
            "roles_before": user.roles,
        }));
    let name_arg = name.as_deref().map(|n| if n.is_empty() { None } else { Some(n) });
    let now = state.clock.now();
    let role_names: Option<Vec<String>> = roles.as_ref().map(|r| r.iter().map(ToString::to_string).collect());
    if !state.store.update_user(user.id, name_arg, role_names.as_deref(), changes.disabled, now, &ev).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&ev);
    state.api_keys.evict_user(user.id);
    if roles_removed && changes.disabled != Some(true) {
        // Access tokens carry roles: end the sessions so no token outlives a lost role.
        sessions::revoke_sessions(state, ctx, caller.actor(), user.id, RevokeSessions::All, "roles_changed").await?;
    }
    state.store.get_user(user.id).await?.ok_or(ServiceError::NotFound)
}

/// Erases a user (GDPR): by default schedules it, as `DELETE /v1/me` does (disabled now, erased
/// after `accounts.erasure_grace_days`, restorable until then); `immediately` erases now (the
/// schedule and the erasure are both recorded). `Some` with the schedule, `None` when erased.
pub async fn delete_user(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
    immediately: bool,
) -> Result<Option<privacy::Erasure>, ServiceError> {
    let user = target(state, id).await?;
    caller.require_covers(state, &permissions_of(state, &user.roles).await?, "erasing this user").await?;
    keep_an_admin(state, &user, false).await?;
    let erasure = match state.store.erasure_due(user.id).await? {
        Some(erase_after) if immediately => privacy::Erasure { erase_after },
        Some(_) => return Err(ServiceError::ErasureScheduled),
        None => privacy::schedule_erasure(state, ctx, caller.actor(), &user).await?,
    };
    if !immediately {
        return Ok(Some(erasure));
    }
    // Due now: the schedule is moved to this moment, then the erasure runs as the job's would.
    state.store.erase_now(user.id, state.clock.now()).await?;
    if !privacy::erase(state, Some(ctx), caller.actor(), user.id).await? {
        return Err(ServiceError::NotFound);
    }
    Ok(None)
}

/// Takes back a user's scheduled erasure (within the grace).
pub async fn restore_user(state: &App, ctx: &RequestContext, caller: &Caller, id: &str) -> Result<(), ServiceError> {
    let id: UserId = id.parse().map(UserId).map_err(|_| ServiceError::NotFound)?;
    let user = state.store.get_user(id).await?.ok_or(ServiceError::NotFound)?;
    caller.require_covers(state, &permissions_of(state, &user.roles).await?, "restoring this user").await?;
    privacy::restore(state, ctx, caller.actor(), user.id).await
}

/// Lifts a user's login lockout.
pub async fn unlock_user(state: &App, ctx: &RequestContext, caller: &Caller, id: &str) -> Result<(), ServiceError> {
    let user = target(state, id).await?;
    // Lifting a more powerful user's lockout helps whoever is guessing their password.
    caller.require_covers(state, &permissions_of(state, &user.roles).await?, "unlocking this user").await?;
    passwords::unlock(state, ctx, caller.actor(), &user).await
}

/// Ends every session of a user.
pub async fn revoke_user_sessions(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
) -> Result<u64, ServiceError> {
    let user = target(state, id).await?;
    caller.require_covers(state, &permissions_of(state, &user.roles).await?, "ending this user's sessions").await?;
    sessions::revoke_sessions(state, ctx, caller.actor(), user.id, RevokeSessions::All, "admin").await
}

pub async fn list_roles(state: &App) -> Result<Vec<Role>, ServiceError> {
    Ok(state.store.list_roles().await?)
}

fn validate_role(name: &str, permissions: &[String]) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    if RoleName::parse(name).is_err() {
        errors.push(FieldProblem::new(
            "name",
            "role_invalid",
            "lowercase letters, digits, - and _, starting with a letter",
        ));
    }
    for p in permissions {
        if let Err(e) = Permission::parse(p) {
            errors.push(FieldProblem::new("permissions", "permission_invalid", e.to_string()));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ServiceError::Validation(errors)) }
}

/// Creates (`create`: refused with `role_exists` when it exists) or replaces a custom role,
/// within the caller's ceiling.
pub async fn save_role(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    name: &str,
    description: Option<String>,
    permissions: &[String],
    create: bool,
) -> Result<Role, ServiceError> {
    if create && state.store.list_roles().await?.iter().any(|r| r.name == name) {
        return Err(ServiceError::RoleExists(name.to_string()));
    }
    let mut permissions = permissions.to_vec();
    permissions.sort();
    permissions.dedup();
    validate_role(name, &permissions)?;
    caller.require_covers(state, &permissions, "this role").await?;
    // Changing an existing role needs its current permissions too.
    caller.require_covers(state, &permissions_of(state, &[name]).await?, "changing this role").await?;
    let description = description.unwrap_or_default();
    // A role granting every permission is critical (the built-in alert rule watches for it).
    let severity = if permissions.iter().any(|p| p == "*") { Severity::Critical } else { Severity::Info };
    let ev = ctx
        .event(&state.events, Action::RoleChanged, Outcome::Success)
        .actor(caller.actor())
        .severity(severity)
        .resource(Resource::new("role", name))
        .details(serde_json::json!({ "permissions": permissions }));
    state.store.put_role(name, &description, &permissions, &ev).await.map_err(|e| match e {
        StoreError::Conflict(detail) => ServiceError::RoleBuiltin(detail),
        e => e.into(),
    })?;
    state.events.observed(&ev);
    for user in state.store.users_with_role(name).await? {
        state.api_keys.evict_user(user);
    }
    Ok(Role { name: name.to_string(), description, permissions, builtin: false })
}

pub async fn delete_role(state: &App, ctx: &RequestContext, caller: &Caller, name: &str) -> Result<(), ServiceError> {
    let holders = state.store.users_with_role(name).await?;
    caller.require_covers(state, &permissions_of(state, &[name]).await?, "deleting this role").await?;
    let ev = ctx
        .event(&state.events, Action::RoleDeleted, Outcome::Success)
        .actor(caller.actor())
        .resource(Resource::new("role", name));
    let deleted = state.store.delete_role(name, &ev).await.map_err(|e| match e {
        StoreError::Conflict(detail) => ServiceError::RoleBuiltin(detail),
        e => e.into(),
    })?;
    if !deleted {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&ev);
    for user in holders {
        state.api_keys.evict_user(user);
    }
    Ok(())
}

/// Whether the caller (no subject) or a named subject (needs `authz:check`) holds a concrete
/// `permission`.
pub async fn check(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    subject: Option<&str>,
    permission_name: &str,
) -> Result<bool, ServiceError> {
    if !Permission::parse(permission_name).is_ok_and(|p| p.is_concrete()) {
        return Err(ServiceError::field("permission", "permission_invalid", "a concrete resource:action"));
    }
    Ok(match subject {
        None => match caller {
            Caller::Session(a) => permission::allows(&state.store.user_permissions(a.user_id).await?, permission_name),
            Caller::Key(k) => k.allows(permission_name),
        },
        Some(subject) => {
            caller.require_recorded(state, ctx, crate::authz::AUTHZ_CHECK).await?;
            let id = subject.parse().map(UserId).map_err(|_| ServiceError::NotFound)?;
            state.store.get_user(id).await?.ok_or(ServiceError::NotFound)?;
            permission::allows(&state.store.user_permissions(id).await?, permission_name)
        }
    })
}

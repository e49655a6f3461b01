//! Users: the search (as you type, with htmx) with filters and keyset pages, one user's page
//! (profile, roles, sessions, second factors, API keys, events), and what an administrator
//! does to a user. Reading needs `users:read`; changing `users:write`; erasing `users:delete`.

use super::{Admin, Confirmation, Fields, confirm, done_or_error, error_page, iso, when};
use crate::AppState;
use crate::auth::{UsersDelete, UsersRead, UsersWrite};
use crate::ui::{Chrome, html, see_other};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rampart_core::RequestContext;
use rampart_core::services::{admin, console};
use rampart_domain::apikey;
use rampart_domain::device::parse_user_agent;
use rampart_store::UserSearch;
use serde::Deserialize;
use time::OffsetDateTime;

/// The list's query: the search, the filters, the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    role: String,
    /// `yes`, `no` or empty (either).
    disabled: String,
    mfa: String,
    /// `yes` (locked out of signing in now), `no` or empty.
    locked: String,
    /// `YYYY-MM-DD`: last signed in on or after this day.
    after: String,
    /// `YYYY-MM-DD`: last signed in before this day, or never.
    before: String,
    cursor: String,
    done: Option<String>,
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn day(s: &str) -> Option<OffsetDateTime> {
    let d = time::Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc())
}

/// One user in the list.
#[derive(Debug)]
pub struct UserRow {
    id: String,
    email: String,
    name: String,
    roles: String,
    disabled: bool,
    mfa: bool,
    locked: bool,
    last_login: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/users.html")]
pub struct UsersPage<'a> {
    c: Chrome<'a>,
    q: ListQuery,
    roles: Vec<String>,
    rows: Vec<UserRow>,
    next: String,
}

/// Only the results, for htmx.
#[derive(Template, Debug)]
#[template(path = "admin/users_rows.html")]
pub struct UsersRows<'a> {
    c: Chrome<'a>,
    rows: Vec<UserRow>,
    next: String,
}

/// Users per page.
const PAGE: u32 = 50;

pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersRead>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let search = UserSearch {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        role: Some(q.role.clone()).filter(|s| !s.is_empty()),
        disabled: yes_no(&q.disabled),
        mfa: yes_no(&q.mfa),
        signed_in_after: day(&q.after),
        signed_in_before: day(&q.before),
        locked: yes_no(&q.locked),
    };
    let after = q.cursor.parse().ok().map(rampart_domain::UserId);
    let page = match console::search_users(&state, &ctx, &admin.caller, &search, after, PAGE).await {
        Ok(p) => p,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let never = state.ui.catalog.get("admin.never");
    let rows: Vec<UserRow> = page
        .users
        .into_iter()
        .map(|u| UserRow {
            id: u.user.id.to_string(),
            email: u.user.email.to_string(),
            name: u.user.name.clone().unwrap_or_default(),
            roles: u.user.roles.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            disabled: u.user.disabled,
            mfa: u.has_mfa,
            locked: u.locked_until.is_some(),
            last_login: u.last_login_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    let next = match page.next {
        Some(id) => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("q", &q.q),
                ("role", &q.role),
                ("disabled", &q.disabled),
                ("mfa", &q.mfa),
                ("locked", &q.locked),
                ("after", &q.after),
                ("before", &q.before),
            ] {
                if !v.is_empty() {
                    url.append_pair(k, v);
                }
            }
            url.append_pair("cursor", &id.to_string());
            format!("/ui/admin/users?{}", url.finish())
        }
        None => String::new(),
    };
    let c = admin.chrome(&state, "admin.users_title", "users").done(q.done.as_deref());
    if headers.contains_key("hx-request") {
        return html(StatusCode::OK, &UsersRows { c, rows, next });
    }
    let roles = match admin::list_roles(&state).await {
        Ok(r) => r.into_iter().map(|r| r.name).collect(),
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    html(StatusCode::OK, &UsersPage { c, q, roles, rows, next })
}

#[derive(Debug)]
pub struct RoleChoice {
    name: String,
    held: bool,
    /// The administrator covers every permission of the role (may grant or remove it).
    grantable: bool,
}

#[derive(Debug)]
pub struct SessionRow {
    id: String,
    device: String,
    ip: String,
    created: String,
    last_active: String,
}

#[derive(Debug)]
pub struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    expires: String,
    last_used: String,
}

#[derive(Debug)]
pub struct EventRow {
    seq: i64,
    when: String,
    when_iso: String,
    action: String,
    outcome: &'static str,
    ip: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/user.html")]
pub struct UserPage<'a> {
    c: Chrome<'a>,
    id: String,
    email: String,
    name: String,
    verified: bool,
    disabled: bool,
    /// Until when a sign-in lockout keeps the user out (empty: not locked out).
    locked_until: String,
    created: String,
    last_login: String,
    roles: Vec<RoleChoice>,
    totp: bool,
    passkeys: u32,
    backup_codes_left: u32,
    sessions: Vec<SessionRow>,
    keys: Vec<KeyRow>,
    events: Vec<EventRow>,
    may_write: bool,
    may_delete: bool,
    may_audit: bool,
}

pub async fn detail(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersRead>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let d = match console::user_detail(&state, &ctx, &admin.caller, &id).await {
        Ok(d) => d,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let all_roles = match admin::list_roles(&state).await {
        Ok(r) => r,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let cat = &state.ui.catalog;
    let never = cat.get("admin.never");
    let u = &d.user.user;
    let roles = all_roles
        .iter()
        .map(|r| RoleChoice {
            name: r.name.clone(),
            held: u.roles.iter().any(|h| h.as_str() == r.name),
            grantable: r.permissions.iter().all(|p| apikey::covers(&admin.granted, p)),
        })
        .collect();
    let sessions = d
        .sessions
        .iter()
        .map(|s| {
            let dev = parse_user_agent(s.user_agent.as_deref());
            SessionRow {
                id: s.id.to_string(),
                device: match (dev.browser, dev.os) {
                    (Some(b), Some(o)) => format!("{b} · {o}"),
                    (Some(x), None) | (None, Some(x)) => x,
                    (None, None) => cat.get("sessions.unknown_device").to_string(),
                },
                ip: s.ip.clone().unwrap_or_default(),
                created: when(s.created_at),
                last_active: when(s.last_active_at),
            }
        })
        .collect();
    let keys = d
        .keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.join(" "),
            expires: k.expires_at.map_or_else(|| never.to_string(), when),
            last_used: k.last_used_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    let events = d
        .events
        .iter()
        .map(|e| EventRow {
            seq: e.seq,
            when: when(e.event.ts),
            when_iso: iso(e.event.ts),
            action: e.event.action.as_str().to_string(),
            outcome: e.event.outcome.as_str(),
            ip: e.event.ip.map(|i| i.to_string()).unwrap_or_default(),
        })
        .collect();
    let page = UserPage {
        c: admin.chrome(&state, "admin.user_title", "users").done(q.done.as_deref()),
        id: u.id.to_string(),
        email: u.email.to_string(),
        name: u.name.clone().unwrap_or_default(),
        verified: u.email_verified,
        disabled: u.disabled,
        locked_until: d.user.locked_until.map(when).unwrap_or_default(),
        created: when(u.created_at),
        last_login: d.user.last_login_at.map_or_else(|| never.to_string(), when),
        roles,
        totp: d.mfa.totp,
        passkeys: d.mfa.webauthn,
        backup_codes_left: d.mfa.backup_codes_left,
        sessions,
        keys,
        events,
        may_write: admin.may("users:write"),
        may_delete: admin.may("users:delete"),
        may_audit: admin.may("audit:read"),
    };
    html(StatusCode::OK, &page)
}

fn back(id: &str, done: &str) -> String {
    format!("/ui/admin/users/{id}?done={done}")
}

/// The address of the user a confirmation names (the id when there is no such user: the use
/// case then refuses).
async fn email_of(state: &AppState, id: &str) -> String {
    admin::target(state, id).await.map_or_else(|_| id.to_string(), |u| u.email.to_string())
}

fn confirmation(
    state: &AppState,
    id: &str,
    path: &str,
    question: &str,
    email: &str,
    submit: &'static str,
) -> Confirmation<'static> {
    Confirmation {
        action: format!("/ui/admin/users/{id}/{path}"),
        question: state.ui.catalog.fill(question, "email", email),
        submit,
        typed: None,
        back: format!("/ui/admin/users/{id}"),
        section: "users",
    }
}

/// Replaces the user's roles (destructive: confirmed, after a recent re-authentication).
pub async fn set_roles(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    let email = email_of(&state, &id).await;
    let what = confirmation(&state, &id, "roles", "admin.confirm_roles", &email, "admin.save_roles");
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    let changes = admin::UserChanges { roles: Some(form.all("role")), ..admin::UserChanges::default() };
    let r = admin::update_user(&state, &ctx, &admin.caller, &id, changes).await.map(|_| ());
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_roles_saved"))
}

/// Disables the user: their sessions and keys stop at once (destructive).
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    let email = email_of(&state, &id).await;
    let what = confirmation(&state, &id, "disable", "admin.confirm_disable", &email, "admin.disable");
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    let changes = admin::UserChanges { disabled: Some(true), ..admin::UserChanges::default() };
    let r = admin::update_user(&state, &ctx, &admin.caller, &id, changes).await.map(|_| ());
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_disabled"))
}

pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
) -> Response {
    let changes = admin::UserChanges { disabled: Some(false), ..admin::UserChanges::default() };
    let r = admin::update_user(&state, &ctx, &admin.caller, &id, changes).await.map(|_| ());
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_enabled"))
}

pub async fn unlock(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
) -> Response {
    let r = admin::unlock_user(&state, &ctx, &admin.caller, &id).await;
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_unlocked"))
}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
) -> Response {
    let r = admin::revoke_user_sessions(&state, &ctx, &admin.caller, &id).await.map(|_| ());
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_sessions_revoked"))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let r = match sid.parse() {
        Ok(s) => console::revoke_user_session(&state, &ctx, &admin.caller, &id, rampart_domain::SessionId(s)).await,
        Err(_) => Err(rampart_core::ServiceError::NotFound),
    };
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_session_revoked"))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path((id, kid)): Path<(String, String)>,
) -> Response {
    let r = match kid.parse() {
        Ok(k) => console::revoke_user_key(&state, &ctx, &admin.caller, &id, k).await,
        Err(_) => Err(rampart_core::ServiceError::NotFound),
    };
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_key_revoked"))
}

/// Removes the user's second factors, with a reason; they are told by e-mail (destructive).
pub async fn reset_factors(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersWrite>,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    let email = email_of(&state, &id).await;
    let what = confirmation(&state, &id, "factors/reset", "admin.confirm_reset", &email, "admin.reset_factors");
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    let r = console::reset_factors(&state, &ctx, &admin.caller, &id, form.get("reason")).await;
    done_or_error(&state, &admin.auth, r, &back(&id, "admin_factors_reset"))
}

/// Erases the user; the administrator types the address to confirm (destructive).
pub async fn erase(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersDelete>,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    let email = email_of(&state, &id).await;
    let mut what = confirmation(&state, &id, "erase", "admin.confirm_erase", &email, "admin.erase");
    what.typed = Some(email);
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    match admin::delete_user(&state, &ctx, &admin.caller, &id, false).await {
        Ok(_) => see_other("/ui/admin/users?done=admin_erasure_scheduled"),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

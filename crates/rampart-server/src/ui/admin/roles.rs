//! Roles and permissions: every role with its permissions and who holds it; custom roles are
//! created, changed and deleted here (within the editor's own permissions, as on
//! `/v1/admin/roles`), built-in ones are read-only. Reading needs `roles:read`, changing
//! `roles:write`; changes are destructive (confirmed, after a recent re-authentication).

use super::{Admin, Confirmation, Fields, confirm, error_page};
use crate::AppState;
use crate::auth::{RolesRead, RolesWrite};
use crate::ui::{Chrome, html, see_other};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_core::RequestContext;
use rampart_core::services::{admin, console};
use serde::Deserialize;

#[derive(Debug)]
pub struct RoleRow {
    name: String,
    description: String,
    permissions: Vec<String>,
    permissions_text: String,
    builtin: bool,
    holders: Vec<(String, String)>,
    more: bool,
}

#[derive(Template, Debug)]
#[template(path = "admin/roles.html")]
pub struct RolesPage<'a> {
    c: Chrome<'a>,
    rows: Vec<RoleRow>,
    may_write: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// Holders shown per role.
const HOLDERS: u32 = 20;

pub async fn list(State(state): State<AppState>, admin: Admin<RolesRead>, Query(q): Query<DoneQuery>) -> Response {
    let roles = match console::roles_with_holders(&state, HOLDERS).await {
        Ok(r) => r,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let rows = roles
        .into_iter()
        .map(|(r, holders, more)| RoleRow {
            permissions_text: r.permissions.join("\n"),
            name: r.name,
            description: r.description,
            permissions: r.permissions,
            builtin: r.builtin,
            holders: holders.into_iter().map(|u| (u.user.id.to_string(), u.user.email.to_string())).collect(),
            more,
        })
        .collect();
    let c = admin.chrome(&state, "admin.roles_title", "roles").done(q.done.as_deref());
    html(StatusCode::OK, &RolesPage { c, rows, may_write: admin.may("roles:write") })
}

/// Creates or replaces a custom role (`name`, `description`, `permissions`: one per line).
pub async fn save(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<RolesWrite>,
    form: Fields,
) -> Response {
    let name = form.get("name").trim().to_string();
    let what = Confirmation {
        action: "/ui/admin/roles".into(),
        question: state.ui.catalog.fill("admin.confirm_role", "role", &name),
        submit: "admin.save_role",
        typed: None,
        back: "/ui/admin/roles".into(),
        section: "roles",
    };
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    let permissions: Vec<String> = form
        .get("permissions")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let description = Some(form.get("description").trim().to_string());
    let create = form.get("create") == "yes";
    match admin::save_role(&state, &ctx, &admin.caller, &name, description, &permissions, create).await {
        Ok(_) => see_other("/ui/admin/roles?done=admin_role_saved"),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<RolesWrite>,
    Path(name): Path<String>,
    form: Fields,
) -> Response {
    let what = Confirmation {
        action: format!("/ui/admin/roles/{name}/delete"),
        question: state.ui.catalog.fill("admin.confirm_role_delete", "role", &name),
        submit: "admin.delete_role",
        typed: None,
        back: "/ui/admin/roles".into(),
        section: "roles",
    };
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    match admin::delete_role(&state, &ctx, &admin.caller, &name).await {
        Ok(()) => see_other("/ui/admin/roles?done=admin_role_deleted"),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

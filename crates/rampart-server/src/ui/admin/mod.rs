//! The administrator's console under `/ui/admin/`: the security dashboard, users, the audit
//! viewer, IP rules, roles, API keys across users, the gateway's rules and the system page.
//!
//! A console page is a door like `/v1/admin/*`: its handler takes an [`Admin<P>`] extractor
//! naming the same permission type as the JSON route's `Guard<P>` (a caller without it gets a
//! 403 page and an `authz.denied` event, whether they followed a link or posted directly),
//! calls the same use case (`admin`, `audit`, `ip_rules`, or `console` for what only the
//! console needs), and renders a template from `ui/templates/admin/`. Sections the viewer may
//! not open are not in the navigation, and actions they may not take are not shown.
//!
//! Destructive actions (erasing, disabling, role changes, second-factor resets, clearing IP
//! rules) pass through [`confirm`]: the first post shows a confirmation page repeating the
//! form, with the password (and a code) when the sign-in is older than the re-authentication
//! window (`console::require_recent_reauth`); only a confirmed post acts.

mod audit;
mod dashboard;
mod gateway;
mod ip_rules;
mod keys;
mod roles;
mod svg;
mod system;
mod users;

use super::{Chrome, Notice, PageForm, Viewer, html, refusal};
use crate::AppState;
use crate::auth::{Caller, Permission};
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use rampart_core::authz::Authenticated;
use rampart_core::services::console;
use rampart_core::services::factors::Reauth;
use rampart_core::{RequestContext, ServiceError};
use rampart_domain::permission;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/admin", get(dashboard::page))
        .route("/ui/admin/", get(dashboard::page))
        .route("/ui/admin/users", get(users::list))
        .route("/ui/admin/users/{id}", get(users::detail))
        .route("/ui/admin/users/{id}/roles", post(users::set_roles))
        .route("/ui/admin/users/{id}/disable", post(users::disable))
        .route("/ui/admin/users/{id}/enable", post(users::enable))
        .route("/ui/admin/users/{id}/unlock", post(users::unlock))
        .route("/ui/admin/users/{id}/restore", post(users::restore))
        .route("/ui/admin/users/{id}/sessions/revoke", post(users::revoke_sessions))
        .route("/ui/admin/users/{id}/sessions/{sid}/revoke", post(users::revoke_session))
        .route("/ui/admin/users/{id}/keys/{kid}/revoke", post(users::revoke_key))
        .route("/ui/admin/users/{id}/factors/reset", post(users::reset_factors))
        .route("/ui/admin/users/{id}/erase", post(users::erase))
        .route("/ui/admin/keys", get(keys::list))
        .route("/ui/admin/audit", get(audit::list))
        .route("/ui/admin/audit/export", get(audit::export))
        .route("/ui/admin/audit/verify", post(audit::verify))
        .route("/ui/admin/audit/{seq}", get(audit::event))
        .route("/ui/admin/ip-rules", get(ip_rules::list).post(ip_rules::add))
        .route("/ui/admin/ip-rules/check", get(ip_rules::check))
        .route("/ui/admin/ip-rules/clear", post(ip_rules::clear))
        .route("/ui/admin/ip-rules/{id}/remove", post(ip_rules::remove))
        .route("/ui/admin/roles", get(roles::list).post(roles::save))
        .route("/ui/admin/gateway", get(gateway::page))
        .route("/ui/admin/system", get(system::page))
        .route("/ui/admin/system/rotate", post(system::rotate))
        .route("/ui/admin/roles/{name}/delete", post(roles::delete))
}

/// One section of the console's navigation.
#[derive(Debug, Clone)]
pub struct Tab {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// The console's sections: id, link, catalogue key, the permission that opens it.
const SECTIONS: &[(&str, &str, &str, &str)] = &[
    ("dashboard", "/ui/admin/", "admin.nav_dashboard", "audit:read"),
    ("users", "/ui/admin/users", "admin.nav_users", "users:read"),
    ("keys", "/ui/admin/keys", "admin.nav_keys", "users:read"),
    ("audit", "/ui/admin/audit", "admin.nav_audit", "audit:read"),
    ("ip_rules", "/ui/admin/ip-rules", "admin.nav_ip_rules", "ip_rules:read"),
    ("roles", "/ui/admin/roles", "admin.nav_roles", "roles:read"),
    ("gateway", "/ui/admin/gateway", "admin.nav_gateway", "gateway:read"),
    ("system", "/ui/admin/system", "admin.nav_system", "system:read"),
];

/// A signed-in administrator holding the permission `P` (the same permission types as the
/// JSON routes' guards), with everything their roles grant (to show only what they may use).
/// Without `P`: a 403 page, and the refusal recorded as `authz.denied`.
#[derive(Debug)]
pub struct Admin<P: Permission> {
    pub auth: Authenticated,
    pub caller: Caller,
    pub granted: Vec<String>,
    _permission: std::marker::PhantomData<P>,
}

impl<P: Permission> Admin<P> {
    /// Whether the administrator holds `permission` (to show an action or a section).
    pub fn may(&self, permission: &str) -> bool {
        permission::allows(&self.granted, permission)
    }

    /// The chrome of a console page in `section`.
    pub fn chrome<'a>(&self, state: &'a AppState, title: &str, section: &str) -> Chrome<'a> {
        let mut c = Chrome::account(state, &self.auth, title, "admin");
        c.admin_nav = SECTIONS
            .iter()
            .filter(|(_, _, _, p)| self.may(p))
            .map(|(id, href, label, _)| Tab {
                href,
                label: state.ui.catalog.get(label).to_string(),
                current: *id == section,
            })
            .collect();
        c
    }
}

impl<P: Permission> FromRequestParts<AppState> for Admin<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Viewer(auth) = Viewer::from_request_parts(parts, state).await?;
        let caller = Caller::Session(auth.clone());
        // The console's permission check records its refusals: they name the route.
        let ctx = crate::auth::refusal_context(parts);
        if let Err(e) = caller.require_recorded(state, &ctx, P::NAME).await {
            let mut c = Chrome::account(state, &auth, "admin.forbidden_title", "admin");
            c.notice = Some(refusal(&state.ui, &e));
            let page = super::MessagePage {
                heading: state.ui.catalog.get("admin.forbidden_title").to_string(),
                body: state.ui.catalog.fill("admin.forbidden_body", "permission", P::NAME),
                link: "/ui/account",
                link_text: state.ui.catalog.get("nav.account").to_string(),
                c,
            };
            return Err(html(StatusCode::FORBIDDEN, &page));
        }
        let granted = match console::permissions(state, &auth).await {
            Ok(g) => g,
            Err(e) => return Err(error_page(state, &auth, &e)),
        };
        Ok(Admin { auth, caller, granted, _permission: std::marker::PhantomData })
    }
}

/// A refused use case on a console page with nothing better to show.
fn error_page(state: &AppState, auth: &Authenticated, e: &ServiceError) -> Response {
    let c = Chrome::account(state, auth, "error.title", "admin").with(Some(refusal(&state.ui, e)));
    let status = match e {
        ServiceError::NotFound => StatusCode::NOT_FOUND,
        ServiceError::MissingPermission { .. } | ServiceError::ExceedsOwnPermissions { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    };
    let cat = &state.ui.catalog;
    let page = super::MessagePage {
        heading: cat.get("error.title").to_string(),
        body: cat.get("error.try_again").to_string(),
        link: "/ui/admin/",
        link_text: cat.get("admin.back_console").to_string(),
        c,
    };
    html(status, &page)
}

/// A time as the console shows it: `2025-01-31 14:05:09 UTC`.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A form as submitted, field by field (repeated fields kept: role check boxes).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// The fields to repeat on a confirmation page (never the secrets or the CSRF token).
    fn carried(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "password" | "code" | "confirmed" | "typed"))
            .cloned()
            .collect()
    }
}

impl axum::extract::FromRequest<AppState> for Fields {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let PageForm(pairs) = PageForm::<Vec<(String, String)>>::from_request(req, state).await?;
        Ok(Fields(pairs))
    }
}

/// The confirmation page of a destructive action.
#[derive(Template, Debug)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage<'a> {
    c: Chrome<'a>,
    action: String,
    question: String,
    carried: Vec<(String, String)>,
    /// The text to type to confirm (erasure: the user's address); empty: a button suffices.
    typed: String,
    ask_password: bool,
    ask_code: bool,
    submit: String,
    back: String,
}

/// What a destructive action asks before it acts.
pub struct Confirmation<'q> {
    pub action: String,
    pub question: String,
    pub submit: &'q str,
    pub typed: Option<String>,
    pub back: String,
    /// The console section the page belongs to.
    pub section: &'static str,
}

/// Lets a destructive action through only when the form is confirmed (with the typed text
/// when one is asked) and the administrator re-authenticated recently or now; otherwise the
/// answer is the confirmation page (with the refusal, when there was one).
pub async fn confirm<P: Permission>(
    state: &AppState,
    ctx: &RequestContext,
    admin: &Admin<P>,
    form: &Fields,
    what: Confirmation<'_>,
) -> Result<(), Response> {
    let mut notice = None;
    if form.get("confirmed") == "yes" {
        let typed_ok = what.typed.as_deref().is_none_or(|t| form.get("typed").trim().eq_ignore_ascii_case(t));
        if !typed_ok {
            notice = Some(Notice::error(state.ui.catalog.get("admin.typed_mismatch")));
        } else {
            let code = form.get("code").trim();
            let reauth = Reauth { password: form.get("password"), code: (!code.is_empty()).then_some(code) };
            match console::require_recent_reauth(state, ctx, &admin.auth, Some(reauth)).await {
                Ok(()) => return Ok(()),
                Err(e) => notice = Some(refusal(&state.ui, &e)),
            }
        }
    }
    let (ask_password, ask_code) = match console::needs_reauth(state, &admin.auth).await {
        Ok(true) => (true, console::has_second_factor(state, &admin.auth).await.unwrap_or(true)),
        Ok(false) => (false, false),
        Err(e) => return Err(error_page(state, &admin.auth, &e)),
    };
    let page = ConfirmPage {
        c: admin.chrome(state, "admin.confirm_title", what.section).with(notice),
        action: what.action,
        question: what.question,
        carried: form.carried(),
        typed: what.typed.unwrap_or_default(),
        ask_password,
        ask_code,
        submit: state.ui.catalog.get(what.submit).to_string(),
        back: what.back,
    };
    Err(html(StatusCode::OK, &page))
}

/// The refused answer of an action an htmx request or a form posted.
fn done_or_error(state: &AppState, auth: &Authenticated, r: Result<(), ServiceError>, to: &str) -> Response {
    match r {
        Ok(()) => super::see_other(to),
        Err(e) => error_page(state, auth, &e),
    }
}

//! IP rules: the list (manual or automatic, expiry, reason), adding one (the network checked
//! as it is typed), removing one, clearing all (destructive), and the admin allowlist with a
//! warning when the administrator's own address is outside it. Reading needs
//! `ip_rules:read`, changing `ip_rules:write`, as on `/v1/admin/ip-rules`.

use super::{Admin, Confirmation, Fields, confirm, error_page, when};
use crate::AppState;
use crate::auth::{IpRulesRead, IpRulesWrite};
use crate::ui::{Chrome, html, refusal, see_other};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_core::RequestContext;
use rampart_core::services::ip_rules::{self, NewIpRule};
use rampart_domain::iprule::{self, IpAction, IpRule, IpScope};
use serde::Deserialize;
use std::net::IpAddr;
use time::OffsetDateTime;

#[derive(Debug)]
pub struct RuleRow {
    id: String,
    network: String,
    action: &'static str,
    scope: &'static str,
    automatic: bool,
    reason: String,
    created: String,
    expires: String,
    expired: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    network: String,
    action: String,
    scope: String,
    reason: String,
    /// `YYYY-MM-DDTHH:MM`, UTC; empty: never.
    expires: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/ip_rules.html")]
pub struct IpRulesPage<'a> {
    c: Chrome<'a>,
    rows: Vec<RuleRow>,
    allowlist: Vec<String>,
    my_ip: String,
    /// The allowlist exists and the administrator's address is outside it.
    outside: bool,
    form: AddForm,
    may_write: bool,
}

fn rows(rules: &[IpRule], now: OffsetDateTime, never: &str) -> Vec<RuleRow> {
    rules
        .iter()
        .map(|r| RuleRow {
            id: r.id.to_string(),
            network: r.network.to_string(),
            action: r.action.as_str(),
            scope: r.scope.as_str(),
            automatic: r.automatic,
            reason: r.reason.clone(),
            created: when(r.created_at),
            expires: r.expires_at.map_or_else(|| never.to_string(), when),
            expired: !r.is_live(now),
        })
        .collect()
}

fn admin_allowlist(rules: &[IpRule], now: OffsetDateTime) -> Vec<&IpRule> {
    rules.iter().filter(|r| r.is_live(now) && r.action == IpAction::Allow && r.scope == IpScope::Admin).collect()
}

fn outside(list: &[&IpRule], ip: Option<IpAddr>) -> bool {
    !list.is_empty() && ip.is_some_and(|ip| !list.iter().any(|r| r.holds(ip)))
}

async fn render(
    state: &AppState,
    ctx: &RequestContext,
    admin: &Admin<impl crate::auth::Permission>,
    form: AddForm,
    notice: Option<crate::ui::Notice>,
    done: Option<&str>,
) -> Response {
    let rules = match ip_rules::list(state).await {
        Ok(r) => r,
        Err(e) => return error_page(state, &admin.auth, &e),
    };
    let now = state.clock.now();
    let list = admin_allowlist(&rules, now);
    let mut c = admin.chrome(state, "admin.ip_title", "ip_rules").done(done);
    if notice.is_some() {
        c.notice = notice;
    }
    let page = IpRulesPage {
        c,
        allowlist: list.iter().map(|r| r.network.to_string()).collect(),
        outside: outside(&list, ctx.ip),
        my_ip: ctx.ip.map(|i| i.to_string()).unwrap_or_default(),
        rows: rows(&rules, now, state.ui.catalog.get("admin.never")),
        form,
        may_write: admin.may("ip_rules:write"),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<IpRulesRead>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let form = AddForm { action: "block".into(), scope: "all".into(), ..AddForm::default() };
    render(&state, &ctx, &admin, form, None, q.done.as_deref()).await
}

fn parse_expiry(s: &str) -> Result<Option<OffsetDateTime>, rampart_core::ServiceError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(s, short)
        .map(|t| Some(t.assume_utc()))
        .map_err(|_| rampart_core::ServiceError::field("expires_at", "invalid_datetime", "a date and time"))
}

pub async fn add(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<IpRulesWrite>,
    crate::ui::PageForm(f): crate::ui::PageForm<AddForm>,
) -> Response {
    let result = match parse_expiry(&f.expires) {
        Ok(expires_at) => {
            let input = NewIpRule {
                network: f.network.clone(),
                action: f.action.clone(),
                scope: f.scope.clone(),
                reason: f.reason.clone(),
                expires_at,
            };
            ip_rules::create(&state, Some(&ctx), admin.caller.actor(), input).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/ui/admin/ip-rules?done=admin_rule_added"),
        Err(e) => {
            let notice = Some(refusal(&state.ui, &e));
            render(&state, &ctx, &admin, f, notice, None).await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<IpRulesWrite>,
    Path(id): Path<String>,
) -> Response {
    let r = match id.parse() {
        Ok(id) => ip_rules::remove(&state, Some(&ctx), admin.caller.actor(), id).await,
        Err(_) => Ok(false),
    };
    match r {
        Ok(true) => see_other("/ui/admin/ip-rules?done=admin_rule_removed"),
        Ok(false) => error_page(&state, &admin.auth, &rampart_core::ServiceError::NotFound),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

/// Removes every rule (destructive: confirmed, after a recent re-authentication).
pub async fn clear(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<IpRulesWrite>,
    form: Fields,
) -> Response {
    let what = Confirmation {
        action: "/ui/admin/ip-rules/clear".into(),
        question: state.ui.catalog.get("admin.confirm_clear").to_string(),
        submit: "admin.clear_rules",
        typed: None,
        back: "/ui/admin/ip-rules".into(),
        section: "ip_rules",
    };
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    match ip_rules::clear(&state, admin.caller.actor(), "console").await {
        Ok(_) => see_other("/ui/admin/ip-rules?done=admin_rules_cleared"),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CheckQuery {
    network: String,
    action: String,
    scope: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/ip_check.html")]
pub struct CheckFragment<'a> {
    c: Chrome<'a>,
    /// `empty`, `invalid` or `valid`.
    state: &'static str,
    normal: String,
    lockout_warning: bool,
    my_ip: String,
}

/// The network field's live check (htmx): valid or not, its normal form, and a warning when
/// this admin allow rule would leave the administrator's own address outside the allowlist.
pub async fn check(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<IpRulesRead>,
    Query(q): Query<CheckQuery>,
) -> Response {
    let net = iprule::parse_cidr(&q.network);
    let (st, normal) = match (&net, q.network.trim().is_empty()) {
        (_, true) => ("empty", String::new()),
        (None, false) => ("invalid", String::new()),
        (Some(n), false) => ("valid", n.to_string()),
    };
    let mut lockout_warning = false;
    if let (Some(n), Some(ip), "allow", "admin") = (net, ctx.ip, q.action.as_str(), q.scope.as_str())
        && let Ok(rules) = ip_rules::list(&state).await
    {
        let list = admin_allowlist(&rules, state.clock.now());
        lockout_warning = !n.contains(&ip) && !list.iter().any(|r| r.holds(ip));
    }
    let page = CheckFragment {
        c: admin.chrome(&state, "admin.ip_title", "ip_rules"),
        state: st,
        normal,
        lockout_warning,
        my_ip: ctx.ip.map(|i| i.to_string()).unwrap_or_default(),
    };
    html(StatusCode::OK, &page)
}

//! The security dashboard: sign-ins per interval, refusals, lockouts, automatic blocks, live
//! sessions, second-factor adoption by role, the most refused addresses and routes, the audit
//! chain's last verification and the rate limiter's state, over 1 h, 24 h, 7 d or 30 d.

use super::svg::{self, BarChart, Share};
use super::{Admin, error_page, when};
use crate::AppState;
use crate::auth::AuditRead;
use crate::ui::html;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_core::services::console::{self, LimiterBackend, Range};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RangeQuery {
    range: Option<String>,
}

#[derive(Template, Debug)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage<'a> {
    c: crate::ui::Chrome<'a>,
    ranges: Vec<(&'static str, String, bool)>,
    range_label: String,
    until: String,
    chart: BarChart,
    ok_total: u64,
    failed_total: u64,
    unauthorized: u64,
    forbidden: u64,
    limited: u64,
    lockouts: u64,
    auto_blocks: u64,
    active_sessions: i64,
    adoption: Vec<Share>,
    top_addresses: Vec<(String, u64)>,
    top_routes: Vec<(String, u64)>,
    /// `ok`, `broken` or `never`.
    chain: &'static str,
    chain_when: String,
    chain_checked: u64,
    chain_first_bad: Option<i64>,
    limiter: &'static str,
    truncated: bool,
    may_audit: bool,
}

pub async fn page(State(state): State<AppState>, admin: Admin<AuditRead>, Query(q): Query<RangeQuery>) -> Response {
    let range = q.range.as_deref().and_then(Range::parse).unwrap_or_default();
    let limits = &state.shield.rate_limits.limiter;
    let limiter = match (limits.uses_redis(), limits.is_degraded()) {
        (_, true) => LimiterBackend::Degraded,
        (true, false) => LimiterBackend::Redis,
        (false, false) => LimiterBackend::Memory,
    };
    let d = match console::dashboard(&state, range, limiter).await {
        Ok(d) => d,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let cat = &state.ui.catalog;
    let (ok_name, failed_name) = (cat.get("admin.dash_succeeded"), cat.get("admin.dash_failed"));
    let every = match range {
        Range::Hour => 3,
        Range::Day => 4,
        Range::Week => 4,
        Range::Month => 5,
    };
    let chart = svg::grouped(
        &[(&d.sign_ins_ok, "bar", ok_name), (&d.sign_ins_failed, "refused", failed_name)],
        |i, t| {
            (i % every == 0).then(|| match range {
                Range::Hour | Range::Day => format!("{:02}:{:02}", t.hour(), t.minute()),
                Range::Week | Range::Month => format!("{:02}-{:02}", u8::from(t.month()), t.day()),
            })
        },
        when,
    );
    let (chain, chain_when, chain_checked, chain_first_bad) = match &d.last_verification {
        None => ("never", String::new(), 0, None),
        Some(v) => (if v.ok { "ok" } else { "broken" }, when(v.at), v.events_checked, v.first_bad_seq),
    };
    let page = DashboardPage {
        c: admin.chrome(&state, "admin.dash_title", "dashboard"),
        ranges: Range::ALL
            .iter()
            .map(|r| (r.as_str(), cat.get(&format!("admin.range_{}", r.as_str())).to_string(), *r == range))
            .collect(),
        range_label: cat.get(&format!("admin.range_{}", range.as_str())).to_string(),
        until: when(d.until),
        ok_total: d.sign_ins_ok.total(),
        failed_total: d.sign_ins_failed.total(),
        chart,
        unauthorized: d.unauthorized,
        forbidden: d.forbidden,
        limited: d.limited,
        lockouts: d.lockouts,
        auto_blocks: d.auto_blocks,
        active_sessions: d.active_sessions,
        adoption: d.mfa_by_role.iter().map(|r| svg::share(&r.role, r.with_factor, r.users)).collect(),
        top_addresses: d.top_addresses,
        top_routes: d.top_routes,
        chain,
        chain_when,
        chain_checked,
        chain_first_bad,
        limiter: d.limiter.as_str(),
        truncated: d.truncated,
        may_audit: admin.may("audit:read"),
    };
    html(StatusCode::OK, &page)
}

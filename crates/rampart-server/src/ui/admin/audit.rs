//! The audit viewer: the log filtered (actor, action prefix, outcome, severity, address,
//! resource, time range), newest first a keyset page at a time; one event with its place in
//! the chain; "verify chain"; the filtered view exported as JSON Lines or CSV. Reading and
//! verifying need `audit:read`, exporting `audit:export`; each is recorded, as on the JSON API.

use super::{Admin, error_page, iso, when};
use crate::AppState;
use crate::auth::{AuditExport, AuditRead};
use crate::ui::{Chrome, Notice, html, refusal};
use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::services::audit::{self, ExportFormat};
use rampart_core::services::console;
use rampart_core::{FieldProblem, RequestContext, ServiceError};
use rampart_domain::audit::AuditFilter;
use rampart_domain::{Outcome, Severity};
use serde::Deserialize;
use time::OffsetDateTime;

/// The viewer's filter as the form sends it (every field optional; empty means any).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct FilterForm {
    actor: String,
    action: String,
    outcome: String,
    severity: String,
    ip: String,
    resource_type: String,
    resource_id: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field), UTC.
    since: String,
    until: String,
    cursor: String,
    format: String,
}

fn local_time(field: &str, s: &str, errors: &mut Vec<FieldProblem>) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let long = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    match time::PrimitiveDateTime::parse(s, short).or_else(|_| time::PrimitiveDateTime::parse(s, long)) {
        Ok(t) => Some(t.assume_utc()),
        Err(_) => {
            errors.push(FieldProblem::new(field, "invalid_time", "a date and time"));
            None
        }
    }
}

impl FilterForm {
    fn filter(&self) -> Result<AuditFilter, ServiceError> {
        let mut errors = Vec::new();
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        // An id, or a user's e-mail address.
        let (mut actor_id, mut actor_email) = (None, None);
        if let Some(s) = opt(&self.actor) {
            if s.contains('@') {
                match rampart_domain::EmailLookup::parse(&s) {
                    Ok(e) => actor_email = Some(e.normal().as_str().to_string()),
                    Err(_) => errors.push(FieldProblem::new("actor", "invalid_email", "an e-mail address")),
                }
            } else {
                match s.parse() {
                    Ok(id) => actor_id = Some(id),
                    Err(_) => errors.push(FieldProblem::new("actor", "invalid_id", "a user's e-mail address or an id")),
                }
            }
        }
        let outcome = opt(&self.outcome).and_then(|s| Outcome::parse(&s));
        let severity = opt(&self.severity).and_then(|s| Severity::parse(&s));
        let ip = opt(&self.ip).and_then(|s| match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errors.push(FieldProblem::new("ip", "invalid_ip", "an IPv4 or IPv6 address"));
                None
            }
        });
        let since = local_time("since", &self.since, &mut errors);
        let until = local_time("until", &self.until, &mut errors);
        let filter = AuditFilter {
            actor_id,
            actor_email,
            action: opt(&self.action),
            resource_type: opt(&self.resource_type),
            resource_id: opt(&self.resource_id),
            outcome,
            severity,
            ip,
            since,
            until,
        };
        if let Err(es) = filter.validate() {
            errors.extend(es.into_iter().map(|e| FieldProblem::new(e.field, e.code, e.code)));
        }
        if errors.is_empty() { Ok(filter) } else { Err(ServiceError::Validation(errors)) }
    }

    /// The filter as a query string (without the page or the format).
    fn query(&self) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("severity", &self.severity),
            ("ip", &self.ip),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.trim().is_empty() {
                url.append_pair(k, v.trim());
            }
        }
        url.finish()
    }
}

#[derive(Debug)]
pub struct Row {
    seq: i64,
    when: String,
    when_iso: String,
    action: String,
    outcome: &'static str,
    severity: &'static str,
    actor: String,
    resource: String,
    ip: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/audit.html")]
pub struct AuditPage<'a> {
    c: Chrome<'a>,
    f: FilterForm,
    rows: Vec<Row>,
    next: String,
    export_query: String,
    may_export: bool,
}

const PAGE: u32 = 50;

fn actor_text(e: &rampart_domain::SecurityEvent) -> String {
    match e.actor.id() {
        Some(id) => format!("{} {id}", e.actor.kind()),
        None => e.actor.kind().to_string(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<AuditRead>,
    Query(f): Query<FilterForm>,
) -> Response {
    let c = admin.chrome(&state, "admin.audit_title", "audit");
    let filter = match f.filter() {
        Ok(filter) => filter,
        Err(e) => {
            let c = c.with(Some(refusal(&state.ui, &e)));
            let page = AuditPage {
                c,
                f,
                rows: Vec::new(),
                next: String::new(),
                export_query: String::new(),
                may_export: false,
            };
            return html(StatusCode::OK, &page);
        }
    };
    let cursor = f.cursor.parse::<i64>().ok().filter(|n| *n > 0);
    let (events, next) = match audit::query(&state, admin.caller.actor(), &ctx, &filter, cursor, PAGE).await {
        Ok(r) => r,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let rows = events
        .iter()
        .map(|s| {
            let e = &s.event;
            Row {
                seq: s.seq,
                when: when(e.ts),
                when_iso: iso(e.ts),
                action: e.action.as_str().to_string(),
                outcome: e.outcome.as_str(),
                severity: e.severity.as_str(),
                actor: actor_text(e),
                resource: e
                    .resource
                    .as_ref()
                    .map(|r| format!("{} {}", r.kind, r.id.as_deref().unwrap_or("")))
                    .unwrap_or_default(),
                ip: e.ip.map(|i| i.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let query = f.query();
    let next = next.map_or_else(String::new, |n| {
        if query.is_empty() {
            format!("/ui/admin/audit?cursor={n}")
        } else {
            format!("/ui/admin/audit?{query}&cursor={n}")
        }
    });
    let page = AuditPage { c, rows, next, export_query: query, may_export: admin.may("audit:export"), f };
    html(StatusCode::OK, &page)
}

#[derive(Template, Debug)]
#[template(path = "admin/audit_event.html")]
pub struct EventPage<'a> {
    c: Chrome<'a>,
    seq: i64,
    id: String,
    when: String,
    action: String,
    outcome: &'static str,
    severity: &'static str,
    actor: String,
    actor_user: String,
    resource: String,
    ip: String,
    user_agent: String,
    request_id: String,
    details: String,
    prev_hash: String,
    hash: String,
}

pub async fn event(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<AuditRead>,
    Path(seq): Path<i64>,
) -> Response {
    let s = match console::audit_event(&state, &ctx, &admin.caller, seq).await {
        Ok(s) => s,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let e = &s.event;
    let page = EventPage {
        c: admin.chrome(&state, "admin.event_title", "audit"),
        seq: s.seq,
        id: e.id.to_string(),
        when: when(e.ts),
        action: e.action.as_str().to_string(),
        outcome: e.outcome.as_str(),
        severity: e.severity.as_str(),
        actor: actor_text(e),
        actor_user: match e.actor {
            rampart_domain::Actor::User(id) => id.to_string(),
            _ => String::new(),
        },
        resource: e
            .resource
            .as_ref()
            .map(|r| format!("{} {}", r.kind, r.id.as_deref().unwrap_or("")))
            .unwrap_or_default(),
        ip: e.ip.map(|i| i.to_string()).unwrap_or_default(),
        user_agent: e.user_agent.clone().unwrap_or_default(),
        request_id: e.request_id.clone().unwrap_or_default(),
        details: serde_json::to_string_pretty(&e.details).unwrap_or_default(),
        prev_hash: s.prev_hash.as_deref().map(hex::encode).unwrap_or_default(),
        hash: s.hash.as_deref().map(hex::encode).unwrap_or_default(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Template, Debug)]
#[template(path = "admin/audit_verify.html")]
pub struct VerifyPage<'a> {
    c: Chrome<'a>,
    ok: bool,
    events_checked: u64,
    checkpoints_checked: u64,
    first_bad_seq: Option<i64>,
    fault: String,
}

/// Verifies the chain (recorded as `audit.verified`, naming the administrator).
pub async fn verify(State(state): State<AppState>, ctx: RequestContext, admin: Admin<AuditRead>) -> Response {
    let r = match audit::verify(&state, admin.caller.actor(), Some(&ctx)).await {
        Ok(r) => r,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let cat = &state.ui.catalog;
    let notice =
        if r.ok { Notice::success(cat.get("admin.chain_ok")) } else { Notice::error(cat.get("admin.chain_broken")) };
    let page = VerifyPage {
        c: admin.chrome(&state, "admin.verify_title", "audit").with(Some(notice)),
        ok: r.ok,
        events_checked: r.events_checked,
        checkpoints_checked: r.checkpoints_checked,
        first_bad_seq: r.first_bad_seq,
        fault: r.fault.map(|f| f.as_str().to_string()).unwrap_or_default(),
    };
    html(StatusCode::OK, &page)
}

/// The filtered view, oldest first, streamed as JSON Lines or CSV (recorded before the first
/// byte, as `audit.exported`).
pub async fn export(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<AuditExport>,
    Query(f): Query<FilterForm>,
) -> Response {
    let format = if f.format == "csv" { ExportFormat::Csv } else { ExportFormat::JsonLines };
    let filter = match f.filter() {
        Ok(filter) => filter,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let limiter = &state.shield.rate_limits.limiter;
    let stream = match audit::export(&state, limiter, &admin.caller, Some(&ctx), filter, format).await {
        Ok(s) => s,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let name = format!("attachment; filename=\"rampart-audit.{}\"", format.extension());
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

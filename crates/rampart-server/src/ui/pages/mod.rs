//! The page handlers, by area: each reads its form or query, calls one use case, and renders
//! a template from a view model (or redirects after a successful post). What several areas
//! share is here.

mod account;
mod activity;
mod devices;
mod keys;
mod sign_in;

pub use account::*;
pub use activity::*;
pub use devices::*;
pub use keys::*;
pub use sign_in::*;

use super::redirect::{self, Target};
use super::{Chrome, MaybeViewer, MessagePage, Notice, PageForm, PublicForm, Viewer, html, refusal, see_other};
use crate::AppState;
use crate::routes::auth::{cleared_cookie, session_cookie};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::services::factors::Reauth;
use rampart_core::services::login::{self, Issued, LoginOutcome};
use rampart_core::services::step_up::{Answer, StepUpRequired};
use rampart_core::services::{api_keys, audit, mfa, notifications, passwords, registration, sessions};
use rampart_core::{RequestContext, ServiceError};
use rampart_domain::SessionId;
use rampart_domain::device::parse_user_agent;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time as the pages show it: `2025-01-31 14:05 UTC`.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// The machine-readable form of a time, for `<time datetime>`.
fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Whether the request came from htmx (it then wants a fragment, not a page).
fn htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

fn message<'a>(c: Chrome<'a>, heading: &str, body: &str, link: &'static str, link_text: &str) -> MessagePage<'a> {
    let cat = &c.ui.catalog;
    let (heading, body, link_text) =
        (cat.get(heading).to_string(), cat.get(body).to_string(), cat.get(link_text).to_string());
    MessagePage { c, heading, body, link, link_text }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// A refused use case on a signed-in page with nothing better to show: the reason.
fn account_error(state: &AppState, auth: &rampart_core::authz::Authenticated, e: &ServiceError) -> Response {
    let c = Chrome::account(state, auth, "error.title", "account").with(Some(refusal(&state.ui, e)));
    html(StatusCode::OK, &message(c, "error.title", "error.try_again", "/ui/account", "nav.account"))
}

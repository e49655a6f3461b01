//! The system page: the version, the database backend and whether it answers, the rate
//! limiter's store (memory, Redis, degraded), the configuration in effect with its secrets
//! redacted, and the access-token signing keys (current and recently retired) with rotation
//! (destructive: confirmed after a recent re-authentication, recorded naming the
//! administrator). Reading needs `system:read`, rotating `signing_keys:rotate`.

use super::{Admin, Confirmation, Fields, confirm, error_page, when};
use crate::AppState;
use crate::auth::{SigningKeysRotate, SystemRead};
use crate::ui::{Chrome, html, see_other};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_core::RequestContext;
use rampart_core::services::console;
use serde::Deserialize;

#[derive(Debug)]
pub struct KeyRow {
    kid: String,
    alg: String,
    created: String,
    retired: String,
    current: bool,
}

#[derive(Template, Debug)]
#[template(path = "admin/system.html")]
pub struct SystemPage<'a> {
    c: Chrome<'a>,
    version: &'static str,
    backend: &'static str,
    db_ok: bool,
    db_ms: String,
    limiter: &'static str,
    keys: Vec<KeyRow>,
    config: String,
    may_rotate: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn page(State(state): State<AppState>, admin: Admin<SystemRead>, Query(q): Query<DoneQuery>) -> Response {
    let keys = match console::signing_keys(&state).await {
        Ok(k) => k,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let current = state.signing.ring().current.kid().to_string();
    let (db_ok, took) = console::database_check(&state).await;
    let limits = &state.shield.rate_limits.limiter;
    let limiter = match (limits.uses_redis(), limits.is_degraded()) {
        (_, true) => "degraded",
        (true, false) => "redis",
        (false, false) => "memory",
    };
    let page = SystemPage {
        c: admin.chrome(&state, "admin.system_title", "system").done(q.done.as_deref()),
        version: env!("CARGO_PKG_VERSION"),
        backend: state.store.backend().as_str(),
        db_ok,
        db_ms: format!("{:.1}", took.as_secs_f64() * 1000.0),
        limiter,
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                current: k.kid == current,
                kid: k.kid,
                alg: k.alg,
                created: when(k.created_at),
                retired: k.retired_at.map(when).unwrap_or_default(),
            })
            .collect(),
        config: state.ui.config_redacted.clone(),
        may_rotate: admin.may("signing_keys:rotate"),
    };
    html(StatusCode::OK, &page)
}

/// Rotates the signing key (destructive).
pub async fn rotate(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<SigningKeysRotate>,
    form: Fields,
) -> Response {
    let what = Confirmation {
        action: "/ui/admin/system/rotate".into(),
        question: state.ui.catalog.get("admin.confirm_rotate").to_string(),
        submit: "admin.rotate",
        typed: None,
        back: "/ui/admin/system".into(),
        section: "system",
    };
    if let Err(page) = confirm(&state, &ctx, &admin, &form, what).await {
        return page;
    }
    match console::rotate_signing_key(&state, &admin.caller).await {
        Ok(_) => see_other("/ui/admin/system?done=admin_key_rotated"),
        Err(e) => error_page(&state, &admin.auth, &e),
    }
}

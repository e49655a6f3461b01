//! API keys across users: filtered by owner, scope, expiry and last use, newest first a keyset
//! page at a time; each revoked from here (through the owner's page's action). Reading needs
//! `users:read`, revoking `users:write`.

use super::{Admin, error_page, when};
use crate::AppState;
use crate::auth::UsersRead;
use crate::ui::{Chrome, html};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_core::RequestContext;
use rampart_core::services::console;
use rampart_store::KeySearch;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyQuery {
    owner: String,
    scope: String,
    /// `YYYY-MM-DD`.
    expires_before: String,
    unused_since: String,
    cursor: String,
}

fn day(s: &str) -> Option<OffsetDateTime> {
    let d = time::Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc())
}

#[derive(Debug)]
pub struct Row {
    id: String,
    owner_id: String,
    owner: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Template, Debug)]
#[template(path = "admin/keys.html")]
pub struct KeysPage<'a> {
    c: Chrome<'a>,
    q: KeyQuery,
    rows: Vec<Row>,
    next: String,
    may_write: bool,
}

pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<UsersRead>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let search = KeySearch {
        owner: Some(q.owner.clone()).filter(|s| !s.trim().is_empty()),
        scope: Some(q.scope.clone()).filter(|s| !s.trim().is_empty()),
        expires_before: day(&q.expires_before),
        unused_since: day(&q.unused_since),
    };
    let before = q.cursor.parse().ok();
    let (keys, next) = match console::all_keys(&state, &ctx, &admin.caller, &search, before, 50).await {
        Ok(r) => r,
        Err(e) => return error_page(&state, &admin.auth, &e),
    };
    let never = state.ui.catalog.get("admin.never");
    let rows = keys
        .into_iter()
        .map(|r| Row {
            id: r.key.id.to_string(),
            owner_id: r.key.user_id.to_string(),
            owner: r.owner_email,
            name: r.key.name,
            prefix: r.key.prefix,
            scopes: r.key.scopes.join(" "),
            created: when(r.key.created_at),
            expires: r.key.expires_at.map_or_else(|| never.to_string(), when),
            last_used: r.key.last_used_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    let next = next.map_or_else(String::new, |id| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("owner", &q.owner),
            ("scope", &q.scope),
            ("expires_before", &q.expires_before),
            ("unused_since", &q.unused_since),
        ] {
            if !v.is_empty() {
                url.append_pair(k, v);
            }
        }
        url.append_pair("cursor", &id.to_string());
        format!("/ui/admin/keys?{}", url.finish())
    });
    let c = admin.chrome(&state, "admin.keys_title", "keys");
    html(StatusCode::OK, &KeysPage { c, q, rows, next, may_write: admin.may("users:write") })
}

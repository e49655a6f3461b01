//! The devices signed in to the account.

use super::*;

/// One session as the page shows it.
#[derive(Debug)]
pub struct SessionRow {
    id: String,
    device: String,
    ip: String,
    created: String,
    last_active: String,
    last_active_iso: String,
    current: bool,
}

#[derive(Template, Debug)]
#[template(path = "sessions.html")]
pub struct SessionsPage<'a> {
    c: Chrome<'a>,
    rows: Vec<SessionRow>,
    others: bool,
}

pub async fn sessions(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let list = match sessions::list(&state, &auth).await {
        Ok(l) => l,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let unknown = state.ui.catalog.get("sessions.unknown_device");
    let rows: Vec<SessionRow> = list
        .iter()
        .map(|s| {
            let d = parse_user_agent(s.user_agent.as_deref());
            let device = match (d.browser, d.os) {
                (Some(b), Some(o)) => format!("{b} · {o}"),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => unknown.to_string(),
            };
            SessionRow {
                id: s.id.to_string(),
                device,
                ip: s.ip.clone().unwrap_or_default(),
                created: when(s.created_at),
                last_active: when(s.last_active_at),
                last_active_iso: iso(s.last_active_at),
                current: s.id == auth.session.id,
            }
        })
        .collect();
    // This device first, then the others as listed (newest first).
    let (mut rows, rest): (Vec<SessionRow>, Vec<SessionRow>) = rows.into_iter().partition(|r| r.current);
    rows.extend(rest);
    let others = rows.len() > 1;
    let page = SessionsPage {
        c: Chrome::account(&state, &auth, "sessions.title", "sessions").done(q.done.as_deref()),
        rows,
        others,
    };
    html(StatusCode::OK, &page)
}

/// Signs one session out. From htmx, the empty answer removes its row.
pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse().map(SessionId) else { return account_error(&state, &auth, &ServiceError::NotFound) };
    match sessions::revoke_own(&state, &ctx, &auth, id).await {
        Ok(()) if id == auth.session.id => see_other("/ui/login?done=signed_out"),
        Ok(()) if htmx(&headers) => StatusCode::OK.into_response(),
        Ok(()) => see_other("/ui/account/sessions?done=session_revoked"),
        Err(e) => account_error(&state, &auth, &e),
    }
}

pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
) -> Response {
    match sessions::revoke_all_own(&state, &ctx, &auth, true).await {
        Ok(_) => see_other("/ui/account/sessions?done=others_revoked"),
        Err(e) => account_error(&state, &auth, &e),
    }
}

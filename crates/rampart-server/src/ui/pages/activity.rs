//! The account's security events.

use super::*;

#[derive(Debug)]
pub struct EventRow {
    when: String,
    when_iso: String,
    what: String,
    /// `success`, `failure` or `denied` (a CSS class).
    outcome: &'static str,
    outcome_text: String,
    ip: String,
    device: String,
}

#[derive(Template, Debug)]
#[template(path = "activity.html")]
pub struct ActivityPage<'a> {
    c: Chrome<'a>,
    rows: Vec<EventRow>,
}

/// How many events the activity page shows.
const ACTIVITY_LIMIT: u32 = 50;

pub async fn activity(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    let events = match audit::my_activity(&state, &auth, ACTIVITY_LIMIT).await {
        Ok(e) => e,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let cat = &state.ui.catalog;
    let rows = events
        .into_iter()
        .map(|s| {
            let e = s.event;
            let action = e.action.as_str();
            let key = format!("event.{action}");
            let d = parse_user_agent(e.user_agent.as_deref());
            EventRow {
                when: when(e.ts),
                when_iso: iso(e.ts),
                what: if cat.has(&key) { cat.get(&key).to_string() } else { action.to_string() },
                outcome: e.outcome.as_str(),
                outcome_text: cat.get(&format!("outcome.{}", e.outcome.as_str())).to_string(),
                ip: e.ip.map(|i| i.to_string()).unwrap_or_default(),
                device: d.browser.unwrap_or_default(),
            }
        })
        .collect();
    html(StatusCode::OK, &ActivityPage { c: Chrome::account(&state, &auth, "activity.title", "activity"), rows })
}

//! API keys: the list, creating one (shown once), a key's use per hour, replacing and revoking.

use super::*;

#[derive(Debug)]
pub struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
    /// For a replaced key: until when it still works.
    replaced_until: String,
}

/// Until when a replaced key still works (its grace ends as its expiry); empty otherwise.
fn replaced_until(k: &rampart_store::StoredApiKey) -> String {
    k.rotated_to.and(k.revoked_at.or(k.expires_at)).map(when).unwrap_or_default()
}

#[derive(Template, Debug)]
#[template(path = "keys.html")]
pub struct KeysPage<'a> {
    c: Chrome<'a>,
    rows: Vec<KeyRow>,
}

pub async fn keys(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let list = match api_keys::list_own(&state, &auth).await {
        Ok(l) => l,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let now = state.clock.now();
    let never = state.ui.catalog.get("keys.never");
    let rows = list
        .into_iter()
        .filter(|k| k.revoked_at.is_none_or(|t| t > now) && k.expires_at.is_none_or(|t| t > now))
        .map(|k| KeyRow {
            replaced_until: replaced_until(&k),
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.join(" "),
            created: when(k.created_at),
            expires: k.expires_at.map_or_else(|| never.to_string(), when),
            last_used: k.last_used_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    html(
        StatusCode::OK,
        &KeysPage { c: Chrome::account(&state, &auth, "keys.title", "keys").done(q.done.as_deref()), rows },
    )
}

#[derive(Template, Debug)]
#[template(path = "key_new.html")]
pub struct NewKeyPage<'a> {
    c: Chrome<'a>,
    name: String,
    scopes: String,
    expires_in_days: String,
}

pub async fn new_key_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    let c = Chrome::account(&state, &auth, "keys.new_title", "keys");
    html(StatusCode::OK, &NewKeyPage { c, name: String::new(), scopes: String::new(), expires_in_days: "90".into() })
}

#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    password: String,
}

#[derive(Template, Debug)]
#[template(path = "key_created.html")]
pub struct KeyCreatedPage<'a> {
    c: Chrome<'a>,
    name: String,
    key: String,
    expires: String,
}

/// The page that shows a new key's secret, once (after creating or rotating it).
fn key_shown_once(
    state: &AppState,
    auth: &rampart_core::authz::Authenticated,
    stored: &rampart_store::StoredApiKey,
    secret: &rampart_domain::apikey::ApiKey,
    notice: &str,
) -> Response {
    let c = Chrome::account(state, auth, "keys.created_title", "keys")
        .with(Some(Notice::success(state.ui.catalog.get(notice))));
    let never = state.ui.catalog.get("keys.never");
    let page = KeyCreatedPage {
        c,
        name: stored.name.clone(),
        key: secret.expose().to_string(),
        expires: stored.expires_at.map_or_else(|| never.to_string(), when),
    };
    html(StatusCode::CREATED, &page)
}

/// Creates a key; its secret is shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<NewKeyForm>,
) -> Response {
    let days = f.expires_in_days.trim();
    let expires_in_days = match days.parse::<u32>() {
        Ok(d) => Some(d),
        Err(_) if days.is_empty() => None,
        Err(_) => Some(0), // refused by the use case as out of range, with its message
    };
    let new = api_keys::NewKey {
        name: f.name.clone(),
        scopes: f
            .scopes
            .split([' ', ',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect(),
        expires_in_days,
        rate_limit: None,
    };
    let password = Some(f.password.as_str()).filter(|p| !p.is_empty());
    match api_keys::create_own(&state, &ctx, &auth, password, new).await {
        Ok((stored, secret)) => key_shown_once(&state, &auth, &stored, &secret, "keys.shown_once"),
        Err(e) => {
            let c = Chrome::account(&state, &auth, "keys.new_title", "keys").with(Some(refusal(&state.ui, &e)));
            html(StatusCode::OK, &NewKeyPage { c, name: f.name, scopes: f.scopes, expires_in_days: f.expires_in_days })
        }
    }
}

/// Revokes one key. From htmx, the empty answer removes its row.
pub async fn revoke_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else { return account_error(&state, &auth, &ServiceError::NotFound) };
    let actor = rampart_domain::Actor::User(auth.user_id.0);
    match api_keys::revoke(&state, auth.user_id, id, actor, Some(&ctx)).await {
        Ok(true) if htmx(&headers) => StatusCode::OK.into_response(),
        Ok(true) => see_other("/ui/account/keys?done=key_revoked"),
        Ok(false) => account_error(&state, &auth, &ServiceError::NotFound),
        Err(e) => account_error(&state, &auth, &e),
    }
}

/// One bar of the usage chart, in the chart's coordinates (a 480 × 120 view box).
#[derive(Debug)]
pub struct Bar {
    x: u32,
    y: u32,
    height: u32,
    /// The refused part, drawn on top of the bar.
    rejected_y: u32,
    rejected_height: u32,
    label: String,
}

/// Hours the chart shows.
const CHART_HOURS: i64 = 24;
const CHART_HEIGHT: u32 = 100;

/// The last [`CHART_HOURS`] hours as bars, scaled to the busiest hour.
fn bars(now: OffsetDateTime, hours: &[api_keys::UsageHour], requests: &str) -> (Vec<Bar>, i64) {
    let start = now.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0));
    let start = start.unwrap_or(now) - time::Duration::hours(CHART_HOURS - 1);
    let count = |i: i64| {
        let hour = start + time::Duration::hours(i);
        hours.iter().find(|(h, _, _)| *h == hour).map_or((hour, 0, 0), |(h, r, x)| (*h, *r, *x))
    };
    let slots: Vec<_> = (0..CHART_HOURS).map(count).collect();
    let max = slots.iter().map(|(_, r, x)| r + x).max().unwrap_or(0);
    let scale = |n: i64| if max == 0 { 0 } else { (n * i64::from(CHART_HEIGHT) / max) as u32 };
    let bars = slots
        .iter()
        .enumerate()
        .map(|(i, (hour, r, x))| {
            let (total, refused) = (scale(r + x), scale(*x));
            Bar {
                x: i as u32 * 20 + 2,
                y: 110 - total,
                height: total,
                rejected_y: 110 - total,
                rejected_height: refused,
                label: format!("{:02}:00 UTC: {} {requests}", hour.hour(), r + x),
            }
        })
        .collect();
    (bars, max)
}

#[derive(Template, Debug)]
#[template(path = "key.html")]
pub struct KeyPage<'a> {
    c: Chrome<'a>,
    row: KeyRow,
    bars: Vec<Bar>,
    /// Hour labels under the chart: (x, text).
    ticks: Vec<(u32, String)>,
    busiest: i64,
    total: i64,
}

pub async fn key(
    State(state): State<AppState>,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let now = state.clock.now();
    let since = now - time::Duration::hours(CHART_HOURS + 1);
    let (k, hours) = match api_keys::usage_own(&state, &auth, id, since, now + time::Duration::seconds(1)).await {
        Ok(u) => u,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let cat = &state.ui.catalog;
    let never = cat.get("keys.never");
    let (bars, busiest) = bars(now, &hours, cat.get("keys.requests"));
    let ticks = (0..CHART_HOURS)
        .step_by(6)
        .map(|i| {
            let hour = now - time::Duration::hours(CHART_HOURS - 1 - i);
            (i as u32 * 20 + 2, format!("{:02}:00", hour.hour()))
        })
        .collect();
    let row = KeyRow {
        replaced_until: replaced_until(&k),
        id: k.id.to_string(),
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes.join(" "),
        created: when(k.created_at),
        expires: k.expires_at.map_or_else(|| never.to_string(), when),
        last_used: k.last_used_at.map_or_else(|| never.to_string(), when),
    };
    let total = hours.iter().map(|(_, r, x)| r + x).sum();
    let c = Chrome::account(&state, &auth, "keys.detail_title", "keys").done(q.done.as_deref());
    html(StatusCode::OK, &KeyPage { c, row, bars, ticks, busiest, total })
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_seconds: u32,
    #[serde(default)]
    password: String,
}

/// Replaces a key: the new one shown once, the old one working for the grace chosen.
pub async fn rotate_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
    PageForm(f): PageForm<RotateForm>,
) -> Response {
    let password = Some(f.password.as_str()).filter(|p| !p.is_empty());
    match api_keys::rotate_own(&state, &ctx, &auth, password, id, f.grace_seconds).await {
        Ok((stored, secret)) => key_shown_once(&state, &auth, &stored, &secret, "keys.rotated"),
        Err(e) => account_error(&state, &auth, &e),
    }
}

//! The administrator's console (`/ui/admin/`): what its pages need beyond the `/v1/admin/*`
//! use cases in [`crate::services::admin`], [`crate::services::audit`] and
//! [`crate::services::ip_rules`], which the pages call as they are.
//!
//! - the security dashboard, counted from the audit log over a chosen range;
//! - the user search with filters and keyset pages, and one user's whole picture;
//! - acting on one user's session, key or second factors (within the caller's ceiling, as
//!   every `admin` use case: nobody acts on a user more powerful than themselves);
//! - API keys across users;
//! - the re-authentication destructive actions need ([`require_recent_reauth`]).

use crate::App;
use crate::authz::{Authenticated, Caller};
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::services::admin;
use crate::services::factors::{self, Reauth};
use rampart_domain::audit::AuditFilter;
use rampart_domain::{Action, Outcome, Resource, Session, SessionId, Severity, UserId};
use rampart_store::{
    ConsoleUser, KeyOwnerRow, KeySearch, MfaStatus, RoleAdoption, StoredApiKey, StoredEvent, UserSearch,
};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The dashboard's time ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    pub fn parse(s: &str) -> Option<Range> {
        Some(match s {
            "1h" => Range::Hour,
            "24h" => Range::Day,
            "7d" => Range::Week,
            "30d" => Range::Month,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// The whole range and its intervals: 12 × 5 min, 24 × 1 h, 28 × 6 h, 30 × 1 day.
    pub fn intervals(self) -> (Duration, usize) {
        match self {
            Range::Hour => (Duration::minutes(5), 12),
            Range::Day => (Duration::hours(1), 24),
            Range::Week => (Duration::hours(6), 28),
            Range::Month => (Duration::days(1), 30),
        }
    }
}

/// Counts per interval, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub start: OffsetDateTime,
    pub step: Duration,
    pub counts: Vec<u64>,
}

impl Series {
    pub fn new(start: OffsetDateTime, step: Duration, n: usize) -> Series {
        Series { start, step, counts: vec![0; n] }
    }

    /// Adds `weight` to the interval holding `t` (outside the range: ignored).
    pub fn add(&mut self, t: OffsetDateTime, weight: u64) {
        if t < self.start || self.step <= Duration::ZERO {
            return;
        }
        let i = ((t - self.start).whole_microseconds() / self.step.whole_microseconds()) as usize;
        if let Some(c) = self.counts.get_mut(i) {
            *c += weight;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The audit chain's last verification, as recorded by `audit.verified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastVerification {
    pub at: OffsetDateTime,
    pub ok: bool,
    pub events_checked: u64,
    pub first_bad_seq: Option<i64>,
}

/// How rate limits are counted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterBackend {
    Memory,
    Redis,
    /// Redis is configured but failing: this instance counts alone with the fallback quotas.
    Degraded,
}

impl LimiterBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            LimiterBackend::Memory => "memory",
            LimiterBackend::Redis => "redis",
            LimiterBackend::Degraded => "degraded",
        }
    }
}

/// The security dashboard over one range.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub range: Range,
    pub until: OffsetDateTime,
    pub sign_ins_ok: Series,
    pub sign_ins_failed: Series,
    /// Failed sign-ins and second-factor answers (answered 401).
    pub unauthorized: u64,
    /// Refusals for a missing permission, a blocked address or a gateway rule (403).
    pub forbidden: u64,
    /// Rate-limited requests (429).
    pub limited: u64,
    pub lockouts: u64,
    pub auto_blocks: u64,
    pub active_sessions: i64,
    pub mfa_by_role: Vec<RoleAdoption>,
    /// Addresses with the most refusals, most first (at most 5).
    pub top_addresses: Vec<(String, u64)>,
    /// Routes (or rate-limit rules, or permissions) with the most refusals, most first (at most 5).
    pub top_routes: Vec<(String, u64)>,
    pub last_verification: Option<LastVerification>,
    pub limiter: LimiterBackend,
    /// True when the range held more events than were read ([`DASHBOARD_EVENT_CAP`]).
    pub truncated: bool,
}

/// At most this many events of each counted action are read for one dashboard.
pub const DASHBOARD_EVENT_CAP: usize = 200_000;

/// How many occurrences an event stands for: a summary of aggregated events carries its count.
fn weight(e: &StoredEvent) -> u64 {
    e.event.details.get("aggregated").and_then(|a| a.get("count")).and_then(serde_json::Value::as_u64).unwrap_or(1)
}

/// The events of `action` (a prefix) in `[since, until)`, oldest first, a page at a time.
async fn each_event(
    state: &App,
    action: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    mut f: impl FnMut(&StoredEvent),
) -> Result<bool, ServiceError> {
    let filter =
        AuditFilter { action: Some(action.into()), since: Some(since), until: Some(until), ..AuditFilter::default() };
    let mut after = i64::MIN;
    let mut seen = 0usize;
    loop {
        let page = state.store.export_page(&filter, after, 1000).await?;
        for e in &page {
            f(e);
        }
        seen += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 => after = last.seq,
            _ => return Ok(false),
        }
        if seen >= DASHBOARD_EVENT_CAP {
            return Ok(true);
        }
    }
}

fn top(counts: HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The dashboard of `range`, ending now; `limiter` is the rate limiter's state as the
/// server's shield sees it. The caller holds `audit:read` (the page's guard).
pub async fn dashboard(state: &App, range: Range, limiter: LimiterBackend) -> Result<Dashboard, ServiceError> {
    let (step, n) = range.intervals();
    let until = state.clock.now();
    let since = until - step * i32::try_from(n).unwrap_or(i32::MAX);
    let mut ok = Series::new(since, step, n);
    let mut failed = Series::new(since, step, n);
    let (mut unauthorized, mut forbidden, mut limited, mut lockouts, mut auto_blocks) = (0, 0, 0, 0, 0);
    let mut addresses: HashMap<String, u64> = HashMap::new();
    let mut routes: HashMap<String, u64> = HashMap::new();
    let mut truncated = false;
    let mut refused = |e: &StoredEvent, w: u64, route: Option<String>| {
        if let Some(ip) = e.event.ip {
            *addresses.entry(ip.to_string()).or_default() += w;
        }
        if let Some(r) = route {
            *routes.entry(r).or_default() += w;
        }
    };
    let detail = |e: &StoredEvent, k: &str| e.event.details.get(k).and_then(|v| v.as_str()).map(str::to_string);
    truncated |= each_event(state, "auth.login", since, until, |e| {
        let w = weight(e);
        match e.event.outcome {
            Outcome::Success => ok.add(e.event.ts, w),
            _ => {
                failed.add(e.event.ts, w);
                unauthorized += w;
                refused(e, w, Some("sign-in".into()));
            }
        }
    })
    .await?;
    truncated |= each_event(state, "mfa.failed", since, until, |e| {
        if e.event.outcome == Outcome::Failure {
            let w = weight(e);
            unauthorized += w;
            refused(e, w, Some("second factor".into()));
        }
    })
    .await?;
    for action in ["authz.denied", "ip.blocked", "gateway.denied"] {
        truncated |= each_event(state, action, since, until, |e| {
            let w = weight(e);
            forbidden += w;
            let route = detail(e, "route")
                .or_else(|| detail(e, "path"))
                .or_else(|| detail(e, "permission").map(|p| format!("needs {p}")));
            refused(e, w, route);
        })
        .await?;
    }
    truncated |= each_event(state, "ratelimit.exceeded", since, until, |e| {
        if e.event.outcome == Outcome::Denied {
            let w = weight(e);
            limited += w;
            refused(e, w, detail(e, "rule").map(|r| format!("rate limit {r}")));
        }
    })
    .await?;
    truncated |= each_event(state, "auth.lockout", since, until, |e| lockouts += weight(e)).await?;
    truncated |= each_event(state, "ip_rule.created", since, until, |e| {
        if e.event.details.get("automatic").and_then(serde_json::Value::as_bool) == Some(true) {
            auto_blocks += 1;
        }
    })
    .await?;
    let last_verification = last_verification(state).await?;
    Ok(Dashboard {
        range,
        until,
        sign_ins_ok: ok,
        sign_ins_failed: failed,
        unauthorized,
        forbidden,
        limited,
        lockouts,
        auto_blocks,
        active_sessions: state.store.count_live_sessions(until).await?,
        mfa_by_role: state.store.mfa_adoption_by_role().await?,
        top_addresses: top(addresses, 5),
        top_routes: top(routes, 5),
        last_verification,
        limiter,
        truncated,
    })
}

/// The newest `audit.verified` event's verdict.
pub async fn last_verification(state: &App) -> Result<Option<LastVerification>, ServiceError> {
    let filter = AuditFilter { action: Some(Action::AuditVerified.as_str().into()), ..AuditFilter::default() };
    let newest = state.store.query_events(&filter, None, 1).await?;
    Ok(newest.first().map(|e| LastVerification {
        at: e.event.ts,
        ok: e.event.outcome == Outcome::Success,
        events_checked: e.event.details.get("events_checked").and_then(serde_json::Value::as_u64).unwrap_or(0),
        first_bad_seq: e.event.details.get("first_bad_seq").and_then(serde_json::Value::as_i64),
    }))
}

/// A page of the user list.
#[derive(Debug)]
pub struct UserList {
    pub users: Vec<ConsoleUser>,
    pub next: Option<UserId>,
}

/// Searches users with the console's filters, a keyset page at a time (after `after`, in id
/// order). Recorded like the JSON list (`user.read`, with the search).
pub async fn search_users(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    search: &UserSearch,
    after: Option<UserId>,
    limit: u32,
) -> Result<UserList, ServiceError> {
    let limit = limit.clamp(1, 200);
    let (users, more) = state.store.search_users(search, after, limit, state.clock.now()).await?;
    let next = if more { users.last().map(|u| u.user.id) } else { None };
    let ev =
        ctx.event(&state.events, Action::UserRead, Outcome::Success).actor(caller.actor()).details(serde_json::json!({
            "view": "console",
            "query": search.q,
            "role": search.role,
            "disabled": search.disabled,
            "mfa": search.mfa,
            "locked": search.locked,
            "returned": users.len(),
        }));
    state.events.record(ev).await?;
    Ok(UserList { users, next })
}

/// Everything the console shows of one user.
#[derive(Debug)]
pub struct UserDetail {
    pub user: ConsoleUser,
    pub mfa: MfaStatus,
    pub sessions: Vec<Session>,
    pub keys: Vec<StoredApiKey>,
    /// The newest events about or by the user.
    pub events: Vec<StoredEvent>,
    /// When a scheduled erasure is due (restorable until then).
    pub erase_after: Option<time::OffsetDateTime>,
}

/// One user's whole picture (recorded as `user.read` of that user).
pub async fn user_detail(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
) -> Result<UserDetail, ServiceError> {
    let user = admin::get_user(state, ctx, caller, id).await?;
    let id = user.id;
    let Some(console_user) = state.store.console_user(id, state.clock.now()).await? else {
        return Err(ServiceError::NotFound);
    };
    let about =
        AuditFilter { resource_type: Some("user".into()), resource_id: Some(id.to_string()), ..AuditFilter::default() };
    let by = AuditFilter { actor_id: Some(id.0), ..AuditFilter::default() };
    let mut events = state.store.query_events(&about, None, 25).await?;
    events.extend(state.store.query_events(&by, None, 25).await?);
    events.sort_by_key(|e| std::cmp::Reverse(e.seq));
    events.dedup_by_key(|e| e.seq);
    events.truncate(25);
    Ok(UserDetail {
        user: console_user,
        mfa: state.store.mfa_status(id).await?,
        sessions: state.store.list_sessions(id, state.clock.now()).await?,
        keys: state.store.list_api_keys(id).await?,
        events,
        erase_after: state.store.erasure_due(id).await?,
    })
}

/// The user named by `id`, after checking that the caller covers every permission they hold.
async fn within_ceiling(
    state: &App,
    caller: &Caller,
    id: &str,
    what: &str,
) -> Result<rampart_domain::User, ServiceError> {
    let user = admin::target(state, id).await?;
    let held = state.store.user_permissions(user.id).await?;
    caller.require_covers(state, &held, what).await?;
    Ok(user)
}

/// Ends one session of a user (`not_found` for another user's or an ended one).
pub async fn revoke_user_session(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
    session: SessionId,
) -> Result<(), ServiceError> {
    let user = within_ceiling(state, caller, id, "ending this user's sessions").await?;
    let ev = ctx
        .event(&state.events, Action::SessionRevoked, Outcome::Success)
        .actor(caller.actor())
        .resource(Resource::new("session", session))
        .details(serde_json::json!({ "reason": "admin", "scope": "one", "user_id": user.id.to_string() }));
    if state.store.revoke_session(user.id, session, state.clock.now(), "admin", &ev).await? {
        state.events.observed(&ev);
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Revokes one API key of a user.
pub async fn revoke_user_key(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
    key: Uuid,
) -> Result<(), ServiceError> {
    let user = within_ceiling(state, caller, id, "revoking this user's keys").await?;
    if crate::services::api_keys::revoke(state, user.id, key, caller.actor(), Some(ctx)).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Removes every second factor of a user (they enrol again at their next sign-in when a role
/// requires one), ends their sessions, records why, and tells them by e-mail.
pub async fn reset_factors(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> Result<(), ServiceError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ServiceError::Validation(vec![FieldProblem::new(
            "reason",
            "reason_required",
            "say why, in at most 500 characters",
        )]));
    }
    let user = within_ceiling(state, caller, id, "resetting this user's second factors").await?;
    let ev = ctx
        .event(&state.events, Action::MfaReset, Outcome::Success)
        .actor(caller.actor())
        .severity(Severity::Warning)
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "reason": reason }));
    if !state.store.reset_factors(user.id, state.clock.now(), &ev).await? {
        return Err(ServiceError::MfaNotEnabled);
    }
    state.events.observed(&ev);
    Ok(())
}

/// API keys of every user, newest first, a keyset page at a time (before `before`); the read
/// is recorded (`user.read`, view `api_keys`).
pub async fn all_keys(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    search: &KeySearch,
    before: Option<Uuid>,
    limit: u32,
) -> Result<(Vec<KeyOwnerRow>, Option<Uuid>), ServiceError> {
    let (rows, more) = state.store.list_all_api_keys(search, before, limit.clamp(1, 200)).await?;
    let ev = ctx.event(&state.events, Action::UserRead, Outcome::Success).actor(caller.actor()).details(
        serde_json::json!({ "view": "api_keys", "owner": search.owner, "scope": search.scope, "returned": rows.len() }),
    );
    state.events.record(ev).await?;
    let next = if more { rows.last().map(|r| r.key.id) } else { None };
    Ok((rows, next))
}

/// A destructive console action (erasing or disabling a user, changing roles, resetting
/// factors, rotating keys, clearing IP rules) needs a recent authentication: a sign-in within
/// `security.reauth_window_secs` (with two factors when the administrator has a second
/// factor), or the re-authentication presented now (the password, and a current code when
/// the account has a second factor: [`factors::reauthenticate`]). Without either:
/// `reauthentication_required`.
pub async fn require_recent_reauth(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Option<Reauth<'_>>,
) -> Result<(), ServiceError> {
    let now = state.clock.now();
    let window = state.settings.security.reauth_window;
    let has_factor = state.store.mfa_status(auth.user_id).await?.any();
    let recent =
        if has_factor { auth.session.is_recent_multi_factor(now, window) } else { auth.session.is_recent(now, window) };
    if recent {
        return Ok(());
    }
    match reauth {
        Some(r) if !r.password.is_empty() => factors::reauthenticate(state, ctx, auth, r).await.map(|_| ()),
        _ => Err(ServiceError::ReauthenticationRequired),
    }
}

/// Whether the administrator would be asked to re-authenticate for a destructive action now.
pub async fn needs_reauth(state: &App, auth: &Authenticated) -> Result<bool, ServiceError> {
    let now = state.clock.now();
    let window = state.settings.security.reauth_window;
    let mfa = state.store.mfa_status(auth.user_id).await?;
    Ok(!if mfa.any() { auth.session.is_recent_multi_factor(now, window) } else { auth.session.is_recent(now, window) })
}

/// Whether the administrator has a second factor (the re-authentication then asks for a code).
pub async fn has_second_factor(state: &App, auth: &Authenticated) -> Result<bool, ServiceError> {
    Ok(state.store.mfa_status(auth.user_id).await?.any())
}

/// One audit event by its position in the chain; the read is recorded (`audit.read`).
pub async fn audit_event(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    seq: i64,
) -> Result<StoredEvent, ServiceError> {
    let page = state.store.export_page(&AuditFilter::default(), seq.saturating_sub(1), 1).await?;
    let event = page.into_iter().find(|e| e.seq == seq).ok_or(ServiceError::NotFound)?;
    let ev = ctx
        .event(&state.events, Action::AuditRead, Outcome::Success)
        .actor(caller.actor())
        .details(serde_json::json!({ "view": "event", "seq": seq }));
    state.events.record(ev).await?;
    Ok(event)
}

/// The token signing keys: the current one and those retired within the last 30 days, newest
/// first (public parts only are shown).
pub async fn signing_keys(state: &App) -> Result<Vec<rampart_store::StoredSigningKey>, ServiceError> {
    Ok(state.store.signing_keys(state.clock.now() - Duration::days(30)).await?)
}

/// Rotates the access-token signing key on behalf of the caller (recorded naming them); the
/// new key's id.
pub async fn rotate_signing_key(state: &App, caller: &Caller) -> Result<String, ServiceError> {
    state.signing.rotate_by("console", caller.actor()).await.map_err(|e| ServiceError::Internal(Box::new(e)))
}

/// Whether the database answers, and how long a small query took.
pub async fn database_check(state: &App) -> (bool, std::time::Duration) {
    let t = std::time::Instant::now();
    let ok = state.store.count_users().await.is_ok();
    (ok, t.elapsed())
}

/// The permissions the caller's roles grant (which console sections to show).
pub async fn permissions(state: &App, auth: &Authenticated) -> Result<Vec<String>, ServiceError> {
    Ok(state.store.user_permissions(auth.user_id).await?)
}

/// The roles with their holders' addresses (at most `per_role` each).
pub async fn roles_with_holders(
    state: &App,
    per_role: u32,
) -> Result<Vec<(rampart_store::Role, Vec<ConsoleUser>, bool)>, ServiceError> {
    let mut out = Vec::new();
    for role in state.store.list_roles().await? {
        let search = UserSearch { role: Some(role.name.clone()), ..UserSearch::default() };
        let (holders, more) = state.store.search_users(&search, None, per_role, state.clock.now()).await?;
        out.push((role, holders, more));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn series_put_each_time_in_its_interval_and_ignore_the_rest() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut s = Series::new(t0, Duration::hours(1), 24);
        s.add(t0, 1);
        s.add(t0 + Duration::minutes(59), 2);
        s.add(t0 + Duration::hours(1), 1);
        s.add(t0 + Duration::hours(23) + Duration::minutes(59), 5);
        s.add(t0 + Duration::hours(24), 100);
        s.add(t0 - Duration::seconds(1), 100);
        assert_eq!(s.counts[0], 3);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[23], 5);
        assert_eq!(s.total(), 9);
    }

    #[test]
    fn ranges_parse_and_cover_their_span() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.as_str()), Some(r));
        }
        assert_eq!(Range::parse("2h"), None);
        let (step, n) = Range::Week.intervals();
        assert_eq!(step * n as i32, Duration::days(7));
        let (step, n) = Range::Month.intervals();
        assert_eq!(step * n as i32, Duration::days(30));
    }
}

//! API keys: creation within the owner's permissions, the cached verify path, per-key rate
//! limits, and batched usage counting.
//!
//! The verify path answers from memory after the first lookup of a key: the cache holds the
//! stored key and its owner's permissions for [`CACHE_TTL`]. Revoking or rotating a key on this
//! instance evicts it at once; another instance sees the change within the TTL. Usage counts
//! and `last_used_at` are added up in memory and written every [`USAGE_FLUSH_INTERVAL`] (and at
//! shutdown), never one write per request.

use crate::App;
use crate::FastMap;
use crate::error::{FieldProblem, ServiceError};
use rampart_domain::Permission;
use rampart_domain::apikey::{self, KeyFormatError};
use rampart_domain::{Action, Actor, Outcome, Resource, TokenHash, UserId};
use rampart_store::{StoredApiKey, UsageCount};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a verified key (and its owner's permissions) is answered from memory.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Live keys one user may hold.
pub const MAX_LIVE_KEYS: i64 = 100;
/// How often usage counters are written.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
const CACHE_MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone)]
struct Cached {
    principal: KeyPrincipal,
    fetched: Instant,
    /// `Store::api_keys_epoch` before the lookup: the entry answers only while it has not
    /// moved (a key or its owner changed here, or on another instance: the invalidation bus).
    epoch: u64,
}

/// A key that authenticated a request: what one lookup read, shared (cloning it is a
/// reference count). Its fields are read through [`VerifiedKey`].
#[derive(Debug, Clone)]
pub struct KeyPrincipal(Arc<VerifiedKey>);

/// The stored key and its owner's permissions, as read together by one lookup.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key: StoredApiKey,
    pub owner_permissions: Vec<String>,
}

impl std::ops::Deref for KeyPrincipal {
    type Target = VerifiedKey;

    fn deref(&self) -> &VerifiedKey {
        &self.0
    }
}

/// Equal when they say the same; the same lookup's principal (one allocation, never changed)
/// is known equal without reading it.
impl PartialEq for KeyPrincipal {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for KeyPrincipal {}

impl KeyPrincipal {
    pub fn new(key: StoredApiKey, owner_permissions: Vec<String>) -> Self {
        Self(Arc::new(VerifiedKey { key, owner_permissions }))
    }

    /// The key's scopes intersected with its owner's current permissions.
    pub fn allows(&self, needed: &str) -> bool {
        apikey::key_allows(&self.key.scopes, &self.owner_permissions, needed)
    }
}

/// Why a presented key does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Malformed, bad checksum, or no such key.
    Unknown,
    Expired,
    Revoked,
}

impl KeyRefusal {
    pub fn code(self) -> &'static str {
        match self {
            KeyRefusal::Unknown => "unknown",
            KeyRefusal::Expired => "expired",
            KeyRefusal::Revoked => "revoked",
        }
    }
}

/// The outcome of a per-key rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
}

/// Usage not yet written: (key, hour) → (requests, rejected, last used).
type UnwrittenUsage = FastMap<(Uuid, OffsetDateTime), (i64, i64, OffsetDateTime)>;

#[derive(Debug, Default)]
pub struct ApiKeys {
    /// Keyed by the key's SHA-256 (as `misses`); every map here is a [`FastMap`].
    cache: RwLock<FastMap<TokenHash, Cached>>,
    /// Bumped by every eviction: a lookup that started before an eviction does not put what
    /// it read (possibly stale) into the cache.
    generation: std::sync::atomic::AtomicU64,
    /// Fixed windows per key: (window start, requests in it).
    windows: Mutex<FastMap<Uuid, (Instant, u32)>>,
    usage: Mutex<UnwrittenUsage>,
    /// Well-formed keys that storage did not know, briefly: the CRC-32 checksum is easy to
    /// forge, so without this every junk key would cost a lookup. Cleared whenever a key is
    /// created or rotated here; another instance's new key is found within [`MISS_TTL`].
    misses: Mutex<FastMap<TokenHash, Instant>>,
}

/// How long an unknown key is answered from memory.
pub const MISS_TTL: Duration = Duration::from_secs(2);
const MISS_MAX_ENTRIES: usize = 10_000;

fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0)).unwrap_or(t)
}

impl ApiKeys {
    /// Authenticates a presented key: format and checksum first (no lookup for junk), then the
    /// cache, then storage. Does not count usage or apply the rate limit.
    pub async fn authenticate(&self, state: &App, presented: &str) -> Result<KeyPrincipal, KeyRefusal> {
        let hash = apikey::check_format(presented).map_err(|_: KeyFormatError| KeyRefusal::Unknown)?;
        let cached = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(&hash).cloned();
        let cached = match cached {
            Some(c) if c.fetched.elapsed() < CACHE_TTL && c.epoch == state.store.api_keys_epoch() => c,
            _ => {
                if self
                    .misses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&hash)
                    .is_some_and(|t| t.elapsed() < MISS_TTL)
                {
                    return Err(KeyRefusal::Unknown);
                }
                let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
                let epoch = state.store.api_keys_epoch();
                let key = state.store.api_key_by_hash(hash).await.map_err(|e| {
                    tracing::warn!(error = %e, "API key lookup failed");
                    KeyRefusal::Unknown
                })?;
                let Some(key) = key else {
                    self.remember_miss(hash);
                    return Err(KeyRefusal::Unknown);
                };
                let owner_permissions = state.store.user_permissions(UserId(key.user_id)).await.map_err(|e| {
                    tracing::warn!(error = %e, "API key owner lookup failed");
                    KeyRefusal::Unknown
                })?;
                let c = Cached { principal: KeyPrincipal::new(key, owner_permissions), fetched: Instant::now(), epoch };
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CACHE_MAX_ENTRIES {
                    cache.retain(|_, v| v.fetched.elapsed() < CACHE_TTL);
                }
                // Under the write lock, so no eviction can slip between this check and the insert.
                if cache.len() < CACHE_MAX_ENTRIES
                    && self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation
                {
                    cache.insert(hash, c.clone());
                }
                c
            }
        };
        let now = state.clock.now();
        let key = &cached.principal.key;
        if key.revoked_at.is_some() {
            return Err(KeyRefusal::Revoked);
        }
        if key.expires_at.is_some_and(|t| now >= t) {
            return Err(KeyRefusal::Expired);
        }
        Ok(cached.principal)
    }

    /// Drops a key from the cache (after revoke or rotate on this instance).
    fn remember_miss(&self, hash: TokenHash) {
        let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        if misses.len() >= MISS_MAX_ENTRIES {
            misses.retain(|_, t| t.elapsed() < MISS_TTL);
        }
        if misses.len() < MISS_MAX_ENTRIES {
            misses.insert(hash, Instant::now());
        }
    }

    /// Forgets every remembered unknown key (a key was just created).
    pub fn forget_misses(&self) {
        self.misses.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many unknown keys are remembered (tests).
    pub fn remembered_misses(&self) -> usize {
        self.misses.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn evict(&self, id: Uuid) {
        self.evict_where(|k| k.id == id);
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Drops every key of a user (after a change to their roles or account).
    pub fn evict_user(&self, user: UserId) {
        self.evict_where(|k| k.user_id == user.0);
    }

    fn evict_where(&self, matches: impl Fn(&StoredApiKey) -> bool) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.retain(|_, c| !matches(&c.principal.key));
    }

    /// Counts one request against the key's own rate limit (fixed windows of `per_seconds`).
    pub fn check_limit(&self, key: &StoredApiKey, now: Instant) -> Option<LimitState> {
        let (Some(requests), Some(per)) = (key.rate_limit_requests, key.rate_limit_per_seconds) else { return None };
        let limit = u32::try_from(requests).unwrap_or(u32::MAX);
        let period = Duration::from_secs(u64::try_from(per).unwrap_or(1).max(1));
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let entry = windows.entry(key.id).or_insert((now, 0));
        if now.duration_since(entry.0) >= period {
            *entry = (now, 0);
        }
        let reset = period.saturating_sub(now.duration_since(entry.0));
        if entry.1 >= limit {
            return Some(LimitState { allowed: false, limit, remaining: 0, reset });
        }
        entry.1 += 1;
        Some(LimitState { allowed: true, limit, remaining: limit - entry.1, reset })
    }

    /// Adds one request (or one rejection) to the key's usage of this hour.
    pub fn count(&self, key: Uuid, now: OffsetDateTime, rejected: bool) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let e = usage.entry((key, hour_of(now))).or_insert((0, 0, now));
        if rejected {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
        e.2 = e.2.max(now);
    }

    /// Writes the counted usage. Counts that fail to write are put back for the next flush.
    /// Also forgets rate-limit windows that ended (the longest window is a day).
    pub async fn flush(&self, state: &App) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (start, _)| start.elapsed() < Duration::from_secs(86_400));
        let drained: Vec<UsageCount> = {
            let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            usage
                .drain()
                .map(|((key_id, hour), (requests, rejected, last_used_at))| UsageCount {
                    key_id,
                    hour,
                    requests,
                    rejected,
                    last_used_at,
                })
                .collect()
        };
        if drained.is_empty() {
            return;
        }
        if let Err(e) = state.store.record_api_key_usage(&drained).await {
            tracing::warn!(error = %e, "cannot write API key usage; keeping it for the next flush");
            let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            for u in drained {
                let e = usage.entry((u.key_id, u.hour)).or_insert((0, 0, u.last_used_at));
                e.0 += u.requests;
                e.1 += u.rejected;
                e.2 = e.2.max(u.last_used_at);
            }
        }
    }
}

/// Checks a key, a required scope and its rate limit, and counts the request: the
/// `/v1/keys/verify` answer, and the gate of key-authenticated requests.
pub async fn verify(
    state: &App,
    presented: &str,
    scope: Option<&str>,
) -> Result<(KeyPrincipal, Option<LimitState>), (&'static str, Option<KeyPrincipal>, Option<LimitState>)> {
    let principal = state.api_keys.authenticate(state, presented).await.map_err(|r| (r.code(), None, None))?;
    if let Some(scope) = scope
        && !principal.allows(scope)
    {
        return Err(("insufficient_scope", Some(principal), None));
    }
    let now = state.clock.now();
    let limit = state.api_keys.check_limit(&principal.key, Instant::now());
    if limit.is_some_and(|l| !l.allowed) {
        state.api_keys.count(principal.key.id, now, true);
        return Err(("rate_limited", Some(principal), limit));
    }
    state.api_keys.count(principal.key.id, now, false);
    Ok((principal, limit))
}

/// A key's own rate limit: `requests` per `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

/// What a new key is to be.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: Option<u32>,
    pub rate_limit: Option<KeyRateLimit>,
}

/// Creates a key for `owner` within their current permissions (HTTP and CLI share this).
/// Returns the stored key and the secret, to be shown once.
pub async fn create(
    state: &App,
    owner: UserId,
    actor: rampart_domain::Actor,
    ctx: Option<&crate::events::RequestContext>,
    new: NewKey,
) -> Result<(StoredApiKey, apikey::ApiKey), ServiceError> {
    let permissions = state.store.user_permissions(owner).await?;
    let mut scopes = new.scopes;
    scopes.sort();
    scopes.dedup();
    validate_new_key(&new.name, &scopes, &permissions, new.expires_in_days, new.rate_limit)?;
    let max = state.settings.api_keys.max_lifetime_days;
    if let (Some(max), Some(asked)) = (max, new.expires_in_days)
        && asked > max
    {
        return Err(ServiceError::field(
            "expires_in_days",
            "out_of_range",
            format!("at most {max} days (api_keys.max_lifetime_days)"),
        ));
    }
    let expires_in_days = new.expires_in_days.or(max);
    let now = state.clock.now();
    let secret = apikey::ApiKey::generate(&mut rand::rngs::OsRng);
    let key = StoredApiKey {
        id: Uuid::now_v7(),
        user_id: owner.0,
        name: new.name.trim().to_string(),
        prefix: secret.display_prefix(),
        scopes,
        rate_limit_requests: new.rate_limit.map(|r| i64::from(r.requests)),
        rate_limit_per_seconds: new.rate_limit.map(|r| i64::from(r.per_seconds)),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + time::Duration::days(i64::from(d))),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    };
    let ev = state
        .events
        .event_for(ctx, rampart_domain::Action::ApiKeyCreated, rampart_domain::Outcome::Success)
        .actor(actor)
        .resource(rampart_domain::Resource::new("api_key", key.id))
        .details(serde_json::json!({ "name": key.name, "scopes": key.scopes, "prefix": key.prefix }));
    state.store.create_api_key(&key, secret.hash(), MAX_LIVE_KEYS, &ev).await.map_err(|e| match e {
        rampart_store::StoreError::Conflict(detail) => ServiceError::TooManyKeys(detail),
        e => e.into(),
    })?;
    state.api_keys.forget_misses();
    state.events.observed(&ev);
    Ok((key, secret))
}

/// Revokes one of `owner`'s keys; it stops working on this instance at once. False when the
/// owner has no such live key.
pub async fn revoke(
    state: &App,
    owner: UserId,
    id: Uuid,
    actor: rampart_domain::Actor,
    ctx: Option<&crate::events::RequestContext>,
) -> Result<bool, ServiceError> {
    let ev = state
        .events
        .event_for(ctx, rampart_domain::Action::ApiKeyRevoked, rampart_domain::Outcome::Success)
        .actor(actor)
        .resource(rampart_domain::Resource::new("api_key", id));
    if !state.store.revoke_api_key(owner, id, state.clock.now(), &ev).await? {
        return Ok(false);
    }
    state.api_keys.evict(id);
    state.events.observed(&ev);
    Ok(true)
}

/// Validates a new key's fields against the owner's current permissions.
pub fn validate_new_key(
    name: &str,
    scopes: &[String],
    owner_permissions: &[String],
    expires_in_days: Option<u32>,
    rate_limit: Option<KeyRateLimit>,
) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, code: &str, message: String| errors.push(FieldProblem::new(field, code, message));
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        err("name", "name_invalid", "1 to 100 characters, no control characters".into());
    }
    if scopes.len() > 50 {
        err("scopes", "too_many_scopes", "at most 50 scopes".into());
    }
    for s in scopes {
        if let Err(e) = Permission::parse(s) {
            err("scopes", "scope_invalid", e.to_string());
        } else if !apikey::covers(owner_permissions, s) {
            err("scopes", "scope_not_held", format!("you do not hold {s:?}; a key can never hold more than its owner"));
        }
    }
    if expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        err("expires_in_days", "out_of_range", "between 1 and 3650".into());
    }
    if let Some(r) = rate_limit
        && (r.requests == 0 || !(1..=86_400).contains(&r.per_seconds))
    {
        err("rate_limit", "out_of_range", "requests >= 1 and per_seconds between 1 and 86400".into());
    }
    if errors.is_empty() { Ok(()) } else { Err(ServiceError::Validation(errors)) }
}

/// Creating or rotating a key turns a session into lasting access, so it needs a recent
/// authentication: a session opened within `api_keys.reauth_window_secs`, or the password
/// (checked like a login: throttled, counted).
pub async fn require_recent_auth(
    state: &App,
    ctx: &crate::RequestContext,
    auth: &crate::authz::Authenticated,
    password: Option<&str>,
) -> Result<(), ServiceError> {
    if state.clock.now() - auth.session.created_at <= state.settings.api_keys.reauth_window {
        return Ok(());
    }
    let Some(password) = password else { return Err(ServiceError::ReauthenticationRequired) };
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    match crate::services::login::check_password(state, ctx, user.email.as_str(), password, "api_key_reauth").await {
        Ok(_) => Ok(()),
        Err(ServiceError::InvalidCredentials) => {
            Err(ServiceError::field("password", "password_incorrect", "the password is not right"))
        }
        Err(e) => Err(e),
    }
}

/// The signed-in user's own keys (never their secrets), newest first.
pub async fn list_own(state: &App, auth: &crate::authz::Authenticated) -> Result<Vec<StoredApiKey>, ServiceError> {
    Ok(state.store.list_api_keys(auth.user_id).await?)
}

/// One hour of a key's use: its start, requests answered, requests refused by its limit.
pub type UsageHour = (OffsetDateTime, i64, i64);

/// One of the signed-in user's keys with its hourly use in `[since, until)` (the counts held in
/// memory written first); `not_found` for a key that is not theirs.
pub async fn usage_own(
    state: &App,
    auth: &crate::authz::Authenticated,
    id: Uuid,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<(StoredApiKey, Vec<UsageHour>), ServiceError> {
    state.api_keys.flush(state).await;
    let key = state.store.api_key(auth.user_id, id).await?.ok_or(ServiceError::NotFound)?;
    let hours = state.store.api_key_usage(id, since, until).await?;
    Ok((key, hours))
}

/// A signed-in user creates a key of their own (after [`require_recent_auth`]).
pub async fn create_own(
    state: &App,
    ctx: &crate::RequestContext,
    auth: &crate::authz::Authenticated,
    password: Option<&str>,
    new: NewKey,
) -> Result<(StoredApiKey, apikey::ApiKey), ServiceError> {
    require_recent_auth(state, ctx, auth, password).await?;
    create(state, auth.user_id, Actor::User(auth.user_id.0), Some(ctx), new).await
}

/// A signed-in user rotates a key of their own (after [`require_recent_auth`]).
pub async fn rotate_own(
    state: &App,
    ctx: &crate::RequestContext,
    auth: &crate::authz::Authenticated,
    password: Option<&str>,
    id: Uuid,
    grace_secs: u32,
) -> Result<(StoredApiKey, apikey::ApiKey), ServiceError> {
    require_recent_auth(state, ctx, auth, password).await?;
    rotate(state, ctx, auth.user_id, id, grace_secs).await
}

/// The longest grace a rotated key may keep working.
pub const MAX_GRACE_SECS: u32 = 30 * 86_400;

/// Replaces one of `owner`'s live keys with a new one (same name, scopes within the owner's
/// permissions now, same limit). The old key keeps working for `grace_secs`, then stops.
/// Returns the new key and its secret, to be shown once; `not_found` for no such live key.
pub async fn rotate(
    state: &App,
    ctx: &crate::RequestContext,
    owner: UserId,
    id: Uuid,
    grace_secs: u32,
) -> Result<(StoredApiKey, apikey::ApiKey), ServiceError> {
    let now = state.clock.now();
    let old = state.store.api_key(owner, id).await?.filter(|k| k.is_live(now) && k.rotated_to.is_none());
    let old = old.ok_or(ServiceError::NotFound)?;
    if grace_secs > MAX_GRACE_SECS {
        return Err(ServiceError::field("grace_seconds", "out_of_range", format!("at most {MAX_GRACE_SECS}")));
    }
    // The new key may not outlive the old one's ceiling: the owner's permissions now.
    let permissions = state.store.user_permissions(owner).await?;
    let scopes: Vec<String> = old.scopes.iter().filter(|s| apikey::covers(&permissions, s)).cloned().collect();
    let secret = apikey::ApiKey::generate(&mut rand::rngs::OsRng);
    let new = StoredApiKey {
        id: Uuid::now_v7(),
        prefix: secret.display_prefix(),
        scopes,
        created_at: now,
        last_used_at: None,
        rotated_to: None,
        ..old.clone()
    };
    let ev = ctx
        .event(&state.events, Action::ApiKeyRotated, Outcome::Success)
        .actor(Actor::User(owner.0))
        .resource(Resource::new("api_key", old.id))
        .details(serde_json::json!({ "new_key_id": new.id, "grace_seconds": grace_secs }));
    let old_until = now + time::Duration::seconds(i64::from(grace_secs));
    if !state.store.rotate_api_key(owner, old.id, &new, secret.hash(), old_until, &ev).await? {
        return Err(ServiceError::NotFound);
    }
    state.api_keys.evict(old.id);
    state.api_keys.forget_misses();
    state.events.observed(&ev);
    Ok((new, secret))
}

/// Revokes every key of `owner` ("I leaked something").
pub async fn revoke_all(state: &App, ctx: &crate::RequestContext, owner: UserId) -> Result<(), ServiceError> {
    let ev = ctx
        .event(&state.events, Action::ApiKeyRevoked, Outcome::Success)
        .actor(Actor::User(owner.0))
        .resource(Resource::new("user", owner))
        .details(serde_json::json!({ "scope": "all" }));
    let ids = state.store.revoke_all_api_keys(owner, state.clock.now(), &ev).await?;
    for id in ids {
        state.api_keys.evict(id);
    }
    state.events.observed(&ev);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(limit: Option<(i64, i64)>) -> StoredApiKey {
        StoredApiKey {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            name: "k".into(),
            prefix: "rk_x".into(),
            scopes: vec![],
            rate_limit_requests: limit.map(|l| l.0),
            rate_limit_per_seconds: limit.map(|l| l.1),
            created_at: OffsetDateTime::now_utc(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            rotated_to: None,
        }
    }

    #[test]
    fn per_key_limits_use_fixed_windows() {
        let keys = ApiKeys::default();
        let k = key(Some((3, 60)));
        let t0 = Instant::now();
        let states: Vec<_> = (0..4).map(|_| keys.check_limit(&k, t0).unwrap()).collect();
        assert_eq!(states.iter().map(|s| s.allowed).collect::<Vec<_>>(), [true, true, true, false]);
        assert_eq!(states.iter().map(|s| s.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert_eq!(states[3].reset, Duration::from_secs(60));
        let later = keys.check_limit(&k, t0 + Duration::from_secs(60)).unwrap();
        assert!(later.allowed && later.remaining == 2, "a new window");
        assert!(keys.check_limit(&key(None), t0).is_none(), "no limit set: none applied");
    }

    #[test]
    fn usage_is_counted_per_hour_in_memory() {
        let keys = ApiKeys::default();
        let id = Uuid::now_v7();
        let t = time::macros::datetime!(2026-11-23 10:15:00 UTC);
        keys.count(id, t, false);
        keys.count(id, t + time::Duration::minutes(30), false);
        keys.count(id, t + time::Duration::minutes(31), true);
        keys.count(id, t + time::Duration::hours(1), false);
        let usage = keys.usage.lock().unwrap();
        assert_eq!(usage[&(id, time::macros::datetime!(2026-11-23 10:00 UTC))].0, 2);
        assert_eq!(usage[&(id, time::macros::datetime!(2026-11-23 10:00 UTC))].1, 1);
        assert_eq!(usage[&(id, time::macros::datetime!(2026-11-23 11:00 UTC))].0, 1);
    }
}

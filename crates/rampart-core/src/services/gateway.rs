//! The gateway's decision core: a proxy (nginx, Traefik, Caddy, Envoy, or Rampart's own) asks
//! about one request it is about to forward; the answer is a [`Verdict`]. The three HTTP doors
//! (`/authz/forward-auth`, `/authz/auth-request`, `/authz/ext-authz/…`) read the request's facts
//! from their proxy's headers, call [`decide`] and render the verdict in their proxy's terms.
//!
//! Rules that live here:
//! - the rules in force ([`Gateway::rules`]) are replaced whole on reload (a rules file that
//!   changed, or SIGHUP): a request is decided by one rule set, never a mix;
//! - the credential is resolved (API key, bearer token, session cookie; the first present wins)
//!   into a [`Principal`], kept in memory for [`PRINCIPAL_TTL`] per credential: no database
//!   round trip on the hot path, and no answer outlives a committed change (the store's
//!   [`authz_epoch`](rampart_store::Store::authz_epoch) and the rules' generation are part of
//!   every entry: a revoked session, changed roles or a reload drop them at once);
//! - per-rule rate limits are counted on every request (never cached), keyed by the principal;
//! - an allowed request gets a signed identity assertion (`X-Rampart-Jwt-Assertion`, 60 s, the
//!   token signing key), anonymous on public routes, so a client's own copy never survives;
//!   assertions are reused per (principal, audience, rule, epoch) until 10 % of their life
//!   remains;
//! - refusals are counted by rule and outcome and recorded as `gateway.denied`, aggregated per
//!   address, rule and outcome.

use crate::App;
use crate::FastMap;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::limiter::Limiter;
use bytes::Bytes;
use rampart_domain::gateway::{
    AuthnKind, Decision, DecisionInput, ForbiddenReason, Match, Policy, Principal, RequestFacts, RuleSet,
    normalize_host,
};
use rampart_domain::mfa::Amr;
use rampart_domain::permission::Permission;
use rampart_domain::ratelimit::Quota;
use rampart_domain::user::RoleName;
use rampart_domain::{Action, Actor, Outcome, Severity, TokenHash};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the rules file is checked for a change.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// How long a resolved credential is served from memory (unless a change moves the epoch).
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(5);
/// The life of an identity assertion.
pub const ASSERTION_TTL_SECS: i64 = 60;
/// The JOSE `typ` of an assertion (access-token verification refuses it).
pub const ASSERTION_TYP: &str = "rampart-assertion+jwt";
/// The most entries of each cache; when full, expired ones are swept, then nothing new is kept.
const MAX_ENTRIES: usize = 50_000;

/// The gateway's state: the rules in force and the caches.
#[derive(Debug)]
pub struct Gateway {
    rules: RwLock<Arc<RuleSet>>,
    /// Moves on every reload.
    generation: AtomicU64,
    /// Keyed by the SHA-256 of the credential (its kind and secret): no secret is kept. Both
    /// caches are [`FastMap`]s: their keys are a digest and server-made identifiers.
    principals: Mutex<FastMap<[u8; 32], CachedPrincipal>>,
    /// Keyed by [`assertion_key`]: the subject, session, audience and rule, length-prefixed.
    assertions: Mutex<FastMap<String, CachedAssertion>>,
    /// The rules file as last loaded (modified time, length), to notice a change.
    file_stamp: Mutex<Option<(SystemTime, u64)>>,
}

#[derive(Debug, Clone)]
struct CachedPrincipal {
    resolved: Option<Arc<Resolved>>,
    epoch: (u64, u64),
    until: Instant,
}

#[derive(Debug, Clone)]
struct CachedAssertion {
    /// The compact JWS, shared: a hit is a reference count, not a copy.
    token: Bytes,
    epoch: (u64, u64),
    /// Unix seconds after which it is no longer handed out (10 % of its life left).
    renew_at: i64,
}

/// Who a credential belongs to, as the gateway tells the upstream.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub principal: Principal,
    /// `sub` of the assertion: the user id, or `apikey:<id>`.
    pub subject: String,
    /// The session id (sessions and bearer tokens).
    pub session: Option<String>,
    pub email: Option<String>,
    /// When the credential stops working by itself (session or key expiry).
    pub expires_at: Option<time::OffsetDateTime>,
}

impl Gateway {
    /// The gateway with `rules` in force; `rules_file` is where they were just read from, so
    /// the first poll does not read an unchanged file again.
    pub fn new(rules: RuleSet, rules_file: Option<&std::path::Path>) -> Gateway {
        Gateway {
            rules: RwLock::new(Arc::new(rules)),
            generation: AtomicU64::new(0),
            principals: Mutex::new(FastMap::default()),
            assertions: Mutex::new(FastMap::default()),
            file_stamp: Mutex::new(rules_file.and_then(file_stamp)),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `rules` in force (whole) and drops every cached answer.
    pub fn replace(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.principals.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.assertions.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn epoch(&self, state: &App) -> (u64, u64) {
        (state.store.authz_epoch(), self.generation.load(Ordering::Acquire))
    }
}

/// The credentials a request carries, as its proxy passed them on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub api_key: Option<&'a str>,
    pub bearer: Option<&'a str>,
    pub session_cookie: Option<&'a str>,
}

impl Credentials<'_> {
    fn first(&self) -> Option<(AuthnKind, &str)> {
        self.api_key
            .map(|k| (AuthnKind::ApiKey, k))
            .or_else(|| self.bearer.map(|t| (AuthnKind::Bearer, t)))
            .or_else(|| self.session_cookie.map(|c| (AuthnKind::Session, c)))
    }
}

/// The request a proxy asks about.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub method: &'a str,
    /// The `Host` the client asked for (a port is ignored).
    pub host: &'a str,
    /// The path and query the client asked for, as sent.
    pub uri: &'a str,
    pub browser_page_load: bool,
    pub preflight: bool,
    pub credentials: Credentials<'a>,
}

impl Ask<'_> {
    /// The path the client asked for, without its query or fragment.
    pub fn path(&self) -> &str {
        self.uri.split(['?', '#']).next().unwrap_or("/")
    }
}

/// What the gateway answers.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Forward the request, with the identity assertion (a compact JWS, ASCII; shared with the
    /// cache) and plain identity headers when the rule asks for them.
    Allow { rule: String, assertion: Bytes, identity: Option<PlainIdentity> },
    /// Sign in first (or again, with a second factor or more recently: `step_up`): a redirect
    /// to the sign-in page for a browser (`redirect`), else 401.
    SignIn { rule: String, redirect: bool, step_up: bool },
    /// Refused: 403 with `code` (`forbidden`, `step_up_impossible`, `path_refused`).
    Forbidden { rule: String, code: &'static str },
    /// Over the rule's rate limit: 429 with `Retry-After`.
    RateLimited { rule: String, retry_after_secs: u64 },
}

impl Verdict {
    /// A stable outcome name, for metrics and events.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Allow { .. } => "allow",
            Verdict::SignIn { step_up: false, .. } => "unauthenticated",
            Verdict::SignIn { step_up: true, .. } => "step_up",
            Verdict::Forbidden { .. } => "forbidden",
            Verdict::RateLimited { .. } => "rate_limited",
        }
    }

    pub fn rule(&self) -> &str {
        match self {
            Verdict::Allow { rule, .. }
            | Verdict::SignIn { rule, .. }
            | Verdict::Forbidden { rule, .. }
            | Verdict::RateLimited { rule, .. } => rule,
        }
    }
}

/// `Remote-User`-style headers, for upstreams that cannot verify the assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainIdentity {
    pub user: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// The claims of an identity assertion (`../shared/API.md`, "Gateway and forward-auth").
#[derive(Debug, Clone, Serialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub amr: Vec<String>,
    pub rule: String,
}

/// Decides one request. An error means Rampart could not decide (the door answers 503, never
/// 401 for its own failure).
pub async fn decide(
    state: &App,
    limiter: &Limiter,
    ctx: &RequestContext,
    ask: &Ask<'_>,
) -> Result<Verdict, ServiceError> {
    let rules = state.gateway.rules();
    let path = ask.path();
    let host = normalize_host(ask.host);
    let m = rules.matching(&RequestFacts { method: ask.method, host: &host, path });
    let rule_id = m.rule_id().to_string();
    let input =
        DecisionInput { now: state.clock.now(), browser_page_load: ask.browser_page_load, preflight: ask.preflight };
    // The credential matters only where a rule lets someone in by it.
    let needs_principal =
        m.rule().is_some_and(|r| r.policy == Policy::Authenticated && !(r.allow_preflight && input.preflight));
    let resolved = if needs_principal { resolve(state, ctx, &ask.credentials).await? } else { None };
    let decision = m.decide(resolved.as_ref().map(|r| &r.principal), &input);
    let verdict = match decision {
        Decision::Allow => match rate_limited(state, limiter, &m, resolved.as_deref(), ctx).await {
            Some(retry_after_secs) => Verdict::RateLimited { rule: rule_id.clone(), retry_after_secs },
            None => {
                let rule = m.rule();
                let audience = rule.and_then(|r| r.audience.as_deref()).unwrap_or(&host);
                let assertion = assertion(state, resolved.as_deref(), audience, &rule_id)?;
                let identity =
                    resolved.as_ref().filter(|_| rule.is_some_and(|r| r.forward_headers)).map(|r| PlainIdentity {
                        user: r.subject.clone(),
                        email: r.email.clone(),
                        groups: r.principal.roles.iter().map(|g| g.as_str().to_string()).collect(),
                    });
                Verdict::Allow { rule: rule_id.clone(), assertion, identity }
            }
        },
        Decision::Unauthenticated { redirect, .. } => {
            Verdict::SignIn { rule: rule_id.clone(), redirect, step_up: false }
        }
        Decision::StepUpRequired { redirect, .. } => Verdict::SignIn { rule: rule_id.clone(), redirect, step_up: true },
        Decision::Forbidden { reason } => Verdict::Forbidden {
            rule: rule_id.clone(),
            code: match reason {
                ForbiddenReason::Denied | ForbiddenReason::Missing(_) => "forbidden",
                other => other.code(),
            },
        },
    };
    state.metrics.observe_gateway(&rule_id, verdict.outcome());
    if !matches!(verdict, Verdict::Allow { .. }) {
        record_refusal(state, ctx, &verdict, ask, resolved.as_deref());
    }
    Ok(verdict)
}

/// The credential's principal: from memory while the epoch holds and the entry is young, else
/// resolved (and remembered, also when the credential is no good).
async fn resolve(
    state: &App,
    ctx: &RequestContext,
    creds: &Credentials<'_>,
) -> Result<Option<Arc<Resolved>>, ServiceError> {
    let Some((kind, secret)) = creds.first() else { return Ok(None) };
    let key: [u8; 32] = Sha256::new().chain_update([kind as u8]).chain_update(secret.as_bytes()).finalize().into();
    let epoch = state.gateway.epoch(state);
    let now = state.clock.now();
    if let Some(hit) = state.gateway.principals.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && hit.epoch == epoch
        && Instant::now() < hit.until
        && hit.resolved.as_ref().is_none_or(|r| r.expires_at.is_none_or(|t| now < t))
    {
        return Ok(hit.resolved.clone());
    }
    // Boxed: the miss path (store and key lookups) would otherwise make every request's
    // future as large as its own, and that future is moved whole through the layers above.
    let resolved = Box::pin(resolve_uncached(state, ctx, kind, secret)).await?.map(Arc::new);
    let mut cache = state.gateway.principals.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= MAX_ENTRIES {
        let t = Instant::now();
        cache.retain(|_, e| t < e.until);
    }
    if cache.len() < MAX_ENTRIES {
        cache.insert(key, CachedPrincipal { resolved: resolved.clone(), epoch, until: Instant::now() + PRINCIPAL_TTL });
    }
    Ok(resolved)
}

/// The credential's principal from the store (a cache miss).
async fn resolve_uncached(
    state: &App,
    ctx: &RequestContext,
    kind: AuthnKind,
    secret: &str,
) -> Result<Option<Resolved>, ServiceError> {
    Ok(match kind {
        AuthnKind::ApiKey => match crate::services::api_keys::verify(state, secret, None).await {
            Ok((key, _)) => Some(key_principal(&key)),
            Err(("unknown", _, _)) => {
                crate::services::ip_rules::failed_authentication(state, ctx).await;
                None
            }
            Err(_) => None,
        },
        AuthnKind::Bearer => match state.signing.verify(secret).await {
            Ok(claims) => match claims.sid.parse().map(rampart_domain::SessionId) {
                Ok(sid) => match state.store.get_session(sid).await? {
                    Some(s) if s.user_id.0.to_string() == claims.sub => {
                        // The token ends before its session may: the earlier end counts.
                        let token_end = time::OffsetDateTime::from_unix_timestamp(claims.exp).ok();
                        session_principal(state, s, kind).await?.map(|mut r| {
                            r.expires_at = match (r.expires_at, token_end) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                            r
                        })
                    }
                    _ => None,
                },
                Err(_) => None,
            },
            Err(_) => None,
        },
        AuthnKind::Session => match state.store.session_by_cookie(TokenHash::of(secret)).await? {
            Some(s) => session_principal(state, s, kind).await?,
            None => None,
        },
    })
}

async fn session_principal(
    state: &App,
    session: rampart_domain::Session,
    kind: AuthnKind,
) -> Result<Option<Resolved>, ServiceError> {
    let now = state.clock.now();
    if !session.is_active(now) {
        return Ok(None);
    }
    // Use through the gateway keeps a session alive as use of the API does.
    let policy = state.session_policy();
    if policy.should_touch(&session, now) {
        state.store.touch_session(session.id, now, policy.extend(&session, now)).await?;
    }
    let Some((user, _)) = state.store.account(session.user_id).await? else { return Ok(None) };
    if user.disabled {
        return Ok(None);
    }
    let permissions = parse_permissions(&state.store.user_permissions(user.id).await?);
    Ok(Some(Resolved {
        principal: Principal {
            kind,
            permissions,
            ceiling: None,
            roles: user.roles.clone(),
            amr: session.amr.clone(),
            auth_time: session.created_at,
        },
        subject: user.id.0.to_string(),
        session: Some(session.id.0.to_string()),
        email: Some(user.email.to_string()),
        expires_at: Some(session.expires_at()),
    }))
}

fn key_principal(key: &crate::services::api_keys::KeyPrincipal) -> Resolved {
    Resolved {
        principal: Principal {
            kind: AuthnKind::ApiKey,
            permissions: parse_permissions(&key.key.scopes),
            ceiling: Some(parse_permissions(&key.owner_permissions)),
            roles: Vec::<RoleName>::new(),
            amr: Vec::<Amr>::new(),
            auth_time: key.key.created_at,
        },
        subject: format!("apikey:{}", key.key.id),
        session: None,
        email: None,
        expires_at: key.key.expires_at,
    }
}

fn parse_permissions(raw: &[String]) -> Vec<Permission> {
    raw.iter().filter_map(|p| Permission::parse(p).ok()).collect()
}

/// Counts the request against its rule's limit, keyed by the principal (or the address, for
/// anonymous requests); `Some(seconds)` to wait when over it.
async fn rate_limited(
    state: &App,
    limiter: &Limiter,
    m: &Match<'_>,
    who: Option<&Resolved>,
    ctx: &RequestContext,
) -> Option<u64> {
    let quota: Quota = m.rule()?.rate_limit?;
    let subject = match (who, ctx.ip) {
        (Some(r), _) => r.subject.clone(),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "anonymous".to_string(),
    };
    let key = format!("gw:{}:{subject}", m.rule_id());
    let now_us = i64::try_from(state.clock.now().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
    // Boxed, as only rules with a limit take this path (the Redis backend's future is large).
    let (decision, _, _) = Box::pin(limiter.check(&key, quota, quota, now_us)).await;
    (!decision.allowed).then(|| decision.retry_after.as_secs().max(1))
}

/// The identity assertion for `who` (anonymous when `None`) and `audience` under `rule`: a
/// cached one while it has more than 10 % of its life left and nothing changed, else a new one.
fn assertion(state: &App, who: Option<&Resolved>, audience: &str, rule: &str) -> Result<Bytes, ServiceError> {
    let epoch = state.gateway.epoch(state);
    let now = state.clock.now().unix_timestamp();
    let sub = who.map_or("anonymous", |r| r.subject.as_str());
    let sid = who.and_then(|r| r.session.as_deref()).unwrap_or("");
    let key = assertion_key(sub, sid, audience, rule);
    if let Some(hit) = state.gateway.assertions.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && hit.epoch == epoch
        && now < hit.renew_at
    {
        return Ok(hit.token.clone());
    }
    let claims = AssertionClaims {
        iss: state.settings.tokens.issuer.clone(),
        aud: audience.to_string(),
        sub: sub.to_string(),
        sid: who.and_then(|r| r.session.clone()),
        iat: now,
        nbf: now,
        exp: now + ASSERTION_TTL_SECS,
        jti: uuid::Uuid::now_v7().to_string(),
        roles: who.map(|r| r.principal.roles.iter().map(|x| x.as_str().to_string()).collect()).unwrap_or_default(),
        permissions: who
            .map(|r| r.principal.permissions.iter().map(|p| p.as_str().to_string()).collect())
            .unwrap_or_default(),
        amr: who.map(|r| r.principal.amr.iter().map(|a| a.as_str().to_string()).collect()).unwrap_or_default(),
        rule: rule.to_string(),
    };
    let token =
        Bytes::from(state.signing.ring().current.sign_typed(&claims, ASSERTION_TYP).map_err(ServiceError::internal)?);
    let mut cache = state.gateway.assertions.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= MAX_ENTRIES {
        cache.retain(|_, e| now < e.renew_at);
    }
    if cache.len() < MAX_ENTRIES {
        cache.insert(key, CachedAssertion { token: token.clone(), epoch, renew_at: now + ASSERTION_TTL_SECS * 9 / 10 });
    }
    Ok(token)
}

/// The assertion cache's key: each part with its length before it, so no two different
/// (subject, session, audience, rule) give one key whatever bytes they hold.
fn assertion_key(sub: &str, sid: &str, audience: &str, rule: &str) -> String {
    let parts = [sub, sid, audience, rule];
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    let mut digits = itoa::Buffer::new();
    for part in parts {
        key.push_str(digits.format(part.len()));
        key.push(':');
        key.push_str(part);
    }
    key
}

fn record_refusal(state: &App, ctx: &RequestContext, verdict: &Verdict, ask: &Ask<'_>, who: Option<&Resolved>) {
    let outcome = verdict.outcome();
    let actor = match who {
        Some(r) if r.principal.kind == AuthnKind::ApiKey => {
            r.subject.strip_prefix("apikey:").and_then(|id| id.parse().ok()).map_or(Actor::Anonymous, Actor::ApiKey)
        }
        Some(r) => r.subject.parse().map_or(Actor::Anonymous, Actor::User),
        None => Actor::Anonymous,
    };
    let ev = ctx
        .event(&state.events, Action::GatewayDenied, Outcome::Denied)
        .actor(actor)
        .severity(if matches!(verdict, Verdict::Forbidden { .. }) { Severity::Warning } else { Severity::Info })
        .details(serde_json::json!({
            "rule": verdict.rule(),
            "outcome": outcome,
            "method": ask.method,
            "host": normalize_host(ask.host),
            "path": ask.path(),
        }));
    let key = format!("{}|{}|{outcome}", ctx.ip.map(|i| i.to_string()).unwrap_or_default(), verdict.rule());
    let events = state.events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.record_aggregated(&key, ev).await {
            tracing::warn!(error = %e, "cannot record a gateway refusal");
        }
    });
}

/// Where a browser that must sign in is sent: the sign-in page with `rd=<the original URL>`
/// (and `step_up=1` when a second factor or a fresh sign-in is wanted).
pub fn sign_in_location(state: &App, original_url: &str, step_up: bool) -> String {
    let login = &state.settings.gateway.login_url;
    let sep = if login.contains('?') { '&' } else { '?' };
    let rd: String = url::form_urlencoded::byte_serialize(original_url.as_bytes()).collect();
    let mut location = format!("{login}{sep}rd={rd}");
    if step_up {
        location.push_str("&step_up=1");
    }
    location
}

/// What `POST /v1/admin/gateway/explain` answers: which rule matched and why.
#[derive(Debug, Clone)]
pub struct Explained {
    pub rule: String,
    pub policy: &'static str,
    pub reasons: Vec<String>,
    /// The decision for this request with the credentials given (anonymous when none).
    pub decision: &'static str,
}

/// Explains how the rules in force treat a request (the admin's `explain`); with credentials,
/// also what they would decide, without counting a rate limit or recording anything.
pub async fn explain(state: &App, ctx: &RequestContext, ask: &Ask<'_>) -> Result<Explained, ServiceError> {
    let rules = state.gateway.rules();
    let path = ask.path();
    let host = normalize_host(ask.host);
    let facts = RequestFacts { method: ask.method, host: &host, path };
    let ex = rules.explain(&facts);
    let input =
        DecisionInput { now: state.clock.now(), browser_page_load: ask.browser_page_load, preflight: ask.preflight };
    let m = rules.matching(&facts);
    let resolved = resolve(state, ctx, &ask.credentials).await?;
    let decision = m.decide(resolved.as_ref().map(|r| &r.principal), &input).outcome();
    let rule = ex.rule.clone().unwrap_or_else(|| rampart_domain::gateway::REFUSED_RULE_ID.to_string());
    Ok(Explained { rule, policy: ex.policy.as_str(), reasons: ex.reasons(), decision })
}

/// A file's modified time and length: what tells a changed rules file.
fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

/// Reloads the rules from the rules file when it changed since the last load (or `force`, on
/// SIGHUP). A file that does not load leaves the rules in force, and says why in an event.
/// Returns whether new rules took effect.
pub async fn reload(state: &App, force: bool) -> bool {
    let Some(path) = state.settings.gateway.rules_file.clone() else { return false };
    let stamp = file_stamp(&path);
    {
        let mut last = state.gateway.file_stamp.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *last == stamp {
            return false;
        }
        *last = stamp;
    }
    let file = rampart_config::GatewayConfig {
        default_policy: state.gateway.rules().default_policy(),
        rules_file: Some(path.clone()),
        ..Default::default()
    };
    let loaded = file.rule_set();
    let (ev, ok) = match loaded {
        Ok(rules) => {
            let shadowed: Vec<String> =
                rules.shadowed().iter().map(|s| format!("{} (shadowed by {})", s.rule, s.by)).collect();
            for s in &shadowed {
                tracing::warn!(rule = %s, "gateway rule can never match");
            }
            let n = rules.rules().len();
            state.gateway.replace(rules);
            tracing::info!(rules = n, path = %path.display(), "gateway rules loaded");
            let ev =
                state.events.event(Action::GatewayRulesLoaded, Outcome::Success).actor(Actor::System).details(
                    serde_json::json!({ "rules": n, "shadowed": shadowed, "source": path.display().to_string() }),
                );
            (ev, true)
        }
        Err(problems) => {
            tracing::error!(path = %path.display(), problems = ?problems, "gateway rules file refused; the rules in force stay");
            let ev = state
                .events
                .event(Action::GatewayRulesRejected, Outcome::Failure)
                .actor(Actor::System)
                .severity(Severity::Warning)
                .details(serde_json::json!({ "problems": problems, "source": path.display().to_string() }));
            (ev, false)
        }
    };
    if let Err(e) = state.events.record(ev).await {
        tracing::warn!(error = %e, "cannot record the gateway rules reload");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_keys_never_collide_across_part_boundaries() {
        // Moving bytes from one part to the next changes the key.
        let keys = [
            assertion_key("ab", "c", "d", "e"),
            assertion_key("a", "bc", "d", "e"),
            assertion_key("a", "b", "cd", "e"),
            assertion_key("a", "b", "c", "de"),
            assertion_key("1:a", "", "", ""),
            assertion_key("", "1:a", "", ""),
            assertion_key("a", "", "", "1:"),
        ];
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(assertion_key("u", "", "app.example.com", "orders"), "1:u0:15:app.example.com6:orders");
    }
}

//! Login, in one home: the throttled password check, the checks that may still refuse a
//! right password (disabled, unverified, expired password), the step-up hand-off, and opening
//! a session with its tokens or cookie; refreshing those tokens.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::passwords::RESET_MAIL_INTERVAL;
use crate::services::registration::send_verification;
use crate::services::step_up::{self, StepUpRequired};
use rampart_domain::SessionMode;
use rampart_domain::ThrottleKey;
use rampart_domain::opaque::looks_like;
use rampart_domain::tokens::AccessClaims;
use rampart_domain::{
    Action, Actor, EmailLookup, OpaqueToken, Outcome, Password, Resource, SecurityEvent, Session, SessionId, Severity,
    TokenHash, TokenKind, User, UserId,
};
use rampart_store::{AttemptDecision, RefreshOutcome, TokenPurpose};
use time::{Duration, OffsetDateTime};

/// How long the token handed out with `password_expired` works.
const EXPIRED_PASSWORD_TOKEN_TTL: Duration = Duration::minutes(15);

/// The one password check of every password path (login, re-authentication): throttled per
/// submitted identifier and per client address, the same work and answer for unknown
/// addresses (a dummy hash is verified), counters cleared on success, hash upgraded when the
/// configured cost changed. `via` names the path in events.
pub async fn check_password(
    state: &App,
    ctx: &RequestContext,
    submitted_email: &str,
    password: &str,
    via: &'static str,
) -> Result<User, ServiceError> {
    let now = state.clock.now();
    let id_key = state.auth.identifier_key(submitted_email).storage_key();
    let (id_policy, ip_policy) = state.throttle_policies();
    // `login.ip_max_failures = 0` turns the per-address throttle off (behind a proxy that
    // Rampart cannot see through, every client would share one address).
    let ip_throttle = ctx.ip.zip(ip_policy).map(|(ip, p)| (ThrottleKey::address(ip).storage_key(), p));
    let ip_key = ip_throttle.as_ref().map(|(k, _)| k.as_str());
    // The address first: a locked client is refused before anything about the identifier.
    let mut keys = Vec::with_capacity(2);
    if let Some((k, p)) = &ip_throttle {
        keys.push((k.as_str(), *p));
    }
    keys.push((id_key.as_str(), id_policy));
    let locks = match state.store.throttle_attempt(&keys, now).await? {
        AttemptDecision::Counted(locks) => locks,
        AttemptDecision::Refused { retry_after, locked } => {
            let reason = if locked { "locked" } else { "throttled" };
            let ev = ctx
                .event(&state.events, Action::Login, Outcome::Denied)
                .severity(Severity::Warning)
                .details(serde_json::json!({ "reason": reason, "via": via }));
            // A locked client may hammer: one event when it is first refused in an interval,
            // one summary with the count at the interval's end.
            let key = format!("{}|{id_key}|{reason}", ip_key.unwrap_or("-"));
            state.events.record_aggregated(&key, ev).await?;
            let secs = u64::try_from(retry_after.whole_seconds()).unwrap_or(0) + 1;
            return Err(ServiceError::TooManyAttempts { retry_after_secs: secs });
        }
    };

    // One round trip whether or not the account exists; the full user is read only once the
    // password proved right.
    let candidate = match EmailLookup::parse(submitted_email) {
        Ok(email) => state.store.login_candidate(&email).await?,
        Err(_) => None,
    };
    let (user, stored) = match candidate {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    let phc = match &stored {
        Some(phc) => phc.clone(),
        None => state.dummy_hash().await?,
    };
    let secret = rampart_domain::Secret::new(password.to_string());
    let checked = state
        .hashing
        .run(move |h| {
            let ok = h.verify(secret.expose(), &phc);
            (ok, ok && h.needs_rehash(&phc))
        })
        .await;
    let (ok, rehash) = match checked {
        Ok(answer) => answer,
        Err(e) => {
            // Not checked (overloaded, or the hashing failed): the attempt does not count.
            let uncount: Vec<(&str, rampart_domain::ThrottlePolicy, bool)> =
                keys.iter().zip(&locks).map(|((k, p), locked)| (*k, *p, *locked)).collect();
            state.store.throttle_succeeded(&[], &uncount, now).await?;
            return Err(e.into());
        }
    };

    match (user, stored, ok) {
        (Some(user_id), Some(old_hash), true) => {
            // With a second factor a right password is only half a login: its attempt is taken
            // back, but earlier failures (wrong codes included) stay counted until the second
            // factor succeeds, so re-entering the password cannot reset the code lockout.
            let half = state.store.mfa_status(user_id).await?.any();
            let uncount: Vec<(&str, rampart_domain::ThrottlePolicy, bool)> = keys
                .iter()
                .zip(&locks)
                .filter(|((k, _), _)| half || *k != id_key.as_str())
                .map(|((k, p), locked)| (*k, *p, *locked))
                .collect();
            let clear: &[&str] = if half { &[] } else { &[id_key.as_str()] };
            state.store.throttle_succeeded(clear, &uncount, now).await?;
            if rehash {
                upgrade_hash(state, user_id, password, old_hash);
            }
            state.store.get_user(user_id).await?.ok_or(ServiceError::InvalidCredentials)
        }
        (user, _, _) => {
            for ((key, _), locked) in keys.iter().zip(locks) {
                if locked {
                    let kind = if ip_key == Some(*key) { "ip" } else { "identifier" };
                    let ev = ctx
                        .event(&state.events, Action::LoginLocked, Outcome::Denied)
                        .severity(Severity::Warning)
                        .details(serde_json::json!({
                            "key": kind,
                            "lockout_secs": state.settings.login.identifier.lockout.whole_seconds(),
                            "via": via,
                        }));
                    let ev = match &user {
                        Some(id) if kind == "identifier" => {
                            state.store.throttle_lock_owner(key, *id).await?;
                            ev.resource(Resource::new("user", id))
                        }
                        _ => ev,
                    };
                    state.events.record(ev).await?;
                }
            }
            crate::services::ip_rules::failed_authentication(state, ctx).await;
            let mut ev = ctx
                .event(&state.events, Action::Login, Outcome::Failure)
                .details(serde_json::json!({ "reason": "invalid_credentials", "via": via }));
            if let Some(id) = &user {
                ev = ev.resource(Resource::new("user", id));
            }
            state.events.record(ev).await?;
            Err(ServiceError::InvalidCredentials)
        }
    }
}

/// What a login with a right password answers.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The account has a second factor: present one with this `mfa_token`.
    StepUp(StepUpRequired),
    /// A new session.
    Session(Issued),
}

/// `POST /v1/auth/login`: the password (throttled), the checks that may still refuse it, then
/// either the step-up or a new session with `amr = ["pwd"]`.
pub async fn login(
    state: &App,
    ctx: &RequestContext,
    email: &str,
    password: &str,
    mode: SessionMode,
) -> Result<LoginOutcome, ServiceError> {
    let user = check_password(state, ctx, email, password, "login").await?;
    admit(state, ctx, &user).await?;
    if let Some(required) = step_up::begin_step_up(state, ctx, &user, mode).await? {
        return Ok(LoginOutcome::StepUp(required));
    }
    require_fresh_password(state, ctx, &user).await?;
    Ok(LoginOutcome::Session(start_session(state, ctx, &user, vec![rampart_domain::mfa::Amr::Pwd], mode).await?))
}

/// A step-up answered: the session it opens (`amr` naming both factors).
pub async fn complete_step_up(
    state: &App,
    ctx: &RequestContext,
    mfa_token: &str,
    answer: step_up::Answer<'_>,
) -> Result<Issued, ServiceError> {
    let done = step_up::complete_step_up(state, ctx, mfa_token, answer).await?;
    // A password's age matters only when a password was used (not after an external identity).
    if done.amr.contains(&rampart_domain::mfa::Amr::Pwd) {
        require_fresh_password(state, ctx, &done.user).await?;
    }
    start_session(state, ctx, &done.user, done.amr, done.mode).await
}

/// Re-hashes a password with the configured cost, in the background (the login answer does
/// not wait for a second hash). The swap only happens if the stored hash is still `old`.
fn upgrade_hash(state: &App, user: UserId, password: &str, old: String) {
    let state = state.clone();
    let candidate = rampart_domain::Secret::new(password.to_string());
    tokio::spawn(async move {
        // The password was accepted when it was set; only the cost changes here.
        let policy = rampart_domain::PasswordPolicy::ACCEPT_ANY;
        let Ok(password) = Password::parse(candidate.expose().clone(), &policy) else { return };
        match state.hashing.hash(password).await {
            Ok(new) => match state.store.rehash_password(user, &old, &new).await {
                Ok(true) => tracing::info!(user = %user, "password hash upgraded to the configured argon2 parameters"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot store the upgraded password hash"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot re-hash password"),
        }
    });
}

fn refusal(state: &App, ctx: &RequestContext, user: &User, reason: &'static str) -> SecurityEvent {
    ctx.event(&state.events, Action::Login, Outcome::Denied)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "reason": reason }))
}

/// After a right password: the checks that may still refuse a login (disabled account,
/// unverified address). The password's age is checked only once every factor is in
/// ([`require_fresh_password`]): its `change_token` resets the password.
pub async fn admit(state: &App, ctx: &RequestContext, user: &User) -> Result<(), ServiceError> {
    let refuse = |reason: &'static str| refusal(state, ctx, user, reason);
    if user.disabled {
        state.events.record(refuse("account_disabled")).await?;
        return Err(ServiceError::AccountDisabled);
    }
    if state.settings.accounts.verify_email && !user.email_verified {
        state.events.record(refuse("email_not_verified")).await?;
        // The right password proves the account is theirs: send a fresh link (at most once a
        // minute), so a lost or expired one is never a dead end.
        let last = state.store.last_account_token_at(user.id, TokenPurpose::VerifyEmail).await?;
        if last.is_none_or(|t| state.clock.now() - t >= RESET_MAIL_INTERVAL) {
            send_verification(state, ctx, user).await?;
        }
        return Err(ServiceError::EmailNotVerified);
    }
    Ok(())
}

/// Refuses with `password_expired` (and a short-lived `change_token`) a login whose password is
/// older than `passwords.max_age_days`. Runs after the second factor, never before: the token
/// sets a new password and ends the owner's sessions, so the password alone must not get it.
pub async fn require_fresh_password(state: &App, ctx: &RequestContext, user: &User) -> Result<(), ServiceError> {
    let refuse = |reason: &'static str| refusal(state, ctx, user, reason);
    let now = state.clock.now();
    if let Some(max_age) = state.settings.passwords.max_age
        && now - user.password_changed_at >= max_age
    {
        let token = OpaqueToken::generate(TokenKind::ResetPassword, &mut rand::rngs::OsRng);
        let ev = refuse("password_expired");
        state
            .store
            .create_account_token(
                token.hash(),
                TokenPurpose::ExpiredPassword,
                user.id,
                user.email.as_str(),
                now,
                now + EXPIRED_PASSWORD_TOKEN_TTL,
                Some(&ev),
            )
            .await?;
        state.events.observed(&ev);
        return Err(ServiceError::PasswordExpired { change_token: token.expose().to_string() });
    }
    Ok(())
}

/// A session's bearer tokens: a signed access token and a single-use refresh token.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub refresh_token: String,
    pub session_id: SessionId,
}

/// A new session and what the client gets for it.
#[derive(Debug)]
pub enum Issued {
    Tokens(Tokens),
    /// The cookie's value and the body of a cookie-mode login.
    Cookie {
        value: String,
        max_age: Duration,
        session_id: SessionId,
        csrf_token: String,
    },
}

/// Starts a session (always a new id: no fixation) and records `auth.login` success.
pub async fn start_session(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    amr: Vec<rampart_domain::mfa::Amr>,
    mode: SessionMode,
) -> Result<Issued, ServiceError> {
    let now = state.clock.now();
    let (idle, absolute) = state.session_policy().start(now);
    let session = Session {
        id: SessionId(uuid::Uuid::now_v7()),
        user_id: user.id,
        created_at: now,
        last_active_at: now,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
        ip: ctx.ip.map(|ip| ip.to_string()),
        user_agent: ctx.user_agent.as_deref().map(|ua| truncate(ua, rampart_domain::event::MAX_USER_AGENT)),
        amr,
        revoked_at: None,
    };
    let mut rng = rand::rngs::OsRng;
    let (refresh, cookie) = if mode == SessionMode::Cookie {
        (None, Some(OpaqueToken::generate(TokenKind::SessionCookie, &mut rng)))
    } else {
        (Some(OpaqueToken::generate(TokenKind::Refresh, &mut rng)), None)
    };
    let event = ctx
        .event(&state.events, Action::Login, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("session", session.id))
        .details(serde_json::json!({ "mode": mode.as_str(), "amr": session.amr }));
    state
        .store
        .create_session(
            &session,
            refresh.as_ref().map(OpaqueToken::hash),
            cookie.as_ref().map(OpaqueToken::hash),
            &event,
        )
        .await?;
    state.events.observed(&event);
    match (refresh, cookie) {
        (Some(refresh), _) => Ok(Issued::Tokens(token_response(state, user, &session, &refresh)?)),
        (None, Some(cookie)) => Ok(Issued::Cookie {
            value: cookie.expose().to_string(),
            max_age: session.absolute_expires_at - now,
            session_id: session.id,
            csrf_token: state.auth.csrf_token(session.id),
        }),
        (None, None) => Err(ServiceError::internal(std::io::Error::other("session without a credential"))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn token_response(state: &App, user: &User, session: &Session, refresh: &OpaqueToken) -> Result<Tokens, ServiceError> {
    let now = state.clock.now().unix_timestamp();
    let ttl = state.settings.tokens.access_ttl.whole_seconds();
    let claims = AccessClaims {
        iss: state.settings.tokens.issuer.clone(),
        aud: state.settings.tokens.audience.clone(),
        sub: user.id.0.to_string(),
        sid: session.id.0.to_string(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: now,
        nbf: now,
        exp: now + ttl,
        roles: user.roles.iter().map(|r| r.as_str().to_string()).collect(),
        amr: session.amr.iter().map(|a| a.as_str().to_string()).collect(),
        auth_time: Some(session.created_at.unix_timestamp()),
    };
    let access_token = state.signing.sign(&claims).map_err(ServiceError::internal)?;
    Ok(Tokens {
        access_token,
        expires_in: u64::try_from(ttl).unwrap_or(0),
        refresh_token: refresh.expose().to_string(),
        session_id: session.id,
    })
}

/// Exchanges a refresh token: one success per token; a second presentation revokes the
/// session and records a critical event.
pub async fn refresh(state: &App, ctx: &RequestContext, presented: &str) -> Result<Tokens, ServiceError> {
    if !looks_like(TokenKind::Refresh, presented) {
        return Err(ServiceError::InvalidRefreshToken);
    }
    let now = state.clock.now();
    let next = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
    let (outcome, event) = state
        .store
        .refresh_session(TokenHash::of(presented), next.hash(), now, state.session_policy(), |outcome| match outcome {
            RefreshOutcome::Rotated(s) => Some(
                ctx.event(&state.events, Action::TokenRefreshed, Outcome::Success)
                    .actor(Actor::User(s.user_id.0))
                    .resource(Resource::new("session", s.id)),
            ),
            RefreshOutcome::Reused(s) => Some(
                ctx.event(&state.events, Action::RefreshTokenReused, Outcome::Denied)
                    .severity(Severity::Critical)
                    .actor(Actor::User(s.user_id.0))
                    .resource(Resource::new("session", s.id))
                    .details(serde_json::json!({ "session_revoked": true })),
            ),
            RefreshOutcome::Inactive(s) => Some(
                ctx.event(&state.events, Action::TokenRefreshed, Outcome::Failure)
                    .actor(Actor::User(s.user_id.0))
                    .resource(Resource::new("session", s.id))
                    .details(serde_json::json!({ "reason": "session_ended" })),
            ),
            RefreshOutcome::Unknown => Some(
                ctx.event(&state.events, Action::TokenRefreshed, Outcome::Failure)
                    .details(serde_json::json!({ "reason": "unknown_token" })),
            ),
        })
        .await?;
    if let Some(ev) = &event {
        state.events.observed(ev);
    }
    match outcome {
        RefreshOutcome::Rotated(session) => {
            // (A disabled owner's session is refused inside the exchange.)
            let user = state.store.get_user(session.user_id).await?.ok_or(ServiceError::InvalidRefreshToken)?;
            token_response(state, &user, &session, &next)
        }
        RefreshOutcome::Reused(_) => Err(ServiceError::RefreshTokenReused),
        RefreshOutcome::Inactive(_) | RefreshOutcome::Unknown => Err(ServiceError::InvalidRefreshToken),
    }
}

/// Seconds from `now` until `t`, for headers.
pub fn secs_until(now: OffsetDateTime, t: OffsetDateTime) -> i64 {
    (t - now).whole_seconds().max(0)
}

/// Passwordless login with a passkey: the assertion (throttled per client address), the same
/// admission checks as a password, then a session with `amr = ["hwk", "user", "mfa"]` (tokens,
/// or the browser cookie in cookie mode).
pub async fn passkey_login(
    state: &App,
    ctx: &RequestContext,
    challenge_id: &str,
    credential: &serde_json::Value,
    mode: SessionMode,
) -> Result<Issued, ServiceError> {
    let user = crate::services::webauthn::passkey_finish(state, ctx, challenge_id, credential).await?;
    admit(state, ctx, &user).await?;
    require_fresh_password(state, ctx, &user).await?;
    start_session(state, ctx, &user, crate::services::webauthn::passkey_amr(), mode).await
}

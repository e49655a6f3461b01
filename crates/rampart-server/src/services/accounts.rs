//! Accounts: password checks with throttling, sessions and their tokens, registration,
//! e-mail verification, password change and reset. Shared by the HTTP routes; the rules
//! themselves live in `rampart_domain`, the SQL in `rampart_store`.

use crate::AppState;
use crate::auth::{Authenticated, ip_key};
use crate::error::ApiError;
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use rampart_domain::opaque::looks_like;
use rampart_domain::tokens::AccessClaims;
use rampart_domain::{
    Action, Actor, Email, OpaqueToken, Outcome, Password, Resource, SecurityEvent, Session, SessionId, Severity,
    TokenHash, TokenKind, User, UserId,
};
use rampart_store::{AttemptDecision, RefreshOutcome, RevokeSessions, StoreError, TokenPurpose};
use rampart_wire::{CookieSession, FieldError, TokenResponse};
use time::{Duration, OffsetDateTime};

/// How long the token handed out with `password_expired` works.
const EXPIRED_PASSWORD_TOKEN_TTL: Duration = Duration::minutes(15);
/// At most one password-reset e-mail per account this often.
const RESET_MAIL_INTERVAL: Duration = Duration::seconds(60);

fn field(name: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: name.into(), code: code.into(), message: message.into() }
}

/// Checks a new password against the policy (with the account's e-mail), reporting every
/// broken rule under `field_name`.
pub fn validate_new_password(
    state: &AppState,
    candidate: &str,
    email: Option<&str>,
    field_name: &str,
) -> Result<Password, Vec<FieldError>> {
    Password::parse_for(candidate.to_string(), &state.password_policy(), email)
        .map_err(|violations| violations.iter().map(|v| field(field_name, v.code(), v.to_string())).collect())
}

/// Refuses a password among the account's last `passwords.history` ones (400
/// `validation_failed`, code `password_reused`).
pub async fn check_history(
    state: &AppState,
    user: UserId,
    password: &Password,
    field_name: &str,
) -> Result<(), ApiError> {
    let n = state.config.passwords.history;
    if n == 0 {
        return Ok(());
    }
    let hashes = state.store.recent_password_hashes(user, n).await?;
    let candidate = rampart_domain::Secret::new(password.expose().to_string());
    let reused = state
        .hashing
        .run(move |h| hashes.iter().any(|phc| h.verify(candidate.expose(), phc)))
        .await
        .map_err(ApiError::internal)?;
    if reused {
        let v = rampart_domain::password::PasswordViolation::Reused(n);
        return Err(ApiError::Validation(vec![field(field_name, v.code(), v.to_string())]));
    }
    Ok(())
}

/// The one password check of every password path (login, re-authentication): throttled per
/// submitted identifier and per client address, the same work and answer for unknown
/// addresses (a dummy hash is verified), counters cleared on success, hash upgraded when the
/// configured cost changed. `via` names the path in events.
pub async fn check_password(
    state: &AppState,
    ctx: &RequestContext,
    submitted_email: &str,
    password: &str,
    via: &'static str,
) -> Result<User, ApiError> {
    let now = state.clock.now();
    let id_key = state.auth.identifier_key(submitted_email);
    let (id_policy, ip_policy) = state.throttle_policies();
    // `login.ip_max_failures = 0` turns the per-address throttle off (behind a proxy that
    // Rampart cannot see through, every client would share one address).
    let ip_key = ctx.ip.filter(|_| state.config.login.ip_max_failures > 0).map(ip_key);
    // The address first: a locked client is refused before anything about the identifier.
    let mut keys = Vec::with_capacity(2);
    if let Some(k) = &ip_key {
        keys.push((k.as_str(), ip_policy));
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
            let key = format!("{}|{id_key}|{reason}", ip_key.as_deref().unwrap_or("-"));
            state.events.record_aggregated(&key, ev).await?;
            let secs = u64::try_from(retry_after.whole_seconds()).unwrap_or(0) + 1;
            return Err(ApiError::TooManyAttempts { retry_after_secs: secs });
        }
    };

    // One round trip whether or not the account exists; the full user is read only once the
    // password proved right.
    let candidate = match Email::parse(submitted_email) {
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
    let (ok, rehash) = state
        .hashing
        .run(move |h| {
            let ok = h.verify(secret.expose(), &phc);
            (ok, ok && h.needs_rehash(&phc))
        })
        .await
        .map_err(ApiError::internal)?;

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
            state.store.get_user(user_id).await?.ok_or(ApiError::InvalidCredentials)
        }
        (user, _, _) => {
            for ((key, _), locked) in keys.iter().zip(locks) {
                if locked {
                    let kind = if key.starts_with("ip:") { "ip" } else { "identifier" };
                    let ev = ctx
                        .event(&state.events, Action::LoginLocked, Outcome::Denied)
                        .severity(Severity::Warning)
                        .details(serde_json::json!({
                            "key": kind,
                            "lockout_secs": state.config.login.lockout_secs,
                            "via": via,
                        }));
                    let ev = match &user {
                        Some(id) if kind == "identifier" => ev.resource(Resource::new("user", id)),
                        _ => ev,
                    };
                    state.events.record(ev).await?;
                }
            }
            crate::services::ip_rules::failed_authentication(state, ctx.ip).await;
            let mut ev = ctx
                .event(&state.events, Action::Login, Outcome::Failure)
                .details(serde_json::json!({ "reason": "invalid_credentials", "via": via }));
            if let Some(id) = &user {
                ev = ev.resource(Resource::new("user", id));
            }
            state.events.record(ev).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Re-hashes a password with the configured cost, in the background (the login answer does
/// not wait for a second hash). The swap only happens if the stored hash is still `old`.
fn upgrade_hash(state: &AppState, user: UserId, password: &str, old: String) {
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

/// After a right password: the checks that may still refuse a login (disabled account,
/// unverified address, expired password).
pub async fn admit(state: &AppState, ctx: &RequestContext, user: &User) -> Result<(), ApiError> {
    let refuse = |reason: &'static str| {
        ctx.event(&state.events, Action::Login, Outcome::Denied)
            .actor(Actor::User(user.id.0))
            .resource(Resource::new("user", user.id))
            .details(serde_json::json!({ "reason": reason }))
    };
    if user.disabled {
        state.events.record(refuse("account_disabled")).await?;
        return Err(ApiError::Forbidden { code: "account_disabled", detail: "this account is disabled".into() });
    }
    if state.config.accounts.verify_email && !user.email_verified {
        state.events.record(refuse("email_not_verified")).await?;
        // The right password proves the account is theirs: send a fresh link (at most once a
        // minute), so a lost or expired one is never a dead end.
        let last = state.store.last_account_token_at(user.id, TokenPurpose::VerifyEmail).await?;
        if last.is_none_or(|t| state.clock.now() - t >= RESET_MAIL_INTERVAL) {
            send_verification(state, ctx, user).await?;
        }
        return Err(ApiError::Forbidden {
            code: "email_not_verified",
            detail: "verify the e-mail address first: a verification link has been sent".into(),
        });
    }
    let max_age = state.config.passwords.max_age_days;
    let now = state.clock.now();
    if max_age > 0
        && now - user.password_changed_at >= Duration::days(i64::try_from(max_age).unwrap_or(i64::MAX / 86_400))
    {
        let token = OpaqueToken::generate(TokenKind::ResetPassword, &mut rand::rngs::OsRng);
        let ev = refuse("password_expired");
        state
            .store
            .create_account_token(
                token.hash(),
                TokenPurpose::ExpiredPassword,
                user.id,
                &user.email,
                now,
                now + EXPIRED_PASSWORD_TOKEN_TTL,
                Some(&ev),
            )
            .await?;
        state.events.observed(&ev);
        return Err(ApiError::PasswordExpired { change_token: token.expose().to_string() });
    }
    Ok(())
}

/// A new session and what the client gets for it.
#[derive(Debug)]
pub enum Issued {
    Tokens(TokenResponse),
    /// The cookie's value and the body of a cookie-mode login.
    Cookie {
        value: String,
        max_age: Duration,
        body: CookieSession,
    },
}

/// Starts a session (always a new id: no fixation) and records `auth.login` success.
pub async fn start_session(
    state: &AppState,
    ctx: &RequestContext,
    user: &User,
    amr: Vec<String>,
    cookie_mode: bool,
) -> Result<Issued, ApiError> {
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
    let (refresh, cookie) = if cookie_mode {
        (None, Some(OpaqueToken::generate(TokenKind::SessionCookie, &mut rng)))
    } else {
        (Some(OpaqueToken::generate(TokenKind::Refresh, &mut rng)), None)
    };
    let event = ctx
        .event(&state.events, Action::Login, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("session", session.id))
        .details(serde_json::json!({ "mode": if cookie_mode { "cookie" } else { "token" }, "amr": session.amr }));
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
            body: CookieSession { session_id: session.id.to_string(), csrf_token: state.auth.csrf_token(session.id) },
        }),
        (None, None) => Err(ApiError::internal(std::io::Error::other("session without a credential"))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn token_response(
    state: &AppState,
    user: &User,
    session: &Session,
    refresh: &OpaqueToken,
) -> Result<TokenResponse, ApiError> {
    let now = state.clock.now().unix_timestamp();
    let ttl = state.config.tokens.access_ttl_secs;
    let claims = AccessClaims {
        iss: state.config.tokens.issuer.clone(),
        aud: state.config.tokens.audience.clone(),
        sub: user.id.0.to_string(),
        sid: session.id.0.to_string(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: now,
        nbf: now,
        exp: now + i64::try_from(ttl).unwrap_or(600),
        roles: user.roles.clone(),
        amr: session.amr.clone(),
    };
    let access_token = state.signing.sign(&claims).map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token: refresh.expose().to_string(),
        session_id: session.id.to_string(),
    })
}

/// Exchanges a refresh token: one success per token; a second presentation revokes the
/// session and records a critical event.
pub async fn refresh(state: &AppState, ctx: &RequestContext, presented: &str) -> Result<TokenResponse, ApiError> {
    if !looks_like(TokenKind::Refresh, presented) {
        return Err(ApiError::InvalidRefreshToken);
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
            let user = state.store.get_user(session.user_id).await?.ok_or(ApiError::InvalidRefreshToken)?;
            token_response(state, &user, &session, &next)
        }
        RefreshOutcome::Reused(_) => Err(ApiError::RefreshTokenReused),
        RefreshOutcome::Inactive(_) | RefreshOutcome::Unknown => Err(ApiError::InvalidRefreshToken),
    }
}

/// Ends the caller's session.
pub async fn logout(state: &AppState, ctx: &RequestContext, auth: &Authenticated) -> Result<(), ApiError> {
    let ev = ctx
        .event(&state.events, Action::Logout, Outcome::Success)
        .actor(Actor::User(auth.user_id.0))
        .resource(Resource::new("session", auth.session.id));
    if state.store.revoke_session(auth.user_id, auth.session.id, state.clock.now(), "logout", &ev).await? {
        state.events.observed(&ev);
    }
    Ok(())
}

/// Revokes sessions of `user` and records `session.revoked`.
pub async fn revoke_sessions(
    state: &AppState,
    ctx: &RequestContext,
    actor: Actor,
    user: UserId,
    which: RevokeSessions,
    reason: &'static str,
) -> Result<u64, ApiError> {
    let ev = ctx
        .event(&state.events, Action::SessionRevoked, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("user", user))
        .details(serde_json::json!({ "reason": reason, "scope": match which {
            RevokeSessions::All => "all",
            RevokeSessions::AllExcept(_) => "all_but_current",
            RevokeSessions::None => "none",
        } }));
    let n = state.store.revoke_sessions(user, which, state.clock.now(), reason, &ev).await?;
    state.events.observed(&ev);
    Ok(n)
}

/// Registers an account. With verification on, a taken address is not revealed: the caller
/// gets the same answer and the owner of the address gets a notice instead.
pub async fn register(
    state: &AppState,
    ctx: &RequestContext,
    email: String,
    password: String,
    name: Option<String>,
) -> Result<Option<User>, ApiError> {
    if !state.config.accounts.registration {
        return Err(ApiError::Forbidden { code: "registration_closed", detail: "registration is closed".into() });
    }
    let input = crate::services::users::CreateUser {
        email: email.clone(),
        password: rampart_domain::Secret::new(password),
        name,
        roles: Vec::new(),
    };
    let verify = state.config.accounts.verify_email;
    match crate::services::users::create_user(state, input, Actor::Anonymous, "register").await {
        Ok(user) => {
            if verify {
                send_verification(state, ctx, &user).await?;
            }
            Ok(Some(user))
        }
        Err(ApiError::Conflict { code: "email_taken", .. }) if verify => {
            let ev = ctx
                .event(&state.events, Action::UserCreated, Outcome::Failure)
                .details(serde_json::json!({ "via": "register", "reason": "email_taken" }));
            state.events.record(ev).await?;
            if !state.mail_pacing.allow(&email.trim().to_lowercase(), std::time::Instant::now()) {
                return Ok(None);
            }
            state.mailer.enqueue(OutgoingMail {
                to: email.trim().to_lowercase(),
                subject: "Someone tried to register with your address".into(),
                text: "Someone tried to create an account with this e-mail address, which already has one.\n\n\
                       If it was you, sign in or reset your password instead. If not, you can ignore this message."
                    .into(),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sends a verification e-mail with a single-use link.
pub async fn send_verification(state: &AppState, ctx: &RequestContext, user: &User) -> Result<(), ApiError> {
    let now = state.clock.now();
    let ttl_hours = state.config.accounts.verification_ttl_hours;
    let token = OpaqueToken::generate(TokenKind::VerifyEmail, &mut rand::rngs::OsRng);
    let ev = ctx
        .event(&state.events, Action::EmailVerificationSent, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id));
    let expires = now + Duration::hours(i64::try_from(ttl_hours).unwrap_or(24));
    state
        .store
        .create_account_token(token.hash(), TokenPurpose::VerifyEmail, user.id, &user.email, now, expires, Some(&ev))
        .await?;
    state.events.observed(&ev);
    let link = state.config.accounts.verify_email_url.replace("{token}", token.expose());
    state.mailer.enqueue(OutgoingMail {
        to: user.email.clone(),
        subject: "Confirm your e-mail address".into(),
        text: format!(
            "Confirm this e-mail address by opening the link below (it works once, for {ttl_hours} hours):\n\n{link}\n\n\
             If you did not create an account, ignore this message."
        ),
    });
    Ok(())
}

/// Uses a verification token.
pub async fn verify_email(state: &AppState, ctx: &RequestContext, token: &str) -> Result<(), ApiError> {
    if !looks_like(TokenKind::VerifyEmail, token) {
        return Err(ApiError::InvalidAccountToken);
    }
    let verified = state
        .store
        .verify_email(TokenHash::of(token), state.clock.now(), |user| {
            ctx.event(&state.events, Action::EmailVerified, Outcome::Success)
                .actor(Actor::User(user.0))
                .resource(Resource::new("user", user))
        })
        .await?;
    match verified {
        Some((_, ev)) => {
            state.events.observed(&ev);
            Ok(())
        }
        None => Err(ApiError::InvalidAccountToken),
    }
}

/// Starts a password reset. Answers at once, the same for every address: the lookup, the
/// token and the e-mail happen in the background, so neither the answer nor its timing says
/// whether the account exists. An e-mail goes out only for an existing, enabled account, at
/// most once a minute.
pub fn forgot_password(state: &AppState, ctx: &RequestContext, submitted: &str) {
    let (state, ctx, submitted) = (state.clone(), ctx.clone(), submitted.to_string());
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &ctx, &submitted).await {
            tracing::warn!(error = %e, "password reset request failed");
        }
    });
}

async fn send_reset(state: &AppState, ctx: &RequestContext, submitted: &str) -> Result<(), ApiError> {
    let now = state.clock.now();
    let user = match Email::parse(submitted) {
        Ok(email) => state.store.find_user_by_email(&email).await?.filter(|u| !u.disabled),
        Err(_) => None,
    };
    let Some(user) = user else {
        let ev = ctx
            .event(&state.events, Action::PasswordResetRequested, Outcome::Failure)
            .details(serde_json::json!({ "reason": "unknown_account" }));
        state.events.record(ev).await?;
        return Ok(());
    };
    let recent = state.store.last_account_token_at(user.id, TokenPurpose::ResetPassword).await?;
    if recent.is_some_and(|t| now - t < RESET_MAIL_INTERVAL) {
        let ev = ctx
            .event(&state.events, Action::PasswordResetRequested, Outcome::Denied)
            .resource(Resource::new("user", user.id))
            .details(serde_json::json!({ "reason": "too_soon" }));
        state.events.record(ev).await?;
        return Ok(());
    }
    let minutes = state.config.accounts.reset_ttl_minutes;
    let token = OpaqueToken::generate(TokenKind::ResetPassword, &mut rand::rngs::OsRng);
    let ev = ctx
        .event(&state.events, Action::PasswordResetRequested, Outcome::Success)
        .resource(Resource::new("user", user.id));
    let expires = now + Duration::minutes(i64::try_from(minutes).unwrap_or(30));
    state
        .store
        .create_account_token(token.hash(), TokenPurpose::ResetPassword, user.id, &user.email, now, expires, Some(&ev))
        .await?;
    state.events.observed(&ev);
    let link = state.config.accounts.reset_password_url.replace("{token}", token.expose());
    state.mailer.enqueue(OutgoingMail {
        to: user.email.clone(),
        subject: "Reset your password".into(),
        text: format!(
            "Someone asked to reset the password of this account. To choose a new password, open the link \
             below (it works once, for {minutes} minutes):\n\n{link}\n\n\
             If it was not you, ignore this message: your password stays as it is."
        ),
    });
    Ok(())
}

/// Sets a new password with a reset (or expired-password) token. Every session ends; a second
/// factor, when the account has one, is still asked at the next login.
pub async fn reset_password(
    state: &AppState,
    ctx: &RequestContext,
    token: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    if !looks_like(TokenKind::ResetPassword, token) {
        return Err(ApiError::InvalidAccountToken);
    }
    let now = state.clock.now();
    let hash = TokenHash::of(token);
    let found = state.store.find_account_token(hash, now).await?;
    let Some(found) =
        found.filter(|t| matches!(t.purpose, TokenPurpose::ResetPassword | TokenPurpose::ExpiredPassword))
    else {
        return Err(ApiError::InvalidAccountToken);
    };
    let user = state.store.get_user(found.user_id).await?.ok_or(ApiError::InvalidAccountToken)?;
    let password =
        validate_new_password(state, new_password, Some(&user.email), "new_password").map_err(ApiError::Validation)?;
    check_history(state, user.id, &password, "new_password").await?;
    let phc = state.hashing.hash(password).await.map_err(ApiError::internal)?;
    let via = match found.purpose {
        TokenPurpose::ExpiredPassword => "expired_password",
        _ => "email",
    };
    let ev = ctx
        .event(&state.events, Action::PasswordReset, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "via": via, "sessions_revoked": "all" }));
    let id_key = state.auth.identifier_key(&user.email);
    match state.store.complete_password_reset(hash, user.id, &phc, now, &id_key, &ev).await {
        Ok(_) => {
            state.events.observed(&ev);
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::InvalidAccountToken),
        Err(e) => Err(e.into()),
    }
}

/// Changes the caller's password after re-checking the current one (through the throttled
/// password check). Other sessions end unless asked to keep them.
pub async fn change_password(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    current: &str,
    new_password: &str,
    keep_other_sessions: bool,
) -> Result<(), ApiError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ApiError::InvalidToken)?;
    let password =
        validate_new_password(state, new_password, Some(&user.email), "new_password").map_err(ApiError::Validation)?;
    match check_password(state, ctx, &user.email, current, "password_change").await {
        Ok(_) => {}
        Err(ApiError::InvalidCredentials) => {
            return Err(ApiError::Validation(vec![field(
                "current_password",
                "password_incorrect",
                "the current password is not right",
            )]));
        }
        Err(e) => return Err(e),
    }
    check_history(state, user.id, &password, "new_password").await?;
    let phc = state.hashing.hash(password).await.map_err(ApiError::internal)?;
    let which = if keep_other_sessions { RevokeSessions::None } else { RevokeSessions::AllExcept(auth.session.id) };
    let ev = ctx
        .event(&state.events, Action::PasswordChanged, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "other_sessions_revoked": !keep_other_sessions }));
    state.store.set_password(user.id, &phc, state.clock.now(), which, &ev).await?;
    state.events.observed(&ev);
    Ok(())
}

/// Lifts the lockout of a user's identifier (the administrator's unlock).
pub async fn unlock(state: &AppState, ctx: &RequestContext, actor: Actor, user: &User) -> Result<(), ApiError> {
    let cleared = state.store.throttle_clear(&state.auth.identifier_key(&user.email)).await?;
    let ev: SecurityEvent = ctx
        .event(&state.events, Action::LoginUnlocked, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "had_failures": cleared }));
    state.events.record(ev).await?;
    Ok(())
}

/// Seconds from `now` until `t`, for headers.
pub fn secs_until(now: OffsetDateTime, t: OffsetDateTime) -> i64 {
    (t - now).whole_seconds().max(0)
}

/// Paces e-mails that an anonymous request can trigger to one address (the "someone tried to
/// register" notice), so nobody can mail-bomb an address or flood the queue. Per instance, in
/// memory, bounded.
#[derive(Debug, Default)]
pub struct MailPacing {
    last: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How often one address may get a paced e-mail.
pub const PACED_MAIL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);
const PACING_MAX_ENTRIES: usize = 10_000;

impl MailPacing {
    /// Whether `address` may get a mail now; if so, remembers that it did.
    pub fn allow(&self, address: &str, now: std::time::Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(address).is_some_and(|t| now.duration_since(*t) < PACED_MAIL_INTERVAL) {
            return false;
        }
        if last.len() >= PACING_MAX_ENTRIES {
            last.retain(|_, t| now.duration_since(*t) < PACED_MAIL_INTERVAL);
            if last.len() >= PACING_MAX_ENTRIES {
                return false; // under a flood, refuse rather than grow
            }
        }
        last.insert(address.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_mail_goes_out_once_per_interval_per_address() {
        let p = MailPacing::default();
        let t0 = std::time::Instant::now();
        assert!(p.allow("a@example.com", t0));
        assert!(!p.allow("a@example.com", t0 + std::time::Duration::from_secs(599)));
        assert!(p.allow("b@example.com", t0));
        assert!(p.allow("a@example.com", t0 + PACED_MAIL_INTERVAL));
    }
}

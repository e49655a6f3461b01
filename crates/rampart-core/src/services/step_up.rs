//! The step-up login: after a right password, an account with a second factor gets a
//! single-use `mfa_token`; presenting a factor (TOTP, backup code, e-mailed code, WebAuthn)
//! against it opens the session. Both `mfa` and `webauthn` are used from here; neither uses
//! this module.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::factors::{record_failure, throttle_keys};
use crate::services::mfa::{check_backup_code, check_email_code, check_totp};
use rampart_domain::SessionMode;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::opaque::looks_like;
use rampart_domain::{
    Action, Actor, OpaqueToken, Outcome, Resource, Severity, ThrottlePolicy, TokenHash, TokenKind, User,
};
use rampart_store::{AttemptDecision, MfaStatus};

/// What a user can answer a step-up with, in the order clients should offer them.
fn methods(state: &App, status: &MfaStatus) -> Vec<String> {
    let mut m = Vec::new();
    if status.webauthn > 0 {
        m.push(Factor::WebAuthn.as_str().to_string());
    }
    if status.totp {
        m.push(Factor::Totp.as_str().to_string());
    }
    if status.backup_codes_left > 0 {
        m.push(Factor::BackupCode.as_str().to_string());
    }
    if state.settings.mfa.email_fallback {
        m.push(Factor::Email.as_str().to_string());
    }
    m
}

/// After a right password (and `admit`): for an account with a second factor, the
/// `mfa_required` answer with a fresh single-use `mfa_token`; `None` when it has none.
pub async fn begin_step_up(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    mode: SessionMode,
) -> Result<Option<StepUpRequired>, ServiceError> {
    let status = state.store.mfa_status(user.id).await?;
    if !status.any() {
        return Ok(None);
    }
    let now = state.clock.now();
    let ttl = state.settings.mfa.challenge_ttl;
    let token = OpaqueToken::generate(TokenKind::MfaLogin, &mut rand::rngs::OsRng);
    let methods = methods(state, &status);
    let ev = ctx
        .event(&state.events, Action::MfaChallenged, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "methods": methods, "mode": mode.as_str() }));
    let ip = ctx.ip.map(|ip| ip.to_string());
    state
        .store
        .create_mfa_challenge(token.hash(), user.id, mode == SessionMode::Cookie, ip.as_deref(), now, now + ttl, &ev)
        .await?;
    state.events.observed(&ev);
    Ok(Some(StepUpRequired { mfa_token: token.expose().to_string(), methods }))
}

/// A right password of an account with a second factor: the single-use `mfa_token` to
/// present a factor with, and the factors this account can answer with.
#[derive(Debug, Clone)]
pub struct StepUpRequired {
    pub mfa_token: String,
    pub methods: Vec<String>,
}

/// A completed step-up: whom to open a session for, with which `amr`, in which mode.
#[derive(Debug)]
pub struct SteppedUp {
    pub user: User,
    pub amr: Vec<rampart_domain::mfa::Amr>,
    pub mode: SessionMode,
}

/// The answer a step-up presents.
#[derive(Debug)]
pub enum Answer<'a> {
    Totp(&'a str),
    BackupCode(&'a str),
    /// The code e-mailed by [`send_email_code`] (only with `mfa.email_fallback`).
    Email(&'a str),
    /// A WebAuthn assertion for a ceremony begun at `/v1/auth/login/webauthn/start`.
    WebAuthn {
        challenge_id: &'a str,
        credential: &'a serde_json::Value,
    },
}

/// `POST /v1/auth/login/mfa`: checks the second factor against the `mfa_token`'s account.
pub async fn complete_step_up(
    state: &App,
    ctx: &RequestContext,
    mfa_token: &str,
    answer: Answer<'_>,
) -> Result<SteppedUp, ServiceError> {
    let now = state.clock.now();
    let factor = match answer {
        Answer::Totp(_) => Factor::Totp,
        Answer::BackupCode(_) => Factor::BackupCode,
        Answer::Email(_) => Factor::Email,
        Answer::WebAuthn { .. } => Factor::WebAuthn,
    };
    let hash = TokenHash::of(mfa_token);
    let challenge = if looks_like(TokenKind::MfaLogin, mfa_token) {
        state.store.claim_mfa_attempt(hash, now, state.settings.mfa.challenge_max_failures).await?
    } else {
        None
    };
    let Some(challenge) = challenge else {
        record_failure(state, ctx, None, factor, "invalid_mfa_token", "login").await?;
        return Err(ServiceError::InvalidMfaToken);
    };
    let user = state.store.get_user(challenge.user_id).await?.ok_or(ServiceError::InvalidMfaToken)?;
    if user.disabled {
        return Err(ServiceError::AccountDisabled);
    }

    // Counted before the check, like a password attempt; taken back when right.
    let keys = throttle_keys(state, ctx, user.email.as_str());
    let stored: Vec<String> = keys.iter().map(|(k, _)| k.storage_key()).collect();
    let key_refs: Vec<(&str, ThrottlePolicy)> = stored.iter().zip(&keys).map(|(s, (_, p))| (s.as_str(), *p)).collect();
    let locks = match state.store.throttle_attempt(&key_refs, now).await? {
        AttemptDecision::Counted(locks) => locks,
        AttemptDecision::Refused { retry_after, locked } => {
            let ev = ctx
                .event(&state.events, Action::MfaFailed, Outcome::Denied)
                .severity(Severity::Warning)
                .resource(Resource::new("user", user.id))
                .details(serde_json::json!({ "method": factor.as_str(), "reason": if locked { "locked" } else { "throttled" }, "via": "login" }));
            state.events.record(ev).await?;
            let secs = u64::try_from(retry_after.whole_seconds()).unwrap_or(0) + 1;
            return Err(ServiceError::TooManyAttempts { retry_after_secs: secs });
        }
    };

    let accepted = match answer {
        Answer::Totp(code) => check_totp(state, ctx, &user, code).await?,
        Answer::BackupCode(code) => check_backup_code(state, ctx, &user, code).await?,
        Answer::Email(code) => check_email_code(state, &hash, challenge.email_code_hash.as_deref(), code),
        Answer::WebAuthn { challenge_id, credential } => {
            crate::services::webauthn::check_step_up(state, ctx, &user, &hash, challenge_id, credential).await?
        }
    };
    if let Err(reason) = accepted {
        for ((key, _), locked) in keys.iter().zip(&locks) {
            if *locked {
                let kind = key.kind();
                let ev = ctx
                    .event(&state.events, Action::LoginLocked, Outcome::Denied)
                    .severity(Severity::Warning)
                    .resource(Resource::new("user", user.id))
                    .details(serde_json::json!({ "key": kind, "lockout_secs": state.settings.login.identifier.lockout.whole_seconds(), "via": "login_mfa" }));
                state.events.record(ev).await?;
            }
        }
        record_failure(state, ctx, Some(user.id), factor, reason, "login").await?;
        return Err(ServiceError::InvalidMfaCode);
    }
    let id_key = state.auth.identifier_key(user.email.as_str()).storage_key();
    let uncount: Vec<(&str, ThrottlePolicy, bool)> = key_refs
        .iter()
        .zip(&locks)
        .filter(|((k, _), _)| *k != id_key.as_str())
        .map(|((k, p), locked)| (*k, *p, *locked))
        .collect();
    state.store.throttle_succeeded(&[id_key.as_str()], &uncount, now).await?;
    if !state.store.consume_mfa_challenge(hash, now).await? {
        return Err(ServiceError::InvalidMfaToken);
    }
    Ok(SteppedUp {
        user,
        amr: mfa::amr_with(factor),
        mode: if challenge.cookie_mode { SessionMode::Cookie } else { SessionMode::Token },
    })
}

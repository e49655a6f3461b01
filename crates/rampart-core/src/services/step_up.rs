//! The step-up login: after a right password, an account with a second factor gets a
//! single-use `mfa_token`; presenting a factor (TOTP, backup code, e-mailed code, WebAuthn)
//! against it opens the session. Both `mfa` and `webauthn` are used from here; neither uses
//! this module.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::factors::{check_backup_code, check_totp, count_attempt, record_failure};
use crate::services::mfa::check_email_code;
use rampart_domain::SessionMode;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::opaque::looks_like;
use rampart_domain::{Action, Actor, OpaqueToken, Outcome, Resource, TokenHash, TokenKind, User};
use rampart_store::MfaStatus;

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
    begin_step_up_after(state, ctx, user, mode, mfa::Amr::Pwd).await
}

/// [`begin_step_up`] after `first` (a password, or an external identity's sign-in): the
/// session the step-up opens names it in its `amr`.
pub async fn begin_step_up_after(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    mode: SessionMode,
    first: mfa::Amr,
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
        .create_mfa_challenge(
            token.hash(),
            user.id,
            mode == SessionMode::Cookie,
            first.as_str(),
            ip.as_deref(),
            now,
            now + ttl,
            &ev,
        )
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
    let attempt = count_attempt(state, ctx, &user, factor, "login").await?;
    let accepted = match answer {
        Answer::Totp(code) => check_totp(state, ctx, &user, code, "login").await?,
        Answer::BackupCode(code) => check_backup_code(state, ctx, &user, code, "login").await?,
        Answer::Email(code) => check_email_code(state, &hash, challenge.email_code_hash.as_deref(), code),
        Answer::WebAuthn { challenge_id, credential } => {
            crate::services::webauthn::check_step_up(state, ctx, &user, &hash, challenge_id, credential).await?
        }
    };
    if let Err(reason) = accepted {
        attempt.failed(state, ctx, reason).await?;
        return Err(ServiceError::InvalidMfaCode);
    }
    attempt.signed_in(state).await?;
    if !state.store.consume_mfa_challenge(hash, now).await? {
        return Err(ServiceError::InvalidMfaToken);
    }
    Ok(SteppedUp {
        user,
        amr: mfa::amr_after(mfa::Amr::parse(&challenge.first_factor).unwrap_or(mfa::Amr::Pwd), factor),
        mode: if challenge.cookie_mode { SessionMode::Cookie } else { SessionMode::Token },
    })
}

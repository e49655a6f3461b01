//! Second factors: TOTP set-up, enabling and disabling (re-authenticated with the password),
//! backup codes, and the step-up login that turns a right password plus a second factor into a
//! session.
//!
//! Rules that live here: adding or removing a factor needs the password again (ASVS 7.5.1) and
//! may end the other sessions; a TOTP step and a backup code work once (compare-and-swap in the
//! store); an `mfa_token` works once, for `mfa.challenge_ttl_secs`, for the login attempt that got
//! it (its session mode), and takes at most `mfa.challenge_max_failures` wrong codes; every
//! wrong code also counts toward the same login throttle and lockout as a wrong password.

use crate::AppState;
use crate::auth::{Authenticated, ip_key};
use crate::error::ApiError;
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use crate::services::accounts;
use base64::Engine as _;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::opaque::looks_like;
use rampart_domain::otp::{Totp, TotpSecret};
use rampart_domain::{
    Action, Actor, OpaqueToken, Outcome, Resource, SecurityEvent, Severity, ThrottlePolicy, TokenHash, TokenKind, User,
    UserId,
};
use rampart_store::{AttemptDecision, MfaStatus, RevokeSessions, StoreError};
use rampart_wire::{FieldError, MfaRequired, TotpSetup};
use time::Duration;

/// The TOTP parameters every authenticator app supports (SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp() -> Totp {
    Totp::default()
}

/// The associated data a user's TOTP secret is sealed with: a sealed secret copied into another
/// user's row does not open.
fn totp_aad(user: UserId) -> Vec<u8> {
    format!("mfa_totp:{user}").into_bytes()
}

fn backup_key(state: &AppState) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(state.master_key.derive("rampart backup codes v1"))
}

fn invalid_code(field: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.into(),
        code: "invalid_code".into(),
        message: "the code is wrong, expired or was used before".into(),
    }])
}

fn unix(state: &AppState) -> i64 {
    state.clock.now().unix_timestamp()
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// Re-authentication before a factor changes: the password, through the one throttled check.
pub async fn reauthenticate(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<User, ApiError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ApiError::InvalidToken)?;
    match accounts::check_password(state, ctx, &user.email, password, "mfa_reauth").await {
        Ok(user) => Ok(user),
        Err(ApiError::InvalidCredentials) => Err(ApiError::Validation(vec![FieldError {
            field: "password".into(),
            code: "password_incorrect".into(),
            message: "the password is not right".into(),
        }])),
        Err(e) => Err(e),
    }
}

pub(crate) fn factor_event(state: &AppState, ctx: &RequestContext, user: UserId, action: Action) -> SecurityEvent {
    ctx.event(&state.events, action, Outcome::Success).actor(Actor::User(user.0)).resource(Resource::new("user", user))
}

pub(crate) fn revoke_choice(state: &AppState, auth: &Authenticated) -> RevokeSessions {
    if state.config.mfa.revoke_other_sessions_on_change {
        RevokeSessions::AllExcept(auth.session.id)
    } else {
        RevokeSessions::None
    }
}

/// Tells the account's owner that a factor was added or removed (a stolen session adding its
/// own authenticator is then noticed).
pub(crate) fn notify(state: &AppState, user: &User, what: &str) {
    state.mailer.enqueue(OutgoingMail {
        to: user.email.clone(),
        subject: format!("Security notice: {what}"),
        text: format!(
            "{what} on your account ({}).\n\nIf this was you, nothing else is needed. If not, reset your password \
             at once and review your sessions and second factors.",
            user.email
        ),
    });
}

/// Draws a fresh set of backup codes: the codes to show once, and their stored hashes.
fn new_backup_codes(state: &AppState, user: UserId) -> (Vec<String>, Vec<[u8; 32]>) {
    let key = backup_key(state);
    let mut rng = rand::rngs::OsRng;
    (0..mfa::BACKUP_CODE_COUNT)
        .map(|_| {
            let code = mfa::generate_backup_code(&mut rng);
            let normalized = mfa::normalize_backup_code(&code).unwrap_or_default();
            let hash = mfa::backup_code_hash(&key, user.0, &normalized);
            (code, hash)
        })
        .unzip()
}

/// `POST /v1/me/mfa/totp/setup`: a new secret (replacing a pending one), sealed at rest.
pub async fn totp_setup(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<TotpSetup, ApiError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    let secret = TotpSecret::generate(&mut rand::rngs::OsRng);
    let sealed = state.master_key.seal(secret.expose(), &totp_aad(user.id), &mut rand::rngs::OsRng);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpSetup);
    match state.store.set_pending_totp(user.id, &sealed, &state.master_key.key_id(), state.clock.now(), &ev).await {
        Ok(()) => state.events.observed(&ev),
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict {
                code: "totp_already_enabled",
                detail: "TOTP is already enabled; disable it first to set up a new authenticator".into(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    let uri = totp().otpauth_uri(&secret, &state.config.mfa.issuer, &user.email);
    let (png, svg) = qr(&uri)?;
    Ok(TotpSetup {
        secret: secret.base32(),
        otpauth_uri: uri,
        qr_png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        qr_svg: svg,
    })
}

/// The QR code of `data` as PNG (8 px per module, 4-module quiet zone, greyscale) and SVG.
fn qr(data: &str) -> Result<(Vec<u8>, String), ApiError> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(ApiError::internal)?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
    let modules = code.width();
    let (scale, quiet) = (8usize, 4usize);
    let side = (modules + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut png = Vec::new();
    {
        let side = u32::try_from(side).map_err(ApiError::internal)?;
        let mut enc = png::Encoder::new(&mut png, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(ApiError::internal)?;
        writer.write_image_data(&pixels).map_err(ApiError::internal)?;
        writer.finish().map_err(ApiError::internal)?;
    }
    Ok((png, svg))
}

fn open_secret(state: &AppState, user: UserId, sealed: &str) -> Result<TotpSecret, ApiError> {
    state.master_key.open(sealed, &totp_aad(user)).map(TotpSecret::from_bytes).map_err(ApiError::internal)
}

/// `POST /v1/me/mfa/totp/enable`: the first right code turns the pending secret on and issues
/// the backup codes (shown this once).
pub async fn totp_enable(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    code: &str,
) -> Result<Vec<String>, ApiError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ApiError::InvalidToken)?;
    let stored = match state.store.totp(user.id).await? {
        Some(t) if !t.enabled => t,
        Some(_) => {
            return Err(ApiError::Conflict { code: "totp_already_enabled", detail: "TOTP is already enabled".into() });
        }
        None => {
            return Err(ApiError::Conflict {
                code: "totp_not_set_up",
                detail: "call /v1/me/mfa/totp/setup first".into(),
            });
        }
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let Some(step) = totp().verify(secret.expose(), code, unix(state)) else {
        record_failure(state, ctx, Some(user.id), Factor::Totp, "wrong_code", "enable").await?;
        return Err(invalid_code("code"));
    };
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpEnabled)
        .details(serde_json::json!({ "backup_codes": codes.len(), "other_sessions_revoked": state.config.mfa.revoke_other_sessions_on_change }));
    let now = state.clock.now();
    if !state.store.enable_totp(user.id, step_i64(step), &hashes, now, revoke_choice(state, auth), &ev).await? {
        return Err(invalid_code("code"));
    }
    state.events.observed(&ev);
    notify(state, &user, "an authenticator app (TOTP) was added as a second factor");
    Ok(codes)
}

/// `POST /v1/me/mfa/totp/disable`: password and a current code; the backup codes go with it.
pub async fn totp_disable(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
    code: &str,
) -> Result<(), ApiError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    let Some(stored) = state.store.totp(user.id).await?.filter(|t| t.enabled) else {
        return Err(ApiError::Conflict { code: "totp_not_enabled", detail: "TOTP is not enabled".into() });
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let step = totp().verify(secret.expose(), code, unix(state));
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpDisabled)
        .severity(Severity::Warning)
        .details(serde_json::json!({ "other_sessions_revoked": state.config.mfa.revoke_other_sessions_on_change }));
    let done = match step {
        Some(step) => {
            state
                .store
                .disable_totp(user.id, step_i64(step), state.clock.now(), revoke_choice(state, auth), &ev)
                .await?
        }
        None => false,
    };
    if !done {
        record_failure(state, ctx, Some(user.id), Factor::Totp, "wrong_code", "disable").await?;
        return Err(invalid_code("code"));
    }
    state.events.observed(&ev);
    notify(state, &user, "the authenticator app (TOTP) second factor was removed");
    Ok(())
}

/// `POST /v1/me/mfa/backup-codes`: a new set; the old one stops working.
pub async fn regenerate_backup_codes(
    state: &AppState,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<Vec<String>, ApiError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    if !state.store.mfa_status(user.id).await?.any() {
        return Err(ApiError::Conflict {
            code: "mfa_not_enabled",
            detail: "backup codes back up a second factor: enable one first".into(),
        });
    }
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaBackupCodesRegenerated)
        .details(serde_json::json!({ "backup_codes": codes.len() }));
    state.store.replace_backup_codes(user.id, &hashes, state.clock.now(), &ev).await?;
    state.events.observed(&ev);
    notify(state, &user, "new backup codes were generated (the old ones no longer work)");
    Ok(codes)
}

pub(crate) async fn record_failure(
    state: &AppState,
    ctx: &RequestContext,
    user: Option<UserId>,
    factor: Factor,
    reason: &str,
    via: &str,
) -> Result<(), ApiError> {
    let mut ev = ctx
        .event(&state.events, Action::MfaFailed, Outcome::Failure)
        .severity(Severity::Warning)
        .details(serde_json::json!({ "method": factor.as_str(), "reason": reason, "via": via }));
    if let Some(user) = user {
        ev = ev.resource(Resource::new("user", user));
    }
    state.events.record(ev).await?;
    Ok(())
}

/// What a user can answer a step-up with, in the order clients should offer them.
fn methods(state: &AppState, status: &MfaStatus) -> Vec<String> {
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
    if state.config.mfa.email_fallback {
        m.push(Factor::Email.as_str().to_string());
    }
    m
}

/// After a right password (and `admit`): for an account with a second factor, the
/// `mfa_required` answer with a fresh single-use `mfa_token`; `None` when it has none.
pub async fn begin_step_up(
    state: &AppState,
    ctx: &RequestContext,
    user: &User,
    cookie_mode: bool,
) -> Result<Option<MfaRequired>, ApiError> {
    let status = state.store.mfa_status(user.id).await?;
    if !status.any() {
        return Ok(None);
    }
    let now = state.clock.now();
    let ttl = Duration::seconds(i64::try_from(state.config.mfa.challenge_ttl_secs).unwrap_or(300));
    let token = OpaqueToken::generate(TokenKind::MfaLogin, &mut rand::rngs::OsRng);
    let methods = methods(state, &status);
    let ev = ctx
        .event(&state.events, Action::MfaChallenged, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "methods": methods, "mode": if cookie_mode { "cookie" } else { "token" } }));
    let ip = ctx.ip.map(|ip| ip.to_string());
    state.store.create_mfa_challenge(token.hash(), user.id, cookie_mode, ip.as_deref(), now, now + ttl, &ev).await?;
    state.events.observed(&ev);
    Ok(Some(MfaRequired { mfa_required: true, mfa_token: token.expose().to_string(), methods }))
}

/// A completed step-up: whom to open a session for, with which `amr`, in which mode.
#[derive(Debug)]
pub struct SteppedUp {
    pub user: User,
    pub amr: Vec<String>,
    pub cookie_mode: bool,
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

fn email_key(state: &AppState) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(state.master_key.derive("rampart email login codes v1"))
}

/// At most one e-mailed code per `mfa_token` this often.
const EMAIL_CODE_INTERVAL: Duration = Duration::seconds(60);

/// `POST /v1/auth/login/mfa/email`: e-mails a six-digit code for this login (the fallback
/// factor, with `mfa.email_fallback`). A new code replaces the previous one, at most once a
/// minute; the code dies with its `mfa_token`.
pub async fn send_email_code(state: &AppState, ctx: &RequestContext, mfa_token: &str) -> Result<(), ApiError> {
    if !state.config.mfa.email_fallback {
        return Err(ApiError::Forbidden {
            code: "method_not_available",
            detail: "e-mailed codes are not enabled".into(),
        });
    }
    let now = state.clock.now();
    let hash = TokenHash::of(mfa_token);
    let challenge = if looks_like(TokenKind::MfaLogin, mfa_token) {
        state.store.mfa_challenge(hash, now, state.config.mfa.challenge_max_failures).await?
    } else {
        None
    };
    let Some(challenge) = challenge else { return Err(ApiError::InvalidMfaToken) };
    let user = state.store.get_user(challenge.user_id).await?.ok_or(ApiError::InvalidMfaToken)?;
    let code = mfa::generate_email_code(&mut rand::rngs::OsRng);
    let code_hash = mfa::email_code_hash(&email_key(state), &hash.0, &code);
    let ev = factor_event(state, ctx, user.id, Action::MfaEmailCodeSent);
    if !state.store.set_mfa_email_code(hash, &code_hash, now, now - EMAIL_CODE_INTERVAL, &ev).await? {
        return Err(ApiError::TooManyAttempts { retry_after_secs: 60 });
    }
    state.events.observed(&ev);
    let minutes = state.config.mfa.challenge_ttl_secs / 60;
    state.mailer.enqueue(OutgoingMail {
        to: user.email.clone(),
        subject: "Your sign-in code".into(),
        text: format!(
            "Your sign-in code is {code}\n\nIt works once, for this sign-in only, for at most {minutes} minutes. \
             If you are not signing in, someone knows your password: change it now."
        ),
    });
    Ok(())
}

/// The throttle keys of a user's second-factor attempts: the same as their password's (the
/// client address, then the identifier), so both kinds of failure count toward one lockout.
fn throttle_keys(state: &AppState, ctx: &RequestContext, email: &str) -> Vec<(String, ThrottlePolicy)> {
    let (id_policy, ip_policy) = state.throttle_policies();
    let mut keys = Vec::with_capacity(2);
    if let Some(ip) = ctx.ip.filter(|_| state.config.login.ip_max_failures > 0) {
        keys.push((ip_key(ip), ip_policy));
    }
    keys.push((state.auth.identifier_key(email), id_policy));
    keys
}

/// `POST /v1/auth/login/mfa`: checks the second factor against the `mfa_token`'s account.
pub async fn complete_step_up(
    state: &AppState,
    ctx: &RequestContext,
    mfa_token: &str,
    answer: Answer<'_>,
) -> Result<SteppedUp, ApiError> {
    let now = state.clock.now();
    let factor = match answer {
        Answer::Totp(_) => Factor::Totp,
        Answer::BackupCode(_) => Factor::BackupCode,
        Answer::Email(_) => Factor::Email,
        Answer::WebAuthn { .. } => Factor::WebAuthn,
    };
    let hash = TokenHash::of(mfa_token);
    let challenge = if looks_like(TokenKind::MfaLogin, mfa_token) {
        state.store.mfa_challenge(hash, now, state.config.mfa.challenge_max_failures).await?
    } else {
        None
    };
    let Some(challenge) = challenge else {
        record_failure(state, ctx, None, factor, "invalid_mfa_token", "login").await?;
        return Err(ApiError::InvalidMfaToken);
    };
    let user = state.store.get_user(challenge.user_id).await?.ok_or(ApiError::InvalidMfaToken)?;
    if user.disabled {
        return Err(ApiError::Forbidden { code: "account_disabled", detail: "this account is disabled".into() });
    }

    // Counted before the check, like a password attempt; taken back when right.
    let keys = throttle_keys(state, ctx, &user.email);
    let key_refs: Vec<(&str, ThrottlePolicy)> = keys.iter().map(|(k, p)| (k.as_str(), *p)).collect();
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
            return Err(ApiError::TooManyAttempts { retry_after_secs: secs });
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
        state.store.fail_mfa_challenge(hash).await?;
        for ((key, _), locked) in keys.iter().zip(&locks) {
            if *locked {
                let kind = if key.starts_with("ip:") { "ip" } else { "identifier" };
                let ev = ctx
                    .event(&state.events, Action::LoginLocked, Outcome::Denied)
                    .severity(Severity::Warning)
                    .resource(Resource::new("user", user.id))
                    .details(serde_json::json!({ "key": kind, "lockout_secs": state.config.login.lockout_secs, "via": "login_mfa" }));
                state.events.record(ev).await?;
            }
        }
        record_failure(state, ctx, Some(user.id), factor, reason, "login").await?;
        return Err(ApiError::InvalidMfaCode);
    }
    let id_key = state.auth.identifier_key(&user.email);
    let uncount: Vec<(&str, ThrottlePolicy, bool)> = key_refs
        .iter()
        .zip(&locks)
        .filter(|((k, _), _)| *k != id_key.as_str())
        .map(|((k, p), locked)| (*k, *p, *locked))
        .collect();
    state.store.throttle_succeeded(&[id_key.as_str()], &uncount, now).await?;
    if !state.store.consume_mfa_challenge(hash, now).await? {
        return Err(ApiError::InvalidMfaToken);
    }
    Ok(SteppedUp { user, amr: mfa::amr_with(factor), cookie_mode: challenge.cookie_mode })
}

/// An e-mailed code: right for this challenge (single use comes with the challenge's).
fn check_email_code(
    state: &AppState,
    challenge: &TokenHash,
    stored: Option<&[u8]>,
    code: &str,
) -> Result<(), &'static str> {
    if !state.config.mfa.email_fallback {
        return Err("method_not_enabled");
    }
    let Some(stored) = stored else { return Err("no_code_sent") };
    let presented = mfa::email_code_hash(&email_key(state), &challenge.0, code);
    if bool::from(subtle::ConstantTimeEq::ct_eq(presented.as_slice(), stored)) { Ok(()) } else { Err("wrong_code") }
}

/// A TOTP code at login: right and of a later step than the last accepted one.
async fn check_totp(
    state: &AppState,
    ctx: &RequestContext,
    user: &User,
    code: &str,
) -> Result<Result<(), &'static str>, ApiError> {
    let Some(stored) = state.store.totp(user.id).await?.filter(|t| t.enabled) else {
        return Ok(Err("method_not_enabled"));
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let Some(step) = totp().verify(secret.expose(), code, unix(state)) else {
        return Ok(Err("wrong_code"));
    };
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpUsed).details(serde_json::json!({ "via": "login" }));
    if state.store.use_totp_step(user.id, step_i64(step), &ev).await? {
        state.events.observed(&ev);
        Ok(Ok(()))
    } else {
        Ok(Err("replayed_code"))
    }
}

/// A backup code at login: consumed once.
async fn check_backup_code(
    state: &AppState,
    ctx: &RequestContext,
    user: &User,
    code: &str,
) -> Result<Result<(), &'static str>, ApiError> {
    let Some(normalized) = mfa::normalize_backup_code(code) else {
        return Ok(Err("wrong_code"));
    };
    let hash = mfa::backup_code_hash(&backup_key(state), user.id.0, &normalized);
    let used = state
        .store
        .use_backup_code(user.id, &hash, state.clock.now(), |left| {
            factor_event(state, ctx, user.id, Action::MfaBackupCodeUsed)
                .severity(Severity::Warning)
                .details(serde_json::json!({ "backup_codes_left": left, "via": "login" }))
        })
        .await?;
    match used {
        Some((left, ev)) => {
            state.events.observed(&ev);
            if left <= 2 {
                notify(state, user, &format!("a backup code was used; {left} remain, generate new ones soon"));
            }
            Ok(Ok(()))
        }
        None => Ok(Err("wrong_code")),
    }
}

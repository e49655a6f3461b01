//! Second factors: TOTP set-up, enabling and disabling (re-authenticated with the password),
//! backup codes, and the step-up login that turns a right password plus a second factor into a
//! session.
//!
//! Rules that live here: adding or removing a factor needs the password again (ASVS 7.5.1) and
//! may end the other sessions; a TOTP step and a backup code work once (compare-and-swap in the
//! store); an `mfa_token` works once, for `mfa.challenge_ttl_secs`, for the login attempt that got
//! it (its session mode), and takes at most `mfa.challenge_max_failures` wrong codes; every
//! wrong code also counts toward the same login throttle and lockout as a wrong password.

use crate::App;
use crate::authz::Authenticated;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use crate::services::factors::{factor_event, notify, reauthenticate, record_failure, revoke_choice};
use base64::Engine as _;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::opaque::looks_like;
use rampart_domain::otp::{Totp, TotpSecret};
use rampart_domain::{Action, Severity, TokenHash, TokenKind, User, UserId};
use rampart_store::StoreError;
use time::Duration;

/// A new TOTP secret, to show once: as text, as an `otpauth://` URI and as a QR code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_png_base64: String,
    pub qr_svg: String,
}

/// The TOTP parameters every authenticator app supports (SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp() -> Totp {
    Totp::default()
}

/// The associated data a user's TOTP secret is sealed with: a sealed secret copied into another
/// user's row does not open.
fn totp_aad(user: UserId) -> Vec<u8> {
    format!("mfa_totp:{user}").into_bytes()
}

fn backup_key(state: &App) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(state.master_key.derive("rampart backup codes v1"))
}

fn invalid_code(field: &str) -> ServiceError {
    ServiceError::Validation(vec![FieldProblem::new(
        field,
        "invalid_code",
        "the code is wrong, expired or was used before",
    )])
}

fn unix(state: &App) -> i64 {
    state.clock.now().unix_timestamp()
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// Draws a fresh set of backup codes: the codes to show once, and their stored hashes.
fn new_backup_codes(state: &App, user: UserId) -> (Vec<String>, Vec<[u8; 32]>) {
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
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<TotpEnrolment, ServiceError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    let secret = TotpSecret::generate(&mut rand::rngs::OsRng);
    let sealed = state.master_key.seal(secret.expose(), &totp_aad(user.id), &mut rand::rngs::OsRng);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpSetup);
    match state.store.set_pending_totp(user.id, &sealed, &state.master_key.key_id(), state.clock.now(), &ev).await {
        Ok(()) => state.events.observed(&ev),
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::TotpAlreadyEnabled(
                "TOTP is already enabled; disable it first to set up a new authenticator",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let uri = totp().otpauth_uri(&secret, &state.settings.mfa.issuer, user.email.as_str());
    let (png, svg) = qr(&uri)?;
    Ok(TotpEnrolment {
        secret: secret.base32(),
        otpauth_uri: uri,
        qr_png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        qr_svg: svg,
    })
}

/// The QR code of `data` as PNG (8 px per module, 4-module quiet zone, greyscale) and SVG.
fn qr(data: &str) -> Result<(Vec<u8>, String), ServiceError> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(ServiceError::internal)?;
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
        let side = u32::try_from(side).map_err(ServiceError::internal)?;
        let mut enc = png::Encoder::new(&mut png, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(ServiceError::internal)?;
        writer.write_image_data(&pixels).map_err(ServiceError::internal)?;
        writer.finish().map_err(ServiceError::internal)?;
    }
    Ok((png, svg))
}

fn open_secret(state: &App, user: UserId, sealed: &str) -> Result<TotpSecret, ServiceError> {
    state.master_key.open(sealed, &totp_aad(user)).map(TotpSecret::from_bytes).map_err(ServiceError::internal)
}

/// `POST /v1/me/mfa/totp/enable`: the first right code turns the pending secret on and issues
/// the backup codes (shown this once).
pub async fn totp_enable(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    code: &str,
) -> Result<Vec<String>, ServiceError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    let stored = match state.store.totp(user.id).await? {
        Some(t) if !t.enabled => t,
        Some(_) => {
            return Err(ServiceError::TotpAlreadyEnabled("TOTP is already enabled"));
        }
        None => {
            return Err(ServiceError::TotpNotSetUp);
        }
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let Some(step) = totp().verify(secret.expose(), code, unix(state)) else {
        record_failure(state, ctx, Some(user.id), Factor::Totp, "wrong_code", "enable").await?;
        return Err(invalid_code("code"));
    };
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpEnabled)
        .details(serde_json::json!({ "backup_codes": codes.len(), "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change }));
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
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
    code: &str,
) -> Result<(), ServiceError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    let Some(stored) = state.store.totp(user.id).await?.filter(|t| t.enabled) else {
        return Err(ServiceError::TotpNotEnabled);
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let step = totp().verify(secret.expose(), code, unix(state));
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpDisabled)
        .severity(Severity::Warning)
        .details(serde_json::json!({ "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change }));
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
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<Vec<String>, ServiceError> {
    let user = reauthenticate(state, ctx, auth, password).await?;
    if !state.store.mfa_status(user.id).await?.any() {
        return Err(ServiceError::MfaNotEnabled);
    }
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaBackupCodesRegenerated)
        .details(serde_json::json!({ "backup_codes": codes.len() }));
    state.store.replace_backup_codes(user.id, &hashes, state.clock.now(), &ev).await?;
    state.events.observed(&ev);
    notify(state, &user, "new backup codes were generated (the old ones no longer work)");
    Ok(codes)
}

fn email_key(state: &App) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(state.master_key.derive("rampart email login codes v1"))
}

/// At most one e-mailed code per `mfa_token` this often.
const EMAIL_CODE_INTERVAL: Duration = Duration::seconds(60);

/// `POST /v1/auth/login/mfa/email`: e-mails a six-digit code for this login (the fallback
/// factor, with `mfa.email_fallback`). A new code replaces the previous one, at most once a
/// minute; the code dies with its `mfa_token`.
pub async fn send_email_code(state: &App, ctx: &RequestContext, mfa_token: &str) -> Result<(), ServiceError> {
    if !state.settings.mfa.email_fallback {
        return Err(ServiceError::MethodNotAvailable("e-mailed codes are not enabled"));
    }
    let now = state.clock.now();
    let hash = TokenHash::of(mfa_token);
    let challenge = if looks_like(TokenKind::MfaLogin, mfa_token) {
        state.store.mfa_challenge(hash, now, state.settings.mfa.challenge_max_failures).await?
    } else {
        None
    };
    let Some(challenge) = challenge else { return Err(ServiceError::InvalidMfaToken) };
    let user = state.store.get_user(challenge.user_id).await?.ok_or(ServiceError::InvalidMfaToken)?;
    let code = mfa::generate_email_code(&mut rand::rngs::OsRng);
    let code_hash = mfa::email_code_hash(&email_key(state), &hash.0, &code);
    let ev = factor_event(state, ctx, user.id, Action::MfaEmailCodeSent);
    if !state.store.set_mfa_email_code(hash, &code_hash, now, now - EMAIL_CODE_INTERVAL, &ev).await? {
        return Err(ServiceError::TooManyAttempts { retry_after_secs: 60 });
    }
    state.events.observed(&ev);
    let minutes = state.settings.mfa.challenge_ttl.whole_minutes();
    state.mailer.enqueue(OutgoingMail {
        to: user.email.to_string(),
        subject: "Your sign-in code".into(),
        text: format!(
            "Your sign-in code is {code}\n\nIt works once, for this sign-in only, for at most {minutes} minutes. \
             If you are not signing in, someone knows your password: change it now."
        ),
    });
    Ok(())
}

/// An e-mailed code: right for this challenge (single use comes with the challenge's).
pub(crate) fn check_email_code(
    state: &App,
    challenge: &TokenHash,
    stored: Option<&[u8]>,
    code: &str,
) -> Result<(), &'static str> {
    if !state.settings.mfa.email_fallback {
        return Err("method_not_enabled");
    }
    let Some(stored) = stored else { return Err("no_code_sent") };
    let presented = mfa::email_code_hash(&email_key(state), &challenge.0, code);
    if bool::from(subtle::ConstantTimeEq::ct_eq(presented.as_slice(), stored)) { Ok(()) } else { Err("wrong_code") }
}

/// A TOTP code at login: right and of a later step than the last accepted one.
pub(crate) async fn check_totp(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    code: &str,
) -> Result<Result<(), &'static str>, ServiceError> {
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
pub(crate) async fn check_backup_code(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    code: &str,
) -> Result<Result<(), &'static str>, ServiceError> {
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

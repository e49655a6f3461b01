//! Second factors: TOTP set-up, enabling and disabling, backup codes, and the e-mailed code of
//! the step-up login.
//!
//! Rules that live here: adding or removing a factor goes through
//! [`factors::reauthenticate`](crate::services::factors::reauthenticate) (the password, and a
//! current second factor once the account has one; ASVS 7.5.1) and may end the other sessions;
//! a TOTP step and a backup code work once (compare-and-swap in the store); an `mfa_token` works
//! once, for `mfa.challenge_ttl_secs`, for the login attempt that got it (its session mode), and
//! takes at most `mfa.challenge_max_failures` wrong codes; every wrong code (at the step-up, at a
//! re-authentication, at `/totp/enable`) also counts toward the same login throttle and lockout
//! as a wrong password.

use crate::App;
use crate::authz::Authenticated;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use crate::services::factors::{
    Reauth, backup_key, count_attempt, factor_event, invalid_code, open_secret, reauthenticate, revoke_choice,
    seal_secret, step_i64, totp, unix,
};
use base64::Engine as _;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::opaque::looks_like;
use rampart_domain::otp::TotpSecret;
use rampart_domain::{Action, Severity, TokenHash, TokenKind, UserId};
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

/// `POST /v1/me/mfa/totp/setup`: after re-authentication, a new secret (replacing a pending
/// one), sealed at rest.
pub async fn totp_setup(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Reauth<'_>,
) -> Result<TotpEnrolment, ServiceError> {
    let user = reauthenticate(state, ctx, auth, reauth).await?;
    let secret = TotpSecret::generate(&mut rand::rngs::OsRng);
    let sealed = seal_secret(state, user.id, &secret);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpSetup);
    match state.store.set_pending_totp(user.id, &sealed, state.master_key.key_id(), state.clock.now(), &ev).await {
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

/// `POST /v1/me/mfa/totp/enable`: the first right code turns the pending secret on and issues
/// the backup codes (shown this once). Each code is counted toward the login throttle like any
/// second-factor attempt (a right one is taken back).
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
    let attempt = count_attempt(state, ctx, &user, Factor::Totp, "enable").await?;
    let Some(step) = totp().verify(secret.expose(), code, unix(state)) else {
        attempt.failed(state, ctx, "wrong_code").await?;
        return Err(invalid_code("code"));
    };
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpEnabled)
        .details(serde_json::json!({ "backup_codes": codes.len(), "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change }));
    let now = state.clock.now();
    if !state.store.enable_totp(user.id, step_i64(step), &hashes, now, revoke_choice(state, auth), &ev).await? {
        attempt.failed(state, ctx, "replayed_code").await?;
        return Err(invalid_code("code"));
    }
    attempt.taken_back(state).await?;
    state.events.observed(&ev);
    Ok(codes)
}

/// `POST /v1/me/mfa/totp/disable`: after re-authentication (the password and a current second
/// factor, e.g. a code of this very authenticator), TOTP goes and the backup codes with it.
pub async fn totp_disable(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Reauth<'_>,
) -> Result<(), ServiceError> {
    let user = reauthenticate(state, ctx, auth, reauth).await?;
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpDisabled)
        .severity(Severity::Warning)
        .details(serde_json::json!({ "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change }));
    if !state.store.disable_totp(user.id, state.clock.now(), revoke_choice(state, auth), &ev).await? {
        return Err(ServiceError::TotpNotEnabled);
    }
    state.events.observed(&ev);
    Ok(())
}

/// `POST /v1/me/mfa/backup-codes`: after re-authentication, a new set; the old one stops
/// working.
pub async fn regenerate_backup_codes(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Reauth<'_>,
) -> Result<Vec<String>, ServiceError> {
    let user = reauthenticate(state, ctx, auth, reauth).await?;
    if !state.store.mfa_status(user.id).await?.any() {
        return Err(ServiceError::MfaNotEnabled);
    }
    let (codes, hashes) = new_backup_codes(state, user.id);
    let ev = factor_event(state, ctx, user.id, Action::MfaBackupCodesRegenerated)
        .details(serde_json::json!({ "backup_codes": codes.len() }));
    state.store.replace_backup_codes(user.id, &hashes, state.clock.now(), &ev).await?;
    state.events.observed(&ev);
    Ok(codes)
}

fn email_key(state: &App) -> zeroize::Zeroizing<[u8; 32]> {
    state.codes.email_codes.clone()
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
    super::notifications::queue(
        state,
        OutgoingMail {
            to: user.email.to_string(),
            subject: "Your sign-in code".into(),
            text: format!(
                "Your sign-in code is {code}\n\nIt works once, for this sign-in only, for at most {minutes} minutes. \
                 If you are not signing in, someone knows your password: change it now."
            ),
            html: None,
        },
        Some(user.id),
    );
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

//! Second factors: `/v1/me/mfa/*` (TOTP set-up, enable, disable; backup codes) and the step-up
//! login `/v1/auth/login/mfa`.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::ApiJson;
use crate::routes::auth::{issued_response, no_store};
use crate::views::totp_setup as setup_view;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::factors::Reauth;
use rampart_core::services::login;
use rampart_core::services::mfa;
use rampart_core::services::step_up::Answer;
use rampart_wire::{
    Accepted, BackupCodes, FactorReauth, MfaLoginRequest, MfaTokenRequest, Problem, TokenResponse, TotpCode, TotpSetup,
};

/// The re-authentication a factor change's body carries, as the use case takes it.
pub(crate) fn reauth(req: &FactorReauth) -> Reauth<'_> {
    Reauth { password: &req.password.0, code: req.code.as_ref().map(|c| c.0.as_str()) }
}

/// Starts TOTP set-up: a new 160-bit secret as base32, an `otpauth://` URI and its QR code (PNG
/// as base64, and SVG). Nothing changes at login until `/enable` gets a right code.
/// Re-authentication: the password, and when the account already has a second factor a current
/// `code` too (or a session opened with two factors within `security.reauth_window_secs`).
#[utoipa::path(post, path = "/v1/me/mfa/totp/setup", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = FactorReauth,
    responses(
        (status = 200, description = "The secret, URI and QR code", body = TotpSetup),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 409, description = "`totp_already_enabled`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn totp_setup(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<FactorReauth>,
) -> Result<Response, ApiError> {
    let setup = mfa::totp_setup(&state, &ctx, &auth, reauth(&req)).await?;
    Ok(no_store(axum::Json(setup_view(setup)).into_response()))
}

/// Enables TOTP with a right code from the authenticator, and returns 10 single-use backup
/// codes, shown this once. Other sessions end (unless `mfa.revoke_other_sessions_on_change` is off).
/// Wrong codes count toward the login lockout.
#[utoipa::path(post, path = "/v1/me/mfa/totp/enable", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = TotpCode,
    responses(
        (status = 200, description = "Enabled; the backup codes", body = BackupCodes),
        (status = 400, description = "`validation_failed`: `invalid_code`", body = Problem),
        (status = 409, description = "`totp_not_set_up` or `totp_already_enabled`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn totp_enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Response, ApiError> {
    let backup_codes = mfa::totp_enable(&state, &ctx, &auth, &req.code.0).await?;
    Ok(no_store(axum::Json(BackupCodes { backup_codes }).into_response()))
}

/// Disables TOTP; the backup codes go with it. Re-authentication: the password and a current
/// `code` (an authenticator or backup code), or a session opened with two factors within
/// `security.reauth_window_secs`. Wrong codes count toward the login lockout.
#[utoipa::path(post, path = "/v1/me/mfa/totp/disable", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = FactorReauth,
    responses(
        (status = 204, description = "Disabled"),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 409, description = "`totp_not_enabled`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn totp_disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<FactorReauth>,
) -> Result<StatusCode, ApiError> {
    mfa::totp_disable(&state, &ctx, &auth, reauth(&req)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the backup codes: 10 new ones, shown this once; the old set stops working.
/// Re-authentication: the password and a current `code` (an authenticator code, or one of the
/// old backup codes), or a session opened with two factors within `security.reauth_window_secs`.
#[utoipa::path(post, path = "/v1/me/mfa/backup-codes", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = FactorReauth,
    responses(
        (status = 200, description = "The new codes", body = BackupCodes),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 409, description = "`mfa_not_enabled`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn backup_codes(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<FactorReauth>,
) -> Result<Response, ApiError> {
    let backup_codes = mfa::regenerate_backup_codes(&state, &ctx, &auth, reauth(&req)).await?;
    Ok(no_store(axum::Json(BackupCodes { backup_codes }).into_response()))
}

/// E-mails a six-digit sign-in code for this login (the fallback factor; only when
/// `mfa.email_fallback` is on). Redeem it at `/v1/auth/login/mfa` with `method: "email"`.
#[utoipa::path(post, path = "/v1/auth/login/mfa/email", tag = "accounts", request_body = MfaTokenRequest,
    responses(
        (status = 202, description = "Sent", body = Accepted),
        (status = 401, description = "`invalid_mfa_token`", body = Problem),
        (status = 403, description = "`method_not_available`", body = Problem),
        (status = 429, description = "`too_many_attempts`: one code a minute", body = Problem),
    ))]
pub async fn login_mfa_email(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<MfaTokenRequest>,
) -> Result<Response, ApiError> {
    mfa::send_email_code(&state, &ctx, &req.mfa_token.0).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Accepted { status: "accepted".into() })).into_response())
}

/// Completes a step-up login: the `mfa_token` from `/v1/auth/login` with a TOTP `code` or a
/// `backup_code`. Answers like the login would have (tokens, or the cookie when the login asked
/// for cookie mode), with `amr` naming both factors. Wrong codes count toward the login lockout.
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "accounts", request_body = MfaLoginRequest,
    responses(
        (status = 200, description = "Tokens (or the cookie session when the login was in cookie mode)", body = TokenResponse),
        (status = 400, description = "`invalid_request`: neither or both of code and backup_code", body = Problem),
        (status = 401, description = "`invalid_mfa_code` or `invalid_mfa_token`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<MfaLoginRequest>,
) -> Result<Response, ApiError> {
    let answer = match (&req.code, &req.backup_code, req.method.as_deref()) {
        (Some(code), None, None | Some("totp")) => Answer::Totp(&code.0),
        (Some(code), None, Some("email")) => Answer::Email(&code.0),
        (None, Some(code), None | Some("backup_code")) => Answer::BackupCode(&code.0),
        (_, _, Some(m)) if !matches!(m, "totp" | "backup_code" | "email") => {
            return Err(ApiError::InvalidRequest(format!("method must be totp, backup_code or email; got {m:?}")));
        }
        _ => return Err(ApiError::InvalidRequest("send exactly one of code and backup_code".into())),
    };
    let issued = login::complete_step_up(&state, &ctx, &req.mfa_token.0, answer).await?;
    issued_response(&state, issued)
}

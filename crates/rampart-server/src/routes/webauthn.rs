//! WebAuthn: `/v1/me/mfa/webauthn*` (register, list, remove authenticators), the step-up login
//! `/v1/auth/login/webauthn/*` and the passwordless passkey login `/v1/auth/passkey/*`.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::Authenticated;
use crate::deprecation;
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::routes::auth::{issued_response, no_store};
use crate::routes::mfa::reauth;
use crate::views::{authenticator_view, webauthn_challenge};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::step_up::Answer;
use rampart_core::services::{login, webauthn};
use rampart_wire::{
    FactorReauth, PasskeyFinish, Problem, TokenResponse, WebauthnChallenge, WebauthnCredentialList,
    WebauthnCredentialView, WebauthnLoginFinish, WebauthnLoginStart, WebauthnRegisterFinish,
};

/// Starts registering a WebAuthn authenticator: creation options for
/// `navigator.credentials.create()`, valid 5 minutes, once. A discoverable credential is
/// preferred, so the authenticator can also log in without a password (passkey).
/// Re-authentication: the password, and when the account already has a second factor a current
/// `code` too (or a session opened with two factors within `security.reauth_window_secs`).
#[utoipa::path(post, path = "/v1/me/mfa/webauthn/register/start", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = FactorReauth,
    responses(
        (status = 200, description = "The ceremony id and creation options", body = WebauthnChallenge),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn register_start(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<FactorReauth>,
) -> Result<Response, ApiError> {
    let challenge = webauthn::register_start(&state, &ctx, &auth, reauth(&req)).await?;
    Ok(no_store(axum::Json(webauthn_challenge(challenge)).into_response()))
}

/// Finishes registering: the authenticator's response to the creation options, and a name.
/// Other sessions end (unless `mfa.revoke_other_sessions_on_change` is off); the user is
/// e-mailed.
#[utoipa::path(post, path = "/v1/me/mfa/webauthn/register/finish", tag = "mfa", security(("bearer" = []), ("cookie" = [])),
    request_body = WebauthnRegisterFinish,
    responses(
        (status = 201, description = "Registered", body = WebauthnCredentialView),
        (status = 400, description = "`validation_failed`: `invalid_challenge`, `invalid_credential` or `invalid_name`", body = Problem),
        (status = 409, description = "`credential_exists`", body = Problem),
    ))]
pub async fn register_finish(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<WebauthnRegisterFinish>,
) -> Result<Response, ApiError> {
    let view = webauthn::register_finish(&state, &ctx, &auth, &req.challenge_id, &req.credential, &req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(authenticator_view(&view))).into_response())
}

/// The caller's registered WebAuthn authenticators, oldest first.
#[utoipa::path(get, path = "/v1/me/mfa/webauthn", tag = "mfa", operation_id = "listPasskeys", security(("bearer" = []), ("cookie" = [])),
    params(ListQuery),
    responses((status = 200, description = "The authenticators", body = WebauthnCredentialList)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let all = webauthn::list(&state, &auth).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Ascending, |a| a.id)?;
    let items = page.iter().map(authenticator_view).collect();
    Ok(axum::Json(WebauthnCredentialList { items, next_cursor }).into_response())
}

/// Removes one of the caller's authenticators. Re-authentication (ASVS 7.5.1): a session opened
/// with two factors within `security.reauth_window_secs` needs no body (many clients and
/// proxies drop DELETE bodies); outside it, use `POST /v1/me/mfa/webauthn/{id}/remove` with
/// the password and a current `code`. Other sessions end as for registering; the user is
/// e-mailed. A JSON body on this DELETE still works until 2027-06-30 (answered with
/// `Deprecation` and `Sunset` headers).
#[utoipa::path(delete, path = "/v1/me/mfa/webauthn/{id}", tag = "mfa", operation_id = "deletePasskey",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Authenticator id")),
    request_body(content = Option<FactorReauth>, description = "Deprecated (use POST …/remove): the password and a current code"),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`, or `reauthentication_required` (no body, and no recent two-factor sign-in)", body = Problem),
        (status = 404, description = "No such authenticator of the caller", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Option<ApiJson<FactorReauth>>,
) -> Result<Response, ApiError> {
    webauthn::remove(&state, &ctx, &auth, &id, body.as_ref().map(|ApiJson(req)| reauth(req))).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if body.is_some() {
        deprecation::WEBAUTHN_DELETE_BODY.mark(res.headers_mut(), &state.metrics);
    }
    Ok(res)
}

/// Removes one of the caller's authenticators after re-authenticating with the password and a
/// current `code` (an authenticator or backup code; not needed within the re-authentication
/// window of a two-factor sign-in). The same as `DELETE /v1/me/mfa/webauthn/{id}`, for when the
/// window has passed: a POST keeps its body through every client and proxy.
#[utoipa::path(post, path = "/v1/me/mfa/webauthn/{id}/remove", tag = "mfa", operation_id = "removePasskey",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Authenticator id")),
    request_body = FactorReauth,
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`validation_failed`: `password_incorrect` or `invalid_code`", body = Problem),
        (status = 403, description = "`second_factor_required`", body = Problem),
        (status = 404, description = "No such authenticator of the caller", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn remove_with_reauth(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FactorReauth>,
) -> Result<StatusCode, ApiError> {
    webauthn::remove(&state, &ctx, &auth, &id, Some(reauth(&req))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the WebAuthn answer to a step-up login: request options listing the account's
/// authenticators, bound to the `mfa_token` (5 minutes, once).
#[utoipa::path(post, path = "/v1/auth/login/webauthn/start", tag = "accounts", request_body = WebauthnLoginStart,
    responses(
        (status = 200, description = "The ceremony id and request options", body = WebauthnChallenge),
        (status = 401, description = "`invalid_mfa_token`", body = Problem),
        (status = 403, description = "`method_not_available`: no authenticator registered", body = Problem),
    ))]
pub async fn login_start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<WebauthnLoginStart>,
) -> Result<Response, ApiError> {
    let challenge = webauthn::login_start(&state, &req.mfa_token.0).await?;
    Ok(no_store(axum::Json(webauthn_challenge(challenge)).into_response()))
}

/// Completes a step-up login with a WebAuthn assertion. Answers like `/v1/auth/login/mfa`
/// (`amr` `["pwd","hwk","mfa"]`); refusals count toward the login lockout like wrong codes.
#[utoipa::path(post, path = "/v1/auth/login/webauthn/finish", tag = "accounts", request_body = WebauthnLoginFinish,
    responses(
        (status = 200, description = "Tokens (or the cookie session when the login was in cookie mode)", body = TokenResponse),
        (status = 401, description = "`invalid_mfa_code` (assertion refused) or `invalid_mfa_token`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn login_finish(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<WebauthnLoginFinish>,
) -> Result<Response, ApiError> {
    let answer = Answer::WebAuthn { challenge_id: &req.challenge_id, credential: &req.credential };
    let issued = login::complete_step_up(&state, &ctx, &req.mfa_token.0, answer).await?;
    issued_response(&state, issued)
}

/// Starts a passwordless login with a passkey (a discoverable credential): request options
/// without a credential list, 5 minutes, once.
#[utoipa::path(post, path = "/v1/auth/passkey/start", tag = "accounts",
    responses((status = 200, description = "The ceremony id and request options", body = WebauthnChallenge)))]
pub async fn passkey_start(State(state): State<AppState>) -> Result<Response, ApiError> {
    let challenge = webauthn::passkey_start(&state).await?;
    Ok(no_store(axum::Json(webauthn_challenge(challenge)).into_response()))
}

/// Completes a passwordless login: the account is the one whose credential signed. Tokens with
/// `amr` `["hwk","user","mfa"]` (the authenticator verified its user), or with
/// `?session=cookie` the browser session cookie and `{session_id, csrf_token}`, as a cookie-mode
/// login answers. Refusals count toward the client address's login throttle.
#[utoipa::path(post, path = "/v1/auth/passkey/finish", tag = "accounts", request_body = PasskeyFinish,
    params(crate::routes::auth::LoginQuery),
    responses(
        (status = 200, description = "Tokens, or the session cookie in cookie mode", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: the assertion was refused", body = Problem),
        (status = 403, description = "`account_disabled`, `email_not_verified`, `password_expired`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn passkey_finish(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<crate::routes::auth::LoginQuery>,
    ApiJson(req): ApiJson<PasskeyFinish>,
) -> Result<Response, ApiError> {
    let issued = login::passkey_login(&state, &ctx, &req.challenge_id, &req.credential, q.session).await?;
    issued_response(&state, issued)
}

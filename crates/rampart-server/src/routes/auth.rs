//! `/v1/auth/*`: register, login (token or cookie mode), refresh, logout, password reset,
//! e-mail verification, and token introspection for backends.

use crate::AppState;
use crate::auth::{Authenticated, Caller, Via};
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::views::{mfa_required, token_response, user_view};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_config::SameSite;
use rampart_core::RequestContext;
use rampart_core::services::login::{self, Issued, LoginOutcome};
use rampart_core::services::tokens::Introspected;
use rampart_core::services::{passwords, registration, sessions, tokens};
use rampart_domain::SessionMode;
use rampart_wire::{
    Accepted, CookieSession, ForgotPasswordRequest, Introspection, LoginRequest, Problem, RefreshRequest,
    RegisterRequest, ResetPasswordRequest, TokenResponse, UserEnvelope, VerifyEmailRequest,
};
use serde::Deserialize;

/// Creates an account. With e-mail verification on, answers 202 whether or not the address
/// was taken (nothing is revealed) and sends a verification link.
#[utoipa::path(post, path = "/v1/auth/register", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created", body = UserEnvelope),
        (status = 202, description = "Accepted (e-mail verification on)", body = Accepted),
        (status = 400, description = "Invalid input, per-field codes", body = Problem),
        (status = 409, description = "`email_taken` (verification off)", body = Problem),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    match registration::register(&state, &ctx, req.email, req.password.0, req.name).await? {
        Some(user) if !state.settings.accounts.verify_email => {
            Ok((StatusCode::CREATED, axum::Json(UserEnvelope { user: user_view(&user) })).into_response())
        }
        _ => Ok((StatusCode::ACCEPTED, axum::Json(Accepted { status: "accepted".into() })).into_response()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// `cookie`: set the `__Host-rampart_session` cookie and answer `{session_id, csrf_token}`
    /// instead of tokens.
    #[param(value_type = Option<String>, nullable)]
    #[serde(default)]
    pub session: SessionMode,
}

/// Logs in with e-mail and password. Unknown addresses and wrong passwords get the same 401;
/// repeated failures are delayed and then locked (429 with `Retry-After`). For an account with a
/// second factor a right password answers `{mfa_required: true, mfa_token, methods}` (schema
/// `MfaRequired`) instead: redeem the token at `/v1/auth/login/mfa`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "accounts", request_body = LoginRequest, params(LoginQuery),
    responses(
        (status = 200, description = "Tokens, or the session cookie in cookie mode, or `MfaRequired` for an account with a second factor", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`", body = Problem),
        (status = 403, description = "`account_disabled`, `email_not_verified`, `password_expired` (with `change_token`)", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<LoginQuery>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    match login::login(&state, &ctx, &req.email, &req.password.0, q.session).await? {
        LoginOutcome::StepUp(required) => Ok(no_store(axum::Json(mfa_required(required)).into_response())),
        LoginOutcome::Session(issued) => issued_response(&state, issued),
    }
}

/// Opens a session and answers with its tokens, or its cookie in cookie mode.
/// A new session as the API answers it: the tokens, or the session cookie with its CSRF token.
pub(crate) fn issued_response(state: &AppState, issued: Issued) -> Result<Response, ApiError> {
    match issued {
        Issued::Tokens(tokens) => Ok(no_store(axum::Json(token_response(tokens)).into_response())),
        Issued::Cookie { value, max_age, session_id, csrf_token } => {
            let body = CookieSession { session_id: session_id.to_string(), csrf_token };
            let mut res = no_store(axum::Json::<CookieSession>(body).into_response());
            res.headers_mut().insert(header::SET_COOKIE, session_cookie(state, &value, max_age)?);
            Ok(res)
        }
    }
}

/// The `Set-Cookie` value of a new browser session (the JSON API's cookie mode and the pages).
pub(crate) fn session_cookie(state: &AppState, value: &str, max_age: time::Duration) -> Result<HeaderValue, ApiError> {
    let same_site = match state.settings.sessions.cookie_same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
    };
    let sessions = &state.settings.sessions;
    let cookie = format!(
        "{}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age={}{}",
        sessions.cookie_name(),
        max_age.whole_seconds(),
        sessions.cookie_scope(),
    );
    HeaderValue::from_str(&cookie).map_err(ApiError::internal)
}

/// The `Set-Cookie` value that removes the browser session cookie.
pub(crate) fn cleared_cookie(state: &AppState) -> Result<HeaderValue, ApiError> {
    let sessions = &state.settings.sessions;
    let clear = format!(
        "{}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0{}",
        sessions.cookie_name(),
        sessions.cookie_scope()
    );
    HeaderValue::from_str(&clear).map_err(ApiError::internal)
}

/// Responses carrying credentials must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Exchanges a refresh token for new tokens. A refresh token works once; presenting it again
/// revokes its whole session (401 `refresh_token_reused`).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "accounts", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens = login::refresh(&state, &ctx, &req.refresh_token.0).await?;
    Ok(no_store(axum::Json(token_response(tokens)).into_response()))
}

/// Ends the calling session (and clears the cookie in cookie mode).
#[utoipa::path(post, path = "/v1/auth/logout", tag = "accounts", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, description = "Not logged in", body = Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    sessions::logout(&state, &ctx, &auth).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if auth.via == Via::Cookie {
        res.headers_mut().insert(header::SET_COOKIE, cleared_cookie(&state)?);
    }
    Ok(res)
}

/// The CSRF token of the calling cookie session again (e.g. after a page reload), with its
/// session id. Safe to call: it needs the cookie, which only Rampart's origin can send.
#[utoipa::path(get, path = "/v1/auth/csrf", tag = "accounts", security(("cookie" = [])),
    responses(
        (status = 200, description = "The session's CSRF token", body = CookieSession),
        (status = 400, description = "`invalid_request`: a bearer session has no CSRF token", body = Problem),
        (status = 401, description = "No live cookie session", body = Problem),
    ))]
pub async fn csrf(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    if auth.via != Via::Cookie {
        return Err(ApiError::InvalidRequest("only cookie sessions have a CSRF token".into()));
    }
    let body =
        CookieSession { session_id: auth.session.id.to_string(), csrf_token: state.auth.csrf_token(auth.session.id) };
    Ok(no_store(axum::Json(body).into_response()))
}

/// Sends a password-reset link if the account exists. Always 202: the answer says nothing
/// about which addresses have accounts.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "accounts", request_body = ForgotPasswordRequest,
    responses((status = 202, description = "Accepted", body = Accepted)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<ForgotPasswordRequest>,
) -> Result<Response, ApiError> {
    passwords::forgot_password(&state, &ctx, &req.email);
    Ok((StatusCode::ACCEPTED, axum::Json(Accepted { status: "accepted".into() })).into_response())
}

/// Sets a new password with the token from the reset e-mail (or the `change_token` of a
/// `password_expired` answer). Single use; ends every session.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "accounts", request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password set; log in again"),
        (status = 400, description = "`invalid_or_expired_token`, or `validation_failed` for the new password", body = Problem),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    passwords::reset_password(&state, &ctx, &req.token.0, &req.new_password.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirms an e-mail address with the token from the verification e-mail.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "accounts", request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "Verified"),
        (status = 400, description = "`invalid_or_expired_token`", body = Problem),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> Result<StatusCode, ApiError> {
    registration::verify_email(&state, &ctx, &req.token.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct IntrospectionRequest {
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

/// RFC 7662 token introspection for backends: is this access or refresh token active right
/// now (signature, expiry *and* its session not revoked)? The caller needs the permission
/// `tokens:introspect`: an API key with that scope, or a user session with that permission.
#[utoipa::path(post, path = "/v1/auth/introspect", tag = "accounts", security(("api_key" = []), ("bearer" = [])),
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 7662 answer; `scope`: what the owner's roles grant now, space-separated", body = Introspection),
        (status = 400, description = "`invalid_request`: the form lacks `token` or does not parse", body = Problem),
        (status = 401, description = "Caller not authenticated", body = Problem),
        (status = 415, description = "`unsupported_media_type`: not a form", body = Problem),
        (status = 403, description = "Caller lacks `tokens:introspect`", body = Problem),
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    crate::limits::ApiForm(req): crate::limits::ApiForm<IntrospectionRequest>,
) -> Result<Response, ApiError> {
    let answer = match tokens::introspect(&state, &ctx, &caller, &req.token).await? {
        Introspected::Inactive => Introspection::default(),
        Introspected::Refresh { session, permissions } => Introspection {
            active: true,
            token_type: Some("refresh_token".into()),
            scope: Some(permissions.join(" ")),
            sub: Some(session.user_id.0.to_string()),
            sid: Some(session.id.to_string()),
            exp: Some(session.expires_at().unix_timestamp()),
            iat: Some(session.created_at.unix_timestamp()),
            ..Default::default()
        },
        Introspected::Access { claims, user, permissions } => Introspection {
            active: true,
            token_type: Some("access_token".into()),
            scope: Some(permissions.join(" ")),
            sub: Some(claims.sub),
            sid: Some(claims.sid),
            roles: Some(user.roles.iter().map(ToString::to_string).collect()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            jti: Some(claims.jti),
        },
    };
    Ok(no_store(axum::Json(answer).into_response()))
}

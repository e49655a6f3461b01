//! Signing in with an OpenID Connect or OAuth2 provider: `GET /v1/auth/oauth/{provider}/start`
//! and its callback (`GET`, or `POST` for a provider answering with a form post: Apple). The
//! flow itself is `rampart_core::services::oauth`; here the flow cookie is set and read, `rd`
//! vetted, and the answer rendered: JSON when asked with `Accept: application/json`, else the
//! browser's redirect (or the sign-in page with the reason).

use crate::AppState;
use crate::auth::{Authenticated, cookie};
use crate::error::ApiError;
use crate::limits::{ApiForm, ApiQuery};
use crate::routes::auth::{issued_response, no_store};
use crate::ui::redirect;
use crate::views::{linked_identity_view, mfa_required};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::login::LoginOutcome;
use rampart_core::services::oauth::{self, CallbackParams, Finished};
use rampart_domain::SessionMode;
use rampart_wire::{LinkedIdentityView, Problem, TokenResponse};
use serde::Deserialize;

/// The flow cookie (sealed; scoped to the flow's paths).
pub const FLOW_COOKIE: &str = "rampart_oauth_flow";
const FLOW_PATH: &str = "/v1/auth/oauth/";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where to go after signing in: a path here, or a URL on a host of
    /// `gateway.allowed_redirect_hosts` (anything else is replaced by the account page).
    #[serde(default)]
    pub rd: Option<String>,
    /// `login` (the default) or `link`: link the provider to the signed-in caller's account
    /// (a recent session is needed, as for any new way in).
    #[serde(default)]
    pub mode: Option<String>,
}

/// The callback's parameters as the provider sends them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (`access_denied`, …).
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
    pub session_state: Option<String>,
    pub scope: Option<String>,
    pub authuser: Option<String>,
    pub prompt: Option<String>,
    pub hd: Option<String>,
    pub user: Option<String>,
}

impl From<CallbackQuery> for CallbackParams {
    fn from(q: CallbackQuery) -> Self {
        CallbackParams {
            code: q.code,
            state: q.state,
            error: q.error,
            error_description: q.error_description,
            user: q.user,
            iss: q.iss,
        }
    }
}

/// The base of this server's own URLs as the browser reached it: `federation.public_url`
/// when set, else the `Host` header, `http` only for a loopback host.
fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(base) = &state.settings.federation.public_url {
        return Ok(base.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .ok_or_else(|| ApiError::InvalidRequest("a Host header is needed".into()))?;
    let loopback = host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    Ok(format!("{}://{host}", if loopback { "http" } else { "https" }))
}

fn flow_cookie(value: &str, max_age: i64, cross_site_post: bool) -> Result<HeaderValue, ApiError> {
    // A provider answering with a cross-site form post (Apple) gets the cookie back only
    // with `SameSite=None`; everyone else returns with a top-level GET, which `Lax` allows.
    let same_site = if cross_site_post { "None" } else { "Lax" };
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; Path={FLOW_PATH}; Secure; HttpOnly; SameSite={same_site}; Max-Age={max_age}"
    ))
    .map_err(ApiError::internal)
}

/// The signed-in caller, when a session came with the request.
async fn caller(parts: &mut Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    Authenticated::from_request_parts(parts, state).await
}

/// Starts a sign-in with a configured provider: sets the sealed, short-lived flow cookie
/// (`state`, `nonce`, the PKCE verifier, `rd`; HttpOnly, Secure, SameSite=Lax) and redirects
/// to the provider's authorization endpoint (authorization code, PKCE S256, `state`, `nonce`).
/// `mode=link` links the provider to the signed-in caller's account instead (the session
/// must be recent).
#[utoipa::path(get, path = "/v1/auth/oauth/{provider}/start", tag = "accounts", params(("provider" = String, Path, description = "A provider's name from `[[federation.providers]]`"), StartQuery),
    responses(
        (status = 302, description = "To the provider, with the flow cookie set"),
        (status = 401, description = "`mode=link` without a session", body = Problem),
        (status = 403, description = "`reauthentication_required` (`mode=link` with an old session)", body = Problem),
        (status = 404, description = "No such provider", body = Problem),
        (status = 502, description = "`provider_failed`: the provider's discovery document could not be read", body = Problem),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiQuery(q): ApiQuery<StartQuery>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let link = match q.mode.as_deref() {
        None | Some("login") => None,
        Some("link") => Some(caller(&mut parts, &state).await?),
        Some(_) => return Err(ApiError::InvalidRequest("mode must be login or link".into())),
    };
    let rd = redirect::vet(q.rd.as_deref(), &state.settings.gateway).map(|t| t.as_str().to_string());
    let base = base_url(&state, &parts.headers)?;
    let started = oauth::start(&state, state.providers.0.as_ref(), &provider, &base, rd, link.as_ref()).await?;
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(&started.location).map_err(ApiError::internal)?);
    h.insert(header::SET_COOKIE, flow_cookie(&started.flow, started.max_age.whole_seconds(), started.form_post)?);
    Ok(no_store(res))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"))
}

async fn finish(
    state: AppState,
    ctx: RequestContext,
    provider: String,
    headers: HeaderMap,
    params: CallbackParams,
) -> Result<Response, ApiError> {
    let json = wants_json(&headers);
    let mode = if json { SessionMode::Token } else { SessionMode::Cookie };
    let flow = cookie(&headers, FLOW_COOKIE);
    let result = oauth::callback(&state, &ctx, state.providers.0.as_ref(), &provider, flow, &params, mode).await;
    let mut res = if json {
        match result? {
            oauth::Callback { finished: Finished::SignedIn(LoginOutcome::StepUp(required)), .. } => {
                no_store(axum::Json(mfa_required(required)).into_response())
            }
            oauth::Callback { finished: Finished::SignedIn(LoginOutcome::Session(issued)), .. } => {
                issued_response(&state, issued)?
            }
            oauth::Callback { finished: Finished::Linked(linked), .. } => {
                no_store(axum::Json(linked_identity_view(&linked)).into_response())
            }
        }
    } else {
        crate::ui::federated(&state, result)
    };
    // The flow is over either way.
    res.headers_mut().append(header::SET_COOKIE, flow_cookie("", 0, false)?);
    Ok(res)
}

/// The provider's redirect back: checks the flow cookie and `state` (each flow works once),
/// exchanges the code with the PKCE verifier, verifies the `id_token` (signature with the
/// provider's key by `kid`, allowlisted algorithm, `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`)
/// or reads the user-info answer, then signs in (the linked account; a new one with
/// `federation.auto_register`; an account with the same address only for a verified address
/// with `federation.trust_email_for_linking`) or links (`mode=link`). With
/// `Accept: application/json`: tokens (`amr` `["fed"]`), `MfaRequired`, or the linked identity;
/// otherwise the browser's session cookie and a redirect to `rd` (or the sign-in page with the
/// reason). Refusals count toward the client address's login throttle.
#[utoipa::path(get, path = "/v1/auth/oauth/{provider}/callback", tag = "accounts", params(("provider" = String, Path, description = "A provider's name"), CallbackQuery),
    responses(
        (status = 200, description = "Tokens, `MfaRequired`, or the linked identity (`Accept: application/json`)", body = TokenResponse),
        (status = 302, description = "Signed in: the session cookie set, on to `rd`"),
        (status = 400, description = "`oauth_state_invalid`: no flow cookie, a different `state`, or too late", body = Problem),
        (status = 401, description = "`invalid_id_token`, `federated_login_replayed`", body = Problem),
        (status = 403, description = "`provider_denied` (the provider's `error`), `identity_not_linked`, `account_disabled`", body = Problem),
        (status = 409, description = "`federation_link_required` (an account has this address), `identity_taken`", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
        (status = 502, description = "`provider_failed`: the token or user-info endpoint failed", body = Problem),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    finish(state, ctx, provider, headers, q.into()).await
}

/// The callback as a form post (`response_mode=form_post`: Apple), read like the GET.
#[utoipa::path(post, path = "/v1/auth/oauth/{provider}/callback", tag = "accounts", params(("provider" = String, Path, description = "A provider's name")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`code`, `state`, `error`, Apple's `user`"),
    responses(
        (status = 200, description = "As the GET", body = LinkedIdentityView),
        (status = 302, description = "Signed in: on to `rd`"),
        (status = 400, description = "`oauth_state_invalid`: no flow cookie, a different `state`, or too late", body = Problem),
        (status = 401, description = "`invalid_id_token`, `federated_login_replayed`", body = Problem),
        (status = 403, description = "`provider_denied` (the provider's `error`), `identity_not_linked`, `account_disabled`", body = Problem),
        (status = 409, description = "`federation_link_required` (an account has this address), `identity_taken`", body = Problem),
        (status = 502, description = "`provider_failed`: the token or user-info endpoint failed", body = Problem),
    ))]
pub async fn callback_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ApiForm(q): ApiForm<CallbackQuery>,
) -> Result<Response, ApiError> {
    finish(state, ctx, provider, headers, q.into()).await
}

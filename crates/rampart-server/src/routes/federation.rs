//! Federation: `POST /v1/auth/telegram` (sign in with the Telegram Login Widget) and the
//! caller's linked identities under `/v1/me/identities`.

use super::paging::{self, ListQuery, Order};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{ApiJson, ApiQuery};
use crate::routes::auth::{LoginQuery, issued_response, no_store};
use crate::views::{linked_identity_view, mfa_required, telegram_fields};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::federation;
use rampart_core::services::login::LoginOutcome;
use rampart_wire::{LinkedIdentityList, LinkedIdentityView, Problem, TelegramLoginRequest, TokenResponse};

/// Signs in with the Telegram Login Widget's data, checked as Telegram specifies (HMAC-SHA-256
/// under the SHA-256 of the bot token, `auth_date` within `federation.telegram.max_age_secs`);
/// each payload works once. The account is the one the Telegram id is linked to, or a new one
/// with `federation.auto_register` (its address a never-mailed `tg<id>@telegram.invalid`).
/// Answers like `/v1/auth/login`: tokens (`amr` `["fed"]`), the cookie in cookie mode, or
/// `MfaRequired` for an account with a second factor. Refusals count toward the client
/// address's login throttle.
#[utoipa::path(post, path = "/v1/auth/telegram", tag = "accounts", request_body = TelegramLoginRequest, params(LoginQuery),
    responses(
        (status = 200, description = "Tokens, or the session cookie in cookie mode, or `MfaRequired` for an account with a second factor", body = TokenResponse),
        (status = 400, description = "A field missing or of the wrong type, or an unknown field", body = Problem),
        (status = 401, description = "`invalid_telegram_login` (signature, fields or age), `federated_login_replayed` (the payload was used before)", body = Problem),
        (status = 403, description = "`identity_not_linked` (no account has this Telegram id and `federation.auto_register` is off), `account_disabled`, `method_not_available` (no bot token configured)", body = Problem),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = Problem),
    ))]
pub async fn telegram_login(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<LoginQuery>,
    ApiJson(req): ApiJson<TelegramLoginRequest>,
) -> Result<Response, ApiError> {
    match federation::telegram_login(&state, &ctx, &telegram_fields(&req), q.session).await? {
        LoginOutcome::StepUp(required) => Ok(no_store(axum::Json(mfa_required(required)).into_response())),
        LoginOutcome::Session(issued) => issued_response(&state, issued),
    }
}

/// Links the Telegram account of a Login Widget payload to the caller's account (checked and
/// single-use like a sign-in). The session must be recent (`security.reauth_window_secs`), as a
/// link is a new way in. Linking one already linked here answers it again.
#[utoipa::path(post, path = "/v1/me/identities/telegram", tag = "me", security(("bearer" = []), ("cookie" = [])),
    request_body = TelegramLoginRequest,
    responses(
        (status = 200, description = "The linked identity", body = LinkedIdentityView),
        (status = 401, description = "Not signed in, `invalid_telegram_login`, or `federated_login_replayed`", body = Problem),
        (status = 403, description = "`reauthentication_required` (sign in again), `method_not_available` (no bot token configured)", body = Problem),
        (status = 409, description = "`identity_taken`: linked to another account", body = Problem),
    ))]
pub async fn link_telegram(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(req): ApiJson<TelegramLoginRequest>,
) -> Result<axum::Json<LinkedIdentityView>, ApiError> {
    let linked = federation::link_telegram(&state, &ctx, &auth, &telegram_fields(&req)).await?;
    Ok(axum::Json(linked_identity_view(&linked)))
}

/// The external identities linked to the caller's account, oldest first.
#[utoipa::path(get, path = "/v1/me/identities", tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(ListQuery),
    responses((status = 200, description = "Linked identities", body = LinkedIdentityList)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<LinkedIdentityList>, ApiError> {
    let all = federation::list(&state, &auth).await?;
    let (page, next_cursor) = paging::by_uuid(all, &q, Order::Ascending, |i| i.id)?;
    let items = page.iter().map(linked_identity_view).collect();
    Ok(axum::Json(LinkedIdentityList { items, next_cursor }))
}

/// Unlinks one of the caller's identities; refused when it is the account's only way to sign
/// in (no password, no other identity).
#[utoipa::path(delete, path = "/v1/me/identities/{id}", tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Linked identity id")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "No such identity on the caller's account", body = Problem),
        (status = 409, description = "`last_sign_in_method`", body = Problem),
    ))]
pub async fn unlink(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    federation::unlink(&state, &ctx, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Who is calling, read from the request: [`Authenticated`] (a bearer access token or the
//! browser session cookie, with CSRF protection for cookie sessions), [`Caller`] (an API key
//! or a session), [`Guard`] (a caller holding a permission) and [`RequestContext`]. The types
//! and the permission checks live in `rampart_core::authz`; this module only extracts them.
//!
//! Rampart's own endpoints check the session behind every token in storage, so a revoked
//! session stops working here at once (backends that verify tokens with the JWKS alone accept
//! them until they expire: minutes, by design).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
pub use rampart_core::authz::{Authenticated, Caller, Via};
use rampart_core::{RequestContext, ServiceError};
use rampart_domain::{SessionId, TokenHash};
use std::convert::Infallible;
use std::net::SocketAddr;

/// The browser session cookie on Rampart's own host (the default; see
/// `SessionsSettings::cookie_name`, which names the one in force).
pub const SESSION_COOKIE: &str = rampart_config::HOST_SESSION_COOKIE;
/// The session cookie shared with a parent domain (`sessions.cookie_domain`).
pub const SHARED_SESSION_COOKIE: &str = rampart_config::SHARED_SESSION_COOKIE;
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A named permission, for [`Guard`].
pub trait Permission: Send + Sync + 'static {
    const NAME: &'static str;
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $ty:ident = $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;
        impl Permission for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

permissions! {
    /// Read users (list, search, view).
    UsersRead = "users:read";
    /// Change users: names, roles, disabled, unlock, revoke sessions.
    UsersWrite = "users:write";
    /// Erase users.
    UsersDelete = "users:delete";
    /// Export everything held about a user (GDPR access).
    UsersExport = "users:export";
    /// Export the list of users in bulk (`POST /v1/admin/exports`, kind `users`).
    UsersExportList = "users:export_list";
    /// See bulk exports and what waits for approval.
    ExportsRead = "exports:read";
    /// Approve another administrator's bulk export (never one's own).
    ExportsApprove = "exports:approve";
    /// Read roles.
    RolesRead = "roles:read";
    /// Create, change and delete custom roles.
    RolesWrite = "roles:write";
    /// Ask whether a subject holds a permission.
    AuthzCheck = "authz:check";
    /// Read and verify the audit log.
    AuditRead = "audit:read";
    /// Export the audit log in bulk.
    AuditExport = "audit:export";
    /// List IP allow and block rules.
    IpRulesRead = "ip_rules:read";
    /// Add and remove IP allow and block rules.
    IpRulesWrite = "ip_rules:write";
    /// List webhook endpoints and their delivery logs.
    WebhooksRead = "webhooks:read";
    /// Add, change, remove, test and redeliver webhook endpoints; rotate their secrets.
    WebhooksWrite = "webhooks:write";
    /// List alert rules.
    AlertsRead = "alerts:read";
    /// Add, change and remove alert rules.
    AlertsWrite = "alerts:write";
    /// Read the gateway's rules and explain its decisions.
    GatewayRead = "gateway:read";
    /// Read the system page of the console: version, database and Redis state, the
    /// configuration in effect (secrets redacted), the token signing keys.
    SystemRead = "system:read";
    /// Rotate the access-token signing key.
    SigningKeysRotate = "signing_keys:rotate";
}

/// An extractor that admits only callers (session or API key) holding `P`; a handler that
/// takes it cannot run for anyone else. Refusals are recorded as `authz.denied`.
#[derive(Debug)]
pub struct Guard<P: Permission> {
    pub caller: Caller,
    _permission: std::marker::PhantomData<P>,
}

impl<P: Permission> FromRequestParts<AppState> for Guard<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if let Err(e) = caller.require(state, P::NAME).await {
            rampart_core::authz::record_denied(state, &refusal_context(parts), &caller, P::NAME).await?;
            return Err(e.into());
        }
        Ok(Guard { caller, _permission: std::marker::PhantomData })
    }
}

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static X_VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");

/// The API key a request carries, if any.
pub fn presented_api_key(headers: &HeaderMap) -> Option<&str> {
    named_api_key(headers).or_else(|| bearer(headers).filter(|t| is_api_key(t)))
}

/// An API key sent in a header of its own: `X-API-Key`, or `X-Vault-Token` (Vault clients,
/// for the transit API).
pub(crate) fn named_api_key(headers: &HeaderMap) -> Option<&str> {
    [&X_API_KEY, &X_VAULT_TOKEN]
        .into_iter()
        .find_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Whether a bearer credential is an API key (`rk_…`) rather than a token.
pub(crate) fn is_api_key(bearer: &str) -> bool {
    bearer.starts_with(rampart_domain::apikey::PREFIX)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(key) = presented_api_key(&parts.headers) {
            return match rampart_core::services::api_keys::verify(state, key, None).await {
                Ok((principal, _)) => Ok(Caller::Key(principal)),
                Err(("rate_limited", _, limit)) => {
                    Err(ServiceError::RateLimited { retry_after_secs: limit.map_or(1, |l| l.reset.as_secs().max(1)) }
                        .into())
                }
                Err(("unknown", _, _)) => {
                    // Junk keys count against their address like failed logins (automatic blocks).
                    rampart_core::services::ip_rules::failed_authentication(state, &request_context(parts)).await;
                    Err(ServiceError::InvalidApiKey.into())
                }
                Err(_) => Err(ServiceError::InvalidApiKey.into()),
            };
        }
        Authenticated::from_request_parts(parts, state).await.map(Caller::Session)
    }
}

/// The token of an `Authorization: Bearer …` header, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The value of a cookie by name, from every `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether an unsafe request with a session cookie may proceed, by where it comes from:
/// `Sec-Fetch-Site: same-origin`, or else an `Origin` that is this host (same scheme as
/// `https`, the only scheme `__Host-` cookies travel over, or `http` on loopback for
/// development) or one of the configured trusted origins. A request with neither header is
/// refused: every current browser sends one of them.
pub(crate) fn same_origin(headers: &HeaderMap, trusted: &[String]) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site == Some("same-origin") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    if trusted.iter().any(|t| t.eq_ignore_ascii_case(origin)) {
        return true;
    }
    if site.is_some() {
        // The browser says same-site or cross-site, and the origin is not trusted.
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    let loopback = host.starts_with("127.0.0.1:") || host.starts_with("localhost:") || host.starts_with("[::1]:");
    origin.eq_ignore_ascii_case(&format!("https://{host}"))
        || (loopback && origin.eq_ignore_ascii_case(&format!("http://{host}")))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What a session of a user who must enrol a second factor (the `[mfa]` policy) may still
/// reach: their account, the factor endpoints and pages, logout and the CSRF token.
fn enrollment_path(path: &str) -> bool {
    matches!(
        path,
        "/v1/me"
            | "/v1/auth/logout"
            | "/v1/auth/csrf"
            | "/ui/logout"
            | "/ui/account/security"
            | "/ui/account/backup-codes"
    ) || path.starts_with("/v1/me/mfa/")
        || path.starts_with("/ui/account/totp")
        || path.starts_with("/ui/account/passkeys")
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let now = state.clock.now();
        let (session, via, claims) = if let Some(token) = bearer(&parts.headers) {
            let claims = state.signing.verify_shared(token).await.map_err(|e| {
                tracing::debug!(reason = e.code(), "access token refused");
                ServiceError::InvalidToken
            })?;
            let sid = claims.sid.parse().map(SessionId).map_err(|_| ServiceError::InvalidToken)?;
            let session = state.store.get_session(sid).await?.ok_or(ServiceError::InvalidToken)?;
            if session.user_id.0.to_string() != claims.sub {
                return Err(ServiceError::InvalidToken.into());
            }
            (session, Via::Bearer, Some(claims))
        } else if let Some(value) = cookie(&parts.headers, state.settings.sessions.cookie_name()) {
            let session =
                state.store.session_by_cookie(TokenHash::of(value)).await?.ok_or(ServiceError::InvalidToken)?;
            if !is_safe(&parts.method) {
                let token = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                if !state.auth.csrf_matches(session.id, token)
                    || !same_origin(&parts.headers, &state.settings.sessions.trusted_origins)
                {
                    return Err(ApiError::CsrfFailed);
                }
            }
            (session, Via::Cookie, None)
        } else {
            return Err(ApiError::Unauthenticated);
        };
        if !session.is_active(now) {
            return Err(ServiceError::InvalidToken.into());
        }
        let policy = state.session_policy();
        if policy.should_touch(&session, now) {
            state.store.touch_session(session.id, now, policy.extend(&session, now)).await?;
        }
        if !state.settings.mfa.required_for_roles.is_empty() && !enrollment_path(parts.uri.path()) {
            rampart_core::authz::require_enrolled(state, session.user_id).await?;
        }
        // Not kept in the request's extensions for a second extractor: no handler takes two,
        // and the copy (session and claims) cost every request more than a second lookup
        // (caches) would cost the rare one.
        Ok(Authenticated { user_id: session.user_id, session, via, claims })
    }
}

/// The request's context for events: request id, client address (resolved by the client-IP
/// layer; the TCP peer otherwise), user agent.
impl FromRequestParts<AppState> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(request_context(parts))
    }
}

/// [`RequestContext`] of a request, for code that has its parts but no [`AppState`].
pub fn request_context(parts: &Parts) -> RequestContext {
    RequestContext {
        request_id: crate::request_id::current(),
        ip: parts
            .extensions
            .get::<crate::shield::client_ip::ClientIp>()
            .map(|c| c.0)
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())),
        user_agent: parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
        route: None,
    }
}

/// [`request_context`] with the route named (its pattern where the router matched one, the
/// path otherwise): for a refusal, which the dashboard counts by route. Built only where a
/// refusal is recorded, so other requests do not copy the route.
pub fn refusal_context(parts: &Parts) -> RequestContext {
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
    RequestContext { route: Some(route), ..request_context(parts) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, axum::http::HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn bearer_reads_what_the_header_says_and_nothing_else() {
        for (value, want) in [
            (&b"Bearer abc.def"[..], Some("abc.def")),
            (b"bearer abc", Some("abc")),
            (b"BEARER  abc 	", Some("abc")),
            (b"Bearer a b", Some("a b")),
            (b"Bearer ", Some("")),
            (b"Bearer", None),
            (b"Bearerabc", None),
            (b"Bearer\tabc", None),
            (b"Basic Zm9vOmJhcg==", None),
            (b"Bearers abc", None),
            (b"", None),
            // Not text as `HeaderValue::to_str` reads it: no token.
            (b"Bearer \xc3\xa9t\xc3\xa9", None),
            (b"Bearer ab\xffc", None),
        ] {
            let h = authorization(value);
            assert_eq!(bearer(&h), want, "{:?}", String::from_utf8_lossy(value));
        }
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn an_api_key_is_found_in_its_own_headers_before_authorization() {
        let mut h = authorization(b"Bearer rk_fromauth");
        assert_eq!(presented_api_key(&h), Some("rk_fromauth"));
        assert_eq!(presented_api_key(&authorization(b"Bearer eyJ.token")), None, "a token is not a key");
        h.insert("x-vault-token", " rk_vault ".parse().unwrap());
        assert_eq!(presented_api_key(&h), Some("rk_vault"));
        h.insert("x-api-key", "rk_header".parse().unwrap());
        assert_eq!(presented_api_key(&h), Some("rk_header"), "X-API-Key first");
    }

    #[test]
    fn same_origin_rules() {
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h, &[]), "no Origin and no Sec-Fetch-Site: refused");
        h.insert(header::HOST, "auth.example.com".parse().unwrap());
        h.insert(header::ORIGIN, "https://auth.example.com".parse().unwrap());
        assert!(same_origin(&h, &[]));
        h.insert(header::ORIGIN, "http://auth.example.com".parse().unwrap());
        assert!(!same_origin(&h, &[]), "the scheme counts");
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h, &[]), "an opaque origin is never ours");
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h, &[]));
        let trusted = ["https://app.example.com".to_string()];
        h.insert(header::ORIGIN, "https://app.example.com".parse().unwrap());
        h.insert("sec-fetch-site", "same-site".parse().unwrap());
        assert!(same_origin(&h, &trusted), "a trusted sibling origin (same-site) is accepted");
        assert!(!same_origin(&h, &[]), "…but only when trusted");
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&h, &trusted));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(&h, &[]));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; __Host-rampart_session=rs_x; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("rs_x"));
        assert_eq!(cookie(&h, "c"), None);
    }
}

//! Who is calling: the [`Authenticated`] extractor (a bearer access token or the browser
//! session cookie), CSRF protection for cookie sessions, and the keys derived for both.
//!
//! Rampart's own endpoints check the session behind every token in storage, so a revoked
//! session stops working here at once (backends that verify tokens with the JWKS alone accept
//! them until they expire: minutes, by design).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rampart_domain::tokens::AccessClaims;
use rampart_domain::{MasterKey, Session, SessionId, TokenHash, UserId, permission};
use sha2::Sha256;
use std::net::IpAddr;
use zeroize::Zeroizing;

/// The browser session cookie. `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no subdomain can set or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-rampart_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Keys derived from the master key for login throttling and CSRF tokens.
#[derive(Debug)]
pub struct AuthKeys {
    throttle: Zeroizing<[u8; 32]>,
    csrf: Zeroizing<[u8; 32]>,
}

#[allow(clippy::expect_used)] // HMAC takes keys of any length: `new_from_slice` cannot fail here.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl AuthKeys {
    pub fn derive(master: &MasterKey) -> AuthKeys {
        AuthKeys {
            throttle: Zeroizing::new(master.derive("rampart login throttle v1")),
            csrf: Zeroizing::new(master.derive("rampart csrf v1")),
        }
    }

    /// The throttle key of a submitted login identifier (existing account or not). Keyed, so
    /// the table holds no e-mail addresses and cannot be reversed with a dictionary.
    pub fn identifier_key(&self, submitted_email: &str) -> String {
        let normalized = submitted_email.trim().to_lowercase();
        format!("id:{}", hex::encode(hmac(self.throttle.as_ref(), &[normalized.as_bytes()])))
    }

    /// The CSRF token of a cookie session: an HMAC of its id, so nothing extra is stored and
    /// a token from one session is worthless for another.
    pub fn csrf_token(&self, session: SessionId) -> String {
        URL_SAFE_NO_PAD.encode(hmac(self.csrf.as_ref(), &[b"csrf", session.0.as_bytes()]))
    }

    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        let expected = self.csrf_token(session);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
    }
}

/// The throttle key of a client address: IPv6 clients usually hold a whole /64, so they are
/// counted per /64.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// A caller with a live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub session: Session,
    pub via: Via,
    /// The access token's claims (bearer only).
    pub claims: Option<AccessClaims>,
}

impl Authenticated {
    /// Refuses with 403 `forbidden` unless one of the caller's roles grants `permission`.
    pub async fn require(&self, state: &AppState, permission: &str) -> Result<(), ApiError> {
        let granted = state.store.user_permissions(self.user_id).await?;
        if permission::allows(&granted, permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden { code: "forbidden", detail: format!("this needs the permission {permission}") })
        }
    }
}

/// A caller of the endpoints that backends use: an API key (`Authorization: Bearer rk_…` or
/// `X-API-Key`), or a user session.
#[derive(Debug, Clone)]
pub enum Caller {
    Session(Authenticated),
    Key(crate::services::api_keys::KeyPrincipal),
}

impl Caller {
    /// Refuses with 403 unless the caller holds `permission` (for a key: its scopes within its
    /// owner's current permissions).
    pub async fn require(&self, state: &AppState, permission: &str) -> Result<(), ApiError> {
        match self {
            Caller::Session(auth) => auth.require(state, permission).await,
            Caller::Key(key) if key.allows(permission) => Ok(()),
            Caller::Key(_) => Err(ApiError::Forbidden {
                code: "insufficient_scope",
                detail: format!("this API key lacks the scope {permission} (or its owner lost it)"),
            }),
        }
    }
}

impl Caller {
    /// Whether the caller could itself hold `permission` (a concrete one or a wildcard): the
    /// ceiling for what it may grant to others or to roles.
    pub async fn covers(&self, state: &AppState, permission: &str) -> Result<bool, ApiError> {
        Ok(match self {
            Caller::Session(a) => {
                rampart_domain::apikey::covers(&state.store.user_permissions(a.user_id).await?, permission)
            }
            Caller::Key(k) => {
                rampart_domain::apikey::covers(&k.key.scopes, permission)
                    && rampart_domain::apikey::covers(&k.owner_permissions, permission)
            }
        })
    }

    /// [`Caller::require`], recording a refusal as `authz.denied`.
    pub async fn require_recorded(
        &self,
        state: &AppState,
        ctx: &crate::events::RequestContext,
        permission: &str,
    ) -> Result<(), ApiError> {
        if let Err(e) = self.require(state, permission).await {
            record_denied(state, ctx, self, permission).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Who this is, for events.
    pub fn actor(&self) -> rampart_domain::Actor {
        match self {
            Caller::Session(a) => rampart_domain::Actor::User(a.user_id.0),
            Caller::Key(k) => rampart_domain::Actor::ApiKey(k.key.id),
        }
    }
}

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
            let ctx =
                crate::events::RequestContext::from_request_parts(parts, state).await.unwrap_or_else(|i| match i {});
            record_denied(state, &ctx, &caller, P::NAME).await?;
            return Err(e);
        }
        Ok(Guard { caller, _permission: std::marker::PhantomData })
    }
}

/// Records that `caller` was refused `permission`.
pub async fn record_denied(
    state: &AppState,
    ctx: &crate::events::RequestContext,
    caller: &Caller,
    permission: &str,
) -> Result<(), ApiError> {
    let ev = ctx
        .event(&state.events, rampart_domain::Action::AuthorizationDenied, rampart_domain::Outcome::Denied)
        .severity(rampart_domain::Severity::Warning)
        .actor(caller.actor())
        .details(serde_json::json!({ "permission": permission }));
    let key = format!(
        "{}:{}|{permission}",
        caller.actor().kind(),
        caller.actor().id().map(|i| i.to_string()).unwrap_or_default()
    );
    state.events.record_aggregated(&key, ev).await?;
    Ok(())
}

/// The API key a request carries, if any.
pub fn presented_api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    bearer(headers).filter(|t| t.starts_with(rampart_domain::apikey::PREFIX))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(key) = presented_api_key(&parts.headers) {
            return match crate::services::api_keys::verify(state, key, None).await {
                Ok((principal, _)) => Ok(Caller::Key(principal)),
                Err(("rate_limited", _, limit)) => {
                    Err(ApiError::RateLimited { retry_after_secs: limit.map_or(1, |l| l.reset.as_secs().max(1)) })
                }
                Err(_) => Err(ApiError::InvalidApiKey),
            };
        }
        Authenticated::from_request_parts(parts, state).await.map(Caller::Session)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
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
/// reach: their account, the factor endpoints, logout and the CSRF token.
fn enrollment_path(path: &str) -> bool {
    matches!(path, "/v1/me" | "/v1/auth/logout" | "/v1/auth/csrf") || path.starts_with("/v1/me/mfa/")
}

/// Refuses with 403 `mfa_enrollment_required` a user whose roles require a second factor and
/// who has none. Checked on every request (not fixed at login), so a role granted later
/// applies at once and enrolling lifts the limit without a new login.
async fn require_enrolled(state: &AppState, user: UserId) -> Result<(), ApiError> {
    let Some(u) = state.store.get_user(user).await? else { return Err(ApiError::InvalidToken) };
    if state.config.mfa.required_for(&u.roles) && !state.store.mfa_status(user).await?.any() {
        return Err(ApiError::Forbidden {
            code: "mfa_enrollment_required",
            detail: "your role requires a second factor: set one up at /v1/me/mfa/ first".into(),
        });
    }
    Ok(())
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(a) = parts.extensions.get::<Authenticated>() {
            return Ok(a.clone());
        }
        let now = state.clock.now();
        let (session, via, claims) = if let Some(token) = bearer(&parts.headers) {
            let claims = state.signing.verify(token).await.map_err(|e| {
                tracing::debug!(reason = e.code(), "access token refused");
                ApiError::InvalidToken
            })?;
            let sid = claims.sid.parse().map(SessionId).map_err(|_| ApiError::InvalidToken)?;
            let session = state.store.get_session(sid).await?.ok_or(ApiError::InvalidToken)?;
            if session.user_id.0.to_string() != claims.sub {
                return Err(ApiError::InvalidToken);
            }
            (session, Via::Bearer, Some(claims))
        } else if let Some(value) = cookie(&parts.headers, SESSION_COOKIE) {
            let session = state.store.session_by_cookie(TokenHash::of(value)).await?.ok_or(ApiError::InvalidToken)?;
            if !is_safe(&parts.method) {
                let token = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                if !state.auth.csrf_matches(session.id, token)
                    || !same_origin(&parts.headers, &state.config.sessions.trusted_origins)
                {
                    return Err(ApiError::Forbidden {
                        code: "csrf_failed",
                        detail: "cookie-authenticated changes need X-CSRF-Token and a same-origin request".into(),
                    });
                }
            }
            (session, Via::Cookie, None)
        } else {
            return Err(ApiError::Unauthenticated);
        };
        if !session.is_active(now) {
            return Err(ApiError::InvalidToken);
        }
        let policy = state.session_policy();
        if policy.should_touch(&session, now) {
            state.store.touch_session(session.id, now, policy.extend(&session, now)).await?;
        }
        if !state.config.mfa.required_for_roles.is_empty() && !enrollment_path(parts.uri.path()) {
            require_enrolled(state, session.user_id).await?;
        }
        let auth = Authenticated { user_id: session.user_id, session, via, claims };
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn csrf_tokens_are_bound_to_the_session_and_identifiers_are_keyed() {
        let keys = AuthKeys::derive(&MasterKey::from_bytes([7; 32]));
        let other = AuthKeys::derive(&MasterKey::from_bytes([8; 32]));
        let a = SessionId(uuid::Uuid::now_v7());
        let b = SessionId(uuid::Uuid::now_v7());
        let t = keys.csrf_token(a);
        assert!(keys.csrf_matches(a, &t));
        assert!(!keys.csrf_matches(b, &t));
        assert!(!other.csrf_matches(a, &t));
        assert!(!keys.csrf_matches(a, ""));
        assert_eq!(keys.identifier_key(" Ann@Example.com "), keys.identifier_key("ann@example.com"));
        assert_ne!(keys.identifier_key("ann@example.com"), other.identifier_key("ann@example.com"));
        assert!(!keys.identifier_key("ann@example.com").contains("ann"));
    }

    #[test]
    fn cookies_and_ip_keys() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; __Host-rampart_session=rs_x; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("rs_x"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(ip_key("192.0.2.7".parse().unwrap()), "ip:192.0.2.7");
        assert_eq!(ip_key("2001:db8:1:2:3:4:5:6".parse().unwrap()), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_key("::ffff:192.0.2.7".parse().unwrap()), "ip:192.0.2.7");
    }
}

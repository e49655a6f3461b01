//! Who is calling and what they may do: a caller with a live session ([`Authenticated`]), an
//! API key's principal, either of them as a [`Caller`], and every permission and scope check,
//! in this one module. The server's extractors build these; use cases take them.
//!
//! Also the keys derived from the master key for login throttling and CSRF tokens.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::api_keys::KeyPrincipal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rampart_domain::tokens::AccessClaims;
use rampart_domain::{Action, Actor, MasterKey, Outcome, Session, SessionId, Severity, ThrottleKey, UserId};
use rampart_domain::{apikey, permission};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The permission to ask whether another subject holds a permission.
pub const AUTHZ_CHECK: &str = "authz:check";

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
    pub claims: Option<std::sync::Arc<AccessClaims>>,
}

impl Authenticated {
    /// Refuses with `forbidden` unless one of the caller's roles grants `permission`.
    pub async fn require(&self, state: &App, permission: &str) -> Result<(), ServiceError> {
        let granted = state.store.user_permissions(self.user_id).await?;
        if permission::allows(&granted, permission) {
            Ok(())
        } else {
            Err(ServiceError::MissingPermission { permission: permission.to_string() })
        }
    }
}

/// A caller of the endpoints that backends use: an API key, or a user session.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "a caller lives on one request's stack; boxing the session would cost every session caller an allocation"
)]
pub enum Caller {
    Session(Authenticated),
    Key(KeyPrincipal),
}

impl Caller {
    /// Refuses unless the caller holds `permission` (for a key: its scopes within its owner's
    /// current permissions).
    pub async fn require(&self, state: &App, permission: &str) -> Result<(), ServiceError> {
        match self {
            Caller::Session(auth) => auth.require(state, permission).await,
            Caller::Key(key) if key.allows(permission) => Ok(()),
            Caller::Key(_) => Err(ServiceError::InsufficientScope { permission: permission.to_string() }),
        }
    }

    /// Whether the caller could itself hold `permission` (a concrete one or a wildcard): the
    /// ceiling for what it may grant to others or to roles.
    pub async fn covers(&self, state: &App, permission: &str) -> Result<bool, ServiceError> {
        Ok(match self {
            Caller::Session(a) => apikey::covers(&state.store.user_permissions(a.user_id).await?, permission),
            Caller::Key(k) => {
                apikey::covers(&k.key.scopes, permission) && apikey::covers(&k.owner_permissions, permission)
            }
        })
    }

    /// Refuses with `exceeds_own_permissions` unless the caller covers every permission in
    /// `needed` (what a change would grant, or what the target holds).
    pub async fn require_covers<S: AsRef<str>>(
        &self,
        state: &App,
        needed: &[S],
        what: &str,
    ) -> Result<(), ServiceError> {
        for p in needed {
            if !self.covers(state, p.as_ref()).await? {
                return Err(ServiceError::ExceedsOwnPermissions {
                    what: what.to_string(),
                    permission: p.as_ref().to_string(),
                });
            }
        }
        Ok(())
    }

    /// [`Caller::require`], recording a refusal as `authz.denied`.
    pub async fn require_recorded(
        &self,
        state: &App,
        ctx: &RequestContext,
        permission: &str,
    ) -> Result<(), ServiceError> {
        if let Err(e) = self.require(state, permission).await {
            record_denied(state, ctx, self, permission).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Who this is, for events.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Session(a) => Actor::User(a.user_id.0),
            Caller::Key(k) => Actor::ApiKey(k.key.id),
        }
    }
}

/// Records that `caller` was refused `permission` (aggregated per caller and permission).
pub async fn record_denied(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    permission: &str,
) -> Result<(), ServiceError> {
    let ev = ctx
        .event(&state.events, Action::AuthorizationDenied, Outcome::Denied)
        .severity(Severity::Warning)
        .actor(caller.actor())
        .details(match &ctx.route {
            Some(route) => serde_json::json!({ "permission": permission, "route": route }),
            None => serde_json::json!({ "permission": permission }),
        });
    let key = format!(
        "{}:{}|{permission}",
        caller.actor().kind(),
        caller.actor().id().map(|i| i.to_string()).unwrap_or_default()
    );
    state.events.record_aggregated(&key, ev).await?;
    Ok(())
}

/// Refuses with `mfa_enrollment_required` a user whose roles require a second factor and who
/// has none. Checked on every request (not fixed at login), so a role granted later applies at
/// once and enrolling lifts the limit without a new login.
pub async fn require_enrolled(state: &App, user: UserId) -> Result<(), ServiceError> {
    let Some(u) = state.store.get_user(user).await? else { return Err(ServiceError::InvalidToken) };
    if state.settings.mfa.required_for(&u.roles) && !state.store.mfa_status(user).await?.any() {
        return Err(ServiceError::MfaEnrollmentRequired);
    }
    Ok(())
}

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

/// The purposes [`AuthKeys`] are derived under (kept in the store's root keys).
pub const THROTTLE_KEY_PURPOSE: &str = "rampart login throttle v1";
pub const CSRF_KEY_PURPOSE: &str = "rampart csrf v1";

impl AuthKeys {
    pub fn derive(master: &MasterKey) -> AuthKeys {
        AuthKeys::from_keys(master.derive(THROTTLE_KEY_PURPOSE), master.derive(CSRF_KEY_PURPOSE))
    }

    /// Keys kept from an earlier derivation (see `root_keys`).
    pub fn from_keys(throttle: [u8; 32], csrf: [u8; 32]) -> AuthKeys {
        AuthKeys { throttle: Zeroizing::new(throttle), csrf: Zeroizing::new(csrf) }
    }

    /// The throttle key of a submitted login identifier (existing account or not), counted
    /// under the address's normal form so that its spellings (`ＡＮＮ@…`) share one count.
    /// Keyed, so the table holds no e-mail addresses and cannot be reversed with a dictionary.
    pub fn identifier_key(&self, submitted_email: &str) -> ThrottleKey {
        let normalized = rampart_domain::EmailLookup::identifier(submitted_email);
        ThrottleKey::identifier(hex::encode(hmac(self.throttle.as_ref(), &[normalized.as_bytes()])))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(keys.identifier_key("ａnn@example.com"), keys.identifier_key("ann@example.com"));
        assert_ne!(keys.identifier_key("ann@example.com"), other.identifier_key("ann@example.com"));
        assert!(!keys.identifier_key("ann@example.com").storage_key().contains("ann"));
    }
}

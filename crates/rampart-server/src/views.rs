//! Domain values as the API shows them (`rampart_wire` types), converted at the edge.

use rampart_domain::device::parse_user_agent;
use rampart_domain::{Session, User};
use rampart_wire::{DeviceView, MfaStatus, SessionView, UserView};

pub use rampart_core::rfc3339;

/// A user with no second factor yet (just registered).
pub fn user_view(u: &User) -> UserView {
    user_view_with(u, &rampart_store::MfaStatus::default())
}

/// A user with their second factors.
pub fn user_view_with(u: &User, mfa: &rampart_store::MfaStatus) -> UserView {
    UserView {
        id: u.id.0.to_string(),
        email: u.email.to_string(),
        name: u.name.clone(),
        roles: u.roles.iter().map(ToString::to_string).collect(),
        email_verified: u.email_verified,
        mfa: MfaStatus { totp: mfa.totp, webauthn: mfa.webauthn > 0, backup_codes_left: mfa.backup_codes_left },
        created_at: rfc3339(u.created_at),
    }
}

pub fn session_view(s: &Session, current: bool) -> SessionView {
    let device = parse_user_agent(s.user_agent.as_deref());
    let kind = serde_json::to_value(device.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    SessionView {
        id: s.id.to_string(),
        created_at: rfc3339(s.created_at),
        last_active_at: rfc3339(s.last_active_at),
        expires_at: rfc3339(s.expires_at()),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        device: DeviceView { browser: device.browser, os: device.os, kind },
        current,
    }
}

/// A session's tokens as the API shows them.
pub fn token_response(t: rampart_core::services::login::Tokens) -> rampart_wire::TokenResponse {
    rampart_wire::TokenResponse {
        access_token: t.access_token,
        token_type: "Bearer".into(),
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        session_id: t.session_id.to_string(),
    }
}

/// The `mfa_required` answer of a login.
pub fn mfa_required(r: rampart_core::services::step_up::StepUpRequired) -> rampart_wire::MfaRequired {
    rampart_wire::MfaRequired { mfa_required: true, mfa_token: r.mfa_token, methods: r.methods }
}

pub fn totp_setup(t: rampart_core::services::mfa::TotpEnrolment) -> rampart_wire::TotpSetup {
    rampart_wire::TotpSetup {
        secret: t.secret,
        otpauth_uri: t.otpauth_uri,
        qr_png_base64: t.qr_png_base64,
        qr_svg: t.qr_svg,
    }
}

pub fn webauthn_challenge(c: rampart_core::services::webauthn::Ceremony) -> rampart_wire::WebauthnChallenge {
    rampart_wire::WebauthnChallenge { challenge_id: c.challenge_id, options: c.options }
}

pub fn authenticator_view(a: &rampart_core::services::webauthn::Authenticator) -> rampart_wire::WebauthnCredentialView {
    rampart_wire::WebauthnCredentialView {
        id: a.id.to_string(),
        name: a.name.clone(),
        created_at: rfc3339(a.created_at),
        last_used_at: a.last_used_at.map(rfc3339),
    }
}

pub fn linked_identity_view(i: &rampart_store::LinkedIdentity) -> rampart_wire::LinkedIdentityView {
    rampart_wire::LinkedIdentityView {
        id: i.id.to_string(),
        provider: i.provider.clone(),
        subject: i.subject.clone(),
        username: i.username.clone(),
        created_at: rfc3339(i.created_at),
        last_used_at: i.last_used_at.map(rfc3339),
    }
}

/// The widget's fields as received, as text: what its signature covers (numbers in decimal).
pub fn telegram_fields(r: &rampart_wire::TelegramLoginRequest) -> rampart_core::services::federation::TelegramFields {
    let mut f = std::collections::BTreeMap::new();
    f.insert("id".to_string(), r.id.to_string());
    f.insert("auth_date".to_string(), r.auth_date.to_string());
    for (k, v) in [
        ("first_name", &r.first_name),
        ("last_name", &r.last_name),
        ("username", &r.username),
        ("photo_url", &r.photo_url),
        ("hash", &r.hash),
    ] {
        if let Some(v) = v {
            f.insert(k.to_string(), v.clone());
        }
    }
    f
}

pub fn ip_rule_view(r: &rampart_domain::iprule::IpRule) -> rampart_wire::IpRuleView {
    rampart_wire::IpRuleView {
        id: r.id.to_string(),
        network: r.network.to_string(),
        action: r.action.as_str().into(),
        scope: r.scope.as_str().into(),
        reason: r.reason.clone(),
        automatic: r.automatic,
        created_at: rfc3339(r.created_at),
        expires_at: r.expires_at.map(rfc3339),
    }
}

pub fn webhook_view(w: &rampart_store::StoredWebhook) -> rampart_wire::WebhookView {
    rampart_wire::WebhookView {
        id: w.id.to_string(),
        url: w.url.clone(),
        events: w.filters.iter().map(rampart_domain::webhook::EventFilter::text).collect(),
        description: w.description.clone(),
        enabled: w.enabled,
        created_at: rfc3339(w.created_at),
        updated_at: rfc3339(w.updated_at),
        failing_since: w.failing_since.map(rfc3339),
        disabled_reason: w.disabled_reason.clone(),
        format: w.format.clone(),
    }
}

pub fn webhook_attempt_view(a: &rampart_store::WebhookAttempt) -> rampart_wire::WebhookAttemptView {
    rampart_wire::WebhookAttemptView {
        id: a.id.to_string(),
        event_id: a.event_id.to_string(),
        attempt: a.attempt,
        at: rfc3339(a.at),
        status: a.status.clone(),
        http_status: a.http_status,
        latency_ms: a.latency_ms,
        error: a.error.clone(),
        response: a.response.clone(),
        next_attempt_at: a.next_attempt_at.map(rfc3339),
    }
}

pub fn verification(r: &rampart_store::ChainReport) -> rampart_wire::AuditVerification {
    rampart_wire::AuditVerification {
        ok: r.ok,
        events_checked: r.events_checked,
        checkpoints_checked: r.checkpoints_checked,
        first_bad_seq: r.first_bad_seq,
        fault: r.fault.map(|f| f.as_str().to_string()),
        anchored_at: r.anchored_at,
    }
}

/// Most entries a [`RenderedBodies`] keeps; when full, it starts over.
const MAX_RENDERED: usize = 10_000;

/// JSON bodies kept per key (a user, an API key) with what each was rendered from, for answers
/// that are a function of that alone: a body is served again only while what the request in
/// hand read is equal to what it was rendered from; any change renders it anew. Comparing
/// costs a fraction of rendering (most of which is JSON string escaping).
#[derive(Debug)]
pub struct RenderedBodies<K, S> {
    bodies: std::sync::RwLock<rampart_core::FastMap<K, (S, bytes::Bytes)>>,
}

impl<K, S> Default for RenderedBodies<K, S> {
    fn default() -> Self {
        Self { bodies: std::sync::RwLock::default() }
    }
}

impl<K: std::hash::Hash + Eq, S: PartialEq> RenderedBodies<K, S> {
    /// The body for `key` rendered from `source`: the kept one if it was rendered from an
    /// equal source, else `render`'s (then kept).
    pub fn body(
        &self,
        key: K,
        source: S,
        render: impl FnOnce(&S) -> Result<Vec<u8>, serde_json::Error>,
    ) -> Result<bytes::Bytes, serde_json::Error> {
        {
            let bodies = self.bodies.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((kept, body)) = bodies.get(&key)
                && *kept == source
            {
                return Ok(body.clone());
            }
        }
        let body = bytes::Bytes::from(render(&source)?);
        let mut bodies = self.bodies.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if bodies.len() >= MAX_RENDERED {
            bodies.clear();
        }
        bodies.insert(key, (source, body.clone()));
        Ok(body)
    }
}

/// An answer whose JSON body is already rendered (a kept one of [`RenderedBodies`]).
pub fn json_response(body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"))], body)
        .into_response()
}

/// `GET /v1/me`'s body per user, kept with the account (the user record and their second
/// factors) it was rendered from: a route browsers call on every page load.
pub type RenderedAccounts = RenderedBodies<rampart_domain::UserId, (User, rampart_store::MfaStatus)>;

impl RenderedAccounts {
    /// The JSON of `{"user": …}` for this account.
    pub fn account(&self, user: User, mfa: rampart_store::MfaStatus) -> Result<bytes::Bytes, serde_json::Error> {
        self.body(user.id, (user, mfa), |(user, mfa)| {
            serde_json::to_vec(&rampart_wire::UserEnvelope { user: user_view_with(user, mfa) })
        })
    }
}

/// `POST /v1/keys/verify`'s `{valid: true, …}` per key without a rate limit of its own (whose
/// answer says how much is left), kept with the lookup it was rendered from: a key is read
/// anew at most every few seconds, and each read is a new principal, so the body is rendered
/// that often, not on every request.
pub type RenderedKeys = RenderedBodies<uuid::Uuid, rampart_core::services::api_keys::KeyPrincipal>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rampart_domain::{Email, RoleName, UserId};

    fn user() -> User {
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        User {
            id: UserId(uuid::Uuid::now_v7()),
            email: Email::parse("ada@example.com").unwrap(),
            name: Some("Ada".into()),
            roles: vec![RoleName::parse("user").unwrap()],
            email_verified: false,
            disabled: false,
            created_at: at,
            password_changed_at: at,
        }
    }

    fn rendered(r: &RenderedAccounts, u: &User, mfa: rampart_store::MfaStatus) -> serde_json::Value {
        serde_json::from_slice(&r.account(u.clone(), mfa).unwrap()).unwrap()
    }

    #[test]
    fn an_account_body_is_reused_only_while_the_account_is_equal() {
        let r = RenderedAccounts::default();
        let mut u = user();
        let mfa = rampart_store::MfaStatus::default();
        let first = r.account(u.clone(), mfa).unwrap();
        let again = r.account(u.clone(), mfa).unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same bytes, not rendered again");
        assert_eq!(
            rendered(&r, &u, mfa),
            serde_json::to_value(rampart_wire::UserEnvelope { user: user_view_with(&u, &mfa) }).unwrap()
        );

        // Any change to what the body shows renders it anew.
        u.email_verified = true;
        assert_eq!(rendered(&r, &u, mfa)["user"]["email_verified"], true);
        u.roles.push(RoleName::parse("admin").unwrap());
        assert_eq!(rendered(&r, &u, mfa)["user"]["roles"], serde_json::json!(["user", "admin"]));
        let with_totp = rampart_store::MfaStatus { totp: true, ..mfa };
        assert_eq!(rendered(&r, &u, with_totp)["user"]["mfa"]["totp"], true);
        assert_eq!(rendered(&r, &u, mfa)["user"]["mfa"]["totp"], false);
        u.name = None;
        assert!(rendered(&r, &u, mfa)["user"]["name"].is_null());

        // Another user's account is never served for this one.
        let other = user();
        assert_eq!(rendered(&r, &other, mfa)["user"]["id"], other.id.0.to_string());
    }

    fn key(scopes: &[&str]) -> rampart_core::services::api_keys::KeyPrincipal {
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let stored = rampart_store::StoredApiKey {
            id: uuid::Uuid::now_v7(),
            user_id: uuid::Uuid::now_v7(),
            name: "svc".into(),
            prefix: "rk_abc".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            rate_limit_requests: None,
            rate_limit_per_seconds: None,
            created_at: at,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            rotated_to: None,
        };
        rampart_core::services::api_keys::KeyPrincipal::new(stored, vec!["*".into()])
    }

    #[test]
    fn a_key_body_is_reused_only_for_an_equal_lookup() {
        let r = RenderedKeys::default();
        let renders = std::cell::Cell::new(0);
        let body = |p: &rampart_core::services::api_keys::KeyPrincipal| {
            r.body(p.key.id, p.clone(), |p| {
                renders.set(renders.get() + 1);
                serde_json::to_vec(&(p.key.id, &p.key.scopes))
            })
            .unwrap()
        };
        let first = key(&["orders:read"]);
        let a = body(&first);
        let b = body(&first.clone());
        assert_eq!((a.as_ptr(), renders.get()), (b.as_ptr(), 1), "the same lookup: the same bytes");

        // A new lookup that reads the same key renders nothing; one that reads a change does.
        let same =
            rampart_core::services::api_keys::KeyPrincipal::new(first.key.clone(), first.owner_permissions.clone());
        body(&same);
        assert_eq!(renders.get(), 1);
        let mut changed = first.key.clone();
        changed.scopes.push("orders:write".into());
        let changed = rampart_core::services::api_keys::KeyPrincipal::new(changed, first.owner_permissions.clone());
        let c: serde_json::Value = serde_json::from_slice(&body(&changed)).unwrap();
        assert_eq!((c[1].clone(), renders.get()), (serde_json::json!(["orders:read", "orders:write"]), 2));
        let fewer = rampart_core::services::api_keys::KeyPrincipal::new(first.key.clone(), vec!["orders:read".into()]);
        body(&fewer);
        assert_eq!(renders.get(), 3, "the owner's permissions are part of the lookup");

        // Another key's body is never served for this one.
        let other = key(&["orders:read"]);
        let o: serde_json::Value = serde_json::from_slice(&body(&other)).unwrap();
        assert_eq!(o[0], other.key.id.to_string());
    }
}

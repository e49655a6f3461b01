//! WebAuthn (webauthn-rs): registering authenticators (named, listed, removable, after
//! re-authentication: the password, and a current second factor once the account has one),
//! answering a step-up login with one, and passwordless login with a discoverable
//! credential (passkey).
//!
//! Rules that live here: a ceremony's state is kept server-side, works once (taken with
//! `DELETE … RETURNING`) and for [`CHALLENGE_TTL`]; the relying-party id and origin come from
//! `[webauthn]` and the library checks both in every ceremony; a step-up ceremony is bound to
//! its `mfa_token`; after every assertion the stored credential takes the new signature counter,
//! and an assertion whose counter did not advance is refused (the library compares, the store's
//! `UPDATE … WHERE counter < $new` decides races). Failures count toward the login throttle.

use crate::App;
use crate::authz::Authenticated;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::factors::{Reauth, factor_event, reauthenticate, record_failure, revoke_choice};
use rampart_config::WebAuthnConfig;
use rampart_domain::mfa::Factor;
use rampart_domain::{Action, Severity, TokenHash, User, UserId};
use rampart_store::{NewWebauthn, StoreError, StoredWebauthn, WebauthnCeremony};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// How long a ceremony's state works.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
/// The longest authenticator name.
const MAX_NAME_CHARS: usize = 64;

/// The relying party built from `[webauthn]` at start-up.
pub struct RelyingParty(Webauthn);

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelyingParty")
    }
}

impl RelyingParty {
    pub fn from_config(c: &WebAuthnConfig) -> Result<Self, String> {
        let origin = Url::parse(&c.origin).map_err(|e| format!("origin: {e}"))?;
        let rp = WebauthnBuilder::new(&c.rp_id, &origin)
            .and_then(|b| b.rp_name(&c.rp_name).timeout(std::time::Duration::from_secs(300)).build())
            .map_err(|e| e.to_string())?;
        Ok(RelyingParty(rp))
    }
}

fn invalid_challenge() -> ServiceError {
    ServiceError::field(
        "challenge_id",
        "invalid_challenge",
        "the challenge is unknown, expired or was used before; start again",
    )
}

fn to_json<T: Serialize>(v: &T) -> Result<String, ServiceError> {
    serde_json::to_string(v).map_err(ServiceError::internal)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, ServiceError> {
    serde_json::from_str(s).map_err(ServiceError::internal)
}

fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

/// A WebAuthn ceremony begun: its id and the options for `navigator.credentials`.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub challenge_id: String,
    pub options: serde_json::Value,
}

/// A registered authenticator, as its owner sees it.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

fn view(c: &StoredWebauthn) -> Authenticator {
    Authenticator { id: c.id, name: c.name.clone(), created_at: c.created_at, last_used_at: c.last_used_at }
}

async fn new_challenge(
    state: &App,
    kind: WebauthnCeremony,
    user: Option<UserId>,
    mfa_hash: Option<TokenHash>,
    ceremony_state: &impl Serialize,
    options: &impl Serialize,
) -> Result<Ceremony, ServiceError> {
    let id = Uuid::now_v7();
    let now = state.clock.now();
    let json = to_json(ceremony_state)?;
    state.store.create_webauthn_challenge(id, kind, user, mfa_hash, &json, now, now + CHALLENGE_TTL).await?;
    Ok(Ceremony {
        challenge_id: id.to_string(),
        options: serde_json::to_value(options).map_err(ServiceError::internal)?,
    })
}

/// `POST /v1/me/mfa/webauthn/register/start`: re-authentication (the ceremony it begins is the
/// only way to `register_finish`), then creation options that exclude the user's registered
/// authenticators and prefer a discoverable credential (a passkey).
pub async fn register_start(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Reauth<'_>,
) -> Result<Ceremony, ServiceError> {
    let user = reauthenticate(state, ctx, auth, reauth).await?;
    let existing = state.store.webauthn_credentials(user.id).await?;
    let exclude = existing
        .iter()
        .map(|c| from_json::<Passkey>(&c.passkey).map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let (ccr, reg) = state
        .webauthn
        .0
        .start_passkey_registration(user.id.0, user.email.as_str(), user.email.as_str(), Some(exclude))
        .map_err(ServiceError::internal)?;
    let mut options = serde_json::to_value(&ccr).map_err(ServiceError::internal)?;
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        sel.insert("residentKey".into(), "preferred".into());
    }
    new_challenge(state, WebauthnCeremony::Register, Some(user.id), None, &reg, &options).await
}

/// `POST /v1/me/mfa/webauthn/register/finish`: verifies the attestation against the ceremony
/// (challenge, origin, rp id, user verification) and stores the authenticator.
pub async fn register_finish(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    challenge_id: &str,
    credential: &serde_json::Value,
    name: &str,
) -> Result<Authenticator, ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::field("name", "invalid_name", "1 to 64 printable characters"));
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
        .map_err(|_| ServiceError::field("credential", "invalid_credential", "not a WebAuthn registration response"))?;
    let now = state.clock.now();
    let Some(id) = parse_id(challenge_id) else { return Err(invalid_challenge()) };
    let Some(challenge) = state.store.take_webauthn_challenge(id, WebauthnCeremony::Register, now).await? else {
        return Err(invalid_challenge());
    };
    if challenge.user_id != Some(auth.user_id) {
        return Err(invalid_challenge());
    }
    let reg: PasskeyRegistration = from_json(&challenge.state)?;
    let passkey = match state.webauthn.0.finish_passkey_registration(&credential, &reg) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "webauthn registration refused");
            record_failure(state, ctx, Some(auth.user_id), Factor::WebAuthn, "invalid_attestation", "register").await?;
            return Err(ServiceError::field(
                "credential",
                "invalid_credential",
                "the authenticator's response does not verify (wrong origin, challenge or signature)",
            ));
        }
    };
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    let cred_id = passkey.cred_id().as_ref().to_vec();
    let stored = NewWebauthn {
        id: Uuid::now_v7(),
        user_id: user.id,
        name,
        credential_id: &cred_id,
        passkey: &to_json(&passkey)?,
        counter: 0,
    };
    let ev = factor_event(state, ctx, user.id, Action::MfaWebauthnAdded).details(serde_json::json!({
        "credential": stored.id.to_string(),
        "name": name,
        "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change,
    }));
    match state.store.add_webauthn_credential(&stored, now, revoke_choice(state, auth), &ev).await {
        Ok(()) => state.events.observed(&ev),
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::CredentialExists);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Authenticator { id: stored.id, name: name.to_string(), created_at: now, last_used_at: None })
}

/// `GET /v1/me/mfa/webauthn`.
pub async fn list(state: &App, auth: &Authenticated) -> Result<Vec<Authenticator>, ServiceError> {
    Ok(state.store.webauthn_credentials(auth.user_id).await?.iter().map(view).collect())
}

/// `DELETE /v1/me/mfa/webauthn/{id}`: after re-authentication; 404 for another user's id.
pub async fn remove(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    id: &str,
    reauth: Option<Reauth<'_>>,
) -> Result<(), ServiceError> {
    // Without a body (many clients and proxies drop DELETE bodies): a session opened with two
    // factors within `security.reauth_window_secs` is the proof, else `reauthentication_required`.
    let user = match reauth {
        Some(r) => reauthenticate(state, ctx, auth, r).await?,
        None if auth.session.is_recent_multi_factor(state.clock.now(), state.settings.security.reauth_window) => {
            state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?
        }
        None => return Err(ServiceError::ReauthenticationRequired),
    };
    let Some(id) = parse_id(id) else { return Err(ServiceError::NotFound) };
    let ev = factor_event(state, ctx, user.id, Action::MfaWebauthnRemoved).severity(Severity::Warning).details(
        serde_json::json!({ "credential": id.to_string(), "other_sessions_revoked": state.settings.mfa.revoke_other_sessions_on_change }),
    );
    if !state.store.remove_webauthn_credential(user.id, id, state.clock.now(), revoke_choice(state, auth), &ev).await? {
        return Err(ServiceError::NotFound);
    }
    state.events.observed(&ev);
    Ok(())
}

fn passkeys(creds: &[StoredWebauthn]) -> Result<Vec<Passkey>, ServiceError> {
    creds.iter().map(|c| from_json::<Passkey>(&c.passkey)).collect()
}

/// `POST /v1/auth/login/webauthn/start`: request options listing the account's authenticators,
/// bound to this `mfa_token`.
pub async fn login_start(state: &App, mfa_token: &str) -> Result<Ceremony, ServiceError> {
    let hash = TokenHash::of(mfa_token);
    let now = state.clock.now();
    let challenge = if rampart_domain::opaque::looks_like(rampart_domain::TokenKind::MfaLogin, mfa_token) {
        state.store.mfa_challenge(hash, now, state.settings.mfa.challenge_max_failures).await?
    } else {
        None
    };
    let Some(challenge) = challenge else { return Err(ServiceError::InvalidMfaToken) };
    let creds = state.store.webauthn_credentials(challenge.user_id).await?;
    if creds.is_empty() {
        return Err(ServiceError::MethodNotAvailable("this account has no WebAuthn authenticator"));
    }
    let (rcr, auth_state) =
        state.webauthn.0.start_passkey_authentication(&passkeys(&creds)?).map_err(ServiceError::internal)?;
    new_challenge(state, WebauthnCeremony::Login, Some(challenge.user_id), Some(hash), &auth_state, &rcr).await
}

/// The WebAuthn answer to a step-up (called by `mfa::complete_step_up`, which owns the
/// throttle): the ceremony must belong to this `mfa_token` and user, the assertion verify, and
/// the counter advance. `Ok(Err(reason))` for a refused answer.
pub(crate) async fn check_step_up(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    mfa_hash: &TokenHash,
    challenge_id: &str,
    credential: &serde_json::Value,
) -> Result<Result<(), &'static str>, ServiceError> {
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
        return Ok(Err("malformed_assertion"));
    };
    let Some(id) = parse_id(challenge_id) else { return Ok(Err("invalid_challenge")) };
    let Some(challenge) = state.store.take_webauthn_challenge(id, WebauthnCeremony::Login, state.clock.now()).await?
    else {
        return Ok(Err("invalid_challenge"));
    };
    let bound =
        challenge.mfa_hash.as_deref().is_some_and(|h| bool::from(subtle::ConstantTimeEq::ct_eq(h, &mfa_hash.0[..])));
    if challenge.user_id != Some(user.id) || !bound {
        return Ok(Err("invalid_challenge"));
    }
    let auth_state: PasskeyAuthentication = from_json(&challenge.state)?;
    let result = match state.webauthn.0.finish_passkey_authentication(&credential, &auth_state) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "webauthn assertion refused");
            return Ok(Err("invalid_assertion"));
        }
    };
    record_use(state, ctx, user.id, &result, "login").await
}

/// Stores the credential's new counter (compare-and-swap) with `mfa.webauthn.used`.
async fn record_use(
    state: &App,
    ctx: &RequestContext,
    user: UserId,
    result: &webauthn_rs::prelude::AuthenticationResult,
    via: &str,
) -> Result<Result<(), &'static str>, ServiceError> {
    let Some(stored) = state.store.webauthn_credential_by_credential_id(result.cred_id().as_ref()).await? else {
        return Ok(Err("unknown_credential"));
    };
    if stored.user_id != user {
        return Ok(Err("unknown_credential"));
    }
    let mut passkey: Passkey = from_json(&stored.passkey)?;
    passkey.update_credential(result);
    let counter = i64::from(result.counter());
    let ev = factor_event(state, ctx, user, Action::MfaWebauthnUsed)
        .details(serde_json::json!({ "credential": stored.id.to_string(), "name": stored.name, "via": via }));
    if state.store.use_webauthn_credential(stored.id, &to_json(&passkey)?, counter, state.clock.now(), &ev).await? {
        state.events.observed(&ev);
        Ok(Ok(()))
    } else {
        Ok(Err("counter_not_advanced"))
    }
}

/// `POST /v1/auth/passkey/start`: request options with no credential list (the authenticator
/// offers its discoverable credentials for this relying party).
pub async fn passkey_start(state: &App) -> Result<Ceremony, ServiceError> {
    // Anonymous callers store a row each: the shipped `passkey` rate rule limits each address,
    // and this caps them all together.
    let pending = state.store.pending_webauthn_challenges(WebauthnCeremony::Passkey, state.clock.now()).await?;
    if pending >= state.settings.webauthn.max_pending_passkeys {
        return Err(ServiceError::Overloaded { retry_after_secs: 60 });
    }
    let (rcr, auth_state) = state.webauthn.0.start_discoverable_authentication().map_err(ServiceError::internal)?;
    new_challenge(state, WebauthnCeremony::Passkey, None, None, &auth_state, &rcr).await
}

/// `POST /v1/auth/passkey/finish`: identifies the account from the credential's user handle,
/// verifies the assertion against that account's credential, and admits the user as a
/// password login would (disabled accounts, unverified addresses, expired passwords refused).
/// Failures count toward the client address's login throttle.
pub async fn passkey_finish(
    state: &App,
    ctx: &RequestContext,
    challenge_id: &str,
    credential: &serde_json::Value,
) -> Result<User, ServiceError> {
    let attempt = crate::services::factors::AddressAttempt::count(state, ctx).await?;
    let now = state.clock.now();
    match verify_passkey(state, ctx, now, challenge_id, credential).await? {
        Ok(user) => {
            attempt.succeeded(state).await?;
            Ok(user)
        }
        Err((user, reason)) => {
            record_failure(state, ctx, user, Factor::WebAuthn, reason, "passkey").await?;
            Err(ServiceError::InvalidCredentials)
        }
    }
}

type Refusal = (Option<UserId>, &'static str);

async fn verify_passkey(
    state: &App,
    ctx: &RequestContext,
    now: time::OffsetDateTime,
    challenge_id: &str,
    credential: &serde_json::Value,
) -> Result<Result<User, Refusal>, ServiceError> {
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
        return Ok(Err((None, "malformed_assertion")));
    };
    let Some(id) = parse_id(challenge_id) else { return Ok(Err((None, "invalid_challenge"))) };
    let Some(challenge) = state.store.take_webauthn_challenge(id, WebauthnCeremony::Passkey, now).await? else {
        return Ok(Err((None, "invalid_challenge")));
    };
    let auth_state: DiscoverableAuthentication = from_json(&challenge.state)?;
    let Ok((user_id, cred_id)) = state.webauthn.0.identify_discoverable_authentication(&credential) else {
        return Ok(Err((None, "no_user_handle")));
    };
    let user_id = UserId(user_id);
    let Some(stored) = state.store.webauthn_credential_by_credential_id(cred_id).await? else {
        return Ok(Err((None, "unknown_credential")));
    };
    if stored.user_id != user_id {
        return Ok(Err((None, "unknown_credential")));
    }
    let passkey: Passkey = from_json(&stored.passkey)?;
    let key = DiscoverableKey::from(&passkey);
    let result = match state.webauthn.0.finish_discoverable_authentication(&credential, auth_state, &[key]) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "passkey assertion refused");
            return Ok(Err((Some(user_id), "invalid_assertion")));
        }
    };
    let Some(user) = state.store.get_user(user_id).await? else { return Ok(Err((None, "unknown_user"))) };
    if let Err(reason) = record_use(state, ctx, user.id, &result, "passkey").await? {
        return Ok(Err((Some(user.id), reason)));
    }
    Ok(Ok(user))
}

/// The `amr` of a passwordless login: a hardware-bound key (`hwk`) that verified its user
/// (`user`: webauthn-rs requires user verification, a PIN or biometric on the device), which
/// together are two factors (`mfa`), RFC 8176.
pub fn passkey_amr() -> Vec<rampart_domain::mfa::Amr> {
    use rampart_domain::mfa::Amr;
    vec![Factor::WebAuthn.amr(), Amr::User, Amr::Mfa]
}

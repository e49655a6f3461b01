//! Federation: signing in with an identity another service vouches for, and the identities
//! linked to an account: the Telegram Login Widget here; OpenID Connect and OAuth2 providers
//! reach [`sign_in`] and [`link_to`] the same way once their flow (`services::oauth`) has
//! produced an [`ExternalIdentity`].
//!
//! A sign-in is throttled per client address like a passkey login (failures count toward the
//! login throttle), checks the provider's signature ([`rampart_domain::federation`]), refuses
//! a payload seen before (the store's `federation_replays`), then signs in the linked account:
//! a disabled one is refused, an account with a second factor gets login's step-up answer, and
//! the session's `amr` is `["fed"]`. An unknown identity creates an account only with
//! `federation.auto_register`; a Telegram account's address is `tg<id>@telegram.invalid`
//! (RFC 2606: never deliverable, and the mail worker sends nothing there).

use crate::App;
use crate::authz::Authenticated;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::login::{self, LoginOutcome};
use crate::services::step_up;
use crate::services::users::MAX_NAME_CHARS;
use rampart_domain::federation::{self, ExternalIdentity, Provider, TelegramLogin};
use rampart_domain::mfa::Amr;
use rampart_domain::{Action, Actor, Email, Outcome, Resource, SecurityEvent, SessionMode, Severity, User, UserId};
use rampart_store::{LinkOutcome, LinkedIdentity, NewFederatedUser, UnlinkOutcome};
use std::collections::BTreeMap;

/// The Telegram Login Widget's fields as received (`id`, `auth_date` and the rest as text).
pub type TelegramFields = BTreeMap<String, String>;

pub(crate) fn event(
    state: &App,
    ctx: &RequestContext,
    action: Action,
    outcome: Outcome,
    provider: &Provider,
) -> SecurityEvent {
    ctx.event(&state.events, action, outcome).details(serde_json::json!({ "provider": provider.as_str() }))
}

pub(crate) fn with_detail(mut ev: SecurityEvent, key: &str, value: serde_json::Value) -> SecurityEvent {
    if let Some(map) = ev.details.as_object_mut() {
        map.insert(key.to_string(), value);
    }
    ev
}

/// Checks a widget payload against the configured bot and claims it (a payload works once).
/// Refusals are recorded as `action` with the reason.
async fn checked_telegram(
    state: &App,
    ctx: &RequestContext,
    fields: &TelegramFields,
    action: Action,
    actor: Option<UserId>,
) -> Result<TelegramLogin, ServiceError> {
    let Some(telegram) = &state.settings.federation.telegram else {
        return Err(ServiceError::MethodNotAvailable("Telegram sign-in is not configured"));
    };
    let now = state.clock.now();
    let refuse = |reason: &str, outcome: Outcome| {
        let ev = event(state, ctx, action, outcome, &Provider::telegram()).severity(Severity::Warning);
        let ev = with_detail(ev, "reason", reason.into());
        match actor {
            Some(u) => ev.actor(Actor::User(u.0)).resource(Resource::new("user", u)),
            None => ev,
        }
    };
    let login = match federation::verify_telegram_login(fields, telegram.bot_token.expose(), telegram.max_age, now) {
        Ok(login) => login,
        Err(e) => {
            state.events.record(refuse(e.reason(), Outcome::Failure)).await?;
            return Err(ServiceError::InvalidTelegramLogin);
        }
    };
    // Claimed until it would be stale anyway; the second presentation of a payload is refused.
    let until = login.auth_date + telegram.max_age + federation::MAX_CLOCK_SKEW;
    if !state.store.claim_federation_nonce(Provider::TELEGRAM, &login.hash, until, now).await? {
        state.events.record(refuse("replayed", Outcome::Denied)).await?;
        return Err(ServiceError::FederatedLoginReplayed);
    }
    Ok(login)
}

/// `POST /v1/auth/telegram`: a Telegram Login Widget payload signs in the account its
/// Telegram id is linked to (or, with `federation.auto_register`, a new one).
pub async fn telegram_login(
    state: &App,
    ctx: &RequestContext,
    fields: &TelegramFields,
    mode: SessionMode,
) -> Result<LoginOutcome, ServiceError> {
    if state.settings.federation.telegram.is_none() {
        return Err(ServiceError::MethodNotAvailable("Telegram sign-in is not configured"));
    }
    // Throttled per client address like a passkey login: every refusal counts.
    let attempt = crate::services::factors::AddressAttempt::count(state, ctx).await?;
    let login = match checked_telegram(state, ctx, fields, Action::FederatedLogin, None).await {
        Ok(login) => login,
        Err(e) => {
            if matches!(e, ServiceError::InvalidTelegramLogin | ServiceError::FederatedLoginReplayed) {
                crate::services::ip_rules::failed_authentication(state, ctx).await;
            }
            return Err(e);
        }
    };
    attempt.succeeded(state).await?;
    sign_in(state, ctx, &login.identity, mode).await
}

/// An identity a provider vouched for signs in: its linked account, or a new one when
/// `federation.auto_register`; the account's second factor still applies.
pub async fn sign_in(
    state: &App,
    ctx: &RequestContext,
    identity: &ExternalIdentity,
    mode: SessionMode,
) -> Result<LoginOutcome, ServiceError> {
    let provider = &identity.provider;
    let now = state.clock.now();
    let user = match state.store.identity_by_subject(provider.as_str(), &identity.subject).await? {
        Some(linked) => {
            state.store.identity_used(linked.id, identity, now).await?;
            state.store.get_user(linked.user_id).await?.ok_or(ServiceError::InvalidTelegramLogin)?
        }
        None if state.settings.federation.auto_register => register(state, ctx, identity).await?,
        // An address another account has is never taken over by a new account.
        None => {
            let ev = event(state, ctx, Action::FederatedLogin, Outcome::Denied, provider);
            state.events.record(with_detail(ev, "reason", "not_linked".into())).await?;
            return Err(ServiceError::IdentityNotLinked);
        }
    };
    let about = |outcome: Outcome| {
        event(state, ctx, Action::FederatedLogin, outcome, provider)
            .actor(Actor::User(user.id.0))
            .resource(Resource::new("user", user.id))
    };
    if user.disabled {
        state.events.record(with_detail(about(Outcome::Denied), "reason", "account_disabled".into())).await?;
        return Err(ServiceError::AccountDisabled);
    }
    state.events.record(about(Outcome::Success)).await?;
    if let Some(required) = step_up::begin_step_up_after(state, ctx, &user, mode, Amr::Fed).await? {
        return Ok(LoginOutcome::StepUp(required));
    }
    Ok(LoginOutcome::Session(login::start_session(state, ctx, &user, vec![Amr::Fed], mode).await?))
}

/// A new account for an unknown identity (`federation.auto_register`): no password, the
/// provider's name, an address the provider gave or a placeholder that is never mailed.
async fn register(state: &App, ctx: &RequestContext, identity: &ExternalIdentity) -> Result<User, ServiceError> {
    // The provider's address (verified only when the provider says so), else a placeholder
    // under `.invalid` that is never mailed.
    let given = identity.email.as_deref().and_then(|e| Email::parse(e).ok());
    let email_verified = given.is_some() && identity.email_verified;
    let email = match given {
        Some(email) => email,
        None if identity.provider.is_telegram() => {
            Email::parse(&federation::telegram_placeholder_email(&identity.subject)).map_err(ServiceError::internal)?
        }
        None => Email::parse(&federation::placeholder_email(identity.provider.as_str(), &identity.subject))
            .map_err(ServiceError::internal)?,
    };
    let name = identity
        .display_name
        .as_deref()
        .map(|n| n.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    let id = UserId(uuid::Uuid::now_v7());
    let new = NewFederatedUser { id, email, name, email_verified, created_at: state.clock.now() };
    let ev = ctx
        .event(&state.events, Action::UserCreated, Outcome::Success)
        .actor(Actor::User(id.0))
        .resource(Resource::new("user", id))
        .details(serde_json::json!({ "via": identity.provider.as_str(), "provider": identity.provider.as_str(), "roles": ["user"] }));
    let user = match state.store.create_federated_user(&new, identity, &ev).await {
        Ok(user) => user,
        // The same identity signed up concurrently: one account won; sign the identity in to it.
        // The address is another account's (it appeared meanwhile): never taken over.
        Err(rampart_store::StoreError::EmailTaken) if identity.email.is_some() => {
            return Err(ServiceError::FederationLinkRequired);
        }
        Err(rampart_store::StoreError::Conflict(_) | rampart_store::StoreError::EmailTaken) => {
            let linked = state
                .store
                .identity_by_subject(identity.provider.as_str(), &identity.subject)
                .await?
                .ok_or(ServiceError::IdentityNotLinked)?;
            return state.store.get_user(linked.user_id).await?.ok_or(ServiceError::IdentityNotLinked);
        }
        Err(e) => return Err(e.into()),
    };
    state.events.observed(&ev);
    Ok(user)
}

/// `POST /v1/me/identities/telegram`: links the Telegram account of a widget payload to the
/// signed-in user. A link is a new way into the account, so it needs a sign-in within
/// `security.reauth_window_secs` (a stolen, older session cannot add its thief's Telegram).
/// Linking an identity already linked here answers it again; one linked to another account is
/// refused (`identity_taken`).
pub async fn link_telegram(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    fields: &TelegramFields,
) -> Result<LinkedIdentity, ServiceError> {
    if !auth.session.is_recent(state.clock.now(), state.settings.security.reauth_window) {
        return Err(ServiceError::ReauthenticationRequired);
    }
    let login = checked_telegram(state, ctx, fields, Action::IdentityLinked, Some(auth.user_id)).await?;
    link(state, ctx, auth, &login.identity).await
}

/// Links an identity a provider vouched for to the signed-in user.
pub async fn link(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    identity: &ExternalIdentity,
) -> Result<LinkedIdentity, ServiceError> {
    link_to(state, ctx, auth.user_id, identity).await
}

/// Links an identity to the account of a provider's verified e-mail address
/// (`federation.trust_email_for_linking`); the event says so.
pub(crate) async fn link_by_verified_email(
    state: &App,
    ctx: &RequestContext,
    user: UserId,
    identity: &ExternalIdentity,
) -> Result<LinkedIdentity, ServiceError> {
    link_with(state, ctx, user, identity, Some("verified_email")).await
}

/// Links an identity to `user`, who proved to be signed in (a live, recent session).
pub(crate) async fn link_to(
    state: &App,
    ctx: &RequestContext,
    user: UserId,
    identity: &ExternalIdentity,
) -> Result<LinkedIdentity, ServiceError> {
    link_with(state, ctx, user, identity, None).await
}

async fn link_with(
    state: &App,
    ctx: &RequestContext,
    user: UserId,
    identity: &ExternalIdentity,
    via: Option<&str>,
) -> Result<LinkedIdentity, ServiceError> {
    let ev = event(state, ctx, Action::IdentityLinked, Outcome::Success, &identity.provider)
        .actor(Actor::User(user.0))
        .resource(Resource::new("user", user));
    let ev = match via {
        Some(via) => with_detail(ev, "via", via.into()),
        None => ev,
    };
    match state.store.link_identity(user, identity, state.clock.now(), &ev).await? {
        LinkOutcome::Linked(linked) => {
            let ev = with_detail(ev, "identity", linked.id.to_string().into());
            state.events.observed(&ev);
            Ok(linked)
        }
        LinkOutcome::AlreadyLinked(linked) => Ok(linked),
        LinkOutcome::LinkedElsewhere => {
            let refused = event(state, ctx, Action::IdentityLinked, Outcome::Denied, &identity.provider)
                .severity(Severity::Warning)
                .actor(Actor::User(user.0))
                .resource(Resource::new("user", user));
            state.events.record(with_detail(refused, "reason", "identity_taken".into())).await?;
            Err(ServiceError::IdentityTaken)
        }
    }
}

/// `GET /v1/me/identities`: the caller's linked identities, oldest first.
pub async fn list(state: &App, auth: &Authenticated) -> Result<Vec<LinkedIdentity>, ServiceError> {
    Ok(state.store.list_identities(auth.user_id).await?)
}

/// `DELETE /v1/me/identities/{id}`: unlinks one of the caller's identities, unless it is the
/// account's last way in (no password and no other identity: `last_sign_in_method`).
pub async fn unlink(state: &App, ctx: &RequestContext, auth: &Authenticated, id: &str) -> Result<(), ServiceError> {
    let Ok(id) = uuid::Uuid::parse_str(id) else { return Err(ServiceError::NotFound) };
    let user = auth.user_id;
    let Some(linked) = state.store.list_identities(user).await?.into_iter().find(|i| i.id == id) else {
        return Err(ServiceError::NotFound);
    };
    let ev = ctx
        .event(&state.events, Action::IdentityUnlinked, Outcome::Success)
        .actor(Actor::User(user.0))
        .resource(Resource::new("user", user))
        .details(serde_json::json!({ "provider": linked.provider, "identity": id.to_string() }));
    match state.store.unlink_identity(user, id, &ev).await? {
        UnlinkOutcome::Unlinked => {
            state.events.observed(&ev);
            Ok(())
        }
        UnlinkOutcome::NotFound => Err(ServiceError::NotFound),
        UnlinkOutcome::LastWayIn => Err(ServiceError::LastSignInMethod),
    }
}

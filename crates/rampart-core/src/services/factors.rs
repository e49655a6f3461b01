//! What every second-factor change and check shares: re-authentication, the factor's
//! events and notices, the sessions a change ends, the throttle keys and failure records.

use crate::App;
use crate::authz::Authenticated;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use rampart_domain::ThrottleKey;
use rampart_domain::mfa::Factor;
use rampart_domain::{Action, Actor, Outcome, Resource, SecurityEvent, Severity, ThrottlePolicy, User, UserId};
use rampart_store::RevokeSessions;

/// Re-authentication before a factor changes: the password, through the one throttled check.
pub async fn reauthenticate(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    password: &str,
) -> Result<User, ServiceError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    match crate::services::login::check_password(state, ctx, user.email.as_str(), password, "mfa_reauth").await {
        Ok(user) => Ok(user),
        Err(ServiceError::InvalidCredentials) => Err(ServiceError::Validation(vec![FieldProblem::new(
            "password",
            "password_incorrect",
            "the password is not right",
        )])),
        Err(e) => Err(e),
    }
}

pub(crate) fn factor_event(state: &App, ctx: &RequestContext, user: UserId, action: Action) -> SecurityEvent {
    ctx.event(&state.events, action, Outcome::Success).actor(Actor::User(user.0)).resource(Resource::new("user", user))
}

pub(crate) fn revoke_choice(state: &App, auth: &Authenticated) -> RevokeSessions {
    if state.settings.mfa.revoke_other_sessions_on_change {
        RevokeSessions::AllExcept(auth.session.id)
    } else {
        RevokeSessions::None
    }
}

/// Tells the account's owner that a factor was added or removed (a stolen session adding its
/// own authenticator is then noticed).
pub(crate) fn notify(state: &App, user: &User, what: &str) {
    state.mailer.enqueue(OutgoingMail {
        to: user.email.to_string(),
        subject: format!("Security notice: {what}"),
        text: format!(
            "{what} on your account ({}).\n\nIf this was you, nothing else is needed. If not, reset your password \
             at once and review your sessions and second factors.",
            user.email
        ),
    });
}

pub(crate) async fn record_failure(
    state: &App,
    ctx: &RequestContext,
    user: Option<UserId>,
    factor: Factor,
    reason: &str,
    via: &str,
) -> Result<(), ServiceError> {
    let mut ev = ctx
        .event(&state.events, Action::MfaFailed, Outcome::Failure)
        .severity(Severity::Warning)
        .details(serde_json::json!({ "method": factor.as_str(), "reason": reason, "via": via }));
    if let Some(user) = user {
        ev = ev.resource(Resource::new("user", user));
    }
    state.events.record(ev).await?;
    Ok(())
}

/// The throttle keys of a user's second-factor attempts: the same as their password's (the
/// client address, then the identifier), so both kinds of failure count toward one lockout.
pub(crate) fn throttle_keys(state: &App, ctx: &RequestContext, email: &str) -> Vec<(ThrottleKey, ThrottlePolicy)> {
    let (id_policy, ip_policy) = state.throttle_policies();
    let mut keys = Vec::with_capacity(2);
    if let Some((ip, policy)) = ctx.ip.zip(ip_policy) {
        keys.push((ThrottleKey::address(ip), policy));
    }
    keys.push((state.auth.identifier_key(email), id_policy));
    keys
}

//! Sessions: logging out and revoking one's own or a user's sessions.

use crate::App;
use crate::authz::Authenticated;
use crate::error::ServiceError;
use crate::events::RequestContext;
use rampart_domain::{Action, Actor, Outcome, Resource, Session, SessionId, User, UserId};
use rampart_store::MfaStatus;
use rampart_store::RevokeSessions;

/// Ends the caller's session.
pub async fn logout(state: &App, ctx: &RequestContext, auth: &Authenticated) -> Result<(), ServiceError> {
    let ev = ctx
        .event(&state.events, Action::Logout, Outcome::Success)
        .actor(Actor::User(auth.user_id.0))
        .resource(Resource::new("session", auth.session.id));
    if state.store.revoke_session(auth.user_id, auth.session.id, state.clock.now(), "logout", &ev).await? {
        state.events.observed(&ev);
    }
    Ok(())
}

/// Revokes sessions of `user` and records `session.revoked`.
pub async fn revoke_sessions(
    state: &App,
    ctx: &RequestContext,
    actor: Actor,
    user: UserId,
    which: RevokeSessions,
    reason: &'static str,
) -> Result<u64, ServiceError> {
    let ev = ctx
        .event(&state.events, Action::SessionRevoked, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("user", user))
        .details(serde_json::json!({ "reason": reason, "scope": match which {
            RevokeSessions::All => "all",
            RevokeSessions::AllExcept(_) => "all_but_current",
            RevokeSessions::None => "none",
        } }));
    let n = state.store.revoke_sessions(user, which, state.clock.now(), reason, &ev).await?;
    state.events.observed(&ev);
    Ok(n)
}

/// The caller's account with its second factors (`GET /v1/me`), from the account cache.
pub async fn account(state: &App, auth: &Authenticated) -> Result<(User, MfaStatus), ServiceError> {
    state.store.account(auth.user_id).await?.ok_or(ServiceError::InvalidToken)
}

/// The caller's live sessions, newest first.
pub async fn list(state: &App, auth: &Authenticated) -> Result<Vec<Session>, ServiceError> {
    Ok(state.store.list_sessions(auth.user_id, state.clock.now()).await?)
}

/// Ends one of the caller's own sessions; `not_found` for another user's or an ended one.
pub async fn revoke_own(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    id: SessionId,
) -> Result<(), ServiceError> {
    let ev = ctx
        .event(&state.events, Action::SessionRevoked, Outcome::Success)
        .actor(Actor::User(auth.user_id.0))
        .resource(Resource::new("session", id))
        .details(serde_json::json!({ "reason": "user", "scope": "one" }));
    if state.store.revoke_session(auth.user_id, id, state.clock.now(), "user", &ev).await? {
        state.events.observed(&ev);
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// "Log out everywhere": ends every session of the caller, optionally but this one.
pub async fn revoke_all_own(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    keep_current: bool,
) -> Result<u64, ServiceError> {
    let which = if keep_current { RevokeSessions::AllExcept(auth.session.id) } else { RevokeSessions::All };
    revoke_sessions(state, ctx, Actor::User(auth.user_id.0), auth.user_id, which, "user").await
}

//! Token introspection for backends (RFC 7662): whether a refresh or access token is live now,
//! judged by its session and its owner as they are now, not as they were at issue.

use crate::App;
use crate::authz::Caller;
use crate::error::ServiceError;
use crate::events::RequestContext;
use rampart_domain::opaque::looks_like;
use rampart_domain::tokens::AccessClaims;
use rampart_domain::{Session, SessionId, TokenHash, TokenKind, User, UserId};

/// What an introspected token is.
#[derive(Debug, Clone)]
pub enum Introspected {
    /// Unknown, expired, revoked, or its owner is disabled: nothing more is said.
    Inactive,
    /// A live refresh token, its session, and what its owner's roles grant now.
    Refresh { session: Session, permissions: Vec<String> },
    /// A live access token: its claims, its owner with the roles in force now, and what those
    /// roles grant (RFC 7662's `scope`).
    Access { claims: AccessClaims, user: User, permissions: Vec<String> },
}

/// Introspects `token` for a caller holding `tokens:introspect` (a refusal is recorded).
pub async fn introspect(
    state: &App,
    ctx: &RequestContext,
    caller: &Caller,
    token: &str,
) -> Result<Introspected, ServiceError> {
    caller.require_recorded(state, ctx, "tokens:introspect").await?;
    let now = state.clock.now();
    if looks_like(TokenKind::Refresh, token) {
        return Ok(match state.store.refresh_token_session(TokenHash::of(token)).await? {
            Some(session) if session.is_active(now) => {
                let permissions = state.store.user_permissions(session.user_id).await?;
                Introspected::Refresh { session, permissions }
            }
            _ => Introspected::Inactive,
        });
    }
    let Ok(claims) = state.signing.verify(token).await else { return Ok(Introspected::Inactive) };
    let live = match claims.sid.parse().map(SessionId) {
        Ok(sid) => state.store.get_session(sid).await?.is_some_and(|s| s.is_active(now)),
        Err(_) => false,
    };
    // The roles in force now, not the ones the token was issued with.
    let user = match claims.sub.parse().map(UserId) {
        Ok(id) if live => state.store.get_user(id).await?.filter(|u| !u.disabled),
        _ => None,
    };
    Ok(match user {
        Some(user) => {
            let permissions = state.store.user_permissions(user.id).await?;
            Introspected::Access { claims, user, permissions }
        }
        None => Introspected::Inactive,
    })
}

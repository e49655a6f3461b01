//! Passwords: the policy and history checks for new passwords, change, forgotten-password
//! e-mails and reset, and the administrator's unlock.

use crate::App;
use crate::authz::Authenticated;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use crate::services::login::check_password;
use rampart_domain::opaque::looks_like;
use rampart_domain::{
    Action, Actor, EmailLookup, OpaqueToken, Outcome, Password, PasswordContext, Resource, SecurityEvent, TokenHash,
    TokenKind, User, UserId,
};
use rampart_store::{RevokeSessions, StoreError, TokenPurpose};
use time::Duration;

/// At most one password-reset e-mail per account this often.
pub(crate) const RESET_MAIL_INTERVAL: Duration = Duration::seconds(60);

/// Checks a new password against the policy for the account with this address and name (an
/// attacker's first guesses), reporting every broken rule under `field_name` (400
/// `validation_failed`). With the strength estimate on (`passwords.min_strength`), the check
/// runs on the hashing threads, not the async runtime: it costs up to a few milliseconds for a
/// long password, tens on the first call (bench: `password_strength` in the server's benches),
/// and the threads' bounded queue caps how many an anonymous flood can ask for.
pub async fn validate_new_password(
    state: &App,
    candidate: &str,
    email: Option<&str>,
    name: Option<&str>,
    field_name: &'static str,
) -> Result<Password, ServiceError> {
    let policy = state.password_policy();
    let candidate = candidate.to_string();
    let checked = if policy.min_strength == 0 {
        Password::parse_with(candidate, &policy, &PasswordContext { email, name })
    } else {
        let (email, name) = (email.map(str::to_string), name.map(str::to_string));
        state
            .hashing
            .run(move |_| {
                Password::parse_with(
                    candidate,
                    &policy,
                    &PasswordContext { email: email.as_deref(), name: name.as_deref() },
                )
            })
            .await?
    };
    checked.map_err(|violations| {
        ServiceError::Validation(
            violations.iter().map(|v| FieldProblem::new(field_name, v.code(), v.to_string())).collect(),
        )
    })
}

/// Refuses a password among the account's last `passwords.history` ones (400
/// `validation_failed`, code `password_reused`).
pub async fn check_history(
    state: &App,
    user: UserId,
    password: &Password,
    field_name: &str,
) -> Result<(), ServiceError> {
    let n = state.settings.passwords.history;
    if n == 0 {
        return Ok(());
    }
    let hashes = state.store.recent_password_hashes(user, n).await?;
    let candidate = rampart_domain::Secret::new(password.expose().to_string());
    let reused = state
        .hashing
        .run(move |h| hashes.iter().any(|phc| h.verify(candidate.expose(), phc)))
        .await
        .map_err(ServiceError::from)?;
    if reused {
        let v = rampart_domain::password::PasswordViolation::Reused(n);
        return Err(ServiceError::Validation(vec![FieldProblem::new(field_name, v.code(), v.to_string())]));
    }
    Ok(())
}

/// Starts a password reset. Answers at once, the same for every address: the lookup, the
/// token and the e-mail happen in the background, so neither the answer nor its timing says
/// whether the account exists. An e-mail goes out only for an existing, enabled account, at
/// most once a minute.
pub fn forgot_password(state: &App, ctx: &RequestContext, submitted: &str) {
    let (state, ctx, submitted) = (state.clone(), ctx.clone(), submitted.to_string());
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &ctx, &submitted).await {
            tracing::warn!(error = %e, "password reset request failed");
        }
    });
}

async fn send_reset(state: &App, ctx: &RequestContext, submitted: &str) -> Result<(), ServiceError> {
    let now = state.clock.now();
    let user = match EmailLookup::parse(submitted) {
        Ok(email) => state.store.find_user_by_email(email).await?.filter(|u| !u.disabled),
        Err(_) => None,
    };
    let Some(user) = user else {
        let ev = ctx
            .event(&state.events, Action::PasswordResetRequested, Outcome::Failure)
            .details(serde_json::json!({ "reason": "unknown_account" }));
        state.events.record(ev).await?;
        return Ok(());
    };
    let recent = state.store.last_account_token_at(user.id, TokenPurpose::ResetPassword).await?;
    if recent.is_some_and(|t| now - t < RESET_MAIL_INTERVAL) {
        let ev = ctx
            .event(&state.events, Action::PasswordResetRequested, Outcome::Denied)
            .resource(Resource::new("user", user.id))
            .details(serde_json::json!({ "reason": "too_soon" }));
        state.events.record(ev).await?;
        return Ok(());
    }
    let ttl = state.settings.accounts.reset_ttl;
    let minutes = ttl.whole_minutes();
    let token = OpaqueToken::generate(TokenKind::ResetPassword, &mut rand::rngs::OsRng);
    let ev = ctx
        .event(&state.events, Action::PasswordResetRequested, Outcome::Success)
        .resource(Resource::new("user", user.id));
    let expires = now + ttl;
    state
        .store
        .create_account_token(
            token.hash(),
            TokenPurpose::ResetPassword,
            user.id,
            user.email.as_str(),
            now,
            expires,
            Some(&ev),
        )
        .await?;
    state.events.observed(&ev);
    let link = state.settings.accounts.reset_password_link(token.expose());
    let keys = if state.settings.api_keys.revoke_on_password_reset {
        "\n\nSetting a new password also revokes this account's API keys."
    } else {
        ""
    };
    super::notifications::queue(
        state,
        OutgoingMail {
            to: user.email.to_string(),
            subject: "Reset your password".into(),
            text: format!(
                "Someone asked to reset the password of this account. To choose a new password, open the link \
                 below (it works once, for {minutes} minutes):\n\n{link}\n\n\
                 If it was not you, ignore this message: your password stays as it is.{keys}"
            ),
            html: None,
        },
        Some(user.id),
    );
    Ok(())
}

/// Sets a new password with a reset (or expired-password) token. Every session ends; a second
/// factor, when the account has one, is still asked at the next login.
pub async fn reset_password(
    state: &App,
    ctx: &RequestContext,
    token: &str,
    new_password: &str,
) -> Result<(), ServiceError> {
    if !looks_like(TokenKind::ResetPassword, token) {
        return Err(ServiceError::InvalidAccountToken);
    }
    let now = state.clock.now();
    let hash = TokenHash::of(token);
    let found = state.store.find_account_token(hash, now).await?;
    let Some(found) =
        found.filter(|t| matches!(t.purpose, TokenPurpose::ResetPassword | TokenPurpose::ExpiredPassword))
    else {
        return Err(ServiceError::InvalidAccountToken);
    };
    let user = state.store.get_user(found.user_id).await?.ok_or(ServiceError::InvalidAccountToken)?;
    let password =
        validate_new_password(state, new_password, Some(user.email.as_str()), user.name.as_deref(), "new_password")
            .await?;
    check_history(state, user.id, &password, "new_password").await?;
    let phc = state.hashing.hash(password).await?;
    let via = match found.purpose {
        TokenPurpose::ExpiredPassword => "expired_password",
        _ => "email",
    };
    let ev = ctx
        .event(&state.events, Action::PasswordReset, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "via": via, "sessions_revoked": "all" }));
    let id_key = state.auth.identifier_key(user.email.as_str()).storage_key();
    match state.store.complete_password_reset(hash, user.id, &phc, now, &id_key, &ev).await {
        Ok(_) => {
            state.events.observed(&ev);
            // A key minted with a stolen session must not outlive the owner taking the account back.
            if state.settings.api_keys.revoke_on_password_reset {
                crate::services::api_keys::revoke_all(state, ctx, user.id).await?;
            }
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Err(ServiceError::InvalidAccountToken),
        Err(e) => Err(e.into()),
    }
}

/// Changes the caller's password after re-checking the current one (through the throttled
/// password check). Other sessions end unless asked to keep them.
pub async fn change_password(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    current: &str,
    new_password: &str,
    keep_other_sessions: bool,
) -> Result<(), ServiceError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    let password =
        validate_new_password(state, new_password, Some(user.email.as_str()), user.name.as_deref(), "new_password")
            .await?;
    match check_password(state, ctx, user.email.as_str(), current, "password_change").await {
        Ok(_) => {}
        Err(ServiceError::InvalidCredentials) => {
            return Err(ServiceError::Validation(vec![FieldProblem::new(
                "current_password",
                "password_incorrect",
                "the current password is not right",
            )]));
        }
        Err(e) => return Err(e),
    }
    check_history(state, user.id, &password, "new_password").await?;
    let phc = state.hashing.hash(password).await?;
    let which = if keep_other_sessions { RevokeSessions::None } else { RevokeSessions::AllExcept(auth.session.id) };
    let ev = ctx
        .event(&state.events, Action::PasswordChanged, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "other_sessions_revoked": !keep_other_sessions }));
    state.store.set_password(user.id, &phc, state.clock.now(), which, &ev).await?;
    state.events.observed(&ev);
    Ok(())
}

/// Lifts the lockout of a user's identifier (the administrator's unlock).
pub async fn unlock(state: &App, ctx: &RequestContext, actor: Actor, user: &User) -> Result<(), ServiceError> {
    let cleared = state.store.throttle_clear(&state.auth.identifier_key(user.email.as_str()).storage_key()).await?;
    let ev: SecurityEvent = ctx
        .event(&state.events, Action::LoginUnlocked, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "had_failures": cleared }));
    state.events.record(ev).await?;
    Ok(())
}

//! Registration and e-mail verification, with the pacing of the mails an anonymous request
//! can trigger.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::mail::OutgoingMail;
use rampart_domain::opaque::looks_like;
use rampart_domain::{Action, Actor, OpaqueToken, Outcome, Resource, TokenHash, TokenKind, User};
use rampart_store::TokenPurpose;

/// Registers an account. With verification on, a taken address is not revealed: the caller
/// gets the same answer and the owner of the address gets a notice instead.
pub async fn register(
    state: &App,
    ctx: &RequestContext,
    email: String,
    password: String,
    name: Option<String>,
) -> Result<Option<User>, ServiceError> {
    if !state.settings.accounts.registration {
        return Err(ServiceError::RegistrationClosed);
    }
    let input = crate::services::users::CreateUser {
        email: email.clone(),
        password: rampart_domain::Secret::new(password),
        name,
        roles: Vec::new(),
    };
    let verify = state.settings.accounts.verify_email;
    match crate::services::users::create_user(state, input, Actor::Anonymous, "register").await {
        Ok(user) => {
            if verify {
                send_verification(state, ctx, &user).await?;
            }
            Ok(Some(user))
        }
        Err(ServiceError::EmailTaken) if verify => {
            let ev = ctx
                .event(&state.events, Action::UserCreated, Outcome::Failure)
                .details(serde_json::json!({ "via": "register", "reason": "email_taken" }));
            state.events.record(ev).await?;
            // The address as the account has it: every spelling of it paces (and is mailed) as one.
            let Ok(owner) = rampart_domain::Email::parse(&email) else { return Ok(None) };
            if !state.mail_pacing.allow(owner.as_str(), std::time::Instant::now()) {
                return Ok(None);
            }
            super::notifications::queue(
                state,
                OutgoingMail {
                    to: owner.to_string(),
                    subject: "Someone tried to register with your address".into(),
                    text: "Someone tried to create an account with this e-mail address, which already has one.\n\n\
                           If it was you, sign in or reset your password instead. If not, you can ignore this message."
                        .into(),
                    html: None,
                },
                None,
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sends a verification e-mail with a single-use link.
pub async fn send_verification(state: &App, ctx: &RequestContext, user: &User) -> Result<(), ServiceError> {
    let now = state.clock.now();
    let ttl = state.settings.accounts.verification_ttl;
    let ttl_hours = ttl.whole_hours();
    let token = OpaqueToken::generate(TokenKind::VerifyEmail, &mut rand::rngs::OsRng);
    let ev = ctx
        .event(&state.events, Action::EmailVerificationSent, Outcome::Success)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id));
    let expires = now + ttl;
    state
        .store
        .create_account_token(
            token.hash(),
            TokenPurpose::VerifyEmail,
            user.id,
            user.email.as_str(),
            now,
            expires,
            Some(&ev),
        )
        .await?;
    state.events.observed(&ev);
    let link = state.settings.accounts.verify_email_link(token.expose());
    super::notifications::queue(
        state,
        OutgoingMail {
            to: user.email.to_string(),
            subject: "Confirm your e-mail address".into(),
            text: format!(
                "Confirm this e-mail address by opening the link below (it works once, for {ttl_hours} hours):\n\n{link}\n\n\
                 If you did not create an account, ignore this message."
            ),
            html: None,
        },
        Some(user.id),
    );
    Ok(())
}

/// Uses a verification token.
pub async fn verify_email(state: &App, ctx: &RequestContext, token: &str) -> Result<(), ServiceError> {
    if !looks_like(TokenKind::VerifyEmail, token) {
        return Err(ServiceError::InvalidAccountToken);
    }
    let verified = state
        .store
        .verify_email(TokenHash::of(token), state.clock.now(), |user| {
            ctx.event(&state.events, Action::EmailVerified, Outcome::Success)
                .actor(Actor::User(user.0))
                .resource(Resource::new("user", user))
        })
        .await?;
    match verified {
        Some((_, ev)) => {
            state.events.observed(&ev);
            Ok(())
        }
        None => Err(ServiceError::InvalidAccountToken),
    }
}

/// Paces e-mails that an anonymous request can trigger to one address (the "someone tried to
/// register" notice), so nobody can mail-bomb an address or flood the queue. Per instance, in
/// memory, bounded.
#[derive(Debug, Default)]
pub struct MailPacing {
    last: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How often one address may get a paced e-mail.
pub const PACED_MAIL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

const PACING_MAX_ENTRIES: usize = 10_000;

impl MailPacing {
    /// Whether `address` may get a mail now; if so, remembers that it did.
    pub fn allow(&self, address: &str, now: std::time::Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(address).is_some_and(|t| now.duration_since(*t) < PACED_MAIL_INTERVAL) {
            return false;
        }
        if last.len() >= PACING_MAX_ENTRIES {
            last.retain(|_, t| now.duration_since(*t) < PACED_MAIL_INTERVAL);
            if last.len() >= PACING_MAX_ENTRIES {
                return false; // under a flood, refuse rather than grow
            }
        }
        last.insert(address.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_mail_goes_out_once_per_interval_per_address() {
        let p = MailPacing::default();
        let t0 = std::time::Instant::now();
        assert!(p.allow("a@example.com", t0));
        assert!(!p.allow("a@example.com", t0 + std::time::Duration::from_secs(599)));
        assert!(p.allow("b@example.com", t0));
        assert!(p.allow("a@example.com", t0 + PACED_MAIL_INTERVAL));
    }
}

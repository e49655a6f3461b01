//! What every second-factor change and check shares: the re-authentication before a change,
//! the checks of a one-time code (authenticator code, backup code), the throttle every
//! second-factor attempt counts toward, the factor's events and notices, the sessions a change
//! ends.
//!
//! Rules that live here (ASVS 6.x / 7.5.1): changing a second factor (TOTP set-up and removal,
//! new backup codes, registering or removing a WebAuthn authenticator) needs the password, and,
//! once the account has a second factor, a current one too: a `code` (an authenticator code, or
//! a backup code, which is then spent), or a session opened with two factors within
//! `security.reauth_window_secs`. Someone holding a session and the password alone cannot swap
//! the factors. Every second-factor attempt is counted toward the login throttle before it is
//! checked, exactly like a password attempt, so wrong codes lock the account as wrong
//! passwords do.

use crate::App;
use crate::authz::Authenticated;
use crate::error::{FieldProblem, ServiceError};
use crate::events::RequestContext;
use rampart_domain::mfa::{self, Factor};
use rampart_domain::otp::{Totp, TotpSecret};
use rampart_domain::{
    Action, Actor, Outcome, Resource, SecurityEvent, Severity, ThrottleKey, ThrottlePolicy, User, UserId,
};
use rampart_store::{AttemptDecision, RevokeSessions};

/// What a caller presents to change a second factor. `Debug` prints neither secret.
#[derive(Clone, Copy)]
pub struct Reauth<'a> {
    /// The account's password: always needed.
    pub password: &'a str,
    /// A current second factor: a code of the enabled authenticator app (TOTP), or an unused
    /// backup code (spent by this). Needed when the account has a second factor, unless the
    /// session was opened with two factors within the re-authentication window.
    pub code: Option<&'a str>,
}

impl std::fmt::Debug for Reauth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauth")
            .field("password", &"[redacted]")
            .field("code", &self.code.map(|_| "[redacted]"))
            .finish()
    }
}

/// Re-authentication before a factor changes: the password, through the one throttled check;
/// then, if the account already has a second factor, a current one ([`Reauth::code`], checked
/// and counted like a step-up answer) or a session opened with two factors within
/// `security.reauth_window_secs`. Without either: `second_factor_required`. A `code` sent is
/// always checked (a wrong one is refused even in a fresh session).
pub async fn reauthenticate(
    state: &App,
    ctx: &RequestContext,
    auth: &Authenticated,
    reauth: Reauth<'_>,
) -> Result<User, ServiceError> {
    let user = state.store.get_user(auth.user_id).await?.ok_or(ServiceError::InvalidToken)?;
    let user =
        match crate::services::login::check_password(state, ctx, user.email.as_str(), reauth.password, "mfa_reauth")
            .await
        {
            Ok(user) => user,
            Err(ServiceError::InvalidCredentials) => {
                return Err(ServiceError::field("password", "password_incorrect", "the password is not right"));
            }
            Err(e) => return Err(e),
        };
    if !state.store.mfa_status(user.id).await?.any() {
        // The first factor: the password is all the account has.
        return Ok(user);
    }
    if let Some(code) = reauth.code {
        check_current_factor(state, ctx, &user, code).await?;
        return Ok(user);
    }
    if auth.session.is_recent_multi_factor(state.clock.now(), state.settings.security.reauth_window) {
        return Ok(user);
    }
    let ev = ctx
        .event(&state.events, Action::MfaFailed, Outcome::Denied)
        .severity(Severity::Warning)
        .actor(Actor::User(user.id.0))
        .resource(Resource::new("user", user.id))
        .details(serde_json::json!({ "reason": "second_factor_required", "via": "reauth" }));
    state.events.record(ev).await?;
    Err(ServiceError::SecondFactorRequired)
}

/// A code presented to re-authenticate: a backup code when it has a backup code's shape (then
/// spent), else an authenticator code. Counted toward the login throttle before the check; a
/// right one completes the re-authentication as a right step-up completes a login.
async fn check_current_factor(state: &App, ctx: &RequestContext, user: &User, code: &str) -> Result<(), ServiceError> {
    const VIA: &str = "reauth";
    let factor = if mfa::normalize_backup_code(code).is_some() { Factor::BackupCode } else { Factor::Totp };
    let attempt = count_attempt(state, ctx, user, factor, VIA).await?;
    let checked = match factor {
        Factor::BackupCode => check_backup_code(state, ctx, user, code, VIA).await?,
        _ => check_totp(state, ctx, user, code, VIA).await?,
    };
    match checked {
        Ok(()) => attempt.signed_in(state).await,
        Err(reason) => {
            attempt.failed(state, ctx, reason).await?;
            Err(invalid_code("code"))
        }
    }
}

/// The refusal of a wrong, expired or replayed code in `field`.
pub(crate) fn invalid_code(field: &str) -> ServiceError {
    ServiceError::Validation(vec![FieldProblem::new(
        field,
        "invalid_code",
        "the code is wrong, expired or was used before",
    )])
}

/// A sign-in attempt that names no account up front (a passkey, a federated sign-in), counted
/// against the client address before it is checked; a right one is taken back
/// ([`AddressAttempt::succeeded`]), a wrong one stays counted.
pub(crate) struct AddressAttempt {
    key: Option<(String, ThrottlePolicy)>,
    locks: Vec<bool>,
    now: time::OffsetDateTime,
}

impl AddressAttempt {
    /// Counts the attempt; refuses with `too_many_attempts` while the address owes a delay.
    pub(crate) async fn count(state: &App, ctx: &RequestContext) -> Result<AddressAttempt, ServiceError> {
        let now = state.clock.now();
        let (_, ip_policy) = state.throttle_policies();
        let key = ctx.ip.zip(ip_policy).map(|(ip, p)| (ThrottleKey::address(ip).storage_key(), p));
        let keys: Vec<(&str, ThrottlePolicy)> = key.iter().map(|(k, p)| (k.as_str(), *p)).collect();
        match state.store.throttle_attempt(&keys, now).await? {
            AttemptDecision::Counted(locks) => Ok(AddressAttempt { key, locks, now }),
            AttemptDecision::Refused { retry_after, .. } => {
                let secs = u64::try_from(retry_after.whole_seconds()).unwrap_or(0) + 1;
                Err(ServiceError::TooManyAttempts { retry_after_secs: secs })
            }
        }
    }

    /// The attempt was right: it no longer counts.
    pub(crate) async fn succeeded(self, state: &App) -> Result<(), ServiceError> {
        let uncount: Vec<(&str, ThrottlePolicy, bool)> =
            self.key.iter().zip(&self.locks).map(|((k, p), l)| (k.as_str(), *p, *l)).collect();
        state.store.throttle_succeeded(&[], &uncount, self.now).await?;
        Ok(())
    }
}

/// One second-factor attempt, counted toward the login throttle (the client address, then the
/// account) before its answer is checked, as a password attempt is. A wrong answer leaves it
/// counted ([`Attempt::failed`]); a right one takes it back.
pub(crate) struct Attempt {
    keys: Vec<(ThrottleKey, ThrottlePolicy)>,
    stored: Vec<String>,
    locks: Vec<bool>,
    user: UserId,
    factor: Factor,
    via: &'static str,
}

/// Counts an attempt at `user`'s second factor; refuses with `too_many_attempts` (recording
/// `mfa.failed`, denied) while the address or the account is locked or owes a delay. `via`
/// names the path in events.
pub(crate) async fn count_attempt(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    factor: Factor,
    via: &'static str,
) -> Result<Attempt, ServiceError> {
    let keys = throttle_keys(state, ctx, user.email.as_str());
    let stored: Vec<String> = keys.iter().map(|(k, _)| k.storage_key()).collect();
    let refs: Vec<(&str, ThrottlePolicy)> = stored.iter().zip(&keys).map(|(s, (_, p))| (s.as_str(), *p)).collect();
    match state.store.throttle_attempt(&refs, state.clock.now()).await? {
        AttemptDecision::Counted(locks) => Ok(Attempt { keys, stored, locks, user: user.id, factor, via }),
        AttemptDecision::Refused { retry_after, locked } => {
            let ev = ctx
                .event(&state.events, Action::MfaFailed, Outcome::Denied)
                .severity(Severity::Warning)
                .resource(Resource::new("user", user.id))
                .details(serde_json::json!({
                    "method": factor.as_str(),
                    "reason": if locked { "locked" } else { "throttled" },
                    "via": via,
                }));
            state.events.record(ev).await?;
            let secs = u64::try_from(retry_after.whole_seconds()).unwrap_or(0) + 1;
            Err(ServiceError::TooManyAttempts { retry_after_secs: secs })
        }
    }
}

impl Attempt {
    /// A wrong answer: the attempt stays counted; the lock it caused (if any) and the failure
    /// (`mfa.failed` with `reason`) are recorded.
    pub(crate) async fn failed(&self, state: &App, ctx: &RequestContext, reason: &str) -> Result<(), ServiceError> {
        for (((key, _), stored), locked) in self.keys.iter().zip(&self.stored).zip(&self.locks) {
            if *locked {
                if let ThrottleKey::Identifier(_) = key {
                    state.store.throttle_lock_owner(stored, self.user).await?;
                }
                let ev = ctx
                    .event(&state.events, Action::LoginLocked, Outcome::Denied)
                    .severity(Severity::Warning)
                    .resource(Resource::new("user", self.user))
                    .details(serde_json::json!({
                        "key": key.kind(),
                        "lockout_secs": state.settings.login.identifier.lockout.whole_seconds(),
                        "via": format!("{}_mfa", self.via),
                    }));
                state.events.record(ev).await?;
            }
        }
        record_failure(state, ctx, Some(self.user), self.factor, reason, self.via).await
    }

    /// A right answer that completes a sign-in or a re-authentication (the password was right
    /// too): the account's count is cleared and the address's attempt taken back, as for a
    /// completed login.
    pub(crate) async fn signed_in(self, state: &App) -> Result<(), ServiceError> {
        let mut clear = Vec::new();
        let mut uncount = Vec::new();
        for (((key, policy), stored), locked) in self.keys.iter().zip(&self.stored).zip(&self.locks) {
            match key {
                ThrottleKey::Identifier(_) => clear.push(stored.as_str()),
                ThrottleKey::Address(_) => uncount.push((stored.as_str(), *policy, *locked)),
            }
        }
        state.store.throttle_succeeded(&clear, &uncount, state.clock.now()).await?;
        Ok(())
    }

    /// A right answer that proves nothing about who is asking (the first code of an
    /// authenticator being set up): only this attempt is taken back; earlier failures stay.
    pub(crate) async fn taken_back(self, state: &App) -> Result<(), ServiceError> {
        let uncount: Vec<(&str, ThrottlePolicy, bool)> =
            self.keys.iter().zip(&self.stored).zip(&self.locks).map(|(((_, p), s), l)| (s.as_str(), *p, *l)).collect();
        state.store.throttle_succeeded(&[], &uncount, state.clock.now()).await?;
        Ok(())
    }
}

/// The throttle keys of a user's second-factor attempts: the same as their password's (the
/// client address, then the identifier), so both kinds of failure count toward one lockout.
fn throttle_keys(state: &App, ctx: &RequestContext, email: &str) -> Vec<(ThrottleKey, ThrottlePolicy)> {
    let (id_policy, ip_policy) = state.throttle_policies();
    let mut keys = Vec::with_capacity(2);
    if let Some((ip, policy)) = ctx.ip.zip(ip_policy) {
        keys.push((ThrottleKey::address(ip), policy));
    }
    keys.push((state.auth.identifier_key(email), id_policy));
    keys
}

/// The TOTP parameters every authenticator app supports (SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp() -> Totp {
    Totp::default()
}

/// The associated data a user's TOTP secret is sealed with: a sealed secret copied into another
/// user's row does not open.
fn totp_aad(user: UserId) -> Vec<u8> {
    rampart_store::sealed::aad::totp(user.0)
}

/// `secret` sealed under the master key, for `user`'s row only.
pub(crate) fn seal_secret(state: &App, user: UserId, secret: &TotpSecret) -> String {
    state.master_key.seal(secret.expose(), &totp_aad(user), &mut rand::rngs::OsRng)
}

/// The secret of `user`'s sealed row.
pub(crate) fn open_secret(state: &App, user: UserId, sealed: &str) -> Result<TotpSecret, ServiceError> {
    state.master_key.open(sealed, &totp_aad(user)).map(TotpSecret::from_bytes).map_err(ServiceError::internal)
}

/// The key backup codes are hashed with.
pub(crate) fn backup_key(state: &App) -> zeroize::Zeroizing<[u8; 32]> {
    state.codes.backup_codes.clone()
}

/// The clock's time in Unix seconds, for TOTP steps.
pub(crate) fn unix(state: &App) -> i64 {
    state.clock.now().unix_timestamp()
}

pub(crate) fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// An authenticator code of `user`'s enabled TOTP: right, and of a later step than the last one
/// accepted (which it becomes, with `mfa.totp.used`; compare-and-swap in the store).
/// `Ok(Err(reason))` for a refused code; `via` names the path in the event.
pub(crate) async fn check_totp(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    code: &str,
    via: &str,
) -> Result<Result<(), &'static str>, ServiceError> {
    let Some(stored) = state.store.totp(user.id).await?.filter(|t| t.enabled) else {
        return Ok(Err("method_not_enabled"));
    };
    let secret = open_secret(state, user.id, &stored.sealed_secret)?;
    let Some(step) = totp().verify(secret.expose(), code, unix(state)) else {
        return Ok(Err("wrong_code"));
    };
    let ev = factor_event(state, ctx, user.id, Action::MfaTotpUsed).details(serde_json::json!({ "via": via }));
    if state.store.use_totp_step(user.id, step_i64(step), &ev).await? {
        state.events.observed(&ev);
        Ok(Ok(()))
    } else {
        Ok(Err("replayed_code"))
    }
}

/// One of `user`'s unused backup codes, spent once (with `mfa.backup_code.used`; the owner is
/// told when few remain). `Ok(Err(reason))` for a refused code; `via` names the path.
pub(crate) async fn check_backup_code(
    state: &App,
    ctx: &RequestContext,
    user: &User,
    code: &str,
    via: &str,
) -> Result<Result<(), &'static str>, ServiceError> {
    let Some(normalized) = mfa::normalize_backup_code(code) else {
        return Ok(Err("wrong_code"));
    };
    let hash = mfa::backup_code_hash(&backup_key(state), user.id.0, &normalized);
    let used = state
        .store
        .use_backup_code(user.id, &hash, state.clock.now(), |left| {
            factor_event(state, ctx, user.id, Action::MfaBackupCodeUsed)
                .severity(Severity::Warning)
                .details(serde_json::json!({ "backup_codes_left": left, "via": via }))
        })
        .await?;
    match used {
        Some((_, ev)) => {
            // Two or fewer left: the event gives rise to a notice (`backup_codes_low`).
            state.events.observed(&ev);
            Ok(Ok(()))
        }
        None => Ok(Err("wrong_code")),
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

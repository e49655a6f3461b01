//! `ServiceError`: every outcome a use case can refuse with, one variant per outcome, each
//! with its stable `code`. How an outcome is shown (HTTP status, problem document, CLI
//! message) is the door's business: the server maps every kind in one exhaustive table.

use rampart_store::StoreError;

/// One broken rule of one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldProblem {
    /// The one way to name a broken rule: `field`, a stable `code`, a sentence for people.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// What a use case answers instead of its result. The variant fixes the code; no call site
/// chooses a code string. [`ServiceErrorKind`] lists the variants, so tables over them can be
/// checked to be complete.
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(name(ServiceErrorKind), derive(strum::EnumIter, Hash))]
pub enum ServiceError {
    #[error("validation failed")]
    Validation(Vec<FieldProblem>),
    #[error("not found")]
    NotFound,
    #[error("wrong e-mail address or password")]
    InvalidCredentials,
    #[error("the access token or session is invalid, expired or revoked")]
    InvalidToken,
    #[error("the refresh token is invalid, expired, or its session has ended")]
    InvalidRefreshToken,
    #[error("this refresh token was used before; its session has been revoked")]
    RefreshTokenReused,
    #[error("the token is invalid, expired or used")]
    InvalidAccountToken,
    #[error("the second-factor code is wrong, expired or was used before")]
    InvalidMfaCode,
    #[error("the mfa_token is unknown, expired or used; log in again")]
    InvalidMfaToken,
    #[error("the API key is unknown, expired or revoked")]
    InvalidApiKey,
    #[error("rate limit reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the password has expired; set a new one with the change_token at /v1/auth/password/reset")]
    PasswordExpired { change_token: String },
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("verify the e-mail address first: a verification link has been sent")]
    EmailNotVerified,
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("this needs the permission {permission}")]
    MissingPermission { permission: String },
    #[error("this API key lacks the scope {permission} (or its owner lost it)")]
    InsufficientScope { permission: String },
    #[error("{what} needs {permission:?}, which you do not hold")]
    ExceedsOwnPermissions { what: String, permission: String },
    #[error("this needs a recent sign-in: send your password with the request, or sign in again")]
    ReauthenticationRequired,
    #[error(
        "this account has a second factor: send a current one as `code` (an authenticator code or an unused \
         backup code), or sign in again with your second factor and retry within a few minutes"
    )]
    SecondFactorRequired,
    #[error("your role requires a second factor: set one up at /v1/me/mfa/ first")]
    MfaEnrollmentRequired,
    #[error("{0}")]
    MethodNotAvailable(&'static str),
    #[error("An account with this e-mail address exists.")]
    EmailTaken,
    #[error("{0}")]
    TotpAlreadyEnabled(&'static str),
    #[error("call /v1/me/mfa/totp/setup first")]
    TotpNotSetUp,
    #[error("TOTP is not enabled")]
    TotpNotEnabled,
    #[error("backup codes back up a second factor: enable one first")]
    MfaNotEnabled,
    #[error("this authenticator is registered already")]
    CredentialExists,
    #[error("{0}")]
    TooManyKeys(String),
    #[error("role {0:?} exists; PUT changes it")]
    RoleExists(String),
    #[error("{0}")]
    RoleBuiltin(String),
    #[error("this is the last enabled administrator; make another one first")]
    LastAdmin,
    /// The account's erasure is already scheduled.
    #[error("this account's erasure is already scheduled")]
    ErasureScheduled,
    /// Restore of an account with no erasure pending (never asked for, or already done).
    #[error("this account has no erasure to take back")]
    ErasureNotScheduled,
    /// A Telegram Login Widget payload whose signature, fields or age are wrong.
    #[error("the Telegram login data is not signed by this site's bot, is incomplete, or is too old")]
    InvalidTelegramLogin,
    /// A provider-signed payload presented a second time.
    #[error("this sign-in was used before; sign in again with the provider")]
    FederatedLoginReplayed,
    /// An external identity no account is linked to, and `federation.auto_register` is off.
    #[error("no account is linked to this identity; sign in another way and link it from your account")]
    IdentityNotLinked,
    /// The identity is linked to another account.
    #[error("this identity is linked to another account")]
    IdentityTaken,
    /// A provider sign-in's callback without its flow: no (or a tampered, or an expired) flow
    /// cookie, or a `state` that is not the cookie's.
    #[error("this sign-in was not started in this browser, or took too long; start again")]
    OAuthStateInvalid,
    /// The provider answered the sign-in with an error (`error=access_denied`, …).
    #[error("the provider did not sign you in ({0})")]
    ProviderDenied(String),
    /// The provider could not be reached, or its token or user-info answer was unusable.
    #[error("the provider could not complete the sign-in; try again later")]
    ProviderFailed,
    /// The provider's `id_token` failed a check (signature, issuer, audience, time, nonce).
    #[error("the provider's identity token was refused ({0})")]
    InvalidIdToken(&'static str),
    /// An account already has the provider's e-mail address, and nothing proves it is the
    /// same person: sign in to it and link the provider from there.
    #[error("an account with this e-mail address exists: sign in to it, then link this provider from your account")]
    FederationLinkRequired,
    /// Unlinking would leave the account without a way to sign in.
    #[error("this is the account's only way to sign in: set a password or link another identity first")]
    LastSignInMethod,
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this export holds more than {threshold} rows (exports.approval_threshold_rows): request it with \
         POST /v1/admin/exports, where a second administrator approves it"
    )]
    ExportApprovalRequired { threshold: u64 },
    #[error("you requested this export: a second administrator must approve it")]
    ExportSelfApproval,
    #[error("this export is not waiting for approval")]
    ExportNotPending,
    #[error("this export waits for a second administrator's approval")]
    ExportPendingApproval,
    #[error("only the administrator who requested this export may download it")]
    ExportNotRequester,
    #[error("this export was downloaded already; an export is downloaded once")]
    ExportDownloaded,
    #[error("this export expired (exports.download_ttl_hours); request a new one")]
    ExportExpired,
    #[error("too busy to check passwords right now; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    #[error("service temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ServiceError::Internal(Box::new(e))
    }

    /// A single field's broken rule.
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        ServiceError::Validation(vec![FieldProblem::new(field, code, message)])
    }

    pub fn kind(&self) -> ServiceErrorKind {
        ServiceErrorKind::from(self)
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl ServiceErrorKind {
    /// The stable code of every outcome. Exhaustive: a new variant does not compile until it
    /// has its code here.
    pub fn code(self) -> &'static str {
        use ServiceErrorKind as K;
        match self {
            K::Validation => "validation_failed",
            K::NotFound => "not_found",
            K::InvalidCredentials => "invalid_credentials",
            K::InvalidToken => "invalid_token",
            K::InvalidRefreshToken => "invalid_refresh_token",
            K::RefreshTokenReused => "refresh_token_reused",
            K::InvalidAccountToken => "invalid_or_expired_token",
            K::InvalidMfaCode => "invalid_mfa_code",
            K::InvalidMfaToken => "invalid_mfa_token",
            K::InvalidApiKey => "invalid_api_key",
            K::RateLimited => "rate_limited",
            K::TooManyAttempts => "too_many_attempts",
            K::PasswordExpired => "password_expired",
            K::AccountDisabled => "account_disabled",
            K::EmailNotVerified => "email_not_verified",
            K::RegistrationClosed => "registration_closed",
            K::MissingPermission => "forbidden",
            K::InsufficientScope => "insufficient_scope",
            K::ExceedsOwnPermissions => "exceeds_own_permissions",
            K::ReauthenticationRequired => "reauthentication_required",
            K::SecondFactorRequired => "second_factor_required",
            K::MfaEnrollmentRequired => "mfa_enrollment_required",
            K::MethodNotAvailable => "method_not_available",
            K::EmailTaken => "email_taken",
            K::TotpAlreadyEnabled => "totp_already_enabled",
            K::TotpNotSetUp => "totp_not_set_up",
            K::TotpNotEnabled => "totp_not_enabled",
            K::MfaNotEnabled => "mfa_not_enabled",
            K::CredentialExists => "credential_exists",
            K::TooManyKeys => "too_many_keys",
            K::RoleExists => "role_exists",
            K::RoleBuiltin => "role_builtin",
            K::LastAdmin => "last_admin",
            K::ErasureScheduled => "erasure_scheduled",
            K::ErasureNotScheduled => "erasure_not_scheduled",
            K::InvalidTelegramLogin => "invalid_telegram_login",
            K::FederatedLoginReplayed => "federated_login_replayed",
            K::IdentityNotLinked => "identity_not_linked",
            K::IdentityTaken => "identity_taken",
            K::LastSignInMethod => "last_sign_in_method",
            K::OAuthStateInvalid => "oauth_state_invalid",
            K::ProviderDenied => "provider_denied",
            K::ProviderFailed => "provider_failed",
            K::InvalidIdToken => "invalid_id_token",
            K::FederationLinkRequired => "federation_link_required",
            K::Conflict => "conflict",
            K::ExportApprovalRequired => "export_approval_required",
            K::ExportSelfApproval => "export_self_approval",
            K::ExportNotPending => "export_not_pending",
            K::ExportPendingApproval => "export_pending_approval",
            K::ExportNotRequester => "export_not_requester",
            K::ExportDownloaded => "export_downloaded",
            K::ExportExpired => "export_expired",
            K::Overloaded => "overloaded",
            K::Unavailable => "unavailable",
            K::Internal => "internal_error",
        }
    }
}

/// A full hashing queue is `overloaded`; anything else about hashing is internal.
impl From<crate::hashing::HashingError> for ServiceError {
    fn from(e: crate::hashing::HashingError) -> Self {
        match e {
            crate::hashing::HashingError::Overloaded => ServiceError::Overloaded { retry_after_secs: 1 },
            e => ServiceError::internal(e),
        }
    }
}

/// Every storage error has a row; none falls through to a catch-all.
impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailTaken => ServiceError::EmailTaken,
            StoreError::UnknownRole(role) => {
                ServiceError::field("roles", "unknown_role", format!("role {role:?} does not exist"))
            }
            StoreError::Conflict(detail) => ServiceError::Conflict(detail),
            e @ (StoreError::Unavailable(_) | StoreError::Connect(_)) => ServiceError::Unavailable(Box::new(e)),
            e @ (StoreError::UnsupportedUrl(_)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)) => ServiceError::Internal(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use strum::IntoEnumIterator;

    #[test]
    fn every_kind_has_a_distinct_snake_case_code() {
        let mut seen = HashSet::new();
        for kind in ServiceErrorKind::iter() {
            let code = kind.code();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{kind:?}: {code}");
            assert!(seen.insert(code), "{kind:?}: code {code} is used twice");
        }
    }
}
